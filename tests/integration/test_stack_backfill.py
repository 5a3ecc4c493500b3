"""Backfill under the real scheduler: ``airflow backfill create --dag-id retrain_model ...``
retrains the models of past months from the data versions of their time, registers and
evaluates them as backfill runs, and never moves ``champion`` nor deploys."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from mlflow import MlflowClient

from retrainer.data.demo_data import load_bike_sharing, split_periods, write_batch
from retrainer.data.validation import file_md5
from retrainer.data.versioning import DataRegistry
from retrainer.registry.client import Registry
from retrainer.schema import CHAMPION
from retrainer_dev.stacks.airflow import AirflowStack
from retrainer_dev.stacks.airflow_api import AirflowAPI
from retrainer_dev.waiting import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.scheduler]

RETRAIN = "retrain_model"


def _backfills(api: AirflowAPI) -> list[dict[str, Any]]:
    return list(api.request("GET", "/api/v2/backfills", params={"dag_id": RETRAIN})["backfills"])


def _store_versions(store: Path) -> list[str]:
    folder = store / "bike_demand"
    return sorted(p.name for p in folder.iterdir() if p.name.isdigit()) if folder.is_dir() else []


def test_backfill_trains_past_months_on_their_own_data_and_never_promotes(airflow_stack: AirflowStack) -> None:
    stack, api = airflow_stack, airflow_stack.client
    settings = stack.settings
    spec = settings.load_spec("bike_sharing")
    # the data of 2011-01..06 in the registry, one version per month (the same bytes as
    # other tests land give the same versions)
    parts = split_periods(load_bike_sharing(), spec)
    registry = DataRegistry(settings)
    for period in ("2011-01", "2011-02", "2011-03", "2011-04", "2011-05", "2011-06"):
        path = write_batch(parts[period], spec, Path(settings.landing) / "bike_sharing" / f"{period}.csv")
        registry.add_batch(spec, period, path, file_md5(path))
    as_of = {p: registry.as_of("bike_sharing", p) for p in ("2011-05", "2011-06")}
    reg = Registry(settings)
    champion_before = reg.versions.alias(spec, CHAMPION)
    store_before = _store_versions(Path(settings.model_store))
    labels_before = (Path(settings.model_store) / "models.config").read_text() if store_before else ""

    # May and June 2011 (a backfill's dates are logical dates: the starts of the monthly
    # intervals). Queued runs of a paused DAG never start, backfills included: unpause it.
    # That also lets the scheduler start this month's scheduled run; a review it asks for is
    # rejected below, so it cannot move the champion either.
    api.wait_for_dag(RETRAIN)
    api.unpause(RETRAIN)
    stack.airflow("backfill", "create", "--dag-id", RETRAIN, "--from-date", "2011-05-01", "--to-date", "2011-06-01")
    seen: list[Any] = []

    def backfill_runs_done() -> list[dict[str, Any]] | None:
        every = api.request("GET", f"/api/v2/dags/{RETRAIN}/dagRuns", params={"limit": 100})["dag_runs"]
        for other in every:
            if other["run_type"] != "backfill" and other["state"] not in ("success", "failed"):
                api.answer_pending_hitl(RETRAIN, other["dag_run_id"], lambda detail: ["Reject"])
        seen[:] = [r for r in every if r["run_type"] == "backfill"]
        return list(seen) if len(seen) == 2 and all(r["state"] in ("success", "failed") for r in seen) else None

    runs = wait_until(
        backfill_runs_done,
        900,
        interval_s=3,
        what="the backfill runs done",
        details=lambda: f"backfill runs: {seen}\n{stack.log_tails()}",
    )
    for r in runs:
        api.wait_for_run(RETRAIN, r["dag_run_id"], expect="success", timeout=10)

    client = MlflowClient(settings.mlflow_tracking_uri)
    backfilled = client.search_model_versions("name = 'bike_demand' and tags.`retrainer.backfill` = 'true'")
    by_run = {mv.tags["airflow.run_id"]: mv for mv in backfilled}
    assert set(by_run) == {r["dag_run_id"] for r in runs}
    for r in runs:
        mv = by_run[r["dag_run_id"]]
        last = r["data_interval_start"][:7]  # the interval is that calendar month: 2011-05 or 2011-06
        # trained on the data version of its time, with the window ending at the interval's end
        assert mv.tags["data.version"] == as_of[last].label, (r["dag_run_id"], mv.tags)
        assert mv.tags["data.holdout_periods"] == last
        assert mv.tags["airflow.run_type"] == "backfill"
        assert mv.tags["promotion.decision"] == "not considered (backfill run)"
        assert mv.tags["gate.passed"] in ("true", "false") and mv.tags["evaluation.report"]
        states = api.task_states(RETRAIN, r["dag_run_id"])
        assert {t: states[t] for t in ("review", "promote", "deploy", "verify")} == dict.fromkeys(
            ("review", "promote", "deploy", "verify"), "skipped"
        ), states
        assert "challenger" not in (mv.aliases or [])
    assert reg.versions.alias(spec, CHAMPION) == champion_before
    assert _store_versions(Path(settings.model_store)) == store_before
    if store_before:
        assert (Path(settings.model_store) / "models.config").read_text() == labels_before

    # the same backfill again, once the first is complete, makes nothing new: the runs exist
    def first_complete() -> list[dict[str, Any]] | None:
        backfills = _backfills(api)
        return backfills if backfills and all(b["completed_at"] for b in backfills) else None

    first = wait_until(first_complete, 120, interval_s=2, what="the backfill marked complete")
    stack.airflow("backfill", "create", "--dag-id", RETRAIN, "--from-date", "2011-05-01", "--to-date", "2011-06-01")
    # the scheduler marks a backfill complete (it looks every 30 s) once none of its runs is
    # queued or running: the second one had its chance to run something, and whatever it
    # started has ended by then, so a run or model version it made would show below
    known = {b["id"] for b in first}
    wait_until(
        lambda: [b for b in _backfills(api) if b["id"] not in known and b["completed_at"]],
        120,
        interval_s=2,
        what="the second backfill marked complete by the scheduler",
        details=lambda: f"backfills: {_backfills(api)}\n{stack.log_tails()}",
    )
    again = api.request("GET", f"/api/v2/dags/{RETRAIN}/dagRuns", params={"limit": 100})["dag_runs"]
    assert len([r for r in again if r["run_type"] == "backfill"]) == 2
    assert len(client.search_model_versions("name = 'bike_demand' and tags.`retrainer.backfill` = 'true'")) == 2
