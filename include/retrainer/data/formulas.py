"""Values a spreadsheet would run as a formula when someone opens a data version (CSV
injection): a value starting with ``=``, ``@``, a tab or a carriage return, or with ``+`` or
``-`` and not a number. They are searched in every text column a version keeps: the other
columns, the categorical features and a binary target (outside the values the spec names), and
the extra columns of ``ingest.extra_columns: keep``. Under ``ingest.formulas: neutralise`` the
canonical form holds each behind a leading ``'``, which a spreadsheet shows as text.
"""

from __future__ import annotations

import re
from collections.abc import Collection

import pandas as pd

from retrainer.spec.dataset import DatasetSpec

#: the start of a value a spreadsheet runs: =, @, a tab or a carriage return, or a sign before
#: anything that is not a number (``-5`` and ``+1.5e3`` are numbers, ``-2+3`` and ``+cmd`` are not)
FORMULA = re.compile(r"[=@\t\r]|[+-](?!(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?\Z).", re.S)
#: what ``ingest.formulas: neutralise`` puts before such a value
NEUTRALISER = "'"


def kept_text_columns(df: pd.DataFrame, spec: DatasetSpec) -> dict[str, set[str]]:
    """The text columns of ``df`` a data version keeps, each with the values the spec itself
    names (a listed category, the positive class), which are never taken for formulas."""
    columns: dict[str, set[str]] = {r.name: set() for r in spec.ingest.other_column_rules if r.type == "text"}
    columns.update({f.name: set(f.categories) for f in spec.categorical_features})
    if spec.target.task == "classification":  # a multiclass target outside its classes is refused already
        columns[spec.target.column] = {spec.target.positive or ""}
    if spec.ingest.extra_columns == "keep":
        named = {spec.time_column, spec.target.column, *spec.feature_names, *spec.ingest.other_columns}
        columns.update({str(c): set() for c in df.columns if c not in named})
    return {name: exempt for name, exempt in columns.items() if name in df}


def runs_as_formula(col: pd.Series, exempt: Collection[str] = ()) -> pd.Series:
    """Which values of a column a spreadsheet would run (missing and non-text values: none)."""
    text = col.map(lambda v: v if isinstance(v, str) else "", na_action="ignore").fillna("")
    return text.str.match(FORMULA) & ~text.isin(exempt)


def neutralised(df: pd.DataFrame, spec: DatasetSpec) -> pd.DataFrame:
    """A canonical frame (all text) with every formula of a kept text column behind a leading
    ``'``, under ``ingest.formulas: neutralise``; as it is otherwise. A value neutralised once is
    no formula, so a versioned period reads back the same."""
    if spec.ingest.formulas != "neutralise":
        return df
    out = df.copy()
    for name, exempt in kept_text_columns(df, spec).items():
        runs = runs_as_formula(out[name], exempt)
        out.loc[runs, name] = NEUTRALISER + out.loc[runs, name].astype(str)
    return out
