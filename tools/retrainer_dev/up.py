"""``make up``: wait until the Airflow and MLflow web UIs answer, then say where they are.

The Airflow login is the ``admin`` user of Airflow's simple auth manager; Airflow
generates its password on first start into ``$AIRFLOW_HOME/passwords.json`` and this
prints it from there (nothing is hard-coded).
"""

from __future__ import annotations

import argparse
import json
import os
import urllib.error
import urllib.request
from pathlib import Path

from retrainer_dev import localenv
from retrainer_dev.procs import group_alive, stop_group
from retrainer_dev.waiting import WaitTimeout, wait_until


def answers(url: str) -> bool:
    """Whether ``url`` answers 200 now."""
    try:
        with urllib.request.urlopen(url, timeout=3) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def comes_up(url: str, timeout: float) -> bool:
    """Whether ``url`` answers 200 within ``timeout`` seconds (asked every 2 s)."""
    try:
        return wait_until(lambda: answers(url), timeout, interval_s=2, what=url)
    except WaitTimeout:
        return False


def stop(run_dir: Path, name: str, grace: float = 20.0) -> None:
    """Stop a service started by ``make up``: TERM to its whole process group, KILL after ``grace`` s."""
    pid_file = run_dir / f"{name}.pid"
    if not pid_file.is_file():
        return
    pgid = int(pid_file.read_text().strip())  # started with setsid: its pid is its process group
    if group_alive(pgid):
        stop_group(pgid, grace)
        print(f"stopped {name} (process group {pgid})")
    pid_file.unlink()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--down", action="store_true", help="stop what `make up` started")
    parser.add_argument("--airflow-port", type=int, default=8080)
    parser.add_argument("--mlflow-port", type=int, default=5000)
    parser.add_argument("--timeout", type=float, default=240)
    args = parser.parse_args()
    env = localenv.apply()
    run_dir = Path(env["RETRAINER_HOME"]) / "run"
    if args.down:
        for name in ("airflow", "mlflow", "serving"):
            stop(run_dir, name)
        return 0
    airflow = f"http://127.0.0.1:{args.airflow_port}"
    mlflow = f"http://127.0.0.1:{args.mlflow_port}"
    print("Waiting for the web UIs (Airflow takes about a minute on first start) ...", flush=True)
    ok_airflow = comes_up(f"{airflow}/api/v2/monitor/health", args.timeout)
    ok_mlflow = comes_up(f"{mlflow}/health", 60)
    passwords = Path(os.environ["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"])
    password = json.loads(passwords.read_text()).get("admin", "?") if passwords.is_file() else "?"
    print(f"Airflow UI  {airflow}  {'up' if ok_airflow else 'NOT UP: see ' + str(run_dir / 'airflow.log')}")
    print(f"            login: admin / {password}   (from {passwords})")
    print(f"MLflow UI   {mlflow}  {'up' if ok_mlflow else 'NOT UP: see ' + str(run_dir / 'mlflow.log')}")
    print("Stop both with: make down")
    return 0 if ok_airflow and ok_mlflow else 1


if __name__ == "__main__":
    raise SystemExit(main())
