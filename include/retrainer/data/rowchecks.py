"""Whether a batch is whole and agrees with itself, by the spec's ``coverage`` and ``relations``
(``retrainer.spec.consistency``).

Coverage: the batch's timestamps floored to the spec's step, against every step of its period;
a batch missing too much, or too long a run, is refused naming the gap (and, when the file's
last line has no line end, that it was cut off there). Relations: each checked on every row
whose operands are present, each failure naming its file lines and a few values. A column
derived from the time is judged within the batch (one time part, one value) and against the
versioned data (the labels its rows give each time part), so a batch whose every row is an
hour late fails once a version exists.
"""

from __future__ import annotations

import calendar
import operator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from retrainer import periods
from retrainer.data.batchchecks import Reference
from retrainer.data.batchfile import is_parquet, lines_of, sample
from retrainer.spec.consistency import CoverageConfig, Derived, Order, Sum, spelled
from retrainer.spec.dataset import DatasetSpec

#: how a time part is read from a timestamp column (``Series.dt``)
PARTS = {
    "hour": "hour",
    "weekday": "day_of_week",
    "day": "day",
    "month": "month",
    "year": "year",
    "minute": "minute",
    "quarter": "quarter",
    "dayofyear": "day_of_year",
}
COMPARE = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}
#: a sum holds within this share of its size on top of the spec's tolerance (decimal fractions in binary)
RELATIVE_EPSILON = 1e-9
TIME_TEXT = "%Y-%m-%dT%H:%M:%S"
CUT = "its last value may be cut too"


@dataclass(frozen=True)
class Steps:
    """The steps of a period (``expected``) and which of them hold a row (``held``)."""

    expected: pd.DatetimeIndex
    held: np.ndarray
    step: pd.Timedelta

    @classmethod
    def of(cls, times: pd.Series, period: str, frequency: str, step: pd.Timedelta) -> Steps:
        start, end = periods.bounds(period, frequency)
        expected = pd.date_range(pd.Timestamp(start).floor(step), end, freq=step, inclusive="left")
        present = pd.DatetimeIndex(times.dropna().dt.floor(step).unique())
        return cls(expected, np.asarray(expected.isin(present)), step)

    @property
    def missing(self) -> int:
        return int((~self.held).sum())

    def longest_gap(self) -> tuple[int, int]:
        """The first and the last index (inclusive) of the longest run of missing steps."""
        edges = np.diff(np.concatenate(([0], (~self.held).astype(int), [0])))
        starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
        longest = int(np.argmax(ends - starts))
        return int(starts[longest]), int(ends[longest]) - 1

    def gap_length(self) -> pd.Timedelta:
        first, last = self.longest_gap() if self.missing else (0, -1)
        return (last - first + 1) * self.step

    def says(self) -> str:
        """How many steps have no row, the first and last of them, and the longest gap."""
        gone = self.expected[~self.held]
        first, last = self.longest_gap()
        return (
            f"{self.missing} of its {len(self.expected)} steps of {spelled(self.step)} have no row, the first"
            f" missing {gone[0].strftime(TIME_TEXT)} and the last {gone[-1].strftime(TIME_TEXT)}; the longest"
            f" gap is {last - first + 1} steps ({spelled(self.gap_length())}),"
            f" {self.expected[first].strftime(TIME_TEXT)} to {self.expected[last].strftime(TIME_TEXT)}"
        )


def coverage_problems(df: pd.DataFrame, spec: DatasetSpec, period: str, path: Path | str | None = None) -> list[str]:
    """A batch that covers too little of its period, by the spec's ``coverage``; when the
    delivered file (``path``) ends inside its last line, the reason says so: that line may be cut."""
    cover, tcol = spec.coverage, spec.time_column
    if cover is None or tcol not in df or not pd.api.types.is_datetime64_any_dtype(df[tcol]):
        return []
    steps = Steps.of(df[tcol], period, spec.frequency, pd.Timedelta(cover.step))
    short = _shortfalls(steps, cover)
    if not short:
        return []
    reason = f"period {period} is incomplete (coverage): {steps.says()}; {'; '.join(short)}"
    line = unended_last_line(path, spec) if path is not None else None
    if line is not None:
        reason += f"; the file's last line (line {line}) has no line end: it was cut off there, {CUT}"
    return [reason]


def _shortfalls(steps: Steps, cover: CoverageConfig) -> list[str]:
    """The coverage limits the steps fall short of, each in words."""
    held, total = int(steps.held.sum()), len(steps.expected)
    out = []
    if held < cover.min_share * total:
        out.append(
            f"{held / total:.4g} of the steps hold a row, at least {cover.min_share:g} required (coverage.min_share)"
        )
    if cover.max_gap is not None and steps.missing and steps.gap_length() > pd.Timedelta(cover.max_gap):
        out.append(f"the gap is longer than {spelled(cover.max_gap)} (coverage.max_gap)")
    if held < cover.min_steps:
        out.append(f"{held} steps hold a row, at least {cover.min_steps} required (coverage.min_steps)")
    return out


def unended_last_line(path: Path | str, spec: DatasetSpec) -> int | None:
    """The number of a CSV file's last line when it has no line end (the header is line 1);
    None when it has one, and for Parquet (no lines)."""
    if is_parquet(path, spec.ingest.format):
        return None
    with open(path, "rb") as fh:
        fh.seek(max(0, fh.seek(0, 2) - 2))
        tail = fh.read()
    if not tail or tail.endswith((b"\n", b"\r", b"\n\x00", b"\r\x00")):  # \x00: UTF-16, little-endian
        return None
    newlines = 0
    with open(path, encoding=spec.ingest.encoding, errors="replace", newline="") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), ""):
            newlines += chunk.count("\n")
    return newlines + 1


def relation_problems(
    df: pd.DataFrame, spec: DatasetSpec, period: str, reference: Reference | None = None
) -> list[str]:
    """Rows on which the spec's ``relations`` do not hold, each relation's failures in one
    reason; a derived column also against the versioned data of other periods (``reference``)."""
    reference = reference or Reference()
    problems: list[str] = []
    for relation in spec.relations:
        needed = [relation.column, relation.time_column] if isinstance(relation, Derived) else list(relation.columns)
        absent = [c for c in needed if c not in df]
        if absent:
            if any(c in spec.ingest.other_columns for c in absent):  # the suite names the spec's own columns
                problems.append(f"relation '{relation.text}' cannot be checked: column(s) {absent} missing")
            continue
        if isinstance(relation, Derived):
            problems += _derived_problems(df, relation, reference.others(period), reference.version)
        else:
            problems += _numeric_problems(df, relation)
    return list(dict.fromkeys(problems))


def _rows(index: pd.Index) -> str:
    return f"{len(index)} row{'s' if len(index) > 1 else ''}"


def _spelled(value: object) -> str:
    """A value as text, a number in its shortest spelling (3.0 and 3 are one label)."""
    if isinstance(value, (bool, np.bool_)):
        return str(value)
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return np.format_float_positional(float(value), trim="-")
    return str(value).strip()


def _part_label(part: str, value: int) -> str:
    return f"weekday {value} ({calendar.day_abbr[value]})" if part == "weekday" else f"{part} {value}"


def _time_parts(df: pd.DataFrame, relation: Derived) -> tuple[pd.Series, pd.Series]:
    """The time part and the column's value (as text) of each row where both are present."""
    times, values = df[relation.time_column], df[relation.column]
    if not pd.api.types.is_datetime64_any_dtype(times):
        return pd.Series(dtype="int64"), pd.Series(dtype="object")
    judged = times.notna() & values.notna()
    parts = getattr(times[judged].dt, PARTS[relation.part]).astype("int64")
    return parts, values[judged].map(_spelled).astype("object")


def _derived_problems(df: pd.DataFrame, relation: Derived, versioned: list[pd.DataFrame], version: str) -> list[str]:
    parts, values = _time_parts(df, relation)
    if parts.empty:
        return []
    problems = _inconsistent(parts, values, relation)
    learned = _learned(versioned, relation)
    if learned:
        problems += _disagreeing(df, parts, values, learned, relation, version)
    return problems


def _inconsistent(parts: pd.Series, values: pd.Series, relation: Derived) -> list[str]:
    """One time part that goes with two values or more in the batch."""
    per_part = values.groupby(parts).nunique()
    torn = per_part[per_part > 1].index
    if torn.empty:
        return []
    first = int(torn[0])
    rows = values[parts == first]
    shown = ", ".join(f"'{v}' ({lines_of(rows.index[rows == v])})" for v in list(dict.fromkeys(rows))[:3])
    part = f"{relation.part}({relation.time_column})"
    return [
        f"column '{relation.column}' is not one value per {part}: {len(torn)} of the batch's {len(per_part)}"
        f" {relation.part} values {'have' if len(torn) > 1 else 'has'} more than one,"
        f" e.g. {_part_label(relation.part, first)}: {shown}"
        f" (relation '{relation.text}')"
    ]


def _learned(frames: list[pd.DataFrame], relation: Derived) -> dict[int, str]:
    """The value each time part has in the versioned rows, where it has one only."""
    usable = [df for df in frames if relation.column in df and relation.time_column in df]
    pairs = [_time_parts(df, relation) for df in usable]
    pairs = [(p, v) for p, v in pairs if not p.empty]
    if not pairs:
        return {}
    parts = pd.concat([p for p, _ in pairs], ignore_index=True)
    values = pd.concat([v for _, v in pairs], ignore_index=True)
    seen = values.groupby(parts).unique()
    return {int(p): str(v[0]) for p, v in zip(seen.index.tolist(), seen.tolist(), strict=True) if len(v) == 1}


def _disagreeing(
    df: pd.DataFrame, parts: pd.Series, values: pd.Series, learned: dict[int, str], relation: Derived, version: str
) -> list[str]:
    """Rows whose value differs from the one the versioned data gives their time part."""
    expected = parts.map(learned)
    wrong = values.index[expected.notna() & (values != expected)]
    if wrong.empty:
        return []
    i = wrong[0]
    when = df.loc[[i], relation.time_column].dt.strftime(TIME_TEXT).iloc[0]
    return [
        f"column '{relation.column}' disagrees with {relation.part}({relation.time_column}) in {_rows(wrong)}"
        f" ({lines_of(wrong)}), e.g. line {i + 2}: {relation.time_column} {when} has {relation.column}"
        f" '{values[i]}', versioned data has '{expected[i]}' for {_part_label(relation.part, int(parts[i]))}"
        f" ({version}; relation '{relation.text}')"
    ]


def _numbers(df: pd.DataFrame, column: str) -> tuple[pd.Series, str | None]:
    """A column as numbers (float), and a reason when some present values are not numbers."""
    col = df[column]
    if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
        return col.astype("float64"), None
    text = col.astype("object").map(lambda v: v.strip() if isinstance(v, str) else v)
    numbers = pd.to_numeric(text, errors="coerce").astype("float64")
    bad = df.index[text.notna() & (text != "") & numbers.isna()]
    if bad.empty:
        return numbers, None
    return numbers, (
        f"column '{column}': {len(bad)} values are not numbers, e.g. {sample(col[bad])} ({lines_of(bad)});"
        " the relations take numbers"
    )


def _numeric_problems(df: pd.DataFrame, relation: Sum | Order) -> list[str]:
    """Rows on which a sum or an order does not hold (a row with an operand missing is not judged)."""
    converted = {c: _numbers(df, c) for c in relation.columns}
    problems = [said for _, said in converted.values() if said]
    numbers = {c: n for c, (n, _) in converted.items()}
    judged = pd.concat(list(numbers.values()), axis=1).notna().all(axis=1)
    total = _total(relation, numbers) if isinstance(relation, Sum) else None
    holds = _sum_holds(relation, numbers) if isinstance(relation, Sum) else _order_holds(relation, numbers)
    rows = df.index[judged & ~holds]
    if rows.empty:
        return problems
    first = rows[0]
    shown = ", ".join(f"{c} {_spelled(df.at[first, c])}" for c in relation.columns)
    if isinstance(relation, Sum) and total is not None:
        right = " ".join(f"{'+' if sign > 0 else '-'} {c}" for sign, c in relation.terms).removeprefix("+ ")
        shown += f" ({right} = {_spelled(total[first])})"
    said = f"relation '{relation.text}' does not hold in {_rows(rows)} ({lines_of(rows)})"
    return [*problems, f"{said}, e.g. line {first + 2}: {shown}"]


def _total(relation: Sum, numbers: dict[str, pd.Series]) -> pd.Series:
    """The right-hand side of a sum, row by row."""
    total = pd.Series(0.0, index=numbers[relation.column].index)
    for sign, column in relation.terms:
        total = total + sign * numbers[column]
    return total


def _sum_holds(relation: Sum, numbers: dict[str, pd.Series]) -> pd.Series:
    """Whether each row's column equals its sum, within the spec's tolerance and a rounding
    error of decimal fractions (0.1 + 0.2 is 0.3)."""
    left, total = numbers[relation.column], _total(relation, numbers)
    size = pd.concat([left.abs(), total.abs()], axis=1).max(axis=1).clip(lower=1.0)
    return ~((left - total).abs() > relation.tolerance + RELATIVE_EPSILON * size)


def _order_holds(relation: Order, numbers: dict[str, pd.Series]) -> pd.Series:
    """Whether each row's columns are in the relation's order (a missing value compares false)."""
    holds = pd.Series(True, index=numbers[relation.columns[0]].index)
    for op, a, b in zip(relation.ops, relation.columns, relation.columns[1:], strict=False):
        holds &= pd.Series(COMPARE[op](numbers[a], numbers[b]), index=holds.index)
    return holds
