"""A spec drafted from sample deliveries: it loads, it accepts the samples, and each choice
(frequency, key, types, ranges, categories, missing rates, rows, tuned checks) follows from
what the samples show, with a comment saying so. The data sets are the test suite's own
(bike, churn, flights), a history dump without period names, and scikit-learn's diabetes data,
which no spec here was written for."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from retrainer.data.batchfile import DataFileError
from retrainer.data.demo_data import write_batch
from retrainer.data.drafting import Draft, draft_spec
from retrainer.data.speccheck import check_files
from retrainer.spec.dataset import DatasetSpec, spec_errors
from tests.datasets import CARRIERS, DELAYS, churn_month, diabetes_weeks, flights_hour


def _loaded(draft: Draft, folder: Path, files: list[Path], partial: tuple[str, ...] = ()) -> DatasetSpec:
    """The draft written, loaded without error, and accepting every sample file (but the
    ``partial`` periods a file holds a part of, refused as incomplete and for nothing else)."""
    path = folder / f"{draft.name}.yaml"
    path.write_text(draft.text)
    assert spec_errors(path) == []
    spec = DatasetSpec.load(path)
    verdicts = check_files(spec, files)
    refused = [v for v in verdicts if not v.accepted]
    assert [v.period for v in refused] == list(partial), [v.render() for v in refused]
    assert all(len(v.failures) == 1 and "is incomplete (coverage)" in v.failures[0] for v in refused)
    return spec


def _comment(draft: Draft, key: str) -> str:
    line = next(line for line in draft.text.splitlines() if line.strip().startswith(f"{key}:"))
    return line.split("#", 1)[1].strip() if "#" in line else ""


@pytest.fixture(scope="module")
def bike_files(bike_months: dict[str, pd.DataFrame], bike_spec: DatasetSpec, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    folder = tmp_path_factory.mktemp("bike")
    return [write_batch(bike_months[p], bike_spec, folder / f"{p}.csv") for p in sorted(bike_months)[:4]]


def test_the_bike_months_draft_a_spec_like_the_shipped_one(bike_files: list[Path], tmp_path: Path) -> None:
    draft = draft_spec(bike_files, "timestamp", "cnt", "bike_drafted")
    spec = _loaded(draft, tmp_path, bike_files)
    assert spec.frequency == "monthly" and spec.unique_by == ("timestamp",) and spec.time_format is None
    seen = max(int(pd.read_csv(f)["cnt"].max()) for f in bike_files)
    assert spec.target.task == "regression" and spec.target.min == 0 and (spec.target.max or 0) > seen
    features = {f.name: f for f in spec.features}
    assert features["hr"].categories[:3] == ("12am", "1am", "2am")  # as they first appear in time
    assert len(features["hr"].categories) == 24 and features["holiday"].categories == ("No", "Yes")
    assert features["weathersit"].max_null_rate > 0 and features["temp"].type == "numeric"
    assert features["hum"].min == 0 and features["hum"].max >= 100
    # dates are kept, not learned; casual and registered riders add up to the target: a leak
    assert spec.ingest.other_columns == ("dteday", "casual", "registered")
    assert "dteday: dates or timestamps: kept, not learned" in _comment(draft, "other_columns")
    assert "casual: reproduces the target together with others (a sum of parts?): a leak" in draft.text
    counts = [len(pd.read_csv(f)) for f in bike_files]
    assert spec.min_rows <= min(counts) <= max(counts) <= (spec.max_rows or 0)
    assert _comment(draft, "rows").startswith(f"seen {min(counts)} to {max(counts)} rows a period")
    assert _comment(draft, "temp").startswith("seen ") and _comment(draft, "unique_by")
    assert (spec.training.window_periods, spec.training.holdout_periods) == (3, 1)  # 4 months of sample
    assert "python -m retrainer spec check bike_drafted --against" in draft.text
    # one row an hour, every month of the sample 92.5% or more of its hours: a share under that
    assert spec.coverage is not None and spec.coverage.step == timedelta(hours=1)
    assert 0.85 <= spec.coverage.min_share < 0.925 and "hold 92.5% to 99.9% of their steps" in draft.text
    # hr and weekday label the hour and the weekday one to one; the riders add up to the count;
    # workingday and season depend on the time too, but not one to one: no relation for them
    assert [r.text for r in spec.relations] == [
        "hr = hour(timestamp)",
        "weekday = weekday(timestamp)",
        "cnt = casual + registered",
    ]


def test_hourly_event_data_gets_its_id_as_key_and_its_classes(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    files = []
    for i, hour in enumerate(f"2024-03-05T{h:02d}" for h in range(8, 12)):
        frame = flights_hour(hour, rng)
        stamp = frame["scheduled_at"] + pd.Timedelta(hours=i % 2)
        frame["scheduled_at"] = stamp.dt.strftime("%Y-%m-%dT%H:%M:%S") + np.where(i % 2, "+01:00", "Z")
        files.append(tmp_path / f"{hour}.csv")
        frame.to_csv(files[-1], index=False)
    draft = draft_spec(files, "scheduled_at", "delay", "flights_drafted")
    spec = _loaded(draft, tmp_path, files)
    assert spec.frequency == "hourly" and spec.unique_by == ("flight_id",)
    assert spec.ingest.other_columns == ("flight_id",)
    assert spec.target.task == "multiclass" and set(spec.target.classes) == set(DELAYS)
    features = {f.name: f for f in spec.features}
    assert set(features["carrier"].categories) == set(CARRIERS)
    assert features["origin"].learn_categories  # more values than a list should hold
    assert "with zones (read as UTC)" in _comment(draft, "time_column")
    assert spec.coverage is None and spec.relations == ()  # events at any minute: no grid, no labels of time


def test_a_binary_target_with_late_labels_and_a_parquet_month(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    files = []
    for period in ("2024-01", "2024-02", "2024-03"):
        frame = churn_month(period, rng)
        files.append(tmp_path / f"{period}.{'parquet' if period == '2024-02' else 'csv'}")
        frame.to_parquet(files[-1]) if period == "2024-02" else frame.to_csv(files[-1], index=False)
    draft = draft_spec(files, "ts", "churned", "churn_drafted")
    spec = _loaded(draft, tmp_path, files)
    assert spec.target.task == "classification" and spec.target.positive == "yes"  # by its name
    assert 0.02 <= spec.target.max_null_rate < 0.1
    spend = next(f for f in spec.features if f.name == "spend")
    assert spend.impute == "median" and 0.02 <= spend.max_null_rate < 0.1
    assert "up to 2.0% missing in a period, filled with the window's median" in _comment(draft, "spend")


def test_a_history_dump_without_period_names_is_split_by_its_rows(
    bike_months: dict[str, pd.DataFrame], bike_spec: DatasetSpec, tmp_path: Path
) -> None:
    """One file of several months, named by nothing: the period whose batches hold enough rows
    (weekly, for hourly rows), and the check judges it a period at a time."""
    history = pd.concat([bike_months[p] for p in ("2011-01", "2011-02")], ignore_index=True)
    dump = write_batch(history, bike_spec, tmp_path / "export.csv")
    draft = draft_spec([dump], "timestamp", "cnt", "bike_dump")
    assert draft.data["frequency"] == "weekly"
    spec = _loaded(draft, tmp_path, [dump], partial=("2010-W52", "2011-W09"))  # its first and last week
    assert any("begins or ends inside a period (2010-W52, 2011-W09)" in n for n in draft.notes)
    verdicts = check_files(spec, [dump])
    assert len(verdicts) >= 8 and verdicts[0].source == f"{dump} rows of 2010-W52"


def test_a_key_of_three_columns_day_first_dates_and_windows_1252(tmp_path: Path) -> None:
    """Event data unique only by time, store and item; a producer on Windows writing day-first."""
    rng = np.random.default_rng(5)
    files = []
    for week, start in (("2024-W10", "2024-03-04"), ("2024-W11", "2024-03-11"), ("2024-W12", "2024-03-18")):
        stamps = pd.Timestamp(start) + pd.to_timedelta(rng.integers(0, 7 * 24, 400), unit="h")
        frame = pd.DataFrame(
            {
                "sold_at": stamps.strftime("%d/%m/%Y %H:%M"),
                "store": rng.choice(["Zürich", "Genève", "Bâle"], 400),
                "item": rng.integers(1, 60, 400),
                "price": rng.uniform(1, 50, 400).round(2),
                "units": rng.integers(0, 30, 400),
            }
        ).drop_duplicates(["sold_at", "store", "item"])
        files.append(tmp_path / f"{week}.csv")
        frame.to_csv(files[-1], index=False, encoding="cp1252")
    draft = draft_spec(files, "sold_at", "units", "sales", task="regression")
    spec = _loaded(draft, tmp_path, files)
    assert spec.time_format == "%d/%m/%Y %H:%M" and spec.ingest.encoding == "cp1252"
    assert spec.frequency == "weekly" and spec.unique_by[0] == "sold_at" and len(spec.unique_by) == 3
    assert set(spec.unique_by) == {"sold_at", "store", "item"}
    assert "day first" in _comment(draft, "time_format")


def test_seasonal_columns_get_their_checks_tuned_and_a_leak_is_kept_out(tmp_path: Path) -> None:
    """A snowfall column that is 0 all summer and a rain column whose spread jumps 30x: the
    draft switches the constant check off for the one, widens the other's limit, and says why;
    a column that equals the target is kept out of the features."""
    rng = np.random.default_rng(9)
    files = []
    for month in range(1, 9):
        n = 300
        snow = rng.uniform(0, 20, n) if month in (1, 2, 3) else np.zeros(n)
        rain = rng.uniform(0, 1, n) * (30 if month == 6 else 1)
        temp = rng.normal(5 * month, 3, n)
        rides = (200 + 10 * temp - 5 * snow - 20 * rain + rng.normal(0, 10, n)).round()
        stamps = pd.Timestamp(f"2024-{month:02d}-01") + pd.to_timedelta(rng.choice(27 * 24 * 60, n, False), "min")
        frame = pd.DataFrame({"at": stamps, "snow": snow, "rain": rain, "temp": temp, "rides": rides})
        frame["rides_copy"] = frame["rides"]
        files.append(tmp_path / f"2024-{month:02d}.csv")
        frame.to_csv(files[-1], index=False)
    draft = draft_spec(files, "at", "rides", "rides")
    spec = _loaded(draft, tmp_path, files)
    features = {f.name: f for f in spec.features}
    assert features["snow"].checks == (("constant_feature", False),)
    assert "constant in 2024-04" in _comment(draft, "snow") and "seasonal" in _comment(draft, "snow")
    assert features["rain"].max_scale_change is not None and features["rain"].max_scale_change > 20
    assert "its spread moved" in _comment(draft, "rain") and features["temp"].checks == ()
    assert "rides_copy" not in features and "rides_copy" in spec.ingest.other_columns
    assert any("'rides_copy' equals the target" in n for n in draft.notes)


def test_a_data_set_nobody_wrote_a_spec_for(tmp_path: Path) -> None:
    """scikit-learn's diabetes data, delivered weekly: a regression spec that loads and accepts it."""
    files = []
    for week, frame in diabetes_weeks().items():
        files.append(tmp_path / f"{week}.csv")
        frame.to_csv(files[-1], index=False)
    draft = draft_spec(files, "visited_at", "progression", "diabetes")
    spec = _loaded(draft, tmp_path, files)
    assert spec.frequency == "weekly" and spec.target.task == "regression" and len(spec.features) == 10
    assert "2 whole values: a code?" in _comment(draft, "sex")
    assert (spec.training.window_periods, spec.training.holdout_periods) == (7, 1)  # the sample's 8 weeks


def test_names_a_model_cannot_take_are_kept_not_learned(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "at": pd.date_range("2024-01-01", periods=60, freq="h"),
            "mean radius": np.linspace(1, 2, 60),
            "ok": np.linspace(0, 1, 60),
            "y": np.random.default_rng(0).uniform(5, 9, 60),
        }
    )
    frame.to_csv(tmp_path / "2024-01-01.csv", index=False)
    draft = draft_spec([tmp_path / "2024-01-01.csv"], "at", "y", "radii")
    assert list(draft.data["features"]) == ["ok"] and draft.data["ingest"]["other_columns"] == ["mean radius"]
    assert any("deliver the column as e.g. 'mean_radius'" in n for n in draft.notes)
    with pytest.raises(DataFileError, match="no column is left to learn from: mean radius: not learned, its name"):
        frame.drop(columns="y").to_csv(tmp_path / "2024-01-02.csv", index=False)
        draft_spec([tmp_path / "2024-01-02.csv"], "at", "ok", "radii")  # with 'ok' the target, nothing is left


def test_a_row_without_its_time_is_named_by_file_and_line(tmp_path: Path) -> None:
    frame = pd.DataFrame({"at": ["2024-01-01T00:00:00", None, "2024-01-01T02:00:00"], "x": [1, 2, 3], "y": [1, 2, 3]})
    frame.to_csv(tmp_path / "2024-01-01.csv", index=False)
    with pytest.raises(DataFileError, match=r"2024-01-01.csv: column 'at' is empty on line\(s\) \[3\]"):
        draft_spec([tmp_path / "2024-01-01.csv"], "at", "y", "x")


@pytest.mark.parametrize(
    ("time", "target", "task", "says"),
    [
        ("when", "y", None, "no column 'when' (its columns: at, label, y)"),
        ("at", "label", None, "target 'label' has 40 distinct values of text: say which task it is"),
        ("at", "label", "regression", "target 'label' is not numeric"),
        ("at", "y", "ranking", "--task 'ranking' is not one of regression, classification, multiclass"),
    ],
)
def test_what_cannot_be_drafted_says_why(tmp_path: Path, time: str, target: str, task: str | None, says: str) -> None:
    frame = pd.DataFrame(
        {"at": pd.date_range("2024-01-01", periods=40, freq="h"), "label": [f"v{i}" for i in range(40)], "y": 1.0}
    )
    frame.to_csv(tmp_path / "sample.csv", index=False)
    with pytest.raises(DataFileError, match=says.replace("(", r"\(").replace(")", r"\)")):
        draft_spec([tmp_path / "sample.csv"], time, target, "x", task=task)
