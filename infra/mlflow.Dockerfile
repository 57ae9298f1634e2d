# MLflow tracking server with a PostgreSQL backend store.
FROM python:3.11-slim
ENV PIP_NO_CACHE_DIR=1
COPY constraints.txt /tmp/constraints.txt
RUN pip install -c /tmp/constraints.txt mlflow psycopg2-binary
EXPOSE 5000
