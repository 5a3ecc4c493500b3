"""Manual triggers: retrain_model's Params are a schema (a form in the Airflow UI); a bad conf
is refused when the run is triggered, with a message naming the field, and no run starts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def api(dags: dict[str, Any]) -> Any:
    """Airflow's REST API in process (what the UI and `airflow dags trigger` call), as admin,
    over the session's metadata DB with the DAGs serialized as the dag-processor would."""
    from airflow.api_fastapi.app import create_app
    from fastapi.testclient import TestClient

    subprocess.run([sys.executable, "-m", "airflow", "dags", "reserialize"], check=True, capture_output=True)
    client = TestClient(create_app(apps="core"))
    passwords = json.loads(Path(os.environ["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"]).read_text())
    token = client.post("/auth/token", json={"username": "admin", "password": passwords["admin"]})
    client.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
    return client


def _runs(api: Any) -> int:
    return int(api.get("/api/v2/dags/retrain_model/dagRuns").json()["total_entries"])


@pytest.mark.parametrize(
    ("conf", "field", "why"),
    [
        ({"window": 0}, "window", "less than the minimum of 1"),
        ({"epochs": "many"}, "epochs", "is not of type"),
        ({"force": "yes"}, "force", "is not of type 'boolean'"),
        ({"data_version": "last-week"}, "data_version", "does not match"),
        ({"dataset": "no_such_dataset"}, "dataset", "is not one of"),
        ({"reason": "x" * 501}, "reason", "is too long"),
    ],
)
def test_a_bad_conf_is_refused_before_any_work(api: Any, conf: dict[str, Any], field: str, why: str) -> None:
    before = _runs(api)
    r = api.post("/api/v2/dags/retrain_model/dagRuns", json={"logical_date": None, "conf": conf})
    assert r.status_code == 400, r.text
    detail = r.json()["detail"]
    assert field in detail and why in detail, detail
    assert _runs(api) == before  # nothing was started


def test_the_params_form_describes_every_field(api: Any) -> None:
    r = api.get("/api/v2/dags/retrain_model/details")
    assert r.status_code == 200, r.text
    params = r.json()["params"]
    for name in ("dataset", "data_version", "window", "epochs", "force", "reason"):
        assert params[name]["description"], name
        assert params[name]["schema"].get("title"), name
    assert params["force"]["value"] is False and params["window"]["schema"]["maximum"] == 8784
