"""The MLflow server of docker-compose.yaml, started on loopback by the compose's own script
(include/compose/mlflow-server.sh) with the compose's environment: only the stores (SQLite and
a folder instead of PostgreSQL and S3), the secrets folder and the port are local.

Guards: MLflow 3.17 refused the workers' `Host: mlflow:5000` (403 "Invalid Host header", no
allowed hosts were set); MLflow had no logins on a published port, so anyone could move
`champion` or set `approval=approved` with a self-declared `approval.reviewer`.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from retrainer_dev.stacks.ports import free_port
from retrainer_dev.waiting import wait_until
from tests import compose
from tests.compose import REPO

pytestmark = pytest.mark.integration

SERVICE = "retrainer-pipeline"
MODEL = "bike_demand"


class Server:
    def __init__(self, url: str, port: int, passwords: dict[str, str]) -> None:
        self.url, self.port, self.passwords = url, port, passwords

    def call(
        self, method: str, path: str, body: Any = None, user: str | None = None, host: str | None = None
    ) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json", "Host": host or f"127.0.0.1:{self.port}"}
        if user:
            token = base64.b64encode(f"{user}:{self.passwords[user]}".encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        req = urllib.request.Request(self.url + path, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                raw = resp.read()
                status = resp.status
        except urllib.error.HTTPError as err:
            raw, status = err.read(), err.code
        try:
            return status, json.loads(raw or b"null")
        except json.JSONDecodeError:
            return status, raw.decode(errors="replace")

    def version_tags(self, version: str = "1") -> dict[str, str]:
        status, body = self.call(
            "GET", f"/api/2.0/mlflow/model-versions/get?name={MODEL}&version={version}", user=SERVICE
        )
        assert status == 200, body
        return {t["key"]: t["value"] for t in body["model_version"].get("tags", [])}

    def aliases(self) -> list[dict[str, str]]:
        status, body = self.call("GET", f"/api/2.0/mlflow/registered-models/get?name={MODEL}", user=SERVICE)
        assert status == 200, body
        return list(body["registered_model"].get("aliases", []))


def _health(srv: Server) -> int:
    try:
        return srv.call("GET", "/health")[0]
    except OSError:  # not listening yet
        return 0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("mlflow-server")
    svc = compose.load({"MLFLOW_PUBLIC_HOST": "127.0.0.1:{port}"})["services"]["mlflow"]
    port = free_port()
    secrets = tmp / "run-secrets"
    secrets.mkdir()
    passwords = {SERVICE: "service-password-1", "rita": "rita-password-1", "rob": "rob-password-1"}
    for name, value in {
        "mlflow_db_password": "unused",
        "mlflow_service_password": passwords[SERVICE],
        "mlflow_flask_secret_key": "flask-key",
        "s3_access_key": "k",
        "s3_secret_key": "s",
    }.items():
        (secrets / name).write_text(value + "\n")
    env = {str(k): str(v) for k, v in svc["environment"].items()}
    for key, value in list(env.items()):
        if value.startswith("/run/secrets/"):
            env[key] = str(secrets / value.removeprefix("/run/secrets/"))
    env.update(
        PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        HOME=str(tmp),
        RETRAINER_SECRETS_DIR=str(secrets),
        MLFLOW_HOST="127.0.0.1",
        MLFLOW_PORT=str(port),
        MLFLOW_BACKEND_STORE_URI_TEMPLATE=f"sqlite:///{tmp}/mlflow.db",
        MLFLOW_AUTH_DATABASE_URI_TEMPLATE=f"sqlite:///{tmp}/auth.db",
        MLFLOW_ARTIFACTS_DESTINATION=str(tmp / "artifacts"),
        MLFLOW_WORKERS="1",
        MLFLOW_ALLOWED_HOSTS=env["MLFLOW_ALLOWED_HOSTS"].replace("{port}", str(port)),
    )
    program = compose.argv(svc)
    assert program[:2] == compose.DUMB_INIT
    script = REPO / program[2].removeprefix("/opt/retrainer/")
    log = (tmp / "server.log").open("w")
    proc = subprocess.Popen([str(script)], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    srv = Server(f"http://127.0.0.1:{port}", port, passwords)

    def log_end() -> str:
        return f"the MLflow server did not start:\n{(tmp / 'server.log').read_text()[-3000:]}"

    def up() -> bool:
        if proc.poll() is not None:
            pytest.fail(log_end())
        return _health(srv) == 200

    wait_until(up, 120, interval_s=0.5, what="the MLflow server's health check", details=log_end)
    try:
        yield srv
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=30)
        log.close()


def test_it_answers_the_host_names_of_the_compose_and_no_other(server: Server) -> None:
    path = "/api/2.0/mlflow/experiments/search?max_results=1"
    assert server.call("GET", path, user=SERVICE, host="mlflow:5000")[0] == 200
    status, body = server.call("GET", path, user=SERVICE, host="attacker.example:5000")
    assert status == 403 and "Invalid Host header" in str(body)


def test_logins_are_required(server: Server) -> None:
    assert server.call("GET", "/api/2.0/mlflow/experiments/search?max_results=1")[0] == 401
    assert server.call("GET", "/api/2.0/mlflow/experiments/search?max_results=1", user="rob")[0] == 401  # no user yet


def test_only_reviewers_approve_and_the_reviewer_is_who_logged_in(server: Server) -> None:
    """The pipeline (service account) registers a version; a reader and a reviewer try what a
    reviewer might; the answer the pipeline reads names the authenticated reviewer."""
    from retrainer.registry import approval, reviewers

    # the pipeline's service account: a registered model, a version, the champion alias
    assert server.call("POST", "/api/2.0/mlflow/registered-models/create", {"name": MODEL}, user=SERVICE)[0] == 200
    version = {"name": MODEL, "source": "s3://retrainer/mlflow/models/m-1/artifacts"}
    status, body = server.call("POST", "/api/2.0/mlflow/model-versions/create", version, user=SERVICE)
    assert status == 200, body
    alias = {"name": MODEL, "alias": "champion", "version": "1"}
    assert server.call("POST", "/api/2.0/mlflow/registered-models/alias", alias, user=SERVICE)[0] == 200

    # reviewers and readers, as an operator adds them (the CLI, as the service account)
    os.environ.update(MLFLOW_TRACKING_USERNAME=SERVICE, MLFLOW_TRACKING_PASSWORD=server.passwords[SERVICE])
    try:
        cli = [sys.executable, "-m", "retrainer", "reviewers", "add", "rita", MODEL]
        env = {**os.environ, "MLFLOW_TRACKING_URI": server.url, "RETRAINER_REVIEWER_PASSWORD": "rita-password-1"}
        out = subprocess.run(cli, env=env, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        assert "rita may approve or reject versions of bike_demand" in out.stdout
        assert reviewers.add(server.url, "rita", None, [MODEL]) == []  # again: nothing to change
        assert (
            server.call(
                "POST", "/api/2.0/mlflow/users/create", {"username": "rob", "password": "rob-password-1"}, user=SERVICE
            )[0]
            == 200
        )
    finally:
        for key in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
            os.environ.pop(key, None)
    before = server.version_tags()
    approve = {"name": MODEL, "version": "1", "key": "approval", "value": "approved"}
    set_tag = "/api/2.0/mlflow/model-versions/set-tag"

    # refused, and nothing changes: no login, a reader, a self-declared reviewer, an alias move
    assert server.call("POST", set_tag, approve)[0] == 401
    assert server.call("POST", set_tag, approve, user="rob")[0] == 403
    declared = {**approve, "key": "approval.reviewer", "value": "mallory"}
    status, body = server.call("POST", set_tag, declared, user="rita")
    assert status == 403 and "may write only the 'approval' tag" in body["message"]
    assert server.call("POST", set_tag, {**approve, "value": "maybe"}, user="rita")[0] == 403
    assert (
        server.call("POST", "/api/2.0/mlflow/registered-models/alias", {**alias, "version": "1"}, user="rita")[0] == 403
    )
    drop = {"name": MODEL, "alias": "champion"}  # as MlflowClient sends it
    assert server.call("DELETE", "/api/2.0/mlflow/registered-models/alias", drop, user="rita")[0] == 403
    assert server.version_tags() == before and [a["alias"] for a in server.aliases()] == ["champion"]
    assert approval.mlflow_answer(server.version_tags()) is None

    # the reviewer approves; the server records who they are
    assert server.call("POST", set_tag, approve, user="rita")[0] == 200
    tags = server.version_tags()
    assert tags["approval"] == "approved" and tags["approval.reviewer"] == "rita"
    assert approval.mlflow_answer(tags) == ("approved", "rita")
    # the service account still writes what the pipeline records
    assert server.call("POST", set_tag, {**approve, "key": "approval.via", "value": "mlflow"}, user=SERVICE)[0] == 200
