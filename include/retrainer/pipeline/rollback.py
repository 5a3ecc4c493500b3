"""Rollback: serve an earlier model version again, on purpose (``rollback_model``) or on its
own after a failed deploy check (``verify``), with alias, label and record moved together."""

from __future__ import annotations

import logging
import math

from retrainer import schema
from retrainer.data.versioning import DataRegistry
from retrainer.records import Deployment, Rollback, RunContext, TrainingPlan
from retrainer.registry.client import Registry
from retrainer.schema import CHAMPION
from retrainer.serving import modelstore
from retrainer.serving.modelstore import STABLE
from retrainer.settings import Settings
from retrainer.spec.dataset import DatasetSpec

log = logging.getLogger(__name__)

AUTOMATIC = "retrainer:auto"


def roll_back_bad_deploy(
    settings: Settings, plan: TrainingPlan, deployed: Deployment, ctx: RunContext, error: str
) -> str:
    """After a failed deploy check: if the bad version is the champion, put the one it replaced
    back (alias and label). Returns what happened, in words, for the failure message. A store
    that lost its state is refused (ModelStoreLostError) with nothing moved: the check failed
    on the store, not on the model."""
    from retrainer.pipeline.deploy import refuse_lost_store

    spec = settings.load_spec(plan.dataset)
    registry = Registry(settings)
    # a store that lost its state failed the check, not the model: nothing moves (ModelStoreLostError)
    refuse_lost_store(settings, registry, spec, "then deploy again; nothing was rolled back", deployed.version)
    if registry.versions.alias(spec, CHAMPION) != deployed.version:
        return f"v{deployed.version} is not the champion, so nothing to roll back"
    try:
        back = rollback(settings, plan.dataset, "previous", ctx, f"automatic: deploy check failed: {error}", AUTOMATIC)
    except LookupError as none:  # the first model: there is nothing to go back to
        return f"no rollback ({none})"
    return f"rolled back from v{back.from_version} to v{back.to_version}"


def _target(registry: Registry, spec: DatasetSpec, current: str, target: str) -> str:
    """``target`` as a version number that exists; "previous" is what ``current`` replaced."""
    if target == "previous":
        previous = schema.read_previous_champion(registry.versions.tags(spec, current))
        if previous is None:
            raise LookupError(f"{spec.model_name} v{current} replaced no earlier champion: no 'previous' to go back to")
        target = previous
    if not target.isdigit():
        raise ValueError(f"rollback target must be a version number or 'previous', got {target!r}")
    if not registry.versions.exists(spec, target):
        raise LookupError(f"{spec.model_name} has no version {target}")
    return target


def rollback(settings: Settings, dataset: str, target: str, ctx: RunContext, reason: str, who: str) -> Rollback:
    """Serve an earlier version again: ``target`` is a version number or "previous" (the version
    the current champion replaced). The version is (re)deployed if needed and verified from
    the store; then, under the model's lock, the rollback is recorded as pending on the
    registered model, the ``champion`` alias moves by compare-and-set, the ``stable`` label
    follows, who, why and when are recorded on both versions and, for the Airflow run, on the
    registered model (``rollback.done.<run>``), and the pending record goes.
    A rollback that was cut off half way (a killed task) is finished first; "previous" then
    means what the champion replaced when that rollback started. A rerun of an Airflow run whose
    rollback finished (killed before Airflow recorded its success, or cleared) moves nothing and
    answers what that rollback did: a run never goes two steps."""
    spec = settings.load_spec(dataset)
    registry = Registry(settings)
    model_tags = registry.versions.model_tags(spec)
    pending = schema.read_rollback_pending(model_tags)
    finished = _finished(settings, spec, model_tags, ctx)
    if finished is not None:
        return finished
    current = pending.from_version if pending else registry.versions.alias(spec, CHAMPION)
    if current is None:
        raise LookupError(f"{spec.model_name} has no champion: nothing to roll back from")
    target = _target(registry, spec, current, target)
    location, diff = _in_store(settings, registry, spec, target)
    with registry.versions.exclusive(spec, f"rollback to v{target}"):
        finished = _finished(settings, spec, registry.versions.model_tags(spec), ctx)  # a twin of this run's
        if finished is not None:
            return finished
        if pending and pending.to_version != target:  # finish the one cut off, then go where asked
            _move(settings, registry, spec, pending)
        step = (
            pending
            if pending and pending.to_version == target
            else schema.RollbackPending(
                from_version=registry.versions.alias(spec, CHAMPION) or current,
                to_version=target,
                reason=reason,
                by=who,
                airflow_run_id=ctx.run_id,
                location=location,
                dag_id=ctx.dag_id,
                max_abs_diff=diff,
            )
        )
        labels = _move(settings, registry, spec, step, asked_by=ctx)
    log.warning(
        "%s rolled back from v%s to v%s by %s: %s", spec.model_name, step.from_version, target, step.by, step.reason
    )
    return Rollback(
        from_version=step.from_version,
        to_version=target,
        labels=labels,
        max_abs_diff=diff,
        by=step.by,
        reason=step.reason,
    )


def _in_store(settings: Settings, registry: Registry, spec: DatasetSpec, version: str) -> tuple[str, float]:
    """``version`` (re)published into the model store and its copy there checked against the
    registry model: its folder, and the largest difference of their answers."""
    from retrainer.serving import export

    model = registry.models.load_keras(spec, version)
    tags = registry.versions.tags(spec, version)
    # a folder published again holds the TFLite model the version served, if it served one
    lite = export.tflite_to_republish(settings, spec, version, tags.get(schema.DEPLOY_ARTIFACT))
    deployed = export.deploy(settings, spec, version, model, lite)
    # any rows compare the store's copy with the registry model; the version's holdout is at hand
    data = schema.read_data(tags)
    store = DataRegistry(settings)
    sample = store.read_periods(spec, store.resolve(spec.name, data.version), data.holdout_periods)
    diff = export.verify(settings, spec, deployed.location, model, sample.iloc[: spec.deploy.check_rows])
    artifact = export.served_artifact(settings, spec, version, deployed.location)
    if tags.get(schema.DEPLOY_ARTIFACT) != artifact:  # what serves it now, if that changed
        registry.versions.tag(spec, version, {schema.DEPLOY_ARTIFACT: artifact})
    return deployed.location, diff


def _finished(settings: Settings, spec: DatasetSpec, model_tags: dict[str, str], ctx: RunContext) -> Rollback | None:
    """What this Airflow run's rollback did, if it finished; None while it has not (or is pending:
    then it is finished by going on)."""
    done = schema.read_rollback_done(model_tags, ctx.dag_id, ctx.run_id)
    pending = schema.read_rollback_pending(model_tags)
    if done is None or (pending is not None and pending.airflow_run_id == ctx.run_id):
        return None
    entry = modelstore.read_config(settings.model_store, settings.s3_endpoint_url).get(spec.model_name)
    log.warning(
        "%s: run %s of %s rolled back from v%s to v%s at %s already; nothing moves again",
        spec.model_name,
        ctx.run_id,
        ctx.dag_id,
        done.from_version,
        done.to_version,
        done.at,
    )
    return Rollback(
        from_version=done.from_version,
        to_version=done.to_version,
        labels=dict(entry.labels) if entry else {},
        max_abs_diff=math.nan if done.max_abs_diff is None else done.max_abs_diff,
        by=done.by,
        reason=done.reason,
    )


def _move(
    settings: Settings,
    registry: Registry,
    spec: DatasetSpec,
    step: schema.RollbackPending,
    asked_by: RunContext | None = None,
) -> dict[str, int]:
    """Alias, label and records to ``step.to_version``, each step safe to repeat (the caller holds
    the model's lock). The pending record is written first and removed last, after the record
    of what the step's run did (and the run that ``asked_by`` names, when it finishes another
    run's step that went where it asks)."""
    from retrainer import faults
    from retrainer.serving import postdeploy

    registry.versions.set_model_tag(spec, schema.ROLLBACK_PENDING, step.to_json())
    faults.point("rollback:pending")
    if registry.versions.alias(spec, CHAMPION) != step.to_version:
        registry.versions.promote(spec, step.to_version, expected_champion=registry.versions.alias(spec, CHAMPION))
    faults.point("rollback:alias")
    wait = postdeploy.waiter(settings, spec)  # the server clients use loads it before the label moves
    labels = modelstore.set_label(
        settings.model_store, spec.model_name, STABLE, int(step.to_version), settings.s3_endpoint_url, wait
    )
    modelstore.unload_unlabelled(settings.model_store, spec.model_name, settings.s3_endpoint_url)
    faults.point("rollback:label")
    when = schema.timestamp()
    tags = schema.rollback_tags(step.from_version, step.reason, step.by, when, step.airflow_run_id, step.location)
    registry.versions.tag(spec, step.to_version, {**tags, schema.DEPLOY_LABEL: STABLE})
    if step.from_version != step.to_version:
        registry.versions.tag(spec, step.from_version, schema.rolled_back_tags(step.to_version, step.by, when))
    runs = {(step.dag_id, step.airflow_run_id)} if step.dag_id else set()  # older records name no DAG
    if asked_by is not None:
        runs.add((asked_by.dag_id, asked_by.run_id))
    for dag_id, run_id in sorted(runs):
        done = schema.RollbackDone(
            dag_id, run_id, step.from_version, step.to_version, step.reason, step.by, when, step.max_abs_diff
        )
        registry.versions.set_model_tag(spec, schema.rollback_done_tag(dag_id, run_id), done.to_json())
    registry.versions.delete_model_tag(spec, schema.ROLLBACK_PENDING)
    faults.point("rollback:done")
    return labels
