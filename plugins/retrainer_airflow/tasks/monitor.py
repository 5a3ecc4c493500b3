"""monitor_drift's tasks: which datasets to look at, the drift check (``DriftSensor`` calls it)
and start_retraining."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from retrainer.outcomes import NothingToDo, Refused
from retrainer_airflow.assets import DATA_VERSIONS
from retrainer_airflow.tasks.boundary import record_task
from retrainer_airflow.tasks.runtime import context, run_context, run_type, settings

if TYPE_CHECKING:
    from airflow.sdk.types import RuntimeTaskInstanceProtocol

    from retrainer.records import DatasetCheck, DriftCheck, RetrainRequest

log = logging.getLogger(__name__)

RETRAIN_DAG_ID = "retrain_model"
#: how many data versions either side of the one decided on are looked at for a drift retraining in flight
IN_FLIGHT_LOOKBACK = 50


def drift_run_id(dataset: str, data_version: str) -> str:
    """The run id of the retraining that drift starts on a data version: one per version."""
    return f"drift__{dataset}__{data_version}"


def announced() -> list[dict[str, Any]]:
    """The extras of the data-version announcements (asset events) that started this run."""
    events = context().get("triggering_asset_events") or {}
    out: list[dict[str, Any]] = []
    for asset in events:
        if getattr(asset, "name", None) == DATA_VERSIONS.name:
            out += [dict(e.extra or {}) for e in events[asset]]
    return out


@record_task
def datasets_to_check(params: DatasetCheck) -> list[DatasetCheck]:
    """What this run looks at, one check per dataset (each its own sensor, so one dataset's
    wait never holds up another's): a run started by data-version announcements looks at each
    announced dataset's newest announced version; a scheduled run at the newest version of
    every dataset with a spec; a run started by hand at the dataset and version of its Params."""
    from retrainer.pipeline import monitor
    from retrainer.records import DatasetCheck

    s = settings()
    kind = run_type()
    if "asset" in kind:
        checks, left_out = monitor.checks_for_announcements(announced(), s.datasets())
        for why in left_out:
            log.warning("not checked: %s", why)
    elif kind == "scheduled":
        checks = [DatasetCheck(d) for d in s.datasets()]
    else:
        if not s.spec_path(params.dataset).exists():
            raise Refused(f"no spec {params.dataset}.yaml in {s.specs_dir}")
        checks = [DatasetCheck(params.dataset, params.data_version or "latest")]
    log.info("checking %s", ", ".join(f"{c.dataset} {c.data_version}" for c in checks) or "nothing")
    return checks


def check_drift(dataset: str, data_version: str) -> DriftCheck:
    """The drift sensor's look; what no retry can change (a spec that does not load, an unknown
    data version) fails the task at once, saying what and where."""
    from retrainer.pipeline import monitor
    from retrainer_airflow.tasks.boundary import outcomes_as_task_states

    with outcomes_as_task_states():
        return monitor.check_drift(settings(), dataset, data_version, run_context())


@record_task  # one record: run_id and conf are XComs of their own too, for trigger_retrain
def start_retraining(check: DriftCheck | None, params: DatasetCheck) -> RetrainRequest:
    """Before a drift-triggered retraining: drift that calls for one, and none within the spec's
    cooldown after the last one. Returns the run id (one per data version, so two triggers for
    the same data give one retraining) and the conf for ``retrain_model``. Whether a drift
    retraining of the dataset is in flight is asked by ``trigger_retrain`` itself, one decision
    at a time (``TriggerRetrainOperator``), so that two runs deciding at once never both start
    one."""
    from retrainer.pipeline import monitor
    from retrainer.records import RetrainConf, RetrainRequest

    if check is None or not check.retrain or check.data_version is None:
        raise NothingToDo("no drift that calls for retraining")
    dataset = check.dataset or params.dataset
    s = settings()
    wait = monitor.cooldown_remaining(s, s.load_spec(dataset))
    if wait > 0:
        raise NothingToDo(f"{dataset} is in cooldown for another {wait / 3600:.1f} h after its last drift retraining")
    conf = RetrainConf(dataset, check.data_version, f"drift: {check.reason}", check.summary())
    return RetrainRequest(drift_run_id(dataset, check.data_version), conf)


def in_flight(ti: RuntimeTaskInstanceProtocol, dataset: str, data_version: str) -> int:
    """How many drift retrainings of ``dataset`` are queued or running: those started on any data
    version within ``IN_FLIGHT_LOOKBACK`` of ``data_version``, older or newer (in a burst, the
    run deciding on the older version can come second)."""
    from retrainer.data.versioning import version_label, version_number

    number = version_number(data_version) or 0
    first = max(1, number - IN_FLIGHT_LOOKBACK + 1)
    near = [drift_run_id(dataset, version_label(n)) for n in range(first, number + IN_FLIGHT_LOOKBACK + 1)]
    return int(ti.get_dr_count(dag_id=RETRAIN_DAG_ID, run_ids=near, states=["queued", "running"]))
