"""``make up``: wait until the Airflow and MLflow web UIs answer, then say where they are.

The Airflow login is the ``admin`` user of Airflow's simple auth manager; Airflow
generates its password on first start into ``$AIRFLOW_HOME/passwords.json`` and this
prints it from there (nothing is hard-coded).
"""

from __future__ import annotations

import argparse
import json
import os
import time
import urllib.error
import urllib.request
from pathlib import Path

from retrainer_airflow import localenv


def wait_for(url: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=3) as resp:
                if resp.status == 200:
                    return True
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(2)
    return False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--airflow-port", type=int, default=8080)
    parser.add_argument("--mlflow-port", type=int, default=5000)
    parser.add_argument("--timeout", type=float, default=240)
    args = parser.parse_args()
    env = localenv.apply()
    run_dir = Path(env["RETRAINER_HOME"]) / "run"
    airflow = f"http://127.0.0.1:{args.airflow_port}"
    mlflow = f"http://127.0.0.1:{args.mlflow_port}"
    print("Waiting for the web UIs (Airflow takes about a minute on first start) ...", flush=True)
    ok_airflow = wait_for(f"{airflow}/api/v2/monitor/health", args.timeout)
    ok_mlflow = wait_for(f"{mlflow}/health", 60)
    passwords = Path(os.environ["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"])
    password = json.loads(passwords.read_text()).get("admin", "?") if passwords.is_file() else "?"
    print(f"Airflow UI  {airflow}  {'up' if ok_airflow else 'NOT UP: see ' + str(run_dir / 'airflow.log')}")
    print(f"            login: admin / {password}   (from {passwords})")
    print(f"MLflow UI   {mlflow}  {'up' if ok_mlflow else 'NOT UP: see ' + str(run_dir / 'mlflow.log')}")
    print("Stop both with: make down")
    return 0 if ok_airflow and ok_mlflow else 1


if __name__ == "__main__":
    raise SystemExit(main())
