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
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from retrainer.config import DatasetSpec, Settings
from retrainer.registry import CHALLENGER, Registry

log = logging.getLogger(__name__)

APPROVED = "approved"
REJECTED = "rejected"
DECISIONS = (APPROVED, REJECTED)
TAG = "approval"  # the tag a reviewer sets in the MLflow UI
REVIEWER_TAG = "approval.reviewer"
DECISION_TAG = "approval.decision"  # present once a decision is recorded: the first answer


@dataclass(frozen=True)
class Decision:
    decision: str  # approved | rejected
    reviewer: str
    via: str  # airflow | mlflow | timeout | policy
    at: str
    reason: str = ""

    @property
    def approved(self) -> bool:
        return self.decision == APPROVED

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "approved": self.approved}


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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def recorded(tags: dict[str, str]) -> Decision | None:
    """The decision already recorded on a version (the first answer), if any."""
    if tags.get(DECISION_TAG) in DECISIONS:
        return Decision(tags[DECISION_TAG], tags.get(REVIEWER_TAG, ""), tags.get("approval.via", ""),
                        tags.get("approval.at", ""), tags.get("approval.reason", ""))  # fmt: skip
    return None


def mlflow_answer(tags: dict[str, str]) -> tuple[str, str] | None:
    """A reviewer's answer set in the MLflow UI: (decision, reviewer), or None while there is none.
    Values are read case-insensitively; anything other than approved/rejected is no answer."""
    value = (tags.get(TAG) or "").strip().lower()
    if value not in DECISIONS:
        if value:
            log.warning("version tag %s=%r is neither 'approved' nor 'rejected'; still waiting", TAG, tags[TAG])
        return None
    return value, (tags.get(REVIEWER_TAG) or "").strip() or "unnamed MLflow user"


def _fmt(value: Any, digits: int = 4) -> str:
    return f"{value:.{digits}g}" if isinstance(value, (int, float)) else str(value)


def evidence_markdown(
    spec: DatasetSpec, version: str, tags: dict[str, str], evaluated: dict[str, Any], links: dict[str, str]
) -> str:
    """The body of the review request: what a reviewer needs to decide, with links."""
    metric = evaluated["metric"]
    champion = evaluated.get("champion_version")
    lines = [
        f"**{spec.model_name} v{version}** passed the gate and waits for a decision.",
        "",
        f"| {metric} on holdout {tags.get('data.holdout_periods', '')} | value |",
        "|---|---|",
        f"| candidate v{version} | {_fmt(evaluated['candidate'])} |",
        f"| champion {'v' + champion if champion else '(none)'} | {_fmt(evaluated.get('champion'), 4)} |",
        f"| naive baseline | {_fmt(evaluated['baseline'])} |",
        "",
        "Gate: " + "; ".join(evaluated.get("reasons", [])),
    ]
    judged = [s for s in evaluated.get("slices", []) if s.get("champion") is not None]
    if judged:
        lines += ["", "| slice | rows | candidate | champion | change |", "|---|---|---|---|---|"]
        for s in judged:
            change = s.get("change")
            lines.append(
                f"| {s['feature']}={s['value']} | {s['rows']} | {_fmt(s['candidate'])} | {_fmt(s['champion'])} | "
                + ("n/a" if change is None else f"{change:+.1%}")
                + (" **FAILED**" if s.get("failed") else "")
                + " |"
            )
    lines += [
        "",
        f"Data: {tags.get('data.version', '?')} (rev {tags.get('data.rev', '?')[:10]}), trained on "
        f"{tags.get('data.train_periods', '?')}; GX validation of the window: "
        + ("passed" if tags.get("gx.success") == "true" else tags.get("gx.success", "?")),
        f"Started by: {tags.get('retrainer.trigger', '?')}"
        + (f"; drift: {tags['drift.reason']}" if tags.get("drift.reason") else ""),
        "",
        " · ".join(f"[{name}]({url})" for name, url in links.items() if url),
        "",
        f"Answer here, or in MLflow: set the version tag `{TAG}` to `approved` or `rejected` "
        f"(and `{REVIEWER_TAG}` to your name). The first answer decides.",
    ]
    return "\n".join(lines)


def request(settings: Settings, spec: DatasetSpec, version: str, evaluated: dict[str, Any],
            links: dict[str, str]) -> ReviewRequest:  # fmt: skip
    """Ask for a review of ``version``; the deadline is fixed when it is first asked, so a retry
    or a cleared task waits for the same deadline, not a new one."""
    registry = Registry(settings)
    tags = registry.version_tags(spec, version)
    requested = tags.get("approval.requested_at")
    if not requested:
        requested = _now().isoformat()
        registry.tag_version(spec, version, {"approval.requested_at": requested, "approval.status": "pending"})
    deadline = datetime.fromisoformat(requested) + timedelta(hours=spec.approval.timeout_hours)
    registry.tag_version(spec, version, {"approval.deadline": deadline.isoformat()})
    return ReviewRequest(
        model_name=spec.model_name,
        version=version,
        subject=f"Promote {spec.model_name} v{version} to production?",
        body=evidence_markdown(spec, version, tags, evaluated, links),
        requested_at=requested,
        deadline=deadline.isoformat(),
        tracking_uri=settings.mlflow_tracking_uri,
    )


def record(settings: Settings, spec: DatasetSpec, version: str, decision: str, reviewer: str, via: str,
           reason: str = "") -> Decision:  # fmt: skip
    """Record the first answer on the version; a later, different answer is logged and ignored."""
    if decision not in DECISIONS:
        raise ValueError(f"decision must be one of {DECISIONS}, got {decision!r}")
    registry = Registry(settings)
    first = recorded(registry.version_tags(spec, version))
    if first is not None:
        if first.decision != decision:
            log.warning("%s v%s: %s via %s ignored; %s by %s via %s came first", spec.model_name, version,
                        decision, via, first.decision, first.reviewer, first.via)  # fmt: skip
        return first
    at = _now().isoformat()
    if not reason:
        reason = {
            "timeout": f"no answer by the deadline ({spec.approval.timeout_hours:g} h after the request)",
        }.get(via, f"{decision} by {reviewer} in {via}")
    tags = {DECISION_TAG: decision, REVIEWER_TAG: reviewer, "approval.via": via, "approval.at": at,
            "approval.reason": reason, "approval.status": decision}  # fmt: skip
    if via != "mlflow":
        tags[TAG] = decision
    if decision == REJECTED:
        tags.update({"promotion.decision": "rejected", "promotion.reason": f"review: {reason}",
                     "promotion.decided_by": f"{via}:{reviewer}", "promotion.decided_at": at})  # fmt: skip
    registry.tag_version(spec, version, tags)
    if decision == REJECTED and registry.alias_version(spec, CHALLENGER) == version:
        registry.client.delete_registered_model_alias(spec.model_name, CHALLENGER)
    log.warning("%s v%s %s by %s via %s: %s", spec.model_name, version, decision, reviewer, via, reason)
    return Decision(decision, reviewer, via, at, reason)
