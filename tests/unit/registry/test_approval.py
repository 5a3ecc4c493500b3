"""The reviewer's answer and the evidence shown to them (pure parts; the waiting and the
recording run end to end in tests/integration/test_review_e2e.py)."""

from __future__ import annotations

from retrainer.records import Evaluation, SliceRow
from retrainer.registry import approval
from retrainer.spec.dataset import DatasetSpec


def test_an_mlflow_answer_is_read_leniently_and_only_when_it_is_one() -> None:
    assert approval.mlflow_answer({}) is None
    assert approval.mlflow_answer({"approval": "maybe"}) is None  # not an answer: still waiting
    assert approval.mlflow_answer({"approval": " Approved "}) == ("approved", "unnamed MLflow user")
    assert approval.mlflow_answer({"approval": "rejected", "approval.reviewer": "bob"}) == ("rejected", "bob")
    assert not approval.names_reviewer({"approval": "rejected", "approval.reviewer": " "})
    assert approval.names_reviewer({"approval": "rejected", "approval.reviewer": "bob"})


def test_the_first_recorded_decision_is_the_decision() -> None:
    assert approval.recorded({"approval": "approved"}) is None  # an answer, not yet recorded
    first = approval.recorded(
        {
            "approval.decision": "rejected",
            "approval.reviewer": "admin",
            "approval.via": "airflow",
            "approval.at": "2026-11-22T10:00:00+00:00",
            "approval": "approved",
        }
    )
    assert first is not None and not first.approved and (first.reviewer, first.via) == ("admin", "airflow")


def test_the_evidence_names_metrics_slices_data_and_links(bike_spec: DatasetSpec) -> None:
    evaluated = Evaluation(
        passed=True,
        metric="rmse",
        candidate=61.2,
        champion=64.0,
        baseline=150.3,
        champion_version="4",
        reasons=["rmse 61.2 vs champion 64 (-4.4%)"],
        slices=[
            SliceRow(
                "season", "fall", rows=300, candidate=70.0, champion=60.0, regression=0.1667, judged=True, failed=False
            ),
            SliceRow(
                "weathersit",
                "Heavy Rain",
                rows=3,
                candidate=9.0,
                champion=None,
                regression=None,
                judged=False,
                failed=False,
            ),
        ],
        delta_vs_champion=-2.8,
        candidate_metrics={"rmse": 61.2},
        baseline_metrics={"rmse": 150.3},
        champion_metrics={"rmse": 64.0},
        n_holdout=744,
    )
    tags = {
        "data.version": "v0012",
        "data.rev": "0123456789abcdef",
        "data.train_periods": "2011-06,2011-07",
        "data.holdout_periods": "2011-08",
        "gx.success": "true",
        "retrainer.trigger": "drift: 6/10 drifted",
        "drift.reason": "6/10 features drifted",
    }
    body = approval.evidence_markdown(bike_spec, "5", tags, evaluated, {"Evaluation report": "http://mlflow/x"})
    assert "**bike_demand v5**" in body and "| candidate v5 | 61.2 |" in body and "| champion v4 | 64 |" in body
    assert "| season=fall | 300 | 70 | 60 | 16.7% worse |" in body and "Heavy Rain" not in body  # unjudged slice
    assert "v0012 (rev 0123456789)" in body and "GX validation of the window: passed" in body
    assert "drift: 6/10 features drifted" in body and "[Evaluation report](http://mlflow/x)" in body
    assert "`approval` to `approved` or `rejected`" in body
