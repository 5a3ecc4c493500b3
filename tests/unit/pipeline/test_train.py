"""Train: the datasets a run covers, the plan that pins a data version and its window, the window
validated again as read from the registry, and training logged to this Airflow run's MLflow run
(a retry finishes what was cut off and never logs twice)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from retrainer import faults, schema
from retrainer.data.demo_data import write_batch
from retrainer.data.validation import DataValidationError, file_md5
from retrainer.data.versioning import DataRegistry, DataVersionError, DataVersionMovedError
from retrainer.pipeline import train
from retrainer.pipeline.train import NotEnoughDataError, datasets_to_retrain, plan_training, split_run
from retrainer.records import RunContext, TrainingPlan
from retrainer.registry.client import Registry
from retrainer.settings import Settings
from retrainer.spec.dataset import DatasetSpec
from tests.helpers import log_model_entry
from tests.unit.pipeline.conftest import plan_of


@pytest.fixture(scope="module")
def months(bike_months: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    return {k: bike_months[k] for k in ("2011-05", "2011-06", "2011-07")}


def test_a_schedule_before_any_data_has_nothing_to_train(settings: Settings) -> None:
    """A scheduled run (or a backfill) whose interval ends before the first data version is
    skipped for want of data (NotEnoughDataError), not failed; a version named by hand that does
    not exist still fails."""
    from retrainer.pipeline import train

    with pytest.raises(train.NotEnoughDataError, match="nothing to train on for this interval"):
        train.plan_training(settings, "bike_sharing", "latest", as_of="2010-12")
    with pytest.raises(DataVersionError):
        train.plan_training(settings, "bike_sharing", "v0999")


def test_validate_window_judges_every_period_at_the_pinned_version(
    months: dict[str, pd.DataFrame], bike_spec: DatasetSpec, settings: Settings
) -> None:
    from retrainer.pipeline import train

    registry = DataRegistry(settings)
    for period, df in months.items():  # July 2011 misses 10.6% of its weather (limit 10%): versioned here anyway
        path = write_batch(df, bike_spec, Path(settings.landing) / f"{period}.csv")
        version = registry.add_batch(bike_spec, period, path, file_md5(path)).version

    def plan(periods: list[str], rev: str = version.rev) -> TrainingPlan:
        return TrainingPlan(
            dataset="bike_sharing",
            model_name=bike_spec.model_name,
            data_version=version.label,
            data_tag=version.tag,
            data_rev=rev,
            train_periods=periods[:-1],
            holdout_periods=periods[-1:],
            window=len(periods) - 1,
        )

    done = train.validate_window(settings, plan(["2011-05", "2011-06"]))
    assert done.success and done.evaluated == 2 * 43 and done.failures == []
    kept = json.loads(Path(done.result_path).read_text())
    assert [(r["period"], r["source"], r["n_rows"]) for r in kept] == [
        ("2011-05", f"{version.tag}:2011-05", 744),
        ("2011-06", f"{version.tag}:2011-06", 720),
    ]
    with pytest.raises(DataValidationError, match=r"2011-07: column 'weathersit': 10\.6% missing"):
        train.validate_window(settings, plan(["2011-05", "2011-06", "2011-07"]))
    with pytest.raises(DataVersionMovedError):
        train.validate_window(settings, plan(["2011-05", "2011-06"], rev="0" * 40))


KNOWN = {"bike_sharing", "flights"}


@pytest.mark.parametrize(
    ("requests", "asked", "left_out"),
    [
        ([{}], {"bike_sharing": "latest"}, []),  # no dataset: the run's own
        ([{"dataset": "flights", "data_version": "v0003"}, {}], {"bike_sharing": "latest", "flights": "v0003"}, []),
        (
            [{"dataset": "flights", "data_version": "v0003"}, {"dataset": "flights", "data_version": "v0010"}],
            {"flights": "v0010"},
            [],
        ),
        (
            [{"dataset": "flights", "data_version": "v0010"}, {"dataset": "flights", "data_version": "v0003"}],
            {"flights": "v0010"},
            [],
        ),
        ([{"dataset": "flights"}, {"dataset": "flights", "data_version": "v0002"}], {"flights": "v0002"}, []),
        ([{"dataset": "weather"}], {}, ["a request for 'weather': no such dataset spec"]),
        ([{"dataset": 7}], {}, ["a request for 7: no such dataset spec"]),
        (
            [{"dataset": "flights", "data_version": "newest"}],
            {},
            ["a request for flights 'newest': not 'latest' nor a data version like v0007"],
        ),
    ],
)
def test_the_datasets_a_run_covers_each_at_the_newest_version_asked(
    requests: list[dict[str, object]], asked: dict[str, str], left_out: list[str]
) -> None:
    assert datasets_to_retrain(requests, "bike_sharing", KNOWN) == (asked, left_out)


def test_retrain_requests_name_the_datasets_a_run_covers() -> None:
    from retrainer.pipeline.train import datasets_to_retrain

    requests = [
        {"dataset": "flights", "data_version": "v0009"},
        {"reason": "upstream fix"},  # no dataset: the default
        {"dataset": "flights", "data_version": "v0010"},
        {"dataset": "flights"},
        {"dataset": "gone"},
        {"dataset": "bike_sharing", "data_version": "7"},
    ]
    asked, left_out = datasets_to_retrain(requests, "bike_sharing", ["bike_sharing", "flights"])
    assert asked == {"bike_sharing": "latest", "flights": "v0010"}
    assert len(left_out) == 2 and "'gone'" in left_out[0] and "'7'" in left_out[1]
    assert split_run(asked, "bike_sharing") == ("bike_sharing", ["flights"])
    assert split_run(["flights", "daily"], "bike_sharing") == ("daily", ["flights"])
    assert split_run([], "bike_sharing") == (None, [])


def test_a_scheduled_run_retrains_the_datasets_whose_period_ended(tmp_path: object) -> None:
    """A daily schedule with a monthly and a daily spec: the daily one every day, the monthly
    one on the run whose interval holds a month's end; without an interval, every dataset."""
    from pathlib import Path

    import yaml

    from retrainer.pipeline.train import due_datasets
    from retrainer.settings import REPO_ROOT

    specs = Path(str(tmp_path)) / "specs"
    specs.mkdir()
    bike = yaml.safe_load((REPO_ROOT / "include" / "specs" / "bike_sharing.yaml").read_text())
    (specs / "bike_sharing.yaml").write_text(yaml.safe_dump(bike))
    (specs / "daily.yaml").write_text(yaml.safe_dump({**bike, "name": "daily", "frequency": "daily"}))
    s = Settings.from_env({"RETRAINER_HOME": str(tmp_path), "RETRAINER_SPECS_DIR": str(specs)})
    assert due_datasets(s, datetime(2011, 3, 30, tzinfo=UTC), datetime(2011, 3, 31, tzinfo=UTC)) == ["daily"]
    assert due_datasets(s, datetime(2011, 3, 31, tzinfo=UTC), datetime(2011, 4, 1, tzinfo=UTC)) == [
        "bike_sharing",
        "daily",
    ]
    assert due_datasets(s, None, None) == ["bike_sharing", "daily"]
    (specs / "broken.yaml").write_text("name: broken\n")  # no target, no features: does not load
    assert due_datasets(s, datetime(2011, 3, 30, tzinfo=UTC), datetime(2011, 3, 31, tzinfo=UTC)) == ["daily"]


def test_the_plan_pins_the_version_and_holds_out_the_latest_periods(world: Settings) -> None:
    plan = plan_of(world)
    version = DataRegistry(world).latest("bike_sharing")
    assert plan == TrainingPlan(
        dataset="bike_sharing",
        model_name="bike_demand",
        data_version="v0003",
        data_tag="bike_sharing/v0003",
        data_rev=version.rev,
        train_periods=["2011-04", "2011-05"],
        holdout_periods=["2011-06"],
        window=2,
    )
    assert plan_of(world, window=1).train_periods == ["2011-05"]
    backfill = plan_training(world, "bike_sharing", None, as_of="2011-06", backfill=True)
    assert backfill.backfill and backfill.as_of == "2011-06" and backfill.data_version == "v0003"


def test_a_plan_without_enough_periods_says_how_many_it_needs(world: Settings) -> None:
    with pytest.raises(NotEnoughDataError, match=r"bike_sharing/v0002 holds 2 periods of bike_sharing; training needs"):
        plan_training(world, "bike_sharing", "v0002")
    with pytest.raises(NotEnoughDataError, match=r"holds 2 periods of bike_sharing up to 2011-05; .* 2 \+ 1"):
        plan_training(world, "bike_sharing", "latest", as_of="2011-05")
    assert plan_training(world, "bike_sharing", "v0002", window=1).train_periods == ["2011-04"]


def test_versions_trained_on_the_same_window_by_other_runs_are_named(world: Settings, world_spec: DatasetSpec) -> None:
    plan = plan_of(world)
    registry = Registry(world)
    same = {schema.DATA_VERSION: plan.data_version, schema.DATA_TRAIN_PERIODS: ",".join(plan.train_periods)}
    for run, tags in (
        ("scheduled__1", same),
        ("manual__2", same),
        ("manual__3", {**same, schema.DATA_TRAIN_PERIODS: "2011-05"}),  # another window
    ):
        ctx = RunContext("retrain_model", run)
        run_id, uri = log_model_entry(registry, world_spec, ctx)
        registry.versions.register(world_spec, run_id, uri, {**tags, **schema.context_tags(ctx)})
    assert train.trained_by_other_runs(world, plan, RunContext("retrain_model", "manual__2")) == [
        "v1 (run scheduled__1)"
    ]
    assert train.trained_by_other_runs(world, plan, RunContext("retrain_model", "manual__9")) == [
        "v1 (run scheduled__1)",
        "v2 (run manual__2)",
    ]


class Cut(Exception):
    """A process cut off at a fault point."""


def _cut() -> None:
    raise Cut("cut off here")


def test_training_is_logged_once_and_a_retry_finishes_what_was_cut_off(world: Settings) -> None:
    plan = plan_of(world)
    ctx = RunContext("retrain_model", "manual__1")
    validated = train.validate_window(world, plan)
    with faults.hooked("train:model", _cut), pytest.raises(Cut):  # curves logged, the model not yet
        train.train_and_log(world, plan, ctx, validated, epochs=2)
    registry = Registry(world)
    run_id = registry.runs.find(world.load_spec("bike_sharing"), ctx)
    assert run_id is not None and schema.MODEL_URI not in registry.runs.tags(run_id)

    done = train.train_and_log(world, plan, RunContext("retrain_model", "manual__1", try_number=2), validated, epochs=2)
    assert (done.run_id, done.reused) == (run_id, False) and done.epochs_run is not None
    tags, metrics = registry.runs.tags(run_id), registry.runs.metrics(run_id)
    assert tags[schema.MODEL_URI] == done.model_uri and tags[schema.GX_SUCCESS] == "true"
    assert tags[schema.DATASET] == "bike_sharing" and tags[schema.RUN_DATA_VERSION] == "v0003"
    assert tags[schema.TRAINING_SEED] == "42" and schema.CODE_COMMIT in tags
    assert metrics[schema.METRIC_EPOCHS_RUN] == done.epochs_run
    assert metrics[schema.METRIC_GX_EVALUATED] == validated.evaluated
    history = registry.client.get_metric_history(run_id, "loss")
    assert [m.step for m in history] == list(range(done.epochs_run))  # the first try's curves, logged once
    params = registry.client.get_run(run_id).data.params
    assert params["epochs"] == "2" and params[schema.PARAM_TRAIN_PERIODS] == "2011-04,2011-05"
    artifacts = {a.path for a in registry.client.list_artifacts(run_id)}
    assert {"plots", "spec", "validation"} <= artifacts and done.model_uri.startswith("models:/")

    again = train.train_and_log(world, plan, RunContext("retrain_model", "manual__1", try_number=3), validated)
    assert (again.run_id, again.model_uri, again.reused) == (run_id, done.model_uri, True)
