"""The real Airflow components, for what ``dag.test()`` leaves out: an Airflow stack on one machine.

``make_stack`` prepares the API server (REST API and the execution API the tasks talk to), the
scheduler with the LocalExecutor, the DAG processor and the triggerer, to run as subprocesses in
one process group over a fresh AIRFLOW_HOME and a fresh metadata database (``postgres``:
PostgreSQL when it is there, else SQLite). The DAGs and plugins are the repository's; the tasks
see a ``RETRAINER_HOME`` of their own (``AirflowStack.home``), with a small training spec.
``AirflowStack.start`` starts it and waits until it is healthy, ``stop`` stops it; its ``client``
is the REST API's (``airflow_api.AirflowAPI``).
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
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import requests

from retrainer.settings import Settings
from retrainer_dev import localenv
from retrainer_dev.localenv import setup_airflow
from retrainer_dev.procs import stop_group
from retrainer_dev.stacks.airflow_api import USER, AirflowAPI
from retrainer_dev.stacks.components import Component, answers, inherited_env, tail
from retrainer_dev.stacks.ports import free_port
from retrainer_dev.stacks.postgres import MetadataDB, metadata_db
from retrainer_dev.stacks.specs import small_bike_spec
from retrainer_dev.waiting import wait_until

#: what Airflow's health check must report healthy before the stack counts as up
HEALTHY_PARTS = ("metadatabase", "scheduler", "triggerer", "dag_processor")


@dataclass
class AirflowStack:
    """A stack's folders, environment and components; once started, its processes and REST client."""

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
        if self.api is None:
            raise RuntimeError("the stack is not up")
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
        if proc.returncode != 0:
            raise AssertionError(f"airflow {' '.join(args)} -> {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
        return proc

    def log_tails(self, lines: int = 40) -> str:
        return "\n".join(
            f"===== {c.name} ({self.logs / f'{c.name}.log'})\n{tail(self.logs / f'{c.name}.log', lines)}"
            for c in self.components
        )

    def mentions(self, text: str, lines: int = 12) -> str:
        """The last lines of each component's log that hold ``text``."""
        found: list[str] = []
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

    def health(self) -> Any:
        """What Airflow's health check answers now (None while it does not answer)."""
        try:
            return requests.get(f"{self.base_url}/api/v2/monitor/health", timeout=5).json()
        except (requests.RequestException, ValueError):
            return None

    def _wait_healthy(self, timeout: float) -> None:
        seen: list[Any] = [None]

        def healthy() -> bool:
            self.check_alive()
            seen[0] = health = self.health()
            if not health:
                return False
            return all((health.get(p) or {}).get("status") == "healthy" for p in HEALTHY_PARTS) and all(
                answers(c.health) for c in self.components if c.health
            )

        wait_until(
            healthy,
            timeout,
            what="Airflow to report healthy",
            details=lambda: f"health: {seen[0]}\n{self.log_tails()}",
        )

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


def airflow_components(base_url: str) -> list[Component]:
    """The API server, scheduler, DAG processor and triggerer."""
    port = base_url.rsplit(":", 1)[1]
    airflow = [sys.executable, "-m", "airflow"]
    return [
        Component("api-server", [*airflow, "api-server", "--host", "127.0.0.1", "--port", port, "--workers", "1"]),
        *(Component(name, [*airflow, name]) for name in ("scheduler", "dag-processor", "triggerer")),
    ]


def stack_env(home: Path, db: MetadataDB, port: int) -> dict[str, str]:
    """The components' (and the tasks') environment: the embedded default over ``home``, the
    metadata DB, the API on ``port``, log servers on free ports, a fresh JWT secret."""
    base_url = f"http://127.0.0.1:{port}"
    env = inherited_env()
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
    return env


def make_stack(parent: Path, review: bool = True) -> AirflowStack:
    """A stack (not started) in a new folder under ``parent``, with a small bike spec (``review``:
    a reviewer decides before promotion) and a fresh metadata database."""
    root = Path(tempfile.mkdtemp(prefix="airflow-stack-", dir=parent))
    home, airflow_home, logs = root / "home", root / "airflow", root / "logs"
    for d in (home / "mlflow", airflow_home, logs):
        d.mkdir(parents=True)
    small_bike_spec(home / "specs", review=review)
    db = metadata_db(airflow_home)
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = stack_env(home, db, port)
    return AirflowStack(root, home, airflow_home, env, base_url, db, logs, airflow_components(base_url))
