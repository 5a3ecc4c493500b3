"""Lineage: where a model version came from, and what was built from a data version.

For a model version: the data version it was trained on (DVC tag, git rev, training and
holdout periods), the Great Expectations result and its artifact, the MLflow run, the
Airflow DAG run, the code version and the seed, the evaluation (gate and report), the
promotion decision, where it is deployed and under which label, and its reproductions.
For a data version: the model versions (and training runs) built on it.

Everything is read back from what the pipeline recorded (MLflow run and model-version tags,
the DVC data registry); nothing here writes. ``code_version`` is also what the training step
records, so the recording and the reading side agree on one format.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import subprocess
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from retrainer import schema
from retrainer.data.versioning import DataRegistry, git_program
from retrainer.settings import REPO_ROOT, Settings

if TYPE_CHECKING:
    from mlflow.entities import Run
    from mlflow.entities.model_registry import ModelVersion
    from mlflow.tracking import MlflowClient

log = logging.getLogger(__name__)

#: the part of the repository that is the pipeline's code (what ``code.dirty`` looks at)
CODE_DIR = "include"
_SHA_RE = re.compile(r"^[0-9a-f]{40}$")


class LineageNotFoundError(LookupError):
    """The model, model version or dataset asked about does not exist; the message names it."""


# =============================================================================== code version


@dataclass(frozen=True)
class CodeVersion:
    """The code that ran: a git commit (and whether ``include/`` had uncommitted changes), or,
    outside a git checkout (an image), the installed package version."""

    commit: str  # 40-hex git commit, or "retrainer==<version>" when there is no git checkout
    dirty: bool | None  # None: unknown (no git checkout)
    source: str = "git"  # "git" | "package"
    changes: str | None = None  # sha256 of the uncommitted changes under include/, when dirty

    @property
    def is_git(self) -> bool:
        return self.source == "git" and bool(_SHA_RE.match(self.commit))

    @property
    def short(self) -> str:
        return self.commit[:10] if self.is_git else self.commit

    def describe(self) -> str:
        if not self.is_git:
            return f"{self.commit} (no git checkout; uncommitted changes unknown)"
        return f"{self.short} ({'with uncommitted changes under include/' if self.dirty else 'clean'})"

    def tags(self) -> dict[str, str]:
        out = {
            schema.CODE_COMMIT: self.commit,
            schema.CODE_DIRTY: "unknown" if self.dirty is None else str(self.dirty).lower(),
            schema.CODE_SOURCE: self.source,
        }
        if self.changes:
            out[schema.CODE_CHANGES] = self.changes
        return out

    @classmethod
    def from_tags(cls, tags: dict[str, str]) -> CodeVersion | None:
        commit = tags.get(schema.CODE_COMMIT)
        if not commit:
            return None
        dirty = {"true": True, "false": False}.get(tags.get(schema.CODE_DIRTY, ""))
        source = tags.get(schema.CODE_SOURCE) or ("git" if _SHA_RE.match(commit) else "package")
        return cls(commit=commit, dirty=dirty, source=source, changes=tags.get(schema.CODE_CHANGES) or None)


def _git(root: Path, *args: str) -> bytes:
    # GIT_OPTIONAL_LOCKS=0: reading the status must not take the index lock from someone committing
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_OPTIONAL_LOCKS": "0"}
    proc = subprocess.run(
        [git_program(), "-C", str(root), *args], capture_output=True, env=env, timeout=60, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)}: {proc.stderr.decode(errors='replace').strip()}")
    return proc.stdout


def _package_version() -> CodeVersion:
    try:
        version = metadata.version("retrainer")
    except metadata.PackageNotFoundError:
        version = "unknown"
    return CodeVersion(commit=f"retrainer=={version}", dirty=None, source="package")


def code_version(root: Path = REPO_ROOT) -> CodeVersion:
    """The code version of the checkout at ``root``: ``git rev-parse HEAD`` and whether
    ``include/`` has uncommitted changes (tracked or new files). When ``root`` is not a git
    checkout of its own (an installed package, an image without ``.git``, git missing), the
    package version instead."""
    try:
        top = Path(_git(root, "rev-parse", "--show-toplevel").decode().strip()).resolve()
        if top != root.resolve():  # ``root`` sits inside some other repository
            return _package_version()
        commit = _git(root, "rev-parse", "HEAD").decode().strip()
        status = _git(root, "status", "--porcelain", "--untracked-files=all", "--", CODE_DIR)
    except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
        log.info("code version from the package: %s is not a usable git checkout (%s)", root, exc)
        return _package_version()
    dirty = bool(status.strip())
    return CodeVersion(commit=commit, dirty=dirty, source="git", changes=_changes_digest(root) if dirty else None)


def _changes_digest(root: Path) -> str:
    """A fingerprint of the uncommitted changes under include/: the diff against HEAD and the
    content of new files. Equal fingerprints on the same commit mean the same code."""
    digest = hashlib.sha256(_git(root, "diff", "HEAD", "--binary", "--no-ext-diff", "--", CODE_DIR))
    untracked = _git(root, "ls-files", "-z", "--others", "--exclude-standard", "--", CODE_DIR)
    for name in sorted(n for n in untracked.decode().split("\0") if n):
        digest.update(b"\0new file\0" + name.encode() + b"\0")
        try:
            digest.update((root / name).read_bytes())
        except OSError:  # removed meanwhile
            continue
    return digest.hexdigest()


# =============================================================================== records


@dataclass(frozen=True)
class DataLineage:
    dataset: str
    version: str  # e.g. "v0007"
    rev: str  # the data registry's git commit of that version
    train_periods: tuple[str, ...]
    holdout_periods: tuple[str, ...]


@dataclass(frozen=True)
class ReproductionRecord:
    """One reproduction of a model version (its own MLflow run)."""

    run_id: str
    started: str
    code_commit: str
    within_tolerance: bool | None
    relative_difference: float | None


@dataclass(frozen=True)
class ModelLineage:
    model: str
    version: str
    aliases: tuple[str, ...]
    registered_at: str
    data: DataLineage
    gx_success: bool | None
    validation_artifacts: tuple[str, ...]
    mlflow_run_id: str
    mlflow_experiment_id: str
    airflow_dag_id: str | None
    airflow_run_id: str | None
    code: CodeVersion | None
    seed: str | None
    params: dict[str, str]
    metrics: dict[str, float]
    evaluation_report: str | None
    gate: dict[str, str]
    promotion: dict[str, str]
    deploy: dict[str, str]
    history: dict[str, str]  # rollbacks and other later events recorded on the version
    reproductions: tuple[ReproductionRecord, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def render(self) -> str:
        d = self.data
        lines = [
            f"{self.model} v{self.version}" + (f"  [{', '.join(self.aliases)}]" if self.aliases else ""),
            f"  registered     {self.registered_at}",
            f"  data           {d.dataset} {d.version} (data registry rev {d.rev})",
            f"                 train {', '.join(d.train_periods) or '-'}; "
            f"holdout {', '.join(d.holdout_periods) or '-'}",
            f"  validation     gx.success={_word(self.gx_success)}"
            + (f"; {', '.join(self.validation_artifacts)}" if self.validation_artifacts else ""),
            f"  mlflow run     {self.mlflow_run_id} (experiment {self.mlflow_experiment_id})",
            f"  airflow run    {self.airflow_dag_id or '-'} / {self.airflow_run_id or '-'}",
            f"  code           {self.code.describe() if self.code else 'not recorded'}",
            f"  seed           {self.seed or 'not recorded'}",
            "  params         " + (", ".join(f"{k}={v}" for k, v in sorted(self.params.items())) or "-"),
            "  metrics        " + (", ".join(f"{k}={v:.6g}" for k, v in sorted(self.metrics.items())) or "-"),
            f"  evaluation     {self.evaluation_report or 'no report recorded'}",
        ]
        for title, group in (
            ("gate", self.gate),
            ("promotion", self.promotion),
            ("deploy", self.deploy),
            ("history", self.history),
        ):
            lines.append(f"  {title:<14} " + ("; ".join(f"{k}={v}" for k, v in sorted(group.items())) or "-"))
        if self.reproductions:
            lines.append("  reproductions")
            for r in self.reproductions:
                verdict = {True: "within tolerance", False: "OUTSIDE tolerance", None: "unfinished"}[r.within_tolerance]
                rel = "" if r.relative_difference is None else f", relative difference {r.relative_difference:.3g}"
                lines.append(f"    {r.started}  run {r.run_id}  code {r.code_commit[:10]}: {verdict}{rel}")
        else:
            lines.append("  reproductions  none")
        return "\n".join(lines)


@dataclass(frozen=True)
class TrainedVersion:
    model: str
    version: str
    aliases: tuple[str, ...]
    mlflow_run_id: str
    promotion: str  # promoted | rejected | pending | ...
    rev_matches: bool  # the version's recorded data.rev is this data version's rev


@dataclass(frozen=True)
class TrainingRun:
    run_id: str
    name: str
    started: str
    status: str
    model_version: str | None


@dataclass(frozen=True)
class DataVersionLineage:
    dataset: str
    version: str
    tag: str
    rev: str
    periods: tuple[str, ...]
    model: str
    model_versions: tuple[TrainedVersion, ...]
    runs: tuple[TrainingRun, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def render(self) -> str:
        lines = [
            f"{self.dataset} {self.version} (tag {self.tag}, data registry rev {self.rev})",
            f"  periods        {', '.join(self.periods)}",
            f"  model versions of {self.model} trained on it:" + ("" if self.model_versions else " none"),
        ]
        for mv in self.model_versions:
            alias = f" [{', '.join(mv.aliases)}]" if mv.aliases else ""
            warn = "" if mv.rev_matches else "  (WARNING: recorded data.rev differs from this version's rev)"
            lines.append(f"    {mv.model} v{mv.version}{alias}  run {mv.mlflow_run_id}  promotion {mv.promotion}{warn}")
        lines.append("  training runs on it:" + ("" if self.runs else " none"))
        for r in self.runs:
            made = f"-> v{r.model_version}" if r.model_version else "(no model version)"
            lines.append(f"    {r.started}  {r.run_id}  {r.name}  {r.status}  {made}")
        return "\n".join(lines)


def _word(flag: bool | None) -> str:
    return "unknown" if flag is None else str(flag).lower()


def _when(millis: int | None) -> str:
    if not millis:
        return "-"
    return datetime.fromtimestamp(millis / 1000, tz=UTC).isoformat(timespec="seconds")


# =============================================================================== lookups


def _client(settings: Settings) -> MlflowClient:
    from retrainer.registry.session import mlflow_client

    return mlflow_client(settings.mlflow_tracking_uri)


def find_model_version(settings: Settings, model: str, version: str) -> ModelVersion:
    """The registry entry of ``model`` ``version`` ("3", "v3" or an alias such as "champion").

    Raises LineageNotFoundError naming the model or the version when either does not exist."""
    from mlflow.exceptions import MlflowException

    client = _client(settings)
    try:
        client.get_registered_model(model)
    except MlflowException as exc:
        raise LineageNotFoundError(
            f"model '{model}' is not in the MLflow registry at {settings.mlflow_tracking_uri}"
        ) from exc
    wanted = version[1:] if version[:1] in ("v", "V") and version[1:].isdigit() else version
    try:
        if wanted.isdigit():
            return client.get_model_version(model, wanted)
        return client.get_model_version_by_alias(model, wanted)
    except MlflowException as exc:
        known = sorted(int(v.version) for v in client.search_model_versions(schema.tag_filter({}, name=model)))
        listed = ", ".join(str(v) for v in known[-10:]) or "none"
        raise LineageNotFoundError(f"model '{model}' has no version '{version}' (versions: {listed})") from exc


def _get_run(client: MlflowClient, run_id: str) -> Run | None:
    from mlflow.exceptions import MlflowException

    try:
        return client.get_run(run_id)
    except MlflowException:
        return None


def reproductions_of(settings: Settings, model: str, version: str) -> tuple[ReproductionRecord, ...]:
    client = _client(settings)
    exp = client.get_experiment_by_name(schema.reproductions_experiment(model))
    if exp is None:
        return ()
    runs = client.search_runs(
        [exp.experiment_id],
        filter_string=schema.tag_filter({schema.REPRODUCES: f"{model}/{version}"}),
        order_by=["attributes.start_time ASC"],
        max_results=200,
    )
    out = []
    for r in runs:
        verdict = r.data.tags.get(schema.REPRODUCE_WITHIN_TOLERANCE)
        rel = r.data.metrics.get("relative_difference")
        out.append(
            ReproductionRecord(
                run_id=r.info.run_id,
                started=_when(r.info.start_time),
                code_commit=r.data.tags.get(schema.CODE_COMMIT, "-"),
                within_tolerance={"true": True, "false": False}.get(verdict or ""),
                relative_difference=rel,
            )
        )
    return tuple(out)


def model_lineage(settings: Settings, model: str, version: str) -> ModelLineage:
    """Everything recorded about where ``model`` ``version`` came from and what became of it."""
    client = _client(settings)
    mv = find_model_version(settings, model, version)
    vtags = dict(mv.tags)
    run = _get_run(client, mv.run_id) if mv.run_id else None
    rtags = dict(run.data.tags) if run else {}
    params = dict(run.data.params) if run else {}
    metrics = dict(run.data.metrics) if run else {}
    artifacts: tuple[str, ...] = ()
    if run is not None:
        try:
            listed = client.list_artifacts(run.info.run_id, "validation")
            artifacts = tuple(f"{run.info.artifact_uri}/{a.path}" for a in listed if not a.is_dir)
        except Exception as exc:  # an unreachable artifact store must not hide the rest
            log.warning("could not list the validation artifacts of run %s: %s", mv.run_id, exc)
    gx = vtags.get(schema.GX_SUCCESS) or rtags.get(schema.GX_SUCCESS)
    ref = schema.read_data(vtags, params)
    data = DataLineage(
        dataset=rtags.get(schema.DATASET, "-"),
        version=ref.version or "-",
        rev=ref.rev or "-",
        train_periods=tuple(ref.train_periods),
        holdout_periods=tuple(ref.holdout_periods),
    )
    return ModelLineage(
        model=mv.name,
        version=str(mv.version),
        aliases=tuple(sorted(getattr(mv, "aliases", None) or ())),
        registered_at=_when(mv.creation_timestamp),
        data=data,
        gx_success={"true": True, "false": False}.get(gx or ""),
        validation_artifacts=artifacts,
        mlflow_run_id=mv.run_id or "-",
        mlflow_experiment_id=run.info.experiment_id if run else "-",
        airflow_dag_id=vtags.get(schema.AIRFLOW_DAG_ID) or rtags.get(schema.AIRFLOW_DAG_ID),
        airflow_run_id=vtags.get(schema.AIRFLOW_RUN_ID) or rtags.get(schema.AIRFLOW_RUN_ID),
        code=CodeVersion.from_tags(rtags),
        seed=rtags.get(schema.TRAINING_SEED) or params.get("seed"),
        params={k: v for k, v in params.items() if k not in (schema.PARAM_TRAIN_PERIODS, schema.PARAM_HOLDOUT_PERIODS)},
        metrics={k: v for k, v in metrics.items() if k.startswith(("holdout_", "baseline_", "champion_"))},
        evaluation_report=vtags.get(schema.EVALUATION_REPORT) or None,
        gate=schema.family(vtags, schema.GATE_PASSED),
        promotion=schema.family(vtags, schema.PROMOTION_DECISION, schema.APPROVAL_DECISION),
        deploy={**schema.family(vtags, schema.DEPLOY_LOCATION), **schema.pick(vtags, schema.TFLITE_LOCATION)},
        history=schema.family(vtags, schema.ROLLBACK_FROM, schema.ROLLED_BACK_TO),
        reproductions=reproductions_of(settings, mv.name, str(mv.version)),
    )


def data_lineage(settings: Settings, dataset: str, data_version: str) -> DataVersionLineage:
    """The model versions (and training runs) built on ``dataset`` ``data_version``."""
    if not settings.spec_path(dataset).is_file():
        raise LineageNotFoundError(f"dataset '{dataset}' has no spec ({settings.spec_path(dataset)})")
    spec = settings.load_spec(dataset)
    version = DataRegistry(settings).resolve(dataset, data_version)  # DataVersionError (a LookupError)
    client = _client(settings)
    found = client.search_model_versions(schema.tag_filter({schema.DATA_VERSION: version.label}, name=spec.model_name))
    versions = tuple(
        TrainedVersion(
            model=mv.name,
            version=str(mv.version),
            aliases=tuple(sorted(getattr(mv, "aliases", None) or ())),
            mlflow_run_id=mv.run_id or "-",
            promotion=mv.tags.get(schema.PROMOTION_DECISION, "pending"),
            rev_matches=mv.tags.get(schema.DATA_REV, version.rev) == version.rev,
        )
        for mv in sorted(found, key=lambda m: int(m.version))
    )
    by_run = {v.mlflow_run_id: v.version for v in versions}
    runs: list[TrainingRun] = []
    exp = client.get_experiment_by_name(spec.model_name)
    if exp is not None:
        for r in client.search_runs(
            [exp.experiment_id],
            filter_string=(schema.tag_filter({schema.DATASET: dataset, schema.RUN_DATA_VERSION: version.label})),
            order_by=["attributes.start_time ASC"],
            max_results=500,
        ):
            runs.append(
                TrainingRun(
                    run_id=r.info.run_id,
                    name=r.info.run_name or "-",
                    started=_when(r.info.start_time),
                    status=r.info.status,
                    model_version=by_run.get(r.info.run_id),
                )
            )
    return DataVersionLineage(
        dataset=dataset,
        version=version.label,
        tag=version.tag,
        rev=version.rev,
        periods=version.periods,
        model=spec.model_name,
        model_versions=versions,
        runs=tuple(runs),
    )
