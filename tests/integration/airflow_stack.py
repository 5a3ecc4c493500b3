"""The real Airflow components, for the tests that need what ``dag.test()`` leaves out.

``airflow_stack`` (module fixture) starts the API server (REST API and the execution API the
tasks talk to), the scheduler with the LocalExecutor, the DAG processor and the triggerer as
subprocesses in one process group, over a fresh AIRFLOW_HOME and a fresh metadata database:
a new PostgreSQL database on the local server when a driver and the server are there
(``RETRAINER_TEST_POSTGRES``, default ``postgresql://postgres@127.0.0.1:5432``; ``off`` for
SQLite), else SQLite. The DAGs and plugins are the repository's; the tasks see a
``RETRAINER_HOME`` of their own (``AirflowStack.home``), with a small training spec.

``AirflowAPI`` is a small typed client of the REST API: unpause, trigger, wait for a run
(answering Human-in-the-loop requests on the way), task instances, clear, HITL answers,
asset events, task logs.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psutil
import pytest
import requests

from retrainer.settings import Settings
from retrainer_dev import localenv
from retrainer_dev.localenv import setup_airflow
from retrainer_dev.procs import stop_group
from tests.helpers import free_port, small_bike_spec

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Component:
    """One process of the stack: its name, command and what its environment adds."""

    name: str
    args: list[str]
    env: dict[str, str] = field(default_factory=dict)
    health: str = ""  # a URL that answers 200 once it is up (besides Airflow's own health check)


FINAL_RUN_STATES = frozenset({"success", "failed"})
FINAL_TI_STATES = frozenset({"success", "failed", "skipped", "upstream_failed", "removed"})
DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432"
USER = "admin"

Json = dict[str, Any]
#: picks the options to choose for a pending Human-in-the-loop request
HitlAnswer = Callable[[Json], list[str]]


def tail(path: Path, lines: int = 60) -> str:
    if not path.is_file():
        return f"({path} does not exist)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def default_hitl_answer(detail: Json) -> list[str]:
    """What a reviewer who accepts the proposal answers: "Approve" where offered, else the
    request's defaults, else its first option."""
    options = list(detail["options"])
    if "Approve" in options:
        return ["Approve"]
    return list(detail.get("defaults") or options[:1])


# ----------------------------------------------------------------------------- metadata DB


@dataclass
class MetadataDB:
    url: str  # SQLAlchemy URL for Airflow
    backend: str  # "postgresql" or "sqlite"
    note: str  # why this backend
    drop: Callable[[], None] = lambda: None


def metadata_db(airflow_home: Path) -> MetadataDB:
    """A fresh PostgreSQL database ``retrainer_test_<random>`` if possible, else SQLite."""
    sqlite = f"sqlite:///{airflow_home / 'airflow.db'}"
    server = os.environ.get("RETRAINER_TEST_POSTGRES", DEFAULT_POSTGRES).rstrip("/")
    if server.lower() in ("", "off", "0", "false", "sqlite"):
        return MetadataDB(sqlite, "sqlite", "RETRAINER_TEST_POSTGRES is off")
    try:
        # Airflow needs two drivers: psycopg2 (sync engine) and asyncpg (its async engine)
        import asyncpg  # noqa: F401
        import psycopg2
    except ImportError as exc:
        return MetadataDB(sqlite, "sqlite", f"no PostgreSQL driver for Airflow here ({exc.name} is not installed)")
    name = f"retrainer_test_{secrets.token_hex(4)}"
    try:
        admin = psycopg2.connect(f"{server}/postgres", connect_timeout=5)
    except psycopg2.Error as exc:
        return MetadataDB(sqlite, "sqlite", f"PostgreSQL at {server} not reachable: {str(exc).strip()}")
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    admin.close()

    def drop() -> None:
        conn = psycopg2.connect(f"{server}/postgres", connect_timeout=5)
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.close()

    url = server.replace("postgresql://", "postgresql+psycopg2://", 1) + f"/{name}"
    return MetadataDB(url, "postgresql", f"database {name} on {server}", drop)


# ----------------------------------------------------------------------------- REST client


class AirflowAPI:
    """The Airflow 3 REST API (``/api/v2``) as the simple auth manager's admin."""

    def __init__(self, base_url: str, password: str, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.password = password
        self.timeout = timeout
        self.session = requests.Session()
        self.hitl_answers: list[Json] = []  # every HITL answer given by wait_for_run
        self.watchdog: Callable[[], None] = lambda: None  # raises when a component died
        # the components' log lines that hold a text (a failed task's "dag.task run"): why the
        # scheduler failed a task whose own log shows no error
        self.mentions: Callable[[str], str] = lambda _: ""
        self._login()

    def _login(self) -> None:
        resp = requests.post(
            f"{self.base_url}/auth/token",
            json={"username": USER, "password": self.password},
            timeout=self.timeout,
        )
        assert resp.status_code == 201, f"login failed: {resp.status_code} {resp.text}"
        self.session.headers["Authorization"] = f"Bearer {resp.json()['access_token']}"

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        resp = self.session.request(method, f"{self.base_url}{path}", timeout=self.timeout, **kwargs)
        if resp.status_code == 401:  # token expired: log in again once
            self._login()
            resp = self.session.request(method, f"{self.base_url}{path}", timeout=self.timeout, **kwargs)
        if resp.status_code >= 400:
            raise AssertionError(f"{method} {path} -> {resp.status_code}: {resp.text[:2000]}")
        return resp.json() if resp.content else None

    # ----------------------------------------------------------------- DAGs
    def dag(self, dag_id: str) -> Json:
        return dict(self.request("GET", f"/api/v2/dags/{dag_id}"))

    def wait_for_dag(self, dag_id: str, timeout: float = 120.0) -> Json:
        """Until the DAG processor has parsed and serialized the DAG."""
        deadline = time.monotonic() + timeout
        while True:
            resp = self.session.get(f"{self.base_url}/api/v2/dags/{dag_id}", timeout=self.timeout)
            if resp.status_code == 200:
                return dict(resp.json())
            if time.monotonic() > deadline:
                errors = self.request("GET", "/api/v2/importErrors")
                raise AssertionError(f"DAG {dag_id} not parsed within {timeout:.0f} s; import errors: {errors}")
            time.sleep(1)

    def unpause(self, dag_id: str) -> None:
        self.wait_for_dag(dag_id)
        out = self.request("PATCH", f"/api/v2/dags/{dag_id}", json={"is_paused": False})
        assert out["is_paused"] is False, out

    def tasks(self, dag_id: str) -> list[Json]:
        return list(self.request("GET", f"/api/v2/dags/{dag_id}/tasks")["tasks"])

    def task_ids(self, dag_id: str) -> list[str]:
        """The DAG's task ids, upstream before downstream (ties by name)."""
        downstream = {t["task_id"]: set(t["downstream_task_ids"]) for t in self.tasks(dag_id)}
        indegree = {t: 0 for t in downstream}
        for children in downstream.values():
            for child in children:
                indegree[child] += 1
        ready = sorted(t for t, n in indegree.items() if n == 0)
        order: list[str] = []
        while ready:
            task = ready.pop(0)
            order.append(task)
            for child in sorted(downstream[task]):
                indegree[child] -= 1
                if indegree[child] == 0:
                    ready.append(child)
            ready.sort()
        assert len(order) == len(downstream), f"{dag_id} has a cycle? {downstream}"
        return order

    # ----------------------------------------------------------------- runs
    def trigger(self, dag_id: str, conf: Json, logical_date: datetime, run_id: str | None = None) -> str:
        body: Json = {"logical_date": logical_date.isoformat(), "conf": conf}
        if run_id:
            body["dag_run_id"] = run_id
        return str(self.request("POST", f"/api/v2/dags/{dag_id}/dagRuns", json=body)["dag_run_id"])

    def run(self, dag_id: str, run_id: str) -> Json:
        return dict(self.request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}"))

    def task_instances(self, dag_id: str, run_id: str) -> dict[str, Json]:
        """task_id -> the task instance (state, try_number, start_date, end_date, ...)."""
        out = self.request(
            "GET", f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}/taskInstances", params={"limit": 1000}
        )
        # a mapped task's instances: task_id for the first, task_id[i] for each
        found: dict[str, Json] = {}
        for ti in sorted(out["task_instances"], key=lambda t: (t["task_id"], t.get("map_index", -1))):
            index = int(ti.get("map_index", -1))
            found.setdefault(ti["task_id"], ti)
            if index >= 0:
                found[f"{ti['task_id']}[{index}]"] = ti
        return found

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str | None]:
        return {t: ti["state"] for t, ti in self.task_instances(dag_id, run_id).items()}

    def wait_for_run(
        self,
        dag_id: str,
        run_id: str,
        expect: str | None = "success",
        timeout: float = 300.0,
        not_before: datetime | None = None,
        answer: HitlAnswer | None = default_hitl_answer,
    ) -> str:
        """Wait until the run is final (and, with ``not_before``, ended after that moment: a
        cleared run ran again). Pending Human-in-the-loop requests are answered with
        ``answer``. Returns the state; a state other than ``expect`` fails with the task
        states and the end of each failed task's log."""
        deadline = time.monotonic() + timeout
        while True:
            run = self.run(dag_id, run_id)
            ended = run.get("end_date")
            if run["state"] in FINAL_RUN_STATES and (
                not_before is None or (ended and datetime.fromisoformat(ended) >= not_before)
            ):
                break
            self.watchdog()
            if answer is not None:
                self.answer_pending_hitl(dag_id, run_id, answer)
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{dag_id} {run_id} still {run['state']} after {timeout:.0f} s\n" + self.describe(dag_id, run_id)
                )
            time.sleep(1)
        state = str(run["state"])
        if expect is not None and state != expect:
            raise AssertionError(
                f"{dag_id} {run_id} ended {state}, expected {expect}\n" + self.describe(dag_id, run_id)
            )
        return state

    def describe(self, dag_id: str, run_id: str, log_lines: int = 40) -> str:
        """Each task's state and try, and the end of the log of every failed task."""
        tis = self.task_instances(dag_id, run_id)
        lines = [f"  {t:<20} {ti['state']!s:<16} try {ti['try_number']}" for t, ti in sorted(tis.items())]
        for key, ti in sorted(tis.items()):
            if ti["state"] == "failed" and (key == ti["task_id"]) == (int(ti.get("map_index", -1)) < 0):
                lines.append(f"--- log of {key} (try {ti['try_number']}), last {log_lines} lines:")
                lines.append(
                    self.task_log(
                        dag_id, run_id, ti["task_id"], int(ti["try_number"]), log_lines, int(ti.get("map_index", -1))
                    )
                )
                said = self.mentions(f"{dag_id}.{ti['task_id']} {run_id}")
                if said:
                    lines.append(f"--- what the components logged about {key}:\n{said}")
        return "\n".join(lines)

    def task_log(
        self, dag_id: str, run_id: str, task_id: str, try_number: int, lines: int = 40, map_index: int = -1
    ) -> str:
        path = f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}/taskInstances/{task_id}/logs/{try_number}"
        params = {"full_content": "true", "map_index": str(map_index)}
        try:
            out = self.request("GET", path, params=params, headers={"Accept": "application/json"})
        except AssertionError as exc:
            return f"(no log: {exc})"
        text: list[str] = []
        for entry in out.get("content") or []:
            if isinstance(entry, str):
                text.extend(entry.splitlines())
                continue
            event = str(entry.get("event", ""))
            level = str(entry.get("level", "")).upper()
            text.append(f"{level:<7} {event}".rstrip())
            for err in entry.get("error_detail") or []:
                text.append(f"        {err.get('exc_type')}: {err.get('exc_value')}")
        return "\n".join(text[-lines:])

    # ----------------------------------------------------------------- clear
    def clear(self, dag_id: str, run_id: str, task_ids: list[str], downstream: bool = False) -> list[str]:
        """Clear task instances of one run (and their downstream), as the UI's Clear does:
        the run goes back to queued and the scheduler runs them again. Returns what was cleared."""
        body = {
            "dry_run": False,
            "task_ids": task_ids,
            "dag_run_id": run_id,
            "only_failed": False,
            "reset_dag_runs": True,
            "include_downstream": downstream,
        }
        out = self.request("POST", f"/api/v2/dags/{dag_id}/clearTaskInstances", json=body)
        return sorted(ti["task_id"] for ti in out["task_instances"])

    # ----------------------------------------------------------------- HITL
    def hitl_details(self, dag_id: str, run_id: str, pending_only: bool = False) -> list[Json]:
        params: Json = {"limit": 100}
        if pending_only:
            params["response_received"] = "false"
        out = self.request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}/hitlDetails", params=params)
        return list(out["hitl_details"])

    def respond_hitl(
        self,
        dag_id: str,
        run_id: str,
        task_id: str,
        chosen_options: list[str],
        params_input: Json | None = None,
        map_index: int = -1,
    ) -> Json:
        path = f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}/taskInstances/{task_id}/{map_index}/hitlDetails"
        body = {"chosen_options": chosen_options, "params_input": params_input or {}}
        return dict(self.request("PATCH", path, json=body))

    def answer_pending_hitl(self, dag_id: str, run_id: str, answer: HitlAnswer, after_s: float = 5.0) -> int:
        """Answer the run's open requests that have waited ``after_s`` seconds. A reviewer takes
        a moment; an answer within a second of the request can reach the waiting task before the
        scheduler has seen it defer, and the scheduler then fails the task (a race in Airflow
        3.3 for deferrals that resolve almost at once)."""
        answered = 0
        now = datetime.now(UTC)
        for detail in self.hitl_details(dag_id, run_id, pending_only=True):
            if detail.get("response_received"):
                continue
            if (now - datetime.fromisoformat(detail["created_at"])).total_seconds() < after_s:
                continue
            ti = detail["task_instance"]
            chosen = answer(detail)
            self.respond_hitl(dag_id, run_id, ti["task_id"], chosen, map_index=int(ti.get("map_index", -1)))
            self.hitl_answers.append(
                {
                    "dag_id": dag_id,
                    "run_id": run_id,
                    "task_id": ti["task_id"],
                    "chosen": chosen,
                    "subject": detail.get("subject"),
                }
            )
            answered += 1
        return answered

    # ----------------------------------------------------------------- assets
    def asset_events(self, name: str | None = None, source_dag_id: str | None = None) -> list[Json]:
        params: Json = {"limit": 1000, "order_by": "timestamp"}
        if source_dag_id:
            params["source_dag_id"] = source_dag_id
        events = list(self.request("GET", "/api/v2/assets/events", params=params)["asset_events"])
        return [e for e in events if name is None or e["name"] == name]


# ----------------------------------------------------------------------------- the stack


@dataclass
class AirflowStack:
    root: Path  # everything of this stack lives here
    home: Path  # RETRAINER_HOME of the tasks
    airflow_home: Path
    env: dict[str, str]  # the components' (and the tasks') environment
    base_url: str
    db: MetadataDB
    logs: Path  # one log per component
    components: list[Component] = field(default_factory=list)
    cleanups: list[Callable[[], None]] = field(default_factory=list)  # run at stop, after the processes
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    pgid: int | None = None
    started_in: float = 0.0
    api: AirflowAPI | None = None

    @property
    def client(self) -> AirflowAPI:
        assert self.api is not None, "the stack is not up"
        return self.api

    @property
    def settings(self) -> Settings:
        """Where the tasks keep their state (data registry, quarantine, MLflow, model store)."""
        return Settings.from_env(self.env)

    def airflow(self, *args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
        """An ``airflow`` CLI command against this stack's metadata DB."""
        proc = subprocess.run(
            [sys.executable, "-m", "airflow", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        assert proc.returncode == 0, f"airflow {' '.join(args)} -> {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
        return proc

    def log_tails(self, lines: int = 40) -> str:
        return "\n".join(
            f"===== {c.name} ({self.logs / f'{c.name}.log'})\n{tail(self.logs / f'{c.name}.log', lines)}"
            for c in self.components
        )

    def mentions(self, text: str, lines: int = 12) -> str:
        """The last lines of each component's log that hold ``text``."""
        found = []
        for c in self.components:
            path = self.logs / f"{c.name}.log"
            text_of = path.read_text(errors="replace") if path.is_file() else ""
            hits = [line for line in text_of.splitlines() if text in line]
            found.extend(f"[{c.name}] {line[:600]}" for line in hits[-lines:])
        return "\n".join(found)

    def check_alive(self) -> None:
        dead = {n: p.returncode for n, p in self.procs.items() if p.poll() is not None}
        if dead:
            raise RuntimeError(f"Airflow components exited: {dead}\n{self.log_tails()}")

    # ----------------------------------------------------------------- lifecycle
    def start(self, timeout: float = 240.0) -> None:
        t0 = time.monotonic()
        setup_airflow(self.env)  # the metadata DB and the DAGs' pools
        for c in self.components:
            self._launch(c)
        self._wait_healthy(timeout - (time.monotonic() - t0))
        passwords = Path(self.env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"])
        self.api = AirflowAPI(self.base_url, json.loads(passwords.read_text())[USER])
        self.api.watchdog = self.check_alive
        self.api.mentions = self.mentions
        self.started_in = time.monotonic() - t0

    def _launch(self, c: Component) -> None:
        with open(self.logs / f"{c.name}.log", "ab") as out:
            # the first component leads a new process group; the others join it, so one
            # signal to the group reaches every component and every task process
            proc = subprocess.Popen(
                c.args,
                env={**self.env, **c.env},
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.root,
                process_group=0 if self.pgid is None else self.pgid,
            )
        if self.pgid is None:
            self.pgid = proc.pid
        self.procs[c.name] = proc

    def processes(self, name: str) -> list[psutil.Process]:
        """A component's process and every process it started (a worker's task processes)."""
        root = psutil.Process(self.procs[name].pid)
        return [root, *root.children(recursive=True)]

    def kill_host(self, name: str) -> list[int]:
        """SIGKILL a component and every process it started at once, as when its host is lost:
        no handler, no ``finally`` runs anywhere in it. Returns the process ids killed."""
        procs = self.processes(name)
        for p in procs:
            with contextlib.suppress(psutil.NoSuchProcess):
                p.kill()
        psutil.wait_procs(procs, timeout=30)
        self.procs[name].wait(timeout=10)
        return [p.pid for p in procs]

    def relaunch(self, name: str) -> None:
        """Start a component again as it was first started (its host is back)."""
        self._launch(next(c for c in self.components if c.name == name))

    def _wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        health: Any = None
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                health = requests.get(f"{self.base_url}/api/v2/monitor/health", timeout=5).json()
            except (requests.RequestException, ValueError):
                health = None
            if health:
                parts = ("metadatabase", "scheduler", "triggerer", "dag_processor")
                if all((health.get(p) or {}).get("status") == "healthy" for p in parts) and all(
                    _answers(c.health) for c in self.components if c.health
                ):
                    return
            time.sleep(1)
        raise RuntimeError(f"Airflow not healthy after {timeout:.0f} s: {health}\n{self.log_tails()}")

    def stop(self, grace: float = 20.0) -> None:
        """TERM to the whole process group, KILL what is left after ``grace`` s; drop the DB."""
        if self.pgid is not None:
            # stragglers (task processes, executor workers) are killed once the components are gone
            stop_group(self.pgid, grace, running=lambda: any(p.poll() is None for p in self.procs.values()))
            for p in self.procs.values():
                p.wait(timeout=10)
        self.db.drop()
        for cleanup in self.cleanups:
            cleanup()


#: locations and credentials that must come from the stack, never from the shell running the tests
_NOT_INHERITED = (
    "RETRAINER_",
    "AIRFLOW_",
    "MLFLOW_",
    "AWS_",
    "PYTEST_",
)


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=5).status_code == 200
    except requests.RequestException:
        return False


def airflow_components(base_url: str) -> list[Component]:
    """The API server, scheduler, DAG processor and triggerer."""
    port = base_url.rsplit(":", 1)[1]
    airflow = [sys.executable, "-m", "airflow"]
    return [
        Component("api-server", [*airflow, "api-server", "--host", "127.0.0.1", "--port", port, "--workers", "1"]),
        *(Component(name, [*airflow, name]) for name in ("scheduler", "dag-processor", "triggerer")),
    ]


def make_stack(parent: Path, review: bool = True) -> AirflowStack:
    root = Path(tempfile.mkdtemp(prefix="airflow-stack-", dir=parent))
    home, airflow_home, logs = root / "home", root / "airflow", root / "logs"
    for d in (home / "mlflow", airflow_home, logs):
        d.mkdir(parents=True)
    small_bike_spec(home / "specs", review=review)
    db = metadata_db(airflow_home)
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(_NOT_INHERITED)}
    env.update(localenv.local_env(home))
    env.update(
        {
            "PATH": os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]),
            "RETRAINER_SPECS_DIR": str(home / "specs"),
            "RETRAINER_TASK_RETRIES": "0",
            "RETRAINER_REVIEW_POKE_S": "2",  # a waiting review looks for the answer every 2 s
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": db.url,
            "AIRFLOW__CORE__PARALLELISM": "2",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
            "AIRFLOW__API__PORT": str(port),
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__BASE_URL": base_url,
            "AIRFLOW__API__WORKERS": "1",
            # the executor's and the triggerer's log servers: free ports, not the fixed defaults
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{base_url}/execution/",
            # one secret for the API server and the scheduler, which signs the tasks' tokens
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(64),
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "300",
            "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
        }
    )
    return AirflowStack(root, home, airflow_home, env, base_url, db, logs, airflow_components(base_url))


def serve(stack: AirflowStack, request: pytest.FixtureRequest, what: str) -> Iterator[AirflowStack]:
    """Start ``stack`` for a fixture, yield it, stop it; on failed tests, show its logs."""
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    try:
        stack.start()
    except BaseException:
        stack.stop(grace=5)
        raise
    if reporter is not None:
        reporter.write_line(
            f"\n{what} up in {stack.started_in:.0f} s at {stack.base_url}; metadata DB: "
            f"{stack.db.backend} ({stack.db.note}); state under {stack.root}"
        )
    failed_before = request.session.testsfailed
    try:
        yield stack
    finally:
        failed = request.session.testsfailed > failed_before
        logs = stack.log_tails() if failed else ""
        stack.stop()
        if failed and reporter is not None:
            reporter.write_line(f"\n{what}: component logs (tests failed):\n{logs}")


@pytest.fixture(scope="module", name="airflow_stack")
def airflow_stack_fixture(request: pytest.FixtureRequest) -> Iterator[AirflowStack]:
    """The Airflow components over a fresh metadata DB, for the tests of one module (stopped after
    them, so an idle scheduler does not slow the tests that follow)."""
    parent = Path(os.environ["AIRFLOW_HOME"]).parent  # the session's temporary home (tests/conftest.py)
    yield from serve(make_stack(parent), request, "airflow stack")
