"""The columns a data version keeps that the model never learns (``ingest.other_columns``),
checked value by value, since no expectation looks at them: a numeric one holds numbers in its
range, a text one at most ``max_chars`` characters, each at most ``max_null_rate`` missing. And
every kept text column's values a spreadsheet would run as a formula (``retrainer.data.formulas``),
as ``ingest.formulas`` says: ``reject`` refuses the batch naming them, ``neutralise`` notes them
(the canonical form holds them behind a leading ``'``), ``allow`` versions them as delivered.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from retrainer.data.batchfile import lines_of, sample
from retrainer.data.formulas import NEUTRALISER, kept_text_columns, runs_as_formula
from retrainer.spec.dataset import DatasetSpec
from retrainer.spec.intake import OtherColumn


def problems(df: pd.DataFrame, spec: DatasetSpec) -> list[str]:
    """What is wrong with the kept columns' values: each other column against its rules and,
    under ``ingest.formulas: reject``, the values a spreadsheet would run."""
    found = [
        problem
        for rule in spec.ingest.other_column_rules
        if rule.name in df
        for problem in rule_problems(df[rule.name], rule, spec.ingest.max_field_chars)
    ]
    if spec.ingest.formulas == "reject":
        found += [
            f"{said}; ingest.formulas: reject (or neutralise: versioned as text behind a leading {NEUTRALISER})"
            for said in _formulas_found(df, spec)
        ]
    return found


def formula_notes(df: pd.DataFrame, spec: DatasetSpec) -> list[str]:
    """Under ``ingest.formulas: neutralise``, the values the data version holds behind a leading ``'``."""
    if spec.ingest.formulas != "neutralise":
        return []
    return [
        f"{said}: versioned behind a leading {NEUTRALISER} (ingest.formulas: neutralise)"
        for said in _formulas_found(df, spec)
    ]


def _formulas_found(df: pd.DataFrame, spec: DatasetSpec) -> list[str]:
    """Each kept text column holding formulas, in words: how many, a few as written, their lines."""
    said = []
    for name, exempt in kept_text_columns(df, spec).items():
        runs = df.index[runs_as_formula(df[name], exempt)]
        if len(runs):
            said.append(
                f"column '{name}': {len(runs)} value{'s' if len(runs) > 1 else ''} a spreadsheet would run as a"
                f" formula, e.g. {sample(df[name][runs])[1:-1]} ({lines_of(runs)})"
            )
    return said


def rule_problems(col: pd.Series, rule: OtherColumn, max_field_chars: int) -> list[str]:
    """One other column against its rules: missing values, then numbers and their range, or the
    length of text (beyond ``ingest.max_field_chars`` the batch reader says so already)."""
    found = _missing(col, rule)
    if rule.type == "numeric":
        found += _numbers(col, rule)
    elif rule.max_chars is not None and rule.max_chars < max_field_chars:
        found += _too_long(col, rule, rule.max_chars)
    return found


def _missing(col: pd.Series, rule: OtherColumn) -> list[str]:
    missing = col.index[col.isna()]
    if not len(col) or len(missing) / len(col) <= rule.max_null_rate:
        return []
    return [
        f"column '{rule.name}': {len(missing) / len(col):.1%} missing ({lines_of(missing)}),"
        f" at most {rule.max_null_rate:.1%} allowed (ingest.other_columns.{rule.name}.max_null_rate)"
    ]


def _numbers(col: pd.Series, rule: OtherColumn) -> list[str]:
    """A numeric other column: every value a finite number, inside ``min`` and ``max``."""
    numbers = col if pd.api.types.is_numeric_dtype(col) else pd.to_numeric(col.astype(str).str.strip(), errors="coerce")
    numbers = numbers.where(col.notna())
    finite = np.isfinite(numbers.to_numpy(dtype="float64", na_value=np.nan))
    bad = col.index[col.notna() & ~finite]
    if len(bad):
        what = "values are not numbers" if len(bad) > 1 else "value is not a number"
        return [
            f"column '{rule.name}': {len(bad)} {what}, e.g. {sample(col[bad])}"
            f" ({lines_of(bad)}; ingest.other_columns.{rule.name}.type: numeric)"
        ]
    lo = -np.inf if rule.min is None else rule.min
    hi = np.inf if rule.max is None else rule.max
    out = col.index[(numbers < lo) | (numbers > hi)]
    if not len(out):
        return []
    return [
        f"column '{rule.name}': {len(out)} value{'s' if len(out) > 1 else ''} outside [{lo:g}, {hi:g}], e.g."
        f" {sample(col[out])} ({lines_of(out)}; ingest.other_columns.{rule.name}.min and max)"
    ]


def _too_long(col: pd.Series, rule: OtherColumn, limit: int) -> list[str]:
    lengths = col.map(lambda v: len(str(v)), na_action="ignore")
    long = col.index[lengths > limit]
    if not len(long):
        return []
    return [
        f"column '{rule.name}': a value of {int(lengths.max())} characters at {lines_of(long)}"
        f" (at most {limit}, ingest.other_columns.{rule.name}.max_chars)"
    ]
