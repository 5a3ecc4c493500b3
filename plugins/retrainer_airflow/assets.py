"""Assets that chain the DAGs by data rather than by time."""

from __future__ import annotations

from airflow.sdk import Asset

#: a new data version was added to the data registry; its event ``extra`` carries
#: ``dataset``, ``data_version``, ``period``.
# A plain name (no URI scheme): an unknown scheme makes Airflow load every provider's asset
# handlers (boto3 and all) when the DAG file is parsed.
DATA_VERSIONS = Asset("retrainer_data_versions")

#: somebody asks for a retraining (an upstream system, through Airflow's REST API
#: ``POST /api/v2/assets/events``); its event ``extra`` may carry ``dataset``,
#: ``data_version`` and ``reason``. ``retrain_model`` runs on it as well as on its schedule.
RETRAIN_REQUESTS = Asset("retrainer_retrain_requests")
