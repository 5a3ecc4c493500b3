"""The records tasks hand each other: strict JSON out, checked JSON in."""

from __future__ import annotations

import json
import math
from dataclasses import fields, is_dataclass
from typing import Any

import numpy as np
import pytest

import retrainer.records
from retrainer.records import (
    UNREPRESENTABLE,
    ContractError,
    DriftCheck,
    Evaluation,
    Record,
    RetrainRequest,
    Rollback,
    SliceRow,
    TrainingPlan,
)


def _evaluation(**changes: Any) -> Evaluation:
    values: dict[str, Any] = {
        "passed": True,
        "metric": "auc",
        "candidate": 0.81,
        "baseline": 0.5,
        "champion": 0.79,
        "champion_version": "3",
        "reasons": ["beats champion v3"],
        "slices": [SliceRow("plan", "basic", 120, 0.8, 0.78, -0.02, True, False)],
        "delta_vs_champion": 0.02,
        "candidate_metrics": {"auc": 0.81, "log_loss": 0.4},
        "baseline_metrics": {"auc": 0.5},
        "champion_metrics": {"auc": 0.79},
        "n_holdout": 500,
    }
    return Evaluation(**{**values, **changes})


def test_every_record_is_a_frozen_dataclass() -> None:
    records = [
        v for v in vars(retrainer.records).values() if isinstance(v, type) and issubclass(v, Record) and v is not Record
    ]
    assert len(records) >= 18
    for cls in records:
        assert is_dataclass(cls) and cls.__dataclass_params__.frozen, cls  # type: ignore[attr-defined]


def test_a_record_survives_the_round_trip() -> None:
    ev = _evaluation()
    wire = json.loads(json.dumps(ev.to_json(), allow_nan=False))
    assert Evaluation.from_json(wire) == ev
    assert UNREPRESENTABLE not in wire


def test_what_json_cannot_hold_is_null_with_the_reason() -> None:
    """A slice holding one class has no AUC: the push must not fail, and the reader sees why."""
    ev = _evaluation(candidate=math.nan, slices=[SliceRow("plan", "gold", 4, math.nan, math.inf, None, False, False)])
    wire = ev.to_json()
    text = json.dumps(wire, allow_nan=False)  # strict JSON: this would raise on a NaN
    assert wire["candidate"] is None and wire["slices"][0]["candidate"] is None
    assert wire[UNREPRESENTABLE] == {
        "candidate": "nan is not a JSON number",
        "slices[0].candidate": "nan is not a JSON number",
        "slices[0].champion": "inf is not a JSON number",
    }
    back = Evaluation.from_json(json.loads(text))
    assert math.isnan(back.candidate) and math.isnan(back.slices[0].candidate)  # a float field reads NaN back
    assert back.slices[0].champion is None  # an optional one reads "no value"


def test_numpy_values_and_other_objects_do_not_break_the_push() -> None:
    window: Any = np.int64(1)
    plan = TrainingPlan("d", "m", "v0001", "d/v0001", "abc", ["2011-01"], ["2011-02"], window)
    assert plan.to_json()["window"] == 1 and isinstance(plan.to_json()["window"], int)
    signals: Any = {"x": np.bool_(True)}
    check = DriftCheck("checked", True, "drift", performance_drop=np.float64(0.25), signals=signals)
    wire = check.to_json()
    assert wire["performance_drop"] == 0.25 and wire["signals"] == {"x": True}
    json.dumps(wire, allow_nan=False)


def test_a_wrong_shape_is_refused_naming_the_field() -> None:
    with pytest.raises(ContractError, match="TrainingPlan: field 'data_rev' is missing"):
        TrainingPlan.from_json(
            {k: v for k, v in TrainingPlan("d", "m", "v", "t", "r", [], [], 1).to_json().items() if k != "data_rev"}
        )
    with pytest.raises(ContractError, match=r"Evaluation\.slices\[0\]\.rows: expected int, got str"):
        Evaluation.from_json(
            {**_evaluation().to_json(), "slices": [{**_evaluation().slices[0].to_json(), "rows": "x"}]}
        )
    with pytest.raises(ContractError, match="expected a JSON object"):
        TrainingPlan.from_json(["not", "a", "plan"])


def test_keys_python_cannot_spell() -> None:
    back = Rollback(from_version="2", to_version="1", labels={"stable": 1}, max_abs_diff=0.0, by="ann", reason="x")
    assert set(back.to_json()) == {"from", "to", "labels", "max_abs_diff", "by", "reason"}
    assert Rollback.from_json(back.to_json()) == back


def test_nested_records_and_defaults() -> None:
    check = DriftCheck.from_json(
        {
            "status": "checked",
            "retrain": True,
            "reason": "drift",
            "data_version": "v0004",
            "report_uri": "file:///r.html",
            "drifted_features": ["temp"],
        }
    )
    assert check.signals == {} and check.summary().drifted_features == ["temp"]
    request = RetrainRequest.from_json(
        {
            "run_id": "drift__x__v0004",
            "conf": {"dataset": "x", "data_version": "v0004", "reason": "drift: x", "drift": check.summary().to_json()},
        }
    )
    assert request.conf.drift.report_uri == "file:///r.html"
    assert [f.name for f in fields(request)] == ["run_id", "conf"]
