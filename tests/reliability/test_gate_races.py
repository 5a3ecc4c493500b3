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
from typing import Any

import pytest
import yaml

from retrainer import schema
from retrainer.data.demo_data import load_bike_sharing, split_periods, write_batch
from retrainer.data.validation import file_md5
from retrainer.data.versioning import DataRegistry
from retrainer.pipeline import evaluate, release, train
from retrainer.records import RunContext, TrainedRun, TrainingPlan
from retrainer.registry.client import Registry
from retrainer.schema import CHAMPION
from retrainer.settings import Settings
from retrainer_dev.stacks.specs import small_bike_spec
from tests.helpers import REPO, log_keras_model, subprocess_env
from tests.reliability.conftest import record

pytestmark = pytest.mark.reliability

EPOCHS = (1, 2, 4, 8)  # four candidates of different quality


def _world(
    home: Path, monkeypatch: pytest.MonkeyPatch, mlflow_server: str, model: str
) -> tuple[Settings, TrainingPlan]:
    """Three months of the bike data versioned, a small spec with no margins whose model is
    ``model`` (a registered model of this test's own on the session's MLflow server)."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    spec_path = small_bike_spec(home / "specs")
    raw = yaml.safe_load(spec_path.read_text())
    raw["model_name"] = model
    raw["gate"].update(baseline_margin=0.0, champion_margin=0.0)
    spec_path.write_text(yaml.safe_dump(raw))
    monkeypatch.setenv("RETRAINER_SPECS_DIR", str(home / "specs"))
    settings = Settings.from_env()
    spec = settings.load_spec("bike_sharing")
    parts = split_periods(load_bike_sharing(), spec)
    for period in ("2011-01", "2011-02", "2011-03"):
        batch = write_batch(parts[period], spec, home / "landing" / f"{period}.csv")
        DataRegistry(settings).add_batch(spec, period, batch, file_md5(batch))
    return settings, train.plan_training(settings, "bike_sharing", "latest")


def _race(files: list[Path]) -> list[dict]:
    """One promote process per candidate's records, all started at one instant: what each said."""
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
    return outs


def _records(path: Path, **records: Any) -> Path:
    path.write_text(json.dumps({k: v.to_json() for k, v in records.items()}))
    return path


def test_concurrent_promotions_end_on_the_gates_winner(
    mlflow_server: str, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, plan = _world(home, monkeypatch, mlflow_server, "bike_demand_gate_race")
    spec = settings.load_spec("bike_sharing")
    validation = train.validate_window(settings, plan)
    files, scores = [], {}
    for epochs in EPOCHS:
        ctx = RunContext(dag_id="retrain_model", run_id=f"gate-race-{epochs}-epochs")
        trained = train.train_and_log(settings, plan, ctx, validation, epochs=epochs)
        evaluation = evaluate.evaluate(settings, plan, trained)  # no champion yet: each judged on the baseline
        registered = release.register(settings, plan, trained, evaluation, ctx)
        scores[registered.version] = (evaluation.candidate, evaluation.passed)
        path = tmp_path / f"v{registered.version}.json"
        files.append(_records(path, plan=plan, trained=trained, evaluation=evaluation, registered=registered))
    outs = _race(files)
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


EQUALS = 6


def test_equal_candidates_racing_make_one_champion_and_every_other_decided(
    mlflow_server: str, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Six candidates of one score (one model, logged by six runs), each judged while there was no
    champion, promoted at one instant with the shipped margin of 0: one becomes champion; each
    other one, evaluated again against it, ties, and a tie is no improvement: rejected, its
    decision recorded. No process fails, and the champion moves once."""
    settings, plan = _world(home, monkeypatch, mlflow_server, "bike_demand_equal_race")
    spec = settings.load_spec("bike_sharing")
    registry = Registry(settings)
    first = RunContext(dag_id="retrain_model", run_id="equal-source")
    model = registry.models.load_uri(
        train.train_and_log(settings, plan, first, train.validate_window(settings, plan), epochs=2).model_uri
    )
    files, scores = [], {}
    for i in range(EQUALS):
        ctx = RunContext(dag_id="retrain_model", run_id=f"equal-{i}")
        registry.runs.get_or_create(spec, ctx, schema.training_run_tags(plan))
        run_id, uri = log_keras_model(registry, spec, ctx, model)
        trained = TrainedRun(run_id, uri, False)
        evaluation = evaluate.evaluate(settings, plan, trained)
        registered = release.register(settings, plan, trained, evaluation, ctx)
        scores[registered.version] = evaluation.candidate
        path = tmp_path / f"v{registered.version}.json"
        files.append(_records(path, plan=plan, trained=trained, evaluation=evaluation, registered=registered))
    outs = _race(files)
    tags = {v: registry.versions.tags(spec, v) for v in scores}
    decisions = {v: t.get(schema.PROMOTION_DECISION) for v, t in tags.items()}
    champion = registry.versions.alias(spec, CHAMPION)
    winners = [v for v, d in decisions.items() if d == schema.PROMOTED]
    losers = [v for v, d in decisions.items() if d == schema.REJECTED]
    tied = all(f"ties champion v{champion}" in tags[v].get(schema.PROMOTION_REASON, "") for v in losers)
    moved_once = champion is not None and schema.read_previous_champion(tags[champion]) is None  # replaced nobody
    ok = (
        len(set(scores.values())) == 1
        and not [o for o in outs if "error" in o]
        and winners == [champion]
        and len(losers) == EQUALS - 1
        and tied
        and moved_once
    )
    record(
        f"{EQUALS} candidates of one score promoted at once, champion margin 0 (MLflow server on PostgreSQL)",
        1,
        int(ok),
        int(not ok),
        "one champion, moved once; every other candidate re-evaluated against it, tied, rejected and recorded so",
    )
    assert ok, (outs, scores, decisions, champion)
