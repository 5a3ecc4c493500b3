"""Components stopped for real in the middle of a DAG run, and Airflow's retry of the task
that met the outage: the S3 store (its port closed, connections in flight reset) during the
DVC push, the MLflow artifact upload, the model store upload and the TFLite upload; the
MLflow server (its process stopped) during register, promote and tag writes.

Each outage starts at a fault point (the moment) and lasts until the task that met it has
failed (so no client's own retries ride over it): what recovers is the task's retry. After
it: no half data version, no version folder without its ``saved_model.pb``, no model version
whose artifacts are missing, and nothing made twice.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from retrainer import faults, schema, storage
from retrainer.registry.client import Registry
from retrainer.schema import CHAMPION
from retrainer.serving import modelstore
from retrainer.settings import Settings
from retrainer_dev.stacks.mlflow import MlflowServer, served_artifacts
from retrainer_dev.stacks.postgres import metadata_db
from tests.outage import Gate, until
from tests.reliability.conftest import record

pytestmark = [pytest.mark.integration, pytest.mark.reliability]


@pytest.fixture
def retries(dags: dict[str, Any]) -> Iterator[Callable[[float], None]]:
    """``retries(delay_s)``: retries as deployed (the test suite runs without), up to 3 of them,
    ``delay_s`` apart; ``quarantine_batch`` keeps its none."""
    saved = [
        (t, t.retries, t.retry_delay, t.retry_exponential_backoff)
        for dag_id in ("ingest_batch", "retrain_model")
        for t in dags[dag_id].tasks
    ]

    def set_retries(delay_s: float) -> None:
        for task, *_ in saved:
            task.retries = 0 if task.task_id == "quarantine_batch" else 3
            task.retry_delay, task.retry_exponential_backoff = timedelta(seconds=delay_s), False

    yield set_retries
    for task, n, delay, backoff in saved:
        task.retries, task.retry_delay, task.retry_exponential_backoff = n, delay, backoff


def failed(dag_id: str, task_id: str) -> Callable[[], bool]:
    """Whether the running try of ``task_id`` has failed (the task waits for its retry)."""

    def check() -> bool:
        from airflow.models.taskinstance import TaskInstance as TI
        from airflow.utils.session import create_session
        from sqlalchemy import func, select

        with create_session() as session:
            q = select(func.count()).where(TI.dag_id == dag_id, TI.task_id == task_id, TI.state == "up_for_retry")
            return bool(session.scalar(q))

    return check


def tries(dag_id: str, run_id: str) -> dict[str, int]:
    from airflow.models.taskinstance import TaskInstance as TI
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.execute(select(TI.task_id, TI.try_number).where(TI.dag_id == dag_id, TI.run_id == run_id))
        return {task_id: int(n) for task_id, n in rows}


def _at(n: int) -> datetime:
    return datetime(2072, 1, 1, tzinfo=UTC) + timedelta(days=n)


@pytest.fixture
def s3_gate(moto_endpoint: str, home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Gate, str]]:
    """Every S3 client of the run goes through a gate that the test can close: the DVC remote,
    MLflow's artifacts and the model store all on S3."""
    import uuid

    import boto3

    gate = Gate(int(moto_endpoint.rsplit(":", 1)[1]))
    gate.start()
    bucket = f"outage-{uuid.uuid4().hex[:8]}"
    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": gate.url,
        "MLFLOW_S3_ENDPOINT_URL": gate.url,
        "RETRAINER_DVC_REMOTE": f"s3://{bucket}/dvc",
        "RETRAINER_MLFLOW_ARTIFACTS": f"s3://{bucket}/mlflow",
        "RETRAINER_MODEL_STORE": f"s3://{bucket}/models",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    boto3.client("s3", endpoint_url=moto_endpoint).create_bucket(Bucket=bucket)
    yield gate, bucket
    gate.stop()


def test_s3_stopped_during_each_upload_and_the_task_retried(
    make_pipeline: Any, bike_batches: dict[str, Path], s3_gate: tuple[Gate, str], retries: Callable[[float], None]
) -> None:
    import boto3

    retries(2)  # the gate opens again within milliseconds

    gate, bucket = s3_gate
    pipe = make_pipeline(2072)
    settings = Settings.from_env()
    s3 = boto3.client("s3", endpoint_url=gate.url)

    # the DVC push of 2011-01 meets the outage
    with faults.hooked("version:pushing", until(gate, failed("ingest_batch", "version_batch"))) as pushing:
        ingest = pipe.ingest("bike_sharing", "2011-01", bike_batches["2011-01"], at=_at(1))
    for i, period in enumerate(("2011-02", "2011-03"), start=2):
        assert pipe.ingest("bike_sharing", period, bike_batches[period], at=_at(i)).state == "success"
    from retrainer.data.versioning import DataRegistry

    registry_data = DataRegistry(settings)
    versions = registry_data.versions("bike_sharing")
    dvc_objects = [o for o in s3.list_objects_v2(Bucket=bucket, Prefix="dvc/").get("Contents", [])]
    first = registry_data.read_periods(settings.load_spec("bike_sharing"), versions[0], ["2011-01"])
    dvc_ok = (
        bool(pushing)
        and ingest.state == "success"
        and tries("ingest_batch", ingest.run_id)["version_batch"] == 2
        and [v.label for v in versions] == ["v0001", "v0002", "v0003"]
        and len(dvc_objects) == 3
        and len(first) > 0
    )
    record(
        "S3 stopped during the DVC push of a batch; the task retried",
        1,
        int(dvc_ok),
        int(not dvc_ok),
        "one data version per batch, its bytes on the remote, the batch readable from it",
    )

    # one retraining meets three outages: MLflow's artifact upload, the model store upload
    # (after its first object), the TFLite upload
    store, seen = settings.model_store, {}
    cut_deploy = until(gate, failed("retrain_model", "deploy"))

    def look_then_cut() -> None:  # at the moment of the cut: a folder without its SavedModel, not served
        seen["partial"] = not modelstore.has_version(store, "bike_demand", 1) and not modelstore.read_config(store)
        cut_deploy()

    hooks = {
        "train:model": until(gate, failed("retrain_model", "train")),
        "publish:object": look_then_cut,
        "deploy:tflite": until(gate, failed("retrain_model", "deploy")),
    }
    with ExitStack() as stack:
        fired = {point: stack.enter_context(faults.hooked(point, hook)) for point, hook in hooks.items()}
        run = pipe.retrain("bike_sharing", "latest", at=_at(10))
    t = tries("retrain_model", run.run_id)
    spec = settings.load_spec("bike_sharing")
    registry = Registry(settings)
    mlflow_runs = registry.client.search_runs(
        [registry.runs.experiment_id(spec)], filter_string=schema.tag_filter({schema.AIRFLOW_RUN_ID: run.run_id})
    )
    model_versions = registry.versions.search(spec, {})
    folders = storage.list_versions(store, "bike_demand")
    complete = all(modelstore.has_version(store, "bike_demand", v) for v in folders)
    loads = registry.models.load_keras(spec, "1") is not None if len(model_versions) == 1 else False
    tflite = storage.read_bytes(modelstore.tflite_location(store, "bike_demand", 1))
    tags = registry.versions.tags(spec, "1") if model_versions else {}
    base = run.state == "success" and len(model_versions) == 1 and registry.versions.alias(spec, CHAMPION) == "1"
    rows = {
        "S3 stopped during MLflow's upload of the model's artifacts; train retried": (
            bool(fired["train:model"]) and t["train"] == 2 and len(mlflow_runs) == 1 and loads,
            "one MLflow run, one model version, its model loads from the artifacts",
        ),
        "S3 stopped during the model store upload (after its first object); deploy retried": (
            bool(fired["publish:object"]) and seen.get("partial") is True and folders == [1] and complete,
            "the cut-off folder never served nor labelled; after the retry every version folder complete",
        ),
        "S3 stopped before the TFLite upload; deploy retried": (
            bool(fired["deploy:tflite"])
            and t["deploy"] == 3
            and tflite is not None
            and str(len(tflite)) == tags.get(schema.TFLITE_SIZE_BYTES),
            "one TFLite artifact of the size recorded on the version",
        ),
    }
    for scenario, (ok, how) in rows.items():
        record(scenario, 1, int(ok and base), int(not (ok and base)), how)
    labels = modelstore.read_config(store)["bike_demand"].labels
    assert dvc_ok, (ingest.states, versions, dvc_objects)
    assert base and labels == {"stable": 1}, (run.states, t, model_versions, labels)
    assert all(ok for ok, _ in rows.values()), (t, seen, folders, mlflow_runs, tags)
    assert gate.outages == 4


#: where the MLflow server stops, per task
POINTS = {
    "register": "register:created",  # the version exists, its evidence tags not yet
    "promote": "promote:alias",  # champion moved, the decision not recorded yet
    "deploy": "deploy:published",  # published, labels and deploy tags not written yet
}


def test_mlflow_server_stopped_during_register_promote_and_tag_writes(
    make_pipeline: Any,
    home: Path,
    bike_batches: dict[str, Path],
    retries: Callable[[float], None],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    retries(20)  # longer than the server takes to start again
    db = metadata_db(tmp_path)
    server = MlflowServer(db.url, served_artifacts(str(tmp_path / "artifacts")), tmp_path / "server.log")
    server.start()
    try:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", server.url)
        monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")  # fail fast; the task's retry recovers
        monkeypatch.setenv("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
        monkeypatch.setenv("RETRAINER_LOCK_DEAD_AFTER_S", "6")  # a ticket left by the cut-off try expires
        pipe = make_pipeline(2073)
        for i, period in enumerate(("2011-01", "2011-02", "2011-03"), start=1):
            assert pipe.ingest("bike_sharing", period, bike_batches[period], at=_at(i)).state == "success"
        with ExitStack() as stack:
            fired = {
                task: stack.enter_context(faults.hooked(point, until(server, failed("retrain_model", task))))
                for task, point in POINTS.items()
            }
            run = pipe.retrain("bike_sharing", "latest", at=_at(10))
        server.start()  # up again already, unless the run failed before the last outage ended
        settings = Settings.from_env()
        spec = settings.load_spec("bike_sharing")
        registry = Registry(settings)
        t = tries("retrain_model", run.run_id)
        versions = registry.versions.search(spec, {})
        tags = registry.versions.tags(spec, "1") if len(versions) == 1 else {}
        runs = registry.client.search_runs(
            [registry.runs.experiment_id(spec)], filter_string=schema.tag_filter({schema.AIRFLOW_RUN_ID: run.run_id})
        )
        lock_left = registry.client.search_model_versions("name = 'bike_demand.lock'")
        base = run.state == "success" and len(versions) == 1 and len(runs) == 1
        checks = {
            "register": (tags.get(schema.DATA_VERSION) is not None, "one version, with every evidence tag"),
            "promote": (
                registry.versions.alias(spec, CHAMPION) == "1" and tags.get(schema.PROMOTION_DECISION) == "promoted",
                "champion on the version, the decision recorded once",
            ),
            "deploy": (
                tags.get(schema.DEPLOY_LABEL) == "stable"
                and modelstore.read_config(settings.model_store)["bike_demand"].labels == {"stable": 1},
                "labels and deploy tags written by the retry",
            ),
        }
        for task, (ok, how) in checks.items():
            ok = ok and base and bool(fired[task]) and t[task] == 2
            record(f"MLflow server stopped during {task}; the task retried", 1, int(ok), int(not ok), how)
        assert base, (run.states, t, versions)
        assert all(ok for ok, _ in checks.values()), (t, tags)
        assert [t[k] for k in ("register", "promote", "deploy")] == [2, 2, 2]
        assert not lock_left and server.outages == 3
    finally:
        server.stop()
        time.sleep(0.5)
        db.drop()
