"""monitor_drift's tasks: the drift check (``DriftSensor`` calls it) and start_retraining."""

from __future__ import annotations

from airflow.sdk.exceptions import AirflowSkipException

from retrainer.contracts import DriftCheck, RetrainConf, RetrainRequest
from retrainer_airflow.tasks.runtime import Json, context, params, read, run_context, settings

RETRAIN_DAG_ID = "retrain_model"


def drift_run_id(dataset: str, data_version: str) -> str:
    """The run id of the retraining that drift starts on a data version: one per version."""
    return f"drift__{dataset}__{data_version}"


def check_drift(dataset: str, data_version: str) -> DriftCheck:
    from retrainer.pipeline import monitor

    return monitor.check_drift(settings(), dataset, data_version, run_context())


def start_retraining(check: Json | None) -> Json:
    """Hygiene before a drift-triggered retraining: at most one retraining in flight per
    model, and none within the spec's cooldown after the last one. Returns the run id
    (one per data version, so two triggers for the same data give one retraining) and
    the conf for ``retrain_model``."""
    from retrainer.pipeline import monitor

    drift = read(DriftCheck, check, "wait_for_drift") if check else None
    if drift is None or not drift.retrain or drift.data_version is None:
        raise AirflowSkipException("no drift that calls for retraining")
    dataset = params()["dataset"]
    in_flight = context()["ti"].get_dr_count(dag_id=RETRAIN_DAG_ID, states=["queued", "running"])
    if in_flight:
        raise AirflowSkipException(f"{in_flight} {RETRAIN_DAG_ID} run(s) already in flight; not starting another")
    s = settings()
    wait = monitor.cooldown_remaining(s, s.load_spec(dataset))
    if wait > 0:
        raise AirflowSkipException(f"in cooldown for another {wait / 3600:.1f} h after the last drift retraining")
    conf = RetrainConf(dataset, drift.data_version, f"drift: {drift.reason}", drift.summary())
    return RetrainRequest(drift_run_id(dataset, drift.data_version), conf).to_json()
