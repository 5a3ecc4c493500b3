"""Ingest: a landed batch validated, then quarantined with its reason or versioned; only
deliveries under the landing location are read at all."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from retrainer.pipeline.ingest import BatchPathError, checked_batch
from retrainer.settings import Settings


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
