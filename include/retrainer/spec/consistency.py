"""Whether a batch is whole and agrees with itself: the spec's ``coverage`` (how much of its
period a batch must cover, on the time column's grid) and ``relations`` (what the columns
say about each other on every row: a label derived from the time, a sum, an order).

Relations are written as short formulas and read by a strict parser: anything that is not one
of the three forms is refused, naming the entry. The checks on a batch are in
``retrainer.data.rowchecks``. Standard library only, as the rest of the spec's readers.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from retrainer.spec.columns import Feature, Target
from retrainer.spec.fields import Fields

COVERAGE_KEYS = frozenset({"step", "min_share", "max_gap", "min_steps"})
#: the parts of a timestamp a column may be derived from (``hr = hour(timestamp)``)
TIME_PARTS = ("hour", "weekday", "day", "month", "year", "minute", "quarter", "dayofyear")
#: the comparisons an order may chain, by direction
ASCENDING, DESCENDING = ("<", "<="), (">", ">=")
#: a duration's units, as pandas spells them in a Timedelta string
UNITS = {"s": timedelta(seconds=1), "min": timedelta(minutes=1), "h": timedelta(hours=1), "d": timedelta(days=1)}
UNITS["w"] = timedelta(weeks=1)
#: the shortest period of each frequency: a step longer than this can never repeat in a batch
SHORTEST_PERIOD = {"hourly": UNITS["h"], "daily": UNITS["d"], "weekly": UNITS["w"], "monthly": timedelta(days=28)}
_DURATION = re.compile(r"^(\d+)\s*([a-zA-Z]+)$")
_TOKEN = re.compile(
    r"\s*(?:(?P<name>[A-Za-z_][A-Za-z0-9_.]*)|`(?P<quoted>[^`]+)`|(?P<number>\d+(?:\.\d+)?)"
    r"|(?P<op><=|>=|<|>|=|\+|-|\(|\)))"
)
FORMS = (
    "write 'column = part(time column)' (part: " + ", ".join(TIME_PARTS) + "), 'column = a + b' (or a - b,"
    " optionally 'within 0.5'), or an order of two or three columns 'a <= b <= c' (<, <=, >, >=);"
    " a column name with other characters goes in backticks"
)


@dataclass(frozen=True)
class CoverageConfig:
    """How much of its period a batch must cover (spec section ``coverage``): the time column's
    grid (``step``) and the share of steps, the longest run of missing steps, or the number of
    distinct steps that must hold a row."""

    step: timedelta
    min_share: float = 1.0
    max_gap: timedelta | None = None
    min_steps: int = 0  # 0: not judged


@dataclass(frozen=True)
class Derived:
    """``column = part(time)``: each value of the time part goes with one value of the column,
    whatever the labels (``hr`` as 12am..11pm, ``weekday`` as Mon..Sun)."""

    text: str
    column: str
    part: str
    time_column: str


@dataclass(frozen=True)
class Sum:
    """``column = a + b - c``: numbers that add up on every row, within ``tolerance``."""

    text: str
    column: str
    terms: tuple[tuple[int, str], ...]  # (+1 or -1, column)
    tolerance: float = 0.0

    @property
    def columns(self) -> tuple[str, ...]:
        return (self.column, *(c for _, c in self.terms))


@dataclass(frozen=True)
class Order:
    """``a <= b <= c``: numbers in this order on every row."""

    text: str
    columns: tuple[str, ...]
    ops: tuple[str, ...]


Relation = Derived | Sum | Order


def spelled(duration: timedelta) -> str:
    """A duration as the spec writes one: ``1h``, ``15min``, ``3d 7h``."""
    seconds, parts = int(duration.total_seconds()), []
    for unit, size in (("d", 86_400), ("h", 3_600), ("min", 60), ("s", 1)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return " ".join(parts) or "0s"


def read_coverage(f: Fields, raw: dict[str, Any], frequency: str) -> CoverageConfig | None:
    """``coverage``, or None when the spec has none (no period is judged complete or not)."""
    if not raw:
        return None
    f.known("coverage", raw, COVERAGE_KEYS)
    step = _duration(f, "coverage.step", raw.get("step"))
    if step > SHORTEST_PERIOD[frequency]:
        raise f.error("coverage.step", f"{spelled(step)} is longer than a {frequency} period: at most one step a batch")
    max_gap = None if raw.get("max_gap") is None else _duration(f, "coverage.max_gap", raw["max_gap"])
    min_steps = 0 if raw.get("min_steps") is None else f.integer("coverage.min_steps", raw["min_steps"], 1)
    most = int(SHORTEST_PERIOD[frequency] / step)
    if min_steps > most:
        raise f.error(
            "coverage.min_steps",
            f"{min_steps} is more than the {most} steps of {spelled(step)} a {frequency} period has",
        )
    # with a gap or a count to judge by, a share is judged only when given
    share = 1.0 if max_gap is None and not min_steps else 0.0
    return CoverageConfig(step, f.unit("coverage.min_share", raw.get("min_share", share)), max_gap, min_steps)


def _duration(f: Fields, name: str, value: Any) -> timedelta:
    """A positive whole number of seconds, minutes, hours, days or weeks: ``15min``, ``1h``, ``2d``."""
    found = _DURATION.match(value.strip()) if isinstance(value, str) else None
    unit = found.group(2).lower() if found else ""
    if unit == "m":
        raise f.error(name, f"{value!r}: 'm' could be minutes or months: write min for minutes")
    size = UNITS.get(unit)
    if found is None or size is None or int(found.group(1)) == 0:
        raise f.error(
            name, f"must be a duration of a whole number and a unit (s, min, h, d, w; e.g. 1h), got {value!r}"
        )
    return int(found.group(1)) * size


class _Columns:
    """The spec's columns as relations may use them: any in a derived one, numbers in sums and orders."""

    def __init__(self, time_column: str, target: Target, features: tuple[Feature, ...], other: tuple[str, ...]):
        self.time = time_column
        self.numeric = {f.name for f in features if f.type == "numeric"} | set(other)
        if target.task == "regression":
            self.numeric.add(target.column)
        self.all = {time_column, target.column, *(f.name for f in features), *other}


def read_relations(
    f: Fields, value: Any, time_column: str, target: Target, features: tuple[Feature, ...], other: tuple[str, ...]
) -> tuple[Relation, ...]:
    """``relations``: a list of formulas over the spec's columns (time, target, features,
    ``ingest.other_columns``), each refused with its entry when it is not one of the forms."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise f.error("relations", f"must be a list of relations ({FORMS}), got {value!r}")
    columns = _Columns(time_column, target, features, other)
    return tuple(_relation(f, i, entry, columns) for i, entry in enumerate(value, start=1))


def _relation(f: Fields, number: int, entry: Any, columns: _Columns) -> Relation:
    tokens = _tokens(entry) if isinstance(entry, str) else None
    try:
        if not tokens:
            raise ValueError(f"not a relation: {FORMS}")
        return _parse(entry.strip(), tokens, columns)
    except ValueError as exc:
        raise f.error("relations", f"entry {number}, {entry!r}: {exc}") from None


def _parse(text: str, tokens: list[tuple[str, str]], columns: _Columns) -> Relation:
    """The relation the tokens spell, or ValueError saying why they spell none."""
    kinds = [k for k, _ in tokens]
    if kinds == ["name", "=", "name", "(", "name", ")"]:
        return _derived(text, [w for _, w in tokens], columns)
    if len(tokens) >= 5 and kinds[1] == "=":
        return _sum(text, tokens, columns)
    if len(tokens) in (3, 5) and all(k in (*ASCENDING, *DESCENDING) for k in kinds[1::2]):
        return _order(text, tokens, columns)
    raise ValueError(f"not a relation: {FORMS}")


def _tokens(text: str) -> list[tuple[str, str]] | None:
    """The formula's names, numbers and operators as (kind, text): kind is ``name`` (a column
    or a word), ``number`` or the operator itself. None when a character is none of these."""
    out, at, text = [], 0, text.strip()
    while at < len(text):
        found = _TOKEN.match(text, at)
        if found is None or found.end() == at:
            return None
        kind = found.lastgroup or ""
        word = found.group(kind)
        out.append(("name" if kind in ("name", "quoted") else "number" if kind == "number" else word, word))
        at = found.end()
    return out


def _known(name: str, columns: _Columns) -> str:
    if name not in columns.all:
        close = difflib.get_close_matches(name, sorted(columns.all), n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise ValueError(
            f"'{name}' is not a column of this spec{hint}: the time column, the target, a feature or one of"
            " ingest.other_columns"
        )
    return name


def _numeric(name: str, columns: _Columns) -> str:
    if _known(name, columns) not in columns.numeric:
        what = "the time column" if name == columns.time else "not numeric"
        raise ValueError(
            f"'{name}' is {what}: sums and orders take numeric columns (numeric features, a regression target,"
            " ingest.other_columns)"
        )
    return name


def _derived(text: str, words: list[str], columns: _Columns) -> Derived:
    column, part, time = words[0], words[2], words[4]
    if part not in TIME_PARTS:
        close = difflib.get_close_matches(part, TIME_PARTS, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise ValueError(f"unknown time part '{part}'{hint}: one of {', '.join(TIME_PARTS)}")
    if time != columns.time:
        raise ValueError(f"{part}() takes the time column '{columns.time}', not '{time}'")
    if _known(column, columns) == columns.time:
        raise ValueError("the time column cannot be derived from itself")
    return Derived(text, column, part, time)


def _sum(text: str, tokens: list[tuple[str, str]], columns: _Columns) -> Sum:
    """``column = a + b - c`` with an optional ``within <number>`` at the end."""
    tolerance = 0.0
    if len(tokens) >= 2 and tokens[-2] == ("name", "within") and tokens[-1][0] == "number":
        tolerance, tokens = float(tokens[-1][1]), tokens[:-2]
    if len(tokens) < 5 or len(tokens) % 2 == 0 or tokens[0][0] != "name" or tokens[2][0] != "name":
        raise ValueError(f"not a relation: {FORMS}")
    terms = [(1, tokens[2])]
    for sign, operand in zip(tokens[3::2], tokens[4::2], strict=True):
        if sign[0] not in ("+", "-") or operand[0] != "name":
            raise ValueError(f"not a relation: {FORMS}")
        terms.append((1 if sign[0] == "+" else -1, operand))
    _distinct([tokens[0][1], *(t[1] for _, t in terms)])
    column = _numeric(tokens[0][1], columns)
    return Sum(text, column, tuple((sign, _numeric(t[1], columns)) for sign, t in terms), tolerance)


def _order(text: str, tokens: list[tuple[str, str]], columns: _Columns) -> Order:
    names, ops = [w for _, w in tokens[0::2]], tuple(k for k, _ in tokens[1::2])
    if any(k != "name" for k, _ in tokens[0::2]):
        raise ValueError(f"an order compares columns: {FORMS}")
    if not (set(ops) <= set(ASCENDING) or set(ops) <= set(DESCENDING)):
        raise ValueError(f"an order goes one way: {' and '.join(ops)} mix them")
    _distinct(names)
    return Order(text, tuple(_numeric(n, columns) for n in names), ops)


def _distinct(names: list[str]) -> None:
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ValueError(f"{twice} appear more than once")
