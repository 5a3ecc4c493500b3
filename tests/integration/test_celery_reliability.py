"""The distributed stack under a burst, a database fault and a lost host.

8 batches delivered at once to the S3 landing prefix, ingested by two Celery workers (hosts)
that share only S3, the data registry's git remote and the MLflow server, while every
connection to the Airflow metadata database (PostgreSQL) is cut three times: every batch
becomes one data version, numbered in order with none lost, announced once.

Then, on those versions, a retraining whose worker is killed mid-training (the Celery worker
and every process it started, SIGKILL): the scheduler finds the task without a heartbeat
and fails it for retry; the retry reuses the MLflow run and the run ends with one model
version, promoted and deployed. Tasks get one retry in this module, as in production (the
other stacks of the suite run without retries, so a failure shows at once)."""

from __future__ import annotations

import contextlib
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from retrainer import schema
from retrainer.data.demo_data import load_bike_sharing, split_periods, write_batch
from retrainer.data.versioning import DataRegistry
from retrainer.registry.client import Registry
from retrainer.schema import CHAMPION
from retrainer.serving import modelstore
from retrainer_dev.stacks.airflow import AirflowStack
from retrainer_dev.stacks.celery import WORKERS
from retrainer_dev.waiting import WaitTimeout, wait_until
from tests.reliability.conftest import record

from .stacks import new_celery_stack, serve
from .test_celery_e2e import _runs, _s3, _settled, _task_instances

pytestmark = [
    pytest.mark.integration,
    pytest.mark.celery,
    pytest.mark.s3,
    pytest.mark.reliability,
    pytest.mark.timeout(1800),
]

#: months of the bike data that pass the suite as delivered
MONTHS = ("2011-01", "2011-02", "2011-03", "2011-04", "2011-05", "2011-06", "2011-08", "2011-09")
CUTS = 3
HEARTBEAT_TIMEOUT_S = 30  # the scheduler fails a running task whose heartbeat is this old


@pytest.fixture(scope="module", name="celery_stack")
def celery_stack_fixture(request: pytest.FixtureRequest, moto_endpoint: str) -> Iterator[AirflowStack]:
    """The Celery stack with a retry per task, a short heartbeat timeout, and training that
    stops after its first epoch (once), so the test knows when to kill the host running it."""
    stack = new_celery_stack(moto_endpoint)
    stack.env.update(
        {
            "RETRAINER_TASK_RETRIES": "1",
            "RETRAINER_RETRY_DELAY_S": "5",
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": str(HEARTBEAT_TIMEOUT_S),
            "RETRAINER_FAULT": "train:epoch",
            "RETRAINER_FAULT_ACTION": "stall",
            "RETRAINER_FAULT_ONCE": str(stack.root / "training-stalled"),
        }
    )
    yield from serve(stack, request, "celery stack")


def _cut_connections(db_url: str) -> int:
    """Terminate every backend connected to the metadata database (as a failover or a network
    cut does); returns how many there were."""
    import psycopg2

    server, _, name = db_url.replace("postgresql+psycopg2://", "postgresql://", 1).rpartition("/")
    conn = psycopg2.connect(f"{server}/postgres", connect_timeout=5)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        )
        (count,) = cur.fetchone()
    conn.close()
    return int(count)


def test_eight_batches_at_once_on_two_workers_with_the_metadata_db_cut(
    celery_stack: AirflowStack, tmp_path: Path
) -> None:
    stack, api = celery_stack, celery_stack.client
    settings = stack.settings
    spec = settings.load_spec("bike_sharing")
    parts = split_periods(load_bike_sharing(), spec)
    for dag_id in ("watch_landing", "ingest_batch"):
        api.unpause(dag_id)
    bucket, _, prefix = settings.landing.removeprefix("s3://").partition("/")
    s3 = _s3(stack)
    for period in MONTHS:  # all at once, as a producer's backlog arrives
        s3.upload_file(
            str(write_batch(parts[period], spec, tmp_path / f"{period}.csv")),
            bucket,
            f"{prefix}/bike_sharing/{period}.csv",
        )

    cut: list[int] = []

    def cutter() -> None:  # once the ingests run, cut the metadata DB's connections, CUTS times
        with contextlib.suppress(WaitTimeout):  # none running after 10 min: cut all the same
            wait_until(
                lambda: any(r["state"] == "running" for r in _runs(api, "ingest_batch")), 600, what="an ingest running"
            )
        for _ in range(CUTS):
            time.sleep(8)  # paces the cuts through the ingests (the outcome is read after, from the runs)
            cut.append(_cut_connections(stack.db.url))

    restarted: list[str] = []

    def supervise() -> None:
        """A component that exits on a cut connection (the scheduler does, in a query it does not
        retry) is started again, as its supervisor (systemd, Kubernetes, compose) does; counted."""
        for name, proc in list(stack.procs.items()):
            if proc.poll() is not None:
                restarted.append(name)
                stack.relaunch(name)

    thread = threading.Thread(target=cutter, daemon=True)
    thread.start()
    api.watchdog = supervise
    try:
        runs = _settled(api, "ingest_batch", len(MONTHS))
        thread.join(timeout=120)
        supervise()
    finally:
        api.watchdog = stack.check_alive

    tags = subprocess.run(
        ["git", "ls-remote", "--tags", "--refs", settings.data_registry_url or ""],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()[1::2]
    versions = DataRegistry(settings).versions("bike_sharing")
    ordered = [v.label for v in versions] == [f"v{k:04d}" for k in range(1, len(MONTHS) + 1)]
    ordered = ordered and all(len(v.periods) == k for k, v in enumerate(versions, start=1))
    kept = set(versions[-1].periods) == set(MONTHS) if versions else False
    events = api.asset_events(source_dag_id="ingest_batch")
    succeeded = sum(r["state"] == "success" for r in runs)
    ok = succeeded == len(MONTHS) and ordered and kept and len(tags) == len(MONTHS) and len(events) == len(MONTHS)
    record(
        "8 batches delivered at once, ingested by two Celery workers",
        len(MONTHS),
        len(MONTHS) if ok else min(succeeded, len(versions)),
        0 if ok else len(MONTHS) - len(versions),
        "8 data versions numbered in order, each one period more, 8 asset events",
    )
    alive = len(cut) == CUTS and succeeded == len(MONTHS)
    retried = sum(int(ti["try_number"]) > 1 for ti in _task_instances(api) if ti["dag_id"] == "ingest_batch")
    record(
        f"metadata DB (PostgreSQL) connections cut {CUTS} times during those ingests",
        CUTS,
        CUTS if alive else len(cut),
        0 if alive else CUTS - len(cut),
        f"{sum(cut)} connections terminated; every run went on ({retried} task{'' if retried == 1 else 's'} "
        f"needed a retry; restarted after exiting on a cut: {', '.join(restarted) or 'none'})",
    )
    assert len(cut) == CUTS and all(n > 0 for n in cut), cut
    assert succeeded == len(MONTHS), [(r["dag_run_id"], r["state"]) for r in runs]
    assert ok, ([v.label for v in versions], [v.periods for v in versions], tags, len(events))


def test_a_worker_killed_mid_training_is_retried_on_the_same_run(
    celery_stack: AirflowStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack, api = celery_stack, celery_stack.client
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION"):  # to look at S3 from here
        monkeypatch.setenv(key, stack.env[key])
    settings = stack.settings
    spec = settings.load_spec("bike_sharing")
    assert DataRegistry(settings).versions("bike_sharing"), "needs the data versions the test above ingests"
    stalled = Path(stack.env["RETRAINER_FAULT_ONCE"])
    api.unpause("retrain_model")  # its monthly schedule starts a retraining on the newest data
    api.until("the training's first epoch", stalled.exists, timeout=900)
    point, pid = stalled.read_text().split()
    hosts = [h.split(".")[0] for h in WORKERS]
    (host,) = [h for h in hosts if int(pid) in {p.pid for p in stack.processes(h)}]
    (run,) = _runs(api, "retrain_model")
    registry = Registry(settings)
    at_kill = _training_runs(registry, spec, run["dag_run_id"])
    killed = stack.kill_host(host)
    stack.relaunch(host)  # the host comes back, as a restarted node does

    state = api.wait_for_run("retrain_model", run["dag_run_id"], timeout=1500)
    tries = api.request("GET", f"/api/v2/dags/retrain_model/dagRuns/{run['dag_run_id']}/taskInstances/train/tries")[
        "task_instances"
    ]
    after = _training_runs(registry, spec, run["dag_run_id"])
    versions = registry.client.search_model_versions(f"name = '{spec.model_name}'")
    version = versions[0].version if len(versions) == 1 else None
    mid_training = len(at_kill) == 1 and schema.MODEL_URI not in at_kill[0].data.tags
    reused = len(after) == 1 and bool(at_kill) and after[0].info.run_id == at_kill[0].info.run_id
    history = registry.client.get_metric_history(after[0].info.run_id, schema.METRIC_LOSS) if after else []
    steps = [m.step for m in history]
    served = version is not None and modelstore.has_version(
        settings.model_store, spec.model_name, version, settings.s3_endpoint_url
    )
    ok = state == "success" and mid_training and reused and after[0].info.status == "FINISHED"
    ok = ok and len(steps) == len(set(steps)) > 0 and version is not None and versions[0].run_id == after[0].info.run_id
    ok = ok and registry.versions.alias(spec, CHAMPION) == version and served
    retried_on = tries[-1].get("hostname", "?").split(".")[0] if tries else "?"
    record(
        f"a Celery worker killed mid-training (SIGKILL to it and its {len(killed) - 1} task processes); "
        f"the scheduler's heartbeat timeout ({HEARTBEAT_TIMEOUT_S} s) fails the task, the retry runs",
        1,
        int(ok),
        0 if ok else 1,
        f"killed on {host} at {point}, retried on {retried_on}: the same MLflow run, one learning "
        "curve, one model version, champion and deployed",
    )
    assert state == "success", api.describe("retrain_model", run["dag_run_id"])
    assert [t["state"] for t in tries] == ["failed", "success"], tries
    assert mid_training, [r.data.tags for r in at_kill]
    assert ok, (reused, [r.info for r in after], steps, [(v.version, v.run_id) for v in versions], served)


def _training_runs(registry: Registry, spec: Any, run_id: str) -> list[Any]:
    """The MLflow training runs of an Airflow run (the drift checks are runs of their own kind)."""
    runs = registry.client.search_runs(
        [registry.runs.experiment_id(spec)], filter_string=schema.tag_filter({schema.AIRFLOW_RUN_ID: run_id})
    )
    return [r for r in runs if r.data.tags.get(schema.RUN_KIND) != schema.DRIFT_CHECK_KIND]


def test_two_deliveries_of_one_period_at_once_make_one_decision(celery_stack: AirflowStack, tmp_path: Path) -> None:
    """Two different files of one new period land together (a producer's export and its
    correction, ``redelivery: reject``): the two ingests run side by side on two workers. Exactly
    one becomes a data version; the other is quarantined, by its validation if the first was
    versioned by then, else where its version was to be made (the policy applied again under
    the registry's lock)."""
    stack, api = celery_stack, celery_stack.client
    settings = stack.settings
    spec = settings.load_spec("bike_sharing")
    assert spec.ingest.redelivery == "reject"
    registry = DataRegistry(settings)
    before = [v.label for v in registry.versions("bike_sharing")]
    runs_before = len(_runs(api, "ingest_batch"))
    period = "2011-10"
    month = split_periods(load_bike_sharing(), spec)[period]
    bucket, _, prefix = settings.landing.removeprefix("s3://").partition("/")
    s3 = _s3(stack)
    for name, frame in (
        (f"{period}.csv", month),
        (f"{period}.corrected.csv", month.assign(cnt=month["cnt"] + 1, casual=month["casual"] + 1)),
    ):
        s3.upload_file(str(write_batch(frame, spec, tmp_path / name)), bucket, f"{prefix}/bike_sharing/{name}")

    runs = _settled(api, "ingest_batch", runs_before + 2)[runs_before:]
    states = {r["dag_run_id"]: api.task_states("ingest_batch", r["dag_run_id"]) for r in runs}
    made = [v.label for v in DataRegistry(settings).versions("bike_sharing")][len(before) :]
    won = [s for s in states.values() if s.get("version_batch") == "success"]
    at_versioning = [s for s in states.values() if s.get("version_batch") == "failed"]
    at_validation = [s for s in states.values() if s.get("quarantine_batch") == "failed"]
    ok = len(made) == 1 and len(won) == 1 and len(at_versioning) + len(at_validation) == 1
    where = "where its version was to be made" if at_versioning else "by its validation"
    record(
        "two deliveries of one period at once, on two Celery workers (redelivery: reject)",
        1,
        int(ok),
        0 if ok else max(len(made) - 1, 0),
        f"one data version; the other delivery quarantined {where}",
    )
    assert ok, (made, states)
