"""A batch judged by the spec's ``coverage`` and ``relations``: on small frames for each check,
and on the bundled bike data, every real month of which passes the bike spec."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from retrainer.data import rowchecks
from retrainer.data.batchchecks import Reference
from retrainer.data.batchfile import read_delivery
from retrainer.data.demo_data import write_batch
from retrainer.data.validation import validate_file
from retrainer.spec.dataset import DatasetSpec

DAY = "2024-03-05"
LABELS = [f"{h % 12 or 12}{'am' if h < 12 else 'pm'}" for h in range(24)]


def rides_spec(**extra: Any) -> DatasetSpec:
    """Daily batches of hourly rows: a total of two kinds of riders, an hour label, a range."""
    raw = {
        "name": "rides",
        "time_column": "ts",
        "frequency": "daily",
        "target": {"column": "total", "task": "regression"},
        "features": {
            "hr": {"type": "categorical", "categories": "learn"},
            "low": {"type": "numeric"},
            "temp": {"type": "numeric"},
            "high": {"type": "numeric"},
        },
        "ingest": {"other_columns": ["casual", "members"]},
        **extra,
    }
    return DatasetSpec.from_dict(raw)


def day(hours: int = 24, start: str = DAY) -> pd.DataFrame:
    """A day of hourly rows on which every relation holds."""
    ts = pd.date_range(start, periods=hours, freq="1h")
    return pd.DataFrame(
        {
            "ts": ts,
            "hr": [LABELS[t.hour] for t in ts],
            "low": 1.0,
            "temp": 2.5,
            "high": 4.0,
            "casual": list(range(hours)),
            "members": 10,
            "total": [h + 10 for h in range(hours)],
        }
    )


HOURLY = rides_spec(coverage={"step": "1h", "min_share": 0.9, "max_gap": "2h"})


def test_a_whole_period_is_covered() -> None:
    assert rowchecks.coverage_problems(day(), HOURLY, DAY) == []
    assert rowchecks.coverage_problems(day().drop(index=[5, 6]), HOURLY, DAY) == []  # 22 of 24, a gap of 2h


def test_an_incomplete_period_names_its_gap() -> None:
    assert rowchecks.coverage_problems(day(20), HOURLY, DAY) == [
        f"period {DAY} is incomplete (coverage): 4 of its 24 steps of 1h have no row, the first missing"
        f" {DAY}T20:00:00 and the last {DAY}T23:00:00; the longest gap is 4 steps (4h), {DAY}T20:00:00 to"
        f" {DAY}T23:00:00; 0.8333 of the steps hold a row, at least 0.9 required (coverage.min_share); the gap"
        " is longer than 2h (coverage.max_gap)"
    ]
    gappy = day().drop(index=[3, 4, 5])  # 21 of 24 hold a row (0.875), in one gap of 3h
    (reason,) = rowchecks.coverage_problems(gappy, rides_spec(coverage={"step": "1h", "max_gap": "2h"}), DAY)
    assert "the longest gap is 3 steps (3h)" in reason and "coverage.min_share" not in reason


def test_a_count_of_steps_and_timestamps_on_no_grid() -> None:
    """A step coarser than the rows: each counts once (at least 20 distinct days of a month)."""
    month = pd.concat([day(3, f"2024-03-{d:02d}") for d in range(1, 20)], ignore_index=True)
    month["ts"] += pd.Timedelta(minutes=7)
    spec = rides_spec(frequency="monthly", coverage={"step": "1d", "min_steps": 20})
    (reason,) = rowchecks.coverage_problems(month, spec, "2024-03")
    assert reason.startswith("period 2024-03 is incomplete (coverage): 12 of its 31 steps of 1d have no row")
    assert reason.endswith("19 steps hold a row, at least 20 required (coverage.min_steps)")
    more = pd.concat([month, day(1, "2024-03-25")], ignore_index=True)
    assert rowchecks.coverage_problems(more, spec, "2024-03") == []


def test_without_a_coverage_section_nothing_is_judged() -> None:
    assert rowchecks.coverage_problems(day(3), rides_spec(), DAY) == []


def test_a_file_cut_inside_its_last_line_says_so(tmp_path: Path) -> None:
    spec = rides_spec(coverage={"step": "1h"})
    path = write_batch(day(20), spec, tmp_path / f"{DAY}.csv")
    whole = read_delivery(path, spec).frame
    assert whole is not None
    (reason,) = rowchecks.coverage_problems(whole, spec, DAY, path)
    assert "no line end" not in reason
    path.write_text(path.read_text().rstrip("\n")[:-1])  # the last total, 29, cut to 2
    cut = read_delivery(path, spec).frame
    assert cut is not None and cut["total"].iloc[-1] == 2
    (reason,) = rowchecks.coverage_problems(cut, spec, DAY, path)
    assert reason.endswith(
        "; the file's last line (line 21) has no line end: it was cut off there, its last value may be cut too"
    )
    assert rowchecks.unended_last_line(path, spec) == 21


def test_parquet_has_no_lines(tmp_path: Path) -> None:
    path = tmp_path / f"{DAY}.parquet"
    day(3).to_parquet(path)
    assert rowchecks.unended_last_line(path, rides_spec()) is None


SUM = rides_spec(relations=["total = casual + members"])
ORDER = rides_spec(relations=["low <= temp < high"])
HOUR = rides_spec(relations=["hr = hour(ts)"])


def test_relations_hold_on_good_rows() -> None:
    spec = rides_spec(relations=["total = casual + members", "low <= temp < high", "hr = hour(ts)"])
    assert rowchecks.relation_problems(day(), spec, DAY, Reference("v1", {"2024-03-04": day(start="2024-03-04")})) == []


def test_a_broken_sum_names_its_rows_and_values() -> None:
    batch = day()
    batch.loc[[3, 9], "total"] = 5
    assert rowchecks.relation_problems(batch, SUM, DAY) == [
        "relation 'total = casual + members' does not hold in 2 rows (lines 5, 11), e.g. line 5: total 5,"
        " casual 3, members 10 (casual + members = 13)"
    ]
    near = day().assign(total=lambda d: d["total"] + 0.4)
    assert rowchecks.relation_problems(near, SUM, DAY) != []
    assert rowchecks.relation_problems(near, rides_spec(relations=["total = casual + members within 0.5"]), DAY) == []
    decimals = day().assign(casual=0.1, members=0.2, total=0.3)  # 0.1 + 0.2 is 0.30000000000000004
    assert rowchecks.relation_problems(decimals, SUM, DAY) == []


def test_a_broken_order_names_its_rows() -> None:
    batch = day()
    batch.loc[7, "temp"] = 4.0  # temp < high fails
    batch.loc[8, "low"] = None  # a missing operand: not judged
    assert rowchecks.relation_problems(batch, ORDER, DAY) == [
        "relation 'low <= temp < high' does not hold in 1 row (line 9), e.g. line 9: low 1, temp 4, high 4"
    ]


def test_a_value_that_is_no_number_is_its_own_failure() -> None:
    batch = day().astype({"casual": "object"})
    batch.loc[2, "casual"] = "n/a"
    assert rowchecks.relation_problems(batch, SUM, DAY) == [
        "column 'casual': 1 values are not numbers, e.g. ['n/a'] (line 4); the relations take numbers"
    ]


def test_a_missing_other_column_is_said() -> None:
    assert rowchecks.relation_problems(day().drop(columns="members"), SUM, DAY) == [
        "relation 'total = casual + members' cannot be checked: column(s) ['members'] missing"
    ]


def test_a_derived_column_is_one_value_per_time_part() -> None:
    batch = pd.concat([day(), day(start="2024-03-06").assign(hr=lambda d: d["hr"].shift(1))], ignore_index=True)
    (reason,) = rowchecks.relation_problems(
        batch, rides_spec(frequency="weekly", relations=["hr = hour(ts)"]), "2024-W10"
    )
    assert reason == (
        "column 'hr' is not one value per hour(ts): 23 of the batch's 24 hour values have more than one, e.g."
        " hour 1: '1am' (line 3), '12am' (line 27) (relation 'hr = hour(ts)')"
    )


def test_an_hour_shift_disagrees_with_the_versioned_data() -> None:
    """Every row an hour late is consistent within the batch: only the versioned rows show it."""
    late = day()
    late["hr"] = [LABELS[(h - 1) % 24] for h in range(24)]
    assert rowchecks.relation_problems(late, HOUR, DAY) == []
    versioned = Reference("v3", {"2024-03-04": day(start="2024-03-04"), DAY: late})
    assert rowchecks.relation_problems(late, HOUR, DAY, versioned) == [
        "column 'hr' disagrees with hour(ts) in 24 rows (lines 2, 3, 4, 5, 6 and 19 more), e.g. line 2:"
        f" ts {DAY}T00:00:00 has hr '11pm', versioned data has '12am' for hour 0 (v3; relation 'hr = hour(ts)')"
    ]


def test_a_weekday_is_labelled_any_way() -> None:
    spec = rides_spec(frequency="monthly", relations=["hr = weekday(ts)"])
    month = pd.DataFrame({"ts": pd.date_range("2024-03-01", periods=31, freq="1D")})
    month["hr"] = (month["ts"].dt.day_of_week + 1) % 7  # 0..6 from Sunday
    earlier = month.assign(ts=month["ts"] - pd.Timedelta(weeks=5))
    assert rowchecks.relation_problems(month, spec, "2024-03", Reference("v1", {"2024-02": earlier})) == []
    month.loc[4, "hr"] = None  # missing: not judged
    month.loc[5, "hr"] = 9.0  # a float read of 0..6 is the same label, another number is not
    within, against = rowchecks.relation_problems(month, spec, "2024-03", Reference("v1", {"2024-02": earlier}))
    assert "1 of the batch's 7 weekday values has more than one, e.g. weekday 2 (Wed): '9' (line 7), '3'" in within
    assert "line 7: ts 2024-03-06T00:00:00 has hr '9', versioned data has '3' for weekday 2 (Wed)" in against


@pytest.fixture(scope="module")
def bike_files(bike_spec: DatasetSpec, bike_months: dict[str, pd.DataFrame], tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    folder = tmp_path_factory.mktemp("bike-months")
    return {p: write_batch(df, bike_spec, folder / f"{p}.csv") for p, df in bike_months.items()}


def test_every_real_month_passes_the_bike_spec(bike_spec: DatasetSpec, bike_files: dict[str, Path]) -> None:
    """Each month judged against the one before it, as ingest would."""
    before = Reference()
    for period, path in bike_files.items():
        frame = read_delivery(path, bike_spec).frame
        assert frame is not None
        found = rowchecks.coverage_problems(frame, bike_spec, period, path)
        assert found + rowchecks.relation_problems(frame, bike_spec, period, before) == [], period
        before = Reference("earlier", {period: frame})


@pytest.mark.parametrize("period", ["2011-01", "2012-10"])
def test_the_least_covered_bike_months_pass_validation(
    bike_spec: DatasetSpec, bike_files: dict[str, Path], period: str
) -> None:
    """The fewest hours (2011-01, 92.5%) and the longest gap (2012-10, 36 hours), through the
    whole validation."""
    report = validate_file(bike_files[period], bike_spec, period)
    assert report.success, report.failures


@pytest.mark.parametrize(("period", "rows"), [("2011-03", 624), ("2012-10", 665), ("2011-01", 665)])
def test_a_cut_bike_month_fails(
    bike_spec: DatasetSpec, bike_months: dict[str, pd.DataFrame], tmp_path: Path, period: str, rows: int
) -> None:
    path = write_batch(bike_months[period].iloc[:rows], bike_spec, tmp_path / f"{period}.csv")
    path.write_text(path.read_text().rstrip("\n")[:-1])  # and cut inside the last value
    report = validate_file(path, bike_spec, period)
    assert not report.success
    (reason,) = [f for f in report.failures if "(coverage)" in f]
    assert reason.startswith(f"period {period} is incomplete (coverage): {744 - rows} of its 744 steps of 1h")
    assert f"the file's last line (line {rows + 1}) has no line end" in reason
