"""One MLflow connection: a client per tracking URI (clients of a new SQLite store made one at a
time), MLflow's fluent API pointed at the settings for a block only, and error codes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from retrainer.registry.session import TRACKING_URI_VAR, Session, error_code, is_error, mlflow_client
from retrainer.settings import Settings


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


def test_a_sqlite_store_is_created_in_its_folder_under_a_lock_file(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'new' / 'mlflow.db'}"
    client = mlflow_client(uri)
    assert client.tracking_uri == uri and [e.name for e in client.search_experiments()] == ["Default"]
    assert (tmp_path / "new" / "mlflow.db").is_file() and (tmp_path / "new" / "mlflow.db.init-lock").is_file()


def test_a_server_client_takes_no_lock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    client = mlflow_client("http://127.0.0.1:9")  # nothing listens: a client is made without a call
    assert client.tracking_uri == "http://127.0.0.1:9" and list(tmp_path.iterdir()) == []


def test_errors_are_told_apart_by_their_code() -> None:
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST

    missing = MlflowException("gone", error_code=RESOURCE_DOES_NOT_EXIST)
    assert error_code(missing) == "RESOURCE_DOES_NOT_EXIST"
    assert is_error(missing, "RESOURCE_ALREADY_EXISTS", "RESOURCE_DOES_NOT_EXIST")
    assert not is_error(missing, "INVALID_STATE")
    assert not is_error(LookupError("RESOURCE_DOES_NOT_EXIST"), "RESOURCE_DOES_NOT_EXIST")  # not MLflow's
    assert error_code(ValueError("x")) is None


@pytest.mark.parametrize("before", [None, "sqlite:////somewhere/else.db"])
def test_the_fluent_api_points_at_the_settings_for_the_block_only(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, before: str | None
) -> None:
    import mlflow

    if before is None:
        monkeypatch.delenv(TRACKING_URI_VAR, raising=False)
    else:
        monkeypatch.setenv(TRACKING_URI_VAR, before)
    outside = mlflow.get_tracking_uri()
    session = Session(settings)
    with session.tracking():
        assert mlflow.get_tracking_uri() == settings.mlflow_tracking_uri
    assert os.environ.get(TRACKING_URI_VAR) == before and mlflow.get_tracking_uri() == outside
    with pytest.raises(RuntimeError, match="inside"), session.tracking():
        raise RuntimeError("inside")
    assert os.environ.get(TRACKING_URI_VAR) == before and mlflow.get_tracking_uri() == outside
