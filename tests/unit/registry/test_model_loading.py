"""Registered models loaded back as the Keras models they were logged as, by version or URI."""

from __future__ import annotations

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.exceptions import MlflowException

from retrainer.model import training
from retrainer.records import RunContext
from retrainer.registry.client import Registry
from retrainer.registry.model_loading import ModelLoading
from retrainer.registry.session import Session
from retrainer.settings import Settings
from retrainer.spec.dataset import DatasetSpec
from tests.helpers import log_keras_model


def test_a_version_is_named_by_model_and_number(settings: Settings, bike_spec: DatasetSpec) -> None:
    assert ModelLoading(Session(settings)).uri(bike_spec, "7") == "models:/bike_demand/7"


def test_a_registered_version_answers_as_the_model_that_was_logged(
    settings: Settings,
    bike_spec: DatasetSpec,
    bike_trained: training.TrainResult,
    bike_window: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    registry = Registry(settings)
    run_id, uri = log_keras_model(registry, bike_spec, RunContext("retrain_model", "manual__1"), bike_trained.model)
    version, _ = registry.versions.register(bike_spec, run_id, uri, {})
    outside = mlflow.get_tracking_uri()
    rows = bike_window[1].iloc[:16]
    expected = training.predict(bike_trained.model, rows, bike_spec)
    for model in (registry.models.load_keras(bike_spec, version), registry.models.load_uri(uri)):
        np.testing.assert_allclose(training.predict(model, rows, bike_spec), expected, rtol=1e-6)
    assert mlflow.get_tracking_uri() == outside  # loaded through the settings' store, nothing left set


def test_a_version_that_does_not_exist_is_an_mlflow_error(settings: Settings, bike_spec: DatasetSpec) -> None:
    with pytest.raises(MlflowException, match="bike_demand"):
        ModelLoading(Session(settings)).load_keras(bike_spec, "3")
