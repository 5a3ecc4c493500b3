"""Airflow's logins in the production shape: the FAB auth manager of docker-compose.yaml, its
admin created the way airflow-init does it (the Airflow image's entrypoint with
_AIRFLOW_WWW_USER_CREATE, the password read from the secret file), then Airflow's own API
app: nothing without a login, a wrong password refused, the admin's token let in.

Guards: Airflow ran with SimpleAuthManager (development only; its password generated
inside the container and changed when it was recreated).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests import compose

pytestmark = pytest.mark.integration

CHECK = """
import json, sys
from fastapi.testclient import TestClient
from airflow.api_fastapi.app import create_app

user, password = sys.argv[1], sys.argv[2]
client = TestClient(create_app(apps="core"))
out = {"anonymous": client.get("/api/v2/dags").status_code}
out["wrong password"] = client.post("/auth/token", json={"username": user, "password": "not-it"}).status_code
resp = client.post("/auth/token", json={"username": user, "password": password})
out["login"] = resp.status_code
token = resp.json().get("access_token", "") if resp.status_code < 300 else ""
out["with token"] = client.get("/api/v2/dags", headers={"Authorization": f"Bearer {token}"}).status_code
print(json.dumps(out))
"""


def test_the_admin_from_the_secret_logs_in_and_nobody_else(tmp_path: Path) -> None:
    services = compose.load()["services"]
    init = services["airflow-init"]["environment"]
    api = services["airflow-apiserver"]["environment"]
    assert api["AIRFLOW__CORE__AUTH_MANAGER"] == init["AIRFLOW__CORE__AUTH_MANAGER"]
    secret = tmp_path / "airflow_admin_password"
    secret.write_text("a-password-from-the-secret-file\n")
    dags = tmp_path / "dags"
    dags.mkdir()
    env = {
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "HOME": str(tmp_path),
        "AIRFLOW_HOME": str(tmp_path / "airflow"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{tmp_path}/airflow.db",
        "AIRFLOW__CORE__AUTH_MANAGER": api["AIRFLOW__CORE__AUTH_MANAGER"],
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__API_AUTH__JWT_SECRET": "jwt-secret-for-the-test",
        "AIRFLOW__API__SECRET_KEY": "api-secret-for-test",
        "AIRFLOW__CORE__FERNET_KEY": "",
        "PYTHONWARNINGS": "ignore",
    }
    user = init["_AIRFLOW_WWW_USER_USERNAME"]
    read_password = init["_AIRFLOW_WWW_USER_PASSWORD_CMD"].replace("/run/secrets/airflow_admin_password", str(secret))

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, f"{args}: {proc.stderr[-2000:]}"
        return proc

    # what the Airflow image's entrypoint does with _AIRFLOW_DB_MIGRATE and _AIRFLOW_WWW_USER_CREATE
    # (scripts/docker/entrypoint_prod.sh: migrate_db, create_www_user with *_PASSWORD_CMD)
    run("airflow", "db", "migrate")
    password = run("bash", "-c", read_password).stdout.rstrip("\n")  # as $(...) in the entrypoint
    run(
        "airflow",
        "users",
        "create",
        "--username",
        user,
        "--firstname",
        "Airflow",
        "--lastname",
        "Admin",
        "--email",
        "airflowadmin@example.com",
        "--role",
        "Admin",
        "--password",
        password,
    )
    out = json.loads(run(sys.executable, "-c", CHECK, user, password).stdout.strip().splitlines()[-1])
    assert out == {"anonymous": 401, "wrong password": 401, "login": 201, "with token": 200}, out
