"""Ingest: a landed batch validated (readable, the spec's suite, the versioned data), then
quarantined with its reason or versioned; only deliveries under the landing location are read.
(The whole catalogue of bad deliveries through ingest_batch: tests/integration/test_bad_deliveries.py;
the same content delivered again: tests/unit/data/test_redelivery.py.)"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest

from retrainer import periods
from retrainer.data.batchfile import DataFileError
from retrainer.data.demo_data import write_batch
from retrainer.data.validation import DataValidationError, file_md5
from retrainer.data.versioning import DataRegistry
from retrainer.outcomes import Refused
from retrainer.pipeline import ingest
from retrainer.pipeline.ingest import DELIVERY_RECORD, QUARANTINE_MARKER, BatchPathError, checked_batch
from retrainer.settings import Settings
from tests.helpers import write_spec
from tests.unit.pipeline.conftest import small_spec_data


def test_batch_paths_outside_the_landing_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RETRAINER_HOME", str(tmp_path))
    settings = Settings.from_env()
    landing = Path(settings.landing)
    (landing / "bike_sharing").mkdir(parents=True)
    ok = landing / "bike_sharing" / "2011-03.csv"
    ok.write_text("x\n")
    assert checked_batch(settings, str(ok)) == str(ok)
    assert checked_batch(settings, "bike_sharing/2011-03.csv") == str(ok)
    inner = landing / "bike_sharing" / "link.csv"
    inner.symlink_to(ok)
    assert checked_batch(settings, str(inner)) == str(inner)  # a link that stays inside is read
    (landing / "bike_sharing" / "passwd.csv").symlink_to("/etc/passwd")
    os.mkfifo(landing / "bike_sharing" / "pipe.csv")
    for batch, words in [
        ("/etc/hosts", "outside the landing location"),
        (str(landing / "bike_sharing" / "passwd.csv"), "leads to /etc/passwd"),
        (str(landing / ".." / ".." / "etc" / "hosts"), "outside the landing location"),
        ("../secrets.csv", "outside the landing location"),
        (str(landing / "bike_sharing"), "not a regular file"),
        (str(landing / "bike_sharing" / "pipe.csv"), "not a regular file"),
        ("s3://bucket/landing/x.csv", "outside the landing location"),
    ]:
        with pytest.raises(BatchPathError, match=words):
            checked_batch(settings, batch)


def test_s3_batches_must_be_under_an_s3_landing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RETRAINER_HOME", str(tmp_path))
    monkeypatch.setenv("RETRAINER_LANDING", "s3://data/landing")
    settings = Settings.from_env()
    assert checked_batch(settings, "s3://data/landing/bike_sharing/2011-03.csv")
    for batch in ("s3://data/landing-other/x.csv", "s3://data/landing/../private/x.csv", "/etc/hosts"):
        with pytest.raises(BatchPathError):
            checked_batch(settings, batch)


def _deliver(settings: Settings, frame: pd.DataFrame, name: str) -> Path:
    spec = settings.load_spec("bike_sharing")
    return write_batch(frame, spec, Path(settings.landing) / "bike_sharing" / name)


def test_a_good_month_is_validated_then_versioned_once(world: Settings, bike_months: dict[str, pd.DataFrame]) -> None:
    path = _deliver(
        world,
        bike_months["2011-07"].assign(weathersit=bike_months["2011-07"]["weathersit"].fillna("Clear")),
        "2011-07.csv",
    )
    checked = ingest.validate_batch(world, "bike_sharing", str(path), "2011-07")
    assert checked.success and checked.failures == [] and checked.n_rows == 744 and checked.evaluated > 40
    assert checked.md5 == file_md5(path) and checked.batch == str(path)
    assert checked.result_path == str(
        Path(world.validation_results) / "bike_sharing" / "2011-07" / f"{checked.md5}.json"
    )
    kept = json.loads(Path(checked.result_path).read_text())
    assert (kept["dataset"], kept["period"], kept["success"]) == ("bike_sharing", "2011-07", True)
    made = ingest.version_batch(world, checked)
    assert (made.data_version, made.created, made.n_periods, made.period) == ("v0004", True, 4, "2011-07")
    assert DataRegistry(world).latest("bike_sharing").periods == ("2011-04", "2011-05", "2011-06", "2011-07")
    again = ingest.version_batch(world, checked)  # a retry
    assert (again.data_version, again.created, again.data_rev) == ("v0004", False, made.data_rev)


def test_a_bad_batch_is_quarantined_once_with_its_reasons(
    world: Settings, bike_months: dict[str, pd.DataFrame]
) -> None:
    july = bike_months["2011-07"]
    path = _deliver(world, july.assign(hum=july["hum"] / 100), "2011-07.csv")  # a fraction, not percent
    checked = ingest.validate_batch(world, "bike_sharing", str(path), "2011-07")
    assert not checked.success
    assert any("column 'hum': its values spread" in f and "a unit change?" in f for f in checked.failures)
    assert any("column 'weathersit'" in f for f in checked.failures)  # July misses 10.6% of its weather
    assert checked.summary.startswith("bike_sharing 2011-07 (") and "FAILED" in checked.summary
    with pytest.raises(DataValidationError, match=f"refusing to version {path}"):
        ingest.version_batch(world, checked)

    held = ingest.quarantine_batch(world, checked)
    where = Path(world.quarantine) / "bike_sharing" / "2011-07" / checked.md5[:12]
    assert held.location == str(where) and held.failures == checked.failures
    assert (where / "2011-07.csv").read_bytes() == path.read_bytes()
    assert json.loads((where / QUARANTINE_MARKER).read_text())["success"] is False
    (where / "2011-07.csv").unlink()  # a retry finds the folder complete and writes nothing again
    assert ingest.quarantine_batch(world, checked).location == str(where)
    assert not (where / "2011-07.csv").exists()


def test_quarantined_deliveries_are_planned_to_be_judged_again_by_the_spec_as_it_is(
    world: Settings, bike_months: dict[str, pd.DataFrame]
) -> None:
    """One run per quarantined delivery of a period not versioned yet, named by its bytes and the
    spec's text; a delivery gone from the landing location is put back from the quarantine."""
    july = bike_months["2011-07"]
    path = _deliver(world, july.assign(hum=july["hum"] / 100), "2011-07.csv")
    checked = ingest.validate_batch(world, "bike_sharing", str(path), "2011-07")
    ingest.quarantine_batch(world, checked)
    (start,) = ingest.quarantined_reruns(world, "bike_sharing")
    spec_text = Path(world.spec_path("bike_sharing")).read_text()
    assert start.trigger_run_id == ingest.rerun_id("bike_sharing", "2011-07", checked.md5, spec_text)
    assert start.trigger_run_id.startswith(f"rerun__bike_sharing__2011-07__{checked.md5[:16]}__spec_")
    assert (start.conf.dataset, start.conf.period, start.conf.batch) == ("bike_sharing", "2011-07", str(path))
    assert ingest.quarantined_reruns(world, "bike_sharing", "2011-07") == [start]
    assert ingest.quarantined_reruns(world, "bike_sharing", "2011-05") == []  # nothing quarantined there
    assert ingest.rerun_id("bike_sharing", "2011-07", checked.md5, spec_text + "\n# changed") != start.trigger_run_id

    path.unlink()  # the delivery was cleaned up: the quarantined copy goes back, the same bytes
    (back,) = ingest.quarantined_reruns(world, "bike_sharing")
    requeued = Path(world.landing) / "bike_sharing" / "2011-07.requeued.csv"
    assert back.conf.batch == str(requeued) and file_md5(requeued) == checked.md5
    assert back.trigger_run_id == start.trigger_run_id
    with pytest.raises(periods.PeriodError, match="is not monthly"):
        ingest.quarantined_reruns(world, "bike_sharing", "2011-W07")


def test_a_batch_that_changed_or_vanished_after_its_validation_is_refused(
    world: Settings, bike_months: dict[str, pd.DataFrame]
) -> None:
    july = bike_months["2011-07"]
    path = _deliver(world, july.assign(hum=july["hum"] / 100), "2011-07.csv")
    checked = ingest.validate_batch(world, "bike_sharing", str(path), "2011-07")
    path.write_text(path.read_text() + "\n")
    with pytest.raises(DataFileError, match="changed or vanished after it was validated"):
        ingest.quarantine_batch(world, checked)
    passed = type(checked)(**{**checked.__dict__, "success": True})
    with pytest.raises(DataValidationError, match=r"changed after it was validated \(md5 "):
        ingest.version_batch(world, passed)
    path.unlink()
    with pytest.raises(DataValidationError, match=r"-> \(gone\)\)"):
        ingest.version_batch(world, passed)


def test_a_batch_is_refused_before_it_is_read(settings: Settings) -> None:
    landing = Path(settings.landing) / "bike_sharing"
    landing.mkdir(parents=True)
    (landing / "2011-03-05.csv").write_text("not read\n")
    with pytest.raises(periods.PeriodError):  # bike_sharing is delivered monthly
        ingest.validate_batch(settings, "bike_sharing", str(landing / "2011-03-05.csv"), "2011-03-05")
    with pytest.raises(DataFileError, match="batch file for bike_sharing 2011-03 does not exist") as missing:
        ingest.validate_batch(settings, "bike_sharing", str(landing / "2011-03.csv"), "2011-03")
    assert isinstance(missing.value, Refused)  # the task fails at once, no retries, no traceback
    assert str(missing.value).startswith(f"{landing / '2011-03.csv'}: ")
    with pytest.raises(BatchPathError):
        ingest.validate_batch(settings, "bike_sharing", "/etc/hosts", "2011-03")
    assert not Path(settings.validation_results).exists()  # nothing was validated, nothing kept


def test_a_batch_too_large_is_quarantined_as_a_record_not_a_copy(
    world: Settings, bike_months: dict[str, pd.DataFrame]
) -> None:
    """Over ingest.max_file_mb: the quarantine holds delivery.json (name, size, MD5, reason)
    beside the validation result, not the bytes; a rerun leaves it alone (its bytes are not there)."""
    data = small_spec_data()
    data["ingest"] = {**(data.get("ingest") or {}), "max_file_mb": 0.01}
    write_spec(Path(world.spec_path("bike_sharing")).parent, data, "bike_sharing")
    path = _deliver(world, bike_months["2011-07"], "2011-07.csv")
    checked = ingest.validate_batch(world, "bike_sharing", str(path), "2011-07")
    size = path.stat().st_size
    reason = f"the file is {size} bytes, more than the 10485 a batch may have (ingest.max_file_mb)"
    assert not checked.success and not checked.kept_bytes and checked.failures == [reason]
    held = ingest.quarantine_batch(world, checked)
    where = Path(held.location)
    assert sorted(p.name for p in where.iterdir()) == [DELIVERY_RECORD, QUARANTINE_MARKER]
    assert json.loads((where / DELIVERY_RECORD).read_text()) == {
        "file": "2011-07.csv",
        "batch": str(path),
        "size_bytes": size,
        "md5": file_md5(path),
        "reason": reason,
    }
    assert ingest.quarantined_reruns(world, "bike_sharing") == []


def test_timestamps_outside_the_period_are_quoted_as_written_not_as_converted(
    world: Settings, bike_months: dict[str, pd.DataFrame]
) -> None:
    """July written in local time (+02:00): its first two hours are June in UTC. The reason quotes
    the values as the file has them, and the suite's bounds check (which quotes them converted)
    is not said twice."""
    july = bike_months["2011-07"]
    local = july.assign(timestamp=pd.to_datetime(july["timestamp"]).dt.strftime("%Y-%m-%dT%H:%M:%S+02:00"))
    path = Path(world.landing) / "bike_sharing" / "2011-07.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    local.assign(weathersit=local["weathersit"].fillna("Clear")).to_csv(path, index=False)  # as written
    checked = ingest.validate_batch(world, "bike_sharing", str(path), "2011-07")
    said = (
        "column 'timestamp': 2 timestamps fall outside 2011-07 in UTC (lines 2, 3), e.g."
        " '2011-07-01T00:00:00+02:00' (line 2): written with offset +02:00, it is 2011-06-30T22:00:00 in UTC"
    )
    assert [f for f in checked.failures if f.startswith("column 'timestamp': ")] == [said]
