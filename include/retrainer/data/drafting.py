"""Draft a dataset spec from sample deliveries, as schema inference does (TFX's SchemaGen, Great
Expectations' data assistants): the frequency from the timestamps, a key checked unique, each
column's type, range (with headroom), categories and missing rate, rows per period, and the
checks against versioned data that this sample would trip tuned for the features that trip
them. Every choice carries a comment that says what was seen; a person reads the draft and
changes what the sample cannot know (``python -m retrainer spec draft``)."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import combinations, pairwise
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from retrainer import periods
from retrainer.data.batchchecks import MIN_ROWS_TO_JUDGE, reference_periods, spread_ratio, went_constant
from retrainer.data.batchfile import DataFileError
from retrainer.data.rowchecks import PARTS, Steps
from retrainer.data.samples import Sample, Times, read_sample, read_times
from retrainer.spec.columns import FEATURE_NAME, TASKS, input_name_problem, input_suggestion
from retrainer.spec.intake import IngestConfig

#: a period is proposed when a batch of it holds at least this many rows (the median period)
ROWS_PER_PERIOD = 100
#: a categorical feature with at most this many values lists them; more: ``categories: learn``
MAX_LISTED = 30
#: the share of the seen range added on each side of a numeric range
HEADROOM = 0.5
#: the training window and holdout proposed for each frequency (shortened to what the sample holds)
WINDOWS = {"monthly": (6, 1), "weekly": (8, 1), "daily": (28, 7), "hourly": (168, 24)}
#: words that name the positive class of a binary target
POSITIVE = ("1", "yes", "true", "y", "t", "positive", "pos")
#: a key is looked for among at most this many columns, of up to three of them
KEY_CANDIDATES = 12


@dataclass
class Column:
    """What the draft says of one column: the YAML value and the comment beside it."""

    name: str
    value: Any
    comment: str


@dataclass
class Draft:
    """A drafted spec: its YAML text (with comments) and the data it holds."""

    name: str
    text: str
    data: dict[str, Any]
    notes: list[str] = field(default_factory=list)  # what a person should look at first


@dataclass
class _Table:
    """The samples as one table: text columns, each row's instant and period."""

    frame: pd.DataFrame
    times: Times
    frequency: str
    labels: pd.Series
    files: list[Sample]

    @property
    def order(self) -> pd.Index:
        """The rows in time order (files given in any order read alike)."""
        return self.times.values.sort_values(kind="stable").index

    @property
    def periods(self) -> list[str]:
        return sorted(self.labels.unique())


def draft_spec(
    files: Sequence[Path | str],
    time_column: str,
    target: str,
    name: str,
    task: str | None = None,
    frequency: str | None = None,
) -> Draft:
    """A spec drafted from ``files`` (CSV or Parquet deliveries of one dataset)."""
    table = _table([read_sample(p) for p in files], time_column, target, frequency)
    notes: list[str] = []
    target_part, task = _target(table.frame[target], target, task, table.labels)
    features, other = _columns(table, time_column, target, notes)
    key, key_comment = _key(table, time_column, target, [c.name for c in other], notes)
    rows, rows_comment = _rows(table)
    coverage, coverage_comment = _coverage(table, notes)
    relations = _relations(table, time_column, features, other, target)
    tuned = _tuned_checks(table, [f for f in features if f.value["type"] == "numeric"])
    for f in features:
        if f.name in tuned:
            changes, why = tuned[f.name]
            f.value.update(changes)
            f.comment = f"{f.comment}; {why}"
    data = {
        "name": name,
        "description": f"Drafted from {', '.join(s.path.name for s in table.files[:3])}"
        + (f" and {len(table.files) - 3} more" if len(table.files) > 3 else ""),
        "model_name": f"{name}_model",
        "time_column": time_column,
        **({"time_format": table.times.time_format} if table.times.time_format else {}),
        "frequency": table.frequency,
        "unique_by": key,
        "target": target_part.value,
        "features": {f.name: f.value for f in features},
        "rows": rows,
        **({"coverage": coverage} if coverage else {}),
        **({"relations": [text for text, _ in relations]} if relations else {}),
        "ingest": {"other_columns": [c.name for c in other], **_encoding(table)},
        "training": _training(table),
        "gate": {"metric": "rmse" if task == "regression" else "log_loss"},
    }
    consistency = _consistency_lines(data, coverage_comment, relations)
    text = _render(data, table, target_part, features, other, key_comment, rows_comment, consistency)
    return Draft(name, text, data, notes)


def _table(samples: list[Sample], time_column: str, target: str, frequency: str | None) -> _Table:
    if not samples:
        raise DataFileError("no sample files given")
    for s in samples:
        missing = [c for c in (time_column, target) if c not in s.frame.columns]
        if missing:
            raise DataFileError(f"{s.path}: no column {missing[0]!r} (its columns: {', '.join(s.frame.columns)})")
    frame = pd.concat([s.frame for s in samples], ignore_index=True, sort=False)
    times = read_times(frame[time_column], time_column)
    start = 0
    for s in samples:  # every row needs its time: say where one has none
        gaps = times.values.iloc[start : start + len(s.frame)].isna().to_numpy().nonzero()[0]
        if len(gaps):
            raise DataFileError(
                f"{s.path}: column '{time_column}' is empty on line(s) {[int(i) + 2 for i in gaps[:3]]}"
            )
        start += len(s.frame)
    freq = frequency or _frequency(samples, times.values)
    labels = periods.labels(times.values, freq).astype(str)
    return _Table(frame, times, freq, labels, samples)


def _frequency(samples: list[Sample], times: pd.Series) -> str:
    """The frequency the file names give, else the shortest period each file fits in (each file
    a batch), else the shortest whose periods hold ``ROWS_PER_PERIOD`` rows (a history dump)."""
    named = {periods.frequency_of(s.period_in_name) for s in samples if s.period_in_name}
    if len(named) == 1 and all(s.period_in_name for s in samples):
        return str(named.pop())
    bounds = np.cumsum([0, *[len(s.frame) for s in samples]])
    for freq in periods.FREQUENCIES:
        labels = periods.labels(times, freq)
        per_file = [labels.iloc[a:b].nunique() for a, b in pairwise(bounds)]
        if len(samples) > 1 and all(n == 1 for n in per_file):
            return freq
    for freq in periods.FREQUENCIES:
        if periods.labels(times, freq).value_counts().median() >= ROWS_PER_PERIOD:
            return freq
    return "monthly"


def _numeric(values: pd.Series) -> pd.Series | None:
    """The values as numbers when every present one is a number, else None."""
    present = values.dropna()
    numbers = pd.to_numeric(present, errors="coerce")
    return numbers if len(present) and numbers.notna().all() and np.isfinite(numbers).all() else None


def _null_rate(values: pd.Series, labels: pd.Series) -> float:
    """The highest share of missing values in any period of the sample."""
    return float(values.isna().groupby(labels).mean().max())


def _allowance(rate: float) -> float:
    """A null-rate limit above the highest seen: half as much again, at least 2 points, below 1."""
    return 0.0 if rate == 0 else min(0.95, math.ceil(max(rate * 1.5, rate + 0.02) * 100) / 100)


def _nice(value: float, up: bool) -> float | int:
    """``value`` rounded outward to two significant digits."""
    if value == 0 or not np.isfinite(value):
        return 0
    step = 10 ** (math.floor(math.log10(abs(value))) - 1)
    rounded = float(f"{(math.ceil if up else math.floor)(value / step) * step:.10g}")
    return int(rounded) if rounded.is_integer() else rounded


def _range(numbers: pd.Series) -> tuple[float | int, float | int, str]:
    """A range with headroom around the seen values (not below 0 for values never below 0)."""
    lo, hi = float(numbers.min()), float(numbers.max())
    pad = (hi - lo) * HEADROOM or abs(hi) * HEADROOM or 1.0
    low, high = _nice(lo - pad, up=False), _nice(hi + pad, up=True)
    if lo >= 0:
        low = max(low, 0)
    if lo >= 0 and 0.5 < hi <= 1:  # a share
        low, high = 0, 1
    seen = f"seen {lo:.6g} to {hi:.6g}"
    return low, high, seen


def _target(values: pd.Series, column: str, task: str | None, labels: pd.Series) -> tuple[Column, str]:
    numbers = _numeric(values)
    distinct = sorted(values.dropna().astype(str).unique())
    if task is not None and task not in TASKS:
        raise DataFileError(f"--task {task!r} is not one of {', '.join(TASKS)}")
    if task is None:
        if numbers is not None and len(distinct) > MAX_LISTED:
            task = "regression"
        elif len(distinct) == 2:
            task = "classification"
        elif 3 <= len(distinct) <= MAX_LISTED:
            task = "multiclass"
        else:
            raise DataFileError(
                f"target '{column}' has {len(distinct)} distinct values{'' if numbers is not None else ' of text'}:"
                " say which task it is (--task regression, classification or multiclass)"
            )
    out: dict[str, Any] = {"column": column, "task": task}
    said = f"{len(distinct)} distinct values"
    if task == "regression":
        if numbers is None:
            raise DataFileError(f"target '{column}' is not numeric: a regression target must be")
        low, high, seen = _range(numbers)
        out.update(min=low, max=high)
        said = f"{said}; {seen}"
    elif task == "classification":
        if len(distinct) != 2:
            raise DataFileError(f"target '{column}' has {len(distinct)} values, {distinct[:5]}: binary needs 2")
        positive = next((v for v in distinct if v.lower() in POSITIVE), None)
        counts = values.dropna().astype(str).value_counts()
        out["positive"] = positive or str(counts.idxmin())
        said = f"{said}, {', '.join(f'{k} {v}' for k, v in counts.items())}; positive: " + (
            "by its name" if positive else "the rarer (check it)"
        )
    else:
        out["classes"] = distinct
    rate = _null_rate(values, labels)
    if rate:
        out["max_null_rate"] = _allowance(rate)
        said += f"; up to {rate:.1%} of a period's rows unlabelled"
    return Column(column, out, f"{task}: {said}"), task


def _is_id(values: pd.Series, name: str) -> bool:
    """Text (or whole numbers named like an id) unique in every row: an id, not a feature."""
    present = values.dropna()
    if len(present) < MIN_ROWS_TO_JUDGE or present.nunique() != len(present):
        return False
    numbers = _numeric(present)
    named = any(w in name.lower() for w in ("id", "key", "uuid", "code", "number"))
    return numbers is None or (named and bool((numbers == numbers.round()).all()))


def _is_time(values: pd.Series) -> bool:
    present = values.dropna().astype(str)
    if present.empty or _numeric(present) is not None:
        return False
    return bool(pd.to_datetime(present, errors="coerce", format="ISO8601").notna().all())


def _columns(table: _Table, time_column: str, target: str, notes: list[str]) -> tuple[list[Column], list[Column]]:
    """Features and the other columns (kept with the data, never learned), each with its comment."""
    features: list[Column] = []
    other: list[Column] = []
    y = _numeric(table.frame[target])
    for name in table.frame.columns:
        if name in (time_column, target):
            continue
        values = table.frame[name]
        if not FEATURE_NAME.match(name):
            other.append(Column(name, None, f"not learned, its name cannot be a model input: {input_suggestion(name)}"))
            notes.append(f"'{name}' is kept, not learned: {input_name_problem(name)}")
        elif values.isna().all():
            other.append(Column(name, None, "empty in every row of the sample"))
        elif _is_id(values, name):
            other.append(Column(name, None, "unique in every row: an id"))
        elif _is_time(values):
            other.append(Column(name, None, "dates or timestamps: kept, not learned"))
        else:
            numbers = _numeric(values)
            column = _numeric_feature(name, numbers, values, table) if numbers is not None else None
            column = column or _categorical_feature(name, values, table)
            leak = _leak(numbers, y, values, table.frame[target])
            if leak:
                other.append(Column(name, None, leak))
                notes.append(f"'{name}' {leak}: kept out of the features")
                continue
            features.append(column)
    for name in _joint_leak(table.frame, [f for f in features if f.value["type"] == "numeric"], y):
        features = [f for f in features if f.name != name]
        said = "reproduces the target together with others (a sum of parts?): a leak"
        other.append(Column(name, None, said))
        notes.append(f"'{name}' {said}: kept out of the features")
    if not features:
        said = "; ".join(f"{c.name}: {c.comment}" for c in other[:5])
        raise DataFileError(f"no column is left to learn from: {said}")
    return features, other


def _r2(x: np.ndarray, y: np.ndarray) -> float:
    design = np.column_stack([x, np.ones(len(y))])
    fitted = design @ np.linalg.lstsq(design, y, rcond=None)[0]
    return 1.0 - float(np.sum((y - fitted) ** 2)) / float(np.sum((y - y.mean()) ** 2) or 1.0)


def _joint_leak(frame: pd.DataFrame, numeric: list[Column], y: pd.Series | None) -> list[str]:
    """Numeric features that reproduce a numeric target together (a linear fit explains it
    beyond ``leak_correlation``): the ones without which it no longer does, as casual and
    registered riders that add up to all riders."""
    if y is None or len(numeric) < 2:
        return []
    names = [c.name for c in numeric]
    data = pd.concat([frame[names].apply(pd.to_numeric, errors="coerce"), y.rename("__y")], axis=1).dropna()
    if len(data) < max(MIN_ROWS_TO_JUDGE, 3 * len(names)) or data["__y"].std() == 0:
        return []
    x, target = data[names].to_numpy(float), data["__y"].to_numpy(float)
    limit = IngestConfig.leak_correlation
    if _r2(x, target) < limit:
        return []
    return [n for i, n in enumerate(names) if _r2(np.delete(x, i, axis=1), target) < limit - 0.009]


def _leak(numbers: pd.Series | None, y: pd.Series | None, values: pd.Series, target: pd.Series) -> str:
    limit = IngestConfig.leak_correlation
    both = values.notna() & target.notna()
    if both.sum() < MIN_ROWS_TO_JUDGE:
        return ""
    if float((values[both].astype(str) == target[both].astype(str)).mean()) >= limit:
        return "equals the target in nearly every row: a leak"
    if numbers is not None and y is not None:
        x, t = numbers.reindex(values.index)[both].astype(float), y.reindex(values.index)[both].astype(float)
        if x.std() > 0 and t.std() > 0 and abs(float(np.corrcoef(x, t)[0, 1])) >= limit:
            return "correlates with the target beyond 0.999: a leak"
    return ""


def _numeric_feature(name: str, numbers: pd.Series, values: pd.Series, table: _Table) -> Column:
    low, high, seen = _range(numbers)
    out: dict[str, Any] = {"type": "numeric", "min": low, "max": high}
    comment = seen
    rate = _null_rate(values, table.labels)
    if rate:
        out.update(max_null_rate=_allowance(rate), impute="median")
        comment += f"; up to {rate:.1%} missing in a period, filled with the window's median"
    whole = bool((numbers == numbers.round()).all())
    if whole and numbers.nunique() <= 10:
        comment += f"; {numbers.nunique()} whole values: a code? then type: categorical"
    return Column(name, out, comment)


def _categorical_feature(name: str, values: pd.Series, table: _Table) -> Column:
    text = values.dropna().astype(str)
    counts = text.value_counts()
    out: dict[str, Any] = {"type": "categorical"}
    if len(counts) <= MAX_LISTED:
        out["categories"] = list(pd.unique(text.reindex(table.order).dropna()))  # as they first appear
        comment = f"{len(counts)} values; a value not listed quarantines a batch (or allow a share: max_unseen_rate)"
    else:
        out["categories"] = "learn"
        out["max_categories"] = min(100, len(counts))
        comment = f"{len(counts)} values: learned from each training window, the rarer share the unseen slot"
    rate = _null_rate(values, table.labels)
    if rate:
        out["max_null_rate"] = _allowance(rate)
        comment += f"; up to {rate:.1%} missing in a period"
    return Column(name, out, comment)


def _key(table: _Table, time_column: str, target: str, others: list[str], notes: list[str]) -> tuple[list[str], str]:
    """The fewest columns no two rows of a period share: the time column, an id alone, or the
    time column with one or two more (ids and text columns first)."""
    frame = table.frame.assign(__period=table.labels.to_numpy(), **{time_column: table.times.values})

    def unique(cols: list[str]) -> bool:
        return not frame.duplicated(subset=["__period", *cols]).any()

    if unique([time_column]):
        return [time_column], "no two rows share a timestamp in the sample"
    ids = [c for c in others if table.frame[c].notna().all()]
    for c in ids:
        if unique([c]):
            return [c], f"'{c}' is unique in every period of the sample"
    candidates = [c for c in table.frame.columns if c not in (time_column, target) and _whole_or_text(table.frame[c])]
    candidates = sorted(candidates, key=lambda c: (c not in ids, -table.frame[c].nunique()))[:KEY_CANDIDATES]
    for size in (1, 2):
        for extra in combinations(candidates, size):
            if unique([time_column, *extra]):
                return [time_column, *extra], f"{size + 1} columns: the first key unique in every period of the sample"
    notes.append("no key of up to three columns is unique in the sample: unique_by is empty (rows may repeat)")
    return [], "no key of up to three columns is unique in the sample: rows need not be unique"


def _whole_or_text(values: pd.Series) -> bool:
    """A column that may be part of a key: present in every row, text or whole numbers."""
    if values.isna().any():
        return False
    numbers = _numeric(values)
    return numbers is None or bool((numbers == numbers.round()).all())


def _rows(table: _Table) -> tuple[dict[str, int], str]:
    counts = table.labels.value_counts()
    least, most, middle = int(counts.min()), int(counts.max()), float(counts.median())
    rows = {"min": max(1, math.floor(least * 0.8)), "max": math.ceil(most * 1.5)}
    comment = (
        f"seen {least} to {most} rows a period (median {middle:g}, {len(counts)} periods); fewer than"
        f" {rows['min']} quarantines a batch as partial"
    )
    return rows, comment


def _tuned_checks(table: _Table, numeric: list[Column]) -> dict[str, tuple[dict[str, Any], str]]:
    """The constant-feature and unit-change checks the sample's own periods would trip, delivered
    one after the other, switched off or loosened for the features that trip them."""
    limit = IngestConfig.max_scale_change
    frames = {p: g for p, g in table.frame.groupby(table.labels, sort=True)}
    out: dict[str, tuple[dict[str, Any], str]] = {}
    for f in numeric:
        values = {p: pd.to_numeric(g[f.name], errors="coerce").dropna() for p, g in frames.items()}
        constant, widest = [], (1.0, "")
        for p, col in values.items():
            before = [values[b] for b in reference_periods([q for q in values if q < p], p) if b < p]
            before = [b for b in before if len(b) >= MIN_ROWS_TO_JUDGE]
            if len(col) < MIN_ROWS_TO_JUDGE or not before:
                continue
            season = values.get(periods.a_year_before(p, table.frequency))
            if went_constant(col, before, season):
                constant.append(p)
                continue
            ratio = spread_ratio(col, before, season)
            if ratio is not None and max(ratio, 1 / ratio) > widest[0]:
                widest = (max(ratio, 1 / ratio), p)
        tuned: dict[str, Any] = {}
        said = []
        if constant:
            tuned["checks"] = {"constant_feature": False}
            said.append(f"constant in {', '.join(constant[:3])} while it varied before: seasonal, not checked")
        if widest[0] >= limit:
            tuned["max_scale_change"] = _nice(widest[0] * 1.5, up=True)
            said.append(f"its spread moved {widest[0]:.3g}x in {widest[1]}: a unit-change limit above that")
        if tuned:
            out[f.name] = (tuned, "; ".join(said))
    return out


def _encoding(table: _Table) -> dict[str, str]:
    used = {s.encoding for s in table.files if s.encoding}
    return {"encoding": used.pop()} if used and used != {"utf-8"} and len(used) == 1 else {}


def _training(table: _Table) -> dict[str, int]:
    """The window and holdout for the frequency (shortened to the sample's periods when it holds
    fewer), and a batch size that gives an epoch about 20 steps on such a window."""
    window, holdout = WINDOWS[table.frequency]
    n = len(table.periods)
    if n >= 2 and window + holdout > n:
        holdout = max(1, min(holdout, n // 4))
        window = n - holdout
    rows = float(table.labels.value_counts().median()) * window
    batch = int(min(128, max(16, 2 ** round(math.log2(max(rows / 20, 1))))))
    return {"window_periods": window, "holdout_periods": holdout, "batch_size": batch}


def _flow(value: Any) -> str:
    """A value as one line of YAML (text that YAML 1.1 would read as a boolean or a number is quoted)."""
    return str(yaml.safe_dump([value], default_flow_style=True, width=1 << 20, sort_keys=False)).strip()[1:-1]


def _line(key: str, value: Any, comment: str, indent: int = 0) -> str:
    text = f"{' ' * indent}{key}: {_flow(value)}"
    return f"{text}  # {comment}" if comment else text


def _render(
    data: dict[str, Any],
    table: _Table,
    target: Column,
    features: list[Column],
    other: list[Column],
    key_comment: str,
    rows_comment: str,
    consistency: list[str],
) -> str:
    n_rows, spans = len(table.frame), f"{table.periods[0]} to {table.periods[-1]}"
    times = table.times
    format_said = ("ISO 8601" if times.time_format is None else f"'{times.time_format}'") + (
        ", with zones (read as UTC)" if times.zoned else ""
    )
    lines = [
        f"# Drafted from {len(table.files)} sample file(s), {n_rows} rows, {spans}: every value below is what the",
        "# sample showed. Read the comments, change what the sample cannot know, then check it:",
        f"#   python -m retrainer spec check {data['name']} --against <files>",
        "# Every field: docs/specs.md. Sections left out (approval, deploy, drift) take their defaults.",
        _line("name", data["name"], ""),
        _line("description", data["description"], ""),
        _line("model_name", data["model_name"], ""),
        _line("time_column", data["time_column"], f"timestamps {format_said}"),
    ]
    if "time_format" in data:
        lines.append(_line("time_format", data["time_format"], _format_comment(times.time_format)))
    median = table.labels.value_counts().median()
    lines.append(_line("frequency", data["frequency"], f"{median:g} rows a period (median): one batch a period"))
    lines.append(_line("unique_by", data["unique_by"], key_comment))
    lines.append(f"target:  # {target.comment}")
    lines += [_line(k, v, "", 2) for k, v in data["target"].items()]
    lines.append("features:")
    lines += [_line(f.name, f.value, f.comment, 2) for f in features]
    lines.append("rows:  # " + rows_comment)
    lines += [_line(k, v, "", 2) for k, v in data["rows"].items()]
    lines += consistency
    lines.append("ingest:")
    kept = "; ".join(f"{c.name}: {c.comment}" for c in other)
    lines.append(_line("other_columns", data["ingest"]["other_columns"], kept or "every column is used", 2))
    if "encoding" in data["ingest"]:
        lines.append(_line("encoding", data["ingest"]["encoding"], "the sample's CSV text is not UTF-8", 2))
    lines.append(
        "training:  # the window and holdout in periods (the sample's history may be shorter than yours), and"
        " a batch size for about 20 steps an epoch on such a window"
    )
    lines += [_line(k, v, "", 2) for k, v in data["training"].items()]
    lines.append("gate:")
    lines.append(_line("metric", data["gate"]["metric"], f"the default for {data['target']['task']}", 2))
    lines += _slice_hint(features, table)
    return "\n".join(lines) + "\n"


def _consistency_lines(data: dict[str, Any], coverage_comment: str, relations: list[tuple[str, str]]) -> list[str]:
    """The ``coverage`` and ``relations`` sections, each line with what the sample showed."""
    lines = []
    if "coverage" in data:
        lines.append("coverage:  # " + coverage_comment)
        lines += [_line(k, v, "", 2) for k, v in data["coverage"].items()]
    if relations:
        lines.append("relations:  # held on every row of the sample: a batch where one does not hold is quarantined")
        lines += [f"  - {_flow(text)}  # {why}" for text, why in relations]
    return lines


def _format_comment(fmt: str | None) -> str:
    if fmt and fmt.startswith("%d/%m"):
        return "day first: every value reads so (check: month-first may read them too)"
    return "every value of the sample reads so"


def _slice_hint(features: list[Column], table: _Table) -> list[str]:
    """Slices are a reviewer's choice: the draft names candidates in a comment and sizes
    ``min_slice_rows`` to a holdout of this data."""
    listed = [
        f.name for f in features if isinstance(f.value.get("categories"), list) and len(f.value["categories"]) <= 12
    ]
    if not listed:
        return []
    holdout = int(table.labels.value_counts().median()) * _training(table)["holdout_periods"]
    rows = max(30, holdout // 20)
    return [
        f"  # slices: {_flow(listed[:3])}  # candidates, compared value by value against the champion",
        f"  # min_slice_rows: {rows}  # a holdout here has about {holdout} rows: a value with fewer rows than"
        " this is shown, not judged (lower, and a few rows' noise fails the gate)",
    ]


#: the timestamps lie on a grid when at least this share of the gaps between consecutive ones is one step
GRID_SHARE = 0.9
#: a grid is proposed as coverage when a period holds at least this many of its steps
MIN_STEPS_A_PERIOD = 4
#: time parts a column may be a label of, finest first, each with the cycle it repeats in
CYCLES = {"hour": "D", "weekday": "W", "day": "M", "month": "Y", "quarter": "Y"}
#: a column with more values than this is not looked at as a label of a time part
MAX_LABELS = 400
#: sums of columns are screened on this many rows before they are checked on every row
SCREEN_ROWS = 500
#: a column a relation names without backticks
OPERAND = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*$")


def _grid_step(times: pd.Series) -> pd.Timedelta | None:
    """The step the sample's timestamps lie on (the most common gap between consecutive distinct
    ones, when nearly every gap is that), in a unit the spec can write; None when irregular."""
    instants = pd.DatetimeIndex(times.dropna().unique()).sort_values()
    if len(instants) < 2 * MIN_STEPS_A_PERIOD:
        return None
    gaps = pd.Series(instants[1:] - instants[:-1])
    step = pd.Timedelta(gaps.mode().iloc[0])
    if (gaps == step).mean() < GRID_SHARE or step.total_seconds() < 1 or step.total_seconds() % 1:
        return None
    per_instant = times.value_counts()  # a series (or a panel) has as many rows at every instant; events do not
    if (per_instant == per_instant.mode().iloc[0]).mean() < GRID_SHARE:
        return None
    return step


def _step_text(step: pd.Timedelta) -> str:
    """A step in one unit, as ``coverage.step`` takes it (``1h``, ``15min``, ``1d``)."""
    seconds = int(step.total_seconds())
    unit, size = next(
        (u, s) for u, s in (("w", 604_800), ("d", 86_400), ("h", 3_600), ("min", 60), ("s", 1)) if seconds % s == 0
    )
    return f"{seconds // size}{unit}"


def _coverage(table: _Table, notes: list[str]) -> tuple[dict[str, Any] | None, str]:
    """A ``coverage`` section when the timestamps lie on a grid: the share of its steps every whole
    period of the sample holds, less a margin; None for event data (no grid)."""
    step = _grid_step(table.times.values)
    if step is None:
        return None, ""
    first, last = table.times.values.min(), table.times.values.max() + step
    shares, partial = [], []
    for p in table.periods:
        start, end = periods.bounds(p, table.frequency)
        if pd.Timestamp(start) < first or pd.Timestamp(end) > last:  # the sample holds part of it only
            partial.append(p)
            continue
        steps = Steps.of(table.times.values[table.labels == p], p, table.frequency, step)
        if len(steps.expected) < MIN_STEPS_A_PERIOD:
            return None, ""
        shares.append(float(steps.held.mean()))
    if not shares:
        return None, ""
    least = math.floor(min(shares) * 0.95 * 100) / 100
    if partial:
        notes.append(
            f"the sample begins or ends inside a period ({', '.join(partial)}): `spec check` calls such a part"
            " incomplete (coverage); a whole batch of it is judged as the others"
        )
    comment = (
        f"one row every {_step_text(step)}: the sample's {len(shares)} whole periods hold {min(shares):.1%} to"
        f" {max(shares):.1%} of their steps; a batch holding fewer than {least:.0%} is quarantined as incomplete"
    )
    return {"step": _step_text(step), "min_share": least}, comment


def _relations(
    table: _Table, time_column: str, features: list[Column], other: list[Column], target: str
) -> list[tuple[str, str]]:
    """Relations the sample holds on every row, each with what was seen: a column that labels a
    time part one to one (``hr = hour(ts)``), and a number that is the sum of two others."""
    return [
        *_labels_of_time(table, time_column, [c.name for c in (*features, *other)]),
        *_sums(table, features, other, target),
    ]


def _labels_of_time(table: _Table, time_column: str, names: list[str]) -> list[tuple[str, str]]:
    """Columns whose values label a time part one to one, each value of the part seen in two
    cycles at least (every hour on two days), so the labelling is the data's, not the sample's."""
    times = table.times.values
    found = []
    for name in names:
        values = table.frame[name]
        ok = values.notna() & times.notna()
        if not 2 <= values[ok].nunique() <= MAX_LABELS:
            continue
        for part, cycle in CYCLES.items():
            key = getattr(times[ok].dt, PARTS[part])
            pairs = pd.DataFrame({"key": key, "value": values[ok]}).drop_duplicates()
            one_to_one = pairs["key"].is_unique and pairs["value"].is_unique and len(pairs) >= 2
            seen_twice = times[ok].dt.to_period(cycle).groupby(key).nunique().min() >= 2
            if one_to_one and seen_twice:
                found.append(
                    (
                        f"{_operand(name)} = {part}({_operand(time_column)})",
                        f"each {part} has one {name} and each {name} one {part} ({len(pairs)} of them)",
                    )
                )
                break
    return found


def _sums(table: _Table, features: list[Column], other: list[Column], target: str) -> list[tuple[str, str]]:
    """Numeric columns that equal the sum of two others on every row of the sample."""
    numeric = {c.name: _numeric(table.frame[c.name]) for c in (*features, *other)}
    numbers = {n: v for n, v in {**numeric, target: _numeric(table.frame[target])}.items() if v is not None}
    found = []
    head = {n: v.iloc[:SCREEN_ROWS].to_numpy(dtype="float64") for n, v in numbers.items()}
    for total, parts in ((t, [n for n in numbers if n != t]) for t in numbers):
        for a, b in combinations(parts, 2):
            if not np.allclose(head[a] + head[b], head[total], rtol=1e-9, atol=1e-9, equal_nan=True):
                continue  # most pairs fail on the first rows: only the rest are checked on every row
            rows = numbers[total].notna() & numbers[a].notna() & numbers[b].notna()
            if rows.sum() < MIN_ROWS_TO_JUDGE or not numbers[total][rows].any():
                continue
            if np.allclose(numbers[a][rows] + numbers[b][rows], numbers[total][rows], rtol=1e-9, atol=1e-9):
                found.append((f"{_operand(total)} = {_operand(a)} + {_operand(b)}", f"on all {int(rows.sum())} rows"))
    return found


def _operand(name: str) -> str:
    """A column as a relation names it (in backticks unless letters, digits, ``_`` and ``.``)."""
    return name if OPERAND.match(name) else f"`{name}`"
