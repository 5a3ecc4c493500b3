#!/usr/bin/env bash
# airflow-init of docker-compose.yaml, run once as root before the other Airflow services:
#  1. the folders the services write (named volumes are created root-owned) are given to the
#     user the services run as (AIRFLOW_UID:0), as Airflow's official compose file does;
#  2. the data registry's bare git remote, and an empty TensorFlow Serving model config
#     (TF Serving does not start without the file it is told to poll);
#  3. through the Airflow image's entrypoint: the metadata database migrated and the admin
#     user created (_AIRFLOW_DB_MIGRATE, _AIRFLOW_WWW_USER_CREATE), then the pool that the
#     data registry's writers share.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
exports="$(python3 "$here/secrets_env.py")" || exit 1  # as include/compose/entrypoint.sh
eval "$exports"
: "${AIRFLOW_UID:=50000}"
entrypoint="${AIRFLOW_IMAGE_ENTRYPOINT:-/entrypoint}"
registry_remote="${RETRAINER_DATA_REGISTRY_URL:?RETRAINER_DATA_REGISTRY_URL names the bare repository to create}"
model_store="${RETRAINER_MODEL_STORE:?RETRAINER_MODEL_STORE names the model store folder}"
# the folders of the named volumes the Airflow services write
writable=("${RETRAINER_HOME:?}" "$(dirname "$registry_remote")" "$model_store" "${AIRFLOW_LOGS:-/opt/airflow/logs}")

mkdir -p "${writable[@]}"
if [[ ! -d "$registry_remote" ]]; then
  git init -q --bare -b main "$registry_remote"
  echo "created the data registry's remote $registry_remote"
fi
if [[ ! -f "$model_store/models.config" ]]; then
  printf 'model_config_list {\n}\n' > "$model_store/models.config"
  echo "created an empty $model_store/models.config"
fi
chown -R "${AIRFLOW_UID}:0" "${writable[@]}"
chmod -R g+rwX "${writable[@]}"
echo "writable by ${AIRFLOW_UID}:0: ${writable[*]}"

"$entrypoint" airflow version
env -u _AIRFLOW_DB_MIGRATE -u _AIRFLOW_WWW_USER_CREATE \
  "$entrypoint" airflow pools set retrainer_data_registry 1 "retrainer: tasks that write the data registry, one at a time"
