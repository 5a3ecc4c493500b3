"""Load held, and bursts of drift events, on the distributed stack (two Celery workers, PostgreSQL,
Redis, an MLflow server on PostgreSQL, S3).

**Soak**: daily batches of the bike data delivered to the S3 landing prefix two at a time
(100 ms apart) every few seconds, faster than two workers ingest them, so a queue builds;
after every so many deliveries a retraining is asked for through the REST API (as from the
form), on the newest data version there is. While it runs, the memory of every component's
process tree (the workers with their task processes) is sampled each second; afterwards each
task instance's queue latency (queued to started) is read from the REST API. Nothing may be
lost: every batch one data version, numbered in order, each announced once; every retraining
one MLflow run and at most one model version. ``RETRAINER_SOAK_INGESTS`` and
``RETRAINER_SOAK_RETRAININGS`` set its size (``make soak``: 100 and 10).

**Bursts**: two data versions announced 100 ms apart (asset events posted through the REST API,
as a producer outside Airflow announces data), ``RETRAINER_BURSTS`` times (50). Airflow starts
one or two ``monitor_drift`` runs for a burst, as its scheduler loop happens to fall; each
measures real drift (summer days against a champion that learned the winter) and decides.
Then ``RETRAINER_SPLIT_BURSTS`` (10) bursts whose second announcement is posted as soon as
the first has started a run: two runs that decide at once. Each burst must start exactly one
retraining. ``retrain_model`` is paused meanwhile, so the
retrainings a burst starts stay queued and are counted, not trained; after each burst the
test deletes them, so every burst meets the same state (no retraining in flight).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
import pytest
import yaml

from retrainer import schema
from retrainer.data.demo_data import load_bike_sharing, split_periods, write_batch
from retrainer.data.versioning import DataRegistry
from retrainer.registry.client import Registry
from retrainer.spec.dataset import DatasetSpec
from retrainer_dev.stacks.airflow import AirflowStack
from retrainer_dev.stacks.airflow_api import AirflowAPI
from retrainer_dev.waiting import WaitTimeout, wait_until
from tests.helpers import REPO
from tests.reliability.conftest import record

from .stacks import new_celery_stack, serve
from .test_celery_e2e import _s3

pytestmark = [
    pytest.mark.integration,
    pytest.mark.celery,
    pytest.mark.s3,
    pytest.mark.reliability,
    pytest.mark.soak,
    pytest.mark.timeout(7200),
]

DATASET = "bike_daily"
INGESTS = int(os.environ.get("RETRAINER_SOAK_INGESTS", "30"))
RETRAININGS = int(os.environ.get("RETRAINER_SOAK_RETRAININGS", "2"))
BURSTS = int(os.environ.get("RETRAINER_BURSTS", "50"))
SPLIT_BURSTS = int(os.environ.get("RETRAINER_SPLIT_BURSTS", "10"))
DELIVERY_EVERY_S = 8.0  # two batches arrive together this often
#: two summer days for the bursts: far from the winter days the soak's champion learned
SUMMER = ("2011-07-14", "2011-07-15")


def _daily_spec(specs: Path) -> DatasetSpec:
    """The bike data a day at a time; drift decides on drift alone (no drop of score needed)."""
    spec = yaml.safe_load((REPO / "include" / "specs" / "bike_sharing.yaml").read_text())
    spec.update(name=DATASET, model_name="bike_daily_demand", frequency="daily")
    spec["rows"] = {"min": 18, "max": 24}  # a day of hours, a few may be missing
    spec["coverage"] = {"step": "1h", "min_share": 0.75}  # as rows.min: 18 of a day's 24 hours
    for col in ("weekday", "weathersit"):
        spec["features"][col]["max_null_rate"] = 0.25
    spec["training"].update(window_periods=7, holdout_periods=2, epochs=5)
    spec["gate"].update(baseline_margin=0.05, min_slice_rows=12)
    spec["drift"].update(require_performance_drop=False, cooldown_hours=0)
    (specs / f"{DATASET}.yaml").write_text(yaml.safe_dump(spec))
    return DatasetSpec.load(specs / f"{DATASET}.yaml")


@pytest.fixture(scope="module", name="soak_stack")
def soak_stack_fixture(request: pytest.FixtureRequest, moto_endpoint: str) -> Iterator[AirflowStack]:
    """The Celery stack with a daily spec beside the monthly one, and one retry per task (as in
    production)."""
    stack = new_celery_stack(moto_endpoint)
    _daily_spec(Path(stack.env["RETRAINER_SPECS_DIR"]))
    stack.env.update({"RETRAINER_TASK_RETRIES": "1", "RETRAINER_RETRY_DELAY_S": "5"})
    yield from serve(stack, request, "soak stack")


# ----------------------------------------------------------------------------- measuring


class MemorySampler(threading.Thread):
    """Each second, the RSS of every component's process tree (a worker with its task
    processes) and of the component's own process: the peak of the tree, and the component's
    own size first and last (growth over the soak)."""

    def __init__(self, stack: AirflowStack) -> None:
        super().__init__(daemon=True)
        self.stack = stack
        self.peak: dict[str, int] = {}
        self.first: dict[str, int] = {}
        self.last: dict[str, int] = {}
        self.done = threading.Event()

    def sample(self) -> None:
        for name in list(self.stack.procs):
            try:
                procs = self.stack.processes(name)
                tree = sum(p.memory_info().rss for p in procs)
                own = procs[0].memory_info().rss
            except psutil.Error:
                continue
            self.peak[name] = max(self.peak.get(name, 0), tree)
            self.first.setdefault(name, own)
            self.last[name] = own

    def run(self) -> None:
        while not self.done.wait(1.0):
            self.sample()

    def table(self) -> str:
        mb = 1024 * 1024
        return "; ".join(
            f"{n} {self.peak[n] / mb:.0f} MB peak ({self.first[n] / mb:.0f} -> {self.last[n] / mb:.0f} MB own)"
            for n in sorted(self.peak)
        )


def _when(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


def _instances(api: AirflowAPI, dag_id: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    while True:
        page = api.request(
            "GET", f"/api/v2/dags/{dag_id}/dagRuns/~/taskInstances", params={"limit": 100, "offset": len(out)}
        )["task_instances"]
        out += page
        if len(page) < 100:
            return out


def _all_runs(api: AirflowAPI, dag_id: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    while True:
        page = api.request(
            "GET", f"/api/v2/dags/{dag_id}/dagRuns", params={"limit": 100, "offset": len(out), "order_by": "run_after"}
        )["dag_runs"]
        out += page
        if len(page) < 100:
            return out


def _latency_s(instances: list[dict[str, Any]], since: str) -> list[float]:
    """How long task instances waited to start: from ``since`` (``scheduled_when``: ready to
    run, waiting for a slot; ``queued_when``: handed to the executor) to ``start_date``."""
    out = []
    for ti in instances:
        ready, started = _when(ti.get(since)), _when(ti.get("start_date"))
        if ready and started:
            out.append(max(0.0, (started - ready).total_seconds()))
    return out


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# ----------------------------------------------------------------------------- the soak


def test_a_soak_of_ingests_and_retrainings_on_two_workers(soak_stack: AirflowStack, tmp_path: Path) -> None:
    stack, api = soak_stack, soak_stack.client
    settings = stack.settings
    spec = settings.load_spec(DATASET)
    days = split_periods(load_bike_sharing(), spec)
    whole = [d for d in sorted(days) if len(days[d]) >= 18 and d not in SUMMER]  # a day's rows, as the spec says
    delivered = whole[:INGESTS]
    assert len(delivered) == INGESTS
    for dag_id in ("watch_landing", "ingest_batch", "retrain_model"):
        api.unpause(dag_id)
    bucket, _, prefix = settings.landing.removeprefix("s3://").partition("/")
    s3 = _s3(stack)
    every = max(1, INGESTS // RETRAININGS) if RETRAININGS else INGESTS + 1
    memory = MemorySampler(stack)
    memory.start()
    started = time.monotonic()
    asked: list[tuple[str, str]] = []  # (run id, data version)
    try:
        for k in range(0, INGESTS, 2):
            for day in delivered[k : k + 2]:  # two at once, 100 ms apart
                path = write_batch(days[day], spec, tmp_path / f"{day}.csv")
                s3.upload_file(str(path), bucket, f"{prefix}/{DATASET}/{day}.csv")
                time.sleep(0.1)
            if (k + 2) // every > len(asked) and len(asked) < RETRAININGS:
                asked.append(_ask_retraining(api, settings, spec, asked))
            api.watchdog()
            time.sleep(DELIVERY_EVERY_S)
        while len(asked) < RETRAININGS:
            asked.append(_ask_retraining(api, settings, spec, asked))
        ingests = _until_settled(api, "ingest_batch", INGESTS, timeout=600 + 40 * INGESTS)
        retrains = [api.wait_for_run("retrain_model", r, expect=None, timeout=1800) for r, _ in asked]
    finally:
        memory.done.set()
        memory.join(timeout=5)
    took = time.monotonic() - started
    _judge_soak(stack, spec, delivered, ingests, [r for r, _ in asked], retrains, memory, took)


def _ask_retraining(api: AirflowAPI, settings: Any, spec: DatasetSpec, asked: list[tuple[str, str]]) -> tuple[str, str]:
    """A retraining of the newest data version there is (at least the window and holdout, and
    newer than the last one asked for), asked for through the REST API as from the form."""
    need = spec.training.window_periods + spec.training.holdout_periods
    last = asked[-1][1] if asked else ""

    def newer() -> list[Any]:
        return [v for v in DataRegistry(settings).versions(DATASET) if len(v.periods) >= need and v.label > last]

    version = api.until(f"a data version of {need}+ periods after {last or 'none'}", newer, timeout=1200)[-1]
    run_id = f"soak__{len(asked) + 1}"
    api.trigger("retrain_model", {"dataset": DATASET, "data_version": version.label}, datetime.now(UTC), run_id)
    return run_id, version.label


def _until_settled(api: AirflowAPI, dag_id: str, count: int, timeout: float) -> list[dict[str, Any]]:
    def done() -> list[dict[str, Any]] | None:
        runs = _all_runs(api, dag_id)
        return runs if len(runs) >= count and all(r["state"] in ("success", "failed") for r in runs) else None

    return list(api.until(f"{count} finished runs of {dag_id}", done, timeout=timeout))


def _judge_soak(
    stack: AirflowStack,
    spec: DatasetSpec,
    delivered: list[str],
    ingests: list[dict[str, Any]],
    asked: list[str],
    retrains: list[str],
    memory: MemorySampler,
    took: float,
) -> None:
    api, settings = stack.client, stack.settings
    versions = DataRegistry(settings).versions(DATASET)
    ordered = [v.label for v in versions] == [f"v{k:04d}" for k in range(1, len(versions) + 1)]
    ordered = ordered and all(len(v.periods) == k for k, v in enumerate(versions, start=1))
    kept = bool(versions) and set(versions[-1].periods) == set(delivered)
    events = [e for e in api.asset_events(source_dag_id="ingest_batch") if (e.get("extra") or {}).get("dataset")]
    ingested = sum(r["state"] == "success" for r in ingests)
    registry = Registry(settings)
    runs_per, versions_per = [], []
    for run_id in asked:
        key = schema.tag_filter({schema.AIRFLOW_RUN_ID: run_id})
        found = registry.client.search_runs([registry.runs.experiment_id(spec)], filter_string=key)
        runs_per.append(len(found))
        made = {r.info.run_id for r in found}
        models = registry.client.search_model_versions(f"name = '{spec.model_name}'")
        versions_per.append(sum(m.run_id in made for m in models))
    retrained = sum(s == "success" for s in retrains)
    # the soak's runs (the run retrain_model's schedule made when it was unpaused, before any
    # data, fails saying there is none: not the soak's)
    instances = [
        ti
        for d in ("watch_landing", "ingest_batch", "retrain_model")
        for ti in _instances(api, d)
        if d != "retrain_model" or ti["dag_run_id"] in asked
    ]
    ended = [ti for ti in instances if ti["state"] in ("success", "skipped", "failed", "upstream_failed")]
    ok_tis = sum(ti["state"] in ("success", "skipped") for ti in ended)
    retried = sum(int(ti.get("try_number") or 1) > 1 for ti in instances)
    waited, queued = _latency_s(instances, "scheduled_when"), _latency_s(instances, "queued_when")
    nothing_lost = (
        ingested == len(delivered)
        and ordered
        and kept
        and len(events) == len(delivered)
        and runs_per == [1] * len(asked)
        and all(n <= 1 for n in versions_per)
    )
    how = (
        f"{len(delivered)} daily batches, two every {DELIVERY_EVERY_S:.0f} s, and {len(asked)} retraining(s) on two "
        f"workers in {took / 60:.1f} min: {len(versions)} data versions in order, {len(events)} announcements, "
        f"{retrained} of {len(asked)} retrainings succeeded (one MLflow run each, model versions {versions_per}); "
        f"task instances {ok_tis}/{len(ended)} succeeded or skipped ({retried} retried); from ready to started p50 "
        f"{_pct(waited, 0.5):.1f} s, p95 {_pct(waited, 0.95):.1f} s, max {max(waited, default=0):.1f} s (from "
        f"queued: p95 {_pct(queued, 0.95):.1f} s); "
        f"memory: {memory.table()}"
    )
    lost = len(delivered) - min(ingested, len(versions)) + sum(abs(n - 1) for n in runs_per)
    record(
        f"a soak: {len(delivered)} ingests and {len(asked)} retraining(s) on two Celery workers",
        len(delivered) + len(asked),
        len(delivered) + len(asked) - lost if nothing_lost else min(ingested, len(versions)) + retrained,
        lost,
        how,
    )
    print("\n" + how)
    assert ingested == len(delivered), [(r["dag_run_id"], r["state"]) for r in ingests if r["state"] != "success"]
    failed = [r for r, state in zip(asked, retrains, strict=True) if state != "success"]
    assert retrained == len(asked), [api.describe("retrain_model", r) for r in failed]
    assert nothing_lost, ([v.label for v in versions], len(events), runs_per, versions_per)
    assert ok_tis == len(ended), [
        (t["dag_id"], t["dag_run_id"], t["task_id"], t["state"])
        for t in ended
        if t["state"] not in ("success", "skipped")
    ]


# ----------------------------------------------------------------------------- the bursts


def _post_announcement(api: AirflowAPI, asset_id: int, version: Any) -> None:
    extra = {"dataset": DATASET, "data_version": version.label, "period": version.periods[-1]}
    api.request("POST", "/api/v2/assets/events", json={"asset_id": asset_id, "extra": extra})


def _drop_queued(api: AirflowAPI) -> None:
    resp = api.session.delete(f"{api.base_url}/api/v2/dags/monitor_drift/assets/queuedEvents", timeout=api.timeout)
    assert resp.status_code in (204, 404), resp.text  # 404: none queued


def _unpause_without_the_scheduled_run(api: AirflowAPI) -> None:
    """Unpause monitor_drift; the run its daily schedule makes at once (catchup is off: the
    latest interval) is not a burst's, so it is marked failed, as its operator would."""
    api.unpause("monitor_drift")

    def made() -> list[dict[str, Any]]:
        return [r for r in _all_runs(api, "monitor_drift") if r["run_type"] == "scheduled"]

    scheduled = api.until("monitor_drift's scheduled run", made, timeout=120)
    for r in scheduled:
        api.request("PATCH", f"/api/v2/dags/monitor_drift/dagRuns/{r['dag_run_id']}", json={"state": "failed"})

    def stopped() -> bool:
        states = [ti["state"] for ti in _instances(api, "monitor_drift")]
        return all(s in ("success", "failed", "skipped", "upstream_failed", "removed", None) for s in states)

    api.until("the scheduled run's tasks stopped", stopped, timeout=300)


def _drift_runs(api: AirflowAPI) -> list[dict[str, Any]]:
    return [r for r in _all_runs(api, "retrain_model") if r["dag_run_id"].startswith("drift__")]


def _monitor_settled(api: AirflowAPI, seen: set[str]) -> list[dict[str, Any]] | None:
    """The monitor_drift runs the announcements started, but those ``seen`` before, once at
    least one exists, all are final and no announcement waits for a run."""
    runs = [r for r in _all_runs(api, "monitor_drift") if r["run_type"] == "asset_triggered"]
    runs = [r for r in runs if r["dag_run_id"] not in seen]
    waiting = api.request("GET", "/api/v2/dags/monitor_drift/assets/queuedEvents")["queued_events"]
    if runs and not waiting and all(r["state"] in ("success", "failed") for r in runs):
        return runs
    return None


def _new_runs(api: AirflowAPI, seen: frozenset[str]) -> list[dict[str, Any]]:
    runs = [r for r in _all_runs(api, "monitor_drift") if r["run_type"] == "asset_triggered"]
    return [r for r in runs if r["dag_run_id"] not in seen]


def _burst(api: AirflowAPI, asset_id: int, pair: list[Any], seen: frozenset[str], split: bool) -> list[dict[str, Any]]:
    """Two announcements 100 ms apart (``split``: the second as soon as the first has started a
    run, so that two runs decide at once); the monitor_drift runs they started, once done."""
    _post_announcement(api, asset_id, pair[0])
    if split:
        with contextlib.suppress(WaitTimeout):  # no run within a minute: the second goes all the same
            wait_until(lambda: _new_runs(api, seen), 60, interval_s=0.05, what="a run of the first announcement")
    else:
        time.sleep(0.1)  # the burst's two announcements, 100 ms apart
    _post_announcement(api, asset_id, pair[1])
    _settled_runs(api, seen)
    # a second run the scheduler made late would come from a scheduling loop that starts after
    # the runs settled: once one has run, it would show now
    _scheduler_loop_since(api)
    return _settled_runs(api, seen)


def _settled_runs(api: AirflowAPI, seen: frozenset[str], timeout: float = 600) -> list[dict[str, Any]]:
    return api.until("the burst's monitor_drift runs done", lambda: _monitor_settled(api, set(seen)), timeout, 0.5)


def _scheduler_heartbeat(api: AirflowAPI) -> datetime | None:
    """The scheduler's latest heartbeat, as Airflow's health check reports it."""
    health = api.request("GET", "/api/v2/monitor/health")
    return _when((health.get("scheduler") or {}).get("latest_scheduler_heartbeat"))


def _scheduler_loop_since(api: AirflowAPI, timeout: float = 120) -> None:
    """Until a whole scheduling loop has run since now: its runs made from queued asset events,
    its heartbeat. The scheduler heartbeats after the scheduling part of a loop (at most every
    ``[scheduler] scheduler_heartbeat_sec``, 5 s): the loop after the first new heartbeat
    started after now, and the next heartbeat comes after its scheduling."""
    beats = [_scheduler_heartbeat(api)]

    def beat_again() -> datetime | None:
        beat = _scheduler_heartbeat(api)
        return beat if beat is not None and (beats[-1] is None or beat > beats[-1]) else None

    for what in ("a scheduler heartbeat", "the heartbeat after it"):
        beats.append(api.until(what, beat_again, timeout, 0.5))


def _decided_at_once(api: AirflowAPI, runs: list[dict[str, Any]]) -> bool:
    """Whether two runs' trigger_retrain were both ready before either had ended."""
    tis = [api.task_instances("monitor_drift", r["dag_run_id"]).get("trigger_retrain[0]") for r in runs]
    spans = [(_when(t.get("scheduled_when")), _when(t.get("end_date"))) for t in tis if t]
    if len(spans) < 2 or not all(a and b for a, b in spans):
        return False
    (a0, a1), (b0, b1) = spans[:2]
    return bool(a0 < b1 and b0 < a1)  # type: ignore[operator]


def _ready_for_bursts(stack: AirflowStack, tmp_path: Path) -> tuple[list[Any], int]:
    """Two summer days versioned (the two data versions every burst announces), retrain_model
    paused, monitor_drift unpaused with nothing queued: the pair and the asset's id."""
    api, settings = stack.client, stack.settings
    spec = settings.load_spec(DATASET)
    api.request("PATCH", "/api/v2/dags/retrain_model", json={"is_paused": True})  # count, do not train
    days = split_periods(load_bike_sharing(), spec)
    bucket, _, prefix = settings.landing.removeprefix("s3://").partition("/")
    for day in SUMMER:
        _s3(stack).upload_file(
            str(write_batch(days[day], spec, tmp_path / f"{day}.csv")), bucket, f"{prefix}/{DATASET}/{day}.csv"
        )
    api.until(
        "the summer days versioned",
        lambda: {p for v in DataRegistry(settings).versions(DATASET) for p in v.periods} >= set(SUMMER),
        timeout=900,
    )
    _until_settled(api, "ingest_batch", len(_all_runs(api, "ingest_batch")), timeout=600)
    # what ingest announced is not this test's: dropped, so the monitor starts with the bursts
    _drop_queued(api)
    _unpause_without_the_scheduled_run(api)
    _drop_queued(api)
    (asset,) = [
        a
        for a in api.request("GET", "/api/v2/assets", params={"limit": 100})["assets"]
        if a["name"] == "retrainer_data_versions"
    ]
    return DataRegistry(settings).versions(DATASET)[-2:], int(asset["id"])


def test_bursts_of_two_drift_events_start_one_retraining_each(soak_stack: AirflowStack, tmp_path: Path) -> None:
    stack, api = soak_stack, soak_stack.client
    spec = stack.settings.load_spec(DATASET)
    assert Registry(stack.settings).versions.alias(spec, "champion"), "needs the champion the soak above promotes"
    pair, asset_id = _ready_for_bursts(stack, tmp_path)
    per_burst: list[int] = []
    monitors: list[int] = []
    at_once = 0
    seen = {r["dag_run_id"] for r in _all_runs(api, "monitor_drift")}
    started = time.monotonic()
    for k in range(BURSTS + SPLIT_BURSTS):
        runs = _burst(api, asset_id, pair, frozenset(seen), split=k >= BURSTS)
        seen |= {r["dag_run_id"] for r in runs}
        monitors.append(len(runs))
        at_once += len(runs) > 1 and _decided_at_once(api, runs)
        started_runs = _drift_runs(api)
        per_burst.append(len(started_runs))
        for r in started_runs:  # as if it had been and gone: the next burst meets no retraining in flight
            api.request("DELETE", f"/api/v2/dags/retrain_model/dagRuns/{r['dag_run_id']}")
    took = time.monotonic() - started
    _record_bursts(per_burst, monitors, at_once, took)
    assert per_burst == [1] * (BURSTS + SPLIT_BURSTS), (per_burst, monitors)


def _record_bursts(per_burst: list[int], monitors: list[int], at_once: int, took: float) -> None:
    plain, split = per_burst[:BURSTS], per_burst[BURSTS:]
    counts = {n: per_burst.count(n) for n in sorted(set(per_burst))}
    record(
        f"{BURSTS} bursts of two drift events (data versions announced 100 ms apart), through the scheduler",
        BURSTS,
        plain.count(1),
        BURSTS - plain.count(1),
        f"{sum(monitors[:BURSTS])} monitor_drift runs (Airflow made two for {monitors[:BURSTS].count(2)} of them); "
        f"retrainings started per burst: {counts}; {took / len(per_burst):.1f} s per burst",
    )
    record(
        f"{SPLIT_BURSTS} bursts whose two announcements start two monitor_drift runs deciding at once",
        SPLIT_BURSTS,
        split.count(1),
        SPLIT_BURSTS - split.count(1),
        f"{sum(monitors[BURSTS:])} runs; in {at_once} bursts both runs' trigger_retrain were ready at the same "
        "time, one waited for the other (one instance at a time) and found the retraining in flight",
    )
