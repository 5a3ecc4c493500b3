"""Parsing a DAG file imports no task code: the stage modules (``retrainer_airflow.tasks.*``) and the
records the tasks hand each other (``retrainer.records``) are imported when a task runs.

Airflow parses every DAG file again and again, each time in a fresh process; how long each parse
takes against a trivial DAG is measured by ``bench/parse_time.py`` (a ratio, never a time asserted
here)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DAG_FILES = sorted(str(p) for p in (REPO / "dags").glob("*.py"))
TASK_CODE = ("retrainer_airflow.tasks.", "retrainer.records")


def test_parsing_the_dag_files_imports_no_task_code() -> None:
    code = (
        "import json, runpy, sys\n"
        f"for path in {DAG_FILES!r}:\n"
        "    runpy.run_path(path)\n"
        f"print(json.dumps(sorted(m for m in sys.modules if m.startswith({TASK_CODE!r}))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_a_task_finds_its_stage_module() -> None:
    from retrainer_airflow import tasks

    assert {name: getattr(tasks, name).__name__ for name in tasks.__all__} == {
        name: f"retrainer_airflow.tasks.{name}" for name in tasks.__all__
    }
    # monitor_drift's trigger starts the DAG whose runs the in-flight check counts
    assert tasks.monitor.RETRAIN_DAG_ID == "retrain_model"
