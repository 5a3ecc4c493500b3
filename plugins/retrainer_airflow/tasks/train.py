"""retrain_model's first tasks: plan_other_datasets, plan_training -> validate_window -> train."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from retrainer.outcomes import NothingToDo, Refused
from retrainer_airflow.assets import RETRAIN_REQUESTS
from retrainer_airflow.tasks.boundary import record_task
from retrainer_airflow.tasks.runtime import context, is_backfill, run_context, run_type, settings

if TYPE_CHECKING:
    from retrainer.records import RetrainConf, StartRetraining, TrainedRun, TrainingPlan, WindowValidation

log = logging.getLogger(__name__)


def _requests() -> list[dict[str, Any]]:
    """The extras of the retrain requests (asset events) that started this run."""
    events = context().get("triggering_asset_events") or {}
    try:
        return [dict(e.extra or {}) for e in events[RETRAIN_REQUESTS]]
    except (KeyError, TypeError):
        return []


def _covered(params: RetrainConf) -> tuple[str, str | None, list[tuple[str, str]]]:
    """The dataset this run trains, the data version asked for it (None: the Params'), and the
    datasets it starts a run of their own for, with their data versions: a scheduled run
    covers the specs whose retraining period (``training.every``) ended in its interval,
    trains the dataset of its Params if among them (else the first) and starts one for every
    other; a backfill run trains the dataset of its Params when it is due; a run started by
    retrain requests trains one requested dataset (the default if requested) and starts the
    others; any other run trains the dataset of its Params (or conf) only."""
    from retrainer.pipeline import train

    kind, dataset = run_type(), params.dataset
    if kind == "scheduled" or "backfill" in kind:
        ctx = context()
        start, end = ctx.get("data_interval_start"), ctx.get("data_interval_end")
        due = train.due_datasets(settings(), start, end)
        if "backfill" in kind:  # a backfill retrains the dataset of its Params, for the periods it covers
            if dataset not in due:
                every = settings().load_spec(dataset).retrain_every
                raise NothingToDo(
                    f"{dataset} retrains {every}: no {every} period of it ended in this run's interval"
                    f" ({start} to {end})"
                )
            return dataset, None, []
        mine, others = train.split_run(due, dataset)
        if mine is None:
            raise NothingToDo(
                f"no dataset's retraining period (training.every) ended in this run's interval ({start} to {end})"
            )
        return mine, None, [(d, "latest") for d in others]
    if "asset" not in kind:
        return dataset, None, []
    asked, left_out = train.datasets_to_retrain(_requests(), dataset, settings().datasets())
    for why in left_out:
        log.warning("not retrained: %s", why)
    mine, others = train.split_run(asked, dataset)
    if mine is None:
        raise NothingToDo("the retrain requests name no dataset with a spec: " + "; ".join(left_out))
    return mine, asked[mine], [(d, asked[d]) for d in others]


@record_task
def plan_other_datasets(params: RetrainConf) -> list[StartRetraining]:
    """A run of ``retrain_model`` for each other dataset this run covers (a scheduled run: every
    other spec; a run started by retrain requests: the other requested datasets), for the mapped
    ``retrain_other_datasets``. Run ids are derived from this run's, so a retry starts none twice."""
    from retrainer.records import RetrainConf, StartRetraining

    _, _, others = _covered(params)
    ti = context()["ti"]
    kind = "scheduled retraining" if run_type() == "scheduled" else "retrain request"
    reason = f"{params.reason or kind} (with {ti.run_id})"
    out = [StartRetraining(f"{d}__{ti.run_id}", RetrainConf(d, version, reason)) for d, version in others]
    log.info("starting retrain_model for %s", ", ".join(o.trigger_run_id for o in out) or "no other dataset")
    return out


#: states of a retraining on newer data that a drift retraining gives way to
LIVE_OR_DONE = ["queued", "running", "success"]
#: how many of the newest data versions are looked at for such a retraining
LOOKAHEAD = 20


def _version_number(label: str) -> int:
    from retrainer.data.versioning import version_number

    found = version_number(label)
    return -1 if found is None else found


def _newer_drift_retraining(plan: TrainingPlan) -> str | None:
    """For a run that drift started: the run id of a drift retraining on a newer data version
    of the dataset that is queued, running or done, if any. monitor_drift's trigger_retrain
    checks for a retraining in flight and starts one in one step, one at a time; should two
    retrainings of a burst start anyway (a run id given by hand, that rule lost), the one on
    older data gives way, so one trains."""
    from retrainer.data.versioning import DataRegistry
    from retrainer_airflow.tasks.monitor import RETRAIN_DAG_ID, drift_run_id

    ti = context()["ti"]
    if ti.run_id != drift_run_id(plan.dataset, plan.data_version):
        return None
    mine = _version_number(plan.data_version)
    newer = [v.label for v in DataRegistry(settings()).versions(plan.dataset) if _version_number(v.label) > mine]
    for label in reversed(newer[-LOOKAHEAD:]):
        run_id = drift_run_id(plan.dataset, label)
        if ti.get_dr_count(dag_id=RETRAIN_DAG_ID, run_ids=[run_id], states=LIVE_OR_DONE):
            return run_id
    return None


def _as_of(dataset: str) -> str | None:
    """The last whole period (of the dataset's own frequency) before the end of a scheduled run's
    or a backfill's data interval, or before a manual run was started (its interval ends with the
    last month: daily data would lose the days since)."""
    from retrainer import periods

    ctx = context()
    end = ctx.get("data_interval_end")
    if run_type() == "manual":
        end = ctx.get("logical_date") or getattr(ctx.get("dag_run"), "run_after", None) or end
    return None if end is None else periods.before(end, settings().load_spec(dataset).frequency)


@record_task
def plan_training(params: RetrainConf) -> TrainingPlan:
    """Pin the data version: the one named by the ``data_version`` Param, else the one a retrain
    request (asset event) named, else the one that was current at the end of the run's data
    interval (a scheduled run or a backfill trains on the data of its own time). A data
    version already trained by another run is not trained again unless ``force`` is set."""
    from retrainer.data.versioning import DataVersionError
    from retrainer.pipeline import train

    dataset, requested, _ = _covered(params)
    wanted = params.data_version or "latest"
    if wanted == "latest":
        wanted = requested or "latest"
    as_of = _as_of(dataset) if wanted == "latest" else None
    s = settings()
    try:
        plan = train.plan_training(s, dataset, wanted, params.window, as_of=as_of, backfill=is_backfill())
    except DataVersionError as exc:
        raise Refused(str(exc)) from exc
    earlier = train.trained_by_other_runs(s, plan, run_context(params.reason))
    if earlier and not params.force:
        raise NothingToDo(
            f"{plan.data_tag} with this window was already trained by {earlier}; "
            "nothing new to learn (trigger with force=true to train again)"
        )
    newer = _newer_drift_retraining(plan)
    if newer:
        raise NothingToDo(f"{newer} retrains on newer data than {plan.data_tag}; this one gives way to it")
    return plan


@record_task
def validate_window(plan: TrainingPlan) -> WindowValidation:
    """Every period of the window validated again as read from the registry (a failure, or a data
    version that moved, fails the task without retries: a retry would find the same)."""
    from retrainer.pipeline import train

    return train.validate_window(settings(), plan)


@record_task
def train(plan: TrainingPlan, validation: WindowValidation, params: RetrainConf) -> TrainedRun:
    from retrainer.pipeline import train as stage

    return stage.train_and_log(settings(), plan, run_context(params.reason), validation, params.epochs)
