"""Deliveries in the landing location as Airflow sees them: LandingTrigger and LandingSensor,
tested the way Airflow tests its own (serialize round trip, the trigger's events in an event
loop, the sensor deferring with the right trigger). Routing a path to its dataset and period is
retrainer.data.landing's, tested in tests/unit/data/test_landing.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from airflow.sdk.exceptions import TaskDeferred

from retrainer import storage
from retrainer.data import landing
from retrainer.settings import Settings
from retrainer_airflow.sensors import LandingSensor
from retrainer_airflow.triggers import LandingTrigger
from tests.helpers import first_event


def test_trigger_serialize_round_trip() -> None:
    trigger = LandingTrigger(
        landing="s3://b/landing", digest="abc", poll_interval=7, endpoint_url="http://s3", specs_dir="/specs"
    )
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


def test_trigger_fires_when_a_spec_changes(tmp_path: Path) -> None:
    """A delivery held by a spec that did not load goes on once the spec is fixed."""
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "x.yaml").write_text("name: x\n")
    digest = landing.listing_digest([], landing.specs_fingerprint(str(specs)))
    trigger = LandingTrigger(str(tmp_path / "landing"), digest, poll_interval=0.05, specs_dir=str(specs))
    (tmp_path / "landing").mkdir()
    with pytest.raises(TimeoutError):
        first_event(trigger, timeout=0.5)
    (specs / "x.yaml").write_text("name: x\ntarget: {}\n")
    assert first_event(trigger).payload["status"] == "changed"


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
    assert trigger.digest == landing.listing_digest([], landing.specs_fingerprint(settings.specs_dir))
    assert trigger.poll_interval == 30 and trigger.specs_dir == settings.specs_dir


def test_sensor_returns_new_deliveries(settings: Settings) -> None:
    folder = Path(settings.landing) / "bike_sharing"
    folder.mkdir(parents=True)
    (folder / "2011-01.csv").write_text("a\n1\n")
    found = LandingSensor(task_id="wait_for_deliveries", timeout=60).execute(context={"ti": _TI()})
    assert [d["period"] for d in found["deliveries"]] == ["2011-01"] and found["refused"] == []
