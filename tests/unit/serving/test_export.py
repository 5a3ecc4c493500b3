"""Deployment: the champion exported as a SavedModel (with its request contract and, when it
serves one, its TFLite model), published into the model store in one step, and checked from the
store against the registry model."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from retrainer.model import training
from retrainer.serving import export, modelstore, request_contract
from retrainer.settings import Settings
from retrainer.spec.dataset import DatasetSpec


@pytest.fixture(scope="module")
def window(bike_window: tuple[pd.DataFrame, pd.DataFrame]) -> tuple[pd.DataFrame, pd.DataFrame]:
    return bike_window


@pytest.fixture(scope="module")
def trained(bike_trained: training.TrainResult) -> training.TrainResult:
    return bike_trained


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


def test_served_and_expected_agree_within_a_tolerance_relative_to_their_scale() -> None:
    diff, allowed = export.compare(np.array([0.1, 0.2005]), np.array([0.1, 0.2]), 1e-3)
    assert diff == pytest.approx(5e-4) and allowed == 1e-3  # small predictions: at least 1 x tolerance
    diff, allowed = export.compare(np.array([1000.4, -20.0]), np.array([1000.0, -20.0]), 1e-3)
    assert diff == pytest.approx(0.4) and allowed == pytest.approx(1.0)  # scaled by the largest |prediction|
    assert export.compare(np.array([1, 2]), np.array([1.0, 2.0]), 0.0) == (0.0, 0.0)


def test_an_export_answers_as_the_model_and_carries_its_contract(
    bike_spec: DatasetSpec,
    bike_saved_model: Path,
    trained: training.TrainResult,
    window: tuple[pd.DataFrame, pd.DataFrame],
    tmp_path: Path,
) -> None:
    assert (bike_saved_model / modelstore.SAVED_MODEL).is_file()
    assert request_contract.read(bike_saved_model) == request_contract.from_spec(bike_spec)
    sample = window[1].iloc[:32]
    served = export.serve_predictions(str(bike_saved_model), sample, bike_spec, None)
    np.testing.assert_allclose(served, training.predict(trained.model, sample, bike_spec), rtol=1e-5, atol=1e-4)
    bare = export.export_saved_model(trained.model, tmp_path / "bare")  # no spec: no contract
    assert request_contract.read(bare) is None and (bare / modelstore.SAVED_MODEL).is_file()


def test_a_version_is_published_once_with_its_extra_files(
    settings: Settings, bike_spec: DatasetSpec, trained: training.TrainResult
) -> None:
    location = export.version_location(settings, bike_spec, "3")
    assert location == str(Path(settings.model_store) / "bike_demand" / "3")
    res = export.deploy(settings, bike_spec, "3", trained.model, {modelstore.TFLITE_MODEL: b"lite"})
    assert res == export.DeployResult(location, True)
    assert export.served_tflite(settings, location) == b"lite"
    assert export.served_artifact(settings, bike_spec, "3", location) == "tflite"  # no copy kept: not compared
    assert request_contract.read(Path(location)) == request_contract.from_spec(bike_spec)
    assert export.deploy(settings, bike_spec, "3", None) == export.DeployResult(location, False)  # never again
    assert sorted(p.name for p in Path(settings.model_store, "bike_demand").iterdir()) == ["3"]  # no staging left
    assert export.tflite_location(settings, bike_spec, "3") == str(
        Path(settings.model_store) / "bike_demand" / "tflite" / "3.tflite"
    )


def test_the_tflite_model_answers_close_to_the_full_model(
    bike_spec: DatasetSpec,
    bike_tflite: tuple[bytes, int],
    trained: training.TrainResult,
    window: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    blob, saved_size = bike_tflite
    assert blob[4:8] == b"TFL3" and 0 < len(blob) < saved_size  # a flatbuffer, smaller than the SavedModel
    sample = window[1].iloc[:32]
    lite = export.tflite_predictions(blob, sample, bike_spec)
    full = training.predict(trained.model, sample, bike_spec)
    assert lite.shape == full.shape
    assert export.compare(lite, full, 0.05)[0] <= export.compare(lite, full, 0.05)[1]  # within 5% of the scale
