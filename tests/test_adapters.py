"""The Airflow adapters are shaped like Airflow's own: operators get what they show as
arguments, refuse the arguments they fix, and document every argument."""

from __future__ import annotations

import inspect
import json
import re
from pathlib import Path

import pytest

from retrainer_airflow.notify import FailureWebhook
from retrainer_airflow.review import ModelReviewOperator, ReviewTrigger
from retrainer_airflow.sensors import DriftSensor, LandingSensor
from retrainer_airflow.triggers import DriftTrigger, LandingTrigger

PUBLIC = (DriftSensor, DriftTrigger, LandingSensor, LandingTrigger, ModelReviewOperator, ReviewTrigger)


@pytest.mark.parametrize("cls", PUBLIC, ids=lambda c: c.__name__)
def test_every_argument_is_documented(cls: type) -> None:
    doc = inspect.getdoc(cls) or ""
    params = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    missing = [p for p in params if not re.search(rf":param {p}:", doc)]
    assert missing == [], f"{cls.__name__} does not document {missing}"


def test_failure_webhook_says_what_it_does() -> None:
    assert "RETRAINER_ALERT_WEBHOOK" in (inspect.getdoc(FailureWebhook) or "")


def _review(**kwargs: object) -> ModelReviewOperator:
    return ModelReviewOperator(task_id="review", plan={}, evaluation={}, registered={}, **kwargs)  # type: ignore[arg-type]


def test_the_review_takes_what_it_shows_as_template_fields() -> None:
    op = _review()
    assert set(op.template_fields) == {"plan", "evaluation", "registered"}
    assert op.defaults == ["Reject"] and op.options == ["Approve", "Reject"]


@pytest.mark.parametrize("arg", ["subject", "body", "defaults", "response_timeout", "options", "multiple"])
def test_the_review_refuses_what_it_fixes(arg: str) -> None:
    with pytest.raises(ValueError, match=f"Passing {arg} to"):
        _review(**{arg: "x"})


def _review_trigger(monkeypatch: pytest.MonkeyPatch, tags: list[dict[str, str]]) -> ReviewTrigger:
    import uuid
    from types import SimpleNamespace

    import airflow.sdk.execution_time.hitl as hitl

    trigger = ReviewTrigger(
        tracking_uri="file:///nowhere",
        model_name="m",
        version="2",
        ti_id=uuid.uuid4(),
        options=["Approve", "Reject"],
        defaults=["Reject"],
        params={},
        multiple=False,
        timeout_datetime=None,
        poke_interval=0.01,
    )
    reads = iter(tags)
    monkeypatch.setattr(trigger, "_version_tags", lambda: next(reads))
    monkeypatch.setattr(hitl, "update_hitl_detail_response", lambda **_: SimpleNamespace(responded_at=None))
    return trigger


def test_an_mlflow_answer_waits_one_poke_for_its_reviewers_name(monkeypatch: pytest.MonkeyPatch) -> None:
    """MLflow writes one tag per request: `approval` lands before `approval.reviewer`."""
    import asyncio

    trigger = _review_trigger(
        monkeypatch, [{"approval": "rejected"}, {"approval": "rejected", "approval.reviewer": "bob"}]
    )
    assert asyncio.run(trigger._mlflow_event()) is None
    event = asyncio.run(trigger._mlflow_event())
    assert event is not None and event.payload["responded_by_user"]["name"] == "bob"
    assert event.payload["chosen_options"] == ["Reject"]


def test_an_unnamed_mlflow_answer_is_still_taken(monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    trigger = _review_trigger(monkeypatch, [{"approval": "approved"}, {"approval": "approved"}])
    assert asyncio.run(trigger._mlflow_event()) is None
    event = asyncio.run(trigger._mlflow_event())
    assert event is not None and event.payload["responded_by_user"]["name"] == "unnamed MLflow user"


def test_a_named_mlflow_answer_is_taken_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    trigger = _review_trigger(monkeypatch, [{"approval": "approved", "approval.reviewer": "rita"}])
    event = asyncio.run(trigger._mlflow_event())
    assert event is not None and event.payload["responded_by_user"]["name"] == "rita"


def test_the_trigger_records_the_answer_before_the_task_resumes(monkeypatch: pytest.MonkeyPatch) -> None:
    """A resumed task can be lost (apache/airflow#72716): the answer is on the version already,
    so the retry takes it instead of asking again."""
    import asyncio

    from retrainer.records import ReviewDecision
    from retrainer_airflow.tasks import release

    recorded: list[tuple[object, ...]] = []
    stored = ReviewDecision(decision="approved", approved=True, via="mlflow", reviewer="rita")
    monkeypatch.setattr(release, "record_answer", lambda *a: recorded.append(a) or stored)
    trigger = _review_trigger(monkeypatch, [{"approval": "approved", "approval.reviewer": "rita"}])
    trigger.dataset = "bike_sharing"

    async def no_airflow_answer() -> None:
        return None

    monkeypatch.setattr(trigger, "_handle_response", no_airflow_answer)

    async def first() -> object:
        return await anext(trigger.run())

    event = asyncio.run(first())
    assert event.payload["via"] == "mlflow"  # type: ignore[attr-defined]
    assert recorded == [("bike_sharing", "2", True, "rita", "mlflow")]
    assert trigger.serialize()[1]["dataset"] == "bike_sharing"


@pytest.mark.parametrize(
    ("event", "answer"),
    [
        ({"chosen_options": ["Approve"], "responded_by_user": {"id": "7", "name": "ann"}}, (True, "ann", "airflow")),
        ({"chosen_options": ["Reject"], "responded_by_user": {"id": "7", "name": ""}}, (False, "7", "airflow")),
        ({"chosen_options": ["Reject"], "responded_by_user": None, "timedout": True}, (False, "nobody", "timeout")),
        ({"chosen_options": ["Approve"], "responded_by_user": {"name": "bo"}, "via": "mlflow"}, (True, "bo", "mlflow")),
    ],
)
def test_what_an_answer_event_says(event: dict[str, object], answer: tuple[bool, str, str]) -> None:
    from retrainer_airflow.review import answer_of

    assert answer_of(event) == answer


@pytest.mark.parametrize(("decision", "skipped"), [("rejected", ["promote"]), ("approved", []), ("gate failed", [])])
def test_a_decision_taken_earlier_is_reused_and_a_rejection_skips_downstream(
    monkeypatch: pytest.MonkeyPatch, decision: str, skipped: list[str]
) -> None:
    """A retry or a cleared review asks nothing again; a rejection recorded earlier skips the
    promotion as the fresh answer did (a gate failure leaves it to promote to record why)."""
    from airflow.providers.standard.operators.empty import EmptyOperator
    from airflow.sdk import DAG

    from retrainer.records import ReviewDecision
    from retrainer_airflow.tasks import release

    recorded = ReviewDecision(
        decision=decision, approved=decision == "approved", via="airflow", reviewer="ann"
    ).to_json()
    monkeypatch.setattr(release, "review_request", lambda *_: ReviewDecision.from_json(recorded))
    monkeypatch.setattr(ModelReviewOperator, "_records", lambda self: (None, None, None))
    with DAG("review_reuse", schedule=None):
        op = _review()
        op >> EmptyOperator(task_id="promote")
    seen: list[str] = []
    monkeypatch.setattr(op, "skip", lambda ti, tasks: seen.extend(t.task_id for t in tasks))
    assert op.execute({"ti": object(), "task": op}) == recorded
    assert seen == skipped


def test_a_backfills_candidate_is_not_reviewed(monkeypatch: pytest.MonkeyPatch) -> None:
    """A backfill run registers and evaluates, never promotes: its review is skipped, not failed."""
    from airflow.sdk.exceptions import AirflowSkipException

    from retrainer.outcomes import NothingToDo
    from retrainer_airflow.tasks import release

    def backfill(*_: object) -> None:
        raise NothingToDo("a backfill run registers and evaluates; it never promotes nor deploys")

    monkeypatch.setattr(release, "review_request", backfill)
    monkeypatch.setattr(ModelReviewOperator, "_records", lambda self: (None, None, None))
    with pytest.raises(AirflowSkipException, match="a backfill run registers and evaluates"):
        _review().execute({"ti": object(), "task": None})  # type: ignore[typeddict-item]


def test_the_review_keeps_a_retry_whatever_the_defaults() -> None:
    assert _review(retries=0).retries == 1
    assert _review(retries=3).retries == 3


def test_the_retrain_schedule_follows_the_most_frequent_retraining(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Monthly while every spec retrains monthly; daily once a daily spec is there; a spec that
    does not load changes nothing here; RETRAINER_RETRAIN_SCHEDULE wins."""
    import shutil

    import yaml

    from retrainer_airflow.defaults import retrain_cron

    bike = Path(__file__).resolve().parents[1] / "include" / "specs" / "bike_sharing.yaml"
    shutil.copy(bike, tmp_path / "bike_sharing.yaml")
    monkeypatch.setenv("RETRAINER_SPECS_DIR", str(tmp_path))
    monkeypatch.delenv("RETRAINER_RETRAIN_SCHEDULE", raising=False)
    assert retrain_cron() == "0 0 1 * *"
    (tmp_path / "broken.yaml").write_text("name: [")
    assert retrain_cron() == "0 0 1 * *"
    daily = yaml.safe_load(bike.read_text())
    daily.update(name="daily_copy", frequency="daily")
    (tmp_path / "daily_copy.yaml").write_text(yaml.safe_dump(daily))
    assert retrain_cron() == "0 0 * * *"
    monkeypatch.setenv("RETRAINER_RETRAIN_SCHEDULE", "30 2 * * *")
    assert retrain_cron() == "30 2 * * *"


def test_the_retrain_trigger_reads_its_subject_from_a_dict_or_json_text() -> None:
    """The in-flight check needs the dataset and data version: from the conf as made, or as JSON
    text when a template rendered it; without them it says so instead of checking nothing silently."""
    from retrainer_airflow.retrain_trigger import _subject

    conf = {"dataset": "bike_sharing", "data_version": "v0007", "reason": "drift"}
    assert _subject(conf) == ("bike_sharing", "v0007")
    assert _subject(json.dumps(conf)) == ("bike_sharing", "v0007")
    assert _subject("not json") == ("", "") and _subject(None) == ("", "") and _subject({"dataset": "x"})[1] == ""
