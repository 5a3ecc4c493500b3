"""A ``retrain_model`` run killed with SIGKILL mid-training and at each step between two writes
of register, promote, deploy and verify, then run again (same run id, from its first task): at the moment
of the kill the serving labels point only at complete versions (``stable`` only at one that
served or passed its check), and after the rerun there is one MLflow run, one new model
version, champion and ``stable`` on it, no ``canary`` and no lock ticket left."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from retrainer import schema
from retrainer.data.demo_data import load_bike_sharing, split_periods, write_batch
from retrainer.registry.client import Registry
from retrainer.registry.locking import lock_model
from retrainer.schema import CHAMPION
from retrainer.serving import modelstore
from retrainer.settings import Settings
from tests.helpers import REPO, subprocess_env
from tests.reliability.conftest import record

pytestmark = [pytest.mark.integration, pytest.mark.reliability]

#: train:model is mid-training as far as MLflow is concerned: the run holds params, curves and
#: reports, not the model
POINTS = ("train:model", "register:created", "promote:alias", "deploy:published", "deploy:loaded", "verify:stable")


def _retrain(
    at: datetime, log: Path, fault: str | None = None, once: Path | None = None
) -> subprocess.CompletedProcess[str]:
    env = subprocess_env()
    env.pop("RETRAINER_FAULT", None)
    if fault:
        env.update(RETRAINER_FAULT=fault, RETRAINER_FAULT_ONCE=str(once))
    cmd = [sys.executable, "-W", "ignore", "-m", "tests.reliability.retrain_step", at.isoformat(), str(log)]
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)


def test_a_retraining_killed_at_each_step_is_finished_by_its_rerun(
    make_pipeline: Any, home: Path, bike_batches: dict[str, Path], tmp_path: Path
) -> None:
    spec_path = home / "specs" / "bike_sharing.yaml"
    raw = yaml.safe_load(spec_path.read_text())
    raw["gate"]["champion_margin"] = -1.0  # each new candidate becomes champion
    spec_path.write_text(yaml.safe_dump(raw))
    pipe = make_pipeline(2074)
    for period in ("2011-01", "2011-02", "2011-03"):
        assert pipe.ingest("bike_sharing", period, bike_batches[period]).state == "success"
    settings = Settings.from_env()
    spec, registry, store = settings.load_spec("bike_sharing"), Registry(settings), settings.model_store
    months = split_periods(load_bike_sharing(), spec)
    fresh = iter(p for p in sorted(months) if p >= "2011-04")
    survived, rows = 0, []
    for i, point in enumerate(POINTS):
        while True:  # each round a new data version, so the run trains (a month the suite refuses is skipped)
            period = next(fresh)
            batch = write_batch(months[period], spec, home / "landing" / f"{period}.csv")
            if pipe.ingest("bike_sharing", period, batch).state == "success":
                break
        at = datetime(2074, 6, 1, tzinfo=UTC) + timedelta(days=i)
        before = {int(mv.version) for mv in registry.versions.search(spec, {})}
        served_before = modelstore.read_config(store).get("bike_demand")
        stable_before = served_before.labels.get("stable") if served_before else None
        killed = _retrain(at, tmp_path / "runs.log", point, tmp_path / f"fired-{i}")
        entry = modelstore.read_config(store).get("bike_demand")
        labels = entry.labels if entry else {}
        new = {int(mv.version) for mv in registry.versions.search(spec, {})} - before
        # at the kill: every label on a complete version; stable where it was, or on the new
        # version once its check passed (verify:stable is after the check)
        at_kill = killed.returncode == -9 and len(new) <= 1
        at_kill = at_kill and all(modelstore.has_version(store, "bike_demand", v) for v in labels.values())
        allowed_stable = {stable_before} | (new if point == "verify:stable" else set())
        at_kill = at_kill and labels.get("stable") in allowed_stable
        rerun = _retrain(at, tmp_path / "runs.log")
        out = json.loads(rerun.stdout.strip().splitlines()[-1]) if rerun.returncode == 0 else {}
        new = {int(mv.version) for mv in registry.versions.search(spec, {})} - before
        version = str(next(iter(new))) if len(new) == 1 else None
        tags = registry.versions.tags(spec, version) if version else {}
        runs = registry.client.search_runs(
            [registry.runs.experiment_id(spec)],
            filter_string=schema.tag_filter({schema.AIRFLOW_RUN_ID: out.get("run_id", "")}),
        )
        entry = modelstore.read_config(store)["bike_demand"]
        after = out.get("state") == "success" and version is not None and len(runs) == 1
        after = after and registry.versions.alias(spec, CHAMPION) == version
        after = after and entry.labels == {"stable": int(version or 0)} and entry.served() == [int(version or 0)]
        after = (
            after and tags.get(schema.PROMOTION_DECISION) == "promoted" and tags.get(schema.DEPLOY_VERIFIED) == "true"
        )
        after = after and not registry.client.search_model_versions(f"name = '{lock_model('bike_demand')}'")
        if runs:  # the learning curve once, not once per try
            steps = [m.step for m in registry.client.get_metric_history(runs[0].info.run_id, schema.METRIC_LOSS)]
            after = after and len(steps) == len(set(steps)) > 0
        survived += bool(at_kill and after)
        rows.append((point, killed.returncode, labels, new, out.get("states"), rerun.stderr[-800:]))
    how = "labels on complete versions at the kill; after the rerun one run, one new version, champion and stable on it"
    record(
        "a retraining killed (SIGKILL) at each of 6 steps (training, register, promote, deploy, verify), then rerun",
        len(POINTS),
        survived,
        len(POINTS) - survived,
        how,
    )
    assert survived == len(POINTS), rows
