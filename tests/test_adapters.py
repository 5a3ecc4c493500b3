"""The Airflow adapters are shaped like Airflow's own: operators get what they show as
arguments, refuse the arguments they fix, and document every argument."""

from __future__ import annotations

import inspect
import re

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
