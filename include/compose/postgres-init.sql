-- Second database in the same PostgreSQL for the MLflow tracking server.
CREATE DATABASE mlflow OWNER airflow;
