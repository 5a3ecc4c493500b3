"""Deliveries: a landed file routed by its path to a dataset and a period, identified by its
bytes, its ingest run named by both; a file whose path says neither is refused and quarantined
once, with the reason."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path

import pytest

from retrainer import storage
from retrainer.data import landing
from retrainer.settings import Settings


@pytest.mark.parametrize(
    ("relative", "route"),
    [
        ("bike_sharing/2011-04.csv", ("bike_sharing", "2011-04")),
        ("bike_sharing/2012-06.redelivery.csv", ("bike_sharing", "2012-06")),
    ],
)
def test_a_delivery_is_routed_by_its_path(settings: Settings, relative: str, route: tuple[str, str]) -> None:
    r = landing.route(relative, settings)
    assert (r.dataset, r.period) == route


@pytest.mark.parametrize(
    ("relative", "says"),
    [
        ("2011-04.csv", "is not a batch path"),
        ("bike_sharing/extra/2011-04.csv", "is not a batch path"),
        ("weather/2011-04.csv", "no dataset spec named 'weather'"),
        ("bike_sharing/2011-4.csv", "does not start with a monthly period"),
        ("bike_sharing/2011-13.csv", "does not start with a monthly period"),
        ("bike_sharing/april.csv", "does not start with a monthly period \\(YYYY-MM, e.g. 2011-03\\)"),
        ("bike_sharing/2011-04.xlsx", ".xlsx batches are not read"),
        ("bike_sharing/2011-04-02.csv", "bike_sharing is delivered monthly: .* written as a daily period"),
    ],
)
def test_a_path_that_names_no_dataset_and_period_is_refused(settings: Settings, relative: str, says: str) -> None:
    with pytest.raises(landing.DeliveryNameError, match=says):
        landing.route(relative, settings)


@pytest.mark.parametrize(
    ("frequency", "name", "period"),
    [
        ("hourly", "2011-03-05T14.csv", "2011-03-05T14"),
        ("daily", "2011-03-05.redelivery.parquet", "2011-03-05"),
        ("weekly", "2011-W09.csv", "2011-W09"),
    ],
)
def test_a_delivery_is_routed_by_the_period_of_its_spec(
    settings: Settings, tmp_path: Path, frequency: str, name: str, period: str
) -> None:
    """A dataset of another frequency names its batches in that frequency, and only in it."""
    spec = settings.spec_path("bike_sharing").read_text().replace("frequency: monthly", f"frequency: {frequency}")
    settings = replace(settings, specs_dir=str(tmp_path))
    settings.spec_path("bike_sharing").write_text(spec)
    assert landing.route(f"bike_sharing/{name}", settings).period == period
    with pytest.raises(landing.DeliveryNameError, match=f"bike_sharing is delivered {frequency}"):
        landing.route("bike_sharing/2011-03.csv", settings)
    if frequency == "weekly":  # 2010 has 52 ISO weeks
        with pytest.raises(landing.DeliveryNameError, match="no real weekly period"):
            landing.route("bike_sharing/2010-W53.csv", settings)


def test_the_run_of_a_delivery_is_named_by_its_bytes(settings: Settings, tmp_path: Path) -> None:
    folder = Path(settings.landing) / "bike_sharing"
    folder.mkdir(parents=True)
    (folder / "2011-01.csv").write_text("a,b\n1,2\n")
    (folder / ".2011-02.csv.part").write_text("being written")  # not a delivery yet
    first = landing.scan(settings)
    assert [d.period for d in first.deliveries] == ["2011-01"] and first.refused == []
    (folder / "2011-01.csv").write_text("a,b\n1,2\n")  # the same bytes again
    again = landing.scan(settings)
    assert again.deliveries[0].run_id == first.deliveries[0].run_id
    (folder / "2011-01.csv").write_text("a,b\n1,3\n")  # new bytes: a new delivery
    assert landing.scan(settings).deliveries[0].run_id != first.deliveries[0].run_id


def _land(settings: Settings, relative: str, data: bytes) -> Path:
    path = Path(settings.landing) / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_a_spec_is_read_once_per_listing_and_a_broken_one_is_named(settings: Settings, tmp_path: Path) -> None:
    """``frequencies`` carries each dataset's frequency across the files of one listing: a
    frequency known already is not read again; a spec that does not load refuses its files."""
    frequencies = {"bike_sharing": "daily"}  # as if the spec said daily
    assert landing.route("bike_sharing/2011-03-05.csv", settings, frequencies).period == "2011-03-05"
    fresh: dict[str, str] = {}
    assert landing.route("bike_sharing/2011-03.csv", settings, fresh).period == "2011-03"
    assert fresh == {"bike_sharing": "monthly"}
    broken = replace(settings, specs_dir=str(tmp_path))
    broken.spec_path("bike_sharing").write_text("name: bike_sharing\n")
    with pytest.raises(
        landing.SpecNotLoadedError, match=r"waits: the spec of 'bike_sharing' does not load \(.*'target'"
    ):
        landing.route("bike_sharing/2011-03.csv", broken)
    with pytest.raises(landing.DeliveryNameError, match=r"no dataset spec named '\.\.'"):
        landing.route("../2011-03.csv", settings)


def test_a_local_file_is_identified_by_its_md5(settings: Settings) -> None:
    path = _land(settings, "bike_sharing/2011-01.csv", b"a,b\n1,2\n")
    (found,) = storage.list_files(settings.landing)
    assert landing.identity(found) == hashlib.md5(path.read_bytes()).hexdigest()  # noqa: S324 (an identity)


def test_an_s3_object_is_identified_by_its_etag() -> None:
    single = storage.StoredFile("s3://b/landing/d/2011-01.csv", "d/2011-01.csv", 9, "0cc175b9c0f1b6a8")
    multipart = replace(single, fingerprint="9b2cf535f27731c974343645a3985328-3")
    assert landing.identity(single) == "0cc175b9c0f1b6a8"
    assert landing.identity(multipart) == "9b2cf535f27731c974343645a3985328_3"  # a run id has no "-"


def test_the_ingest_run_is_named_by_dataset_period_and_bytes() -> None:
    ident = "0123456789abcdef0123456789abcdef"
    assert landing.run_id("bike_sharing", "2011-03", ident) == "landed__bike_sharing__2011-03__0123456789abcdef"
    assert landing.run_id("bike_sharing", "2011-03", ident) != landing.run_id("bike_sharing", "2011-04", ident)


def test_a_delivery_of_a_broken_spec_is_held_not_refused(settings: Settings, tmp_path: Path) -> None:
    """The delivery is not at fault: it stays where it landed, and the digest covers the specs,
    so fixing the spec wakes the landing watch, which then routes it."""
    broken = replace(settings, specs_dir=str(tmp_path))
    good = Path(settings.spec_path("bike_sharing")).read_text()
    broken.spec_path("bike_sharing").write_text(good.replace("task: regression", "task: ranking"))
    folder = Path(settings.landing) / "bike_sharing"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "2011-03.csv").write_text("timestamp,cnt\n")
    scan = landing.scan(broken)
    assert scan.deliveries == [] and scan.refused == []
    (held,) = scan.held
    assert held.relative == "bike_sharing/2011-03.csv" and "field 'target.task'" in held.reason
    broken.spec_path("bike_sharing").write_text(good)
    fixed = landing.scan(broken)
    assert [d.period for d in fixed.deliveries] == ["2011-03"] and fixed.held == []
    assert fixed.digest != scan.digest  # the spec changed, the listing did not


def test_the_listing_digest_changes_when_anything_lands_or_changes() -> None:
    a = storage.StoredFile("/l/d/2011-01.csv", "d/2011-01.csv", 3, "3-1")
    b = storage.StoredFile("/l/d/2011-02.csv", "d/2011-02.csv", 3, "3-2")
    base = landing.listing_digest([a, b])
    assert base == landing.listing_digest([a, b]) and len(base) == 64
    assert landing.listing_digest([a]) != base  # one gone
    assert landing.listing_digest([a, replace(b, fingerprint="4-9")]) != base  # one changed
    assert landing.listing_digest([a, replace(b, relative="d/2011-03.csv")]) != base  # one renamed
    assert landing.listing_digest([]) == hashlib.sha256().hexdigest()
    assert landing.listing_digest([a, b], "spec.yaml:10:1") != base  # a spec changed


def test_a_refused_file_has_one_quarantine_folder_per_path_and_bytes(settings: Settings) -> None:
    where = landing.unroutable_location(settings, "weather/2011-01.csv", "abc")
    assert Path(where).parent == Path(settings.quarantine) / landing.UNROUTABLE
    assert where == landing.unroutable_location(settings, "weather/2011-01.csv", "abc")
    assert where != landing.unroutable_location(settings, "weather/2011-01.csv", "abd")
    assert where != landing.unroutable_location(settings, "weather/2011-02.csv", "abc")


def test_an_unroutable_file_is_refused_with_its_reason_and_quarantined_once(settings: Settings) -> None:
    _land(settings, "bike_sharing/2011-01.csv", b"a,b\n1,2\n")
    _land(settings, "weather/2011-01.csv", b"t\n3\n")
    scan = landing.scan(settings)
    assert [d.period for d in scan.deliveries] == ["2011-01"]
    (refused,) = scan.refused
    assert refused.relative == "weather/2011-01.csv" and "no dataset spec named 'weather'" in refused.reason
    assert refused.identity == hashlib.md5(b"t\n3\n").hexdigest()  # noqa: S324 (an identity)

    dest = Path(landing.quarantine_refused(settings, refused))
    assert (dest / "weather__2011-01.csv").read_bytes() == b"t\n3\n"
    assert json.loads((dest / landing.REASON_FILE).read_text()) == {
        "delivery": refused.uri,
        "reason": refused.reason,
        "identity": refused.identity,
    }
    again = landing.scan(settings)
    assert again.refused == [] and again.deliveries == scan.deliveries  # quarantined: not refused twice
    (dest / "weather__2011-01.csv").unlink()  # a second quarantine would copy it again: it does not
    assert Path(landing.quarantine_refused(settings, refused)) == dest
    assert not (dest / "weather__2011-01.csv").exists()

    _land(settings, "weather/2011-01.csv", b"t\n4\n")  # new bytes at the same path: refused anew
    assert [r.identity for r in landing.scan(settings).refused] == [hashlib.md5(b"t\n4\n").hexdigest()]  # noqa: S324
