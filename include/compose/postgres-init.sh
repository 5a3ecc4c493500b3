#!/usr/bin/env bash
# First start of the postgres service (docker-entrypoint-initdb.d): one role and database per
# application, each with its own password from a secret: airflow (metadata, Celery results),
# mlflow (tracking) and mlflow_auth (MLflow's users and permissions).
set -euo pipefail
secret() { local v; v="$(tr -d '\r\n' < "/run/secrets/$1")"; [[ -n "$v" ]] || { echo "secret $1 is empty" >&2; exit 1; }; printf '%s' "$v"; }
psql -v ON_ERROR_STOP=1 --username "${POSTGRES_USER:-postgres}" --dbname postgres \
  -v airflow_pw="$(secret airflow_db_password)" -v mlflow_pw="$(secret mlflow_db_password)" <<'SQL'
CREATE ROLE airflow LOGIN PASSWORD :'airflow_pw';
CREATE ROLE mlflow LOGIN PASSWORD :'mlflow_pw';
CREATE DATABASE airflow OWNER airflow;
CREATE DATABASE mlflow OWNER mlflow;
CREATE DATABASE mlflow_auth OWNER mlflow;
SQL
