"""A period delivered again: the same content in another form is no new version; other content
is judged by the spec's ``ingest.redelivery`` (reject, replace, append)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from retrainer.data.batchchecks import Reference, compare_redelivery, reference_problems
from retrainer.data.batchfile import canonical_frame
from retrainer.data.demo_data import load_bike_sharing, split_periods, write_batch
from retrainer.data.validation import REFUSED, check_redelivery
from retrainer.settings import Settings
from retrainer.spec.dataset import DatasetSpec


@pytest.fixture(scope="module")
def march(bike_spec: DatasetSpec) -> pd.DataFrame:
    return split_periods(load_bike_sharing(), bike_spec)["2011-03"]


def _policy(spec: DatasetSpec, redelivery: str, **ingest: object) -> DatasetSpec:
    return replace(spec, ingest=replace(spec.ingest, redelivery=redelivery, **ingest))


def _reference(frame: pd.DataFrame, spec: DatasetSpec, tmp_path: Path) -> Reference:
    path = write_batch(frame, spec, tmp_path / "versioned" / "2011-03.csv")
    text = canonical_frame(path, spec, spec.ingest.other_columns).to_csv(index=False, lineterminator="\n")
    return Reference("v0007", {"2011-03": frame}, {"2011-03": text})


def _deliver(frame: pd.DataFrame, spec: DatasetSpec, tmp_path: Path, name: str = "2011-03.again.csv") -> Path:
    return write_batch(frame, spec, tmp_path / "landing" / name)


def test_the_same_rows_in_another_order_and_spelling_are_the_same_content(
    march: pd.DataFrame, bike_spec: DatasetSpec, tmp_path: Path
) -> None:
    ref = _reference(march, bike_spec, tmp_path)
    shuffled = march.sample(frac=1.0, random_state=3)
    path = _deliver(shuffled, bike_spec, tmp_path)
    text = path.read_text().replace(",41.0,", ",41.000,")  # numbers spelled otherwise
    assert text != path.read_text()
    path.write_text(text)
    again, notes = check_redelivery(path, bike_spec, "2011-03", ref)
    assert again is None and notes == ["2011-03: the same rows as versioned in v0007 (nothing new to version)"]
    first = canonical_frame(path, bike_spec, bike_spec.ingest.other_columns)
    second = canonical_frame(_deliver(march, bike_spec, tmp_path, "b.csv"), bike_spec, bike_spec.ingest.other_columns)
    assert first.to_csv(index=False) == second.to_csv(index=False)  # so the data version is the one it was


def test_reject_refuses_any_difference_naming_rows_and_values(
    march: pd.DataFrame, bike_spec: DatasetSpec, tmp_path: Path
) -> None:
    ref = _reference(march, bike_spec, tmp_path)
    changed = march.copy()
    changed.loc[changed.index[5], "cnt"] += 1
    late = changed.iloc[:-10]
    _, notes = check_redelivery(_deliver(late, bike_spec, tmp_path), bike_spec, "2011-03", ref)
    (refusal,) = [n.removeprefix(REFUSED) for n in notes if n.startswith(REFUSED)]
    assert refusal.startswith(f"2011-03 is versioned already (v0007, {len(march)} rows) and this re-delivery of")
    assert "10 missing, 1 changed" in refusal and "'reject'" in refusal
    stamp = pd.Timestamp(march["timestamp"].iloc[5]).strftime("%Y-%m-%dT%H:%M:%S")
    assert f"timestamp={stamp}: cnt " in refusal


def test_replace_lets_a_correction_through_within_the_row_loss_limit(
    march: pd.DataFrame, bike_spec: DatasetSpec, tmp_path: Path
) -> None:
    spec = _policy(bike_spec, "replace")
    ref = _reference(march, spec, tmp_path)
    fixed = march.assign(cnt=march["cnt"] + 1)
    again, notes = check_redelivery(_deliver(fixed, spec, tmp_path), spec, "2011-03", ref)
    assert again is None and notes == [
        f"2011-03 replaces the rows versioned in v0007: {len(march)} changed (e.g. {notes[0].split('(e.g. ')[1]}"
    ]
    short = march.iloc[:-10]
    df = short.assign(timestamp=pd.to_datetime(short["timestamp"]))
    assert "10 fewer" in reference_problems(df, spec, "2011-03", ref)[0]


def test_append_adds_late_rows_and_refuses_to_change_versioned_ones(
    march: pd.DataFrame, bike_spec: DatasetSpec, tmp_path: Path
) -> None:
    spec = _policy(bike_spec, "append")
    ref = _reference(march.iloc[:600], spec, tmp_path)
    late = march.iloc[590:]  # ten rows versioned already, the rest late
    merged, notes = check_redelivery(_deliver(late, spec, tmp_path), spec, "2011-03", ref)
    assert merged is not None and len(merged) == len(march)
    assert notes == [f"2011-03: {len(march) - 600} late rows appended to the 600 versioned in v0007"]
    assert list(pd.to_datetime(merged["timestamp"])) == list(pd.to_datetime(march["timestamp"]))
    conflict = late.copy()
    conflict.loc[conflict.index[0], "temp"] += 5.0
    merged, notes = check_redelivery(_deliver(conflict, spec, tmp_path), spec, "2011-03", ref)
    assert merged is None and "changes 1 of its rows" in notes[0] and notes[0].startswith(REFUSED)


def test_without_a_key_rows_are_compared_as_values(march: pd.DataFrame, bike_spec: DatasetSpec) -> None:
    spec = replace(bike_spec, unique_by=())
    old = _as_text(march)
    new = _as_text(pd.concat([march.iloc[:-1], march.iloc[:1]]))  # the last row gone, the first twice
    diff = compare_redelivery(new, old, spec)
    assert (diff.missing, diff.new, diff.changed) == (1, 1, 0)


def _as_text(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.astype(object).where(frame.notna(), "").astype(str)


def test_extra_columns_are_dropped_before_versioning_when_the_spec_says_so(
    march: pd.DataFrame, bike_spec: DatasetSpec, tmp_path: Path
) -> None:
    spec = _policy(bike_spec, "reject", extra_columns="drop")
    path = _deliver(march.assign(note="exported by hand"), spec, tmp_path)
    assert "note" not in canonical_frame(path, spec, spec.ingest.other_columns).columns
    assert "note" in canonical_frame(path, bike_spec, bike_spec.ingest.other_columns).columns


def test_the_same_content_delivered_again_is_the_version_it_was(
    march: pd.DataFrame, bike_spec: DatasetSpec, settings: Settings
) -> None:
    """Through validate_batch and version_batch: the month again with its rows shuffled, its
    columns reversed and CRLF line ends is no new data version."""
    from retrainer.pipeline import ingest

    landing = Path(settings.landing) / "bike_sharing"
    first = write_batch(march, bike_spec, landing / "2011-03.csv")
    made = ingest.version_batch(settings, ingest.validate_batch(settings, "bike_sharing", str(first), "2011-03"))
    assert made.created and made.data_version == "v0001"
    again = landing / "2011-03.again.csv"
    shuffled = pd.read_csv(first, dtype=str, keep_default_na=False).sample(frac=1.0, random_state=5)
    shuffled[shuffled.columns[::-1]].to_csv(again, index=False, lineterminator="\r\n")
    checked = ingest.validate_batch(settings, "bike_sharing", str(again), "2011-03")
    assert checked.success
    assert checked.notes == ["2011-03: the same rows as versioned in v0001 (nothing new to version)"]
    same = ingest.version_batch(settings, checked)
    assert (same.created, same.data_version, same.data_rev) == (False, "v0001", made.data_rev)
