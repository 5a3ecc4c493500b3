"""The stages' world: a home whose data registry holds three months of the bike data, a small
bike spec, and an empty MLflow store. The months are versioned once per session; each test gets
a copy of that home of its own (``world``), so what a stage writes stays with its test."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from retrainer.records import RunContext, TrainingPlan
from retrainer.registry.client import Registry
from retrainer.settings import Settings
from retrainer.spec.dataset import DatasetSpec
from tests.helpers import bike_spec_data, log_keras_model, write_spec

#: the months versioned in the world, as v0001 to v0003
MONTHS = ("2011-04", "2011-05", "2011-06")


def settings_of(home: Path) -> Settings:
    """The settings of a home with its own specs folder, whatever this process's environment says."""
    return Settings.from_env({"RETRAINER_HOME": str(home), "RETRAINER_SPECS_DIR": str(home / "specs")})


def small_spec_data() -> dict[str, Any]:
    """The bike spec with a two-month window, two epochs and a short deploy check."""
    data = bike_spec_data()
    data["training"].update(window_periods=2, epochs=2)
    data["deploy"].update(check_rows=16, latency_requests=5)
    return data


@pytest.fixture(scope="session")
def data_home(tmp_path_factory: pytest.TempPathFactory, bike_months: dict[str, pd.DataFrame]) -> Path:
    from retrainer.data.demo_data import write_batch
    from retrainer.data.validation import file_md5
    from retrainer.data.versioning import DataRegistry

    home = tmp_path_factory.mktemp("world")
    (home / "specs").mkdir()
    spec = DatasetSpec.load(write_spec(home / "specs", small_spec_data(), "bike_sharing"))
    registry = DataRegistry(settings_of(home))
    for period in MONTHS:
        path = write_batch(bike_months[period], spec, home / "delivered" / f"{period}.csv")
        registry.add_batch(spec, period, path, file_md5(path))
    return home


@pytest.fixture
def world(data_home: Path, tmp_path: Path, mlflow_template: Path) -> Settings:
    """A home of this test's own: the three versioned months, the small spec, an empty MLflow store."""
    home = tmp_path / "home"
    shutil.copytree(data_home, home, symlinks=True)
    (home / "mlflow").mkdir(exist_ok=True)
    shutil.copyfile(mlflow_template, home / "mlflow" / "mlflow.db")
    return settings_of(home)


@pytest.fixture
def world_spec(world: Settings) -> DatasetSpec:
    return world.load_spec("bike_sharing")


def plan_of(settings: Settings, window: int | None = None) -> TrainingPlan:
    """The plan of a manual run on the latest data version: April and May, June held out."""
    from retrainer.pipeline.train import plan_training

    return plan_training(settings, "bike_sharing", "latest", window)


def logged(settings: Settings, spec: DatasetSpec, run: str, model: Any, plan: TrainingPlan) -> tuple[str, str]:
    """A training run of ``run`` with ``model`` logged on it, tagged as the train stage tags it."""
    from retrainer import schema

    registry = Registry(settings)
    ctx = RunContext("retrain_model", run)
    registry.runs.get_or_create(spec, ctx, schema.training_run_tags(plan))
    return log_keras_model(registry, spec, ctx, model)
