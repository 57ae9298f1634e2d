# MLflow tracking server with a PostgreSQL backend store, run as the unprivileged user `mlflow`.
FROM python:3.11-slim
ENV PIP_NO_CACHE_DIR=1
COPY constraints.txt /tmp/constraints.txt
RUN pip install -c /tmp/constraints.txt mlflow psycopg2-binary \
    && useradd --create-home --uid 10001 mlflow \
    && mkdir /mlartifacts && chown mlflow:mlflow /mlartifacts
USER mlflow
WORKDIR /home/mlflow
EXPOSE 5000
