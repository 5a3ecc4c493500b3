"""Shared set-up of the end-to-end tests: the DAGs from Airflow's loader, a driver that runs
them at their own logical dates, small bike sharing batches, and the stacks of real components
(``airflow_stack``, ``celery_stack``: module fixtures over ``retrainer_dev.stacks``)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from retrainer.data.demo_data import corrupt_copy, load_bike_sharing, split_periods, write_batch
from retrainer.settings import Settings
from retrainer_dev.localenv import setup_airflow
from retrainer_dev.runner import RunOutcome, load_dags, run_dag
from retrainer_dev.stacks.airflow import AirflowStack, make_stack
from retrainer_dev.stacks.specs import small_bike_spec

from .stacks import new_celery_stack, serve, stacks_parent

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def dags() -> dict[str, Any]:
    import os

    # each dag.test writes the DAGs as parsed under the test's settings (its specs folder, so the
    # dataset Params' choices); Airflow skips a write within 30 s of the last one, so a test that
    # follows one with another specs folder would have its triggered runs judged by that
    # folder's Params ("'bike_sharing' is not one of ['diabetes']")
    os.environ["AIRFLOW__CORE__MIN_SERIALIZED_DAG_UPDATE_INTERVAL"] = "0"
    setup_airflow()
    return load_dags()


@pytest.fixture(scope="module")
def api(dags: dict[str, Any]) -> Any:
    """Airflow's REST API in process (what the UI and `airflow dags trigger` call), as admin,
    over the session's metadata DB with the DAGs serialized as the dag-processor would."""
    import json
    import os
    import subprocess
    import sys

    from airflow.api_fastapi.app import create_app
    from fastapi.testclient import TestClient

    subprocess.run([sys.executable, "-m", "airflow", "dags", "reserialize"], check=True, capture_output=True)
    client = TestClient(create_app(apps="core"))
    passwords = json.loads(Path(os.environ["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"]).read_text())
    token = client.post("/auth/token", json={"username": "admin", "password": passwords["admin"]})
    client.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
    return client


@pytest.fixture(autouse=True)
def _runs_of_one_test_only(request: pytest.FixtureRequest) -> Any:
    """The tests share one metadata DB and run DAGs by hand: a run one test left (a retraining
    it triggered, under a run id named by dataset and data version) would count as in flight,
    or as there already, in the next. After each test that ran DAGs its runs are deleted, as
    ``dag.test`` deletes a run it replaces."""
    yield
    if "dags" not in request.fixturenames:
        return
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        for run in session.scalars(select(DagRun)):
            session.delete(run)


class Pipeline:
    """Drives the two DAGs for one test, each run at its own logical date."""

    def __init__(self, dags: dict[str, Any], home: Path, year: int) -> None:
        self.dags = dags
        self.log = home / "airflow-runs.log"
        self.clock = datetime(year, 1, 1, tzinfo=UTC)

    def _next(self) -> datetime:
        self.clock += timedelta(days=1)
        return self.clock

    def ingest(self, dataset: str, period: str, batch: Path, at: datetime | None = None) -> RunOutcome:
        conf = {"dataset": dataset, "period": period, "batch": str(batch)}
        return run_dag(self.dags["ingest_batch"], at or self._next(), conf, self.log)

    def run(self, dag_id: str, conf: dict[str, Any] | None = None, at: datetime | None = None) -> RunOutcome:
        return run_dag(self.dags[dag_id], at or self._next(), conf or {}, self.log)

    def retrain(self, dataset: str, data_version: str, at: datetime | None = None, **extra: Any) -> RunOutcome:
        conf = {"dataset": dataset, "data_version": data_version, "reason": "test", **extra}
        return run_dag(self.dags["retrain_model"], at or self._next(), conf, self.log)


@pytest.fixture
def bike_batches(home: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    small_bike_spec(home / "specs")
    monkeypatch.setenv("RETRAINER_SPECS_DIR", str(home / "specs"))
    spec = Settings.from_env().load_spec("bike_sharing")
    parts = split_periods(load_bike_sharing(), spec)
    landing = home / "landing"
    out = {p: write_batch(parts[p], spec, landing / f"{p}.csv") for p in ("2011-01", "2011-02", "2011-03", "2011-04")}
    out["2011-03-bad"] = write_batch(corrupt_copy(parts["2011-03"], spec), spec, landing / "2011-03.redelivery.csv")
    return out


@pytest.fixture
def make_pipeline(dags: dict[str, Any], home: Path) -> Any:
    """``make_pipeline(year)``: a Pipeline whose runs are dated in ``year`` (unique per test)."""
    return lambda year: Pipeline(dags, home, year)


@pytest.fixture(scope="module")
def airflow_stack(request: pytest.FixtureRequest) -> Iterator[AirflowStack]:
    """The Airflow components over a fresh metadata DB, for the tests of one module (stopped after
    them, so an idle scheduler does not slow the tests that follow)."""
    yield from serve(make_stack(stacks_parent()), request, "airflow stack")


@pytest.fixture(scope="module")
def celery_stack(request: pytest.FixtureRequest, moto_endpoint: str) -> Iterator[AirflowStack]:
    """The Celery stack (two workers, Redis, PostgreSQL, an MLflow server, S3) for one module's tests."""
    yield from serve(new_celery_stack(moto_endpoint), request, "celery stack")
