"""Candidates of different quality promoted at the same instant, each by its own process, on
an MLflow server over PostgreSQL: the champion ends on the candidate the gate's rule makes
the winner (the best on the holdout, as no champion margin is asked), whatever the order the
processes got in: one that won first and was beaten afterwards is named by its successor as
the champion it replaced, every other candidate's decision is recorded as a loss, and no
process fails."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from retrainer import schema
from retrainer.data.demo_data import load_bike_sharing, split_periods, write_batch
from retrainer.data.validation import file_md5
from retrainer.data.versioning import DataRegistry
from retrainer.pipeline import evaluate, release, train
from retrainer.records import RunContext
from retrainer.registry.client import Registry
from retrainer.schema import CHAMPION
from retrainer.settings import Settings
from retrainer_dev.stacks.specs import small_bike_spec
from tests.helpers import REPO, subprocess_env
from tests.reliability.conftest import record

pytestmark = pytest.mark.reliability

EPOCHS = (1, 2, 4, 8)  # four candidates of different quality


def test_concurrent_promotions_end_on_the_gates_winner(
    mlflow_server: str, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    spec_path = small_bike_spec(home / "specs")
    raw = yaml.safe_load(spec_path.read_text())
    raw["gate"].update(baseline_margin=0.0, champion_margin=0.0)
    spec_path.write_text(yaml.safe_dump(raw))
    monkeypatch.setenv("RETRAINER_SPECS_DIR", str(home / "specs"))
    settings = Settings.from_env()
    spec = settings.load_spec("bike_sharing")
    parts = split_periods(load_bike_sharing(), spec)
    for period in ("2011-01", "2011-02", "2011-03"):
        batch = write_batch(parts[period], spec, home / "landing" / f"{period}.csv")
        DataRegistry(settings).add_batch(spec, period, batch, file_md5(batch))
    plan = train.plan_training(settings, "bike_sharing", "latest")
    validation = train.validate_window(settings, plan)
    files, scores = [], {}
    for epochs in EPOCHS:
        ctx = RunContext(dag_id="retrain_model", run_id=f"gate-race-{epochs}-epochs")
        trained = train.train_and_log(settings, plan, ctx, validation, epochs=epochs)
        evaluation = evaluate.evaluate(settings, plan, trained)  # no champion yet: each judged on the baseline
        registered = release.register(settings, plan, trained, evaluation, ctx)
        scores[registered.version] = (evaluation.candidate, evaluation.passed)
        path = tmp_path / f"v{registered.version}.json"
        records = {"plan": plan, "trained": trained, "evaluation": evaluation, "registered": registered}
        path.write_text(json.dumps({k: v.to_json() for k, v in records.items()}))
        files.append(path)
    env = subprocess_env()
    t0 = time.time() + 15  # every process imported and waiting
    cmd = [sys.executable, "-W", "ignore", "-m", "tests.reliability.promote_step"]
    procs = [
        subprocess.Popen(
            [*cmd, str(f), str(t0)], cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for f in files
    ]
    outs = []
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=600)
        outs.append(json.loads(stdout.strip().splitlines()[-1]) if stdout.strip() else {"error": stderr[-1500:]})
    registry = Registry(settings)
    eligible = {v: s for v, (s, passed) in scores.items() if passed}
    best = min(eligible, key=lambda v: eligible[v])  # rmse: lower wins
    tags = {v: registry.versions.tags(spec, v) for v in scores}
    decisions = {v: t.get(schema.PROMOTION_DECISION) for v, t in tags.items()}
    errors = [o for o in outs if "error" in o]
    champion = registry.versions.alias(spec, CHAMPION)
    # a candidate that won first and was then beaten stays "promoted", with its successor naming
    # it as the champion it replaced, on a better score; every other one is recorded as a loss
    promoted = [v for v in scores if decisions[v] == schema.PROMOTED]
    replaced = {schema.read_previous_champion(tags[w]): w for w in promoted}
    chain = all(v == best or (v in replaced and scores[replaced[v]][0] < scores[v][0]) for v in promoted)
    recorded = all(decisions[v] is not None for v in scores)
    ok = not errors and champion == best and decisions[best] == schema.PROMOTED and chain and recorded
    how = "the champion ends on the best candidate by the gate's rule; each replaced or losing one recorded so"
    record(
        f"{len(EPOCHS)} candidates of different quality promoted at once (MLflow server on PostgreSQL)",
        1,
        int(ok),
        int(not ok),
        how,
    )
    assert ok, (outs, scores, decisions, champion, best)
