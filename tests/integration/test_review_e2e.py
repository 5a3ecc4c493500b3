"""Approval policy ``review`` end to end: retrain_model waits on the reviewer, who answers in
the Airflow UI (through Airflow's own REST API, as the UI does) or in the MLflow UI (a
version tag); the first answer decides; no answer by the deadline rejects."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from retrainer.model.evaluation import worse_by
from retrainer.records import Evaluation
from retrainer.registry.client import Registry
from retrainer.schema import CHALLENGER, CHAMPION
from retrainer.serving import modelstore
from retrainer.settings import Settings
from retrainer_dev.waiting import wait_until

pytestmark = pytest.mark.integration


class AirflowUI:
    """Airflow's REST API in process, logged in as the admin user: what the UI calls."""

    def __init__(self) -> None:
        from airflow.api_fastapi.app import create_app
        from fastapi.testclient import TestClient

        self.client = TestClient(create_app(apps="core"))
        passwords = json.loads(Path(os.environ["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"]).read_text())
        token = self.client.post("/auth/token", json={"username": "admin", "password": passwords["admin"]})
        assert token.status_code == 201, token.text
        self.headers = {"Authorization": f"Bearer {token.json()['access_token']}"}

    def pending_review(self) -> dict[str, Any] | None:
        r = self.client.get(
            "/api/v2/dags/retrain_model/dagRuns/~/hitlDetails",
            params={"response_received": "false", "task_id": "review"},
            headers=self.headers,
        )
        assert r.status_code == 200, r.text
        found = r.json()["hitl_details"]
        return found[0] if found else None

    def answer(self, detail: dict[str, Any], option: str) -> Any:
        ti = detail["task_instance"]
        return self.client.patch(
            f"/api/v2/dags/retrain_model/dagRuns/{ti['dag_run_id']}/taskInstances/review/-1/hitlDetails",
            json={"chosen_options": [option], "params_input": {}},
            headers=self.headers,
        )


@pytest.fixture
def review_spec(home: Path, bike_batches: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """Switch the test spec to policy review; later candidates need not beat the champion."""
    monkeypatch.setenv("RETRAINER_REVIEW_POKE_S", "0.5")

    def apply(timeout_hours: float = 1.0) -> None:
        path = home / "specs" / "bike_sharing.yaml"
        spec = yaml.safe_load(path.read_text())
        spec["approval"] = {"policy": "review", "timeout_hours": timeout_hours}
        spec["gate"]["champion_margin"] = -1.0
        path.write_text(yaml.safe_dump(spec))

    apply()
    return apply


@pytest.fixture
def ui(dags: dict[str, Any]) -> AirflowUI:
    return AirflowUI()


class Reviewer(threading.Thread):
    """Answers in the background once the run asks; records what happened."""

    def __init__(self, act: Callable[[], bool], timeout: float = 240.0) -> None:
        super().__init__(daemon=True)
        self.act, self.timeout, self.error, self.done = act, timeout, None, False

    def run(self) -> None:
        try:
            wait_until(self.act, self.timeout, interval_s=0.5, what="the run asking for a review")
            self.done = True
        except Exception as exc:  # reported by the test
            self.error = exc


@pytest.fixture
def registry() -> Iterator[tuple[Registry, Any]]:
    s = Settings.from_env()
    yield Registry(s), s.load_spec("bike_sharing")


def _pending_in_mlflow(registry: Registry, spec: Any, version: str) -> bool:
    try:
        return registry.versions.tags(spec, version).get("approval.status") == "pending"
    except Exception:  # not registered yet
        return False


def _ingest(pipe: Any, batches: dict[str, Path], periods: tuple[str, ...]) -> None:
    for period in periods:
        assert pipe.ingest("bike_sharing", period, batches[period]).state == "success"


def test_reviewer_answers_in_airflow(
    make_pipeline: Any, home: Path, bike_batches: dict[str, Path], review_spec: Any, ui: AirflowUI, registry: Any
) -> None:
    reg, spec = registry
    pipe = make_pipeline(2061)
    _ingest(pipe, bike_batches, ("2011-01", "2011-02", "2011-03"))

    seen: dict[str, Any] = {}

    def approve() -> bool:
        detail = ui.pending_review()
        if detail is None:
            return False
        seen["detail"] = detail
        r = ui.answer(detail, "Approve")
        assert r.status_code == 200, r.text
        return True

    reviewer = Reviewer(approve)
    reviewer.start()
    run = pipe.retrain("bike_sharing", "latest")
    reviewer.join(5)
    assert reviewer.error is None and reviewer.done, reviewer.error
    assert run.state == "success", run.states
    # the request showed the evidence and where to answer
    assert seen["detail"]["subject"] == "Promote bike_demand v1 to production?"
    body = seen["detail"]["body"]
    assert "rmse" in body and "Evaluation report" in body and "approval" in body and "naive baseline" in body
    assert reg.versions.alias(spec, CHAMPION) == "1"
    tags = reg.versions.tags(spec, "1")
    assert tags["approval.decision"] == "approved" and tags["approval.via"] == "airflow"
    assert tags["approval.reviewer"] == "admin" and tags["approval.at"]
    assert tags["promotion.decided_by"] == "review:airflow:admin"
    assert modelstore.read_config(home / "model-store")["bike_demand"].labels == {"stable": 1}
    assert run.values["review"]["approved"] is True

    # v2: rejected in Airflow -> nothing deployed, the candidate says why, v1 keeps serving
    _ingest(pipe, bike_batches, ("2011-04",))

    def reject() -> bool:
        detail = ui.pending_review()
        if detail is None:
            return False
        seen["detail"] = detail
        return bool(ui.answer(detail, "Reject").status_code == 200)

    reviewer = Reviewer(reject)
    reviewer.start()
    run = pipe.retrain("bike_sharing", "latest")
    reviewer.join(5)
    assert reviewer.error is None and reviewer.done, reviewer.error
    assert run.state == "success", run.states
    # the request was built from evaluate's own record: against a champion, every slice it
    # judged shows its change in the table, none "n/a"
    evaluation = Evaluation.from_json(run.values["evaluate"])
    judged = [s for s in evaluation.slices if s.champion is not None]
    body = seen["detail"]["body"]
    assert evaluation.champion_version == "1" and judged
    for s in judged:
        assert f"| {s.feature}={s.value} | {s.rows} |" in body and worse_by(s.regression, 1) in body, s
    assert "n/a" not in body
    assert {t: run.states[t] for t in ("promote", "deploy", "verify")} == dict.fromkeys(
        ("promote", "deploy", "verify"), "skipped"
    )
    assert reg.versions.alias(spec, CHAMPION) == "1" and reg.versions.alias(spec, CHALLENGER) is None
    tags = reg.versions.tags(spec, "2")
    assert tags["approval.decision"] == "rejected" and tags["promotion.decision"] == "rejected"
    assert tags["promotion.reason"] == "review: rejected by admin in airflow"
    assert not (home / "model-store" / "bike_demand" / "2").exists()
    assert modelstore.read_config(home / "model-store")["bike_demand"].labels == {"stable": 1}


def test_reviewer_answers_in_mlflow_first_answer_wins(
    make_pipeline: Any, home: Path, bike_batches: dict[str, Path], review_spec: Any, ui: AirflowUI, registry: Any
) -> None:
    reg, spec = registry
    pipe = make_pipeline(2062)
    _ingest(pipe, bike_batches, ("2011-01", "2011-02", "2011-03"))

    def approve_in_mlflow() -> bool:
        if not _pending_in_mlflow(reg, spec, "1"):
            return False
        reg.versions.tag(spec, "1", {"approval.reviewer": "alice", "approval": "Approved"})
        return True

    reviewer = Reviewer(approve_in_mlflow)
    reviewer.start()
    run = pipe.retrain("bike_sharing", "latest")
    reviewer.join(5)
    assert reviewer.error is None and reviewer.done, reviewer.error
    assert run.state == "success", run.states
    assert reg.versions.alias(spec, CHAMPION) == "1"
    tags = reg.versions.tags(spec, "1")
    assert (tags["approval.decision"], tags["approval.via"], tags["approval.reviewer"]) == (
        "approved",
        "mlflow",
        "alice",
    )
    assert tags["deploy.label"] == "stable"

    # the Airflow request was answered by the MLflow answer: a late click there changes nothing
    r = ui.client.get(
        "/api/v2/dags/retrain_model/dagRuns/~/hitlDetails", params={"task_id": "review"}, headers=ui.headers
    )
    (detail,) = [d for d in r.json()["hitl_details"] if d["task_instance"]["dag_run_id"] == run.run_id]
    assert detail["response_received"] and detail["chosen_options"] == ["Approve"]
    late = ui.answer(detail, "Reject")
    assert late.status_code == 409, late.text
    assert reg.versions.tags(spec, "1")["approval.decision"] == "approved"

    # v2: rejected in MLflow
    _ingest(pipe, bike_batches, ("2011-04",))

    def reject_in_mlflow() -> bool:
        if not _pending_in_mlflow(reg, spec, "2"):
            return False
        reg.versions.tag(spec, "2", {"approval": "rejected", "approval.reviewer": "bob"})
        return True

    reviewer = Reviewer(reject_in_mlflow)
    reviewer.start()
    run = pipe.retrain("bike_sharing", "latest")
    reviewer.join(5)
    assert reviewer.error is None and reviewer.done, reviewer.error
    assert run.state == "success" and run.states["deploy"] == "skipped", run.states
    assert reg.versions.alias(spec, CHAMPION) == "1"
    tags = reg.versions.tags(spec, "2")
    assert (tags["approval.decision"], tags["approval.via"], tags["approval.reviewer"]) == ("rejected", "mlflow", "bob")
    assert tags["promotion.reason"] == "review: rejected by bob in mlflow"


def test_no_answer_before_the_deadline_rejects(
    make_pipeline: Any, home: Path, bike_batches: dict[str, Path], review_spec: Any, registry: Any
) -> None:
    reg, spec = registry
    review_spec(timeout_hours=3 / 3600)  # three seconds
    pipe = make_pipeline(2063)
    _ingest(pipe, bike_batches, ("2011-01", "2011-02", "2011-03"))
    run = pipe.retrain("bike_sharing", "latest")
    assert run.state == "success" and run.states["promote"] == "skipped", run.states
    assert reg.versions.alias(spec, CHAMPION) is None
    tags = reg.versions.tags(spec, "1")
    assert (tags["approval.decision"], tags["approval.via"], tags["approval.reviewer"]) == (
        "rejected",
        "timeout",
        "nobody",
    )
    assert tags["promotion.reason"].startswith("review: no answer by the deadline")
    assert not (home / "model-store" / "bike_demand").exists()
