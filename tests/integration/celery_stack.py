"""The distributed engine, on one machine as if on several: Airflow with the CeleryExecutor.

``celery_stack`` (module fixture) runs the API server, the scheduler (CeleryExecutor), the
DAG processor and the triggerer over a fresh PostgreSQL metadata database, Redis on loopback
as the broker (a database of its own, emptied before and after), the PostgreSQL metadata
database as the result backend (``db+postgresql+psycopg2://``), an MLflow tracking server
(PostgreSQL backend store, artifacts on S3), and two ``airflow celery worker`` processes,
each with a home of its own (its own ``RETRAINER_HOME``, data registry clone and Airflow
logs: two hosts) and its own hostname. Every store the tasks share is on the S3 API of
``moto_server`` (landing, quarantine, validation results, DVC remote, MLflow artifacts,
model store) or behind a URL (the data registry's bare git remote, MLflow's server).

It needs PostgreSQL and Redis; without them it skips, saying which is missing (with
``RETRAINER_REQUIRE_CELERY=1``, as in CI, it fails instead).
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import REPO, free_port, small_bike_spec

from .airflow_stack import AirflowStack, Component, make_stack, metadata_db, serve

WORKERS = ("worker-a.retrainer.test", "worker-b.retrainer.test")
DEFAULT_REDIS = "redis://127.0.0.1:6379"


def _unavailable(reason: str) -> None:
    if os.environ.get("RETRAINER_REQUIRE_CELERY") == "1":
        pytest.fail(f"the Celery tier cannot run: {reason}")
    pytest.skip(f"the Celery tier cannot run: {reason}")


def _redis_database() -> tuple[str, object]:
    """A Redis database of its own for the broker (emptied now and at the end)."""
    import redis

    server = os.environ.get("RETRAINER_TEST_REDIS", DEFAULT_REDIS).rstrip("/")
    index = 1 + secrets.randbelow(15)
    client = redis.Redis.from_url(f"{server}/{index}")
    try:
        client.ping()
    except redis.RedisError as exc:
        _unavailable(f"Redis at {server} is not reachable ({exc})")
    client.flushdb()
    return f"{server}/{index}", client


def _shared_settings(root: Path, bucket: str, s3: str, mlflow_url: str) -> dict[str, str]:
    """What every host is told: all shared state on S3 or behind a URL."""
    return {
        "RETRAINER_SPECS_DIR": str(root / "specs"),
        "RETRAINER_LANDING": f"s3://{bucket}/landing",
        "RETRAINER_QUARANTINE": f"s3://{bucket}/quarantine",
        "RETRAINER_VALIDATION_RESULTS": f"s3://{bucket}/validation",
        "RETRAINER_DVC_REMOTE": f"s3://{bucket}/dvc",
        "RETRAINER_MODEL_STORE": f"s3://{bucket}/models",
        "RETRAINER_MLFLOW_ARTIFACTS": f"s3://{bucket}/mlflow",
        "RETRAINER_DATA_REGISTRY_URL": str(root / "registry.git"),
        "MLFLOW_TRACKING_URI": mlflow_url,
        "RETRAINER_MLFLOW_UI_URL": mlflow_url,
        "AWS_ENDPOINT_URL": s3,
        "MLFLOW_S3_ENDPOINT_URL": s3,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        # the sensors wait in the triggerer and look again every 2 s
        "RETRAINER_DRIFT_DEFERRABLE": "true",
        "RETRAINER_DRIFT_POKE_S": "2",
        "RETRAINER_DRIFT_WAIT_S": "900",
        "RETRAINER_LANDING_DEFERRABLE": "true",
        "RETRAINER_LANDING_POKE_S": "2",
        "RETRAINER_LANDING_WAIT_S": "900",
    }


def _worker(stack: AirflowStack, hostname: str) -> Component:
    """One Celery worker on a host of its own: its home, its clone, its logs, its hostname."""
    host = stack.root / hostname.split(".")[0]
    airflow_home = host / "airflow"
    (host / "home" / "mlflow").mkdir(parents=True)
    airflow_home.mkdir()
    env = {
        "RETRAINER_HOME": str(host / "home"),
        "AIRFLOW_HOME": str(airflow_home),
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(airflow_home / "logs"),
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
        # the task instances record which host ran them
        "AIRFLOW__CORE__HOSTNAME_CALLABLE": "tests.integration.hostname.from_env",
        "RETRAINER_TEST_HOSTNAME": hostname,
        "PYTHONPATH": os.pathsep.join([stack.env["PYTHONPATH"], str(REPO)]),
    }
    args = [
        sys.executable,
        "-m",
        "airflow",
        "celery",
        "worker",
        "--celery-hostname",
        f"{hostname}@%h",
        "--concurrency",
        "1",
    ]
    return Component(hostname.split(".")[0], args, env)


def _mlflow_server(url: str, backend: str, artifacts: str) -> Component:
    """The MLflow tracking server: PostgreSQL backend store; clients write artifacts to S3 themselves."""
    port = url.rsplit(":", 1)[1]
    args = [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--backend-store-uri",
        backend,
        "--default-artifact-root",
        artifacts,
        "--no-serve-artifacts",
        "--host",
        "127.0.0.1",
        "--port",
        port,
        "--workers",
        "1",
    ]
    # without MLflow's job runner (GenAI jobs; eight more processes of about 240 MB), as deployed
    return Component("mlflow", args, {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}, health=f"{url}/health")


def make_celery_stack(parent: Path, s3: str, bucket: str) -> AirflowStack:
    stack = make_stack(parent, review=False)
    if stack.db.backend != "postgresql":
        stack.db.drop()
        _unavailable(f"the CeleryExecutor needs PostgreSQL here ({stack.db.note})")
    broker, redis_client = _redis_database()
    stack.cleanups.append(lambda: redis_client.flushdb())  # type: ignore[attr-defined]
    mlflow_db = metadata_db(stack.airflow_home)
    stack.cleanups.append(mlflow_db.drop)
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(stack.root / "registry.git")], check=True)
    small_bike_spec(stack.root / "specs")
    mlflow_url = f"http://127.0.0.1:{free_port()}"
    stack.env.update(_shared_settings(stack.root, bucket, s3, mlflow_url))
    mlflow = _mlflow_server(mlflow_url, mlflow_db.url, stack.env["RETRAINER_MLFLOW_ARTIFACTS"])
    stack.env.update(
        {
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__CELERY__BROKER_URL": broker,
            "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + stack.db.url,
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": "1",
            "AIRFLOW__CELERY__SYNC_PARALLELISM": "1",
            # the workers preload what the tasks import before they fork, as the compose file's do
            "AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS": "retrainer_airflow.celery_config.CELERY_CONFIG",
        }
    )
    for key in ("AIRFLOW__SCHEDULER__MP_START_METHOD", "AIRFLOW__SCHEDULER__MP_FORKSERVER_PRELOAD"):
        stack.env.pop(key, None)  # the LocalExecutor's: this scheduler runs no task
    stack.components = [mlflow, *stack.components, *(_worker(stack, h) for h in WORKERS)]
    return stack


def new_celery_stack(moto_endpoint: str) -> AirflowStack:
    """A celery stack (not started) with a bucket of its own on ``moto_endpoint``."""
    import boto3

    bucket = f"retrainer-celery-{secrets.token_hex(4)}"
    boto3.client(
        "s3",
        endpoint_url=moto_endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    ).create_bucket(Bucket=bucket)
    return make_celery_stack(Path(os.environ["AIRFLOW_HOME"]).parent, moto_endpoint, bucket)


@pytest.fixture(scope="module", name="celery_stack")
def celery_stack_fixture(request: pytest.FixtureRequest, moto_endpoint: str) -> Iterator[AirflowStack]:
    yield from serve(new_celery_stack(moto_endpoint), request, "celery stack")
