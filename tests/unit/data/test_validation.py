from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from retrainer.data.batchfile import DataFileError
from retrainer.data.demo_data import corrupt_copy, load_bike_sharing, split_periods, write_batch
from retrainer.data.validation import validate_file
from retrainer.spec.dataset import DatasetSpec


@pytest.fixture(scope="module")
def months(bike_spec: DatasetSpec) -> dict[str, pd.DataFrame]:
    return split_periods(load_bike_sharing(), bike_spec)


def _check(df: pd.DataFrame, spec: DatasetSpec, tmp_path: Path, period: str = "2011-03"):  # type: ignore[no-untyped-def]
    path = write_batch(df, spec, tmp_path / f"{period}.csv")
    return validate_file(path, spec, period)


def test_unlabelled_rows_pass_up_to_the_targets_null_rate(
    months: dict[str, pd.DataFrame], bike_spec: DatasetSpec, tmp_path: Path
) -> None:
    from dataclasses import replace

    month = months["2011-03"].copy()
    month.loc[month.index[::25], "cnt"] = None  # 4% of the rows without a label
    refused = _check(month, bike_spec, tmp_path)
    assert not refused.success and any("'cnt'" in f and "missing" in f for f in refused.failures), refused.failures
    lenient = replace(bike_spec, target=replace(bike_spec.target, max_null_rate=0.05))
    assert _check(month, lenient, tmp_path).success
    assert not _check(month, replace(lenient, target=replace(lenient.target, max_null_rate=0.03)), tmp_path).success


def test_unseen_categories_pass_up_to_their_share_and_are_reported(
    months: dict[str, pd.DataFrame], bike_spec: DatasetSpec, tmp_path: Path
) -> None:
    """One value outside a feature's categories quarantines nothing when the spec tolerates a
    share of them (max_unseen_rate): the model reads them as unseen, and the report says so."""
    from dataclasses import replace

    month = months["2011-03"].copy()
    month.loc[month.index[:5], "weathersit"] = "Sandstorm"
    refused = _check(month, bike_spec, tmp_path)
    assert not refused.success
    assert any("'weathersit': 5 values (0.7%) not among the allowed categories" in f for f in refused.failures)
    tolerant = replace(
        bike_spec,
        features=tuple(replace(f, max_unseen_rate=0.01) if f.name == "weathersit" else f for f in bike_spec.features),
    )
    accepted = _check(month, tolerant, tmp_path)
    assert accepted.success, accepted.failures
    assert accepted.notes == [
        "column 'weathersit': 5 values (0.7%) not among the categories, e.g. ['Sandstorm']: the model reads them "
        "as unseen (its out-of-vocabulary slot); at most 1.0% allowed"
    ]
    assert "Sandstorm" in accepted.summary()
    month.loc[month.index[:20], "weathersit"] = "Sandstorm"  # 2.7%: over the share
    over = _check(month, tolerant, tmp_path)
    assert not over.success and "at most 1.0% allowed" in over.failures[0]


def test_rows_are_unique_by_the_specs_key(
    months: dict[str, pd.DataFrame], bike_spec: DatasetSpec, tmp_path: Path
) -> None:
    """By default no two rows of a batch share a timestamp; event data (many rows at one time)
    declares its key (unique_by: [time, ...]) or none at all (unique_by: [])."""
    from dataclasses import replace

    month = months["2011-03"]
    events = pd.concat([month, month.iloc[:6].assign(weathersit="Mist")], ignore_index=True)
    refused = _check(events, bike_spec, tmp_path)
    assert any("column 'timestamp': 12 rows share a value with another row" in f for f in refused.failures)
    keyed = replace(bike_spec, unique_by=("timestamp", "weathersit"))
    assert (month.iloc[:6]["weathersit"] != "Mist").all()  # so each added row differs in the key
    assert _check(events, keyed, tmp_path).success
    twice = pd.concat([month, month.iloc[:3]], ignore_index=True)
    failures = _check(twice, keyed, tmp_path).failures
    assert any("columns (timestamp, weathersit): 6 rows share their values with another row" in f for f in failures)
    assert _check(twice, replace(bike_spec, unique_by=()), tmp_path).success


def test_good_month_passes(months: dict[str, pd.DataFrame], bike_spec: DatasetSpec, tmp_path: Path) -> None:
    report = _check(months["2011-03"], bike_spec, tmp_path)
    assert report.success, report.failures
    assert report.evaluated > 30
    assert report.gx_result["success"] is True


def test_real_defect_of_the_source_data(
    months: dict[str, pd.DataFrame], bike_spec: DatasetSpec, tmp_path: Path
) -> None:
    """July 2011 of the packaged copy has 10.6% of its weather values missing (limit 10%)."""
    report = _check(months["2011-07"], bike_spec, tmp_path, "2011-07")
    assert not report.success
    assert report.failures == ["column 'weathersit': 10.6% missing (79 rows), at most 10.0% allowed"]


def test_corrupted_copy_is_caught_with_reasons(
    months: dict[str, pd.DataFrame], bike_spec: DatasetSpec, tmp_path: Path
) -> None:
    report = _check(corrupt_copy(months["2011-03"], bike_spec), bike_spec, tmp_path)
    text = " | ".join(report.failures)
    assert not report.success
    assert "column 'timestamp': 48 rows share a value" in text
    assert "column 'temp'" in text and "outside [-15.0, 45.0]" in text
    assert "column 'weathersit'" in text and "missing" in text
    assert "row count 754" in text


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        (lambda d: d.drop(columns=["hum"]), "column 'hum' is missing"),
        (lambda d: d.assign(season="monsoon"), "not among the allowed categories"),
        (lambda d: d.assign(hum="high"), "column 'hum': 730 values are not numbers, e.g. ['high']"),
        (lambda d: d.assign(cnt=-5), "column 'cnt'"),
        (lambda d: d.iloc[:100], "row count 100"),
    ],
)
def test_defects_name_what_and_where(  # type: ignore[no-untyped-def]
    months: dict[str, pd.DataFrame], bike_spec: DatasetSpec, tmp_path: Path, damage, expected: str
) -> None:
    report = _check(damage(months["2011-03"].copy()), bike_spec, tmp_path)
    assert not report.success
    assert any(expected in f for f in report.failures), report.failures


def test_timestamps_outside_the_period(months: dict[str, pd.DataFrame], bike_spec: DatasetSpec, tmp_path: Path) -> None:
    report = _check(months["2011-04"], bike_spec, tmp_path, "2011-03")  # April's rows delivered as March
    assert not report.success
    assert any("column 'timestamp'" in f and "outside" in f for f in report.failures)


def test_unparseable_timestamps_are_reported(
    bike_spec: DatasetSpec, months: dict[str, pd.DataFrame], tmp_path: Path
) -> None:
    path = write_batch(months["2011-03"], bike_spec, tmp_path / "x.csv")
    text = path.read_text().splitlines()
    text[5] = "not-a-time" + text[5][text[5].index(",") :]
    path.write_text("\n".join(text) + "\n")
    report = validate_file(path, bike_spec, "2011-03")
    assert "column 'timestamp': 1 values are not ISO 8601 timestamps, e.g. ['not-a-time'] (line 6)" in report.failures


def test_missing_batch_file(bike_spec: DatasetSpec, tmp_path: Path) -> None:
    with pytest.raises(DataFileError, match=r"nope\.csv"):
        validate_file(tmp_path / "nope.csv", bike_spec, "2011-03")
