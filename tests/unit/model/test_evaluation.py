from __future__ import annotations

import numpy as np
import pytest

from retrainer.model.evaluation import baseline_predictions, gate, metrics, relative_change, worse_by
from retrainer.spec.learning import GateConfig


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


def test_a_tie_is_not_an_improvement() -> None:
    """Equal candidates must not take the champion from each other in turn: with a margin of 0
    the candidate must be strictly better (baseline and champion alike); a negative margin
    alone lets an equal one pass."""
    tie = gate(RMSE, {"rmse": 55.0}, {"rmse": 100.0}, {"rmse": 55.0}, "3")
    assert not tie.passed and tie.reasons[1] == "ties champion v3 (rmse 55): a tie is not an improvement"
    auc = GateConfig(metric="auc", baseline_margin=0.0)
    assert not gate(auc, {"auc": 0.5}, {"auc": 0.5}, None, None).passed  # no better than the naive guess
    assert not gate(auc, {"auc": 0.8}, {"auc": 0.5}, {"auc": 0.8}, "1").passed
    lenient = GateConfig(metric="auc", baseline_margin=0.0, champion_margin=-0.05)
    assert gate(lenient, {"auc": 0.8}, {"auc": 0.5}, {"auc": 0.8}, "1").passed
    assert gate(lenient, {"auc": 0.77}, {"auc": 0.5}, {"auc": 0.8}, "1").passed  # 3.75% worse, 5% allowed


def test_higher_is_better_metric() -> None:
    cfg = GateConfig(metric="auc", baseline_margin=0.1)
    assert gate(cfg, {"auc": 0.8}, {"auc": 0.5}, {"auc": 0.79}, "1").passed
    assert not gate(cfg, {"auc": 0.8}, {"auc": 0.5}, {"auc": 0.81}, "1").passed


def test_every_change_is_said_as_better_or_worse_whatever_the_metric_direction() -> None:
    """A drop of AUC and a rise of RMSE both read "worse"; never a bare signed percentage."""
    auc = GateConfig(metric="auc", baseline_margin=0.1)
    dropped = gate(auc, {"auc": 0.768}, {"auc": 0.5}, {"auc": 0.8}, "2")
    assert dropped.reasons[1] == "does not beat champion v2 by 0%: auc 0.768 vs 0.8, 4.0% worse"
    assert gate(auc, {"auc": 0.84}, {"auc": 0.5}, {"auc": 0.8}, "2").reasons[1].endswith("auc 0.84 vs 0.8, 5.0% better")
    assert (
        "rmse 70 vs 100, 30% better (margin 25%)" in gate(RMSE, {"rmse": 70.0}, {"rmse": 100.0}, None, None).reasons[0]
    )
    assert gate(RMSE, {"rmse": 104.0}, {"rmse": 100.0}, {"rmse": 100.0}, "1").reasons[1].endswith("4.0% worse")
    assert [worse_by(x) for x in (0.04, -0.04, 0.0, None, float("nan"), 0.001)] == [
        "4% worse",
        "4% better",
        "unchanged",
        "n/a",
        "n/a",
        "0.1% worse",
    ]
    assert relative_change(0.6, 0.8, higher_is_better=True) == pytest.approx(0.25)
    assert relative_change(125.0, 100.0, higher_is_better=False) == pytest.approx(0.25)
    assert relative_change(1.0, 0.0, higher_is_better=False) is None


def test_non_finite_candidate_fails() -> None:
    assert not gate(RMSE, {"rmse": float("nan")}, {"rmse": 1.0}, None, None).passed


def test_a_slice_regression_fails_the_gate() -> None:
    import pandas as pd

    from retrainer.model.evaluation import slice_table

    cfg = GateConfig(
        metric="rmse", baseline_margin=0.1, slices=("weather",), max_slice_regression=0.25, min_slice_rows=5
    )
    frame = pd.DataFrame({"weather": ["sun"] * 50 + ["rain"] * 10 + ["snow"] * 3})
    y = np.zeros(63)
    champion = np.full(63, 1.0)
    candidate = np.full(63, 0.5)  # better overall ...
    candidate[50:60] = 2.0  # ... but twice as wrong on rainy hours
    candidate[60:] = 9.0  # and far worse on 3 snowy hours, too few to judge
    slices = slice_table(cfg, "regression", frame, y, candidate, champion)
    by_value = {s.value: s for s in slices}
    assert by_value["rain"].failed and by_value["rain"].regression == pytest.approx(1.0)
    assert not by_value["snow"].judged and not by_value["snow"].failed
    assert not by_value["sun"].failed
    decision = gate(cfg, {"rmse": 0.9}, {"rmse": 5.0}, {"rmse": 1.0}, "4", slices)
    assert not decision.passed
    assert "slices worse than the champion by more than 25%: weather=rain 100% worse" in decision.reasons[-1]
    assert gate(cfg, {"rmse": 0.9}, {"rmse": 5.0}, {"rmse": 1.0}, "4", slices[2:]).passed  # sun alone passes


def test_a_metric_undefined_on_a_slice_is_reported_and_carried_as_null() -> None:
    """AUC on a slice that holds one class is undefined: the slice is shown and named in the
    reasons, not judged; the evaluation record still crosses to the next task as strict JSON."""
    import json

    import pandas as pd

    from retrainer.model.evaluation import slice_table
    from retrainer.records import Evaluation, SliceRow

    cfg = GateConfig(metric="auc", baseline_margin=0.05, slices=("plan",), min_slice_rows=5)
    frame = pd.DataFrame({"plan": ["basic"] * 40 + ["pro"] * 10})
    y = np.array([0.0, 1.0] * 20 + [1.0] * 10)  # every "pro" row is positive
    candidate = np.where(y > 0.5, 0.8, 0.2)
    candidate[:4] = [0.6, 0.4, 0.6, 0.4]
    champion = np.full(50, 0.5)
    slices = slice_table(cfg, "classification", frame, y, candidate, champion)
    pro = next(s for s in slices if s.value == "pro")
    assert np.isnan(pro.candidate) and not pro.judged and not pro.failed
    decision = gate(cfg, {"auc": 0.95}, {"auc": 0.5}, {"auc": 0.5}, "1", slices)
    assert decision.passed
    assert "auc is undefined on 1 slice(s) (AUC needs both classes), not judged: plan=pro (10 rows)" in decision.reasons
    record = Evaluation(
        True,
        "auc",
        0.95,
        0.5,
        0.5,
        "1",
        decision.reasons,
        [
            SliceRow(s.feature, s.value, s.rows, s.candidate, s.champion, s.regression, s.judged, s.failed)
            for s in slices
        ],
        0.45,
        {"auc": 0.95},
        {"auc": 0.5},
        {"auc": 0.5},
        50,
    )
    wire = json.loads(json.dumps(record.to_json(), allow_nan=False))
    assert wire["unrepresentable"] == {
        "slices[1].candidate": "nan is not a JSON number",
        "slices[1].champion": "nan is not a JSON number",
    }
    assert np.isnan(Evaluation.from_json(wire).slices[1].candidate)
    one_class = gate(cfg, {"auc": float("nan")}, {"auc": float("nan")}, None, None)
    assert not one_class.passed and "candidate auc is undefined on this holdout" in one_class.reasons[0]


def test_evaluation_report(tmp_path: object) -> None:
    from pathlib import Path

    import pandas as pd

    from retrainer.model import reports
    from retrainer.model.evaluation import slice_table

    cfg = GateConfig(metric="rmse", slices=("weather",), min_slice_rows=1)
    frame = pd.DataFrame({"weather": ["sun", "rain"] * 20})
    y = np.arange(40.0)
    slices = slice_table(cfg, "regression", frame, y, y + 1, y + 2)
    decision = gate(cfg, {"rmse": 1.0}, {"rmse": 12.0}, {"rmse": 2.0}, "1", slices)
    page = reports.evaluation_report_html("t", decision, y, y + 1, y + 2, frame, Path(str(tmp_path)) / "e.html")
    text = page.read_text()
    assert "gate PASSED" in text and text.count("data:image/png;base64,") == 2
    assert "<td>weather</td><td>rain</td><td>20</td>" in text


def test_multiclass_metrics_match_their_definitions() -> None:
    from sklearn.metrics import accuracy_score, f1_score, log_loss

    rng = np.random.default_rng(3)
    y = rng.integers(0, 4, 500).astype(float)
    prob = rng.dirichlet(np.ones(4), 500)
    prob[np.arange(250), y[:250].astype(int)] += 1.5  # half the rows: the right class is likely
    prob /= prob.sum(axis=1, keepdims=True)
    got = metrics("multiclass", y, prob)
    assert got["log_loss"] == pytest.approx(log_loss(y, prob, labels=[0, 1, 2, 3]), rel=1e-6)
    assert got["accuracy"] == pytest.approx(accuracy_score(y, prob.argmax(axis=1)))
    assert got["macro_f1"] == pytest.approx(f1_score(y, prob.argmax(axis=1), average="macro"))


def test_a_multiclass_slice_of_one_class_is_scored() -> None:
    """Macro-F1 over the classes present or predicted: one class, all right, is 1.0; log-loss is defined."""
    y = np.zeros(5)
    prob = np.tile([0.8, 0.1, 0.1], (5, 1))
    got = metrics("multiclass", y, prob)
    assert got["macro_f1"] == 1.0 and got["accuracy"] == 1.0 and got["log_loss"] == pytest.approx(-np.log(0.8))


def test_the_multiclass_baseline_is_the_window_class_shares() -> None:
    base = baseline_predictions("multiclass", np.array([0, 0, 0, 1.0]), 2, n_classes=3)
    assert base.shape == (2, 3) and np.allclose(base.sum(axis=1), 1.0)
    assert base[0, 0] == pytest.approx(3 / 4.5) and base[0, 2] == pytest.approx(0.5 / 4.5)  # unseen: unlikely


def test_a_multiclass_evaluation_report_shows_the_confusion(tmp_path: object) -> None:
    from pathlib import Path

    import pandas as pd

    from retrainer.model import reports
    from retrainer.model.evaluation import slice_table

    cfg = GateConfig(metric="log_loss", slices=("weather",), min_slice_rows=1)
    frame = pd.DataFrame({"weather": ["sun", "rain"] * 30})
    y = np.tile([0.0, 1.0, 2.0], 20)
    cand = np.full((60, 3), 0.1)
    cand[np.arange(60), y.astype(int)] = 0.8
    slices = slice_table(cfg, "multiclass", frame, y, cand, None)
    assert {s.value for s in slices} == {"sun", "rain"} and all(np.isfinite(s.candidate) for s in slices)
    decision = gate(cfg, metrics("multiclass", y, cand), {"log_loss": 1.1}, None, None, slices)
    page = reports.evaluation_report_html(
        "t", decision, y, cand, None, frame, Path(str(tmp_path)) / "e.html", ("a", "b", "c")
    )
    assert "gate PASSED" in page.read_text() and page.read_text().count("data:image/png;base64,") == 2
    plot = reports.holdout_plot(y, cand, cand, Path(str(tmp_path)) / "h.png", "holdout")
    assert plot.stat().st_size > 1000
