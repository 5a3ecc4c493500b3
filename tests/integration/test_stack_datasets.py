"""Two datasets in one deployment, under the real scheduler: data versions of both land
interleaved; each announcement is checked for its own dataset (a run that several
announcements start checks each dataset once, at its newest version), a run started by hand
that waits for one dataset's next version holds up nothing of the other's, and the monthly
retraining covers every spec."""

from __future__ import annotations

import functools
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from retrainer.data.demo_data import load_bike_sharing, split_periods, write_batch
from retrainer.data.validation import file_md5
from retrainer.data.versioning import DataRegistry
from retrainer_dev.stacks.airflow import AirflowStack, make_stack
from retrainer_dev.stacks.airflow_api import AirflowAPI
from retrainer_dev.waiting import wait_until

from .stacks import serve, stacks_parent

pytestmark = [pytest.mark.integration, pytest.mark.scheduler, pytest.mark.timeout(1200)]

MONITOR, RETRAIN = "monitor_drift", "retrain_model"
OTHER = "bike_copy"  # a second dataset: the bike data under another name and model


def _second_spec(specs: Path) -> None:
    spec = yaml.safe_load((specs / "bike_sharing.yaml").read_text())
    spec.update(name=OTHER, model_name="bike_copy_demand")
    (specs / f"{OTHER}.yaml").write_text(yaml.safe_dump(spec))


@pytest.fixture(scope="module", name="airflow_stack")
def two_dataset_stack(request: pytest.FixtureRequest) -> Iterator[AirflowStack]:
    """The Airflow components over a fresh metadata DB, with two dataset specs from the start."""
    stack = make_stack(stacks_parent())
    _second_spec(stack.home / "specs")
    yield from serve(stack, request, "airflow stack")


def _runs(api: AirflowAPI, dag_id: str) -> list[dict[str, Any]]:
    return list(api.request("GET", f"/api/v2/dags/{dag_id}/dagRuns", params={"limit": 1000})["dag_runs"])


def _datasets_offered(api: AirflowAPI) -> list[str]:
    params = api.request("GET", f"/api/v2/dags/{RETRAIN}/details")["params"]
    return list(params["dataset"]["schema"].get("enum") or [])


def _announce(api: AirflowAPI, asset_id: int, dataset: str, version: str, period: str) -> None:
    extra = {"dataset": dataset, "data_version": version, "period": period}
    api.request("POST", "/api/v2/assets/events", json={"asset_id": asset_id, "extra": extra})


def _checks(api: AirflowAPI, run_id: str) -> list[tuple[str, str, str]]:
    """(dataset, data version, state) of each mapped wait_for_drift of a monitor_drift run."""
    path = f"/api/v2/dags/{MONITOR}/dagRuns/{run_id}/taskInstances/wait_for_drift/listMapped"
    out = []
    for ti in api.request("GET", path, params={"limit": 100})["task_instances"]:
        fields = ti.get("rendered_fields") or {}
        out.append((str(fields.get("dataset")), str(fields.get("data_version")), str(ti["state"])))
    return sorted(out)


def _monitor_runs(stack: AirflowStack) -> str:
    """What a wait that timed out shows: each monitor_drift run's state and checks, the components' logs."""
    api = stack.client
    runs = {r["dag_run_id"]: (r["state"], _checks(api, r["dag_run_id"])) for r in _runs(api, MONITOR)}
    return f"monitor_drift runs: {runs}\n{stack.log_tails()}"


def test_two_datasets_landing_interleaved_are_checked_and_retrained_on_their_own(airflow_stack: AirflowStack) -> None:
    stack, api = airflow_stack, airflow_stack.client
    settings = stack.settings
    t0 = time.monotonic()

    def phase(what: str) -> None:
        print(f"  {time.monotonic() - t0:6.1f} s  {what}")

    bike = settings.load_spec("bike_sharing")
    other = settings.load_spec(OTHER)
    parts = split_periods(load_bike_sharing(), bike)
    registry = DataRegistry(settings)
    shown = functools.partial(_monitor_runs, stack)  # what a wait that times out shows
    api.wait_for_dag(MONITOR)
    api.wait_for_dag(RETRAIN)
    assert OTHER in _datasets_offered(api)  # the Params offer every spec
    (asset,) = [
        a
        for a in api.request("GET", "/api/v2/assets", params={"limit": 100})["assets"]
        if a["name"] == "retrainer_data_versions"
    ]

    # a run started by hand for bike_sharing: no champion yet, so its sensor waits (in the
    # triggerer) for bike_sharing's next data version
    api.unpause(MONITOR)
    waiting = api.trigger(MONITOR, {"dataset": "bike_sharing"}, datetime.now(UTC), run_id="manual__waits_for_bike")
    first = write_batch(parts["2011-01"], bike, Path(settings.landing) / "bike_sharing" / "2011-01.csv")
    registry.add_batch(bike, "2011-01", first, file_md5(first))
    wait_until(
        lambda: ("bike_sharing", "latest", "deferred") in _checks(api, waiting),
        300,
        interval_s=2,
        what="the hand-started check waiting",
        details=shown,
    )
    phase("the hand-started check waiting")

    # both datasets land interleaved, each version announced as ingest_batch announces it.
    # Each announcement is awaited: Airflow 3.3 finds a run's events by a time window, and an
    # announcement that arrives while the scheduler creates a run can wait for the next one
    # (apache/airflow#56050, #70972; the daily run checks every dataset meanwhile). A run that
    # several announcements start checks each dataset once, at its newest version: a unit test
    checked: set[tuple[str, str]] = set()
    for spec, period in ((other, "2011-02"), (bike, "2011-02"), (other, "2011-03")):
        path = write_batch(parts[period], spec, Path(settings.landing) / spec.name / f"{period}.csv")
        version = registry.add_batch(spec, period, path, file_md5(path)).version.label
        _announce(api, asset["id"], spec.name, version, period)

        def announced_runs(want: tuple[str, str] = (spec.name, version)) -> list[dict[str, Any]] | None:
            runs = [r for r in _runs(api, MONITOR) if r["run_type"] == "asset_triggered"]
            done = [r for r in runs if r["state"] in ("success", "failed")]
            found = {(d, v) for r in done for d, v, _ in _checks(api, r["dag_run_id"])}
            return runs if want in found and len(done) == len(runs) else None

        runs = wait_until(announced_runs, 300, interval_s=2, what=f"{spec.name} {version} checked", details=shown)
        phase(f"{spec.name} {version} checked")
        checked.add((spec.name, version))
    assert checked == {(OTHER, "v0001"), ("bike_sharing", "v0002"), (OTHER, "v0002")}
    for r in runs:
        checks = _checks(api, r["dag_run_id"])
        assert r["state"] == "success", api.describe(MONITOR, r["dag_run_id"])
        # each dataset once per run, no champion yet: nothing to retrain, and no waiting
        assert len({d for d, _, _ in checks}) == len(checks) and all(s == "skipped" for _, _, s in checks), checks
    # the hand-started run still waits for bike_sharing and held up none of them
    assert api.run(MONITOR, waiting)["state"] == "running"
    again = ("bike_sharing", "latest", "deferred")
    wait_until(
        lambda: again in _checks(api, waiting),
        300,
        interval_s=2,
        what="the hand-started check waiting again",
        details=shown,
    )
    phase("the hand-started check still waiting")

    # the monthly retraining covers every spec: the scheduled run plans bike_sharing and starts
    # a run of its own for the other dataset (two periods each: too few to train, both skip)
    api.unpause(RETRAIN)
    scheduled = wait_until(
        lambda: [r for r in _runs(api, RETRAIN) if r["run_type"] == "scheduled"],
        300,
        interval_s=2,
        what="the scheduled retraining",
        details=shown,
    )[0]
    api.wait_for_run(RETRAIN, scheduled["dag_run_id"], timeout=900)
    phase("the scheduled retraining done")
    started = f"{OTHER}__{scheduled['dag_run_id']}"
    api.wait_for_run(RETRAIN, started, timeout=600)
    phase(f"{started} done")
    conf = api.run(RETRAIN, started)["conf"]
    assert conf["dataset"] == OTHER and conf["reason"].startswith("scheduled retraining")
    assert {r["dag_run_id"] for r in _runs(api, RETRAIN)} == {scheduled["dag_run_id"], started}
    api.request("PATCH", f"/api/v2/dags/{MONITOR}/dagRuns/{waiting}", json={"state": "failed"})
