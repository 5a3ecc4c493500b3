"""Training, the MLflow registry and deployment on real components (Keras, MLflow, SavedModel)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from retrainer.data.demo_data import load_bike_sharing, split_periods
from retrainer.model import training
from retrainer.records import RunContext
from retrainer.registry.client import Registry
from retrainer.registry.versions import ChampionMovedError
from retrainer.schema import CHAMPION
from retrainer.settings import Settings
from retrainer.spec.dataset import DatasetSpec


@pytest.fixture(scope="module")
def window(bike_spec: DatasetSpec) -> tuple[pd.DataFrame, pd.DataFrame]:
    parts = split_periods(load_bike_sharing(), bike_spec)
    return pd.concat([parts["2011-04"], parts["2011-05"]], ignore_index=True), parts["2011-06"]


@pytest.fixture(scope="module")
def trained(bike_spec: DatasetSpec, window: tuple[pd.DataFrame, pd.DataFrame]) -> training.TrainResult:
    return training.train(window[0], bike_spec, replace(bike_spec.training, epochs=8))


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


