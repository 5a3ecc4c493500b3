"""
### monitor_drift: new data that drifts from what the champion learned starts a retraining

Runs every morning (every dataset with a spec) and whenever `ingest_batch` publishes a new
data version (the datasets the announcements name, each at its newest announced version);
started by hand, it checks the dataset of its Params. Each dataset is checked in its own
mapped `check_dataset` group, so one dataset's waiting sensor never holds up another's:

1. **datasets_to_check** lists the datasets and data versions this run looks at.
2. **wait_for_drift** (`DriftSensor`, deferrable) compares the newest data with the data
   the current champion was trained on (read from its registry tags): feature drift, target
   drift, drift of the champion's predictions and, since batches carry labels, the drop of
   its score. The HTML report with per-feature plots goes to MLflow (link in the task log
   and in the XCom). Without drift, a scheduled or manual run waits, without a worker slot,
   for the dataset's next data version (after the wait it ends as skipped); a run started
   by an announcement ends as skipped at once, as the next version starts a run of its own.
3. **start_retraining** keeps the spec's cooldown after the last drift retraining and makes
   the conf: the dataset, the reason, the drift summary and the data version.
4. **trigger_retrain** starts `retrain_model` unless a drift retraining of the dataset is
   already in flight; the check and the start are one step, taken by one run at a time, so
   two runs deciding at once (a burst of data versions) start one retraining. Its run id is
   derived from the dataset and data version, so two triggers for the same data give one
   retraining.
"""

from __future__ import annotations

import os

# TriggerRetrainOperator's base, imported here at the top so that the DAG processor imports it
# once, in its own process, rather than in every parse of this file (parsing_pre_import_modules)
import airflow.providers.standard.operators.trigger_dagrun  # noqa: F401
from airflow.sdk import dag, task_group
from airflow.timetables.assets import AssetOrTimeSchedule
from airflow.timetables.trigger import CronTriggerTimetable

from retrainer_airflow.assets import DATA_VERSIONS
from retrainer_airflow.defaults import dag_defaults, data_version_param, dataset_param, sensor_args
from retrainer_airflow.retrain_trigger import TriggerRetrainOperator
from retrainer_airflow.sensors import DriftSensor
from retrainer_airflow.tasks import monitor


@dag(
    dag_id="monitor_drift",
    schedule=AssetOrTimeSchedule(timetable=CronTriggerTimetable("0 6 * * *", timezone="UTC"), assets=[DATA_VERSIONS]),
    # several at once: one dataset's waiting sensor never holds up the next announcement's run
    max_active_runs=int(os.environ.get("RETRAINER_MONITOR_MAX_RUNS", "8")),
    **dag_defaults(),
    doc_md=__doc__,
    tags=["retrainer", "monitoring"],
    render_template_as_native_obj=True,
    params={
        "dataset": dataset_param("the dataset spec to check (a run started by hand; scheduled runs check every spec)"),
        "data_version": data_version_param(),
    },
)
def monitor_drift() -> None:
    # one group per dataset; the task ids stay short (no group prefix): one dataset per map index
    @task_group(group_id="check_dataset", prefix_group_id=False)
    def check_dataset(dataset: str, data_version: str) -> None:
        wait_for_drift = DriftSensor(
            task_id="wait_for_drift",
            dataset=dataset,
            data_version=data_version,
            **sensor_args("drift", poke_s=300, wait_s=6 * 3600),
        )
        start = monitor.start_retraining(wait_for_drift.output)
        TriggerRetrainOperator(
            task_id="trigger_retrain",
            trigger_dag_id="retrain_model",
            trigger_run_id=start["run_id"],
            conf=start["conf"],
        )

    check_dataset.expand_kwargs(monitor.datasets_to_check())


monitor_drift()
