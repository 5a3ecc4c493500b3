"""The values a data version keeps beside the model's columns: the other columns by their rules,
and values a spreadsheet would run as a formula, refused, neutralised or allowed."""

from __future__ import annotations

import io
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from retrainer.data.batchfile import canonical_frame
from retrainer.data.keptcolumns import formula_notes, problems
from retrainer.data.validation import validate_file
from retrainer.spec.dataset import DatasetSpec
from retrainer.spec.intake import OtherColumn

CALC = "=cmd|' /C calc'!A0"


@pytest.fixture(scope="module")
def march(bike_months: dict[str, pd.DataFrame]) -> pd.DataFrame:
    return bike_months["2011-03"]


def _kept(spec: DatasetSpec, *rules: OtherColumn, **changes: object) -> DatasetSpec:
    """The spec with ``rules`` as its other columns (the bike's own kept as they are) and ``ingest`` changed."""
    every = (*spec.ingest.other_column_rules, *rules)
    ingest = replace(spec.ingest, other_columns=tuple(r.name for r in every), other_column_rules=every, **changes)
    return replace(spec, ingest=ingest)


def _noted(march: pd.DataFrame, at: dict[int, str]) -> pd.DataFrame:
    note = pd.Series(["ok"] * len(march), dtype=object)
    for row, value in at.items():
        note[row] = value
    return march.assign(note=note)


def test_a_formula_in_a_kept_column_is_refused_naming_its_line(march: pd.DataFrame, bike_spec: DatasetSpec) -> None:
    spec = _kept(bike_spec, OtherColumn("note"))
    assert problems(_noted(march, {}), spec) == []
    assert problems(_noted(march, {10: CALC}), spec) == [
        "column 'note': 1 value a spreadsheet would run as a formula, e.g. \"=cmd|' /C calc'!A0\" (line 12);"
        " ingest.formulas: reject (or neutralise: versioned as text behind a leading ')"
    ]
    (two,) = problems(_noted(march, {0: "=1+1", 4: "@SUM(A1)"}), spec)
    assert two.startswith("column 'note': 2 values a spreadsheet would run as a formula, e.g. '=1+1', '@SUM(A1)'")
    assert "(lines 2, 6)" in two


def test_allow_passes_and_neutralise_notes_and_prefixes(march: pd.DataFrame, bike_spec: DatasetSpec) -> None:
    batch = _noted(march, {10: CALC})
    assert problems(batch, _kept(bike_spec, OtherColumn("note"), formulas="allow")) == []
    assert formula_notes(batch, _kept(bike_spec, OtherColumn("note"), formulas="allow")) == []
    spec = _kept(bike_spec, OtherColumn("note"), formulas="neutralise")
    assert problems(batch, spec) == []
    assert formula_notes(batch, spec) == [
        "column 'note': 1 value a spreadsheet would run as a formula, e.g. \"=cmd|' /C calc'!A0\" (line 12):"
        " versioned behind a leading ' (ingest.formulas: neutralise)"
    ]


def test_the_data_version_holds_a_neutralised_formula(
    march: pd.DataFrame, bike_spec: DatasetSpec, tmp_path: Path
) -> None:
    spec = _kept(bike_spec, OtherColumn("note"), formulas="neutralise")
    path = tmp_path / "2011-03.csv"
    _noted(march, {10: CALC}).to_csv(path, index=False)
    frame = canonical_frame(path, spec, spec.ingest.other_columns)
    assert ("'" + CALC) in set(frame["note"]) and CALC not in set(frame["note"])
    text = frame.to_csv(index=False, lineterminator="\n")
    assert canonical_frame(io.StringIO(text), spec, spec.ingest.other_columns).equals(frame)


def test_a_numeric_other_column_holds_numbers_in_its_range(march: pd.DataFrame, bike_spec: DatasetSpec) -> None:
    spec = _kept(bike_spec, OtherColumn("fare", "numeric", min=0.0, max=100.0))
    fares = pd.Series(np.linspace(0, 100, len(march)), dtype=object)
    assert problems(march.assign(fare=fares), spec) == []
    words = fares.copy()
    words[[2, 9]] = ["n/a", "inf"]
    assert problems(march.assign(fare=words), spec) == [
        "column 'fare': 2 values are not numbers, e.g. ['n/a', 'inf'] (lines 4, 11;"
        " ingest.other_columns.fare.type: numeric)"
    ]
    outside = march.assign(fare=fares.astype(float).where(march.index != 5, -3.5))
    assert problems(outside, spec) == [
        "column 'fare': 1 value outside [0, 100], e.g. ['-3.5'] (line 7; ingest.other_columns.fare.min and max)"
    ]


def test_a_text_other_column_is_held_to_its_length_and_missing_values(
    march: pd.DataFrame, bike_spec: DatasetSpec
) -> None:
    spec = _kept(bike_spec, OtherColumn("note", max_chars=5, max_null_rate=0.0))
    assert problems(_noted(march, {3: "x" * 12}), spec) == [
        "column 'note': a value of 12 characters at line 5 (at most 5, ingest.other_columns.note.max_chars)"
    ]
    missing = _noted(march, {}).assign(note=lambda d: d["note"].where(d.index != 0))
    assert problems(missing, spec) == [
        f"column 'note': {1 / len(march):.1%} missing (line 2), at most 0.0% allowed"
        " (ingest.other_columns.note.max_null_rate)"
    ]
    assert problems(missing.drop(columns="note"), spec) == []  # an other column may be left out
    loose = _kept(bike_spec, OtherColumn("note", max_chars=20_000))  # the batch reader's own limit says so
    assert problems(_noted(march, {3: "x" * 12}), loose) == []


def test_the_ingest_validation_names_kept_columns_and_notes_neutralised_ones(
    march: pd.DataFrame, bike_spec: DatasetSpec, tmp_path: Path
) -> None:
    path = tmp_path / "2011-03.csv"
    batch = _noted(march, {10: CALC})
    batch.assign(timestamp=batch["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%S")).to_csv(path, index=False)
    refused = validate_file(path, _kept(bike_spec, OtherColumn("note")), "2011-03")
    assert not refused.success
    assert any(f.startswith("column 'note': 1 value a spreadsheet would run") for f in refused.failures)
    versioned = validate_file(path, _kept(bike_spec, OtherColumn("note"), formulas="neutralise"), "2011-03")
    assert versioned.success, versioned.failures
    assert any("versioned behind a leading '" in n for n in versioned.notes)
