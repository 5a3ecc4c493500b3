"""Checks of a readable batch that no per-value expectation makes: columns the spec does not
name, a feature that leaks the target, and, against the data already versioned, a partial
re-delivery, a numeric feature gone constant, a unit change, and an implausible target (mostly
0, constant, its mean or spread far off, a class gone or never seen).

Each check returns reasons in words (column, what, by how much); an empty list means the
batch passed. The versioned data is a few periods of the latest data version
(``Reference``); with none yet (the first batch), only the checks that need none run. Where
the version holds the same season a year before (``periods.a_year_before``), a feature that
was as constant, or spread as narrowly, then is seasonal, not broken: the constant-feature and
unit-change checks pass it, and so a real unit change (off against the season too) still fails.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from retrainer.data.batchfile import canonical_order, lines_of, sample
from retrainer.spec.columns import Feature
from retrainer.spec.dataset import DatasetSpec

#: how many versioned periods before the batch's own are compared with
REFERENCE_PERIODS = 3
#: fewer rows than this in a batch: no constant or scale judgement
MIN_ROWS_TO_JUDGE = 20


@dataclass
class Reference:
    """Versioned data to compare a batch with: frames by period, and the version they are from;
    ``texts`` holds the versioned file of the batch's own period when it is a re-delivery."""

    version: str = ""
    periods: dict[str, pd.DataFrame] = field(default_factory=dict)
    texts: dict[str, str] = field(default_factory=dict)
    season: pd.DataFrame | None = None  # the same season a year before the batch's period, if versioned

    def others(self, period: str) -> list[pd.DataFrame]:
        return [df for p, df in sorted(self.periods.items()) if p != period]


def unexpected_columns(df: pd.DataFrame, spec: DatasetSpec) -> list[str]:
    """The batch's columns the spec does not name (neither used nor in ``ingest.other_columns``)."""
    known = {spec.time_column, spec.target.column, *spec.feature_names, *spec.ingest.other_columns}
    return [str(c) for c in df.columns if c not in known]


def column_problems(df: pd.DataFrame, spec: DatasetSpec) -> list[str]:
    """Columns the spec does not name (when ``ingest.extra_columns`` is ``reject``)."""
    extra = unexpected_columns(df, spec)
    if spec.ingest.extra_columns != "reject" or not extra:
        return []
    return [
        f"unexpected column{'s' if len(extra) > 1 else ''} {sample(extra) if len(extra) <= 3 else extra[:3]}"
        f"{f' and {len(extra) - 3} more' if len(extra) > 3 else ''}: not in the spec (list known extra columns"
        " under ingest.other_columns to keep them, never used as features, or set ingest.extra_columns: drop)"
    ]


def leak_problems(df: pd.DataFrame, spec: DatasetSpec) -> list[str]:
    """Features that carry the target: equal to it in nearly every row, or (numeric) correlated
    with it beyond ``ingest.leak_correlation``."""
    target = spec.target.column
    if target not in df or len(df) < MIN_ROWS_TO_JUDGE:
        return []
    limit = spec.ingest.leak_correlation
    y = df[target]
    problems = []
    for f in spec.features:
        if f.name not in df or not spec.ingest.checks_on("target_leak", f):
            continue
        x = df[f.name]
        both = x.notna() & y.notna()
        if both.sum() < MIN_ROWS_TO_JUDGE:
            continue
        same = float((x[both].astype(str) == y[both].astype(str)).mean())
        if same >= limit:
            problems.append(
                f"feature '{f.name}' equals the target '{target}' in {same:.1%} of rows: a leak"
                " (ingest.checks.target_leak)"
            )
            continue
        if f.type == "numeric" and pd.api.types.is_numeric_dtype(y) and pd.api.types.is_numeric_dtype(x):
            xs, ys = x[both].astype("float64"), y[both].astype("float64")
            finite = np.isfinite(xs) & np.isfinite(ys)
            xs, ys = xs[finite], ys[finite]
            if len(xs) >= MIN_ROWS_TO_JUDGE and xs.std() > 0 and ys.std() > 0:
                r = float(np.corrcoef(xs, ys)[0, 1])
                if abs(r) >= limit:
                    problems.append(
                        f"feature '{f.name}' is correlated with the target '{target}' at r={r:.4f}"
                        f" (limit {limit}, ingest.leak_correlation): a leak (ingest.checks.target_leak)"
                    )
    return problems


def _spread(s: pd.Series) -> float:
    q = s.dropna().astype("float64").quantile([0.1, 0.9])
    return float(q.iloc[1] - q.iloc[0])


def reference_problems(df: pd.DataFrame, spec: DatasetSpec, period: str, ref: Reference) -> list[str]:
    """What the versioned data shows wrong with the batch: a feature constant where it always
    varied, a numeric feature on another scale (a unit change), unless ``ingest.checks`` (or the
    feature's own ``checks``) turns them off. (A re-delivery's rows: ``redelivery_problems``.)"""
    if not ref.periods:
        return []
    problems: list[str] = []
    others = ref.others(period) or list(ref.periods.values())
    if len(df) < MIN_ROWS_TO_JUDGE:
        return problems
    for f in spec.numeric_features:  # a category may well hold one value all period (holiday in June)
        if f.name not in df:
            continue
        col = df[f.name].dropna()
        if col.empty:
            continue
        before = [o[f.name].dropna() for o in others if f.name in o and len(o) >= MIN_ROWS_TO_JUDGE]
        if not before:
            continue
        season = _season_column(ref, f.name)
        problem = _constant_problem(spec, f, col, before, season, ref.version)
        if problem is None:
            problem = _scale_problem(spec, f, col, before, season, ref.version)
        if problem:
            problems.append(problem)
    return problems


def went_constant(col: pd.Series, before: list[pd.Series], season: pd.Series | None = None) -> bool:
    """Whether a column (missing values left out) holds one value where it varied in every
    period before, and in the same season a year before when that is known."""
    if col.nunique() != 1 or not before or not all(b.nunique() > 1 for b in before):
        return False
    return season is None or season.nunique() > 1


def spread_ratio(col: pd.Series, before: list[pd.Series], season: pd.Series | None = None) -> float | None:
    """How many times wider (above 1) or narrower (below 1) a numeric column spreads than the
    periods before (the median of their spreads, 10th to 90th percentile); with the same season
    a year before, the ratio nearer 1 of the two, so a seasonal spread is not a unit change.
    None where a spread is 0 or not numeric."""
    if not pd.api.types.is_numeric_dtype(col):
        return None
    new = _spread(col)
    old = float(np.median([_spread(b) for b in before if pd.api.types.is_numeric_dtype(b)] or [0.0]))
    if new <= 0 or old <= 0:
        return None
    ratio = new / old
    if season is not None and pd.api.types.is_numeric_dtype(season) and _spread(season) > 0:
        seasonal = new / _spread(season)
        ratio = min(ratio, seasonal, key=lambda r: abs(np.log(r)))
    return ratio


def reference_periods(versioned: Sequence[str], period: str) -> list[str]:
    """The versioned periods a batch of ``period`` is compared with: the ``REFERENCE_PERIODS``
    before it, or (a batch older than all of them) the first ones after it."""
    before = [p for p in sorted(versioned) if p < period][-REFERENCE_PERIODS:]
    return before or [p for p in sorted(versioned) if p != period][:REFERENCE_PERIODS]


def _season_column(ref: Reference, name: str) -> pd.Series | None:
    """The feature's values in the same season a year before, when versioned with enough rows."""
    if ref.season is None or name not in ref.season or len(ref.season) < MIN_ROWS_TO_JUDGE:
        return None
    values = ref.season[name].dropna()
    return values if not values.empty else None


def _constant_problem(
    spec: DatasetSpec, f: Feature, col: pd.Series, before: list[pd.Series], season: pd.Series | None, version: str
) -> str | None:
    """A feature holding one value where it varied in every versioned period compared (and, if
    versioned, in the same season a year before: a column constant then too is seasonal)."""
    if not spec.ingest.checks_on("constant_feature", f) or not went_constant(col, before, season):
        return None
    also = " and in the same season a year before" if season is not None else ""
    return (
        f"column '{f.name}' holds one value ({sample([col.iloc[0]])[1:-1]}) in all {len(col)} rows;"
        f" it varies in every versioned period compared{also} ({version}; ingest.checks.constant_feature;"
        f" a feature constant in some seasons: features.{f.name}.checks.constant_feature: false)"
    )


def _scale_problem(
    spec: DatasetSpec, f: Feature, col: pd.Series, before: list[pd.Series], season: pd.Series | None, version: str
) -> str | None:
    """A numeric feature whose spread is the feature's scale limit times off the versioned
    periods' (and off the same season's a year before, when versioned): a unit change."""
    if not spec.ingest.checks_on("unit_change", f) or not pd.api.types.is_numeric_dtype(col):
        return None
    limit = spec.ingest.scale_limit(f)
    ratio = spread_ratio(col, before, season)
    if ratio is None or 1 / limit < ratio < limit:
        return None
    given = "ingest.max_scale_change" if f.max_scale_change is None else f"features.{f.name}.max_scale_change"
    return (
        f"column '{f.name}': {_spread_said(col, ratio, season, version)}: a unit change? (limit {limit:g}, {given};"
        f" a feature whose spread really moves: features.{f.name}.max_scale_change or"
        f" features.{f.name}.checks.unit_change: false)"
    )


def _spread_said(col: pd.Series, ratio: float, season: pd.Series | None, version: str) -> str:
    """How a column's spread is off the versioned data's, in words, with both spreads."""
    new = _spread(col)
    way = f"{ratio:.3g}x wider" if ratio > 1 else f"{1 / ratio:.3g}x narrower"
    also = " and than the same season a year before" if season is not None else ""
    return (
        f"its values spread {way} than in the versioned data{also} ({new:.3g} vs {new / ratio:.3g}"
        f" between the 10th and 90th percentiles, {version})"
    )


#: a regression target may be 0 in this much larger a share of rows than in any versioned period
ZERO_SHARE_MARGIN = 0.25
#: a class missing from a batch is judged only where its lowest versioned share expects this many rows
MIN_EXPECTED_ROWS = 5
#: how a target problem says which check it is, and how to switch it off for a target that really does so
_TARGET_SWITCH = "ingest.checks.{0}; a target that really does this: target.checks.{0}: false"


def target_problems(df: pd.DataFrame, spec: DatasetSpec, period: str, ref: Reference) -> list[str]:
    """What the versioned data shows implausible about the batch's target: a regression target
    mostly 0, constant, or with a mean or spread far off the versioned periods'; a class every
    versioned period holds gone, or (binary) a value none of them holds. The same season a year
    before, when versioned, softens each as it does for the features. Unless ``target.checks`` or
    ``ingest.checks`` turns ``target_distribution`` (or, for the spread, ``unit_change``) off."""
    name = spec.target.column
    if not ref.periods or name not in df or len(df) < MIN_ROWS_TO_JUDGE:
        return []
    others = ref.others(period) or list(ref.periods.values())
    before = [o[name].dropna() for o in others if name in o and len(o) >= MIN_ROWS_TO_JUDGE]
    col, season = df[name].dropna(), _season_column(ref, name)
    if col.empty or not before:
        return []
    if spec.target.task != "regression":
        return (
            _class_problems(spec, df, col, before, season, ref.version)
            if _target_check(spec, "target_distribution")
            else []
        )
    col, before = _numbers(col), [_numbers(b) for b in before]
    season = None if season is None else _numbers(season)
    found = []
    if _target_check(spec, "target_distribution"):
        judged = (_zeros_problem, _constant_target_problem, _mean_problem)
        found += [p for p in (check(spec, col, before, season, ref.version) for check in judged) if p][:1]
    if _target_check(spec, "unit_change"):
        ratio = spread_ratio(col, before, season)
        limit = spec.ingest.max_scale_change
        if ratio is not None and not 1 / limit < ratio < limit:
            found.append(
                f"target '{name}': {_spread_said(col, ratio, season, ref.version)}: a unit change? (limit {limit:g},"
                f" ingest.max_scale_change; {_TARGET_SWITCH.format('unit_change')})"
            )
    return found


def _target_check(spec: DatasetSpec, check: str) -> bool:
    """Whether ``check`` runs on the target: its own ``target.checks`` first, then ``ingest.checks``."""
    return dict(spec.target.checks).get(check, spec.ingest.checks_on(check))


def _numbers(s: pd.Series) -> pd.Series:
    return pd.to_numeric(s, errors="coerce").dropna().astype("float64")


def _also(season: pd.Series | None) -> str:
    return " and in the same season a year before" if season is not None else ""


def _zeros_problem(
    spec: DatasetSpec, col: pd.Series, before: list[pd.Series], season: pd.Series | None, version: str
) -> str | None:
    """A target 0 in a share of rows far above the highest share of any versioned period."""
    share = float((col == 0).mean())
    most = max(float((b == 0).mean()) for b in [*before, *([] if season is None else [season])])
    if share == 0 or share <= most + ZERO_SHARE_MARGIN:
        return None
    return (
        f"target '{spec.target.column}' is 0 in {share:.1%} of rows (at most {most:.1%} in the versioned periods"
        f" compared{_also(season)}, {version}): a broken export? ({_TARGET_SWITCH.format('target_distribution')})"
    )


def _constant_target_problem(
    spec: DatasetSpec, col: pd.Series, before: list[pd.Series], season: pd.Series | None, version: str
) -> str | None:
    """A target holding one value where it varied in every versioned period compared."""
    if not went_constant(col, before, season):
        return None
    return (
        f"target '{spec.target.column}' holds one value ({col.iloc[0]:g}) in all {len(col)} labelled rows; it varies"
        f" in every versioned period compared{_also(season)} ({version}): a broken export?"
        f" ({_TARGET_SWITCH.format('target_distribution')})"
    )


def mean_ratio(col: pd.Series, before: list[pd.Series], season: pd.Series | None = None) -> float | None:
    """How many times above (over 1) or below (under 1) the periods before (the median of their
    means) a target's mean lies; with the same season a year before, the ratio nearer 1 of the
    two, as ``spread_ratio`` does. None for a target that may be negative or whose versioned mean
    is 0: a ratio of means says nothing there (its spread still does)."""
    known = [*before, *([] if season is None else [season])]
    if any(b.empty or b.min() < 0 for b in known) or col.min() < 0:
        return None
    old = float(np.median([b.mean() for b in before]))
    if old <= 0:
        return None
    ratio = float(col.mean()) / old
    if season is not None and season.mean() > 0:
        ratio = min(ratio, float(col.mean() / season.mean()), key=lambda r: abs(np.log(r)) if r > 0 else np.inf)
    return ratio


def _mean_problem(
    spec: DatasetSpec, col: pd.Series, before: list[pd.Series], season: pd.Series | None, version: str
) -> str | None:
    """A regression target whose mean is ``target.max_mean_change`` times off the versioned periods'."""
    limit = spec.target.max_mean_change
    ratio = mean_ratio(col, before, season)
    if ratio is None or 1 / limit < ratio < limit:
        return None
    new = float(col.mean())
    way = f"{ratio:.3g}x above" if ratio > 1 else (f"{1 / ratio:.3g}x below" if ratio > 0 else "far below")
    old = new / ratio if ratio > 0 else float(np.median([b.mean() for b in before]))
    return (
        f"target '{spec.target.column}': its mean {new:.4g} is {way} the versioned periods' ({old:.4g}"
        f"{_also(season)}, {version}): a broken export or another unit? (limit {limit:g}, target.max_mean_change;"
        f" {_TARGET_SWITCH.format('target_distribution')})"
    )


def _class_problems(
    spec: DatasetSpec, df: pd.DataFrame, col: pd.Series, before: list[pd.Series], season: pd.Series | None, version: str
) -> list[str]:
    """A class held by every versioned period compared (often enough that missing it is no chance)
    gone from the batch; for a binary target, a value no versioned period holds, which the model
    would take for the negative class."""
    name, col = spec.target.column, col.astype(str)
    before = [b.astype(str) for b in before]
    seen = set(col)
    found = []
    for cls in sorted(set.intersection(*(set(b) for b in before)) - seen):
        lowest = min(float((b == cls).mean()) for b in before)
        if lowest * len(col) < MIN_EXPECTED_ROWS or (season is not None and cls not in set(season.astype(str))):
            continue
        found.append(
            f"target '{name}': class '{cls}' is missing from all {len(col)} labelled rows, though every versioned"
            f" period compared{_also(season)} holds it, in at least {lowest:.1%} of rows ({lowest * len(col):.0f}"
            f" expected here; {version}): a broken export? ({_TARGET_SWITCH.format('target_distribution')})"
        )
    if spec.target.task == "classification":
        found += _new_values(spec, df, col, before, season, version)
    return found


def _new_values(
    spec: DatasetSpec, df: pd.DataFrame, col: pd.Series, before: list[pd.Series], season: pd.Series | None, version: str
) -> list[str]:
    """A binary target's values no versioned period compared holds (nor the positive class)."""
    known = set().union(*(set(b) for b in before), set() if season is None else set(season.astype(str)))
    new = sorted(set(col) - known - {spec.target.positive})
    if not new:
        return []
    rows = col.index[col.isin(new)]
    return [
        f"target '{spec.target.column}': {len(rows)} row{'s hold' if len(rows) > 1 else ' holds'} {sample(new)},"
        f" a value no versioned period compared holds (they hold {sample(sorted(known))}; {version})"
        f" ({lines_of(rows)}):"
        f" the model would take it for not '{spec.target.positive}'; a renamed class?"
        f" ({_TARGET_SWITCH.format('target_distribution')})"
    ]


@dataclass(frozen=True)
class Redelivery:
    """How a re-delivered period differs from its versioned rows (both canonical text frames):
    rows only in the version (``missing``), only in the delivery (``new``), and rows whose key
    is in both with other values (``changed``). Without a key (``unique_by: []``) a row is its
    values, so a changed row counts as one missing and one new."""

    rows_versioned: int
    rows_delivered: int
    missing: int
    new: int
    changed: int
    examples: tuple[str, ...] = ()

    @property
    def same(self) -> bool:
        return self.missing == self.new == self.changed == 0 and self.rows_versioned == self.rows_delivered

    def says(self) -> str:
        parts = [
            f"{n} {what}" for n, what in ((self.missing, "missing"), (self.changed, "changed"), (self.new, "new")) if n
        ]
        shown = f" (e.g. {'; '.join(self.examples)})" if self.examples else ""
        return f"{', '.join(parts) or 'no row differs'}{shown}"


def _key(spec: DatasetSpec, columns: list[str]) -> list[str]:
    key = [c for c in spec.unique_by if c in columns]
    return key if key and len(key) == len(spec.unique_by) else []


def compare_redelivery(new: pd.DataFrame, old: pd.DataFrame, spec: DatasetSpec) -> Redelivery:
    """Row by row, the delivery ``new`` against the versioned ``old`` (canonical text frames)."""
    columns = list(dict.fromkeys([*old.columns, *new.columns]))
    new = new.reindex(columns=columns, fill_value="").astype(str)
    old = old.reindex(columns=columns, fill_value="").astype(str)
    key = _key(spec, columns)
    if not key:  # rows are their values: compare as multisets
        counted_new = new.value_counts().rename("n_new")
        counted_old = old.value_counts().rename("n_old")
        both = pd.concat([counted_new, counted_old], axis=1).fillna(0)
        extra = (both["n_new"] - both["n_old"]).clip(lower=0)
        gone = (both["n_old"] - both["n_new"]).clip(lower=0)
        return Redelivery(len(old), len(new), int(gone.sum()), int(extra.sum()), 0)
    merged = old.drop_duplicates(key).merge(
        new.drop_duplicates(key), on=key, how="outer", suffixes=("_old", "_new"), indicator=True
    )
    missing = int((merged["_merge"] == "left_only").sum())
    added = int((merged["_merge"] == "right_only").sum())
    inside = merged[merged["_merge"] == "both"]
    values = [c for c in columns if c not in key]
    differs = pd.Series(False, index=inside.index)
    first: dict[int, str] = {}
    for c in values:
        d = inside[f"{c}_old"] != inside[f"{c}_new"]
        for i in d[d & ~differs].index[:3]:
            row = ", ".join(f"{k}={inside.at[i, k]!s}" for k in key)
            was, now = sample([inside.at[i, f"{c}_old"]]), sample([inside.at[i, f"{c}_new"]])
            first.setdefault(i, f"{row}: {c} {was} -> {now}")
        differs |= d
    examples = tuple(first[i] for i in sorted(first)[:3])
    return Redelivery(len(old), len(new), missing, added, int(differs.sum()), examples)


def redelivery_problems(diff: Redelivery, spec: DatasetSpec, period: str, version: str) -> list[str]:
    """What ``ingest.redelivery`` makes of a re-delivered period: ``reject`` refuses any
    difference, ``append`` refuses changed rows (it only adds), ``replace`` refuses losing more
    rows than ``ingest.redelivery_max_row_loss`` allows."""
    policy = spec.ingest.redelivery
    versioned = f"{period} is versioned already ({version}, {diff.rows_versioned} rows)"
    if diff.same:
        return []
    if policy == "replace":
        had, now, loss = diff.rows_versioned, diff.rows_delivered, spec.ingest.redelivery_max_row_loss
        if now >= had * (1 - loss):
            return []
        return [
            f"a re-delivery of {period} with {now} rows would replace the {had} rows versioned in {version}"
            f" ({had - now} fewer): a partial delivery? (ingest.redelivery_max_row_loss {loss:g})"
        ]
    if policy == "reject":
        return [
            f"{versioned} and this re-delivery of {diff.rows_delivered} rows differs from it: {diff.says()}; "
            "ingest.redelivery is 'reject' (a corrected delivery needs 'replace', late rows 'append')"
        ]
    if diff.changed:
        return [
            f"{versioned} and this re-delivery changes {diff.changed} of its rows: {diff.says()}; ingest.redelivery "
            "is 'append', which adds rows and never changes versioned ones"
        ]
    return []


def appended(old: pd.DataFrame, new: pd.DataFrame, spec: DatasetSpec) -> pd.DataFrame:
    """The versioned rows and the delivery's rows that are not among them (canonical order)."""
    columns = list(dict.fromkeys([*old.columns, *new.columns]))
    both = pd.concat([old.reindex(columns=columns, fill_value=""), new.reindex(columns=columns, fill_value="")])
    return canonical_order(both.astype(str).drop_duplicates(_key(spec, columns) or None, keep="first"), spec)
