"""A period delivered again: the same content in another form is no new version; other content
is judged by the spec's ``ingest.redelivery`` (reject, replace, append)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from retrainer.data.batchchecks import Reference, compare_redelivery
from retrainer.data.batchfile import canonical_frame
from retrainer.data.demo_data import load_bike_sharing, split_periods, write_batch
from retrainer.data.validation import REFUSED, check_redelivery
from retrainer.data.versioning import DataRegistry
from retrainer.records import BatchValidation
from retrainer.settings import Settings
from retrainer.spec.dataset import DatasetSpec
from tests.helpers import bike_spec_data, write_spec


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
    again, notes = check_redelivery(_deliver(march.iloc[:-10], spec, tmp_path), spec, "2011-03", ref)
    assert again is None and notes[0].startswith(REFUSED) and "(10 fewer): a partial delivery?" in notes[0]


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


def _two_hosts(tmp_path: Path, specs: Path | None = None) -> tuple[Settings, Settings]:
    """Two worker hosts, each with its own home (landing, clone of the registry), one registry remote."""
    import subprocess

    url = tmp_path / "registry.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(url)], check=True)
    env = {"RETRAINER_DATA_REGISTRY_URL": str(url), "RETRAINER_DVC_REMOTE": str(tmp_path / "dvc-remote")}
    if specs is not None:
        env["RETRAINER_SPECS_DIR"] = str(specs)
    return tuple(Settings.from_env({**env, "RETRAINER_HOME": str(tmp_path / h)}) for h in "ab")  # type: ignore[return-value]


def _validated(settings: Settings, frame: pd.DataFrame, spec: DatasetSpec, name: str) -> BatchValidation:
    from retrainer.pipeline import ingest

    path = write_batch(frame, spec, Path(settings.landing) / "bike_sharing" / name)
    return ingest.validate_batch(settings, "bike_sharing", str(path), "2011-03")


def test_two_deliveries_of_one_period_validated_together_make_one_decision(
    march: pd.DataFrame, bike_spec: DatasetSpec, tmp_path: Path
) -> None:
    """Two hosts validate two deliveries of one new period at once (each passes: neither sees the
    other); where the versions are made, the second is judged against what the first made and
    the policy (reject) quarantines it with that reason: one version, one decision."""
    from retrainer.pipeline import ingest
    from retrainer.pipeline.ingest import RedeliveryRefused

    one, other = _two_hosts(tmp_path)
    corrected = march.assign(cnt=march["cnt"] + 1, registered=march["registered"] + 1)
    first, second = _validated(one, march, bike_spec, "2011-03.csv"), _validated(other, corrected, bike_spec, "b.csv")
    assert first.success and second.success and first.notes == second.notes == []
    made = ingest.version_batch(one, first)
    assert made.created and made.data_version == "v0001"
    with pytest.raises(RedeliveryRefused, match=r"2011-03 is versioned already \(v0001, 730 rows\)") as refused:
        ingest.version_batch(other, second)
    assert f"{len(march)} changed" in str(refused.value) and "'reject'" in str(refused.value)
    folder = Path(other.quarantine) / "bike_sharing" / "2011-03" / second.md5[:12]
    kept = json.loads((folder / "validation.json").read_text())
    assert kept["success"] is False and kept["failures"][0].startswith("refused where the version is made: 2011-03")
    assert (folder / "b.csv").read_bytes() == Path(second.batch).read_bytes()
    assert [v.label for v in DataRegistry(other).versions("bike_sharing")] == ["v0001"]
    with pytest.raises(RedeliveryRefused):  # cleared and run again: the same decision, nothing twice
        ingest.version_batch(other, second)
    assert [v.label for v in DataRegistry(one).versions("bike_sharing")] == ["v0001"]


def test_two_appends_of_one_period_validated_together_both_land(
    march: pd.DataFrame, bike_spec: DatasetSpec, tmp_path: Path
) -> None:
    """Under ``append`` the second delivery's late rows join what the first one versioned,
    though it was validated before that existed."""
    from retrainer.pipeline import ingest

    specs = tmp_path / "specs"
    specs.mkdir()
    write_spec(
        specs,
        {**bike_spec_data(), "ingest": {**bike_spec_data()["ingest"], "redelivery": "append"}, "coverage": None},
        "bike_sharing",
    )  # each delivery holds part of the period: no coverage to judge it by
    one, other = _two_hosts(tmp_path, specs)
    spec = one.load_spec("bike_sharing")
    early, late = (
        _validated(one, march.iloc[:650], spec, "early.csv"),
        _validated(other, march.iloc[80:], spec, "late.csv"),
    )
    assert early.success and late.success
    assert ingest.version_batch(one, early).data_version == "v0001"
    both = ingest.version_batch(other, late)
    assert (both.data_version, both.created) == ("v0002", True)
    registry = DataRegistry(one)
    rows = registry.read_periods(spec, registry.latest("bike_sharing"), ["2011-03"])
    assert len(rows) == len(march)
    assert ingest.version_batch(other, late).created is False  # a retry: nothing new
