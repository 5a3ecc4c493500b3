"""What the retrainer tasks do inside Airflow, one module per stage (mirroring
``retrainer.pipeline``): read the run's context, read the upstream records from XCom,
call the library, and turn outcomes into Airflow states (a quarantined batch fails its run;
a model that is not promoted skips deployment). Records go back to XCom as strict JSON.

Imports of ``retrainer.pipeline`` (and through it pandas, GX, MLflow, TensorFlow) happen
inside the functions, so DAG files that import these modules stay fast to parse. The stage
modules themselves are imported on first use (``tasks.ingest`` in a task's body, when the
task runs), not when a DAG file imports this package: they read the task records and the
settings, which parsing a DAG file never needs.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from retrainer_airflow.tasks import deploy, evaluate, ingest, landing, monitor, release, rollback, runtime, train

__all__ = ["deploy", "evaluate", "ingest", "landing", "monitor", "release", "rollback", "runtime", "train"]


def __getattr__(name: str) -> ModuleType:
    """A stage module, imported the first time it is asked for."""
    if name in __all__:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
