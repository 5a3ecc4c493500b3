"""Run a DAG for real, in this process, with Airflow's ``dag.test`` and read back what it did.

Used by ``make demo`` and by the end-to-end tests. The DAGs come from Airflow's own loader
(``DagBag`` over the dags folder), the runs are recorded in Airflow's metadata database, and
what the tasks returned is read back from XCom.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from retrainer_airflow.localenv import REPO_ROOT


@dataclass
class RunOutcome:
    dag_id: str
    run_id: str
    state: str
    values: dict[str, Any] = field(default_factory=dict)  # task_id -> return value
    states: dict[str, str] = field(default_factory=dict)  # task_id -> final state
    durations: dict[str, float] = field(default_factory=dict)  # task_id -> seconds


def load_dags(dag_folder: Path | None = None) -> dict[str, Any]:
    """The DAGs as Airflow's loader parses them; raises on any import error."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(dag_folder or REPO_ROOT / "dags"))
    if bag.import_errors:
        raise RuntimeError(f"DAG import errors: {bag.import_errors}")
    return dict(bag.dags)


@contextlib.contextmanager
def quiet(log_file: Path | None) -> Iterator[None]:
    """Send what Airflow and the tasks print (file descriptors 1 and 2) to ``log_file``."""
    if log_file is None:
        yield
        return
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(log_file, "ab") as fh:
        os.dup2(fh.fileno(), 1)
        os.dup2(fh.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def run_dag(dag: Any, logical_date: datetime, conf: dict[str, Any], log_file: Path | None = None) -> RunOutcome:
    """One real DAG run. ``run_after = logical_date`` makes the run id depend on the date only,
    so running the same date again re-runs the same DAG run instead of starting a new one."""
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select, update

    started = datetime.now(UTC)
    with quiet(log_file):
        dr = dag.test(logical_date=logical_date, run_after=logical_date, run_conf=conf)
    outcome = RunOutcome(dag.dag_id, dr.run_id, str(dr.state))
    with create_session() as session:
        # dag.test dates the run's start at its logical date; record when it really started,
        # so run durations in the UI are the real ones
        session.execute(update(DagRun).where(DagRun.id == dr.id).values(start_date=started))
        tis = session.scalars(
            select(TaskInstance).where(TaskInstance.dag_id == dag.dag_id, TaskInstance.run_id == dr.run_id)
        ).all()
        for ti in tis:
            outcome.durations[ti.task_id] = float(ti.duration or 0.0)
            outcome.states[ti.task_id] = str(ti.state)
        rows = session.scalars(
            select(XComModel).where(
                XComModel.dag_id == dag.dag_id, XComModel.run_id == dr.run_id, XComModel.key == "return_value"
            )
        ).all()
        for row in rows:
            outcome.values[row.task_id] = XComModel.deserialize_value(row)
    return outcome
