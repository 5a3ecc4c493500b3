"""Parsing a DAG file imports no task code: the DAG files import the task declarations
(``retrainer_airflow.tasks.*``, each task a typed function), but none of what the tasks run: the
records they hand each other (``retrainer.records``) and the library's stages and rooms are
imported when a task runs.

Airflow parses every DAG file again and again, each time in a fresh process; how long each parse
takes against a trivial DAG is measured by ``bench/parse_time.py`` (a ratio, never a time asserted
here)."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: dags/dataset_specs.py loads the specs on purpose (a broken one is its import error): not a DAG
DAG_FILES = sorted(str(p) for p in (REPO / "dags").glob("*.py") if p.name != "dataset_specs.py")
TASKS = REPO / "plugins" / "retrainer_airflow" / "tasks"
TASK_CODE = (
    "retrainer.records",
    "retrainer.pipeline",
    "retrainer.data",
    "retrainer.model",
    "retrainer.registry",
    "retrainer.serving",
    "retrainer.spec.dataset",
)
#: what a task module may import of the library at its top: the outcomes its tasks end with
TASK_MODULE_TOP = {"retrainer.outcomes"}


def test_parsing_the_dag_files_imports_no_task_code() -> None:
    code = (
        "import json, runpy, sys\n"
        f"for path in {DAG_FILES!r}:\n"
        "    runpy.run_path(path)\n"
        f"print(json.dumps(sorted(m for m in sys.modules if m.startswith({TASK_CODE!r}))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_the_task_modules_import_the_library_inside_their_tasks() -> None:
    """At their top, the task modules import Airflow and each other; the records they name only
    under ``TYPE_CHECKING`` (the boundary resolves them when a task runs)."""
    at_top = {}
    for path in sorted(TASKS.glob("*.py")):
        found = set()
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "retrainer":
                found.add(node.module)
        at_top[path.name] = sorted(found - TASK_MODULE_TOP)
    assert at_top == {name: [] for name in at_top}


def test_a_task_finds_its_stage_module() -> None:
    from retrainer_airflow.tasks import deploy, evaluate, ingest, landing, monitor, release, rollback, train

    stages = (deploy, evaluate, ingest, landing, monitor, release, rollback, train)
    assert {m.__name__.rsplit(".", 1)[-1] for m in stages} == {p.stem for p in TASKS.glob("*.py")} - {
        "__init__",
        "boundary",
        "runtime",
    }
    # monitor_drift's trigger starts the DAG whose runs the in-flight check counts
    assert monitor.RETRAIN_DAG_ID == "retrain_model"
