from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from retrainer.contracts import DriftCheck
from retrainer.pipeline import monitor as monitoring
from retrainer.registry import Registry, RunContext
from retrainer.settings import Settings
from retrainer.spec import DatasetSpec


def test_cooldown_counts_from_the_last_drift_retraining(settings: Settings, bike_spec: DatasetSpec) -> None:
    spec = replace(bike_spec, drift=replace(bike_spec.drift, cooldown_hours=2.0))
    assert monitoring.cooldown_remaining(settings, spec) == 0.0  # no retraining yet
    registry = Registry(settings)
    registry.get_or_create_run(spec, RunContext("retrain_model", "manual__1", trigger="first model"), {})
    assert monitoring.cooldown_remaining(settings, spec) == 0.0  # not a drift retraining
    registry.get_or_create_run(spec, RunContext("retrain_model", "drift__x", trigger="drift: retrain ..."), {})
    left = monitoring.cooldown_remaining(settings, spec)
    assert 7000 < left <= 7200
    later = datetime.now(UTC) + timedelta(hours=3)
    assert monitoring.cooldown_remaining(settings, spec, now=later) == 0.0
    assert monitoring.cooldown_remaining(settings, bike_spec) == 0.0  # the bike spec has no cooldown


def test_no_champion_means_no_check(settings: Settings, bike_spec: DatasetSpec, tmp_path: object) -> None:
    from retrainer.sources import load_bike_sharing, split_periods, write_batch
    from retrainer.validation import file_md5
    from retrainer.versioning import DataRegistry

    part = split_periods(load_bike_sharing(), bike_spec)["2011-01"]
    path = write_batch(part, bike_spec, tmp_path / "b.csv")  # type: ignore[operator]
    DataRegistry(settings).add_batch(bike_spec, "2011-01", path, file_md5(path))
    out = monitoring.check_drift(settings, "bike_sharing", "latest", RunContext("monitor_drift", "r1"))
    assert out == DriftCheck(
        status="no_champion",
        retrain=False,
        reason="no champion yet: nothing to compare against",
        data_version="v0001",
    )


@pytest.mark.parametrize(("ref", "cur", "hib", "drop"), [(100, 120, False, 0.2), (0.8, 0.72, True, 0.1)])
def test_performance_drop(ref: float, cur: float, hib: bool, drop: float) -> None:
    from retrainer.drift import performance_drop

    assert performance_drop(ref, cur, hib) == pytest.approx(drop)
