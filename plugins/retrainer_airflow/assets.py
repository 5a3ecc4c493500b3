"""Assets that chain the DAGs by data rather than by time."""

from __future__ import annotations

from airflow.sdk import Asset

#: a new data version was added to the data registry; its event ``extra`` carries
#: ``dataset``, ``data_version``, ``period``.
# A plain name (no URI scheme): an unknown scheme makes Airflow load every provider's asset
# handlers (boto3 and all) when the DAG file is parsed.
DATA_VERSIONS = Asset("retrainer_data_versions")
