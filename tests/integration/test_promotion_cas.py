"""Promotion by compare-and-set: when ``champion`` moved between a candidate's evaluation and
its promotion, the candidate is evaluated again against the new champion and promoted only
if it passes again; it is never promoted on evidence about a champion that no longer serves."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from retrainer.pipeline import evaluate, release, train
from retrainer.records import Evaluation, Promotion, RegisteredVersion, RunContext, TrainedRun, TrainingPlan
from retrainer.registry.client import Registry
from retrainer.registry.versions import ChampionMovedError
from retrainer.schema import CHAMPION
from retrainer.settings import Settings

pytestmark = pytest.mark.integration


def _set_gate(home: Path, champion_margin: float) -> None:
    path = home / "specs" / "bike_sharing.yaml"
    spec = yaml.safe_load(path.read_text())
    spec["gate"]["champion_margin"] = champion_margin
    path.write_text(yaml.safe_dump(spec))


def _candidate(
    s: Settings, data_version: str, run_id: str
) -> tuple[TrainingPlan, TrainedRun, Evaluation, RegisteredVersion]:
    """Train, evaluate and register a candidate with the library steps (no promotion)."""
    ctx = RunContext(dag_id="retrain_model", run_id=run_id, trigger="test")
    plan = train.plan_training(s, "bike_sharing", data_version)
    validation = train.validate_window(s, plan)
    trained = train.train_and_log(s, plan, ctx, validation)
    evaluated = evaluate.evaluate(s, plan, trained)
    registered = release.register(s, plan, trained, evaluated, ctx)
    return plan, trained, evaluated, registered


def test_champion_moved_before_promotion(make_pipeline: Any, home: Path, bike_batches: dict[str, Path]) -> None:
    _set_gate(home, -1.0)  # any candidate beats the champion: the test steers the gate below
    pipe = make_pipeline(2071)
    for period in ("2011-01", "2011-02", "2011-03", "2011-04"):
        assert pipe.ingest("bike_sharing", period, bike_batches[period]).state == "success"
    assert pipe.retrain("bike_sharing", "v0003").state == "success"
    s = Settings.from_env()
    registry, spec = Registry(s), s.load_spec("bike_sharing")
    assert registry.versions.alias(spec, CHAMPION) == "1"

    # v2 is evaluated against v1 ...
    plan, trained, evaluated, registered = _candidate(s, "v0004", "cas-candidate-1")
    assert registered.version == "2" and evaluated.champion_version == "1" and evaluated.passed
    # ... and before it is promoted, another run makes v3 the champion
    assert pipe.retrain("bike_sharing", "v0004", force=True).state == "success"  # v0004 again, on purpose
    assert registry.versions.alias(spec, CHAMPION) == "3"

    # without the means to evaluate again, promotion refuses rather than promote blind
    with pytest.raises(ChampionMovedError, match="champion is v3 but the evaluation compared against v1"):
        release.promote(s, plan, evaluated, registered)
    assert registry.versions.alias(spec, CHAMPION) == "3"

    # with them: evaluated again against v3, passes again, promoted by compare-and-set on v3
    out = release.promote(s, plan, evaluated, registered, trained)
    assert out == Promotion(promoted=True, version="2", previous_champion="3")
    tags = registry.versions.tags(spec, "2")
    assert tags["gate.champion_version"] == "3" and "champion moved to v3" in tags["promotion.reevaluated"]
    assert registry.versions.alias(spec, CHAMPION) == "2"

    # v4 passes against v2; then the champion moves to v3 and the gate gets strict: the
    # re-evaluation fails and v4 is rejected, saying against what
    plan, trained, evaluated, registered = _candidate(s, "v0004", "cas-candidate-2")
    assert registered.version == "4" and evaluated.champion_version == "2" and evaluated.passed
    registry.versions.set_alias(spec, CHAMPION, "3")
    _set_gate(home, 0.9)  # must be 90% better than the champion: no candidate is
    out = release.promote(s, plan, evaluated, registered, trained)
    assert out.promoted is False
    tags = registry.versions.tags(spec, "4")
    assert tags["promotion.decision"] == "rejected"
    assert tags["promotion.reason"].startswith("re-evaluated against champion v3:")
    assert tags["gate.passed"] == "false" and tags["gate.champion_version"] == "3"
    assert registry.versions.alias(spec, CHAMPION) == "3"
