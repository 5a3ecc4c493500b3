"""One MLflow connection for the registry's parts: the client of the settings' tracking URI,
MLflow's fluent API pointed at it only for a ``with`` block, and missing things told apart by
MLflow's error codes, never by message text."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from retrainer.settings import Settings

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

TRACKING_URI_VAR = "MLFLOW_TRACKING_URI"


def error_code(exc: BaseException) -> str | None:
    """MLflow's error code of an exception (``RESOURCE_DOES_NOT_EXIST``, ...), or None."""
    return getattr(exc, "error_code", None)


def is_error(exc: BaseException, *codes: str) -> bool:
    """Whether ``exc`` is an MLflow error with one of ``codes``."""
    from mlflow.exceptions import MlflowException

    return isinstance(exc, MlflowException) and error_code(exc) in codes


def mlflow_client(tracking_uri: str) -> MlflowClient:
    """An MLflow client. On a SQLite store (the embedded default) the first client creates and
    migrates the database; tasks that start at once (a mapped drift check per dataset) would
    migrate it twice over (``table _alembic_tmp_metrics already exists``), so clients of one
    SQLite file are made one at a time, under a lock file beside it."""
    import fcntl

    import mlflow

    if not tracking_uri.startswith("sqlite:///"):
        return mlflow.MlflowClient(tracking_uri=tracking_uri)
    db = Path(tracking_uri.removeprefix("sqlite:///"))
    db.parent.mkdir(parents=True, exist_ok=True)
    with open(f"{db}.init-lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            return mlflow.MlflowClient(tracking_uri=tracking_uri)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


class Session:
    """The MLflow client of ``settings``; it sets no global MLflow state when it is made."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.tracking_uri = settings.mlflow_tracking_uri
        self.client: MlflowClient = mlflow_client(self.tracking_uri)

    @contextmanager
    def tracking(self) -> Iterator[None]:
        """MLflow's fluent API pointed at these settings for the duration; afterwards MLflow's
        global state is exactly what it was (``mlflow.set_tracking_uri`` also writes the
        ``MLFLOW_TRACKING_URI`` environment variable, which the settings of later tasks read)."""
        import mlflow
        from mlflow.tracking._tracking_service import utils as tracking_state

        saved_uri = getattr(tracking_state, "_tracking_uri", None)  # None: MLflow follows the environment
        saved_env = os.environ.get(TRACKING_URI_VAR)
        mlflow.set_tracking_uri(self.tracking_uri)
        try:
            yield
        finally:
            tracking_state.set_tracking_uri(saved_uri)  # type: ignore[arg-type]  # None resets it
            if saved_env is None:
                os.environ.pop(TRACKING_URI_VAR, None)
            else:
                os.environ[TRACKING_URI_VAR] = saved_env
