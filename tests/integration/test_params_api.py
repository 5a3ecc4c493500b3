"""Manual triggers: retrain_model's Params are a schema (a form in the Airflow UI); a bad conf
is refused when the run is triggered, with a message naming the field, and no run starts."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.integration


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


@pytest.mark.parametrize("dag_id", ["ingest_batch", "monitor_drift", "retrain_model", "rollback_model"])
def test_the_params_form_describes_every_field(api: Any, dag_id: str) -> None:
    """Each field of each form has a title, a description and an example; a field that may be
    left empty defaults to null and says it is optional in its title (the form marks a
    field required when its default is an empty string)."""
    r = api.get(f"/api/v2/dags/{dag_id}/details")
    assert r.status_code == 200, r.text
    params = r.json()["params"]
    for name, param in params.items():
        schema = param["schema"]
        assert param["description"] and schema.get("title") and schema.get("examples"), (dag_id, name, param)
        assert param["value"] != "", (dag_id, name, "an empty-string default shows as required")
        if param["value"] is None and "null" in (schema.get("type") or []):
            assert "optional" in schema["title"] or "set by" in schema["title"], (dag_id, name, schema["title"])
    if dag_id == "retrain_model":
        assert params["force"]["value"] is False and params["window"]["schema"]["maximum"] == 8784
        assert params["reason"]["value"] is None and params["drift"]["value"] is None
