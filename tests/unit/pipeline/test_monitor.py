from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from retrainer.pipeline import monitor as monitoring
from retrainer.records import DriftCheck, RunContext
from retrainer.registry.client import Registry
from retrainer.settings import Settings
from retrainer.spec.dataset import DatasetSpec


def test_cooldown_counts_from_the_last_drift_retraining(settings: Settings, bike_spec: DatasetSpec) -> None:
    spec = replace(bike_spec, drift=replace(bike_spec.drift, cooldown_hours=2.0))
    assert monitoring.cooldown_remaining(settings, spec) == 0.0  # no retraining yet
    registry = Registry(settings)
    registry.runs.get_or_create(spec, RunContext("retrain_model", "manual__1", trigger="first model"), {})
    assert monitoring.cooldown_remaining(settings, spec) == 0.0  # not a drift retraining
    registry.runs.get_or_create(spec, RunContext("retrain_model", "drift__x", trigger="drift: retrain ..."), {})
    left = monitoring.cooldown_remaining(settings, spec)
    assert 7000 < left <= 7200
    later = datetime.now(UTC) + timedelta(hours=3)
    assert monitoring.cooldown_remaining(settings, spec, now=later) == 0.0
    assert monitoring.cooldown_remaining(settings, bike_spec) == 0.0  # the bike spec has no cooldown


def test_no_champion_means_no_check(settings: Settings, bike_spec: DatasetSpec, tmp_path: object) -> None:
    from retrainer.data.demo_data import load_bike_sharing, split_periods, write_batch
    from retrainer.data.validation import file_md5
    from retrainer.data.versioning import DataRegistry, DataVersionError

    # no data at all yet: the newest version is nothing to check (a scheduled look at every
    # spec meets a dataset whose first batch has not landed); a version asked for by name must exist
    empty = monitoring.check_drift(settings, "bike_sharing", "latest", RunContext("monitor_drift", "r0"))
    assert (empty.status, empty.retrain, empty.data_version, empty.dataset) == ("no_data", False, None, "bike_sharing")
    with pytest.raises(DataVersionError, match="v0003"):
        monitoring.check_drift(settings, "bike_sharing", "v0003", RunContext("monitor_drift", "r0"))

    part = split_periods(load_bike_sharing(), bike_spec)["2011-01"]
    path = write_batch(part, bike_spec, tmp_path / "b.csv")  # type: ignore[operator]
    DataRegistry(settings).add_batch(bike_spec, "2011-01", path, file_md5(path))
    out = monitoring.check_drift(settings, "bike_sharing", "latest", RunContext("monitor_drift", "r1"))
    assert out == DriftCheck(
        status="no_champion",
        retrain=False,
        reason="no champion yet: nothing to compare against",
        data_version="v0001",
        dataset="bike_sharing",
    )


def test_announcements_give_each_dataset_one_check_at_its_newest_version() -> None:
    announced = [
        {"dataset": "bike_sharing", "data_version": "v0009", "period": "2011-09"},
        {"dataset": "flights", "data_version": "v0012", "period": "2013-01-01T05"},
        {"dataset": "bike_sharing", "data_version": "v0010", "period": "2011-10"},
        {"dataset": "flights", "data_version": "v0011", "period": "2013-01-01T04"},
        {"dataset": "gone", "data_version": "v0001"},
        {"data_version": "v0002"},
        {"dataset": "bike_sharing", "data_version": "latest"},
    ]
    checks, left_out = monitoring.checks_for_announcements(announced, ["bike_sharing", "flights"])
    assert [c.to_json() for c in checks] == [
        {"dataset": "bike_sharing", "data_version": "v0010"},
        {"dataset": "flights", "data_version": "v0012"},
    ]
    assert len(left_out) == 3 and "no spec gone.yaml" in left_out[0]
    assert monitoring.checks_for_announcements([], ["bike_sharing"]) == ([], [])


@pytest.mark.parametrize(("ref", "cur", "hib", "drop"), [(100, 120, False, 0.2), (0.8, 0.72, True, 0.1)])
def test_performance_drop(ref: float, cur: float, hib: bool, drop: float) -> None:
    from retrainer.model.drift import performance_drop

    assert performance_drop(ref, cur, hib) == pytest.approx(drop)
