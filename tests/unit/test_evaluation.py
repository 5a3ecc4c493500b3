from __future__ import annotations

import numpy as np
import pytest

from retrainer.config import GateConfig
from retrainer.evaluation import baseline_predictions, gate, metrics


def test_regression_metrics() -> None:
    m = metrics("regression", np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 5.0]))
    assert m["mae"] == pytest.approx(2 / 3)
    assert m["rmse"] == pytest.approx(np.sqrt(4 / 3))


def test_classification_metrics() -> None:
    y = np.array([0, 0, 1, 1], dtype=float)
    m = metrics("classification", y, np.array([0.1, 0.4, 0.35, 0.8]))
    assert m["auc"] == pytest.approx(0.75)
    assert m["accuracy"] == pytest.approx(0.75)
    assert m["log_loss"] > 0


def test_empty_holdout_is_an_error() -> None:
    with pytest.raises(ValueError, match="empty holdout"):
        metrics("regression", np.array([]), np.array([]))


def test_baseline_is_the_window_mean() -> None:
    assert baseline_predictions("regression", np.array([1.0, 3.0]), 3).tolist() == [2.0, 2.0, 2.0]


RMSE = GateConfig(metric="rmse", baseline_margin=0.25, champion_margin=0.0)


def test_first_model_must_beat_baseline_by_margin() -> None:
    ok = gate(RMSE, {"rmse": 70.0}, {"rmse": 100.0}, None, None)
    assert ok.passed and "no champion yet" in ok.reasons
    close = gate(RMSE, {"rmse": 80.0}, {"rmse": 100.0}, None, None)  # 20% better, 25% needed
    assert not close.passed and "does not beat the baseline by 25%" in close.reasons[0]


def test_candidate_must_beat_champion() -> None:
    win = gate(RMSE, {"rmse": 50.0}, {"rmse": 100.0}, {"rmse": 55.0}, "3")
    assert win.passed and win.delta_vs_champion == pytest.approx(-5.0)
    lose = gate(RMSE, {"rmse": 60.0}, {"rmse": 100.0}, {"rmse": 55.0}, "3")
    assert not lose.passed and "does not beat champion v3" in lose.reasons[1]


def test_higher_is_better_metric() -> None:
    cfg = GateConfig(metric="auc", baseline_margin=0.1)
    assert gate(cfg, {"auc": 0.8}, {"auc": 0.5}, {"auc": 0.79}, "1").passed
    assert not gate(cfg, {"auc": 0.8}, {"auc": 0.5}, {"auc": 0.81}, "1").passed


def test_non_finite_candidate_fails() -> None:
    assert not gate(RMSE, {"rmse": float("nan")}, {"rmse": 1.0}, None, None).passed
