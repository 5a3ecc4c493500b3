"""What a write cut off half way leaves, and how the next run deals with it: scratch and staging
of processes that are gone, S3 version folders without their SavedModel, a data version whose
push or commit never happened (the fault points themselves: tests/unit/test_faults.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from retrainer import faults, storage
from retrainer.data.demo_data import load_bike_sharing, split_periods, write_batch
from retrainer.data.validation import file_md5
from retrainer.data.versioning import DataRegistry
from retrainer.serving import modelstore
from retrainer.settings import Settings
from retrainer.spec.dataset import DatasetSpec


class Cut(Exception):
    """What a test raises at a fault point, in place of the process dying there."""


def _raise() -> None:
    raise Cut("cut off here")


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_sweep_removes_only_what_processes_that_are_gone_left(tmp_path: Path) -> None:
    host = __import__("socket").gethostname()
    dead, old = _dead_pid(), time.time() - storage.FOREIGN_MAX_AGE_S - 60
    entries = {
        "retrainer-export-~{host}~{dead}~ab": True,  # this host, process gone
        "retrainer-export-~{host}~{live}~cd": False,  # this host, process alive
        "retrainer-export-~elsewhere~{dead}~ef": False,  # another host, recent
        "retrainer-export-~elsewhere-old~{dead}~gh": True,  # another host, a day old
        "retrainer-export-untagged": False,  # not ours to judge
    }
    for pattern in entries:
        path = tmp_path / pattern.format(host=host, dead=dead, live=os.getpid())
        path.mkdir()
        (path / "f").write_text("x")
        if "old" in pattern:
            os.utime(path, (old, old))
    removed = {p.name for p in storage.sweep(tmp_path, "retrainer-")}
    want = {p.format(host=host, dead=dead, live=os.getpid()) for p, gone in entries.items() if gone}
    assert removed == want
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        p.format(host=host, dead=dead, live=os.getpid()) for p, gone in entries.items() if not gone
    )


def test_a_killed_writers_temporary_file_goes_with_the_next_write(tmp_path: Path) -> None:
    host = __import__("socket").gethostname()
    target = tmp_path / "models.config"
    left = tmp_path / f".models.config~{host}~{_dead_pid()}~1234abcd"
    left.write_text("half")
    storage.write_text(str(target), "whole")
    assert target.read_text() == "whole" and not left.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["models.config"]


def test_scratch_names_its_owner_and_goes_after_the_block() -> None:
    with storage.scratch("retrainer-test-") as path:
        assert f"~{os.getpid()}~" in path.name and path.is_dir()
    assert not path.exists()


def _saved_model(src: Path) -> Path:
    (src / "variables").mkdir(parents=True)
    (src / "variables" / "variables.index").write_bytes(b"i" * 10)
    (src / "variables" / "variables.data-00000-of-00001").write_bytes(b"d" * 100)
    (src / "fingerprint.pb").write_bytes(b"f")
    (src / modelstore.SAVED_MODEL).write_bytes(b"graph")
    return src


def test_an_s3_upload_cut_off_is_no_version_and_its_retry_completes_it(tmp_path: Path, s3_env: str) -> None:
    store = f"s3://{s3_env}/models"
    src = _saved_model(tmp_path / "export")
    dest = modelstore.version_location(store, "m", 3)
    with faults.hooked("publish:object", _raise), pytest.raises(Cut):
        storage.publish_dir(src, dest, modelstore.SAVED_MODEL)
    assert storage.list_files(dest) and not modelstore.has_version(store, "m", 3)
    with pytest.raises(FileNotFoundError, match="no complete version"):
        modelstore.load_version(store, "m", 3)
    # a young partial folder may be an upload under way: left alone
    assert modelstore.sweep_partial(store, "m") == []
    assert storage.publish_dir(src, dest, modelstore.SAVED_MODEL)  # the retry
    assert modelstore.has_version(store, "m", 3)
    assert {f.relative for f in storage.list_files(dest)} == {
        "fingerprint.pb",
        "saved_model.pb",
        "variables/variables.index",
        "variables/variables.data-00000-of-00001",
    }
    # one cut off and never retried goes once it is old; complete and served versions stay
    with faults.hooked("publish:object", _raise), pytest.raises(Cut):
        storage.publish_dir(src, modelstore.version_location(store, "m", 4), modelstore.SAVED_MODEL)
    modelstore.set_label(store, "m", modelstore.STABLE, 3)
    assert modelstore.sweep_partial(store, "m", max_age_s=0) == [4]
    assert storage.list_versions(store, "m") == [3] and modelstore.has_version(store, "m", 3)


def test_the_marker_is_not_written_over_a_missing_object(tmp_path: Path, s3_env: str) -> None:
    import boto3

    store = f"s3://{s3_env}/models"
    src = _saved_model(tmp_path / "export")
    dest = modelstore.version_location(store, "m", 1)

    def lose_first() -> None:  # another party removes what was uploaded (a sweep, a lifecycle rule)
        first = storage.list_files(dest)[0]
        boto3.client("s3").delete_object(Bucket=s3_env, Key=storage.split_s3(first.uri)[1])

    with faults.hooked("publish:object", lose_first), pytest.raises(OSError, match="missing or of another size"):
        storage.publish_dir(src, dest, modelstore.SAVED_MODEL)
    assert not modelstore.has_version(store, "m", 1)


@pytest.fixture(scope="module")
def month(bike_spec: DatasetSpec) -> dict[str, pd.DataFrame]:
    parts = split_periods(load_bike_sharing(), bike_spec)
    return {k: parts[k] for k in ("2011-01", "2011-02")}


@pytest.mark.parametrize("where", ["version:pushing", "version:pushed"])
def test_a_batch_cut_off_before_its_commit_is_versioned_by_the_retry(
    where: str, settings: Settings, bike_spec: DatasetSpec, month: dict[str, pd.DataFrame]
) -> None:
    """Cut between DVC add and push, or between push and commit (embedded registry, no git
    remote): the working tree holds the batch's .dvc file, which must not read as a version."""
    reg = DataRegistry(settings)
    first = write_batch(month["2011-01"], bike_spec, Path(settings.landing) / "2011-01.csv")
    assert reg.add_batch(bike_spec, "2011-01", first, file_md5(first)).created
    batch = write_batch(month["2011-02"], bike_spec, Path(settings.landing) / "2011-02.csv")
    with faults.hooked(where, _raise), pytest.raises(Cut):
        DataRegistry(settings).add_batch(bike_spec, "2011-02", batch, file_md5(batch))
    assert [v.label for v in reg.versions(bike_spec.name)] == ["v0001"]
    retry = DataRegistry(settings).add_batch(bike_spec, "2011-02", batch, file_md5(batch))
    assert retry.created and retry.version.label == "v0002"
    assert retry.version.periods == ("2011-01", "2011-02")
    again = DataRegistry(settings).add_batch(bike_spec, "2011-02", batch, file_md5(batch))
    assert not again.created and again.version == retry.version
    read = reg.read_periods(bike_spec, retry.version, ["2011-02"])
    assert len(read) == len(month["2011-02"])
