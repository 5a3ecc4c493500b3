"""retrain_model's register, review (the parts ``ModelReviewOperator`` calls) and promote tasks."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from retrainer.outcomes import NothingToDo
from retrainer_airflow.tasks.boundary import record_task
from retrainer_airflow.tasks.runtime import airflow_ui_url, run_context, settings

if TYPE_CHECKING:
    from retrainer.records import (
        Evaluation,
        Promotion,
        RegisteredVersion,
        RetrainConf,
        ReviewDecision,
        TrainedRun,
        TrainingPlan,
    )
    from retrainer.registry.approval import ReviewRequest

log = logging.getLogger(__name__)


@record_task
def register(plan: TrainingPlan, trained: TrainedRun, evaluated: Evaluation, params: RetrainConf) -> RegisteredVersion:
    """Register the run's model once (a retry never makes a second version), with the evidence as
    version tags (the drift summary too, when drift started the run) and alias ``challenger``."""
    from retrainer.pipeline import release
    from retrainer.records import DriftSummary

    drift = None if params.drift == DriftSummary() else params.drift  # an empty drift Param says nothing
    return release.register(settings(), plan, trained, evaluated, run_context(params.reason), drift)


def skip_if_backfill(plan: TrainingPlan) -> None:
    if plan.backfill:
        raise NothingToDo("a backfill run registers and evaluates; it never promotes nor deploys")


def review_request(
    plan: TrainingPlan, evaluation: Evaluation, registered: RegisteredVersion
) -> ReviewDecision | ReviewRequest:
    """What the review asks (a ``ReviewRequest``), or, when nothing needs asking, the decision
    that stands (a ``ReviewDecision``): policy ``auto``, a gate that already failed, or a decision
    recorded earlier (first answer)."""
    from retrainer.pipeline import release
    from retrainer.records import ReviewDecision
    from retrainer.registry import approval
    from retrainer.registry.client import Registry

    skip_if_backfill(plan)
    s = settings()
    spec = s.load_spec(plan.dataset)
    first = approval.recorded(Registry(s).versions.tags(spec, registered.version))
    if first is not None:
        log.info(
            "decision already recorded on v%s: %s by %s via %s",
            registered.version,
            first.decision,
            first.reviewer,
            first.via,
        )
        return first
    if spec.approval.policy == "auto":
        return ReviewDecision("auto", evaluation.passed, "policy", "policy:auto")
    if not evaluation.passed:
        return ReviewDecision("gate failed", False, "gate", "gate")
    links = release.review_links(s, spec, registered.version, airflow_ui_url())
    return approval.request(s, spec, registered.version, evaluation, links)


def record_answer(dataset: str, version: str, approved: bool, reviewer: str, via: str) -> ReviewDecision:
    """Record an answer on ``dataset``'s model version ``version``; the first answer stands (the
    review's trigger records it as it comes, the resumed task again: the same decision)."""
    from retrainer.registry import approval

    s = settings()
    answer = approval.APPROVED if approved else approval.REJECTED
    return approval.record(s, s.load_spec(dataset), version, answer, reviewer, via)


@record_task
def promote(plan: TrainingPlan, trained: TrainedRun, evaluated: Evaluation, registered: RegisteredVersion) -> Promotion:
    """Move ``champion`` to the candidate when the gate passed (and a reviewer approved, under
    review), by compare-and-set; a losing candidate stays registered with why it lost."""
    from retrainer.pipeline import release

    skip_if_backfill(plan)
    return release.promote(settings(), plan, evaluated, registered, trained)
