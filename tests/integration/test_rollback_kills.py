"""A rollback killed with SIGKILL between every two of its writes (fault points), and after
the last one (before Airflow could record its success), then run again as the task's retry:
at every moment alias and label point at complete versions, and the retry finishes exactly
the rollback that was asked for (never two steps back)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from retrainer import schema
from retrainer.registry.client import Registry
from retrainer.schema import CHAMPION
from retrainer.serving import modelstore
from retrainer.settings import Settings
from tests.helpers import REPO, subprocess_env
from tests.reliability.conftest import record

pytestmark = [pytest.mark.integration, pytest.mark.reliability]

POINTS = ("rollback:alias", "rollback:pending", "rollback:done", "rollback:label")
PREVIOUS = {"rollback:alias", "rollback:done"}  # rounds that ask for "previous" (from v2)


def _rollback(target: str, run_id: str, fault: str | None = None) -> subprocess.CompletedProcess[str]:
    env = subprocess_env()
    env.pop("RETRAINER_FAULT", None)
    if fault:
        env["RETRAINER_FAULT"] = fault
    cmd = [sys.executable, "-W", "ignore", "-m", "tests.reliability.rollback_step", target, run_id]
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def test_a_rollback_killed_at_each_step_finishes_on_retry(
    make_pipeline: Any, home: Path, bike_batches: dict[str, Path]
) -> None:
    spec_path = home / "specs" / "bike_sharing.yaml"
    raw = yaml.safe_load(spec_path.read_text())
    raw["gate"]["champion_margin"] = -1.0  # every candidate that beats the baseline becomes champion
    spec_path.write_text(yaml.safe_dump(raw))
    pipe = make_pipeline(2060)
    for period in ("2011-01", "2011-02", "2011-03"):
        pipe.ingest("bike_sharing", period, bike_batches[period])
    assert pipe.retrain("bike_sharing", "latest").values["promote"]["promoted"]
    pipe.ingest("bike_sharing", "2011-04", bike_batches["2011-04"])
    assert pipe.retrain("bike_sharing", "latest").values["promote"]["promoted"]
    settings = Settings.from_env()
    registry, spec, store = Registry(settings), settings.load_spec("bike_sharing"), home / "model-store"

    def state() -> tuple[str | None, int | None, bool]:
        labels = modelstore.read_config(store)["bike_demand"].labels
        return (
            registry.versions.alias(spec, CHAMPION),
            labels.get("stable"),
            bool(schema.read_rollback_pending(registry.versions.model_tags(spec))),
        )

    survived, rows = 0, []
    # v2 serves; each round rolls to the other version (by "previous" in PREVIOUS rounds), killed at one point
    for i, point in enumerate(POINTS):
        before, _, _ = state()
        target = "previous" if point in PREVIOUS else ("1" if before == "2" else "2")
        want = "1" if before == "2" else "2"
        killed = _rollback(target, f"rollback-{i}", point)
        champion, stable, pending = state()
        finished = point == "rollback:done"  # every write made, nothing pending; Airflow never heard it ended
        consistent = killed.returncode == -9 and {champion, str(stable)} <= {"1", "2"} and pending != finished
        consistent = consistent and all(modelstore.has_version(str(store), "bike_demand", v) for v in (1, 2))
        # the retry of the same task, and then a new rollback "previous" from another run: no second step
        retry = _rollback(target, f"rollback-{i}")
        done = retry.returncode == 0 and json.loads(retry.stdout.strip().splitlines()[-1])["to"] == want
        after = state()
        tags = registry.versions.tags(spec, want)
        done = done and after == (want, int(want), False) and tags.get("rollback.from") == before
        survived += bool(consistent and done)
        rows.append((point, killed.returncode, (champion, stable, pending), after, retry.stderr[-500:]))
    # v2 serves; the run that rolled back from v2 to v1 after its last write, run once more: nothing moves
    done = POINTS.index("rollback:done")
    rerun = _rollback("previous", f"rollback-{done}")
    rerun_ok = rerun.returncode == 0 and json.loads(rerun.stdout.strip().splitlines()[-1]) == {"from": "2", "to": "1"}
    rerun_ok = rerun_ok and state() == ("2", 2, False)
    again = _rollback("previous", "another-run")  # a new run: v2 replaced v1
    again_ok = again.returncode == 0 and state() == ("1", 1, False)
    how = "alias and label on complete versions throughout; the retry ends where asked, never a step further"
    record(
        "rollback killed (SIGKILL) at each of its 3 steps and after its last write, then retried",
        len(POINTS),
        survived,
        len(POINTS) - survived,
        how,
    )
    assert survived == len(POINTS), rows
    assert rerun_ok, (state(), rerun.stdout[-500:], rerun.stderr[-2000:])
    assert again_ok, (state(), again.stderr[-2000:])
