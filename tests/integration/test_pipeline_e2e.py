"""End to end through Airflow: real DAG runs (``dag.test``) over a few small batches.

Real components throughout: Airflow's loader and metadata DB, Great Expectations, DVC
(git + cache + remote), TensorFlow/Keras, the MLflow registry, SavedModel export; and in
the S3 variant a real S3 API on loopback (moto_server) for the DVC remote, the MLflow
artifacts and the model store.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pandas as pd
import pytest
import yaml

from retrainer.data.demo_data import load_bike_sharing, split_periods, write_batch
from retrainer.registry.client import Registry
from retrainer.schema import CHAMPION
from retrainer.serving import modelstore
from retrainer.settings import Settings
from retrainer.spec.dataset import DatasetSpec
from tests.datasets import CARRIERS, DELAYS, churn_month, flights_hour

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]


def _last_asset_event_extra() -> dict[str, Any]:
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        event = session.scalars(
            select(AssetEvent)
            .join(AssetModel, AssetEvent.asset_id == AssetModel.id)
            .where(AssetModel.name == "retrainer_data_versions")
            .order_by(AssetEvent.id.desc())
            .limit(1)
        ).one()
        return dict(event.extra)


def _versions(registry: Registry, model: str) -> list[Any]:
    return registry.client.search_model_versions(f"name = '{model}'")


def test_local_pipeline_quarantines_trains_promotes_deploys(
    make_pipeline: Any, home: Path, bike_batches: dict[str, Path]
) -> None:
    pipe = make_pipeline(2030)
    for period in ("2011-01", "2011-02"):
        run = pipe.ingest("bike_sharing", period, bike_batches[period])
        assert run.state == "success", run.states
    first_at = pipe.clock - timedelta(days=1)

    bad = pipe.ingest("bike_sharing", "2011-03", bike_batches["2011-03-bad"])
    assert bad.state == "failed"
    assert bad.states["quarantine_batch"] == "failed" and bad.states["version_batch"] == "skipped"
    quarantined = list((home / "quarantine" / "bike_sharing" / "2011-03").iterdir())
    assert len(quarantined) == 1
    assert {p.name for p in quarantined[0].iterdir()} == {"2011-03.redelivery.csv", "validation.json"}
    assert not bad.values["validate_batch"]["success"]

    good = pipe.ingest("bike_sharing", "2011-03", bike_batches["2011-03"])  # the next good batch goes through
    assert good.state == "success"
    assert good.values["version_batch"]["data_version"] == "v0003"
    assert good.states["publish"] == "success"
    extra = _last_asset_event_extra()
    assert extra == {
        "dataset": "bike_sharing",
        "data_version": "v0003",
        "period": "2011-03",
        "data_rev": extra["data_rev"],
    }
    assert len(extra["data_rev"]) == 40  # the data registry's commit of v0003

    again = pipe.ingest("bike_sharing", "2011-01", bike_batches["2011-01"], at=first_at)  # rerun of a run
    assert again.values["version_batch"] == {**again.values["version_batch"], "data_version": "v0001", "created": False}
    assert again.states["publish"] == "skipped"  # no second announcement, so no second retraining
    assert bad.states["publish"] == "skipped"

    retrain_at = pipe._next()
    run = pipe.retrain("bike_sharing", "v0003", at=retrain_at)
    assert run.state == "success", run.states
    assert run.values["plan_training"]["train_periods"] == ["2011-01", "2011-02"]
    assert run.values["plan_training"]["holdout_periods"] == ["2011-03"]
    assert run.values["promote"]["promoted"] is True
    assert run.values["verify"]["check"]["max_abs_diff"] < 1e-3
    settings = Settings.from_env()
    registry = Registry(settings)
    registry_spec = settings.load_spec("bike_sharing")
    assert registry.versions.alias(registry_spec, CHAMPION) == "1"
    tags = registry.versions.tags(registry_spec, "1")
    assert tags["data.version"] == "v0003" and tags["gate.passed"] == "true"
    assert tags["promotion.decision"] == "promoted" and tags["deploy.verified"] == "true"
    assert tags["airflow.dag_id"] == "retrain_model" and tags["airflow.run_id"] == run.run_id
    assert (home / "model-store" / "bike_demand" / "1" / "saved_model.pb").is_file()
    assert 'version_labels { key: "stable" value: 1 }' in (home / "model-store" / "models.config").read_text()
    lite = home / "model-store" / "bike_demand" / "tflite" / "1.tflite"
    assert lite.is_file() and int(tags["tflite.size_bytes"]) == lite.stat().st_size
    assert float(tags["tflite.size_ratio_vs_savedmodel"]) < 0.5  # quantized, without the SavedModel's extras
    assert abs(float(tags["tflite.rmse_change"].rstrip("%"))) < 5.0  # the quantized model scores alike
    assert tags["deploy.artifact"] == "savedmodel"  # deploy.tflite is off by default: beside, not served
    assert not (home / "model-store" / "bike_demand" / "1" / "model.tflite").exists()
    mlflow_run = registry.client.get_run(tags["mlflow.run_id"])
    assert mlflow_run.data.params["data_version"] == "v0003"
    assert mlflow_run.data.tags["gx.success"] == "true"
    assert "holdout_rmse" in mlflow_run.data.metrics
    artifacts = {a.path for a in registry.client.list_artifacts(mlflow_run.info.run_id, "plots")}
    assert artifacts == {"plots/learning_curves.png", "plots/holdout.png"}

    rerun = pipe.retrain("bike_sharing", "v0003", at=retrain_at)  # the same Airflow run again
    assert rerun.state == "success"
    assert rerun.values["train"]["reused"] is True
    assert len(_versions(registry, "bike_demand")) == 1
    exp = registry.client.get_experiment_by_name("bike_demand")
    assert len(registry.client.search_runs([exp.experiment_id])) == 1

    pipe.ingest("bike_sharing", "2011-04", bike_batches["2011-04"])
    second = pipe.retrain("bike_sharing", "latest")
    assert second.state == "success", second.states
    evaluated = second.values["evaluate"]
    assert evaluated["champion_version"] == "1" and evaluated["champion"] is not None
    tags2 = registry.versions.tags(registry_spec, "2")
    if second.values["promote"]["promoted"]:
        assert registry.versions.alias(registry_spec, CHAMPION) == "2"
        assert (home / "model-store" / "bike_demand" / "2" / "saved_model.pb").is_file()
        assert modelstore.read_config(home / "model-store")["bike_demand"].labels == {"stable": 2}
    else:  # a losing candidate stays registered, says why, and nothing is deployed
        assert registry.versions.alias(registry_spec, CHAMPION) == "1"
        assert tags2["promotion.decision"] == "rejected" and "champion v1" in tags2["promotion.reason"]
        assert second.states["deploy"] == "skipped" and second.states["verify"] == "skipped"
        assert not (home / "model-store" / "bike_demand" / "2").exists()
        assert modelstore.read_config(home / "model-store")["bike_demand"].labels == {"stable": 1}


def test_retrain_skips_when_there_is_not_enough_data(
    make_pipeline: Any, home: Path, bike_batches: dict[str, Path]
) -> None:
    pipe = make_pipeline(2031)
    pipe.ingest("bike_sharing", "2011-01", bike_batches["2011-01"])
    run = pipe.retrain("bike_sharing", "latest")
    assert run.states["plan_training"] == "skipped"
    assert "train" not in run.values


def _classification_spec(specs: Path) -> None:
    spec = {
        "name": "churn",
        "model_name": "churn_model",
        "time_column": "ts",
        "target": {"column": "churned", "task": "classification", "positive": "yes", "max_null_rate": 0.05},
        "features": {
            "tenure": {"type": "numeric", "min": 0, "max": 120},
            "spend": {"type": "numeric", "min": 0, "max": 1000, "max_null_rate": 0.05, "impute": "mean"},
            "plan": {"type": "categorical", "categories": ["basic", "plus", "pro"], "max_null_rate": 0.05},
        },
        "rows": {"min": 300, "max": 1000},
        "training": {"window_periods": 2, "epochs": 15, "batch_size": 64, "learning_rate": 0.01, "hidden_units": [16]},
        "gate": {"metric": "log_loss", "baseline_margin": 0.1},
    }
    specs.mkdir(parents=True, exist_ok=True)
    (specs / "churn.yaml").write_text(yaml.safe_dump(spec))


def test_binary_classification_end_to_end(make_pipeline: Any, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _classification_spec(home / "specs")
    monkeypatch.setenv("RETRAINER_SPECS_DIR", str(home / "specs"))
    spec = Settings.from_env().load_spec("churn")
    rng = np.random.default_rng(0)
    pipe = make_pipeline(2032)
    # a new spec file is a new dataset: once the DAGs are parsed again, their Params offer it
    from retrainer_dev.runner import load_dags

    pipe.dags = load_dags()
    assert "churn" in pipe.dags["retrain_model"].params.get_param("dataset").schema["enum"]
    for period in ("2024-01", "2024-02", "2024-03"):
        batch = write_batch(churn_month(period, rng), spec, home / "landing" / f"churn-{period}.csv")
        if period == "2024-02":  # this team's export writes Parquet: read by its extension
            batch = batch.with_suffix(".parquet")
            churn_month(period, np.random.default_rng(2)).to_parquet(batch)
        assert pipe.ingest("churn", period, batch).state == "success"
    run = pipe.retrain("churn", "latest")
    assert run.state == "success", run.states
    evaluated = run.values["evaluate"]
    assert evaluated["metric"] == "log_loss" and evaluated["passed"]
    assert evaluated["candidate_metrics"]["auc"] > 0.75
    assert run.values["promote"]["promoted"]
    store = home / "model-store" / "churn_model" / "1"
    assert (store / "saved_model.pb").is_file()
    assert run.values["verify"]["check"]["max_abs_diff"] < 1e-3
    # the rows not labelled yet passed validation (within target.max_null_rate), trained and
    # judged nothing, and were counted on the run
    mlflow_run = Registry(Settings.from_env()).client.get_run(run.values["train"]["run_id"])
    assert int(mlflow_run.data.params["n_unlabelled"]) == 2 * (500 // 50)
    assert mlflow_run.data.metrics["holdout_unlabelled_rows"] == 500 // 50
    assert evaluated["n_holdout"] == 500 - 500 // 50
    assert mlflow_run.data.params["impute.spend"].startswith("mean ")


@pytest.mark.s3
def test_pipeline_on_s3(
    make_pipeline: Any, home: Path, bike_batches: dict[str, Path], s3_env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = s3_env
    monkeypatch.setenv("RETRAINER_DVC_REMOTE", f"s3://{bucket}/dvc")
    monkeypatch.setenv("RETRAINER_MLFLOW_ARTIFACTS", f"s3://{bucket}/mlflow")
    # the model store comes from the Airflow Variable retrainer_settings (here from Airflow's
    # environment-variable secrets backend), which overrides the worker's environment
    monkeypatch.setenv("RETRAINER_MODEL_STORE", str(home / "not-used"))
    monkeypatch.setenv("AIRFLOW_VAR_RETRAINER_SETTINGS", json.dumps({"RETRAINER_MODEL_STORE": f"s3://{bucket}/models"}))
    pipe = make_pipeline(2033)
    for period in ("2011-01", "2011-02"):
        assert pipe.ingest("bike_sharing", period, bike_batches[period]).state == "success"
    assert pipe.ingest("bike_sharing", "2011-03", bike_batches["2011-03-bad"]).state == "failed"
    assert pipe.ingest("bike_sharing", "2011-03", bike_batches["2011-03"]).state == "success"
    run = pipe.retrain("bike_sharing", "latest")
    assert run.state == "success", run.states
    assert run.values["deploy"]["location"] == f"s3://{bucket}/models/bike_demand/1"

    s3 = boto3.client("s3")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="")["Contents"]]
    dvc_objects = [k for k in keys if k.startswith("dvc/")]
    assert len(dvc_objects) == 3  # three accepted batches, one object each; nothing from quarantine
    assert "models/bike_demand/1/saved_model.pb" in keys and "models/models.config" in keys
    assert "models/bike_demand/tflite/1.tflite" in keys
    assert any(k.startswith("models/bike_demand/1/variables/") for k in keys)
    assert any(k.startswith("mlflow/") and k.endswith("learning_curves.png") for k in keys)
    assert not (home / "dvc-remote").exists() and not (home / "not-used").exists()


def _retrained(pipe: Any, dataset: str, train: list[str], holdout: list[str]) -> tuple[Any, dict[str, Any]]:
    """A retraining on the latest data: it succeeded on the periods it should, and its evaluation
    (printed, for the figures a note quotes)."""
    run = pipe.retrain(dataset, "latest")
    assert run.state == "success", run.states
    plan = run.values["plan_training"]
    assert plan["train_periods"] == train and plan["holdout_periods"] == holdout
    evaluated = run.values["evaluate"]
    print(f"\n{dataset} evaluation:", {k: evaluated[k] for k in ("candidate_metrics", "baseline_metrics", "n_holdout")})
    return run, evaluated


def _daily_bike_spec(specs: Path) -> DatasetSpec:
    """The bike data delivered a day at a time (about 24 hourly rows a day): windows and
    holdouts in days."""
    spec = yaml.safe_load((REPO / "include" / "specs" / "bike_sharing.yaml").read_text())
    spec.update(name="bike_daily", model_name="bike_daily_demand", frequency="daily")
    spec["rows"] = {"min": 18, "max": 24}  # a day of hours, a few hours may be missing
    spec["coverage"] = {"step": "1h", "min_share": 0.75}  # as rows.min: 18 of a day's 24 hours
    for col in ("weekday", "weathersit"):  # a share of a day's 24 rows: 2 to 4 missing happens
        spec["features"][col]["max_null_rate"] = 0.25
    spec["training"].update(window_periods=7, holdout_periods=2, epochs=30)
    spec["gate"].update(baseline_margin=0.05, min_slice_rows=12)
    specs.mkdir(parents=True, exist_ok=True)
    (specs / "bike_daily.yaml").write_text(yaml.safe_dump(spec))
    return DatasetSpec.load(specs / "bike_daily.yaml")


def test_daily_regression_end_to_end(
    make_pipeline: Any, home: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A daily data set: batches named by day, a month's name refused, a day delivered under
    another day's name quarantined, a window of 7 days and a holdout of 2 days trained, judged,
    promoted and served."""
    spec = _daily_bike_spec(home / "specs")
    monkeypatch.setenv("RETRAINER_SPECS_DIR", str(home / "specs"))
    days = split_periods(load_bike_sharing(), spec)
    june = [d for d in days if d.startswith("2011-06-")][:9]
    assert june[0] == "2011-06-01" and june[-1] == "2011-06-09"
    pipe = make_pipeline(2034)
    from retrainer_dev.runner import load_dags

    pipe.dags = load_dags()
    landing = home / "landing" / "bike_daily"
    batches = {d: write_batch(days[d], spec, landing / f"{d}.csv") for d in june}

    month = pipe.ingest("bike_daily", "2011-06", batches["2011-06-01"])  # a monthly name for daily data
    assert month.states["validate_batch"] == "failed" and month.states["version_batch"] != "success"
    assert "period '2011-06' is not daily (it is written as a monthly period)" in caplog.text
    shifted = pipe.ingest("bike_daily", "2011-06-02", batches["2011-06-01"])  # the 1st's rows named the 2nd
    assert shifted.states["quarantine_batch"] == "failed"
    assert any("timestamp" in f for f in shifted.values["validate_batch"]["failures"])
    for day in june:
        run = pipe.ingest("bike_daily", day, batches[day])
        assert run.state == "success", (day, run.states)
    assert run.values["version_batch"]["data_version"] == "v0009"

    run, evaluated = _retrained(pipe, "bike_daily", june[:7], june[7:])
    assert evaluated["metric"] == "rmse" and evaluated["n_holdout"] == sum(len(days[d]) for d in june[7:])
    assert evaluated["passed"], evaluated
    assert run.values["promote"]["promoted"]
    assert (home / "model-store" / "bike_daily_demand" / "1" / "saved_model.pb").is_file()
    assert run.values["verify"]["check"]["max_abs_diff"] < 1e-3


def _flights_spec(specs: Path) -> DatasetSpec:
    """Event data delivered by the hour: many flights per timestamp (unique by flight id), a
    three-class target."""
    spec = {
        "name": "flights",
        "model_name": "flight_delay",
        "time_column": "scheduled_at",
        "frequency": "hourly",
        "unique_by": ["flight_id"],
        "target": {"column": "delay", "task": "multiclass", "classes": DELAYS},
        "features": {
            "carrier": {"type": "categorical", "categories": CARRIERS},
            # 120 airports, too many to list: the 40 most frequent of each window are learned
            "origin": {"type": "categorical", "categories": "learn", "max_categories": 40},
            "distance": {"type": "numeric", "min": 50, "max": 5000},
            "load": {"type": "numeric", "min": 0, "max": 1},
        },
        "rows": {"min": 100, "max": 400},
        "ingest": {"other_columns": ["flight_id"]},  # kept in the data versions, not a feature
        "training": {
            "window_periods": 6,
            "holdout_periods": 2,
            "epochs": 25,
            "batch_size": 64,
            "learning_rate": 0.01,
            "hidden_units": [16],
        },
        "gate": {"metric": "log_loss", "baseline_margin": 0.05, "slices": ["carrier"], "min_slice_rows": 20},
        # served from its TFLite model (the quantized model's log-loss is within a few percent)
        "deploy": {"tflite": True, "tflite_max_change": 0.25},
    }
    specs.mkdir(parents=True, exist_ok=True)
    (specs / "flights.yaml").write_text(yaml.safe_dump(spec))
    return DatasetSpec.load(specs / "flights.yaml")


def test_hourly_event_data_multiclass_end_to_end(
    make_pipeline: Any, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Event data by the hour: many rows per timestamp, zoned timestamps, three classes, judged
    by log-loss (accuracy and macro-F1 recorded), slices per carrier, served as class
    probabilities and checked through the model server and the TFLite artifact."""
    spec = _flights_spec(home / "specs")
    monkeypatch.setenv("RETRAINER_SPECS_DIR", str(home / "specs"))
    pipe = make_pipeline(2035)
    from retrainer_dev.runner import load_dags

    pipe.dags = load_dags()
    rng = np.random.default_rng(7)
    hours = [f"2024-03-05T{h:02d}" for h in range(8, 16)]
    landing = home / "landing" / "flights"
    landing.mkdir(parents=True)
    for i, hour in enumerate(hours):
        frame = flights_hour(hour, rng)
        batch = landing / f"{hour}.csv"
        if i % 2:  # this producer writes UTC with a Z, the other an offset of one hour
            frame["scheduled_at"] = frame["scheduled_at"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
        else:
            frame["scheduled_at"] = (frame["scheduled_at"] + pd.Timedelta(hours=1)).dt.strftime(
                "%Y-%m-%dT%H:%M:%S+01:00"
            )
        frame.to_csv(batch, index=False)
        run = pipe.ingest("flights", hour, batch)
        assert run.state == "success", (hour, run.states, run.values.get("validate_batch"))

    unknown = flights_hour("2024-03-05T16", rng).assign(delay="cancelled")  # a class the spec does not list
    unknown.to_csv(landing / "2024-03-05T16.csv", index=False)
    refused = pipe.ingest("flights", "2024-03-05T16", landing / "2024-03-05T16.csv")
    assert refused.states["quarantine_batch"] == "failed"
    assert any("'delay'" in f and "cancelled" in f for f in refused.values["validate_batch"]["failures"])

    run, evaluated = _retrained(pipe, "flights", hours[:6], hours[6:])
    assert evaluated["metric"] == "log_loss" and evaluated["passed"], evaluated
    assert set(evaluated["candidate_metrics"]) == {"log_loss", "accuracy", "macro_f1"}
    assert evaluated["candidate_metrics"]["accuracy"] > evaluated["baseline_metrics"]["accuracy"]
    assert {s["value"] for s in evaluated["slices"]} == set(CARRIERS)
    assert run.values["promote"]["promoted"]
    assert run.values["verify"]["check"]["max_abs_diff"] < 1e-3
    tags = Registry(Settings.from_env()).versions.tags(spec, "1")
    assert tags["deploy.verified"] == "true" and "tflite.log_loss_change" in tags
    assert tags["deploy.artifact"] == "tflite", tags  # checked against the TFLite model's answers
    assert (home / "model-store" / "flight_delay" / "1" / "saved_model.pb").is_file()
    assert (home / "model-store" / "flight_delay" / "1" / "model.tflite").is_file()
    params = Registry(Settings.from_env()).client.get_run(tags["mlflow.run_id"]).data.params
    assert params["categories.origin"].startswith("learned 40 of ")  # the cap held; the tail shares one slot

    from retrainer.serving import rest

    server = rest.ModelServer(home / "model-store")
    assert server.served_version("flight_delay", 1).artifact == "tflite"
    rows = [
        {"carrier": "WN", "origin": "AMX", "distance": 300.0, "load": 0.95},
        {"carrier": "DL", "origin": "ZZZ", "distance": 4000.0, "load": 0.05},  # an airport never seen
    ]
    answer = server.predict("flight_delay", {"instances": rows})
    assert answer["classes"] == DELAYS  # each row's probabilities, in this order
    probs = np.asarray(answer["predictions"])
    assert probs.shape == (2, 3) and np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert np.argmax(probs[0]) == DELAYS.index("very_late") and np.argmax(probs[1]) == DELAYS.index("on_time")
    # deployed with its request contract: an unknown carrier is refused, an unseen airport is not
    # (its categories are learned: the out-of-vocabulary slot takes it)
    with pytest.raises(rest.RequestError, match="instance 0, field 'carrier': \"XX\" is not a category"):
        server.predict("flight_delay", {"instances": [rows[0] | {"carrier": "XX"}]})
