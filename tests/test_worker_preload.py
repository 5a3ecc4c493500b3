"""Heavy imports are paid once per worker, not once per task, and nowhere else.

``retrainer_airflow.preload`` runs in the LocalExecutor's fork server and in the Celery
worker only: Airflow's plugin loader, which runs every file of the plugins folder in every
Airflow process, runs neither it nor the Celery configuration, and the scheduler that
imports that configuration imports nothing heavy. TensorFlow imported by the preload is
never run, so a task process forked after it trains and predicts as before.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.helpers import subprocess_env

HEAVY = ("tensorflow", "keras", "mlflow", "great_expectations", "dvc", "sklearn", "pandas")


def _python(code: str, env: dict[str, str] | None = None) -> Any:
    """Run ``code`` in a fresh Python with the repository's code importable; its last line, as JSON."""
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**subprocess_env(), "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})},
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


LOADED = f"""
import json, sys
heavy = sorted({{m.split('.')[0] for m in sys.modules}} & set({list(HEAVY)!r}))
print(json.dumps({{"heavy": heavy, "preload": [m for m in ("preload", "celery_config",
      "retrainer_airflow.preload") if m in sys.modules]}}))
"""


def test_airflows_plugin_loader_runs_neither_the_preload_nor_the_celery_config() -> None:
    found = _python("from airflow import plugins_manager\nplugins_manager.ensure_plugins_loaded()\n" + LOADED)
    assert found == {"heavy": [], "preload": []}


def test_the_celery_config_is_airflows_and_the_scheduler_that_reads_it_imports_nothing_heavy() -> None:
    code = (
        "from airflow.providers.celery.executors import celery_executor_utils as u\n"
        "from airflow.providers.celery.executors.default_celery import DEFAULT_CELERY_CONFIG\n"
        "from retrainer_airflow import celery_config\n"
        "assert u.get_celery_configuration() is celery_config.CELERY_CONFIG\n"
        "assert celery_config.CELERY_CONFIG == DEFAULT_CELERY_CONFIG\n"
        "assert celery_config.preload_task_imports in [r() for _, r in __import__('celery').signals.import_modules"
        ".receivers]\n" + LOADED
    )
    env = {"AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS": "retrainer_airflow.celery_config.CELERY_CONFIG"}
    assert _python(code, env) == {"heavy": [], "preload": []}


FORKED = """
import json, os
from dataclasses import replace
import retrainer_airflow.preload as preload
from tensorflow.python.eager import context

missing = [m for m in preload.MODULES if m not in preload.PRELOADED]
started = context.context_safe() is not None  # TensorFlow's runtime, before the fork
pid = os.fork()
if pid == 0:  # a task process: trains and predicts with what its worker imported
    from retrainer.model import training
    from retrainer.settings import REPO_ROOT
    from retrainer.data.demo_data import load_bike_sharing, split_periods
    from retrainer.spec.dataset import DatasetSpec

    spec = DatasetSpec.load(REPO_ROOT / "include" / "specs" / "bike_sharing.yaml")
    month = split_periods(load_bike_sharing(), spec)["2011-04"]
    result = training.train(month, spec, replace(spec.training, epochs=1))
    ok = len(training.predict(result.model, month.iloc[:8], spec)) == 8
    os._exit(0 if ok else 3)
_, status = os.waitpid(pid, 0)
print(json.dumps({"missing": missing, "started": started, "child": os.waitstatus_to_exitcode(status)}))
"""


def test_the_preload_imports_tensorflow_without_running_it_and_a_forked_task_trains() -> None:
    assert _python(FORKED) == {"missing": [], "started": False, "child": 0}


def test_the_embedded_default_preloads_the_localexecutors_workers(tmp_path: Path) -> None:
    from retrainer_dev.localenv import local_env

    env = local_env(tmp_path)
    assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    assert env["AIRFLOW__SCHEDULER__MP_START_METHOD"] == "forkserver"
    assert env["AIRFLOW__SCHEDULER__MP_FORKSERVER_PRELOAD"] == "retrainer_airflow.preload"
    code = (
        "from airflow.utils.process_utils import resolve_mp_start_method\n"
        "import json; print(json.dumps([resolve_mp_start_method(c) for c in "
        "('scheduler', 'dag_processor', 'triggerer')]))"
    )
    # the scheduler's workers only: the DAG processor and the triggerer keep the platform's default
    assert _python(code, env) == ["forkserver", None, None]
