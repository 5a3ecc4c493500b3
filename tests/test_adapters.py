"""The Airflow adapters are shaped like Airflow's own: operators get what they show as
arguments, refuse the arguments they fix, and document every argument."""

from __future__ import annotations

import inspect
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

    trigger = ReviewTrigger(tracking_uri="file:///nowhere", model_name="m", version="2", ti_id=uuid.uuid4(),
                            options=["Approve", "Reject"], defaults=["Reject"], params={}, multiple=False,
                            timeout_datetime=None, poke_interval=0.01)  # fmt: skip
    reads = iter(tags)
    monkeypatch.setattr(trigger, "_version_tags", lambda: next(reads))
    monkeypatch.setattr(hitl, "update_hitl_detail_response", lambda **_: SimpleNamespace(responded_at=None))
    return trigger


def test_an_mlflow_answer_waits_one_poke_for_its_reviewers_name(monkeypatch: pytest.MonkeyPatch) -> None:
    """MLflow writes one tag per request: `approval` lands before `approval.reviewer`."""
    import asyncio

    trigger = _review_trigger(monkeypatch, [{"approval": "rejected"},
                                            {"approval": "rejected", "approval.reviewer": "bob"}])  # fmt: skip
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
