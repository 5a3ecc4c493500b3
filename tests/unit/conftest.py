"""Fixtures the unit tests share: the demo data split by month, one small trained model for the
session, and a fresh home whose MLflow store is ready at once.

A new SQLite MLflow store takes a second or two to create and migrate; every unit test that
asks for ``home`` (or ``settings``) gets a copy of one migrated while the session started, the
same empty store MLflow would have made.
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from retrainer.spec.dataset import DatasetSpec


@pytest.fixture(scope="session")
def mlflow_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty MLflow SQLite store, created and migrated once."""
    from retrainer.registry.session import mlflow_client

    db = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    mlflow_client(f"sqlite:///{db}")
    return db


@pytest.fixture
def home(home: Path, mlflow_template: Path) -> Path:
    """tests/conftest.py's fresh home, its MLflow store in place already."""
    shutil.copyfile(mlflow_template, home / "mlflow" / "mlflow.db")
    return home


@pytest.fixture(scope="session")
def bike_months(bike_spec: DatasetSpec) -> dict[str, pd.DataFrame]:
    """The demo data, one frame per month (read once; tests copy before they change one)."""
    from retrainer.data.demo_data import load_bike_sharing, split_periods

    return split_periods(load_bike_sharing(), bike_spec)


@pytest.fixture(scope="session")
def bike_window(bike_months: dict[str, pd.DataFrame]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A training window (April and May 2011) and its holdout (June)."""
    return pd.concat([bike_months["2011-04"], bike_months["2011-05"]], ignore_index=True), bike_months["2011-06"]


@pytest.fixture(scope="session")
def bike_trained(bike_spec: DatasetSpec, bike_window: tuple[pd.DataFrame, pd.DataFrame]):  # type: ignore[no-untyped-def]
    """A bike model trained on the window for 8 epochs (a ``training.TrainResult``), for every
    test that needs a real model and does not change it."""
    from retrainer.model import training

    return training.train(bike_window[0], bike_spec, replace(bike_spec.training, epochs=8))


@pytest.fixture(scope="session")
def bike_saved_model(
    tmp_path_factory: pytest.TempPathFactory,
    bike_spec: DatasetSpec,
    bike_trained,  # type: ignore[no-untyped-def]
) -> Path:
    """``bike_trained``'s model exported as a SavedModel with its request contract (a folder
    the tests copy, never change)."""
    from retrainer.serving.export import export_saved_model

    return export_saved_model(bike_trained.model, tmp_path_factory.mktemp("saved") / "model", bike_spec)


@pytest.fixture(scope="session")
def bike_tflite(bike_trained) -> tuple[bytes, int]:  # type: ignore[no-untyped-def]
    """``bike_trained``'s model converted to TFLite, and the size of the SavedModel it came from."""
    from retrainer.serving.export import convert_tflite

    return convert_tflite(bike_trained.model)
