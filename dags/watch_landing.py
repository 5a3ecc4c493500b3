"""
### watch_landing: every batch file that lands starts its own ingest

Runs continuously. **wait_for_deliveries** (`LandingSensor`, deferrable) lists the landing
location (`RETRAINER_LANDING`: a local folder or an `s3://` prefix) and routes each file by
its path, `<dataset>/<period>.csv` or `.parquet` (or `<dataset>/<period>.<label>.csv`; the
period written in the spec's frequency: `2011-03` monthly, `2011-W09` weekly, `2011-03-05`
daily, `2011-03-05T14` hourly). A file whose
`ingest_batch` run does not exist yet is a new delivery: **start_ingest** starts that run,
named by the dataset, the period and the file's bytes (MD5, or the S3 ETag), so the same
bytes delivered again start nothing and new bytes for a period are a new delivery. With
nothing new, the sensor waits in the triggerer, holding no worker slot, until the listing
changes.

A file whose path says no dataset (with a spec) and period is refused by
**refuse_unroutable**: copied with the reason to `<quarantine>/_unroutable/`, and the task
fails naming it; the other deliveries go on.

Write a delivery in one step: upload the object, or write a local file under a name that
starts with a dot and rename it.
"""

from __future__ import annotations

from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import dag

from retrainer_airflow.defaults import dag_defaults, sensor_args
from retrainer_airflow.sensors import INGEST_DAG_ID, LandingSensor
from retrainer_airflow.tasks import landing


@dag(
    dag_id="watch_landing",
    schedule="@continuous",
    max_active_runs=1,
    **dag_defaults(),
    doc_md=__doc__,
    tags=["retrainer", "data"],
)
def watch_landing() -> None:
    found = LandingSensor(task_id="wait_for_deliveries", **sensor_args("landing", poke_s=60, wait_s=24 * 3600))
    TriggerDagRunOperator.partial(
        task_id="start_ingest", trigger_dag_id=INGEST_DAG_ID, skip_when_already_exists=True
    ).expand_kwargs(landing.plan_ingests(found.output))
    landing.refuse_unroutable(found.output)


watch_landing()
