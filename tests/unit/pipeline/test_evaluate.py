"""Evaluate: the candidate, the champion and the naive baseline scored on one holdout, the gate
applied, and everything recorded on the training run, which a rerun reuses while the champion
it compared against is still the champion. (The gate's rules themselves:
tests/unit/model/test_evaluation.py.)"""

from __future__ import annotations

import logging

import pytest

from retrainer import schema
from retrainer.model import training
from retrainer.pipeline.evaluate import evaluate
from retrainer.records import Evaluation, TrainedRun
from retrainer.registry.client import Registry
from retrainer.schema import CHAMPION
from retrainer.settings import Settings
from retrainer.spec.dataset import DatasetSpec
from tests.unit.pipeline.conftest import logged, plan_of


def test_a_first_candidate_is_judged_against_the_baseline_and_recorded(
    world: Settings, world_spec: DatasetSpec, bike_trained: training.TrainResult
) -> None:
    plan = plan_of(world)
    run_id, uri = logged(world, world_spec, "manual__1", bike_trained.model, plan)
    ev = evaluate(world, plan, TrainedRun(run_id, uri, False))
    assert ev.passed and ev.metric == "rmse" and ev.champion is None and ev.champion_version is None
    assert ev.candidate < 0.75 * ev.baseline and ev.n_holdout == 720  # June, every row labelled
    assert {s.feature for s in ev.slices} == {"season", "weathersit", "workingday"}
    assert not any(s.judged for s in ev.slices)  # no champion to compare a slice with
    registry = Registry(world)
    tags, metrics = registry.runs.tags(run_id), registry.runs.metrics(run_id)
    assert tags[schema.EVALUATED] == "true" and tags[schema.GATE_PASSED] == "true"
    assert tags[schema.GATE_CHAMPION_VERSION] == schema.NONE
    assert metrics["holdout_rmse"] == pytest.approx(ev.candidate) and "baseline_rmse" in metrics
    assert metrics[schema.METRIC_HOLDOUT_UNLABELLED] == 0
    assert Evaluation.from_json(registry.runs.load_json(run_id, schema.ARTIFACT_EVALUATION)) == ev
    assert ev.report_uri.startswith(f"{world.mlflow_ui_url}/#/experiments/")
    assert ev.report_uri.split("?")[0].endswith(schema.ARTIFACT_EVALUATION_REPORT)
    assert {a.path for a in registry.client.list_artifacts(run_id, "plots")} == {schema.ARTIFACT_HOLDOUT_PLOT}


def test_a_rerun_reuses_the_evaluation_until_the_champion_moves(
    world: Settings,
    world_spec: DatasetSpec,
    bike_trained: training.TrainResult,
    caplog: pytest.LogCaptureFixture,
) -> None:
    plan = plan_of(world)
    registry = Registry(world)
    champion_run, champion_uri = logged(world, world_spec, "manual__1", bike_trained.model, plan)
    run_id, uri = logged(world, world_spec, "manual__2", bike_trained.model, plan)
    candidate = TrainedRun(run_id, uri, False)
    first = evaluate(world, plan, candidate)
    assert first.champion_version is None
    with caplog.at_level(logging.INFO, logger="retrainer.pipeline.evaluate"):
        assert evaluate(world, plan, candidate) == first
    assert "is already recorded; reusing it" in caplog.text

    champion, _ = registry.versions.register(world_spec, champion_run, champion_uri, {})
    registry.versions.promote(world_spec, champion, None)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="retrainer.pipeline.evaluate"):
        again = evaluate(world, plan, candidate)
    assert "champion moved from vNone to v1 since run" in caplog.text
    assert again.champion_version == champion and again.champion == pytest.approx(again.candidate)  # the same model
    assert again.delta_vs_champion == pytest.approx(0.0, abs=1e-6) and any(s.judged for s in again.slices)
    assert registry.runs.tags(run_id)[schema.GATE_CHAMPION_VERSION] == champion

    own, _ = registry.versions.register(world_spec, run_id, uri, {})
    registry.versions.promote(world_spec, own, champion)  # the candidate is the champion now
    assert registry.versions.alias(world_spec, CHAMPION) == own
    assert evaluate(world, plan, candidate) == again  # never a comparison with itself


def test_a_verdict_is_reused_only_under_the_spec_it_was_judged_with(
    world: Settings,
    world_spec: DatasetSpec,
    bike_trained: training.TrainResult,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The gate's margin changed after a run was evaluated: its rerun judges again under the new
    spec, and once more only if the spec changes again."""
    import yaml

    plan = plan_of(world)
    run_id, uri = logged(world, world_spec, "manual__1", bike_trained.model, plan)
    candidate = TrainedRun(run_id, uri, False)
    first = evaluate(world, plan, candidate)
    assert first.passed

    path = world.spec_path("bike_sharing")
    raw = yaml.safe_load(path.read_text())
    raw["gate"]["baseline_margin"] = 0.99  # 99% better than the baseline: no model here is
    path.write_text(yaml.safe_dump(raw))
    with caplog.at_level(logging.WARNING, logger="retrainer.pipeline.evaluate"):
        again = evaluate(world, plan, candidate)
    assert f"spec file {path} changed since run {run_id} was evaluated; evaluating again" in caplog.text
    assert not again.passed and "does not beat the baseline by 99%" in again.reasons[0]
    assert again.candidate == pytest.approx(first.candidate)
    registry = Registry(world)
    assert registry.runs.tags(run_id)[schema.GATE_PASSED] == "false"
    assert Evaluation.from_json(registry.runs.load_json(run_id, schema.ARTIFACT_EVALUATION)) == again
    assert evaluate(world, plan, candidate) == again  # the same spec: the recorded verdict
