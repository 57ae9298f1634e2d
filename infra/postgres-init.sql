-- One PostgreSQL instance, two databases: Prefect's and MLflow's.
CREATE USER prefect WITH PASSWORD 'prefect';
CREATE DATABASE prefect OWNER prefect;
CREATE USER mlflow WITH PASSWORD 'mlflow';
CREATE DATABASE mlflow OWNER mlflow;
