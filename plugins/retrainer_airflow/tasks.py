"""What the retrainer tasks do inside Airflow: read the run's context, call the library,
and turn outcomes into Airflow states (a quarantined batch fails its run; a model that is
not promoted skips deployment).

Imports of ``retrainer.pipeline`` (and through it pandas, GX, MLflow, TensorFlow) happen
inside the functions, so DAG files that import this module stay fast to parse.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from airflow.sdk import Variable, get_current_context
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from retrainer.config import Settings
from retrainer.registry import RunContext
from retrainer_airflow.assets import DATA_VERSIONS, RETRAIN_REQUESTS

log = logging.getLogger(__name__)

Result = dict[str, Any]


SETTINGS_VARIABLE = "retrainer_settings"


def settings() -> Settings:
    """Settings for this task: the worker's environment, overlaid with the Airflow Variable
    ``retrainer_settings`` if it exists (a JSON object of the same variable names, e.g.
    ``{"RETRAINER_MODEL_STORE": "s3://models"}``). Read at run time, never at parse time."""
    overrides = Variable.get(SETTINGS_VARIABLE, default=None, deserialize_json=True)
    if overrides is None:
        return Settings.from_env()
    if not isinstance(overrides, dict) or not all(isinstance(v, str) for v in overrides.values()):
        raise AirflowFailException(f"Airflow Variable {SETTINGS_VARIABLE} must be a JSON object of strings")
    return Settings.from_env({**os.environ, **overrides})


def _context() -> Any:
    return get_current_context()


def run_context() -> RunContext:
    ctx = _context()
    ti = ctx["ti"]
    dag_run = ctx["dag_run"]
    params = ctx.get("params") or {}
    run_type = str(getattr(dag_run, "run_type", "manual"))
    trigger = str(params.get("reason") or "") or (
        "new data version" if "asset" in run_type.lower() else run_type.lower().split(".")[-1]
    )
    return RunContext(
        dag_id=ti.dag_id,
        run_id=ti.run_id,
        try_number=int(getattr(ti, "try_number", 1) or 1),
        trigger=trigger,
        run_type=run_type.lower().split(".")[-1],
    )


# ------------------------------------------------------------------------ ingest_batch


def validate_batch() -> Result:
    from retrainer import pipeline

    params = _context()["params"]
    s = settings()
    batch = params.get("batch") or str(Path(s.landing) / params["dataset"] / f"{params['period']}.csv")
    result = pipeline.validate_batch(s, params["dataset"], batch, params["period"])
    log.info("%s", result["summary"])
    return result


def route(validation: Result) -> str:
    return "version_batch" if validation["success"] else "quarantine_batch"


def quarantine_batch(validation: Result) -> None:
    from retrainer import pipeline

    out = pipeline.quarantine_batch(settings(), validation)
    raise AirflowFailException(
        f"batch {validation['dataset']} {validation['period']} failed validation and was quarantined "
        f"at {out['quarantine']}: " + "; ".join(validation["failures"])
    )


def version_batch(validation: Result) -> Result:
    from retrainer import pipeline

    return pipeline.version_batch(settings(), validation)


def publish(versioned: Result) -> Result:
    """Announce a new data version on the asset; a rerun that made no new version announces
    nothing (the task is skipped), so it cannot start a second retraining."""
    if not versioned["created"]:
        raise AirflowSkipException(f"{versioned['data_tag']} already existed and was announced when it was made")
    extra = {k: versioned[k] for k in ("dataset", "data_version", "period", "data_rev")}
    # a cleared publish in the run that made the version: it was announced already (the data
    # registry's commit makes the version's identity exact, not only its label)
    key = ("dataset", "data_version", "data_rev")
    for event in _context()["inlet_events"][DATA_VERSIONS].ascending(False).limit(500):
        seen = event.extra or {}
        if all(seen.get(k) == extra[k] for k in key):
            raise AirflowSkipException(f"{versioned['data_tag']} was announced already (asset event {event.timestamp})")
    _context()["outlet_events"][DATA_VERSIONS].extra = extra
    return extra


# ------------------------------------------------------------------------ retrain_model


def _triggering_version(dataset: str) -> str | None:
    """The data version named by the asset event that started this run, if any."""
    events = _context().get("triggering_asset_events") or {}
    found = []
    for asset in (DATA_VERSIONS, RETRAIN_REQUESTS):
        try:
            found += [e for e in events[asset] if (e.extra or {}).get("dataset") in (dataset, None)]
        except (KeyError, TypeError):
            continue
    named = [str(e.extra["data_version"]) for e in found if (e.extra or {}).get("data_version")]
    return named[-1] if named else None


def _is_backfill() -> bool:
    return "backfill" in str(getattr(_context()["dag_run"], "run_type", "")).lower()


def plan_training() -> Result:
    """Pin the data version: the one named by the ``data_version`` Param, else the one the
    triggering asset event announced, else the one that was current at the end of the run's
    data interval (a scheduled run or a backfill trains on the data of its own time). A data
    version already trained by another run is not trained again unless ``force`` is set."""
    from retrainer import pipeline
    from retrainer.versioning import DataVersionError

    ctx = _context()
    params = ctx["params"]
    dataset = params["dataset"]
    wanted = params.get("data_version") or "latest"
    as_of = None
    if wanted == "latest":
        wanted = _triggering_version(dataset) or "latest"
    if wanted == "latest" and ctx.get("data_interval_end") is not None:
        as_of = pipeline.period_before(ctx["data_interval_end"])
    s = settings()
    try:
        plan = pipeline.plan_training(s, dataset, wanted, params.get("window"), as_of=as_of, backfill=_is_backfill())
    except pipeline.NotEnoughDataError as exc:
        raise AirflowSkipException(str(exc)) from exc
    except DataVersionError as exc:
        raise AirflowFailException(str(exc)) from exc
    earlier = pipeline.trained_by_other_runs(s, plan, run_context())
    if earlier and not params.get("force"):
        raise AirflowSkipException(
            f"{plan['data_tag']} with this window was already trained by {earlier}; "
            "nothing new to learn (trigger with force=true to train again)"
        )
    return plan


def validate_window(plan: Result) -> Result:
    from retrainer import pipeline

    try:
        return pipeline.validate_window(settings(), plan)
    except pipeline.DataValidationError as exc:
        raise AirflowFailException(str(exc)) from exc


def train(plan: Result, validation: Result) -> Result:
    from retrainer import pipeline

    params = _context()["params"]
    return pipeline.train_and_log(settings(), plan, run_context(), validation, params.get("epochs"))


def evaluate(plan: Result, trained: Result) -> Result:
    from retrainer import pipeline

    return pipeline.evaluate(settings(), plan, trained)


def register(plan: Result, trained: Result, evaluated: Result) -> Result:
    from retrainer import pipeline

    drift = _context()["params"].get("drift") or {}
    evidence = {f"drift.{k}": str(drift[k]) for k in ("reason", "report_uri", "mlflow_run_id") if drift.get(k)}
    return pipeline.register(settings(), plan, trained, evaluated, run_context(), evidence)


def skip_if_backfill(plan: Result) -> None:
    if plan.get("backfill"):
        raise AirflowSkipException("a backfill run registers and evaluates; it never promotes nor deploys")


def review_request(plan: Result, evaluated: Result, registered: Result) -> Result:
    """What the review task asks, or, when nothing needs asking, the decision that stands:
    policy ``auto``, a gate that already failed, or a decision recorded earlier (first answer)."""
    from retrainer import approval, pipeline
    from retrainer.registry import Registry

    skip_if_backfill(plan)
    s = settings()
    spec = s.load_spec(plan["dataset"])
    version = registered["version"]
    registry = Registry(s)
    first = approval.recorded(registry.version_tags(spec, version))
    if first is not None:
        log.info("decision already recorded on v%s: %s by %s via %s", version, first.decision, first.reviewer,
                 first.via)  # fmt: skip
        return first.to_dict()
    if spec.approval.policy == "auto":
        return {"decision": "auto", "approved": evaluated["passed"], "via": "policy", "reviewer": "policy:auto"}
    if not evaluated["passed"]:
        return {"decision": "gate failed", "approved": False, "via": "gate", "reviewer": "gate"}
    links = pipeline.review_links(s, spec, version, _airflow_ui_url())
    return approval.request(s, spec, version, evaluated, links).to_dict()


def _airflow_ui_url() -> str:
    ctx = _context()
    base = (
        os.environ.get("AIRFLOW__API__BASE_URL") or f"http://127.0.0.1:{os.environ.get('AIRFLOW__API__PORT', '8080')}"
    )
    return f"{base.rstrip('/')}/dags/{ctx['ti'].dag_id}/runs/{ctx['ti'].run_id}"


def record_review(plan: Result, registered: Result, approved: bool, reviewer: str, via: str) -> Result:
    """Record the reviewer's answer (or the timeout) on the version; the first answer stands."""
    from retrainer import approval

    s = settings()
    decided = approval.record(s, s.load_spec(plan["dataset"]), registered["version"],
                              approval.APPROVED if approved else approval.REJECTED, reviewer, via)  # fmt: skip
    return decided.to_dict()


def promote(plan: Result, trained: Result, evaluated: Result, registered: Result) -> Result:
    from retrainer import pipeline

    skip_if_backfill(plan)
    try:
        return pipeline.promote(settings(), plan, evaluated, registered, trained)
    except pipeline.ReviewPendingError as exc:
        raise AirflowFailException(str(exc)) from exc


def deploy(plan: Result, registered: Result, promoted: Result) -> Result:
    from retrainer import pipeline

    if not promoted["promoted"]:
        raise AirflowSkipException(f"v{promoted['version']} was not promoted; nothing to deploy")
    return pipeline.deploy(settings(), plan, registered)


def verify(plan: Result, deployed: Result) -> Result:
    """Check the deployed version; if it is bad, put the previous champion back on its own
    (alias and label) before failing the run, so a bad deploy never stays."""
    from retrainer import pipeline
    from retrainer.deployment import DeployVerificationError
    from retrainer.postdeploy import DeployCheckError

    s = settings()
    try:
        return pipeline.verify_deployment(s, plan, deployed)
    except (DeployCheckError, DeployVerificationError) as exc:
        outcome = pipeline.roll_back_bad_deploy(s, plan, deployed, run_context(), str(exc))
        raise AirflowFailException(f"{exc}; {outcome}") from exc


# ------------------------------------------------------------------------ monitor_drift

RETRAIN_DAG_ID = "retrain_model"


def start_retraining(check: Result | None) -> Result:
    """Hygiene before a drift-triggered retraining: at most one retraining in flight per
    model, and none within the spec's cooldown after the last one. Returns the run id
    (one per data version, so two triggers for the same data give one retraining) and
    the conf for ``retrain_model``."""
    from retrainer import monitoring

    if not check or not check.get("retrain"):
        raise AirflowSkipException("no drift that calls for retraining")
    ctx = _context()
    dataset = ctx["params"]["dataset"]
    in_flight = ctx["ti"].get_dr_count(dag_id=RETRAIN_DAG_ID, states=["queued", "running"])
    if in_flight:
        raise AirflowSkipException(f"{in_flight} {RETRAIN_DAG_ID} run(s) already in flight; not starting another")
    s = settings()
    spec = s.load_spec(dataset)
    wait = monitoring.cooldown_remaining(s, spec)
    if wait > 0:
        raise AirflowSkipException(f"in cooldown for another {wait / 3600:.1f} h after the last drift retraining")
    summary = {k: check.get(k) for k in ("reason", "report_uri", "mlflow_run_id", "drifted_features", "share_drifted",
                                         "performance_drop", "champion_version")}  # fmt: skip
    return {
        "run_id": f"drift__{dataset}__{check['data_version']}",
        "conf": {
            "dataset": dataset,
            "data_version": check["data_version"],
            "reason": f"drift: {check['reason']}",
            "drift": summary,
        },
    }


# ------------------------------------------------------------------------ rollback_model


def rollback() -> Result:
    from retrainer import pipeline

    ctx = _context()
    params = ctx["params"]
    who = str(getattr(ctx["dag_run"], "triggering_user_name", None) or "unknown")
    try:
        return pipeline.rollback(settings(), params["dataset"], str(params["version"]), run_context(),
                                 params["reason"], who)  # fmt: skip
    except (LookupError, ValueError) as exc:
        raise AirflowFailException(str(exc)) from exc
