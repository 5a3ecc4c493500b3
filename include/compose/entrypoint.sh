#!/usr/bin/env bash
# Entrypoint of the retrainer image (every Airflow service of docker-compose.yaml): the
# secrets the service is given as files become the variables its programs read
# (include/compose/secrets_env.py: NAME_FILE and NAME_TEMPLATE), then the Airflow image's own
# entrypoint runs the command (`airflow <command>`, or bash/python).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
exports="$(python3 "$here/secrets_env.py")" || exit 1
eval "$exports"
exec "${AIRFLOW_IMAGE_ENTRYPOINT:-/entrypoint}" "$@"
