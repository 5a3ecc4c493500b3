"""A spec checked against sample deliveries: each file judged by the ingest validation as if
delivered in the order given, against the files accepted before it; nothing versioned."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from retrainer.data.demo_data import write_batch
from retrainer.data.speccheck import EARLIER, check_files
from retrainer.spec.dataset import DatasetSpec


@pytest.fixture
def months(bike_months: dict[str, pd.DataFrame], bike_spec: DatasetSpec, tmp_path: Path) -> dict[str, Path]:
    return {p: write_batch(bike_months[p], bike_spec, tmp_path / f"{p}.csv") for p in ("2011-01", "2011-02")}


def test_good_deliveries_would_be_versioned_and_nothing_is_written(
    months: dict[str, Path], bike_spec: DatasetSpec, home: Path
) -> None:
    verdicts = check_files(bike_spec, list(months.values()))
    assert [(v.period, v.accepted) for v in verdicts] == [("2011-01", True), ("2011-02", True)]
    assert verdicts[0].render().endswith("(2011-01, 688 rows): would be versioned")
    assert not (home / "data-registry").exists() and not (home / "quarantine").exists()


def test_a_unit_change_is_judged_against_the_files_before_it(
    months: dict[str, Path], bike_months: dict[str, pd.DataFrame], bike_spec: DatasetSpec, tmp_path: Path
) -> None:
    march = bike_months["2011-03"].assign(hum=bike_months["2011-03"]["hum"] / 100)
    bad = write_batch(march, bike_spec, tmp_path / "2011-03.csv")
    *_, verdict = check_files(bike_spec, [*months.values(), bad])
    assert not verdict.accepted
    (failure,) = verdict.failures
    assert failure.startswith("column 'hum': its values spread") and EARLIER in failure
    assert "would be QUARANTINED:\n    - column 'hum'" in verdict.render()
    (alone,) = check_files(bike_spec, [bad])  # nothing before it: nothing to compare with
    assert alone.accepted


def test_a_file_named_in_another_frequency_is_refused_saying_so(
    months: dict[str, Path], bike_spec: DatasetSpec
) -> None:
    daily = replace(bike_spec, frequency="daily")
    (verdict,) = check_files(daily, [months["2011-01"]])
    assert not verdict.accepted and verdict.period == "?"
    assert "its name gives the period '2011-01', but period '2011-01' is not daily" in verdict.failures[0]


def test_a_file_of_several_periods_is_judged_a_period_at_a_time(
    bike_months: dict[str, pd.DataFrame], bike_spec: DatasetSpec, tmp_path: Path
) -> None:
    both = pd.concat([bike_months["2011-01"], bike_months["2011-02"]], ignore_index=True)
    dump = write_batch(both, bike_spec, tmp_path / "history.csv")
    verdicts = check_files(bike_spec, [dump])
    assert [(v.source, v.period, v.n_rows) for v in verdicts] == [
        (f"{dump} rows of 2011-01", "2011-01", 688),
        (f"{dump} rows of 2011-02", "2011-02", 649),
    ]
    assert all(v.accepted for v in verdicts)


def test_an_unreadable_file_is_quarantined_with_its_reason(bike_spec: DatasetSpec, tmp_path: Path) -> None:
    (tmp_path / "2011-04.csv").write_bytes(b"\x00\x01binary")
    (verdict,) = check_files(bike_spec, [tmp_path / "2011-04.csv"])
    assert not verdict.accepted and "binary data, not CSV text" in verdict.failures[0]


def test_a_file_without_the_time_column_says_so(bike_spec: DatasetSpec, tmp_path: Path) -> None:
    pd.DataFrame({"when": ["2011-01-01T00:00:00"], "cnt": [1]}).to_csv(tmp_path / "export.csv", index=False)
    (verdict,) = check_files(bike_spec, [tmp_path / "export.csv"])
    assert not verdict.accepted and verdict.failures == [
        "no column 'timestamp' (the spec's time_column) to tell its period: when, cnt"
    ]
