from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from retrainer.data.demo_data import load_bike_sharing, split_periods, write_batch
from retrainer.data.validation import file_md5
from retrainer.data.versioning import DataRegistry, DataVersionError
from retrainer.settings import Settings
from retrainer.spec.dataset import DatasetSpec


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


# ------------------------------------------------------------------ a registry shared by hosts


def _host(home: Path, url: str, remote: Path) -> Settings:
    """The settings of one host: its own home (and clone), the registry's remote, the DVC remote."""
    return Settings.from_env(
        {"RETRAINER_HOME": str(home), "RETRAINER_DATA_REGISTRY_URL": url, "RETRAINER_DVC_REMOTE": str(remote)}
    )


def _version_on_host(home: str, url: str, remote: str, spec_path: str, batches: list[tuple[str, str]]) -> list[str]:
    """What a worker on another host does: version its batches into its own clone and push."""
    spec = DatasetSpec.load(spec_path)
    reg = DataRegistry(_host(Path(home), url, Path(remote)))
    return [reg.add_batch(spec, period, Path(path), file_md5(path)).version.label for period, path in batches]


def test_two_hosts_version_concurrently_into_one_remote(tmp_path: Path, bike_spec: DatasetSpec) -> None:
    import multiprocessing
    import subprocess

    parts = split_periods(load_bike_sharing(), bike_spec)
    periods = [f"2011-{m:02d}" for m in range(1, 9)]
    files = {p: str(write_batch(parts[p], bike_spec, tmp_path / "landing" / f"{p}.csv")) for p in periods}
    url = str(tmp_path / "registry.git")
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", url], check=True)
    remote = tmp_path / "dvc-remote"
    jobs = [
        (str(tmp_path / f"host-{h}"), url, str(remote), bike_spec.source_path, [(p, files[p]) for p in periods[h::2]])
        for h in (0, 1)
    ]
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        made = pool.starmap(_version_on_host, jobs)

    # 8 distinct versions, numbered in the order they were pushed, none lost
    labels = sorted(label for host in made for label in host)
    assert labels == [f"v{k:04d}" for k in range(1, 9)]
    reader = DataRegistry(_host(tmp_path / "host-0", url, remote))
    versions = reader.versions(bike_spec.name)
    assert [v.label for v in versions] == labels
    assert [len(v.periods) for v in versions] == list(range(1, 9))  # each version adds one batch
    assert set(versions[-1].periods) == set(periods)

    # a version made by the other host reads back the same bytes, from the DVC remote
    made_by_other = made[1][0]
    version = reader.resolve(bike_spec.name, made_by_other)
    period = next(p for p in periods[1::2] if p in version.periods and p not in periods[0::2])
    read = reader.read_periods(bike_spec, version, [period])
    expected = pd.read_csv(files[period], dtype={f.name: "str" for f in bike_spec.categorical_features})
    assert len(read) == len(expected)
    assert read["cnt"].tolist() == expected["cnt"].tolist()
    # and a fresh host (no clone yet) reads it from the URL alone
    fresh = DataRegistry(_host(tmp_path / "host-new", url, remote))
    assert fresh.read_pinned(bike_spec, made_by_other, version.rev, [period])["cnt"].tolist() == read["cnt"].tolist()


def test_a_remote_that_refuses_every_push_is_named(
    tmp_path: Path, bike_spec: DatasetSpec, monkeypatch: pytest.MonkeyPatch
) -> None:
    import subprocess

    from retrainer.data.versioning import DataRegistryBusyError

    url = tmp_path / "registry.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(url)], check=True)
    hook = url / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'the registry is read-only during maintenance' >&2\nexit 1\n")
    hook.chmod(0o755)
    monkeypatch.setattr(DataRegistry, "PUSH_ATTEMPTS", 2)
    host = _host(tmp_path / "host", str(url), tmp_path / "dvc-remote")
    path = write_batch(split_periods(load_bike_sharing(), bike_spec)["2011-01"], bike_spec, tmp_path / "b.csv")
    with pytest.raises(DataRegistryBusyError, match=r"refused 2 pushes in a row.*read-only during maintenance"):
        DataRegistry(host).add_batch(bike_spec, "2011-01", path, file_md5(path))
    assert subprocess.run(["git", "ls-remote", "--tags", str(url)], capture_output=True, text=True).stdout == ""
