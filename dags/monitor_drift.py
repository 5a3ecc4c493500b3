"""
### monitor_drift: new data that drifts from what the champion learned starts a retraining

Runs every morning and whenever `ingest_batch` publishes a new data version:

1. **wait_for_drift** (`DriftSensor`, deferrable) compares the newest data with the data
   the current champion was trained on (read from its registry tags): feature drift, target
   drift, drift of the champion's predictions and, since batches carry labels, the drop of
   its score. The HTML report with per-feature plots goes to MLflow (link in the task log
   and in the XCom). Without drift it waits, without a worker slot, for the next data
   version; after the wait it ends as skipped.
2. **start_retraining** keeps the hygiene: at most one retraining in flight per model and
   the spec's cooldown after the last drift retraining.
3. **trigger_retrain** starts `retrain_model` with a conf that carries the reason, the drift
   summary and the data version. Its run id is derived from the data version, so two
   triggers for the same data give one retraining.
"""

from __future__ import annotations

from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import dag, task
from airflow.timetables.assets import AssetOrTimeSchedule
from airflow.timetables.trigger import CronTriggerTimetable

from retrainer_airflow import tasks
from retrainer_airflow.assets import DATA_VERSIONS
from retrainer_airflow.defaults import dag_defaults, data_version_param, dataset_param, sensor_args
from retrainer_airflow.sensors import DriftSensor


@dag(
    dag_id="monitor_drift",
    schedule=AssetOrTimeSchedule(timetable=CronTriggerTimetable("0 6 * * *", timezone="UTC"), assets=[DATA_VERSIONS]),
    max_active_runs=1,
    **dag_defaults(),
    doc_md=__doc__,
    tags=["retrainer", "monitoring"],
    render_template_as_native_obj=True,
    params={
        "dataset": dataset_param(),
        "data_version": data_version_param(),
    },
)
def monitor_drift() -> None:
    wait_for_drift = DriftSensor(
        task_id="wait_for_drift",
        dataset="{{ params.dataset }}",
        data_version="{{ params.data_version }}",
        **sensor_args("drift", poke_s=300, wait_s=6 * 3600),
    )

    @task(multiple_outputs=True)  # run_id and conf, each its own XCom for trigger_retrain
    def start_retraining(check: dict | None) -> dict:
        return tasks.monitor.start_retraining(check)

    start = start_retraining(wait_for_drift.output)
    TriggerDagRunOperator(
        task_id="trigger_retrain",
        trigger_dag_id=tasks.monitor.RETRAIN_DAG_ID,
        trigger_run_id=start["run_id"],
        conf=start["conf"],
        skip_when_already_exists=True,
    )


monitor_drift()
