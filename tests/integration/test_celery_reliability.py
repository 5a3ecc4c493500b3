"""The distributed stack under a burst and a database fault: 8 batches delivered at once to
the S3 landing prefix, ingested by two Celery workers (hosts) that share only S3, the data
registry's git remote and the MLflow server, while every connection to the Airflow metadata
database (PostgreSQL) is cut three times. Every batch becomes one data version, numbered in
order with none lost, announced once."""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path

import pytest

from retrainer.sources import load_bike_sharing, split_periods, write_batch
from retrainer.versioning import DataRegistry
from tests.reliability.conftest import record

from .airflow_stack import AirflowStack
from .celery_stack import celery_stack_fixture  # noqa: F401  (the fixture)
from .test_celery_e2e import _runs, _s3, _settled

pytestmark = [pytest.mark.integration, pytest.mark.celery, pytest.mark.s3, pytest.mark.reliability,
              pytest.mark.timeout(1800)]  # fmt: skip

#: months of the bike data that pass the suite as delivered
MONTHS = ("2011-01", "2011-02", "2011-03", "2011-04", "2011-05", "2011-06", "2011-08", "2011-09")
CUTS = 3


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
        s3.upload_file(str(write_batch(parts[period], spec, tmp_path / f"{period}.csv")), bucket,
                       f"{prefix}/bike_sharing/{period}.csv")  # fmt: skip

    cut: list[int] = []

    def cutter() -> None:  # once the ingests run, cut the metadata DB's connections, CUTS times
        deadline = time.monotonic() + 600
        while not any(r["state"] == "running" for r in _runs(api, "ingest_batch")) and time.monotonic() < deadline:
            time.sleep(1)
        for _ in range(CUTS):
            time.sleep(8)
            cut.append(_cut_connections(stack.db.url))

    thread = threading.Thread(target=cutter, daemon=True)
    thread.start()
    runs = _settled(api, "ingest_batch", len(MONTHS))
    thread.join(timeout=120)
    stack.check_alive()  # every component lived through the cuts

    tags = subprocess.run(["git", "ls-remote", "--tags", "--refs", settings.data_registry_url or ""],
                          capture_output=True, text=True, check=True).stdout.split()[1::2]  # fmt: skip
    versions = DataRegistry(settings).versions("bike_sharing")
    ordered = [v.label for v in versions] == [f"v{k:04d}" for k in range(1, len(MONTHS) + 1)]
    ordered = ordered and all(len(v.periods) == k for k, v in enumerate(versions, start=1))
    kept = set(versions[-1].periods) == set(MONTHS) if versions else False
    events = api.asset_events(source_dag_id="ingest_batch")
    succeeded = sum(r["state"] == "success" for r in runs)
    ok = succeeded == len(MONTHS) and ordered and kept and len(tags) == len(MONTHS) and len(events) == len(MONTHS)
    record("8 batches delivered at once, ingested by two Celery workers", len(MONTHS),
           len(MONTHS) if ok else min(succeeded, len(versions)), 0 if ok else len(MONTHS) - len(versions),
           "8 data versions numbered in order, each one period more, 8 asset events")  # fmt: skip
    alive = len(cut) == CUTS and succeeded == len(MONTHS)
    record(f"metadata DB (PostgreSQL) connections cut {CUTS} times during those ingests", CUTS,
           CUTS if alive else len(cut), 0 if alive else CUTS - len(cut),
           f"{sum(cut)} connections terminated; every component and every run went on")  # fmt: skip
    assert len(cut) == CUTS and all(n > 0 for n in cut), cut
    assert succeeded == len(MONTHS), [(r["dag_run_id"], r["state"]) for r in runs]
    assert ok, ([v.label for v in versions], [v.periods for v in versions], tags, len(events))
