"""MLflow tracking servers for the stacks: as a component of a stack's process group, or as a
server of its own that can be stopped and started again on the same port over the same store
(``MlflowServer``: an outage, a restart)."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from retrainer_dev.procs import stop_group
from retrainer_dev.stacks.components import Component
from retrainer_dev.stacks.ports import free_port
from retrainer_dev.waiting import wait_until

#: without MLflow's job runner (GenAI jobs; eight more processes of about 240 MB), as deployed
SERVER_ENV = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
START_TIMEOUT_S = 120.0


def client_artifacts(root: str) -> list[str]:
    """Artifacts under ``root`` that the clients write themselves (the server does not serve them)."""
    return ["--default-artifact-root", root, "--no-serve-artifacts"]


def served_artifacts(destination: str) -> list[str]:
    """Artifacts the server keeps in ``destination`` and serves (clients go through the server)."""
    return ["--artifacts-destination", destination, "--serve-artifacts"]


def server_args(port: int | str, backend: str, artifacts: Sequence[str], workers: int = 1) -> list[str]:
    """``mlflow server`` on loopback over the backend store ``backend``, with ``artifacts``' flags."""
    return [
        *(sys.executable, "-m", "mlflow", "server"),
        *("--backend-store-uri", backend, *artifacts),
        *("--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)),
    ]


def server_component(url: str, backend: str, artifacts: str) -> Component:
    """The tracking server of a stack at ``url``: its backend store ``backend`` (PostgreSQL),
    artifacts under ``artifacts`` written by the clients themselves (S3)."""
    args = server_args(url.rsplit(":", 1)[1], backend, client_artifacts(artifacts))
    return Component("mlflow", args, dict(SERVER_ENV), health=f"{url}/health")


def _healthy(url: str) -> bool:
    with urllib.request.urlopen(f"{url}/health", timeout=2):
        return True


class MlflowServer:
    """``mlflow server`` over ``backend`` on a port of its own, logging to ``log``; ``stop`` and
    ``start`` keep the port, the store and the artifacts. ``outages`` counts the stops."""

    def __init__(self, backend: str, artifacts: Sequence[str], log: Path, workers: int = 1) -> None:
        self.backend, self.artifacts, self.log, self.workers = backend, list(artifacts), log, workers
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._proc: subprocess.Popen[bytes] | None = None
        self.outages = 0

    def start(self, timeout: float = START_TIMEOUT_S) -> None:
        """Start the server (unless it runs) and wait until it answers its health check."""
        if self._proc is not None and self._proc.poll() is None:
            return
        args = server_args(self.port, self.backend, self.artifacts, self.workers)
        with self.log.open("ab") as out:
            proc = subprocess.Popen(
                args, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, env={**os.environ, **SERVER_ENV}
            )
        self._proc = proc

        def up() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(f"MLflow server did not start (exit {proc.returncode}): {self._log_end()}")
            return _healthy(self.url)

        what = f"the MLflow server at {self.url}"
        wait_until(up, timeout, interval_s=0.3, what=what, retry_on=(OSError,), details=self._log_end)

    def _log_end(self) -> str:
        return f"its log ({self.log}) ends:\n{self.log.read_text(errors='replace')[-2000:]}"

    def stop(self, grace: float = 60.0) -> None:
        """TERM to the server's process group (KILL after ``grace`` s), as when it goes away."""
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        self.outages += 1
        stop_group(proc.pid, grace, running=lambda: proc.poll() is None)
        proc.wait(timeout=10)
