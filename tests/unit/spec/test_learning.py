"""How models of a dataset are trained, judged and watched: the spec's ``training``, ``gate`` and
``drift`` sections."""

from __future__ import annotations

from pathlib import Path

import pytest

from retrainer.spec.columns import Feature
from retrainer.spec.dataset import DatasetSpec
from retrainer.spec.fields import Fields, SpecError
from retrainer.spec.learning import (
    HIGHER_IS_BETTER,
    TASK_METRICS,
    DriftConfig,
    DriftTest,
    GateConfig,
    TrainingConfig,
    read_drift,
    read_gate,
    read_training,
)
from tests.helpers import assert_refused_naming_file_and_field, bike_spec_data, write_spec

F = Fields({}, "flights.yaml")
FEATURES = (Feature("distance", "numeric"), Feature("carrier", "categorical", categories=("AA", "DL")))


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda d: d["gate"].update(metric="auc"), "gate.metric"),
        (lambda d: d["training"].update(learning_rat=0.1), "training.learning_rat"),
        (lambda d: d["training"].update(epochs="many"), "training.epochs"),
        (lambda d: d.update(drift={"features": {"nope": {"method": "ks"}}}), "drift.features.nope"),
        (lambda d: d.update(drift={"features": {"temp": {"method": "t-test"}}}), "drift.features.temp.method"),
        (lambda d: d.update(drift={"drift_share": 1.5}), "drift.drift_share"),
        (lambda d: d.update(drift={"cooldown": 3}), "drift.cooldown"),
        (lambda d: d["training"].update(hidden_units=[64, -1]), "training.hidden_units"),
        (lambda d: d["gate"].update(baseline_margn=0.2), "gate.baseline_margn"),
        (lambda d: d["gate"].update(baseline_margin="a lot"), "gate.baseline_margin"),
        (lambda d: d["gate"].update(min_slice_rows=0), "gate.min_slice_rows"),
        (lambda d: d["gate"].update(slices=["temp"]), "gate.slices"),
        (lambda d: d["training"].update(window_periods=0), "training.window_periods"),
        (lambda d: d["training"].update(epochs=2.5), "training.epochs"),
        (lambda d: d.update(drift={"weights": ["hr"]}), "drift.weights"),
        (lambda d: d.update(drift={"target": {"method": "ks", "alpha": 0.1}}), "drift.target"),
    ],
)
def test_malformed_spec_names_file_and_field(tmp_path: Path, mutate, field: str) -> None:  # type: ignore[no-untyped-def]
    assert_refused_naming_file_and_field(tmp_path, mutate, field)


def test_drift_section(tmp_path: Path) -> None:
    data = bike_spec_data()
    data["drift"] = {
        "drift_share": 0.3,
        "features": {"temp": {"method": "ks", "threshold": 0.01}},
        "weights": {"hr": 2},
    }
    spec = DatasetSpec.load(write_spec(tmp_path, data))
    assert spec.drift.drift_share == 0.3
    assert spec.drift.feature_test("temp").method == "ks" and spec.drift.feature_test("temp").threshold == 0.01
    assert spec.drift.feature_test("hum").method is None
    assert dict(spec.drift.weights) == {"hr": 2.0}


def test_training_takes_the_defaults_it_is_not_given_and_leaves_its_schedule_out() -> None:
    assert read_training(F, {}) == TrainingConfig()
    cfg = read_training(F, {"epochs": 3, "hidden_units": [16], "learning_rate": 1, "every": "monthly"})
    assert cfg == TrainingConfig(epochs=3, hidden_units=(16,), learning_rate=1)
    assert isinstance(cfg.hidden_units, tuple)  # a frozen record holds no list


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        ({"batch_size": 64.5}, "training.batch_size.*must be an integer, got 64.5"),
        ({"seed": True}, "training.seed.*must be a number, got True"),
        ({"hidden_units": 64}, "training.hidden_units.*must be a list of positive integers, got 64"),
        ({"holdout_periods": 0}, "training.window_periods.*window and holdout must be >= 1"),
    ],
)
def test_training_values_are_refused_saying_why(raw: dict, says: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(SpecError, match=says):
        read_training(F, raw)


def test_the_gate_metric_defaults_by_task_and_must_fit_it() -> None:
    assert read_gate(F, {}, "regression", FEATURES).metric == "rmse"
    assert read_gate(F, {}, "classification", FEATURES).metric == "log_loss"
    assert read_gate(F, {"metric": "auc"}, "classification", FEATURES).higher_is_better
    with pytest.raises(SpecError, match=r"'rmse' is not one of \['accuracy', 'auc', 'log_loss'\] for classification"):
        read_gate(F, {"metric": "rmse"}, "classification", FEATURES)


def test_a_gate_reads_its_margins_and_slices() -> None:
    gate = read_gate(
        F,
        {"metric": "mae", "baseline_margin": 0.2, "champion_margin": 0.01, "slices": ["carrier"], "min_slice_rows": 5},
        "regression",
        FEATURES,
    )
    assert gate == GateConfig("mae", 0.2, 0.01, ("carrier",), 0.2, 5)
    assert not gate.higher_is_better
    with pytest.raises(SpecError, match=r"\['distance'\] are numeric: slices are categorical features"):
        read_gate(F, {"slices": ["distance"]}, "regression", FEATURES)
    with pytest.raises(SpecError, match=r"\['carier'\] are not features of this spec \(features: "):
        read_gate(F, {"slices": ["carrier", "carier"]}, "regression", FEATURES)
    with pytest.raises(SpecError, match="must list categorical features, got 'carrier'"):
        read_gate(F, {"slices": "carrier"}, "regression", FEATURES)


def test_every_metric_a_gate_may_judge_by_has_its_direction() -> None:
    """A metric is "higher is better" only by name: a metric added to a task without its
    direction would be judged backwards."""
    judged = set().union(*TASK_METRICS.values())
    assert {m: GateConfig(m).higher_is_better for m in judged} == {
        "rmse": False,
        "mae": False,
        "log_loss": False,
        "auc": True,
        "accuracy": True,
        "macro_f1": True,
    }
    assert judged >= HIGHER_IS_BETTER


def test_drift_reads_its_tests_per_feature_and_for_target_and_prediction() -> None:
    drift = read_drift(
        F,
        {
            "features": {"distance": {"method": "psi"}},
            "target": {"threshold": 0.2},
            "prediction": {"method": "wasserstein", "threshold": 0.1},
            "require_performance_drop": True,
            "cooldown_hours": 6,
        },
        {"distance", "carrier"},
    )
    assert drift.feature_test("distance") == DriftTest("psi", None)
    assert drift.feature_test("carrier") == DriftTest()  # chosen by sample size
    assert (drift.target, drift.prediction) == (DriftTest(None, 0.2), DriftTest("wasserstein", 0.1))
    assert drift.require_performance_drop and drift.cooldown_hours == 6.0
    assert read_drift(F, {}, {"distance"}) == DriftConfig()


def test_drift_refuses_unknown_features_methods_and_flags() -> None:
    with pytest.raises(SpecError, match="is not a feature of this spec") as err:
        read_drift(F, {"weights": {"tail": 2}}, {"distance"})
    assert err.value.field == "drift.weights.tail"
    with pytest.raises(SpecError, match=r"must be one of \['ks', 'wasserstein', 'psi', 'chisquare'"):
        read_drift(F, {"prediction": {"method": "kl"}}, {"distance"})
    with pytest.raises(SpecError, match="must be true or false, got 'yes'"):
        read_drift(F, {"require_performance_drop": "yes"}, {"distance"})
