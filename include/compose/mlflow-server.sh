#!/usr/bin/env bash
# The mlflow service of docker-compose.yaml: the MLflow tracking server with its own
# entrypoint (the Airflow image's would run any command as `airflow <command>`).
#
#  * logins: MLflow's basic-auth app with retrainer's rules on top (`--app-name
#    retrainer-auth`, retrainer.registry.mlflow_app): the pipeline's service account is the admin;
#    reviewers may set only the `approval` tag, and the server records who they are;
#  * Host headers: only the names workers and browsers use (MLFLOW_ALLOWED_HOSTS), else
#    MLflow answers 403 "Invalid Host header";
#  * no secret on the command line: the database URLs reach MLflow through the environment
#    (MLFLOW_BACKEND_STORE_URI) and its auth config file (mode 600), built from secret files.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
exports="$(python3 "$here/secrets_env.py")" || exit 1
eval "$exports"
: "${MLFLOW_BACKEND_STORE_URI:?set MLFLOW_BACKEND_STORE_URI or MLFLOW_BACKEND_STORE_URI_TEMPLATE}"
: "${MLFLOW_AUTH_DATABASE_URI:?set MLFLOW_AUTH_DATABASE_URI or MLFLOW_AUTH_DATABASE_URI_TEMPLATE}"
: "${MLFLOW_ADMIN_USERNAME:?the pipeline service account (MLflow admin)}"
: "${MLFLOW_ADMIN_PASSWORD:?set MLFLOW_ADMIN_PASSWORD_FILE}"
: "${MLFLOW_FLASK_SERVER_SECRET_KEY:?set MLFLOW_FLASK_SERVER_SECRET_KEY_FILE}"
: "${MLFLOW_ARTIFACTS_DESTINATION:?e.g. s3://retrainer/mlflow}"
: "${MLFLOW_ALLOWED_HOSTS:?the Host headers clients send, e.g. mlflow:5000,localhost:5000}"
export MLFLOW_BACKEND_STORE_URI MLFLOW_FLASK_SERVER_SECRET_KEY

config_dir="$(mktemp -d)"
umask 077
cat > "$config_dir/basic_auth.ini" <<INI
[mlflow]
default_permission = READ
database_uri = ${MLFLOW_AUTH_DATABASE_URI}
admin_username = ${MLFLOW_ADMIN_USERNAME}
admin_password = ${MLFLOW_ADMIN_PASSWORD}
authorization_function = mlflow.server.auth:authenticate_request_basic_auth
INI
export MLFLOW_AUTH_CONFIG_PATH="$config_dir/basic_auth.ini"
unset MLFLOW_ADMIN_PASSWORD MLFLOW_AUTH_DATABASE_URI

exec mlflow server \
  --app-name retrainer-auth \
  --host "${MLFLOW_HOST:-0.0.0.0}" --port "${MLFLOW_PORT:-5000}" \
  --workers "${MLFLOW_WORKERS:-2}" \
  --artifacts-destination "$MLFLOW_ARTIFACTS_DESTINATION" \
  --allowed-hosts "$MLFLOW_ALLOWED_HOSTS"
