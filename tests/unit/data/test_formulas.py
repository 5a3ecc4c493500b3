"""Values a spreadsheet would run as a formula: the CSV-injection set, the kept text columns they
are searched in, and the canonical form's leading ``'`` under ``ingest.formulas: neutralise``."""

from __future__ import annotations

from dataclasses import replace

import pandas as pd
import pytest

from retrainer.data.formulas import kept_text_columns, neutralised, runs_as_formula
from retrainer.spec.columns import Target
from retrainer.spec.dataset import DatasetSpec
from retrainer.spec.intake import OtherColumn


def _kept(spec: DatasetSpec, *rules: OtherColumn, **changes: object) -> DatasetSpec:
    ingest = replace(spec.ingest, other_columns=tuple(r.name for r in rules), other_column_rules=rules, **changes)
    return replace(spec, ingest=ingest)


@pytest.mark.parametrize(
    ("value", "runs"),
    [
        ("=1+1", True),
        ("=cmd|' /C calc'!A0", True),
        ("@SUM(A1)", True),
        ("+cmd", True),
        ("-2+3", True),
        ("+41 20 123", True),
        ("\t=1", True),
        ("\rline", True),
        ("-5", False),
        ("+1.5e3", False),
        ("-.5", False),
        ("-", False),
        ("a=b", False),
        ("'=1+1", False),  # neutralised already
        ("", False),
    ],
)
def test_the_formulas_are_the_csv_injection_set(value: str, runs: bool) -> None:
    assert runs_as_formula(pd.Series([value, None, 3.5], dtype=object)).tolist() == [runs, False, False]


def test_every_kept_text_column_is_searched_but_for_the_values_the_spec_names(bike_spec: DatasetSpec) -> None:
    binary = replace(bike_spec, target=Target("churned", "classification", positive="=yes"))
    keep = _kept(binary, OtherColumn("note"), OtherColumn("fare", "numeric"), extra_columns="keep")
    frame = pd.DataFrame({"note": ["a"], "fare": [1.0], "season": ["+x"], "churned": ["=yes"], "extra": ["b"]})
    columns = kept_text_columns(frame, keep)
    assert set(columns) == {"note", "season", "churned", "extra"}  # numeric and absent columns: none
    assert columns["season"] == {"winter", "spring", "summer", "fall"} and columns["churned"] == {"=yes"}
    assert "extra" not in kept_text_columns(frame, _kept(binary, extra_columns="drop"))
    assert runs_as_formula(frame["churned"], columns["churned"]).tolist() == [False]  # the spec's own class


def test_neutralise_puts_a_quote_before_each_formula_once(bike_spec: DatasetSpec) -> None:
    frame = pd.DataFrame({"note": ["=1+1", "ok", "-3"], "season": ["@x", "winter", "fall"]})
    spec = _kept(bike_spec, OtherColumn("note"), formulas="neutralise")
    once = neutralised(frame, spec)
    assert once.to_dict("list") == {"note": ["'=1+1", "ok", "-3"], "season": ["'@x", "winter", "fall"]}
    assert neutralised(once, spec).equals(once)  # a versioned period reads back the same
    for policy in ("reject", "allow"):  # reject: never versioned; allow: as delivered
        assert neutralised(frame, _kept(bike_spec, OtherColumn("note"), formulas=policy)).equals(frame)
