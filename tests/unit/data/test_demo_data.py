"""The demo data (UCI Bike Sharing, read from an installed package) and how a table becomes
period batches, written as a data producer would deliver them."""

from __future__ import annotations

import sysconfig
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from retrainer.data.batchfile import DataFileError
from retrainer.data.demo_data import (
    BIKE_CSV_RELATIVE,
    bike_sharing_csv,
    corrupt_copy,
    load_bike_sharing,
    split_periods,
    write_batch,
)
from retrainer.spec.dataset import DatasetSpec

SHUFFLED = """dteday,season,hr,holiday,weekday,workingday,weathersit,temp,atemp,hum,windspeed,casual,registered,cnt
2011-01-02,winter,1am,No,Sun,No,Mist,9.0,7.0,80,0,1,2,3
2011-01-01,winter,12pm,No,,No,Clear,10.0,9.0,70,5,4,5,9
2011-01-01,winter,12am,No,Sat,No,,8.0,6.0,81,0,3,13,16
"""


@pytest.fixture(scope="module")
def months(bike_months: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    return bike_months


def test_bike_data_is_sorted_and_complete(months: dict[str, pd.DataFrame]) -> None:
    assert len(months) == 24
    assert sum(len(m) for m in months.values()) == 17379
    first = months["2011-01"]
    assert first["timestamp"].is_monotonic_increasing


def test_the_csv_is_found_in_the_installed_package() -> None:
    path = bike_sharing_csv()
    assert path.is_file() and path.as_posix().endswith(BIKE_CSV_RELATIVE.as_posix())


def test_without_the_package_the_error_says_how_to_install_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sysconfig, "get_paths", lambda: {"purelib": str(tmp_path), "platlib": str(tmp_path)})
    with pytest.raises(DataFileError, match=r"not found in site-packages; install the data with 'pip install"):
        bike_sharing_csv()


def test_the_table_is_sorted_by_a_timestamp_built_from_date_and_hour(tmp_path: Path) -> None:
    path = tmp_path / "bikes.csv"
    path.write_text(SHUFFLED)
    df = load_bike_sharing(path)
    assert list(df["timestamp"]) == [
        pd.Timestamp("2011-01-01 00:00"),
        pd.Timestamp("2011-01-01 12:00"),
        pd.Timestamp("2011-01-02 01:00"),
    ]
    assert list(df.columns[:2]) == ["timestamp", "dteday"] and list(df.index) == [0, 1, 2]
    assert list(df["hr"]) == ["12am", "12pm", "1am"]  # the hour stays as delivered
    # missing weekday and weather are kept missing, the rest as text (validation decides about them)
    assert df["weekday"].isna().tolist() == [False, True, False] and df.loc[0, "weekday"] == "Sat"
    assert df["weathersit"].isna().tolist() == [True, False, False]


def test_a_missing_data_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(DataFileError, match=r"nope\.csv: data file does not exist"):
        load_bike_sharing(tmp_path / "nope.csv")


def test_a_table_splits_into_its_periods_in_time_order(bike_spec: DatasetSpec, tmp_path: Path) -> None:
    path = tmp_path / "bikes.csv"
    path.write_text(SHUFFLED)
    df = load_bike_sharing(path)
    assert list(split_periods(df, bike_spec)) == ["2011-01"]
    daily = split_periods(df, replace(bike_spec, frequency="daily"))
    assert list(daily) == ["2011-01-01", "2011-01-02"]
    assert [len(g) for g in daily.values()] == [2, 1]
    assert list(daily["2011-01-02"].index) == [0]  # each batch numbered from 0


def test_a_batch_is_written_with_iso_timestamps_in_one_step(
    months: dict[str, pd.DataFrame], bike_spec: DatasetSpec, tmp_path: Path
) -> None:
    march = months["2011-03"]
    path = write_batch(march, bike_spec, tmp_path / "landing" / "bike_sharing" / "2011-03.csv")
    assert path == tmp_path / "landing" / "bike_sharing" / "2011-03.csv"
    assert [p.name for p in path.parent.iterdir()] == ["2011-03.csv"]  # no part file left
    back = pd.read_csv(path)
    assert back["timestamp"].iloc[0] == "2011-03-01T00:00:00" and len(back) == len(march)
    assert list(back.columns) == list(march.columns)
    assert pd.api.types.is_datetime64_any_dtype(march["timestamp"])  # the caller's frame is left as it is


def test_a_corrupt_copy_has_every_defect_and_leaves_the_batch_alone(
    months: dict[str, pd.DataFrame], bike_spec: DatasetSpec
) -> None:
    march = months["2011-03"]
    before = march.copy()
    bad = corrupt_copy(march, bike_spec)
    pd.testing.assert_frame_equal(march, before)
    assert len(bad) == len(march) + 24  # a block of hours twice
    twice = bad.drop(columns="weathersit")
    pd.testing.assert_frame_equal(twice.iloc[-24:].reset_index(drop=True), twice.iloc[:24].reset_index(drop=True))
    np.testing.assert_allclose(bad["temp"].iloc[: len(march)], march["temp"] * 9 / 5 + 32)  # Fahrenheit
    assert bad["weathersit"].iloc[: 7 * 24].isna().all()  # the weather gone for a week
    assert bad["weathersit"].iloc[7 * 24 + 1 :].notna().sum() > 0.9 * (len(bad) - 7 * 24 - 1)
