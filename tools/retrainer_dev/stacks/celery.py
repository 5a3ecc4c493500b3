"""The distributed engine, on one machine as if on several: Airflow with the CeleryExecutor.

``make_celery_stack`` prepares the API server, the scheduler (CeleryExecutor), the DAG processor
and the triggerer over a fresh PostgreSQL metadata database, Redis on loopback as the broker (a
database of its own, emptied before and after), the PostgreSQL metadata database as the result
backend (``db+postgresql+psycopg2://``), an MLflow tracking server (PostgreSQL backend store,
artifacts on S3), and two ``airflow celery worker`` processes, each with a home of its own (its
own ``RETRAINER_HOME``, data registry clone and Airflow logs: two hosts) and its own hostname.
Every store the tasks share is on the S3 API (landing, quarantine, validation results, DVC
remote, MLflow artifacts, model store) or behind a URL (the data registry's bare git remote,
MLflow's server).

It needs PostgreSQL and Redis (``RETRAINER_TEST_REDIS``, default ``redis://127.0.0.1:6379``);
without them it raises :class:`~retrainer_dev.stacks.components.StackUnavailable` saying which
is missing.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from retrainer.settings import REPO_ROOT
from retrainer_dev.stacks import hostname
from retrainer_dev.stacks.airflow import AirflowStack, make_stack
from retrainer_dev.stacks.components import Component, StackUnavailable
from retrainer_dev.stacks.mlflow import server_component
from retrainer_dev.stacks.ports import free_port
from retrainer_dev.stacks.postgres import metadata_db
from retrainer_dev.stacks.specs import small_bike_spec

WORKERS = ("worker-a.retrainer.test", "worker-b.retrainer.test")
DEFAULT_REDIS = "redis://127.0.0.1:6379"


def redis_server() -> str:
    """The Redis server the broker's databases are on (``RETRAINER_TEST_REDIS``)."""
    return os.environ.get("RETRAINER_TEST_REDIS", DEFAULT_REDIS).rstrip("/")


def redis_database() -> tuple[str, Any]:
    """A Redis database of its own for the broker (emptied now; the caller empties it at the end):
    its URL and a client of it."""
    import redis

    server = redis_server()
    index = 1 + secrets.randbelow(15)
    client = redis.Redis.from_url(f"{server}/{index}")
    try:
        client.ping()
    except redis.RedisError as exc:
        raise StackUnavailable(f"Redis at {server} is not reachable ({exc})") from None
    client.flushdb()
    return f"{server}/{index}", client


def shared_settings(root: Path, bucket: str, s3: str, mlflow_url: str) -> dict[str, str]:
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


def celery_worker(stack: AirflowStack, host: str) -> Component:
    """One Celery worker on a host of its own: its home, its clone, its logs, its hostname."""
    root = stack.root / host.split(".")[0]
    airflow_home = root / "airflow"
    (root / "home" / "mlflow").mkdir(parents=True)
    airflow_home.mkdir()
    env = {
        "RETRAINER_HOME": str(root / "home"),
        "AIRFLOW_HOME": str(airflow_home),
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(airflow_home / "logs"),
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
        # the task instances record which host ran them
        "AIRFLOW__CORE__HOSTNAME_CALLABLE": hostname.CALLABLE,
        hostname.HOSTNAME_VAR: host,
        "PYTHONPATH": os.pathsep.join([stack.env["PYTHONPATH"], str(REPO_ROOT / "tools")]),
    }
    args = [sys.executable, "-m", "airflow", "celery", "worker", "--celery-hostname", f"{host}@%h"]
    return Component(host.split(".")[0], [*args, "--concurrency", "1"], env)


#: the Celery settings of the scheduler and the workers, besides the broker and the result backend
CELERY_SETTINGS = {
    "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
    "AIRFLOW__CELERY__WORKER_CONCURRENCY": "1",
    "AIRFLOW__CELERY__SYNC_PARALLELISM": "1",
    # the workers preload what the tasks import before they fork, as the compose file's do
    "AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS": "retrainer_airflow.celery_config.CELERY_CONFIG",
}


def make_celery_stack(parent: Path, s3: str, bucket: str) -> AirflowStack:
    """A Celery stack (not started) under ``parent`` whose shared stores are in ``bucket`` on the
    S3 API at ``s3``. Raises StackUnavailable without PostgreSQL or Redis."""
    stack = make_stack(parent, review=False)
    if stack.db.backend != "postgresql":
        stack.db.drop()
        raise StackUnavailable(f"the CeleryExecutor needs PostgreSQL here ({stack.db.note})")
    broker, redis_client = redis_database()
    stack.cleanups.append(lambda: redis_client.flushdb())
    mlflow_db = metadata_db(stack.airflow_home)
    stack.cleanups.append(mlflow_db.drop)
    git = shutil.which("git") or "git"
    subprocess.run([git, "init", "-q", "--bare", "-b", "main", str(stack.root / "registry.git")], check=True)
    small_bike_spec(stack.root / "specs")
    mlflow_url = f"http://127.0.0.1:{free_port()}"
    stack.env.update(shared_settings(stack.root, bucket, s3, mlflow_url))
    mlflow = server_component(mlflow_url, mlflow_db.url, stack.env["RETRAINER_MLFLOW_ARTIFACTS"])
    stack.env.update(CELERY_SETTINGS)
    stack.env.update({"AIRFLOW__CELERY__BROKER_URL": broker, "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + stack.db.url})
    for key in ("AIRFLOW__SCHEDULER__MP_START_METHOD", "AIRFLOW__SCHEDULER__MP_FORKSERVER_PRELOAD"):
        stack.env.pop(key, None)  # the LocalExecutor's: this scheduler runs no task
    stack.components = [mlflow, *stack.components, *(celery_worker(stack, h) for h in WORKERS)]
    return stack
