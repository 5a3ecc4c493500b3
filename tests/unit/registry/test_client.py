"""The registry client: one MLflow client of the settings' tracking URI shared by its parts,
MLflow's global state left as it was, and missing things told apart by MLflow's error codes."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from retrainer.registry.client import Registry
from retrainer.schema import CHAMPION
from retrainer.settings import Settings
from retrainer.spec.dataset import DatasetSpec


def test_the_parts_share_one_session_and_one_client(settings: Settings) -> None:
    registry = Registry(settings)
    assert registry.tracking_uri == settings.mlflow_tracking_uri == registry.session.tracking_uri
    parts = (registry.runs, registry.versions, registry.models)
    assert all(part.session is registry.session for part in parts)
    assert registry.runs.client is registry.versions.client is registry.client is registry.session.client
    assert registry.settings is settings


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
