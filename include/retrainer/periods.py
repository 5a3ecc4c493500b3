"""Periods: the unit a dataset is delivered, versioned, windowed and held out in.

A spec's ``frequency`` says how long a period is and how it is written:

=========  ==================  =========================================
frequency  written             one period
=========  ==================  =========================================
hourly     ``2011-03-05T14``   [14:00, 15:00) UTC of that day
daily      ``2011-03-05``      [00:00, 24:00) UTC of that day
weekly     ``2011-W09``        an ISO 8601 week, Monday 00:00 to Monday
monthly    ``2011-03``         a calendar month
=========  ==================  =========================================

Written this way, periods of one frequency sort as text in time order (batch files,
data versions and run ids rely on it) and none of the four forms can be read as another.
Timestamps are UTC without a zone (deliveries with zones are converted before this).

Pure standard library: the landing sensor routes file names with it in the triggerer.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Literal, get_args

from retrainer.outcomes import Refused

if TYPE_CHECKING:
    import pandas as pd

Frequency = Literal["hourly", "daily", "weekly", "monthly"]
FREQUENCIES: tuple[str, ...] = get_args(Frequency)

#: how a period of each frequency is written, for messages
FORMS: dict[str, str] = {
    "hourly": "YYYY-MM-DDTHH",
    "daily": "YYYY-MM-DD",
    "weekly": "YYYY-Www",
    "monthly": "YYYY-MM",
}
EXAMPLES: dict[str, str] = {
    "hourly": "2011-03-05T14",
    "daily": "2011-03-05",
    "weekly": "2011-W09",
    "monthly": "2011-03",
}

_MONTH = r"\d{4}-(0[1-9]|1[0-2])"
_DAY = _MONTH + r"-(0[1-9]|[12]\d|3[01])"
_PATTERNS: dict[str, str] = {
    "hourly": _DAY + r"T([01]\d|2[0-3])",
    "daily": _DAY,
    "weekly": r"\d{4}-W(0[1-9]|[1-4]\d|5[0-3])",
    "monthly": _MONTH,
}
#: a period of any frequency (regular expression, no anchors): for names and forms
ANY = "|".join(f"(?:{_PATTERNS[f]})" for f in FREQUENCIES)
_FULL = {f: re.compile(f"^(?:{p})$") for f, p in _PATTERNS.items()}


class PeriodError(Refused, ValueError):
    """A period that is not written in its dataset's frequency, or is no real date."""


def frequency_of(period: str) -> str | None:
    """The frequency a period is written in, or None if it is written in none."""
    return next((f for f in FREQUENCIES if _FULL[f].match(period)), None)


def _start(period: str, frequency: str) -> datetime:
    if frequency == "monthly":
        return datetime(int(period[:4]), int(period[5:7]), 1)
    if frequency == "weekly":
        return datetime.combine(date.fromisocalendar(int(period[:4]), int(period[6:8]), 1), datetime.min.time())
    day = datetime(int(period[:4]), int(period[5:7]), int(period[8:10]))
    return day + timedelta(hours=int(period[11:13])) if frequency == "hourly" else day


def check(period: str, frequency: str) -> str:
    """``period`` if it names a real period of ``frequency``, else PeriodError saying what is expected."""
    if frequency not in FREQUENCIES:
        raise PeriodError(f"unknown frequency {frequency!r}: one of {', '.join(FREQUENCIES)}")
    expected = f"{frequency} periods are written {FORMS[frequency]} (e.g. {EXAMPLES[frequency]})"
    if not _FULL[frequency].match(period):
        other = frequency_of(period)
        said = f" (it is written as a {other} period)" if other else ""
        raise PeriodError(f"period {period!r} is not {frequency}{said}: {expected}")
    try:
        _start(period, frequency)
    except ValueError as exc:  # 2011-02-30, 2010-W53 (2010 has 52 ISO weeks)
        raise PeriodError(f"period {period!r} is no real {frequency} period ({exc})") from exc
    return period


def label(when: datetime, frequency: str) -> str:
    """The period of ``frequency`` that holds the instant ``when`` (a naive time is UTC)."""
    if when.tzinfo is not None:
        when = when.astimezone(UTC).replace(tzinfo=None)
    if frequency == "monthly":
        return f"{when.year:04d}-{when.month:02d}"
    if frequency == "weekly":
        iso = when.isocalendar()
        return f"{iso.year:04d}-W{iso.week:02d}"
    if frequency == "daily":
        return f"{when.year:04d}-{when.month:02d}-{when.day:02d}"
    if frequency == "hourly":
        return f"{when.year:04d}-{when.month:02d}-{when.day:02d}T{when.hour:02d}"
    raise PeriodError(f"unknown frequency {frequency!r}: one of {', '.join(FREQUENCIES)}")


def bounds(period: str, frequency: str) -> tuple[datetime, datetime]:
    """[start, end) of ``period``, naive UTC."""
    start = _start(check(period, frequency), frequency)
    if frequency == "monthly":
        end = datetime(start.year + start.month // 12, start.month % 12 + 1, 1)
    elif frequency == "weekly":
        end = start + timedelta(days=7)
    elif frequency == "daily":
        end = start + timedelta(days=1)
    else:
        end = start + timedelta(hours=1)
    return start, end


def before(when: datetime, frequency: str) -> str:
    """The last whole period that ends at or before ``when`` (a data interval's end):
    monthly, 2011-08-01 -> 2011-07 and 2011-08-15 -> 2011-07 too (August is not whole yet)."""
    if when.tzinfo is not None:
        when = when.astimezone(UTC).replace(tzinfo=None)
    last = label(when - timedelta(microseconds=1), frequency)
    start, end = bounds(last, frequency)
    return last if end <= when else label(start - timedelta(microseconds=1), frequency)


#: a schedule that runs as each period of a frequency starts, in UTC (ISO weeks start on Monday)
CRONS: dict[str, str] = {"hourly": "0 * * * *", "daily": "0 0 * * *", "weekly": "0 0 * * 1", "monthly": "0 0 1 * *"}


def retrain_every(frequency: str, every: str = "") -> str:
    """How often scheduled runs retrain a dataset of ``frequency``: ``every`` (its spec's
    ``training.every``) when given, else the data's own frequency (hourly data: daily; a
    retraining every hour is asked for by name)."""
    if every:
        return every
    return "daily" if frequency == "hourly" else frequency


def ended_within(start: datetime, end: datetime, frequency: str) -> bool:
    """Whether a period of ``frequency`` ended within the data interval (start, end]: a
    scheduled run over that interval has a new whole period to retrain on."""
    return before(end, frequency) != before(start, frequency)


def following(period: str, frequency: str) -> str:
    """The period right after ``period``."""
    return label(bounds(period, frequency)[1], frequency)


def a_year_before(period: str, frequency: str) -> str:
    """The same season a year before ``period``: the same month (monthly), the same ISO week
    (weekly; week 53 of a long year: week 52), or 52 weeks before (daily, hourly: the same
    weekday and hour)."""
    start = _start(check(period, frequency), frequency)
    if frequency == "monthly":
        return f"{start.year - 1:04d}-{start.month:02d}"
    if frequency == "weekly":
        week = int(period[6:8])
        try:
            return check(f"{start.isocalendar().year - 1:04d}-W{week:02d}", frequency)
        except PeriodError:
            return f"{start.isocalendar().year - 1:04d}-W52"
    return label(start - timedelta(weeks=52), frequency)


def labels(times: pd.Series, frequency: str) -> pd.Series:
    """The period of each timestamp of a column (naive UTC), as text."""
    if frequency == "weekly":
        iso = times.dt.isocalendar()
        return iso["year"].astype(int).map("{:04d}".format) + "-W" + iso["week"].astype(int).map("{:02d}".format)
    fmt = {"monthly": "%Y-%m", "daily": "%Y-%m-%d", "hourly": "%Y-%m-%dT%H"}.get(frequency)
    if fmt is None:
        raise PeriodError(f"unknown frequency {frequency!r}: one of {', '.join(FREQUENCIES)}")
    return times.dt.strftime(fmt)
