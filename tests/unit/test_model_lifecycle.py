"""Training, the MLflow registry and deployment on real components (Keras, MLflow, SavedModel)."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from retrainer.data.demo_data import load_bike_sharing, split_periods
from retrainer.model import training
from retrainer.records import RunContext
from retrainer.registry.client import Registry
from retrainer.registry.versions import ChampionMovedError
from retrainer.schema import CHAMPION
from retrainer.serving import export
from retrainer.settings import Settings
from retrainer.spec.dataset import DatasetSpec


@pytest.fixture(scope="module")
def window(bike_spec: DatasetSpec) -> tuple[pd.DataFrame, pd.DataFrame]:
    parts = split_periods(load_bike_sharing(), bike_spec)
    return pd.concat([parts["2011-04"], parts["2011-05"]], ignore_index=True), parts["2011-06"]


@pytest.fixture(scope="module")
def trained(bike_spec: DatasetSpec, window: tuple[pd.DataFrame, pd.DataFrame]) -> training.TrainResult:
    return training.train(window[0], bike_spec, replace(bike_spec.training, epochs=8))


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


def _log(registry: Registry, spec: DatasetSpec, ctx: RunContext, model: object) -> tuple[str, str]:
    import mlflow.tensorflow

    run_id, _ = registry.runs.get_or_create(spec, ctx, {})
    with registry.runs.active(run_id):
        info = mlflow.tensorflow.log_model(model, name="model")
    return run_id, info.model_uri


def test_registry_is_idempotent_and_promotion_is_compare_and_set(
    settings: Settings, bike_spec: DatasetSpec, trained: training.TrainResult
) -> None:
    registry = Registry(settings)
    ctx = RunContext(dag_id="retrain_model", run_id="manual__1")
    run_id, uri = _log(registry, bike_spec, ctx, trained.model)
    again, created = registry.runs.get_or_create(bike_spec, RunContext("retrain_model", "manual__1", try_number=2), {})
    assert again == run_id and not created
    assert registry.runs.tags(run_id)["airflow.try_number"] == "2"

    v1, made = registry.versions.register(bike_spec, run_id, uri, {"k": "a"})
    v1b, made_again = registry.versions.register(bike_spec, run_id, uri, {"k": "b"})
    assert (v1, made) == ("1", True) and (v1b, made_again) == ("1", False)
    assert len(registry.client.search_model_versions(f"name = '{bike_spec.model_name}'")) == 1
    assert registry.versions.tags(bike_spec, "1")["k"] == "b"

    assert registry.versions.promote(bike_spec, v1, None) is None
    assert registry.versions.alias(bike_spec, CHAMPION) == "1"
    run2, uri2 = _log(registry, bike_spec, RunContext("retrain_model", "manual__2"), trained.model)
    v2, _ = registry.versions.register(bike_spec, run2, uri2, {})
    with pytest.raises(ChampionMovedError, match="champion is v1"):
        registry.versions.promote(bike_spec, v2, expected_champion=None)  # evaluation assumed no champion
    assert registry.versions.alias(bike_spec, CHAMPION) == "1"
    assert registry.versions.promote(bike_spec, v2, expected_champion="1") == "1"
    assert registry.versions.alias(bike_spec, CHAMPION) == "2"


def test_registry_sets_no_global_state_and_tells_missing_things_by_error_code(
    settings: Settings, bike_spec: DatasetSpec, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    import mlflow
    from mlflow.exceptions import MlflowException

    before, env = mlflow.get_tracking_uri(), os.environ.get("MLFLOW_TRACKING_URI")
    other = f"sqlite:///{Path(settings.home) / 'mlflow' / 'other.db'}"
    registry = Registry(replace(settings, mlflow_tracking_uri=other))
    assert mlflow.get_tracking_uri() == before  # constructing it changed nothing global
    with registry.tracking():
        assert mlflow.get_tracking_uri() == registry.tracking_uri
    # afterwards, nothing global is left behind: neither MLflow's URI nor the environment
    assert (mlflow.get_tracking_uri(), os.environ.get("MLFLOW_TRACKING_URI")) == (before, env)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:////elsewhere.db")
    assert mlflow.get_tracking_uri() == "sqlite:////elsewhere.db"  # MLflow still follows the environment

    registry = Registry(settings)
    assert registry.versions.alias(bike_spec, CHAMPION) is None  # no such model yet
    assert not registry.versions.exists(bike_spec, "1")
    registry.client.create_registered_model(bike_spec.model_name)
    assert registry.versions.alias(bike_spec, CHAMPION) is None  # no such alias
    assert registry.versions.aliases(bike_spec) == {}

    def unreachable(name: str) -> None:
        raise MlflowException("the tracking server is down", error_code="TEMPORARILY_UNAVAILABLE")

    monkeypatch.setattr(registry.client, "get_registered_model", unreachable)
    with pytest.raises(MlflowException, match="down"):  # anything else is not "no alias"
        registry.versions.alias(bike_spec, CHAMPION)


def test_deploy_is_tf_serving_layout_and_verified(
    settings: Settings, bike_spec: DatasetSpec, window: tuple[pd.DataFrame, pd.DataFrame], trained: training.TrainResult
) -> None:
    res = export.deploy(settings, bike_spec, "7", trained.model)
    path = Path(settings.model_store) / bike_spec.model_name / "7"
    assert res.created and res.location == str(path)
    assert (path / "saved_model.pb").is_file() and (path / "variables").is_dir()
    assert not export.deploy(settings, bike_spec, "7", trained.model).created
    diff = export.verify(settings, bike_spec, res.location, trained.model, window[1].iloc[:32])
    assert diff < 1e-3


def test_verify_catches_a_different_model(
    settings: Settings, bike_spec: DatasetSpec, window: tuple[pd.DataFrame, pd.DataFrame], trained: training.TrainResult
) -> None:
    other = training.train(window[0], bike_spec, replace(bike_spec.training, epochs=1, seed=1))
    res = export.deploy(settings, bike_spec, "8", other.model)
    with pytest.raises(export.DeployVerificationError, match="differ from the registry model"):
        export.verify(settings, bike_spec, res.location, trained.model, window[1].iloc[:32])


def _first_client(uri: str) -> int:
    from retrainer.registry.session import mlflow_client

    return len(mlflow_client(uri).search_experiments())


def test_tasks_starting_at_once_create_the_sqlite_store_once(tmp_path: Path) -> None:
    """Mapped drift checks start together on a fresh embedded store: each one's first MLflow
    client would create and migrate the SQLite file; they take turns, and every one works."""
    import multiprocessing

    uri = f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}"
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        assert pool.map(_first_client, [uri] * 4) == [1, 1, 1, 1]  # the Default experiment, in each


RELEASE_WITHOUT_TENSORFLOW = """
import json, sys
from retrainer.registry import approval
from retrainer.records import Evaluation, RunContext, TrainedRun, TrainingPlan
from retrainer.pipeline import release
from retrainer.registry.client import Registry
from retrainer.settings import Settings

s = Settings.from_env()
spec = s.load_spec("bike_sharing")
plan = TrainingPlan("bike_sharing", spec.model_name, "v0001", "bike_sharing/v0001", "0" * 40, ["2011-04", "2011-05"],
                    ["2011-06"], 2)
ev = Evaluation(True, "rmse", 1.0, 2.0, None, None, [], [], None, {}, {}, None, 10)
trained = TrainedRun(sys.argv[1], sys.argv[2], False)
registered = release.register(s, plan, trained, ev, RunContext("retrain_model", "manual__3"))
approval.recorded(Registry(s).versions.tags(spec, registered.version))  # what the review reads
promoted = release.promote(s, plan, ev, registered, trained)
print(json.dumps({"promoted": promoted.promoted, "imported": [m for m in ("tensorflow", "keras") if m in sys.modules]}))
"""


def test_the_release_steps_do_not_import_tensorflow(
    settings: Settings, bike_spec: DatasetSpec, trained: training.TrainResult
) -> None:
    """register, the review's decision and promote work on MLflow alone: their task processes
    never pay for TensorFlow."""
    import json
    import subprocess
    import sys

    from tests.helpers import subprocess_env

    run_id, uri = _log(Registry(settings), bike_spec, RunContext("retrain_model", "manual__3"), trained.model)
    out = subprocess.run(
        [sys.executable, "-c", RELEASE_WITHOUT_TENSORFLOW, run_id, uri],
        capture_output=True,
        text=True,
        env=subprocess_env(),
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {"promoted": True, "imported": []}


def test_a_folder_published_again_serves_what_the_version_served(tmp_path: Path, bike_spec: DatasetSpec) -> None:
    """A rollback to a version whose folder is gone publishes it again with the TFLite model
    the version served (kept beside the store), and says what the folder serves; a folder's
    model.tflite that is not the one deployed for the version is refused."""
    settings = Settings.from_env({"RETRAINER_HOME": str(tmp_path)})
    kept = Path(export.tflite_location(settings, bike_spec, "3"))
    kept.parent.mkdir(parents=True)
    kept.write_bytes(b"the v3 tflite model")
    republished = export.tflite_to_republish(settings, bike_spec, "3", "tflite")
    assert republished == {"model.tflite": b"the v3 tflite model"}
    assert export.tflite_to_republish(settings, bike_spec, "3", "savedmodel") == {}
    assert export.tflite_to_republish(settings, bike_spec, "4", "tflite") == {}  # no copy kept: SavedModel
    folder = tmp_path / "folder"
    folder.mkdir()
    assert export.served_artifact(settings, bike_spec, "3", str(folder)) == "savedmodel"
    (folder / "model.tflite").write_bytes(b"the v3 tflite model")
    assert export.served_artifact(settings, bike_spec, "3", str(folder)) == "tflite"
    (folder / "model.tflite").write_bytes(b"another model")
    with pytest.raises(export.DeployVerificationError, match="not the TFLite model deployed for v3"):
        export.served_artifact(settings, bike_spec, "3", str(folder))
