"""The whole loop on the distributed engine, as a team runs it on several hosts: batches land
on S3 and start their own ingest, one is quarantined; the first model is trained by the
monthly schedule; new data drifts, monitor_drift (its sensor waiting in the triggerer) starts
a retraining that registers, promotes, deploys and verifies; then rollback_model. Two Celery
workers with homes of their own share nothing but S3, the data registry's git remote and
the MLflow server."""

from __future__ import annotations

import statistics
import subprocess
from datetime import datetime
from pathlib import Path
from typing import Any

import boto3
import pytest

from retrainer.data.demo_data import corrupt_copy, load_bike_sharing, split_periods, write_batch
from retrainer.registry.client import Registry
from retrainer.schema import CHAMPION
from retrainer.serving import modelstore
from retrainer.settings import Settings
from retrainer_dev.stacks.airflow import AirflowStack
from retrainer_dev.stacks.airflow_api import AirflowAPI
from retrainer_dev.stacks.celery import WORKERS

pytestmark = [pytest.mark.integration, pytest.mark.celery, pytest.mark.s3, pytest.mark.timeout(1800)]

DAGS = ("watch_landing", "ingest_batch", "monitor_drift", "retrain_model", "rollback_model")


def _s3(stack: AirflowStack) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=stack.env["AWS_ENDPOINT_URL"],
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )


def _deliver(stack: AirflowStack, tmp: Path, batches: dict[str, Any]) -> None:
    """Upload batch files to the S3 landing prefix, as a data producer does."""
    settings = stack.settings
    spec = settings.load_spec("bike_sharing")
    for name, frame in batches.items():
        path = write_batch(frame, spec, tmp / name)
        bucket, _, prefix = settings.landing.removeprefix("s3://").partition("/")
        _s3(stack).upload_file(str(path), bucket, f"{prefix}/bike_sharing/{name}")


def _runs(api: AirflowAPI, dag_id: str) -> list[dict[str, Any]]:
    out = api.request("GET", f"/api/v2/dags/{dag_id}/dagRuns", params={"limit": 1000, "order_by": "run_after"})
    return list(out["dag_runs"])


def _settled(api: AirflowAPI, dag_id: str, count: int) -> list[dict[str, Any]]:
    """Until ``count`` runs of the DAG exist and all are final."""

    def done() -> list[dict[str, Any]] | None:
        runs = _runs(api, dag_id)
        return runs if len(runs) >= count and all(r["state"] in ("success", "failed") for r in runs) else None

    return list(api.until(f"{count} finished runs of {dag_id}", done))


def _task_instances(api: AirflowAPI) -> list[dict[str, Any]]:
    out = api.request("GET", "/api/v2/dags/~/dagRuns/~/taskInstances", params={"limit": 1000})
    return list(out["task_instances"])


def _xcom_strings(api: AirflowAPI, ti: dict[str, Any]) -> list[str]:
    path = f"/api/v2/dags/{ti['dag_id']}/dagRuns/{ti['dag_run_id']}/taskInstances/{ti['task_id']}/xcomEntries"
    try:
        entries = api.request("GET", path, params={"map_index": ti.get("map_index", -1)})["xcom_entries"]
    except AssertionError:
        return []
    out: list[str] = []
    for entry in entries:
        value = api.request("GET", f"{path}/{entry['key']}", params={"map_index": ti.get("map_index", -1)})
        out.append(str(value.get("value")))
    return out


def test_the_loop_on_several_hosts(celery_stack: AirflowStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stack, api = celery_stack, celery_stack.client
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION"):  # to look at S3 from here
        monkeypatch.setenv(key, stack.env[key])
    settings = stack.settings
    spec = settings.load_spec("bike_sharing")
    parts = split_periods(load_bike_sharing(), spec)
    for dag_id in ("watch_landing", "ingest_batch", "monitor_drift"):
        api.unpause(dag_id)

    # batches land on S3 and start their own ingest; the corrupted re-delivery is quarantined
    _deliver(
        stack,
        tmp_path,
        {f"{p}.csv": parts[p] for p in ("2011-01", "2011-02", "2011-03")}
        | {"2011-03.redelivery.csv": corrupt_copy(parts["2011-03"], spec)},
    )
    ingests = _settled(api, "ingest_batch", 4)
    assert all(r["dag_run_id"].startswith("landed__bike_sharing__2011-0") for r in ingests)
    assert sorted(r["state"] for r in ingests) == ["failed", "success", "success", "success"]
    s3, bucket = _s3(stack), settings.landing.removeprefix("s3://").split("/")[0]
    quarantined = s3.list_objects_v2(Bucket=bucket, Prefix="quarantine/bike_sharing/2011-03/").get("Contents", [])
    assert [o["Key"].rsplit("/", 1)[-1] for o in quarantined if o["Key"].endswith(".json")] == ["validation.json"]

    # the first model: retrain_model's monthly schedule, once unpaused, trains on the newest data
    api.unpause("retrain_model")
    (first,) = _settled(api, "retrain_model", 1)
    assert first["run_type"] == "scheduled" and first["state"] == "success", api.describe(
        "retrain_model", first["dag_run_id"]
    )
    registry = Registry(settings)
    assert registry.versions.alias(spec, CHAMPION) == "1"

    # somebody starts a drift check by hand: nothing newer than the champion's data, so its
    # sensor waits in the triggerer for the next data version
    watching = api.trigger("monitor_drift", {"dataset": "bike_sharing"}, datetime.now().astimezone())
    api.until(
        "the hand-started drift check waiting",
        lambda: api.task_states("monitor_drift", watching).get("wait_for_drift") == "deferred",
    )
    # new data drifts: the waiting sensor wakes in the triggerer, and the new version's own
    # monitor_drift run checks it too; both decide to retrain, one retraining starts
    _deliver(stack, tmp_path, {"2011-04.csv": parts["2011-04"]})
    drift_run = "drift__bike_sharing__v0004"
    api.until("the drift retraining", lambda: any(r["dag_run_id"] == drift_run for r in _runs(api, "retrain_model")))
    api.wait_for_run("retrain_model", drift_run, timeout=900)
    api.wait_for_run("monitor_drift", watching, timeout=300)
    assert registry.versions.alias(spec, CHAMPION) == "2"
    assert modelstore.read_config(settings.model_store, settings.s3_endpoint_url)["bike_demand"].labels == {"stable": 2}

    # and back, on purpose
    conf = {"dataset": "bike_sharing", "version": "previous", "reason": "celery tier"}
    rollback = api.trigger("rollback_model", conf, datetime.now().astimezone())
    api.unpause("rollback_model")
    api.wait_for_run("rollback_model", rollback, timeout=600)
    assert registry.versions.alias(spec, CHAMPION) == "1"
    assert modelstore.read_config(settings.model_store, settings.s3_endpoint_url)["bike_demand"].labels == {"stable": 1}

    _everything_exactly_once(stack, settings, registry)
    # the sensors waited in the triggerer, not on a worker: their tasks deferred
    for task_id in ("wait_for_drift", "wait_for_deliveries"):
        # (a mapped task's logs are one folder deeper, map_index=<i>/)
        logs = stack.root.glob(f"worker-*/airflow/logs/dag_id=*/run_id=*/task_id={task_id}/**/*.log")
        assert any("Pausing task as DEFERRED" in p.read_text() for p in logs), f"{task_id} never deferred"
    _both_hosts_worked_and_read_nothing_local(stack, api)


def _everything_exactly_once(stack: AirflowStack, settings: Settings, registry: Registry) -> None:
    tags = subprocess.run(
        ["git", "ls-remote", "--tags", "--refs", settings.data_registry_url or ""],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()[1::2]
    assert sorted(tags) == [f"refs/tags/bike_sharing/v000{k}" for k in range(1, 5)]
    versions = registry.client.search_model_versions("name = 'bike_demand'")
    assert sorted(int(v.version) for v in versions) == [1, 2]
    exp = registry.client.get_experiment_by_name("bike_demand")
    training = [
        r
        for r in registry.client.search_runs([exp.experiment_id])
        if r.data.tags.get("retrainer.kind") != "drift_check"
    ]
    assert len(training) == 2
    store = _s3(stack).list_objects_v2(
        Bucket=settings.model_store.removeprefix("s3://").split("/")[0], Prefix="models/bike_demand/"
    )["Contents"]
    assert sorted(o["Key"] for o in store if o["Key"].endswith("saved_model.pb")) == [
        "models/bike_demand/1/saved_model.pb",
        "models/bike_demand/2/saved_model.pb",
    ]


def _both_hosts_worked_and_read_nothing_local(stack: AirflowStack, api: AirflowAPI) -> None:
    tis = [ti for ti in _task_instances(api) if ti["state"] in ("success", "failed") and ti["dag_id"] in DAGS]
    by_host: dict[str, list[str]] = {}
    for ti in tis:
        by_host.setdefault(ti.get("hostname") or "?", []).append(f"{ti['dag_id']}.{ti['task_id']}")
    assert set(WORKERS) <= set(by_host), by_host
    # no record a task handed on points into a host's own folders: everything shared is on S3 or a URL
    local = [(ti["dag_id"], ti["task_id"], s) for ti in tis for s in _xcom_strings(api, ti) if str(stack.root) in s]
    assert local == []
    # queued (by the scheduler) to running (on a worker), and scheduled (upstream done) to
    # running; a task resumed from a deferral keeps its first start, so a negative wait is left out
    queued, scheduled = _waits(tis, "queued_when"), _waits(tis, "scheduled_when")
    print(
        f"\ncelery tier: tasks per host { {h: len(t) for h, t in by_host.items()} }; over {len(queued)} task "
        f"instances, queued->running median {statistics.median(queued):.2f} s, p90 {_p90(queued):.2f} s, max "
        f"{queued[-1]:.2f} s; scheduled->running median {statistics.median(scheduled):.2f} s, p90 "
        f"{_p90(scheduled):.2f} s, max {scheduled[-1]:.2f} s"
    )
    for host, done in sorted(by_host.items()):
        print(f"  {host}: {', '.join(sorted(set(done)))}")


def _waits(tis: list[dict[str, Any]], since: str) -> list[float]:
    spans = [(ti[since], ti["start_date"]) for ti in tis if ti.get(since) and ti.get("start_date")]
    return sorted(
        w for a, b in spans if (w := (datetime.fromisoformat(b) - datetime.fromisoformat(a)).total_seconds()) >= 0
    )


def _p90(values: list[float]) -> float:
    return values[int(0.9 * (len(values) - 1))]
