"""Assets that chain the DAGs by data rather than by time."""

from __future__ import annotations

from airflow.sdk import Asset

#: a new data version was added to the data registry; its event ``extra`` carries
#: ``dataset``, ``data_version``, ``period``.
DATA_VERSIONS = Asset(name="retrainer_data_versions", uri="retrainer://data-versions/")
