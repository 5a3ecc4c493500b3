"""Periods of every frequency: how they are written, bounded, found and refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pandas as pd
import pytest

from retrainer import periods
from retrainer.periods import PeriodError


@pytest.mark.parametrize(
    ("frequency", "period", "start", "end"),
    [
        ("monthly", "2011-12", datetime(2011, 12, 1), datetime(2012, 1, 1)),
        ("monthly", "2012-02", datetime(2012, 2, 1), datetime(2012, 3, 1)),
        ("weekly", "2011-W01", datetime(2011, 1, 3), datetime(2011, 1, 10)),  # ISO: 2011 starts on Monday 3 Jan
        ("weekly", "2009-W53", datetime(2009, 12, 28), datetime(2010, 1, 4)),
        ("daily", "2012-02-29", datetime(2012, 2, 29), datetime(2012, 3, 1)),
        ("hourly", "2011-03-05T23", datetime(2011, 3, 5, 23), datetime(2011, 3, 6)),
    ],
)
def test_bounds_and_label_agree(frequency: str, period: str, start: datetime, end: datetime) -> None:
    assert periods.bounds(period, frequency) == (start, end)
    assert periods.label(start, frequency) == period
    assert periods.label(end - timedelta(microseconds=1), frequency) == period
    assert periods.label(end, frequency) == periods.following(period, frequency) != period
    assert periods.frequency_of(period) == frequency


def test_a_zoned_instant_is_placed_in_utc() -> None:
    plus_two = timezone(timedelta(hours=2))
    assert periods.label(datetime(2011, 3, 1, 1, tzinfo=plus_two), "daily") == "2011-02-28"
    assert periods.label(datetime(2011, 3, 1, 1, tzinfo=plus_two), "hourly") == "2011-02-28T23"


@pytest.mark.parametrize(
    ("when", "frequency", "period"),
    [
        (datetime(2011, 8, 1, tzinfo=UTC), "monthly", "2011-07"),
        (datetime(2011, 8, 15, 6, tzinfo=UTC), "monthly", "2011-07"),  # August is not whole yet
        (datetime(2012, 1, 1, tzinfo=UTC), "monthly", "2011-12"),
        (datetime(2011, 8, 15, tzinfo=UTC), "daily", "2011-08-14"),
        (datetime(2011, 8, 15, 6, 30, tzinfo=UTC), "daily", "2011-08-14"),
        (datetime(2011, 8, 15, 6, 30, tzinfo=UTC), "hourly", "2011-08-15T05"),
        (datetime(2011, 8, 15, tzinfo=UTC), "weekly", "2011-W32"),  # a Monday: the week before is whole
        (datetime(2011, 8, 17, tzinfo=UTC), "weekly", "2011-W32"),
    ],
)
def test_the_last_whole_period_before_an_interval_end(when: datetime, frequency: str, period: str) -> None:
    assert periods.before(when, frequency) == period
    assert periods.bounds(period, frequency)[1] <= when.replace(tzinfo=None)


@pytest.mark.parametrize(
    ("period", "frequency", "words"),
    [
        ("2011-03-05", "monthly", "'2011-03-05' is not monthly \\(it is written as a daily period\\)"),
        ("2011-03", "daily", "daily periods are written YYYY-MM-DD"),
        ("2011-13", "monthly", "monthly periods are written YYYY-MM"),
        ("2011-02-30", "daily", "no real daily period"),
        ("2010-W53", "weekly", "no real weekly period"),
        ("2011-03-05T24", "hourly", "hourly periods are written YYYY-MM-DDTHH"),
        ("2011-03", "fortnightly", "unknown frequency"),
    ],
)
def test_a_period_of_another_form_is_refused_saying_the_form(period: str, frequency: str, words: str) -> None:
    with pytest.raises(PeriodError, match=words):
        periods.check(period, frequency)


@pytest.mark.parametrize("frequency", periods.FREQUENCIES)
def test_labels_of_a_column_are_the_labels_of_each_instant(frequency: str) -> None:
    times = pd.Series(pd.date_range("2010-12-25", "2011-02-03", freq="7h"))
    got = periods.labels(times, frequency)
    assert list(got) == [periods.label(t.to_pydatetime(), frequency) for t in times]
    assert list(got) == sorted(got)  # text order is time order


def test_every_form_is_recognised_by_the_shared_pattern() -> None:
    import re

    for frequency, example in periods.EXAMPLES.items():
        assert re.fullmatch(periods.ANY, example), frequency
        assert periods.frequency_of(example) == frequency


@pytest.mark.parametrize(
    ("start", "end", "frequency", "ended"),
    [
        (datetime(2011, 3, 1), datetime(2011, 4, 1), "monthly", True),  # the monthly schedule's interval
        (datetime(2011, 3, 31), datetime(2011, 4, 1), "monthly", True),  # a daily interval at a month's end
        (datetime(2011, 3, 30), datetime(2011, 3, 31), "monthly", False),
        (datetime(2011, 3, 13), datetime(2011, 3, 14), "weekly", True),  # Monday 14 March: a week ended
        (datetime(2011, 3, 14), datetime(2011, 3, 15), "weekly", False),
        (datetime(2011, 3, 14), datetime(2011, 3, 15), "daily", True),
        (datetime(2011, 3, 14, 5), datetime(2011, 3, 14, 6), "daily", False),
        (datetime(2011, 3, 14, 5), datetime(2011, 3, 14, 6), "hourly", True),
    ],
)
def test_a_period_ended_within_a_data_interval(start: datetime, end: datetime, frequency: str, ended: bool) -> None:
    assert periods.ended_within(start, end, frequency) is ended


def test_each_frequency_has_a_schedule_that_starts_with_its_periods() -> None:
    assert set(periods.CRONS) == set(periods.FREQUENCIES)
    assert periods.CRONS["weekly"].endswith(" 1")  # ISO weeks start on Monday


@pytest.mark.parametrize(
    ("period", "frequency", "season"),
    [
        ("2012-04", "monthly", "2011-04"),
        ("2012-W09", "weekly", "2011-W09"),
        ("2016-W01", "weekly", "2015-W01"),
        ("2015-W53", "weekly", "2014-W52"),  # 2014 has 52 ISO weeks
        ("2010-W10", "weekly", "2009-W10"),
        ("2012-06-15", "daily", "2011-06-17"),  # 52 weeks: the same weekday
        ("2012-06-15T14", "hourly", "2011-06-17T14"),
    ],
)
def test_the_same_season_a_year_before(period: str, frequency: str, season: str) -> None:
    assert periods.a_year_before(period, frequency) == season
