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
import random
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from retrainer import faults
from retrainer.outcomes import Refused
from retrainer.settings import REPO_ROOT, Settings
from retrainer.spec.dataset import DatasetSpec
from retrainer.storage import is_s3

log = logging.getLogger(__name__)

BATCH_DIR = "batches"
BRANCH = "main"
_TAG_RE = re.compile(r"^(?P<dataset>[A-Za-z0-9_.-]+)/v(?P<n>\d{4,})$")
_LABEL_RE = re.compile(r"v(?P<n>\d{4,})")


def version_number(label: str) -> int | None:
    """The number of a data version label (``v0007`` -> 7); None for anything else."""
    found = _LABEL_RE.fullmatch(label) if isinstance(label, str) else None
    return int(found.group("n")) if found else None


def version_label(n: int) -> str:
    """The label of data version ``n`` (7 -> ``v0007``)."""
    return f"v{n:04d}"


def git_program() -> str:
    """git as found on PATH, by its full path (git is required: the data registry is a git repository)."""
    return shutil.which("git") or "git"


def _git(root: Path, *args: str, check: bool = True, capture_stderr: bool = False) -> Any:
    """``git -C root args``: its stdout (stripped), or with ``capture_stderr`` the finished process."""
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}
    proc = subprocess.run([git_program(), "-C", str(root), *args], capture_output=True, text=True, env=env, check=False)
    if check and proc.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed in {root}: {proc.stderr.strip()}")
    return proc if capture_stderr else proc.stdout.strip()


class DataVersionError(LookupError):
    """A data version or a period that the caller asked for does not exist."""


class DataVersionMovedError(Refused, RuntimeError):
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


@dataclass(frozen=True)
class Held:
    """A period as the registry holds it when a new version of it is decided: the text of its
    file and the version that made it."""

    text: str
    version: DataVersion


#: given the period as held now (None: never versioned), the file to version, or None: nothing new
Decide = Callable[[Held | None], Path | None]


class DataRegistryBusyError(RuntimeError):
    """Other writers kept moving the registry's remote: this batch could not be versioned."""


class DataRegistry:
    """The DVC data registry.

    Without ``RETRAINER_DATA_REGISTRY_URL`` it is the git repository at
    ``RETRAINER_DATA_REGISTRY``. With it, that folder is this worker's clone of the registry
    at the URL (a bare repository path, ``ssh://``, ``https://``): versioning fetches, commits,
    tags and pushes branch and tag in one atomic push; when another worker pushed first (the
    branch moved or the tag was taken), it starts again from the remote's state and takes the
    next number, so no version is lost or duplicated. Reads fetch the tags first and read a
    pinned commit, its bytes coming from the DVC remote. A file lock serializes the processes
    of one host on one clone; across hosts the remote's atomic push decides.
    """

    #: how often a rejected push is retried (each retry starts from the remote's new state)
    PUSH_ATTEMPTS = 20

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.root = Path(settings.data_registry)
        self.url = settings.data_registry_url
        self._synced = False

    # ----------------------------------------------------------------- plumbing
    def _git(self, *args: str, check: bool = True) -> str:
        return _git(self.root, *args, check=check)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        from filelock import FileLock

        self.root.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(self.root) + ".lock", timeout=600):
            yield

    def _remote_name(self) -> str:
        return "s3" if is_s3(self.settings.dvc_remote) else "local"

    def ensure(self) -> None:
        """Create the registry (or this worker's clone of it) on first use (idempotent), bring it
        up to the remote's state, and point its DVC remote at the settings."""
        with self._locked():
            self._ensure_unlocked()

    def _ensure_unlocked(self) -> None:
        from dvc.repo import Repo

        os.environ.setdefault("DVC_NO_ANALYTICS", "1")
        if self.url:
            self._sync_unlocked(reset=True)
        else:
            self._drop_unfinished()
        if not (self.root / ".dvc").is_dir():
            if not (self.root / ".git").is_dir():
                self.root.mkdir(parents=True, exist_ok=True)
                self._git("init", "-q", "-b", BRANCH)
                self._identity()
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

    def _drop_unfinished(self) -> None:
        """Undo what a write cut off half way left in the working tree (a batch added to DVC whose
        push failed or whose process died before its commit): it was never a version, and left
        there it would read as one. Every write holds the lock, so nothing else is half way."""
        if not (self.root / ".git").is_dir() or not self._git("rev-parse", "-q", "--verify", "HEAD", check=False):
            return
        if self._git("status", "--porcelain", "--", BATCH_DIR):
            log.warning("the data registry at %s holds an unfinished write; dropping it", self.root)
            self._git("reset", "-q", "--hard", "HEAD")
            self._git("clean", "-q", "-fd", "--", BATCH_DIR)

    def _identity(self) -> None:
        self._git("config", "user.name", "retrainer")
        self._git("config", "user.email", "retrainer@localhost")

    def _sync_unlocked(self, reset: bool) -> None:
        """This worker's clone, up to date with the remote: cloned on first use, then fetched
        (tags included; a tag the remote moved is taken over, so a pinned read sees that it moved)."""
        if not self.url:
            raise RuntimeError("the data registry has no remote to sync with (RETRAINER_DATA_REGISTRY_URL)")
        if not (self.root / ".git").is_dir():
            self.root.mkdir(parents=True, exist_ok=True)
            self._git("init", "-q", "-b", BRANCH)
            self._identity()
            self._git("remote", "add", "origin", self.url)
        self._git("remote", "set-url", "origin", self.url)  # the settings name the remote, not the clone
        self._git("fetch", "-q", "--prune", "--tags", "--force", "origin")
        if reset and self._git("rev-parse", "-q", "--verify", f"refs/remotes/origin/{BRANCH}", check=False):
            self._git("checkout", "-q", "-B", BRANCH, f"origin/{BRANCH}")
            self._git("reset", "-q", "--hard", f"origin/{BRANCH}")
            self._git("clean", "-q", "-fd")
        self._synced = True

    def _sync_for_read(self) -> None:
        if self.url and not self._synced:
            with self._locked():
                self._sync_unlocked(reset=False)

    def _publish(self, tag: str) -> str | None:
        """Push the branch and the new tag in one atomic push. Returns None when it landed, else
        why the remote refused it (another worker pushed first, or the remote is unreachable);
        the local tag and the batch's commit are then dropped."""
        if not self.url:
            return None
        out = _git(
            self.root,
            "push",
            "--atomic",
            "--porcelain",
            "origin",
            f"{BRANCH}:{BRANCH}",
            f"refs/tags/{tag}",
            check=False,
            capture_stderr=True,
        )
        if out.returncode == 0:
            return None
        lines = [ln.strip() for ln in (out.stderr or out.stdout).splitlines() if ln.strip() and "hint:" not in ln]
        reason = " | ".join(lines[-3:]) or f"git push exited {out.returncode}"
        log.info("the registry's remote refused %s (%s); starting again from its state", tag, reason)
        self._git("tag", "-d", tag, check=False)
        self._git("reset", "-q", "--hard", "HEAD~1")  # the batch's commit exists nowhere else: drop it
        return reason

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

    @property
    def where(self) -> str:
        return self.url or str(self.root)

    def latest(self, dataset: str) -> DataVersion:
        self._sync_for_read()
        if not (self.root / ".git").is_dir():
            raise DataVersionError(f"data registry {self.where} does not exist yet: no batch was versioned")
        tags = self._tags(dataset)
        if not tags:
            raise DataVersionError(f"no data version of '{dataset}' in {self.where}")
        return self._version(dataset, tags[-1])

    def resolve(self, dataset: str, version: str | None) -> DataVersion:
        """``None``/"latest" -> the newest version; "v0007" or a full tag -> that version."""
        if version in (None, "", "latest"):
            return self.latest(dataset)
        version = str(version)
        self._sync_for_read()
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
        self._sync_for_read()
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
        return self._add(spec, period, lambda: (source, md5))

    def decide_batch(self, spec: DatasetSpec, period: str, decide: Decide) -> VersionResult:
        """Version what ``decide`` makes of ``period`` as the registry holds it at this moment:
        decided under the lock that numbers versions, after the clone is brought up to the
        remote's state, and decided again when another host's push got there first. So two
        deliveries of one period validated at once are decided one after the other, the second
        against what the first made (``decide`` may raise to refuse it). When ``decide`` makes
        nothing new, the version holding the period is returned (``created`` False)."""
        from retrainer.data.validation import file_md5

        def make() -> tuple[Path, str] | None:
            held = self._held(spec, period)
            source = decide(held)
            if source is None:
                return None
            return source, file_md5(source)

        return self._add(spec, period, make)

    def _held(self, spec: DatasetSpec, period: str) -> Held | None:
        """``period`` as the working tree's commit holds it (the caller holds the lock)."""
        dvc_rel = f"{BATCH_DIR}/{spec.name}/{period}.csv.dvc"
        if not (self.root / dvc_rel).is_file():
            return None
        version = self._version(spec.name, self._tag_for(spec.name, dvc_rel))
        return Held(self.read_text(spec, version, period), version)

    def _add(self, spec: DatasetSpec, period: str, make: Callable[[], tuple[Path, str] | None]) -> VersionResult:
        """The file ``make`` gives (with its md5) as the next version, under the lock, starting
        again from the remote's state when another writer pushed first."""
        rel = Path(BATCH_DIR) / spec.name / f"{period}.csv"
        refused = ""
        with self._locked():
            for attempt in range(self.PUSH_ATTEMPTS):
                if attempt:  # another writer got there first: give it a moment, then start again
                    time.sleep(random.uniform(0, min(2.0, 0.2 * attempt)))  # noqa: S311 - jitter, not a secret
                self._ensure_unlocked()  # with a remote: its state now, which a retry starts from
                dvc_file = self.root / f"{rel}.dvc"
                made = make()
                if made is None or self._recorded_md5(dvc_file) == made[1]:
                    tag = self._tag_for(spec.name, f"{rel}.dvc")
                    log.info("batch %s %s is already versioned as %s", spec.name, period, tag)
                    held_md5 = self._recorded_md5(dvc_file) or ""
                    return VersionResult(self._version(spec.name, tag), period, False, 0, held_md5)
                source, md5 = made
                tag, size, pushed = self._commit_batch(spec, period, source, md5, rel)
                refused = self._publish(tag) or ""
                if not refused:
                    log.info(
                        "versioned %s %s as %s (%d bytes, %s objects pushed)", spec.name, period, tag, size, pushed
                    )
                    return VersionResult(self._version(spec.name, tag), period, True, size if pushed else 0, md5)
        raise DataRegistryBusyError(
            f"could not version {spec.name} {period}: the registry at {self.where} refused "
            f"{self.PUSH_ATTEMPTS} pushes in a row, the last one with: {refused}"
        )

    def _commit_batch(self, spec: DatasetSpec, period: str, source: Path, md5: str, rel: Path) -> tuple[str, int, int]:
        """The batch into the DVC remote (data first), then one commit and the next version tag."""
        from dvc.repo import Repo

        target = self.root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        with Repo(str(self.root)) as repo:
            repo.add([str(target)])
            faults.point("version:pushing")
            pushed = int(repo.push(targets=[str(target)]) or 0)
        faults.point("version:pushed")
        self._git("add", "-A", str(rel.parent))
        tags = self._tags(spec.name)
        n = int(_TAG_RE.match(tags[-1]).group("n")) + 1 if tags else 1  # type: ignore[union-attr]
        tag = f"{spec.name}/{version_label(n)}"
        self._git("commit", "-q", "-m", f"{spec.name}: batch {period} (md5 {md5})")
        self._git("tag", tag)
        return tag, target.stat().st_size, pushed

    def _tag_for(self, dataset: str, dvc_rel: str) -> str:
        """The version tag of the commit that last changed ``dvc_rel``."""
        commit = self._git("log", "-n", "1", "--format=%H", "--", dvc_rel)
        tags = self._git("tag", "--points-at", commit).splitlines()
        for t in tags:
            if t.startswith(f"{dataset}/v"):
                return t
        raise DataVersionError(f"commit {commit} of {dvc_rel} carries no version tag")

    def version_holding(self, spec: DatasetSpec, period: str) -> DataVersion:
        """The data version that made ``period``'s current rows (the last one to change them)."""
        self.latest(spec.name)  # synced with the remote; DataVersionError when there is none
        return self._version(spec.name, self._tag_for(spec.name, f"{BATCH_DIR}/{spec.name}/{period}.csv.dvc"))

    def read_text(self, spec: DatasetSpec, version: DataVersion, period: str) -> str:
        """The versioned file of one period, as text, exactly as it was at ``version``."""
        return self.read_texts(spec, version, [period])[period]

    def read_texts(self, spec: DatasetSpec, version: DataVersion, periods: list[str]) -> dict[str, str]:
        """The versioned files of ``periods``, as text, exactly as they were at ``version`` (from
        the DVC cache or remote), through one view of the registry at that commit (opening it
        costs more than reading a period)."""
        from dvc.fs.dvc import DVCFileSystem
        from dvc.repo import Repo

        missing = [p for p in periods if p not in version.periods]
        if missing:
            raise DataVersionError(f"period{'s' if len(missing) > 1 else ''} {', '.join(missing)} not in {version.tag}")
        texts = {}
        # opened at the commit as dvc.api.read opens it, but once for all the periods
        with Repo.open(str(self.root), rev=version.rev, subrepos=True, uninitialized=True) as repo:
            fs = DVCFileSystem(repo=repo, subrepos=True)
            for p in periods:
                path = f"{BATCH_DIR}/{spec.name}/{p}.csv"
                try:
                    with fs.open(fs.from_os_path(path), mode="r") as f:
                        texts[p] = str(f.read())
                except FileNotFoundError as exc:
                    raise DataVersionError(f"{path} of {version.tag} (rev {version.rev}) is missing: {exc}") from exc
        return texts

    def read_periods(self, spec: DatasetSpec, version: DataVersion, periods: list[str]) -> pd.DataFrame:
        """The rows of ``periods`` exactly as they were at ``version`` (from the DVC cache or remote)."""
        texts = self.read_texts(spec, version, periods)
        return periods_frame(spec, [texts[p] for p in periods])


def periods_frame(spec: DatasetSpec, texts: list[str]) -> pd.DataFrame:
    """Versioned periods' files as one frame in time order (see ``period_frame``)."""
    df = pd.concat([period_frame(spec, t) for t in texts], ignore_index=True)
    return df.sort_values(spec.time_column, kind="stable").reset_index(drop=True)


def period_frame(spec: DatasetSpec, text: str) -> pd.DataFrame:
    """A versioned period's file as a frame: categories and classes as text ("1" is not a
    number), the time column as timestamps."""
    from retrainer.data.batchfile import text_columns

    df = pd.read_csv(io.StringIO(text), dtype=text_columns(spec))
    df[spec.time_column] = pd.to_datetime(df[spec.time_column], format="ISO8601")
    return df
