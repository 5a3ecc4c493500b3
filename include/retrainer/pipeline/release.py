"""Release: register the candidate with its evidence, then promote it (or not).

register -> (review, in the adapter) -> promote. ``champion`` moves by compare-and-set
against the champion the gate compared with; if somebody moved it meanwhile, the candidate
is evaluated again, under the model's lock, and promoted only if it passes again. Every
candidate ends with a decision recorded on its version (``promotion.*`` tags), and the first
one stands.
"""

from __future__ import annotations

import logging

from retrainer import faults, schema
from retrainer.outcomes import Refused
from retrainer.records import (
    DriftSummary,
    Evaluation,
    Promotion,
    RegisteredVersion,
    RunContext,
    TrainedRun,
    TrainingPlan,
)
from retrainer.registry import links
from retrainer.registry.client import Registry
from retrainer.registry.versions import ChampionMovedError
from retrainer.schema import CHALLENGER, CHAMPION
from retrainer.settings import Settings
from retrainer.spec.dataset import DatasetSpec

log = logging.getLogger(__name__)


class ReviewPendingError(Refused, RuntimeError):
    """Policy ``review``: no reviewer has approved this version, so it must not be promoted."""


def register(
    settings: Settings,
    plan: TrainingPlan,
    trained: TrainedRun,
    evaluation: Evaluation,
    ctx: RunContext,
    drift: DriftSummary | None = None,
) -> RegisteredVersion:
    """Register the run's model once, with its evidence as version tags, as ``challenger``."""
    spec = settings.load_spec(plan.dataset)
    registry = Registry(settings)
    tags = {
        **schema.context_tags(ctx),
        schema.VERSION_RUN_ID: trained.run_id,
        **schema.data_tags(plan),
        schema.GX_SUCCESS: "true",
        **schema.gate_tags(evaluation),
        **schema.drift_tags(drift),
    }
    if plan.backfill:  # a model of the past: evidence only, never a candidate for production
        tags.update({schema.BACKFILL: "true", schema.PROMOTION_DECISION: schema.NOT_CONSIDERED_BACKFILL})
    version, created = registry.versions.register(spec, trained.run_id, trained.model_uri, tags)
    if (
        not plan.backfill
        and registry.versions.alias(spec, CHAMPION) != version
        and schema.PROMOTION_DECISION not in registry.versions.tags(spec, version)
    ):
        registry.versions.set_alias(spec, CHALLENGER, version)
    log.info("%s v%s %s", spec.model_name, version, "registered" if created else "was already registered")
    return RegisteredVersion(model_name=spec.model_name, version=version, created=created)


def review_links(settings: Settings, spec: DatasetSpec, version: str, airflow_url: str) -> dict[str, str]:
    """Where a reviewer reads the evidence: the version and its run in MLflow, the evaluation
    report, and the Airflow run that asks."""
    registry = Registry(settings)
    run_id = registry.versions.tags(spec, version).get(schema.VERSION_RUN_ID, "")
    ui = settings.mlflow_ui_url
    exp = registry.runs.experiment_id(spec)
    return {
        "Model version in MLflow": links.mlflow_model_version(ui, spec.model_name, version),
        "Evaluation report": links.mlflow_artifacts(ui, exp, run_id, schema.ARTIFACT_EVALUATION_REPORT)
        if run_id
        else "",
        "MLflow run": links.mlflow_run(ui, exp, run_id) if run_id else "",
        "Airflow run": airflow_url,
    }


def promote(
    settings: Settings,
    plan: TrainingPlan,
    evaluation: Evaluation,
    registered: RegisteredVersion,
    trained: TrainedRun | None = None,
) -> Promotion:
    """Move ``champion`` to the candidate when the gate passed (and, under policy ``review``,
    a reviewer approved). ``champion`` moves by compare-and-set against the version the gate
    compared with; if it moved meanwhile, the candidate is evaluated again against the new
    champion (needs ``trained``) under the model's lock, so that nobody moves the champion
    before this evaluation decides, and promoted only if it passes. Every candidate ends with
    its decision recorded: candidates racing each other end on one champion, each of the
    others rejected against it (a tie is no improvement)."""
    spec = settings.load_spec(plan.dataset)
    registry = Registry(settings)
    version = registered.version
    tags = registry.versions.tags(spec, version)
    if schema.PROMOTION_DECISION in tags:
        log.info("%s v%s: decision already recorded (%s)", spec.model_name, version, tags[schema.PROMOTION_DECISION])
        return Promotion(
            promoted=tags[schema.PROMOTION_DECISION] == schema.PROMOTED,
            version=version,
            previous_champion=schema.read_previous_champion(tags),
            reused=True,
        )
    by = _decided_by(spec, version, tags, evaluation)
    if not evaluation.passed:
        return _reject(registry, spec, version, evaluation, by, reevaluated=False)
    already = registry.versions.alias(spec, CHAMPION) == version  # a retry after the alias moved
    try:
        previous = registry.versions.promote(spec, version, evaluation.champion_version)
    except ChampionMovedError as moved:
        if trained is None:
            raise
        # evaluated again while nobody can move the champion: this one evaluation decides
        with registry.versions.exclusive(spec, f"evaluate v{version} again"):
            evaluation = _reevaluate(settings, registry, spec, plan, trained, version, moved)
            if not evaluation.passed:
                return _reject(registry, spec, version, evaluation, by, reevaluated=True)
            # what it replaces, written before the alias moves: a retry holds the first evaluation only
            replacing = {schema.PROMOTION_PREVIOUS_CHAMPION: evaluation.champion_version or schema.NONE}
            registry.versions.tag(spec, version, replacing)
            previous = registry.versions.promote(spec, version, evaluation.champion_version)
    faults.point("promote:alias")  # champion moved, the decision not yet recorded
    if already and schema.PROMOTION_PREVIOUS_CHAMPION in tags:  # it moved on a re-evaluation
        previous = schema.read_previous_champion(tags)
    registry.versions.tag(spec, version, schema.promoted_tags(by, previous))
    log.info("%s v%s is champion (previous: %s)", spec.model_name, version, previous or "none")
    return Promotion(promoted=True, version=version, previous_champion=previous)


def _decided_by(spec: DatasetSpec, version: str, tags: dict[str, str], evaluation: Evaluation) -> str:
    """Who decides: the policy, or (policy ``review``) the reviewer who approved; refuses without one."""
    from retrainer.registry import approval

    if spec.approval.policy != "review" or not evaluation.passed:
        return "policy:auto"
    review = approval.recorded(tags)
    if review is None or not review.approved:
        raise ReviewPendingError(
            f"{spec.model_name} v{version}: policy is review and no reviewer approved it "
            f"({schema.APPROVAL_DECISION}={tags.get(schema.APPROVAL_DECISION, 'none')}); not promoting"
        )
    return f"review:{review.via}:{review.reviewer}"


def _reject(
    registry: Registry, spec: DatasetSpec, version: str, evaluation: Evaluation, by: str, reevaluated: bool
) -> Promotion:
    reason = " | ".join(evaluation.reasons)
    if reevaluated:
        reason = f"re-evaluated against champion v{evaluation.champion_version}: {reason}"
    registry.versions.tag(spec, version, schema.rejected_tags(by, reason))
    registry.versions.drop_alias(spec, CHALLENGER, version)
    log.warning("%s v%s not promoted: %s", spec.model_name, version, reason)
    return Promotion(promoted=False, version=version, previous_champion=evaluation.champion_version)


def _reevaluate(
    settings: Settings,
    registry: Registry,
    spec: DatasetSpec,
    plan: TrainingPlan,
    trained: TrainedRun,
    version: str,
    moved: ChampionMovedError,
) -> Evaluation:
    """The candidate against the champion that is there now (the caller holds the model's lock,
    so it stays there until the decision); the version's gate tags follow."""
    from retrainer.pipeline.evaluate import evaluate

    log.warning("%s; evaluating v%s again against the new champion", moved, version)
    evaluation = evaluate(settings, plan, trained)
    note = f"champion moved to v{evaluation.champion_version} before promotion; evaluated again against it"
    registry.versions.tag(spec, version, {**schema.gate_tags(evaluation), schema.PROMOTION_REEVALUATED: note})
    return evaluation
