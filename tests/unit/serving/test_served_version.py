"""One version as the model server serves it: the SavedModel of its folder, or its TFLite model
when the folder holds one, each taking one array per feature and answering as the model does."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from retrainer.model import training
from retrainer.serving import served_version
from retrainer.serving.export import tflite_predictions
from retrainer.serving.modelstore import TFLITE_MODEL
from retrainer.spec.dataset import DatasetSpec


@pytest.fixture(scope="module")
def rows(bike_window: tuple[pd.DataFrame, pd.DataFrame]) -> pd.DataFrame:
    return bike_window[1].iloc[:24]


def _arrays(rows: pd.DataFrame, spec: DatasetSpec) -> dict[str, np.ndarray]:
    """A request's columns as the server hands them over: one flat array per input."""
    return {name: a.reshape(-1) for name, a in training.feature_arrays(rows, spec).items()}


def test_a_saved_model_is_served_with_its_inputs(
    bike_saved_model: Path, bike_trained: training.TrainResult, bike_spec: DatasetSpec, rows: pd.DataFrame
) -> None:
    version = served_version.load(bike_saved_model)
    assert version.artifact == served_version.SAVEDMODEL
    assert set(version.inputs) == set(bike_spec.feature_names)
    assert version.inputs["temp"] == np.float32 and version.inputs["season"] is object
    out = version.call(_arrays(rows, bike_spec))
    expected = training.predict(bike_trained.model, rows, bike_spec)
    np.testing.assert_allclose(np.asarray(out).reshape(-1), expected, rtol=1e-5, atol=1e-4)
    version.warm()  # one row of zeros and empty categories goes through


def test_a_folder_with_a_tflite_model_serves_that_model(
    tmp_path: Path,
    bike_saved_model: Path,
    bike_tflite: tuple[bytes, int],
    bike_spec: DatasetSpec,
    rows: pd.DataFrame,
) -> None:
    folder = tmp_path / "1"
    shutil.copytree(bike_saved_model, folder)
    (folder / TFLITE_MODEL).write_bytes(bike_tflite[0])
    version = served_version.load(folder)
    assert version.artifact == served_version.TFLITE
    assert set(version.inputs) == set(bike_spec.feature_names) and version.inputs["season"] is object
    out = np.asarray(version.call(_arrays(rows, bike_spec))).reshape(-1)
    np.testing.assert_allclose(out, tflite_predictions(bike_tflite[0], rows, bike_spec), rtol=1e-5, atol=1e-4)
    version.warm()


def test_a_tflite_model_answers_each_of_many_threads_as_alone(
    tmp_path: Path, bike_saved_model: Path, bike_tflite: tuple[bytes, int], bike_spec: DatasetSpec, rows: pd.DataFrame
) -> None:
    """An interpreter runs one call at a time: calls from the server's threads take turns."""
    (tmp_path / "1").mkdir()
    (tmp_path / "1" / TFLITE_MODEL).write_bytes(bike_tflite[0])
    version = served_version.load(tmp_path / "1")
    alone = [np.asarray(version.call(_arrays(rows.iloc[[i]], bike_spec))).reshape(-1) for i in range(8)]
    got: dict[int, np.ndarray] = {}

    def client(i: int) -> None:
        for _ in range(5):
            got[i] = np.asarray(version.call(_arrays(rows.iloc[[i]], bike_spec))).reshape(-1)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    for i in range(8):
        np.testing.assert_allclose(got[i], alone[i], rtol=1e-6)


def test_a_folder_without_a_model_is_refused(tmp_path: Path) -> None:
    with pytest.raises(OSError, match="saved_model"):
        served_version.load(tmp_path)
