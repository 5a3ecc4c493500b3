"""Deliveries in the landing location: routing by path, LandingTrigger and LandingSensor,
tested the way Airflow tests its own (serialize round trip, the trigger's events in an event
loop, the sensor deferring with the right trigger)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from airflow.sdk.exceptions import TaskDeferred

from retrainer import storage
from retrainer.data import landing
from retrainer.settings import Settings
from retrainer_airflow.sensors import LandingSensor
from retrainer_airflow.triggers import LandingTrigger
from tests.helpers import first_event


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


def test_trigger_serialize_round_trip() -> None:
    trigger = LandingTrigger(landing="s3://b/landing", digest="abc", poll_interval=7, endpoint_url="http://s3")
    path, kwargs = trigger.serialize()
    assert path == "retrainer_airflow.triggers.LandingTrigger"
    assert LandingTrigger(**kwargs).serialize() == (path, kwargs)


def test_trigger_waits_for_the_listing_to_change(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "2011-01.csv").write_text("x")
    digest = landing.listing_digest(storage.list_files(str(tmp_path)))
    with pytest.raises(TimeoutError):  # nothing landed since the sensor looked
        first_event(LandingTrigger(str(tmp_path), digest, poll_interval=0.05), timeout=0.5)
    (tmp_path / "d" / "2011-02.csv").write_text("y")
    event = first_event(LandingTrigger(str(tmp_path), digest, poll_interval=0.05))
    assert event.payload["status"] == "changed" and event.payload["digest"] != digest


def test_trigger_reports_errors() -> None:
    event = first_event(LandingTrigger("s3://", "x", poll_interval=0.05))
    assert event.payload["status"] == "error" and "cannot list s3://" in event.payload["message"]


class _TI:
    def get_dr_count(self, dag_id: str, run_ids: list[str]) -> int:
        return 0


def test_sensor_defers_while_nothing_landed(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    sensor = LandingSensor(task_id="wait_for_deliveries", poke_interval=30, timeout=60)
    assert sensor.deferrable
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute(context={"ti": _TI()})
    trigger = deferred.value.trigger
    assert isinstance(trigger, LandingTrigger) and trigger.landing == settings.landing
    assert trigger.digest == landing.listing_digest([]) and trigger.poll_interval == 30


def test_sensor_returns_new_deliveries(settings: Settings) -> None:
    folder = Path(settings.landing) / "bike_sharing"
    folder.mkdir(parents=True)
    (folder / "2011-01.csv").write_text("a\n1\n")
    found = LandingSensor(task_id="wait_for_deliveries", timeout=60).execute(context={"ti": _TI()})
    assert [d["period"] for d in found["deliveries"]] == ["2011-01"] and found["refused"] == []
