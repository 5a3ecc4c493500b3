from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from retrainer.settings import Settings
from retrainer.sources import load_bike_sharing, split_periods, write_batch
from retrainer.spec import DatasetSpec
from retrainer.validation import file_md5
from retrainer.versioning import DataRegistry, DataVersionError


@pytest.fixture(scope="module")
def months(bike_spec: DatasetSpec) -> dict[str, pd.DataFrame]:
    parts = split_periods(load_bike_sharing(), bike_spec)
    return {k: parts[k] for k in ("2011-01", "2011-02", "2011-03", "2011-04")}


def _remote_files(settings: Settings) -> dict[str, int]:
    root = Path(settings.dvc_remote)
    return {str(p.relative_to(root)): p.stat().st_size for p in root.rglob("*") if p.is_file()}


def _add(reg: DataRegistry, spec: DatasetSpec, settings: Settings, period: str, df: pd.DataFrame):  # type: ignore[no-untyped-def]
    path = write_batch(df, spec, Path(settings.landing) / f"{period}.csv")
    return reg.add_batch(spec, period, path, file_md5(path)), path


def test_each_batch_is_a_version_that_costs_its_own_size(
    settings: Settings, bike_spec: DatasetSpec, months: dict[str, pd.DataFrame]
) -> None:
    reg = DataRegistry(settings)
    before: dict[str, int] = {}
    for k, (period, df) in enumerate(months.items(), start=1):
        res, path = _add(reg, bike_spec, settings, period, df)
        after = _remote_files(settings)
        new = {f: s for f, s in after.items() if f not in before}
        # exactly one new object on the remote: this batch, byte for byte; the history is not re-sent
        assert list(new.values()) == [path.stat().st_size]
        assert res.created and res.pushed_bytes == path.stat().st_size
        assert res.version.label == f"v{k:04d}"
        assert res.version.periods == tuple(list(months)[:k])
        before = after


def test_same_bytes_give_the_same_version(
    settings: Settings, bike_spec: DatasetSpec, months: dict[str, pd.DataFrame]
) -> None:
    reg = DataRegistry(settings)
    first, path = _add(reg, bike_spec, settings, "2011-01", months["2011-01"])
    again = reg.add_batch(bike_spec, "2011-01", path, file_md5(path))
    assert not again.created
    assert again.version == first.version
    assert len(reg.versions(bike_spec.name)) == 1


def test_old_versions_stay_readable_and_immutable(
    settings: Settings, bike_spec: DatasetSpec, months: dict[str, pd.DataFrame]
) -> None:
    reg = DataRegistry(settings)
    _add(reg, bike_spec, settings, "2011-01", months["2011-01"])
    # a corrected re-delivery of January becomes a new version; v0001 still reads the original
    fixed = months["2011-01"].assign(cnt=months["2011-01"]["cnt"] + 1)
    v2, _ = _add(reg, bike_spec, settings, "2011-01", fixed)
    assert v2.version.label == "v0002"
    old = reg.read_periods(bike_spec, reg.resolve(bike_spec.name, "v0001"), ["2011-01"])
    new = reg.read_periods(bike_spec, reg.resolve(bike_spec.name, "latest"), ["2011-01"])
    assert (new["cnt"] - old["cnt"]).eq(1).all()
    assert old["timestamp"].dtype.kind == "M"


def test_unknown_version_and_period(
    settings: Settings, bike_spec: DatasetSpec, months: dict[str, pd.DataFrame]
) -> None:
    reg = DataRegistry(settings)
    with pytest.raises(DataVersionError, match="does not exist yet"):
        reg.latest(bike_spec.name)
    _add(reg, bike_spec, settings, "2011-01", months["2011-01"])
    with pytest.raises(DataVersionError, match="v0099"):
        reg.resolve(bike_spec.name, "v0099")
    with pytest.raises(DataVersionError, match="2011-05"):
        reg.read_periods(bike_spec, reg.latest(bike_spec.name), ["2011-05"])


@pytest.mark.s3
def test_push_to_s3_remote(
    home: Path, s3_env: str, monkeypatch: pytest.MonkeyPatch, bike_spec: DatasetSpec, months: dict[str, pd.DataFrame]
) -> None:
    import boto3

    monkeypatch.setenv("RETRAINER_DVC_REMOTE", f"s3://{s3_env}/dvc")
    settings = Settings.from_env()
    reg = DataRegistry(settings)
    sizes = []
    for period in ("2011-01", "2011-02"):
        res, path = _add(reg, bike_spec, settings, period, months[period])
        sizes.append(path.stat().st_size)
        assert res.pushed_bytes == path.stat().st_size
    objects = boto3.client("s3").list_objects_v2(Bucket=s3_env, Prefix="dvc/")["Contents"]
    assert sorted(o["Size"] for o in objects) == sorted(sizes)


def test_the_version_as_of_a_period(
    settings: Settings, bike_spec: DatasetSpec, months: dict[str, pd.DataFrame]
) -> None:
    """A scheduled run or a backfill of an old month trains on the version of its time."""
    from datetime import UTC, datetime

    from retrainer.pipeline.train import period_before

    reg = DataRegistry(settings)
    for period in ("2011-01", "2011-02", "2011-03"):
        _add(reg, bike_spec, settings, period, months[period])
    # a corrected re-delivery of February after March: versions v0004 holds up to March too
    _add(reg, bike_spec, settings, "2011-02", months["2011-02"].assign(cnt=months["2011-02"]["cnt"] + 1))
    assert reg.as_of(bike_spec.name, "2011-02").label == "v0002"
    assert reg.as_of(bike_spec.name, "2011-03").label == "v0004"  # the newest once March was in
    assert reg.as_of(bike_spec.name, "2012-12").label == "v0004"
    with pytest.raises(DataVersionError, match="up to 2010-12"):
        reg.as_of(bike_spec.name, "2010-12")
    assert period_before(datetime(2011, 8, 1, tzinfo=UTC)) == "2011-07"
    assert period_before(datetime(2011, 8, 15, 6, tzinfo=UTC)) == "2011-07"
    assert period_before(datetime(2012, 1, 1, tzinfo=UTC)) == "2011-12"
