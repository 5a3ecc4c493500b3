"""Test set-up: every test session gets its own embedded default in a temporary folder.

The environment is set before anything imports Airflow, so the Airflow metadata database,
MLflow store, data registry and model store of the tests never touch ``.local/``.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "include"), str(REPO / "plugins"), str(REPO / "tools")]

from retrainer_dev import localenv  # noqa: E402
from retrainer_dev.stacks.s3 import moto_server  # noqa: E402

SESSION_HOME = Path(tempfile.mkdtemp(prefix="retrainer-tests-"))
localenv.apply(SESSION_HOME, override=True)
os.environ["RETRAINER_TASK_RETRIES"] = "0"
# monitor_drift under dag.test: one look at the data, no waiting for newer data
os.environ.update(RETRAINER_DRIFT_DEFERRABLE="false", RETRAINER_DRIFT_WAIT_S="0", RETRAINER_DRIFT_POKE_S="1")
# watch_landing likewise: one look at the landing location per run
os.environ.update(RETRAINER_LANDING_DEFERRABLE="false", RETRAINER_LANDING_WAIT_S="0", RETRAINER_LANDING_POKE_S="1")

from retrainer.settings import Settings  # noqa: E402
from retrainer.spec.dataset import DatasetSpec  # noqa: E402

pytest_plugins = ["tests.timing"]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    shutil.rmtree(SESSION_HOME, ignore_errors=True)


PIPELINE_VARS = (
    "RETRAINER_HOME",
    "RETRAINER_SPECS_DIR",
    "RETRAINER_DVC_REMOTE",
    "RETRAINER_MODEL_STORE",
    "RETRAINER_MLFLOW_ARTIFACTS",
    "MLFLOW_TRACKING_URI",
)


@pytest.fixture(autouse=True)
def tf_serving_accepts_every_config(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every models.config the code writes, in any test, is one TensorFlow Serving would apply
    after the one before it (tests/tfserving.py): its own proto parses it, and no label names
    a version the previous config did not serve."""
    from retrainer import storage
    from retrainer.serving import modelstore
    from tests.tfserving import TFServing

    write, write_if = modelstore.write_config, modelstore.write_config_if

    def check(store: str, text: str, endpoint_url: str | None) -> None:
        before = storage.read_text(storage.join(store, modelstore.CONFIG_NAME), endpoint_url)
        TFServing.serving(before).apply(text)

    def checked(store: str, text: str, endpoint_url: str | None = None) -> None:
        check(store, text, endpoint_url)
        write(store, text, endpoint_url)

    def checked_if(store: str, text: str, etag: str | None, endpoint_url: str | None = None) -> bool:
        check(store, text, endpoint_url)
        return write_if(store, text, etag, endpoint_url)

    monkeypatch.setattr(modelstore, "write_config", checked)
    monkeypatch.setattr(modelstore, "write_config_if", checked_if)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh RETRAINER_HOME (registry, MLflow store, model store, landing, quarantine)."""
    h = tmp_path / "home"
    (h / "mlflow").mkdir(parents=True)
    monkeypatch.setenv("RETRAINER_HOME", str(h))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{h / 'mlflow' / 'mlflow.db'}")
    for var in ("RETRAINER_DVC_REMOTE", "RETRAINER_MODEL_STORE", "RETRAINER_MLFLOW_ARTIFACTS", "RETRAINER_SPECS_DIR"):
        monkeypatch.delenv(var, raising=False)
    return h


@pytest.fixture
def settings(home: Path) -> Settings:
    return Settings.from_env()


@pytest.fixture(scope="session")
def bike_spec() -> DatasetSpec:
    return DatasetSpec.load(REPO / "include" / "specs" / "bike_sharing.yaml")


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """A real S3 API (moto_server) on loopback for the whole session."""
    with moto_server() as url:
        yield url


@pytest.fixture
def s3_env(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Credentials and endpoint for the loopback S3 API, and a fresh bucket; returns the bucket."""
    import uuid

    import boto3

    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": moto_endpoint,
        "MLFLOW_S3_ENDPOINT_URL": moto_endpoint,
    }.items():
        monkeypatch.setenv(key, value)
    bucket = f"retrainer-{uuid.uuid4().hex[:8]}"
    boto3.client("s3", endpoint_url=moto_endpoint).create_bucket(Bucket=bucket)
    return bucket
