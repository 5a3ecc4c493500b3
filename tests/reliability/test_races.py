"""Races between processes, for real: several processes on one MLflow server over PostgreSQL
(promotions, registrations) and on one model store (label writes)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import pytest

from tests.helpers import REPO, subprocess_env
from tests.reliability.conftest import record

pytestmark = pytest.mark.reliability

PROMOTERS, PROMOTE_ROUNDS = 6, 10
REGISTRARS, REGISTER_ROUNDS = 2, 6


def _contenders(args: list[list[str]], timeout: float = 600) -> list[dict]:
    env = subprocess_env()
    cmd = [sys.executable, "-W", "ignore", "-m", "tests.reliability.race"]
    procs = [
        subprocess.Popen([*cmd, *a], cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for a in args
    ]
    out = []
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=timeout)
        assert proc.returncode == 0, stderr[-3000:]
        out += [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
    return out


def test_concurrent_promotions_have_one_winner(mlflow_server: str) -> None:
    """6 processes promote 6 different versions against the same expected champion at the same
    instant, 10 rounds: exactly one is told it won, the others are told the champion moved,
    and the alias ends on the winner."""
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=mlflow_server)
    for r in range(PROMOTE_ROUNDS):
        name = f"race-{r}"
        client.create_registered_model(name)
        for _ in range(PROMOTERS + 1):
            client.create_model_version(name, "s3://retrainer/race/model")
        client.set_registered_model_alias(name, "champion", "1")
    t0 = time.time() + 8  # every process imported and waiting
    period = 3.0
    args = [["promote", mlflow_server, str(i), str(PROMOTE_ROUNDS), str(t0), str(period)] for i in range(PROMOTERS)]
    results = _contenders(args)
    by_round: dict[int, list[dict]] = defaultdict(list)
    for res in results:
        by_round[res["round"]].append(res)
    survived = 0
    for r, attempts in by_round.items():
        winners = [a for a in attempts if a["won"]]
        errors = [a for a in attempts if "error" in a]
        champion = client.get_registered_model(f"race-{r}").aliases["champion"]
        ok = len(attempts) == PROMOTERS and len(winners) == 1 and not errors
        ok = ok and all("champion is v" in a["told"] for a in attempts if not a["won"])
        survived += ok and champion != "1"
    lost = PROMOTE_ROUNDS - survived
    how = "exactly one process told it won per round, the alias on its version; the others told the champion moved"
    record("concurrent promotions (6 processes, MLflow server on PostgreSQL)", PROMOTE_ROUNDS, survived, lost, how)
    assert lost == 0, dict(by_round)


def test_a_stuck_task_and_its_retry_register_one_version(mlflow_server: str, tmp_path: Path) -> None:
    """Two processes register the same run at the same instant, 6 rounds: one version each round."""
    import mlflow
    import mlflow.pyfunc

    class Constant(mlflow.pyfunc.PythonModel):  # type: ignore[misc]
        def predict(self, context, model_input):  # type: ignore[no-untyped-def]
            return model_input

    mlflow.set_tracking_uri(mlflow_server)
    try:
        with mlflow.start_run() as run:
            info = mlflow.pyfunc.log_model(name="model", python_model=Constant())
    finally:
        mlflow.set_tracking_uri("")
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    t0, period = time.time() + 8, 2.0
    args = [
        ["register", mlflow_server, run.info.run_id, info.model_uri, str(REGISTER_ROUNDS), str(t0), str(period)]
        for _ in range(REGISTRARS)
    ]
    results = _contenders(args)
    client = mlflow.MlflowClient(tracking_uri=mlflow_server)
    survived = 0
    for r in range(REGISTER_ROUNDS):
        versions = client.search_model_versions(f"name = 'reg-{r}'")
        created = [x for x in results if x["round"] == r and x.get("created")]
        survived += len(versions) == 1 and len(created) == 1
    record(
        "a task and its retry register one run at once (2 processes)",
        REGISTER_ROUNDS,
        survived,
        REGISTER_ROUNDS - survived,
        "one model version per run, one process told it created it",
    )
    assert survived == REGISTER_ROUNDS, results


def test_label_writers_lose_nothing(tmp_path: Path) -> None:
    """Two processes move different labels of one model store's config as fast as they can."""
    store = tmp_path / "store"
    for v in (1, 2):
        (store / "race" / str(v)).mkdir(parents=True)
        (store / "race" / str(v) / "saved_model.pb").write_bytes(b"")
    writes = 300
    results = _contenders([["labels", str(store), label, str(writes)] for label in ("stable", "canary")])
    total, lost = sum(r["writes"] for r in results), sum(r["lost"] for r in results)
    record(
        "two writers of models.config labels (local store)",
        total,
        total - lost,
        lost,
        "each writer reads its own label back after every write",
    )
    assert lost == 0 and len(results) == 2


def test_label_writers_on_s3_lose_nothing_without_any_other_lock(s3_env: str) -> None:
    """The same on an S3 store, by the label API alone (no registry lock around it): each config
    change is a conditional write the store checks, retried when the other writer went first."""
    import boto3

    client = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
    for v in (1, 2):
        client.put_object(Bucket=s3_env, Key=f"store/race/{v}/saved_model.pb", Body=b"")
    store = f"s3://{s3_env}/store"
    writes = 100
    results = _contenders([["labels", store, label, str(writes)] for label in ("stable", "canary")])
    total, lost = sum(r["writes"] for r in results), sum(r["lost"] for r in results)
    record(
        "two writers of models.config labels (S3 store, no lock but the label API's own)",
        total,
        total - lost,
        lost,
        "each writer reads its own label back after every write",
    )
    assert lost == 0 and len(results) == 2
