"""MLflow runs: one experiment per model, one run per Airflow run found again by its tags (a
retry reuses it), and what a run holds: tags, metrics, JSON artifacts, links to them."""

from __future__ import annotations

import logging
import time

import mlflow
import pytest

from retrainer import schema
from retrainer.records import RunContext
from retrainer.registry import links
from retrainer.registry.runs import Runs
from retrainer.registry.session import Session
from retrainer.settings import Settings
from retrainer.spec.dataset import DatasetSpec

CTX = RunContext("retrain_model", "manual__1", trigger="drift: 6/10 drifted")


def test_one_experiment_per_model_with_its_artifacts_under_the_settings(
    settings: Settings, bike_spec: DatasetSpec
) -> None:
    runs = Runs(Session(settings))
    exp_id = runs.experiment_id(bike_spec)
    assert runs.experiment_id(bike_spec) == exp_id == runs.experiment_id_named("bike_demand")  # made once
    exp = runs.client.get_experiment(exp_id)
    assert exp.name == "bike_demand"
    assert exp.artifact_location == f"file://{settings.mlflow_artifacts}/bike_demand"
    assert exp.tags[schema.EXPERIMENT_KIND] == schema.EXPERIMENT_KIND_ML
    assert runs.experiment_id_named("bike_demand-reproductions") != exp_id


def test_an_airflow_run_has_one_mlflow_run_and_a_retry_reuses_it(settings: Settings, bike_spec: DatasetSpec) -> None:
    runs = Runs(Session(settings))
    run_id, created = runs.get_or_create(bike_spec, CTX, {"k": "first"}, what="train bike_sharing v0003")
    tags = runs.tags(run_id)
    assert created and tags["k"] == "first"
    assert {k: tags[k] for k in schema.context_tags(CTX)} == schema.context_tags(CTX)
    assert tags[schema.RUN_NAME] == "train bike_sharing v0003 · manual · retrain_model:manual__1"
    retry = RunContext("retrain_model", "manual__1", try_number=3)
    assert runs.get_or_create(bike_spec, retry, {"k": "second"}) == (run_id, False)
    assert runs.tags(run_id)[schema.AIRFLOW_TRY_NUMBER] == "3" and runs.tags(run_id)["k"] == "first"
    assert runs.find(bike_spec, CTX) == run_id
    assert runs.find(bike_spec, RunContext("retrain_model", "manual__2")) is None
    other, made = runs.get_or_create(bike_spec, RunContext("monitor_drift", "manual__1"), {})
    assert made and other != run_id  # another DAG's run of the same id is another run


def test_runs_of_one_airflow_run_are_told_apart_by_the_tags_matched(settings: Settings, bike_spec: DatasetSpec) -> None:
    runs = Runs(Session(settings))
    training, _ = runs.get_or_create(bike_spec, CTX, {})
    kind = {schema.RUN_KIND: "drift"}
    drift, made = runs.get_or_create(bike_spec, CTX, kind, match=kind)
    assert made and drift != training
    assert runs.find(bike_spec, CTX, kind) == drift
    assert runs.get_or_create(bike_spec, CTX, kind, match=kind) == (drift, False)


def test_of_two_runs_with_the_same_tags_the_first_is_used(
    settings: Settings, bike_spec: DatasetSpec, caplog: pytest.LogCaptureFixture
) -> None:
    runs = Runs(Session(settings))
    exp = runs.experiment_id(bike_spec)
    now = int(time.time() * 1000)
    tags = schema.context_tags(CTX)
    first = runs.client.create_run(exp, start_time=now - 1000, tags=tags).info.run_id
    runs.client.create_run(exp, start_time=now, tags=tags)
    with caplog.at_level(logging.WARNING, logger="retrainer.registry.runs"):
        assert runs.find(bike_spec, CTX) == first
    assert "more than one MLflow run for retrain_model/manual__1; using the first" in caplog.text


def test_what_a_run_holds_is_read_back(settings: Settings, bike_spec: DatasetSpec) -> None:
    runs = Runs(Session(settings))
    run_id, _ = runs.get_or_create(bike_spec, CTX, {})
    with runs.active(run_id) as run:
        assert mlflow.active_run().info.run_id == run_id == run.info.run_id
        mlflow.log_metric("holdout_rmse", 61.5)
        mlflow.log_dict({"passed": True, "reasons": ["a"]}, "evaluation/evaluation.json")
    assert mlflow.active_run() is None  # ended with the block
    assert runs.metrics(run_id) == {"holdout_rmse": 61.5}
    assert runs.load_json(run_id, "evaluation/evaluation.json") == {"passed": True, "reasons": ["a"]}
    assert runs.artifact_link(run, "evaluation/evaluation.json") == links.mlflow_artifacts(
        settings.mlflow_ui_url, run.info.experiment_id, run_id, "evaluation/evaluation.json"
    )
    assert runs.artifact_link(run, "x.html").startswith(f"{settings.mlflow_ui_url}/#/experiments/")


def test_a_missing_artifact_is_an_error_not_an_empty_record(settings: Settings, bike_spec: DatasetSpec) -> None:
    from mlflow.exceptions import MlflowException

    runs = Runs(Session(settings))
    run_id, _ = runs.get_or_create(bike_spec, CTX, {})
    with pytest.raises((MlflowException, OSError)):
        runs.load_json(run_id, "evaluation/evaluation.json")
