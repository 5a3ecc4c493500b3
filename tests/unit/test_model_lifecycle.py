"""Training, the MLflow registry and deployment on real components (Keras, MLflow, SavedModel)."""

from __future__ import annotations

from dataclasses import replace

import pandas as pd
import pytest

from retrainer.data.demo_data import load_bike_sharing, split_periods
from retrainer.model import training
from retrainer.records import RunContext
from retrainer.registry.client import Registry
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
