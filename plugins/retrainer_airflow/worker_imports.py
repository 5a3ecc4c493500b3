"""What retrainer's task processes import: the list the workers preload, and the preload.

Importing this module imports nothing heavy (Airflow's plugin loader runs it in every
process); :mod:`retrainer_airflow.preload` is the module whose import runs :func:`preload`.
"""

from __future__ import annotations

import importlib
import logging
import os
import time
from collections.abc import Sequence

log = logging.getLogger(__name__)

#: what retrainer's task processes import, in import order
MODULES = (
    # Airflow's task runner, which every task process starts with
    "airflow.sdk.execution_time.supervisor",
    "airflow.sdk.execution_time.task_runner",
    # what the DAG files import (a task parses its DAG file before it runs)
    "airflow.providers.standard.operators.trigger_dagrun",
    "airflow.providers.standard.operators.hitl",
    "airflow.timetables.assets",
    "retrainer_airflow.review",
    "retrainer_airflow.tasks.runtime",
    "retrainer_airflow.tasks.ingest",
    "retrainer_airflow.tasks.landing",
    "retrainer_airflow.tasks.train",
    "retrainer_airflow.tasks.evaluate",
    "retrainer_airflow.tasks.release",
    "retrainer_airflow.tasks.deploy",
    "retrainer_airflow.tasks.rollback",
    "retrainer_airflow.tasks.monitor",
    "retrainer_airflow.sensors",
    # the pipeline's stages, then the libraries their steps import on first use
    "retrainer.pipeline.ingest",
    "retrainer.pipeline.train",
    "retrainer.pipeline.evaluate",
    "retrainer.pipeline.release",
    "retrainer.pipeline.deploy",
    "retrainer.pipeline.rollback",
    "retrainer.pipeline.monitor",
    "retrainer.model.training",
    "retrainer.serving.export",
    "retrainer.serving.postdeploy",
    "retrainer.registry.approval",
    "retrainer.registry.lineage",
    "pyarrow.parquet",
    "scipy.stats",
    "boto3",
    "dvc.repo",
    "dvc.api",
    "great_expectations",
    "mlflow",
    "mlflow.models",
    "matplotlib.pyplot",
    "tensorflow",
    "keras",
    "mlflow.tensorflow",
)


def preload(modules: Sequence[str] = MODULES) -> dict[str, float]:
    """Import ``modules`` in order; returns the seconds each took (a failed one is logged and
    left out)."""
    # as the code that imports them on first use sets it (retrainer.data.versioning, retrainer.model.reports)
    os.environ.setdefault("DVC_NO_ANALYTICS", "1")
    took: dict[str, float] = {}
    for name in modules:
        t0 = time.perf_counter()
        try:
            if name == "matplotlib.pyplot":
                importlib.import_module("matplotlib").use("Agg")
            importlib.import_module(name)
        except Exception as exc:  # the task imports it (and fails) as it would without the preload
            log.warning("not preloaded: %s (%s: %s)", name, type(exc).__name__, exc)
            continue
        took[name] = time.perf_counter() - t0
    slowest = ", ".join(f"{n} {s:.1f} s" for n, s in sorted(took.items(), key=lambda kv: -kv[1])[:4])
    log.info(
        "preloaded %d modules in %.1f s (%s) for the task processes of pid %d",
        len(took),
        sum(took.values()),
        slowest,
        os.getpid(),
    )
    return took
