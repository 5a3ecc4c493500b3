"""Who decides that a candidate goes to production: the approval policy of the dataset spec.

``auto``: a candidate that passes the gate is promoted. ``review``: a reviewer decides, on
the evidence (gate, metric deltas, slice table, GX result, drift summary, evaluation
report), either in the Airflow UI (the retraining run waits on a Human-in-the-loop
approval) or in the MLflow UI by setting the version tag ``approval`` to ``approved`` or
``rejected`` (and, to be named, ``approval.reviewer``). Whichever answer comes first
decides; a later answer on the other side changes nothing. No answer before the deadline
(``approval.timeout_hours`` after the request) means rejected.

The decision is recorded on the model version: ``approval.decision`` (approved |
rejected), ``approval.reviewer``, ``approval.via`` (airflow | mlflow | timeout),
``approval.at``, ``approval.reason`` (and ``approval`` itself, when the answer came from
Airflow or the clock, so the MLflow UI shows it in the same place); a
rejection also as ``promotion.decision=rejected`` with ``promotion.reason``, and the
version loses the ``challenger`` alias. Nothing here imports Airflow.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from retrainer import schema
from retrainer.model.evaluation import worse_by
from retrainer.records import Evaluation, ReviewDecision
from retrainer.registry.client import Registry
from retrainer.schema import APPROVED, CHALLENGER, REJECTED
from retrainer.settings import Settings
from retrainer.spec.dataset import DatasetSpec

log = logging.getLogger(__name__)

DECISIONS = (APPROVED, REJECTED)


@dataclass(frozen=True)
class ReviewRequest:
    """What a reviewer is asked, and until when."""

    model_name: str
    version: str
    subject: str
    body: str
    requested_at: str
    deadline: str
    tracking_uri: str


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def decision(value: str, reviewer: str, via: str, at: str = "", reason: str = "") -> ReviewDecision:
    return ReviewDecision(decision=value, approved=value == APPROVED, via=via, reviewer=reviewer, at=at, reason=reason)


def recorded(tags: dict[str, str]) -> ReviewDecision | None:
    """The decision already recorded on a version (the first answer), if any."""
    if tags.get(schema.APPROVAL_DECISION) in DECISIONS:
        return decision(
            tags[schema.APPROVAL_DECISION],
            tags.get(schema.APPROVAL_REVIEWER, ""),
            tags.get(schema.APPROVAL_VIA, ""),
            tags.get(schema.APPROVAL_AT, ""),
            tags.get(schema.APPROVAL_REASON, ""),
        )
    return None


def mlflow_answer(tags: dict[str, str]) -> tuple[str, str] | None:
    """A reviewer's answer set in the MLflow UI: (decision, reviewer), or None while there is none.
    Values are read case-insensitively; anything other than approved/rejected is no answer."""
    value = (tags.get(schema.APPROVAL) or "").strip().lower()
    if value not in DECISIONS:
        if value:
            log.warning(
                "version tag %s=%r is neither 'approved' nor 'rejected'; still waiting",
                schema.APPROVAL,
                tags[schema.APPROVAL],
            )
        return None
    return value, (tags.get(schema.APPROVAL_REVIEWER) or "").strip() or "unnamed MLflow user"


def names_reviewer(tags: dict[str, str]) -> bool:
    """Whether the version's tags name the reviewer of an MLflow answer."""
    return bool((tags.get(schema.APPROVAL_REVIEWER) or "").strip())


def _fmt(value: Any, digits: int = 4) -> str:
    return f"{value:.{digits}g}" if isinstance(value, (int, float)) else str(value)


def _slice_table(evaluation: Evaluation) -> list[str]:
    """The slices judged against the champion, each change said as better or worse, and by how much."""
    judged = [s for s in evaluation.slices if s.champion is not None]
    if not judged:
        return []
    lines = ["", "| slice | rows | candidate | champion | against the champion |", "|---|---|---|---|---|"]
    for s in judged:
        lines.append(
            f"| {s.feature}={s.value} | {s.rows} | {_fmt(s.candidate)} | {_fmt(s.champion)} | "
            + worse_by(s.regression, 1)
            + (" **FAILED**" if s.failed else "")
            + " |"
        )
    return lines


def evidence_markdown(
    spec: DatasetSpec, version: str, tags: dict[str, str], evaluation: Evaluation, links: dict[str, str]
) -> str:
    """The body of the review request: what a reviewer needs to decide, with links."""
    metric = evaluation.metric
    champion = evaluation.champion_version
    data = schema.read_data(tags)
    gx = tags.get(schema.GX_SUCCESS, "?")
    lines = [
        f"**{spec.model_name} v{version}** passed the gate and waits for a decision.",
        "",
        f"| {metric} on holdout {','.join(data.holdout_periods)} | value |",
        "|---|---|",
        f"| candidate v{version} | {_fmt(evaluation.candidate)} |",
        f"| champion {'v' + champion if champion else '(none yet)'} | "
        f"{_fmt(evaluation.champion, 4) if champion else '-'} |",
        f"| naive baseline | {_fmt(evaluation.baseline)} |",
        "",
        "Gate: " + "; ".join(evaluation.reasons),
        *_slice_table(evaluation),
        "",
        f"Data: {data.version or '?'} (rev {(data.rev or '?')[:10]}), trained on "
        f"{','.join(data.train_periods) or '?'}; GX validation of the window: " + ("passed" if gx == "true" else gx),
        "",
        f"Started by: {tags.get(schema.TRIGGER, '?')}"
        + (f"; drift: {tags[schema.DRIFT_REASON]}" if tags.get(schema.DRIFT_REASON) else ""),
        "",
        " · ".join(f"[{name}]({url})" for name, url in links.items() if url),
        "",
        f"Answer here, or in MLflow: set the version tag `{schema.APPROVAL}` to `approved` or `rejected` "
        f"(and `{schema.APPROVAL_REVIEWER}` to your name). The first answer decides.",
    ]
    return "\n".join(lines)


def request(
    settings: Settings, spec: DatasetSpec, version: str, evaluation: Evaluation, links: dict[str, str]
) -> ReviewRequest:
    """Ask for a review of ``version``; the deadline is fixed when it is first asked, so a retry
    or a cleared task waits for the same deadline, not a new one."""
    registry = Registry(settings)
    tags = registry.versions.tags(spec, version)
    requested = tags.get(schema.APPROVAL_REQUESTED_AT)
    if not requested:
        requested = _now().isoformat()
        registry.versions.tag(
            spec, version, {schema.APPROVAL_REQUESTED_AT: requested, schema.APPROVAL_STATUS: "pending"}
        )
    deadline = datetime.fromisoformat(requested) + timedelta(hours=spec.approval.timeout_hours)
    registry.versions.tag(spec, version, {schema.APPROVAL_DEADLINE: deadline.isoformat()})
    return ReviewRequest(
        model_name=spec.model_name,
        version=version,
        subject=f"Promote {spec.model_name} v{version} to production?",
        body=evidence_markdown(spec, version, tags, evaluation, links),
        requested_at=requested,
        deadline=deadline.isoformat(),
        tracking_uri=settings.mlflow_tracking_uri,
    )


def record(
    settings: Settings, spec: DatasetSpec, version: str, answer: str, reviewer: str, via: str, reason: str = ""
) -> ReviewDecision:
    """Record the first answer on the version; a later, different answer is logged and ignored."""
    if answer not in DECISIONS:
        raise ValueError(f"decision must be one of {DECISIONS}, got {answer!r}")
    registry = Registry(settings)
    first = recorded(registry.versions.tags(spec, version))
    if first is not None:
        if first.decision != answer:
            log.warning(
                "%s v%s: %s via %s ignored; %s by %s via %s came first",
                spec.model_name,
                version,
                answer,
                via,
                first.decision,
                first.reviewer,
                first.via,
            )
        return first
    at = _now().isoformat()
    if not reason:
        reason = {
            "timeout": f"no answer by the deadline ({spec.approval.timeout_hours:g} h after the request)",
        }.get(via, f"{answer} by {reviewer} in {via}")
    tags = {
        schema.APPROVAL_DECISION: answer,
        schema.APPROVAL_REVIEWER: reviewer,
        schema.APPROVAL_VIA: via,
        schema.APPROVAL_AT: at,
        schema.APPROVAL_REASON: reason,
        schema.APPROVAL_STATUS: answer,
    }
    if via != "mlflow":
        tags[schema.APPROVAL] = answer
    if answer == REJECTED:
        tags.update(schema.rejected_tags(f"{via}:{reviewer}", f"review: {reason}", at))
    registry.versions.tag(spec, version, tags)
    if answer == REJECTED:
        registry.versions.drop_alias(spec, CHALLENGER, version)
    log.warning("%s v%s %s by %s via %s: %s", spec.model_name, version, answer, reviewer, via, reason)
    return decision(answer, reviewer, via, at, reason)
