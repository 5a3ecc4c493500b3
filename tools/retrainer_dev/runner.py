"""Run a DAG for real, in this process, with Airflow's ``dag.test`` and read back what it did.

Used by ``make demo`` and by the end-to-end tests. The DAGs come from Airflow's own loader
(``DagBag`` over the dags folder), the runs are recorded in Airflow's metadata database, and
what the tasks returned is read back from XCom.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from retrainer.settings import REPO_ROOT


@dataclass
class RunOutcome:
    dag_id: str
    run_id: str
    state: str
    # task_id -> ...; a mapped task's instances also as task_id[i]
    values: dict[str, Any] = field(default_factory=dict)  # task_id -> return value
    states: dict[str, str] = field(default_factory=dict)  # task_id -> final state
    durations: dict[str, float] = field(default_factory=dict)  # task_id -> seconds


def _answer_hitl_requests_in_process() -> None:
    """``dag.test`` runs a deferred task's trigger in this process, with the task supervisor's
    request handling, which lacks the two Human-in-the-loop requests that the triggerer
    answers (read and write the response). Answer them the way the triggerer does, through
    the same execution API, so a review waits here as it does under the triggerer."""
    from airflow.jobs.triggerer_job_runner import HITLDetailResponseResult
    from airflow.sdk.execution_time.comms import GetHITLDetailResponse, UpdateHITLDetail
    from airflow.sdk.execution_time.supervisor import InProcessTestSupervisor

    if getattr(InProcessTestSupervisor, "_retrainer_hitl", False):
        return
    handle_request = InProcessTestSupervisor._handle_request

    def handle(self: Any, msg: Any, log: Any, req_id: int) -> None:
        if isinstance(msg, UpdateHITLDetail):
            api = self.client.hitl.update_response(
                ti_id=msg.ti_id, chosen_options=msg.chosen_options, params_input=msg.params_input
            )
        elif isinstance(msg, GetHITLDetailResponse):
            api = self.client.hitl.get_detail_response(ti_id=msg.ti_id)
        else:
            return handle_request(self, msg, log, req_id)
        self.send_msg(HITLDetailResponseResult.from_api_response(response=api), request_id=req_id)

    InProcessTestSupervisor._handle_request = handle  # type: ignore[method-assign]
    InProcessTestSupervisor._retrainer_hitl = True  # type: ignore[attr-defined]


def load_dags(dag_folder: Path | None = None) -> dict[str, Any]:
    """The DAGs as Airflow's loader parses them; raises on any import error."""
    from airflow.dag_processing.dagbag import DagBag

    _answer_hitl_requests_in_process()
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


class _JsonLines(logging.Handler):
    """A task's log as Airflow's own task logs are written: one JSON object per line with
    ``timestamp``, ``level``, ``logger`` and ``event``, which the UI's log view reads."""

    def __init__(self, path: Path) -> None:
        super().__init__(logging.INFO)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(path, "a", encoding="utf-8")  # noqa: SIM115 (closed in close())

    def emit(self, record: logging.LogRecord) -> None:
        try:
            event = record.getMessage()
            if record.exc_info and record.exc_info[1] is not None:
                event += "\n" + "".join(traceback.format_exception(*record.exc_info)).rstrip()
            line = {
                "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(),
                "level": record.levelname.lower(),
                "logger": record.name,
                "event": event,
            }
            self._fh.write(json.dumps(line) + "\n")
            self._fh.flush()
        except Exception:  # a log line must never fail the task
            self.handleError(record)

    def close(self) -> None:
        self._fh.close()
        super().close()


def task_log_path(ti: Any) -> Path:
    """Where Airflow's log reader looks for a task instance's log (``[logging] base_log_folder``
    and ``log_filename_template``), so the UI shows the logs of runs made here."""
    import jinja2
    from airflow.configuration import conf

    template = jinja2.Template(conf.get("logging", "log_filename_template"))
    relative = template.render(ti=ti, try_number=ti.try_number)
    return Path(conf.get("logging", "base_log_folder")).expanduser() / relative


@contextlib.contextmanager
def _task_logs() -> Iterator[None]:
    """Each task that ``dag.test`` runs in this process writes its log where the Airflow UI
    reads task logs (a worker writes it there; in-process runs write nowhere by default)."""
    from unittest import mock

    from airflow.sdk.execution_time import supervisor

    original = supervisor.run_task_in_process

    def logged(ti: Any, task: Any, client: Any = None) -> Any:
        handler = _JsonLines(task_log_path(ti))
        root = logging.getLogger()
        root.addHandler(handler)
        try:
            logging.getLogger("airflow.task").info(
                "running %s of %s (%s), try %s in this process", ti.task_id, ti.dag_id, ti.run_id, ti.try_number
            )
            result = original(ti=ti, task=task, client=client)
            error, task_log = result.error, logging.getLogger("airflow.task")
            if error is not None and type(error).__name__ == "AirflowSkipException":
                task_log.info("skipped: %s", error)
            elif error is not None:  # a failure the task meant (AirflowFailException) needs no traceback
                trace = (type(error), error, error.__traceback__)
                meant = type(error).__name__ == "AirflowFailException"
                task_log.error("the task failed: %s", error, exc_info=None if meant else trace)
            task_log.info("the task ended %s", getattr(result.state, "value", result.state))
            return result
        finally:
            root.removeHandler(handler)
            handler.close()

    with mock.patch.object(supervisor, "run_task_in_process", logged):
        yield


@contextlib.contextmanager
def _params_kept(dag: Any) -> Iterator[None]:
    """Keep the DAG's Param defaults across a run: tasks run in this process resolve the run's
    conf into the DAG object's own Param objects (Airflow's ``process_params`` shares them), so
    a later run without that key would otherwise get the earlier run's value, not the default."""
    holders = [dag.params, *(t.params for t in dag.tasks if getattr(t, "params", None))]
    # the values themselves, not copies: resolving replaces a Param's value (it does not change
    # it in place). A required Param (no default) is left as the run set it: every run passes
    # it, and Airflow's DAG callbacks in this process resolve it again without the run's conf
    saved = [
        (p, p.value) for h in holders for p in (h.get_param(k) for k in h) if type(p.value).__name__ != "ArgNotSet"
    ]
    try:
        yield
    finally:
        for param, value in saved:
            param.value = value


def run_dag(dag: Any, logical_date: datetime, conf: dict[str, Any], log_file: Path | None = None) -> RunOutcome:
    """One real DAG run. ``run_after = logical_date`` makes the run id depend on the date only,
    so running the same date again re-runs the same DAG run instead of starting a new one."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import update

    started = datetime.now(UTC)
    with quiet(log_file), _params_kept(dag), _task_logs():
        dr = dag.test(logical_date=logical_date, run_after=logical_date, run_conf=conf)
    with create_session() as session:
        # dag.test dates the run's start at its logical date; record when it really started,
        # so run durations in the UI are the real ones
        session.execute(update(DagRun).where(DagRun.id == dr.id).values(start_date=started))
    return outcome_of(dag.dag_id, dr.run_id)


def run_triggered(dag: Any, run_id: str, log_file: Path | None = None) -> RunOutcome:
    """Execute, in this process, a run that another DAG queued (TriggerDagRunOperator), with
    its own run id, logical date and conf: what the scheduler would do with it."""
    from unittest import mock

    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        dr = session.scalars(select(DagRun).where(DagRun.dag_id == dag.dag_id, DagRun.run_id == run_id)).one()
        logical_date, conf = dr.logical_date, dict(dr.conf or {})
    if logical_date is None:
        raise ValueError(f"{dag.dag_id} run {run_id} has no logical date; only dated runs can be run here")
    # dag.test replaces the queued run (same logical date) by one it runs; keep its run id
    with mock.patch.object(DagRun, "generate_run_id", return_value=run_id):
        return run_dag(dag, logical_date, conf, log_file)


def outcome_of(dag_id: str, run_id: str) -> RunOutcome:
    """What a DAG run did: its state, and each task's state, duration and return value."""
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        dr = session.scalars(select(DagRun).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id)).one()
        outcome = RunOutcome(dag_id, run_id, str(dr.state))
        tis = session.scalars(
            select(TaskInstance).where(TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id)
        ).all()
        for ti in tis:
            for key in _keys(ti.task_id, ti.map_index):
                outcome.durations[key] = float(ti.duration or 0.0)
                outcome.states[key] = str(ti.state)
        rows = session.scalars(
            select(XComModel).where(
                XComModel.dag_id == dag_id, XComModel.run_id == run_id, XComModel.key == "return_value"
            )
        ).all()
        for row in rows:
            for key in _keys(row.task_id, row.map_index):
                outcome.values[key] = XComModel.deserialize_value(row)
    return outcome


def _keys(task_id: str, map_index: int | None) -> list[str]:
    """A task's keys in an outcome: its id; a mapped task's instances also ``task_id[i]`` (the
    plain id then names the first)."""
    index = -1 if map_index is None else int(map_index)
    return ([task_id] if index <= 0 else []) + ([f"{task_id}[{index}]"] if index >= 0 else [])
