"""Data versioning with DVC: a data registry of immutable, append-only batch versions.

The registry is a git repository with DVC (``RETRAINER_DATA_REGISTRY``). Each accepted batch
is one file ``batches/<dataset>/<period>.csv`` tracked by its own ``.dvc`` file, so adding
batch k hashes, caches and pushes batch k only, never the history. Every accepted batch
is one git commit, tagged ``<dataset>/v<NNNN>``: that tag (and its commit) is the data
version that a training run pins. Remotes come from the repository's ``.dvc/config``
(remote ``local`` by default; ``s3`` when ``RETRAINER_DVC_REMOTE`` is an ``s3://`` URL).
"""

from __future__ import annotations

import io
import logging
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from retrainer.settings import REPO_ROOT, Settings
from retrainer.spec import DatasetSpec
from retrainer.storage import is_s3

log = logging.getLogger(__name__)

BATCH_DIR = "batches"
_TAG_RE = re.compile(r"^(?P<dataset>[A-Za-z0-9_.-]+)/v(?P<n>\d{4,})$")


class DataVersionError(LookupError):
    """A data version or a period that the caller asked for does not exist."""


class DataVersionMovedError(RuntimeError):
    """A pinned data version's tag now points at another commit: the registry was rewritten."""


@dataclass(frozen=True)
class DataVersion:
    dataset: str
    tag: str  # e.g. "bike_sharing/v0007"
    rev: str  # the git commit
    periods: tuple[str, ...]  # every period present at this version, ascending

    @property
    def label(self) -> str:
        return self.tag.split("/", 1)[1]


@dataclass(frozen=True)
class VersionResult:
    version: DataVersion
    period: str
    created: bool  # False: this exact batch was already versioned (a retry or a rerun)
    pushed_bytes: int
    md5: str


class DataRegistry:
    """The DVC data registry. Mutations take a file lock, so concurrent ingests serialize."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.root = Path(settings.data_registry)

    # ----------------------------------------------------------------- plumbing
    def _git(self, *args: str, check: bool = True) -> str:
        env = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}
        proc = subprocess.run(
            ["git", "-C", str(self.root), *args], capture_output=True, text=True, env=env, check=False
        )
        if check and proc.returncode != 0:
            raise RuntimeError(f"git {' '.join(args)} failed in {self.root}: {proc.stderr.strip()}")
        return proc.stdout.strip()

    @contextmanager
    def _locked(self) -> Iterator[None]:
        from filelock import FileLock

        self.root.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(self.root) + ".lock", timeout=600):
            yield

    def _remote_name(self) -> str:
        return "s3" if is_s3(self.settings.dvc_remote) else "local"

    def ensure(self) -> None:
        """Create the registry on first use (idempotent) and point its remote at the settings."""
        with self._locked():
            self._ensure_unlocked()

    def _ensure_unlocked(self) -> None:
        from dvc.repo import Repo

        os.environ.setdefault("DVC_NO_ANALYTICS", "1")
        fresh = not (self.root / ".dvc").is_dir()
        if fresh:
            self.root.mkdir(parents=True, exist_ok=True)
            self._git("init", "-q", "-b", "main")
            self._git("config", "user.name", "retrainer")
            self._git("config", "user.email", "retrainer@localhost")
            Repo.init(str(self.root))
            template = REPO_ROOT / ".dvc" / "config"
            if template.is_file():  # the repository's remotes are the registry's remotes
                shutil.copyfile(template, self.root / ".dvc" / "config")
        remote = self._remote_name()
        with Repo(str(self.root)) as repo, repo.config.edit() as conf:
            section = dict(conf["remote"].get(remote, {}))
            section["url"] = self.settings.dvc_remote
            if remote == "s3" and self.settings.s3_endpoint_url:
                section["endpointurl"] = self.settings.s3_endpoint_url
            conf["remote"][remote] = section
            conf["core"]["remote"] = remote
            conf["core"]["analytics"] = False
            conf["core"]["autostage"] = True
        self._git("add", "-A", ".dvc")
        if self._git("status", "--porcelain", ".dvc"):
            self._git("commit", "-q", "-m", "registry: DVC configuration")

    # ----------------------------------------------------------------- versions
    def _tags(self, dataset: str) -> list[str]:
        out = self._git("tag", "--list", f"{dataset}/v*", "--sort=v:refname", check=False)
        return [t for t in out.splitlines() if _TAG_RE.match(t)]

    def _periods_at(self, dataset: str, rev: str) -> tuple[str, ...]:
        out = self._git("ls-tree", "-r", "--name-only", rev, f"{BATCH_DIR}/{dataset}/")
        names = [Path(p).name for p in out.splitlines() if p.endswith(".csv.dvc")]
        return tuple(sorted(n.removesuffix(".csv.dvc") for n in names))

    def _version(self, dataset: str, tag: str) -> DataVersion:
        rev = self._git("rev-list", "-n", "1", tag)
        return DataVersion(dataset=dataset, tag=tag, rev=rev, periods=self._periods_at(dataset, rev))

    def latest(self, dataset: str) -> DataVersion:
        if not (self.root / ".git").is_dir():
            raise DataVersionError(f"data registry {self.root} does not exist yet: no batch was versioned")
        tags = self._tags(dataset)
        if not tags:
            raise DataVersionError(f"no data version of '{dataset}' in {self.root}")
        return self._version(dataset, tags[-1])

    def resolve(self, dataset: str, version: str | None) -> DataVersion:
        """``None``/"latest" -> the newest version; "v0007" or a full tag -> that version."""
        if version in (None, "", "latest"):
            return self.latest(dataset)
        assert version is not None
        tag = version if "/" in version else f"{dataset}/{version}"
        if tag not in self._tags(dataset):
            known = ", ".join(t.split("/")[1] for t in self._tags(dataset)[-5:]) or "none"
            raise DataVersionError(f"data version '{version}' of '{dataset}' does not exist (latest: {known})")
        return self._version(dataset, tag)

    def pinned(self, dataset: str, version: str, rev: str) -> DataVersion:
        """Data version ``version`` exactly as it was pinned (recorded) at commit ``rev``.

        Raises DataVersionMovedError when its tag points elsewhere now: then the tag no longer
        holds the data that was pinned, and reading it would silently give other rows."""
        found = self.resolve(dataset, version)
        if found.rev != rev:
            raise DataVersionMovedError(
                f"data version {found.tag} now points at rev {found.rev}, but rev {rev} was pinned: "
                "the data registry was rewritten, so the tag no longer holds the pinned data"
            )
        return found

    def read_pinned(self, spec: DatasetSpec, version: str, rev: str, periods: list[str]) -> pd.DataFrame:
        """The rows of ``periods`` of the pinned data version (see ``pinned``)."""
        return self.read_periods(spec, self.pinned(spec.name, version, rev), periods)

    def as_of(self, dataset: str, period: str) -> DataVersion:
        """The data version that was current once ``period`` had landed: the newest version
        whose newest period is ``period`` or earlier (later versions hold later data)."""
        found = [v for v in self.versions(dataset) if v.periods and v.periods[-1] <= period]
        if not found:
            raise DataVersionError(f"no data version of '{dataset}' holds data up to {period} only or earlier")
        return found[-1]

    def versions(self, dataset: str) -> list[DataVersion]:
        return [self._version(dataset, t) for t in self._tags(dataset)]

    def _recorded_md5(self, dvc_file: Path) -> str | None:
        import yaml

        if not dvc_file.is_file():
            return None
        outs = (yaml.safe_load(dvc_file.read_text()) or {}).get("outs") or [{}]
        md5 = outs[0].get("md5")
        return str(md5) if md5 else None

    def add_batch(self, spec: DatasetSpec, period: str, source: Path, md5: str) -> VersionResult:
        """Version one accepted batch. Re-adding the same bytes returns the existing version."""
        from dvc.repo import Repo

        dataset = spec.name
        rel = Path(BATCH_DIR) / dataset / f"{period}.csv"
        with self._locked():
            self._ensure_unlocked()
            dvc_file = self.root / f"{rel}.dvc"
            if self._recorded_md5(dvc_file) == md5:
                tag = self._tag_for(dataset, f"{rel}.dvc")
                log.info("batch %s %s (md5 %s) is already versioned as %s", dataset, period, md5, tag)
                return VersionResult(self._version(dataset, tag), period, False, 0, md5)
            target = self.root / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
            with Repo(str(self.root)) as repo:
                repo.add([str(target)])
                pushed = repo.push(targets=[str(target)])
            self._git("add", "-A", str(rel.parent))
            tags = self._tags(dataset)
            n = int(_TAG_RE.match(tags[-1]).group("n")) + 1 if tags else 1  # type: ignore[union-attr]
            tag = f"{dataset}/v{n:04d}"
            self._git("commit", "-q", "-m", f"{dataset}: batch {period} (md5 {md5})")
            self._git("tag", tag)
            size = target.stat().st_size
            log.info("versioned %s %s as %s (%d bytes, %s objects pushed)", dataset, period, tag, size, pushed)
            return VersionResult(self._version(dataset, tag), period, True, size if pushed else 0, md5)

    def _tag_for(self, dataset: str, dvc_rel: str) -> str:
        """The version tag of the commit that last changed ``dvc_rel``."""
        commit = self._git("log", "-n", "1", "--format=%H", "--", dvc_rel)
        tags = self._git("tag", "--points-at", commit).splitlines()
        for t in tags:
            if t.startswith(f"{dataset}/v"):
                return t
        raise DataVersionError(f"commit {commit} of {dvc_rel} carries no version tag")

    def read_periods(self, spec: DatasetSpec, version: DataVersion, periods: list[str]) -> pd.DataFrame:
        """The rows of ``periods`` exactly as they were at ``version`` (from the DVC cache or remote)."""
        import dvc.api

        missing = [p for p in periods if p not in version.periods]
        if missing:
            raise DataVersionError(f"periods {missing} are not in {version.tag}")
        frames = []
        dtypes = {f.name: "str" for f in spec.categorical_features}
        for period in periods:
            rel = f"{BATCH_DIR}/{spec.name}/{period}.csv"
            text = dvc.api.read(rel, repo=str(self.root), rev=version.rev, mode="r")
            frames.append(pd.read_csv(io.StringIO(text), dtype=dtypes))
        df = pd.concat(frames, ignore_index=True)
        df[spec.time_column] = pd.to_datetime(df[spec.time_column], format="ISO8601")
        return df.sort_values(spec.time_column, kind="stable").reset_index(drop=True)
