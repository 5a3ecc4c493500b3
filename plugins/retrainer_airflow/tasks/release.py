"""retrain_model's register, review (the parts ``ModelReviewOperator`` calls) and promote tasks."""

from __future__ import annotations

import logging

from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from retrainer.records import DriftSummary, Evaluation, RegisteredVersion, ReviewDecision, TrainedRun, TrainingPlan
from retrainer_airflow.tasks.runtime import Json, airflow_ui_url, params, read, run_context, settings

log = logging.getLogger(__name__)


def register(plan: Json, trained: Json, evaluated: Json) -> Json:
    from retrainer.pipeline import release

    drift = params().get("drift")
    return release.register(
        settings(),
        read(TrainingPlan, plan, "plan_training"),
        read(TrainedRun, trained, "train"),
        read(Evaluation, evaluated, "evaluate"),
        run_context(),
        read(DriftSummary, drift, "the drift Param") if drift else None,
    ).to_json()


def skip_if_backfill(plan: TrainingPlan) -> None:
    if plan.backfill:
        raise AirflowSkipException("a backfill run registers and evaluates; it never promotes nor deploys")


def review_request(plan: Json, evaluated: Json, registered: Json) -> Json:
    """What the review task asks (an ``approval.ReviewRequest``), or, when nothing needs asking,
    the decision that stands (a ``ReviewDecision``): policy ``auto``, a gate that already
    failed, or a decision recorded earlier (first answer)."""
    from retrainer.pipeline import release
    from retrainer.registry import approval
    from retrainer.registry.client import Registry

    planned = read(TrainingPlan, plan, "plan_training")
    evaluation = read(Evaluation, evaluated, "evaluate")
    version = read(RegisteredVersion, registered, "register").version
    skip_if_backfill(planned)
    s = settings()
    spec = s.load_spec(planned.dataset)
    first = approval.recorded(Registry(s).versions.tags(spec, version))
    if first is not None:
        log.info(
            "decision already recorded on v%s: %s by %s via %s", version, first.decision, first.reviewer, first.via
        )
        return first.to_json()
    if spec.approval.policy == "auto":
        return ReviewDecision("auto", evaluation.passed, "policy", "policy:auto").to_json()
    if not evaluation.passed:
        return ReviewDecision("gate failed", False, "gate", "gate").to_json()
    links = release.review_links(s, spec, version, airflow_ui_url())
    return approval.request(s, spec, version, evaluation, links).to_dict()


def dataset_of(plan: Json) -> str:
    """The dataset a training plan is for."""
    return read(TrainingPlan, plan, "plan_training").dataset


def record_review(plan: Json, registered: Json, approved: bool, reviewer: str, via: str) -> Json:
    """Record the reviewer's answer (or the timeout) on the version; the first answer stands."""
    version = read(RegisteredVersion, registered, "register").version
    return record_answer(dataset_of(plan), version, approved, reviewer, via)


def record_answer(dataset: str, version: str, approved: bool, reviewer: str, via: str) -> Json:
    """Record an answer on ``dataset``'s model version ``version``; the first answer stands (the
    review's trigger records it as it comes, the resumed task again: the same decision)."""
    from retrainer.registry import approval

    s = settings()
    answer = approval.APPROVED if approved else approval.REJECTED
    return approval.record(s, s.load_spec(dataset), version, answer, reviewer, via).to_json()


def promote(plan: Json, trained: Json, evaluated: Json, registered: Json) -> Json:
    from retrainer.pipeline import release

    planned = read(TrainingPlan, plan, "plan_training")
    skip_if_backfill(planned)
    try:
        return release.promote(
            settings(),
            planned,
            read(Evaluation, evaluated, "evaluate"),
            read(RegisteredVersion, registered, "register"),
            read(TrainedRun, trained, "train"),
        ).to_json()
    except release.ReviewPendingError as exc:
        raise AirflowFailException(str(exc)) from exc
