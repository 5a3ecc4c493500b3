"""Rollback: serve an earlier model version again, on purpose (``rollback_model``) or on its
own after a failed deploy check (``verify``), with alias, label and record moved together."""

from __future__ import annotations

import logging

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
    back (alias and label). Returns what happened, in words, for the failure message."""
    spec = settings.load_spec(plan.dataset)
    if Registry(settings).versions.alias(spec, CHAMPION) != deployed.version:
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
    follows, who, why and when are recorded on both versions, and the pending record goes.
    A rollback that was cut off half way (a killed task) is finished first; "previous" then
    means what the champion replaced when that rollback started, so it never goes two steps."""
    from retrainer.serving import export

    spec = settings.load_spec(dataset)
    registry = Registry(settings)
    pending = schema.read_rollback_pending(registry.versions.model_tags(spec))
    current = pending.from_version if pending else registry.versions.alias(spec, CHAMPION)
    if current is None:
        raise LookupError(f"{spec.model_name} has no champion: nothing to roll back from")
    target = _target(registry, spec, current, target)
    model = registry.models.load_keras(spec, target)
    tags = registry.versions.tags(spec, target)
    # a folder published again holds the TFLite model the version served, if it served one
    lite = export.tflite_to_republish(settings, spec, target, tags.get(schema.DEPLOY_ARTIFACT))
    deployed = export.deploy(settings, spec, target, model, lite)
    # any rows compare the store's copy with the registry model; the version's holdout is at hand
    data = schema.read_data(tags)
    store = DataRegistry(settings)
    sample = store.read_periods(spec, store.resolve(dataset, data.version), data.holdout_periods)
    diff = export.verify(settings, spec, deployed.location, model, sample.iloc[: spec.deploy.check_rows])
    artifact = export.served_artifact(settings, spec, target, deployed.location)
    if tags.get(schema.DEPLOY_ARTIFACT) != artifact:  # what serves it now, if that changed
        registry.versions.tag(spec, target, {schema.DEPLOY_ARTIFACT: artifact})
    with registry.versions.exclusive(spec, f"rollback to v{target}"):
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
                location=deployed.location,
            )
        )
        labels = _move(settings, registry, spec, step)
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


def _move(settings: Settings, registry: Registry, spec: DatasetSpec, step: schema.RollbackPending) -> dict[str, int]:
    """Alias, label and records to ``step.to_version``, each step safe to repeat (the caller holds
    the model's lock). The pending record is written first and removed last."""
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
    registry.versions.delete_model_tag(spec, schema.ROLLBACK_PENDING)
    return labels
