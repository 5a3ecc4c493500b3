"""The embedded default: environment for Airflow, MLflow, DVC and GX on one machine.

All state lives under ``RETRAINER_HOME`` (default ``<repo>/.local``): Airflow's SQLite
database and logs, the landing and quarantine folders, the DVC data registry and remote,
MLflow's SQLite store and artifacts, and the model store. Values already set in the
environment win, so every location can be pointed elsewhere (S3, PostgreSQL, ...).

``python -m retrainer_dev.localenv`` prints the variables as shell ``export`` lines;
``--setup-airflow`` migrates Airflow's metadata database and creates the DAGs' pools.
"""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

from retrainer.settings import REPO_ROOT


def local_env(home: str | Path | None = None) -> dict[str, str]:
    home = Path(home or os.environ.get("RETRAINER_HOME") or REPO_ROOT / ".local").resolve()
    airflow_home = home / "airflow"
    return {
        "RETRAINER_HOME": str(home),
        "AIRFLOW_HOME": str(airflow_home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO_ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO_ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": "4",
        # the LocalExecutor's workers fork from a server process that imported what the tasks
        # import (TensorFlow, MLflow, GX, ...; retrainer_airflow.preload), so a task process
        # starts with them instead of importing them again; the scheduler itself imports none
        "AIRFLOW__SCHEDULER__MP_START_METHOD": "forkserver",
        "AIRFLOW__SCHEDULER__MP_FORKSERVER_PRELOAD": "retrainer_airflow.preload",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",  # user:role; the password is generated
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(airflow_home / "passwords.json"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{airflow_home / 'airflow.db'}",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(airflow_home / "logs"),
        "AIRFLOW__API__PORT": os.environ.get("RETRAINER_AIRFLOW_PORT", "8080"),
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
        "MLFLOW_TRACKING_URI": f"sqlite:///{home / 'mlflow' / 'mlflow.db'}",
        "DVC_NO_ANALYTICS": "1",
        "GX_ANALYTICS_ENABLED": "false",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "PYTHONPATH": os.pathsep.join([str(REPO_ROOT / "include"), str(REPO_ROOT / "plugins")]),
    }


def apply(home: str | Path | None = None, override: bool = False) -> dict[str, str]:
    """Put the embedded default into ``os.environ`` (values already set win unless ``override``)."""
    env = local_env(home)
    for key, value in env.items():
        if override or not os.environ.get(key):
            os.environ[key] = value
    for key in ("RETRAINER_HOME", "AIRFLOW_HOME"):
        Path(os.environ[key]).mkdir(parents=True, exist_ok=True)
    (Path(os.environ["RETRAINER_HOME"]) / "mlflow").mkdir(parents=True, exist_ok=True)
    return {k: os.environ[k] for k in env}


def setup_airflow(env: dict[str, str] | None = None) -> None:
    """What Airflow needs before it runs the DAGs: its metadata database, migrated, and the
    pools the DAGs use (``retrainer_airflow.defaults.POOLS``). Idempotent. ``env``: the whole
    environment of the Airflow commands (default: this process's)."""
    import json
    import subprocess
    import tempfile

    from retrainer_airflow.defaults import POOLS

    run_env = dict(os.environ if env is None else env)
    airflow = [sys.executable, "-m", "airflow"]
    subprocess.run([*airflow, "db", "migrate"], env=run_env, check=True, capture_output=True)
    pools = {
        name: {"slots": slots, "description": desc, "include_deferred": False} for name, (slots, desc) in POOLS.items()
    }
    with tempfile.NamedTemporaryFile("w", suffix=".json") as fh:
        json.dump(pools, fh)
        fh.flush()
        subprocess.run([*airflow, "pools", "import", fh.name], env=run_env, check=True, capture_output=True)


def main() -> None:
    env = apply()
    if "--setup-airflow" in sys.argv[1:]:
        setup_airflow()
        return
    for key, value in env.items():
        sys.stdout.write(f"export {key}={shlex.quote(value)}\n")


if __name__ == "__main__":
    main()
