"""Training: the Keras model with its preprocessing inside (normalization, vocabularies, the
imputation of missing values), fed by tf.data, seeded, and what it records of itself."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from retrainer.model import training
from retrainer.model.training import learned_categories, vocabulary
from retrainer.serving import export
from retrainer.spec.columns import Feature, Target
from retrainer.spec.dataset import DatasetSpec


@pytest.fixture(scope="module")
def window(bike_window: tuple[pd.DataFrame, pd.DataFrame]) -> tuple[pd.DataFrame, pd.DataFrame]:
    return bike_window


@pytest.fixture(scope="module")
def trained(bike_trained: training.TrainResult) -> training.TrainResult:
    return bike_trained


def test_model_takes_raw_features_and_beats_the_mean(
    bike_spec: DatasetSpec, window: tuple[pd.DataFrame, pd.DataFrame], trained: training.TrainResult
) -> None:
    train_df, holdout = window
    names = {t.name.split(":")[0] for t in trained.model.inputs}
    assert names == set(bike_spec.feature_names)
    pred = training.predict(trained.model, holdout, bike_spec)
    y = training.target_array(holdout, bike_spec)
    rmse = float(np.sqrt(np.mean((pred - y) ** 2)))
    baseline = float(np.sqrt(np.mean((y - training.target_array(train_df, bike_spec).mean()) ** 2)))
    assert rmse < 0.75 * baseline
    assert len(trained.history["val_loss"]) == trained.epochs_run


def test_training_is_deterministic(
    bike_spec: DatasetSpec, window: tuple[pd.DataFrame, pd.DataFrame], caplog: pytest.LogCaptureFixture
) -> None:
    cfg = replace(bike_spec.training, epochs=2)
    with caplog.at_level(logging.INFO, logger="retrainer.model.training"):
        a = training.predict(training.train(window[0], bike_spec, cfg).model, window[1].iloc[:50], bike_spec)
    # a line per epoch in the task log
    assert [r.getMessage().split(",")[0] for r in caplog.records if "epoch" in r.getMessage()][:2] == [
        f"{bike_spec.name}: epoch 1/2",
        f"{bike_spec.name}: epoch 2/2",
    ]
    b = training.predict(training.train(window[0], bike_spec, cfg).model, window[1].iloc[:50], bike_spec)
    np.testing.assert_allclose(a, b, rtol=1e-5)


def test_unlabelled_rows_train_nothing_and_are_counted(
    bike_spec: DatasetSpec, window: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    rows = window[0].copy()
    rows.loc[rows.index[::10], bike_spec.target.column] = np.nan
    result = training.train(rows, bike_spec, replace(bike_spec.training, epochs=1))
    assert result.n_unlabelled == len(rows.index[::10])
    assert result.n_train + result.n_val == len(rows) - result.n_unlabelled
    assert all(np.isfinite(result.history["loss"]))
    assert len(training.labelled(rows, bike_spec)) == len(rows) - result.n_unlabelled


def test_a_missing_numeric_value_is_filled_inside_the_model(
    bike_spec: DatasetSpec, window: tuple[pd.DataFrame, pd.DataFrame], tmp_path: Path
) -> None:
    """impute: median is learned from the training rows and done by the model itself: the
    SavedModel that serves and the TFLite artifact fill a missing value as training did."""
    hum = next(f for f in bike_spec.features if f.name == "hum")
    spec = replace(
        bike_spec,
        features=tuple(replace(f, max_null_rate=0.2, impute="median") if f is hum else f for f in bike_spec.features),
    )
    rows = window[0].copy()
    rows.loc[rows.index[::7], "hum"] = np.nan
    result = training.train(rows, spec, replace(spec.training, epochs=1))
    how, value = result.params["impute.hum"].split()
    train_part = training.split_train_val(rows, spec, spec.training.validation_fraction)[0]
    median = float(np.median(train_part["hum"].dropna().to_numpy(dtype="float32")))
    assert how == "median" and float(value) == pytest.approx(median, rel=1e-5)
    holdout = window[1].iloc[:40].copy()
    holdout.loc[holdout.index[::2], "hum"] = np.nan
    filled = holdout.fillna({"hum": median})
    missing = training.predict(result.model, holdout, spec)
    assert np.all(np.isfinite(missing))
    np.testing.assert_allclose(missing, training.predict(result.model, filled, spec), rtol=1e-5, atol=1e-4)
    served = export.serve_predictions(str(export.export_saved_model(result.model, tmp_path / "1")), holdout, spec, None)
    np.testing.assert_allclose(served, missing, rtol=1e-5, atol=1e-4)
    blob, _ = export.convert_tflite(result.model)
    lite = export.tflite_predictions(blob, holdout, spec)  # quantized: compared with itself on filled rows
    np.testing.assert_allclose(lite, export.tflite_predictions(blob, filled, spec), rtol=1e-5, atol=1e-3)
    assert np.all(np.isfinite(lite))
    with pytest.raises(ValueError, match="'hum' has missing values and its spec says no 'impute'"):
        training.predict(result.model, holdout, bike_spec)


def test_missing_categories_map_to_oov(
    bike_spec: DatasetSpec, window: tuple[pd.DataFrame, pd.DataFrame], trained: training.TrainResult
) -> None:
    rows = window[1].iloc[:3].copy()
    rows["weathersit"] = None
    rows["season"] = "monsoon"
    assert np.isfinite(training.predict(trained.model, rows, bike_spec)).all()


def test_a_learned_vocabulary_is_the_most_frequent_values_up_to_its_cap() -> None:
    feature = Feature("origin", "categorical", learn_categories=True, max_categories=3)
    frame = pd.DataFrame({"origin": ["JFK"] * 5 + ["LAX"] * 3 + ["BOS"] * 3 + ["ORD"] * 3 + ["SEA"] + [None] * 4})
    # ties in text order, so the same window always learns the same vocabulary
    assert vocabulary(feature, frame) == ("JFK", "BOS", "LAX")
    assert vocabulary(feature, frame.sample(frac=1, random_state=1)) == ("JFK", "BOS", "LAX")
    listed = Feature("origin", "categorical", categories=("A", "B"))
    assert vocabulary(listed, frame) == ("A", "B")  # a listed vocabulary is the spec's, whatever the data


def test_what_was_learned_is_recorded_with_its_coverage(bike_spec: DatasetSpec) -> None:
    from dataclasses import replace

    learned = Feature("weathersit", "categorical", learn_categories=True, max_categories=2)
    spec = replace(bike_spec, features=tuple(learned if f.name == "weathersit" else f for f in bike_spec.features))
    frame = pd.DataFrame({"weathersit": ["Clear"] * 6 + ["Mist"] * 3 + ["Light Rain"]})
    assert learned_categories(spec, frame) == {"categories.weathersit": "learned 2 of 3 values (max 2), 90.0% of rows"}


def test_raw_rows_become_one_input_per_feature(
    bike_spec: DatasetSpec, window: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    rows = window[1].iloc[:4].copy()
    rows.loc[rows.index[1], "weathersit"] = None
    arrays = training.feature_arrays(rows, bike_spec)
    assert list(arrays) == list(bike_spec.feature_names)
    assert arrays["temp"].shape == (4, 1) and arrays["temp"].dtype == np.float32
    assert arrays["season"].dtype == object and arrays["season"][0, 0] == rows["season"].iloc[0]
    assert arrays["weathersit"][1, 0] == training.MISSING  # a missing category: the out-of-vocabulary slot
    rows.loc[rows.index[2], "hum"] = np.nan
    with pytest.raises(ValueError, match="numeric feature 'hum' has missing values and its spec says no 'impute'"):
        training.feature_arrays(rows, bike_spec)


def _task(spec: DatasetSpec, target: Target) -> DatasetSpec:
    return replace(spec, target=target)


def test_the_target_is_what_the_model_learns_per_task(bike_spec: DatasetSpec) -> None:
    frame = pd.DataFrame({"y": ["yes", "no", "yes", "maybe"], "n": [3.0, 1.5, 0.0, 2.0]})
    assert training.target_array(frame, _task(bike_spec, Target("n", "regression"))).tolist() == [3.0, 1.5, 0.0, 2.0]
    binary = _task(bike_spec, Target("y", "classification", positive="yes"))
    assert training.target_array(frame, binary).tolist() == [1.0, 0.0, 1.0, 0.0]
    three = _task(bike_spec, Target("y", "multiclass", classes=("no", "maybe", "yes")))
    assert training.target_array(frame, three).tolist() == [2.0, 0.0, 2.0, 1.0]
    other = _task(bike_spec, Target("y", "multiclass", classes=("no", "yes", "perhaps")))
    with pytest.raises(ValueError, match=r"target 'y' holds values not among its classes: \['maybe'\]"):
        training.target_array(frame, other)


def test_unlabelled_rows_are_left_out_and_labelled_frames_kept_as_they_are(bike_spec: DatasetSpec) -> None:
    frame = pd.DataFrame({"cnt": [1.0, None, 3.0], "x": [1, 2, 3]})
    assert training.labelled(frame, bike_spec)["x"].tolist() == [1, 3]
    full = frame.dropna()
    assert training.labelled(full, bike_spec) is full


def test_a_missing_value_is_filled_as_the_spec_says() -> None:
    values = np.array([1.0, np.nan, 2.0, 9.0], dtype="float32")
    assert training.fill_value(Feature("x", "numeric", impute="mean"), values) == pytest.approx(4.0)
    assert training.fill_value(Feature("x", "numeric", impute="median"), values) == 2.0
    assert training.fill_value(Feature("x", "numeric", impute="constant", fill_value=-1.0), values) == -1.0
    empty = np.array([np.nan, np.nan], dtype="float32")
    with pytest.raises(ValueError, match="numeric feature 'x' is missing on every training row; nothing to impute"):
        training.fill_value(Feature("x", "numeric", impute="mean"), empty)


def test_the_latest_slice_of_the_window_validates(
    bike_spec: DatasetSpec, window: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    shuffled = window[0].sample(frac=1.0, random_state=4)
    train_part, val_part = training.split_train_val(shuffled, bike_spec, 0.25)
    assert len(val_part) == round(len(shuffled) * 0.25) and len(train_part) + len(val_part) == len(shuffled)
    assert train_part["timestamp"].max() < val_part["timestamp"].min()  # in time, not at random
    assert len(training.split_train_val(shuffled.iloc[:3], bike_spec, 0.01)[1]) == 1  # at least one row


def test_a_window_too_small_to_train_is_refused(
    bike_spec: DatasetSpec, window: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    with pytest.raises(ValueError, match="training window of bike_sharing has only 8 rows"):
        training.train(window[0].iloc[:10], bike_spec, replace(bike_spec.training, epochs=1, validation_fraction=0.2))


def test_each_task_has_its_head(bike_spec: DatasetSpec, window: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    """Built, not trained: a probability for classification, one per class (summing to 1) for
    multiclass, and outputs shaped as predict returns them."""
    rows = window[0].iloc[:50].assign(busy=lambda d: np.where(d["cnt"] > 100, "yes", "no"))
    binary = _task(bike_spec, Target("busy", "classification", positive="yes"))
    model = training.build_model(binary, rows, binary.training)
    assert model.layers[-1].name == "probability"
    p = training.predict(model, rows.iloc[:5], binary)
    assert p.shape == (5,) and np.all((p > 0) & (p < 1))
    three = _task(bike_spec, Target("busy", "multiclass", classes=("no", "yes", "maybe")))
    probs = training.predict(training.build_model(three, rows, three.training), rows.iloc[:5], three)
    assert probs.shape == (5, 3) and np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert training.shaped(np.zeros((6, 1)), bike_spec).shape == (6,)
    assert training.shaped(np.zeros(6), three).shape == (2, 3)


def test_what_a_model_was_trained_with_is_recorded(trained: training.TrainResult, bike_spec: DatasetSpec) -> None:
    assert trained.params["epochs"] == 8 and trained.params["hidden_units"] == [64, 32]
    assert trained.params["seed"] == bike_spec.training.seed and "impute.hum" not in trained.params
    assert trained.epochs_run == len(trained.history["loss"]) == len(trained.history["val_loss"])
    pins = training.library_versions()
    assert pins and all("==" in pin for pin in pins)
    assert any(pin.startswith(("tensorflow", "keras")) for pin in pins)


def _window_spec(task: str) -> DatasetSpec:
    """A small daily spec of ``task`` with an informative feature ``x``, a flag and a snowfall
    column (missing allowed, filled with the mean)."""
    targets = {
        "regression": {"column": "y", "task": "regression"},
        "classification": {"column": "y", "task": "classification", "positive": "yes"},
        "multiclass": {"column": "y", "task": "multiclass", "classes": ["low", "mid", "high"]},
    }
    return DatasetSpec.from_dict(
        {
            "name": f"window_{task}",
            "time_column": "ts",
            "frequency": "daily",
            "target": targets[task],
            "features": {
                "x": {"type": "numeric"},
                "flag": {"type": "numeric"},
                "snow": {"type": "numeric", "max_null_rate": 1.0, "impute": "mean"},
            },
            "training": {"epochs": 4, "patience": 2, "hidden_units": [8], "batch_size": 32},
        }
    )


def _rows(task: str, n: int, seed: int, flag: float, snow: float) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    y: object = 3 * x + rng.normal(scale=0.1, size=n)
    if task == "classification":
        y = np.where(x > 0, "yes", "no")
    elif task == "multiclass":
        y = np.select([x < -0.4, x > 0.4], ["low", "high"], "mid")
    ts = pd.date_range("2024-01-01", periods=n, freq="h")
    return pd.DataFrame({"ts": ts, "x": x, "flag": flag, "snow": snow, "y": y})


@pytest.mark.parametrize("task", ["regression", "classification", "multiclass"])
def test_a_feature_constant_in_the_window_cannot_blow_the_model_up(task: str) -> None:
    """A flag always 0 and a snowfall column always missing in the training window, both set
    on new data: the model gives them no weight (its predictions are those of the window's
    values), the predictions stay finite and in range, and the run names the features."""
    spec = _window_spec(task)
    result = training.train(_rows(task, 240, 1, flag=0.0, snow=float("nan")), spec)
    assert result.params["constant_features"] == "flag, snow"
    new = _rows(task, 60, 2, flag=1.0, snow=250.0)
    as_in_the_window = new.assign(flag=0.0, snow=float("nan"))
    predicted = training.predict(result.model, new, spec)
    assert np.isfinite(predicted).all()
    np.testing.assert_allclose(predicted, training.predict(result.model, as_in_the_window, spec), rtol=1e-5, atol=1e-6)
    if task == "regression":
        y = new["y"].to_numpy()
        assert np.abs(predicted - y).max() < 10 * y.std()  # not the 1e6 a variance of 0 gave
    else:
        assert predicted.min() >= 0.0 and predicted.max() <= 1.0


def test_features_that_vary_are_not_constant(bike_spec: DatasetSpec, window: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    assert training.constant_features(bike_spec, window[0]) == []
    assert training.constant_features(bike_spec, window[0].assign(temp=12.5)) == ["temp"]
