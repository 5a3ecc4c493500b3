# Image for the Airflow services and the MLflow server of docker-compose.yaml: Airflow 3 plus
# the pinned stack and the retrainer library. Build: docker compose build
FROM apache/airflow:3.3.2-python3.11

USER root
RUN apt-get update && apt-get install -y --no-install-recommends git \
    && rm -rf /var/lib/apt/lists/*
USER airflow

COPY --chown=airflow:root requirements.txt requirements-data.txt /opt/retrainer/
RUN pip install --no-cache-dir -r /opt/retrainer/requirements.txt \
    && pip install --no-cache-dir --no-deps -r /opt/retrainer/requirements-data.txt

COPY --chown=airflow:root pyproject.toml README.md LICENSE /opt/retrainer/
COPY --chown=airflow:root .dvc/config /opt/retrainer/.dvc/config
COPY --chown=airflow:root include /opt/retrainer/include
COPY --chown=airflow:root plugins /opt/retrainer/plugins
COPY --chown=airflow:root tools /opt/retrainer/tools
RUN pip install --no-cache-dir --no-deps -e /opt/retrainer

# Secrets given as files become the variables the programs read, then Airflow's entrypoint
# runs the command (include/compose/entrypoint.sh); dumb-init as in the Airflow image.
ENTRYPOINT ["/usr/bin/dumb-init", "--", "/opt/retrainer/include/compose/entrypoint.sh"]
CMD []
