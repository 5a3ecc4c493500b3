"""Rebuild a registered model version from what it recorded, and say whether it comes out the same.

A version's MLflow run recorded its data version (DVC tag and registry rev, training and
holdout periods), its training parameters and seed, the spec it was trained under and its
code version (git commit, and whether ``include/`` had uncommitted changes). A reproduction
reads the same periods at the same rev, trains with the same parameters and seed under the
same spec and code, scores the rebuilt model on the same holdout and compares its metric with
the one recorded on the run (and its predictions with the registered model's).

The code: when the checkout here runs exactly the recorded code, the rebuild runs in this
process. Otherwise ``include/`` of the recorded commit is exported (``git archive``) and the
rebuild runs in a subprocess importing that export, so it really is built from its own code
version. Uncommitted changes are not kept by git: a version trained on a dirty tree can only
be rebuilt from its commit, and the report says so.

A reproduction never registers a model version and never moves an alias. Each one is logged
as its own MLflow run (experiment ``<model>-reproductions``, tag ``retrainer.reproduces=
<model>/<version>``); running it again logs a new run rather than reusing the old one, because
a reproduction is a check made at a point in time (checkout, libraries, machine), and every
check keeps its own record.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tarfile
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from retrainer import schema, storage
from retrainer.registry.client import Registry
from retrainer.registry.lineage import CODE_DIR, CodeVersion, code_version, find_model_version
from retrainer.settings import REPO_ROOT, Settings
from retrainer.spec.dataset import DatasetSpec
from retrainer.spec.learning import TrainingConfig

if TYPE_CHECKING:
    import pandas as pd
    from mlflow.tracking import MlflowClient

log = logging.getLogger(__name__)

#: Largest relative difference of the holdout metric that still counts as the same model.
#: Measured on this pipeline (bike sharing, 6-month window): training is bit-exact from run to
#: run and process to process with the recorded seed (difference 0.0, with 1 or 2 threads);
#: switching TensorFlow's oneDNN kernels off, a different arithmetic path, moved the holdout
#: RMSE by 8.1e-8 relative; a different seed moves it by 10-13 %. 1e-6 is over ten times the
#: kernel noise and five orders of magnitude below what a real change of the model does.
DEFAULT_TOLERANCE = 1e-6

CodeChoice = Literal["auto", "here", "commit"]


class ReproductionError(RuntimeError):
    """The version cannot be rebuilt as recorded (data moved, commit missing, rebuild failed)."""


# =============================================================================== pure parts


@dataclass(frozen=True)
class CodePlan:
    """Which code rebuilds the version: ``here`` (this process, the checkout's code) or
    ``commit`` (the recorded commit exported, in a subprocess)."""

    where: Literal["here", "commit"]
    commit: str | None  # the commit to export (where == "commit")
    exact: bool | None  # True: exactly the recorded code; False: known to differ; None: cannot tell
    notices: tuple[str, ...] = ()


def _same_code(recorded: CodeVersion, current: CodeVersion) -> bool:
    if not (recorded.is_git and current.is_git) or recorded.commit != current.commit:
        return False
    if recorded.dirty or current.dirty:  # the same uncommitted changes on both sides, or not the same
        return bool(recorded.dirty and current.dirty and recorded.changes and recorded.changes == current.changes)
    return recorded.dirty is False and current.dirty is False


def plan_code(recorded: CodeVersion | None, current: CodeVersion, choice: CodeChoice = "auto") -> CodePlan:
    """Decide which code rebuilds a version that recorded ``recorded``, from a checkout at ``current``.

    ``auto``: here when the checkout runs exactly the recorded code, else the recorded commit;
    ``here`` / ``commit`` force one or the other."""
    notes: list[str] = []
    if recorded is None or not recorded.is_git:
        what = "no code version" if recorded is None else f"no git commit ({recorded.commit})"
        notes.append(f"the run recorded {what}: rebuilt with the code here, {current.describe()}; it may differ")
        return CodePlan("here", None, None, tuple(notes))
    same = _same_code(recorded, current)
    if recorded.dirty:
        notes.append(
            f"the model was trained on commit {recorded.short} WITH uncommitted changes under {CODE_DIR}/, "
            "which git does not keep"
            + (": the checkout here has the very same changes (same fingerprint)" if same else "")
        )
    if choice == "here" or (choice == "auto" and same):
        if not same:
            notes.append(
                f"rebuilt with the code here, {current.describe()}, not the recorded {recorded.describe()}: "
                "a difference may come from the code"
            )
        return CodePlan("here", None, True if same else None, tuple(notes))
    if choice == "auto" and not current.is_git:
        notes.append(
            f"the model was trained on commit {recorded.short}, but there is no git checkout here to export it "
            f"from: rebuilt with the code here, {current.describe()}"
        )
        return CodePlan("here", None, None, tuple(notes))
    if recorded.commit != current.commit:
        notes.append(
            f"the model was trained on commit {recorded.short}; the checkout here is at {current.short}: "
            f"rebuilt from {recorded.short}'s code ({CODE_DIR}/ exported with git archive, run in a subprocess)"
        )
    elif current.dirty and not recorded.dirty:
        notes.append(
            f"the checkout here has uncommitted changes under {CODE_DIR}/: rebuilt from commit {recorded.short} "
            "as committed (exported with git archive, run in a subprocess)"
        )
    else:
        notes.append(f"rebuilt from commit {recorded.short} as committed (exported with git archive, in a subprocess)")
    if recorded.dirty:
        notes.append(f"commit {recorded.short} lacks the uncommitted changes the model was trained with")
    return CodePlan("commit", recorded.commit, not recorded.dirty, tuple(notes))


def training_config(
    params: dict[str, str], tags: dict[str, str], fallback: TrainingConfig, window: int, holdout: int
) -> tuple[TrainingConfig, list[str]]:
    """The training configuration recorded on a run (its params, and the ``training.seed`` tag).

    The window and holdout sizes are those of the recorded period lists (the run's
    ``holdout_periods`` param holds the periods themselves). Fields the run did not record
    come from ``fallback`` (the spec's), and are named."""
    values: dict[str, Any] = {"window_periods": window, "holdout_periods": holdout}
    missing: list[str] = []
    for f in fields(TrainingConfig):
        if f.name in values:
            continue
        raw = params.get(f.name)
        if f.name == "seed" and raw is None:
            raw = tags.get(schema.TRAINING_SEED)
        if raw is None:
            missing.append(f.name)
            continue
        default = getattr(fallback, f.name)
        if isinstance(default, tuple):
            values[f.name] = tuple(int(u) for u in json.loads(raw))
        elif isinstance(default, int):
            values[f.name] = int(float(raw))
        else:
            values[f.name] = float(raw)
    notes = []
    if missing:
        taken = ", ".join(f"{m}={getattr(fallback, m)}" for m in missing)
        notes.append(f"the run did not record {', '.join(missing)}: taken from the spec ({taken})")
    return TrainingConfig(**{**asdict(fallback), **values}), notes


def relative_difference(original: float, rebuilt: float) -> float:
    diff = abs(rebuilt - original)
    return diff / abs(original) if original else diff


# =============================================================================== the report


@dataclass
class Reproduction:
    model: str
    version: str
    original_run_id: str
    dataset: str
    data_version: str
    data_rev: str
    train_periods: list[str]
    holdout_periods: list[str]
    seed: int
    training: dict[str, Any]
    recorded_code: str
    rebuilt_code: str
    code_where: str
    code_exact: bool | None
    metric: str
    original: float | None
    rebuilt: float
    tolerance: float
    original_metrics: dict[str, float]
    rebuilt_metrics: dict[str, float]
    max_abs_prediction_diff: float | None
    n_holdout: int
    original_epochs_run: int | None
    epochs_run: int
    rebuild_seconds: float
    notices: list[str] = field(default_factory=list)
    reproduction_run_id: str = ""

    @property
    def difference(self) -> float | None:
        return None if self.original is None else self.rebuilt - self.original

    @property
    def relative_difference(self) -> float | None:
        return None if self.original is None else relative_difference(self.original, self.rebuilt)

    @property
    def within_tolerance(self) -> bool | None:
        rel = self.relative_difference
        return None if rel is None else rel <= self.tolerance

    def to_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "difference": self.difference,
            "relative_difference": self.relative_difference,
            "within_tolerance": self.within_tolerance,
        }

    def render(self) -> str:
        m = self.metric
        epochs = f"{self.epochs_run} epochs run" + (
            "" if self.original_epochs_run is None else f" (original: {self.original_epochs_run})"
        )
        lines = [
            f"Reproduction of {self.model} v{self.version} (MLflow run {self.original_run_id})",
            f"  data        {self.dataset} {self.data_version} at data registry rev {self.data_rev}",
            f"              train {', '.join(self.train_periods)}; holdout {', '.join(self.holdout_periods)}"
            f" ({self.n_holdout} rows)",
            f"  training    seed {self.seed}; "
            + ", ".join(f"{k}={v}" for k, v in self.training.items() if k != "seed")
            + f"; {epochs}",
            f"  code        recorded {self.recorded_code}",
            f"              rebuilt  {self.rebuilt_code}",
        ]
        if self.original is None:
            lines.append(f"  holdout {m}  original: not recorded | rebuilt {self.rebuilt:.10g}")
        else:
            lines.append(
                f"  holdout {m}  original {self.original:.10g} | rebuilt {self.rebuilt:.10g} | "
                f"difference {self.difference:+.3g} (relative {self.relative_difference:.3g})"
            )
        for k in sorted(set(self.rebuilt_metrics) - {m}):
            orig = self.original_metrics.get(k)
            shown = "-" if orig is None else f"{orig:.10g}"
            lines.append(f"  holdout {k}  original {shown} | rebuilt {self.rebuilt_metrics[k]:.10g}")
        if self.max_abs_prediction_diff is not None:
            lines.append(
                f"  predictions max |rebuilt - registered v{self.version}| = {self.max_abs_prediction_diff:.3g}"
                f" on {self.n_holdout} holdout rows"
            )
        verdict = self.within_tolerance
        if verdict is None:
            lines.append(f"  verdict     CANNOT JUDGE: the run recorded no holdout_{m}")
        else:
            cmp = "<=" if verdict else ">"
            word = "REPRODUCED" if verdict else "NOT REPRODUCED"
            exact = "" if self.code_exact else " (but not with exactly the recorded code, see below)"
            lines.append(
                f"  verdict     {word}: relative difference {self.relative_difference:.3g} {cmp} tolerance "
                f"{self.tolerance:g}{exact if verdict else ''}"
            )
        if self.reproduction_run_id:
            experiment = schema.reproductions_experiment(self.model)
            lines.append(f"  recorded as MLflow run {self.reproduction_run_id} (experiment {experiment})")
        if self.notices:
            lines.append("  notes")
            lines.extend(f"    - {n}" for n in self.notices)
        return "\n".join(lines)


# =============================================================================== rebuilding


@dataclass(frozen=True)
class _Job:
    dataset: str
    data_version: str
    data_rev: str
    train_periods: list[str]
    holdout_periods: list[str]
    spec_path: str
    training: dict[str, Any]


@dataclass(frozen=True)
class _Rebuilt:
    predictions: np.ndarray
    epochs_run: int
    module_path: str  # where ``retrainer`` was imported from: the code that really ran


@dataclass(frozen=True)
class _Original:
    """What the version recorded: its registry entry, its run's tags, params and metrics."""

    model: str
    version: str
    run_id: str
    dataset: str
    tags: dict[str, str]
    params: dict[str, str]
    metrics: dict[str, float]
    version_tags: dict[str, str]


def _read_pinned(settings: Settings, spec: DatasetSpec, job: _Job, periods: list[str]) -> pd.DataFrame:
    from retrainer.data.versioning import DataRegistry

    return DataRegistry(settings).read_pinned(spec, job.data_version, job.data_rev, periods)


def _rebuild_here(settings: Settings, spec: DatasetSpec, cfg: TrainingConfig, job: _Job) -> _Rebuilt:
    import retrainer
    from retrainer.model import training

    result = training.train(_read_pinned(settings, spec, job, job.train_periods), spec, cfg)
    holdout = _read_pinned(settings, spec, job, job.holdout_periods)
    return _Rebuilt(training.predict(result.model, holdout, spec), result.epochs_run, str(retrainer.__file__))


#: The rebuild in a subprocess, importing ``retrainer`` from the exported commit. The data
#: version was checked against its pinned rev before (``DataRegistry.pinned``, here), and the
#: child reads at that rev. It uses only the oldest, stable surface of the package
#: (Settings.from_env, DatasetSpec.load, TrainingConfig, DataVersion, DataRegistry.read_periods,
#: training.train/predict), from the modules of either layout (``retrainer.config`` before
#: settings and specs had modules of their own), so it runs against the code of any commit; a
#: spec's fields added later that judge deliveries only are left out where that code refuses them.
_CHILD = r"""
import json, sys
from dataclasses import fields
from pathlib import Path

import numpy as np

import retrainer
from retrainer.model import training
from retrainer.data.versioning import DataRegistry, DataVersion
try:
    from retrainer.settings import Settings
    from retrainer.spec.dataset import DatasetSpec
    from retrainer.spec.learning import TrainingConfig
except ImportError:
    from retrainer.config import DatasetSpec, Settings, TrainingConfig

job = json.loads(Path(sys.argv[1]).read_text())
out = Path(sys.argv[2])


def load_spec(path):
    # The spec as this commit's code reads it. Fields added to the spec after this commit that
    # judge deliveries and never training (coverage, relations, the target's checks, the ingest
    # section beyond the kept columns' names) are left out when this code does not know them.
    try:
        return DatasetSpec.load(path)
    except Exception as first:
        import yaml

        raw = yaml.safe_load(Path(path).read_text())
        for key in ("coverage", "relations"):
            raw.pop(key, None)
        for key in ("checks", "max_mean_change"):
            (raw.get("target") or {}).pop(key, None)
        kept = (raw.get("ingest") or {}).get("other_columns") or []
        raw["ingest"] = {"other_columns": list(kept)}
        trimmed = out.parent / "spec" / Path(path).name
        trimmed.parent.mkdir(exist_ok=True)
        trimmed.write_text(yaml.safe_dump(raw))
        try:
            return DatasetSpec.load(trimmed)
        except Exception:
            raise first from None


spec = load_spec(job["spec_path"])
known = {f.name for f in fields(TrainingConfig)}
cfg = TrainingConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in job["training"].items() if k in known})
tag = f"{job['dataset']}/{job['data_version']}"
version = DataVersion(job["dataset"], tag, job["data_rev"], tuple(job["train_periods"] + job["holdout_periods"]))
reg = DataRegistry(Settings.from_env())
result = training.train(reg.read_periods(spec, version, job["train_periods"]), spec, cfg)
pred = training.predict(result.model, reg.read_periods(spec, version, job["holdout_periods"]), spec)
np.save(out / "predictions.npy", np.asarray(pred, dtype="float32"))
(out / "result.json").write_text(json.dumps({"epochs_run": result.epochs_run, "module": retrainer.__file__}))
"""


def export_code(commit: str, dest: Path, root: Path = REPO_ROOT) -> Path:
    """``git archive <commit> include`` of the repository at ``root``, unpacked into ``dest``.
    Returns the folder to put on PYTHONPATH."""
    git = ["git", "-C", str(root)]
    if subprocess.run([*git, "cat-file", "-e", f"{commit}^{{commit}}"], capture_output=True).returncode != 0:
        raise ReproductionError(
            f"commit {commit} is not in the repository at {root}: fetch it to rebuild from it "
            "(or rebuild with the code here: --code here)"
        )
    tar = dest / "code.tar"
    proc = subprocess.run([*git, "archive", "--format=tar", "-o", str(tar), commit, CODE_DIR], capture_output=True)
    if proc.returncode != 0:
        raise ReproductionError(f"git archive {commit} {CODE_DIR} failed: {proc.stderr.decode().strip()}")
    with tarfile.open(tar) as archive:
        archive.extractall(dest, filter="data")
    tar.unlink()
    return dest / CODE_DIR


def _rebuild_from_commit(settings: Settings, spec: DatasetSpec, commit: str, job: _Job) -> _Rebuilt:
    from retrainer.data.versioning import DataRegistry

    DataRegistry(settings).pinned(spec.name, job.data_version, job.data_rev)  # the child reads at job.data_rev
    with storage.scratch("retrainer-rebuild-") as tmp:
        work = Path(tmp)
        code = export_code(commit, work)
        (work / "job.json").write_text(json.dumps(asdict(job)))
        (work / "rebuild.py").write_text(_CHILD)
        out = work / "out"
        out.mkdir()
        env = {**os.environ, **settings.to_env(), "PYTHONPATH": str(code)}
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        log.info("rebuilding from commit %s in a subprocess (code in %s)", commit[:10], code)
        proc = subprocess.run(
            [sys.executable, str(work / "rebuild.py"), str(work / "job.json"), str(out)],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
            raise ReproductionError(f"the rebuild from commit {commit[:10]} failed:\n{tail}")
        result = json.loads((out / "result.json").read_text())
        module = str(result["module"])
        if not Path(module).resolve().is_relative_to(code.resolve()):
            raise ReproductionError(f"the rebuild imported retrainer from {module}, not from the exported {commit}")
        return _Rebuilt(np.load(out / "predictions.npy"), int(result["epochs_run"]), module)


# =============================================================================== MLflow record


def _recorded_spec(client: MlflowClient, run_id: str, dataset: str, dest: Path) -> Path | None:
    try:
        names = [a.path for a in client.list_artifacts(run_id, "spec") if a.path.endswith((".yaml", ".yml"))]
    except Exception as exc:
        log.warning("could not list the spec recorded on run %s: %s", run_id, exc)
        return None
    wanted = [n for n in names if Path(n).stem == dataset] or names
    if not wanted:
        return None
    return Path(client.download_artifacts(run_id, wanted[0], str(dest)))


def _original(settings: Settings, registry: Registry, model: str, version: str) -> _Original:
    mv = find_model_version(settings, model, version)
    version = str(mv.version)
    if not mv.run_id:
        raise ReproductionError(f"{model} v{version} has no MLflow run: nothing recorded to rebuild it from")
    run = registry.client.get_run(mv.run_id)
    tags = dict(run.data.tags)
    dataset = tags.get(schema.DATASET)
    if not dataset:
        raise ReproductionError(f"MLflow run {mv.run_id} of {model} v{version} does not say its dataset")
    return _Original(
        model, version, mv.run_id, dataset, tags, dict(run.data.params), dict(run.data.metrics), dict(mv.tags)
    )


def _job(
    settings: Settings, registry: Registry, orig: _Original, tmp: Path, notices: list[str]
) -> tuple[DatasetSpec, TrainingConfig, _Job]:
    """The recorded spec, training configuration and data: what rebuilds the version."""
    spec_path = _recorded_spec(registry.client, orig.run_id, orig.dataset, tmp)
    current_spec = settings.spec_path(orig.dataset)
    if spec_path is None:
        spec_path = current_spec
        notices.append(f"the run recorded no spec: rebuilt under the current spec file {current_spec}")
    elif current_spec.is_file() and current_spec.read_bytes() != spec_path.read_bytes():
        notices.append(f"the spec file {current_spec} changed since the training; rebuilt under the recorded one")
    spec = DatasetSpec.load(spec_path)
    data = schema.read_data(orig.version_tags, orig.params)
    cfg, cfg_notes = training_config(
        orig.params, orig.tags, spec.training, len(data.train_periods), len(data.holdout_periods)
    )
    notices.extend(cfg_notes)
    job = _Job(
        dataset=orig.dataset,
        data_version=data.version,
        data_rev=data.rev,
        train_periods=data.train_periods,
        holdout_periods=data.holdout_periods,
        spec_path=str(spec_path),
        training={k: list(v) if isinstance(v, tuple) else v for k, v in asdict(cfg).items()},
    )
    return spec, cfg, job


def _open_run(
    registry: Registry,
    orig: _Original,
    job: _Job,
    cfg: TrainingConfig,
    plan: CodePlan,
    recorded: CodeVersion | None,
    rebuilt_code: CodeVersion,
    tolerance: float,
) -> str:
    """The reproduction's own MLflow run, in the model's reproductions experiment."""
    from retrainer.model import training

    exp_id = registry.runs.experiment_id_named(schema.reproductions_experiment(orig.model))
    run = registry.client.create_run(
        exp_id,
        run_name=f"reproduce {orig.model} v{orig.version}",
        tags={
            schema.REPRODUCES: f"{orig.model}/{orig.version}",
            schema.REPRODUCES_RUN: orig.run_id,
            schema.DATASET: orig.dataset,
            schema.DATA_VERSION: job.data_version,
            schema.DATA_REV: job.data_rev,
            schema.TRAINING_SEED: str(cfg.seed),
            schema.REPRODUCE_CODE_WHERE: plan.where,
            schema.REPRODUCE_CODE_EXACT: "unknown" if plan.exact is None else str(plan.exact).lower(),
            schema.REPRODUCE_RECORDED_COMMIT: recorded.commit if recorded else "not recorded",
            schema.REPRODUCE_TOLERANCE: f"{tolerance:g}",
            schema.REPRODUCE_LIBRARIES: ", ".join(training.library_versions()),
            **rebuilt_code.tags(),
        },
    )
    return str(run.info.run_id)


def reproduce(
    settings: Settings,
    model: str,
    version: str,
    tolerance: float = DEFAULT_TOLERANCE,
    code: CodeChoice = "auto",
) -> Reproduction:
    """Rebuild ``model`` ``version`` from its record and compare it with the original.

    Raises LineageNotFoundError (a LookupError) for an unknown model or version and
    ReproductionError when the version cannot be rebuilt as recorded."""
    registry = Registry(settings)
    orig = _original(settings, registry, model, version)
    recorded = CodeVersion.from_tags(orig.tags)
    current = code_version()
    plan = plan_code(recorded, current, code)
    notices = list(plan.notices)
    with storage.scratch("retrainer-reproduce-") as tmp:
        spec, cfg, job = _job(settings, registry, orig, Path(tmp), notices)
        rebuilt_code = current if plan.where == "here" else CodeVersion(commit=plan.commit or "", dirty=False)
        repro_id = _open_run(registry, orig, job, cfg, plan, recorded, rebuilt_code, tolerance)
        try:
            started = time.perf_counter()
            if plan.where == "here":
                rebuilt = _rebuild_here(settings, spec, cfg, job)
            else:
                rebuilt = _rebuild_from_commit(settings, spec, plan.commit or "", job)
            seconds = time.perf_counter() - started
            result = _compare(
                settings,
                registry,
                spec,
                orig,
                job,
                cfg,
                plan,
                recorded,
                rebuilt_code,
                rebuilt,
                tolerance,
                seconds,
                notices,
            )
            result.reproduction_run_id = repro_id
            _record(registry.client, repro_id, result)
        except BaseException as exc:
            registry.client.set_tag(repro_id, schema.REPRODUCE_ERROR, str(exc)[:4000])
            registry.client.set_terminated(repro_id, "FAILED")
            raise
    return result


@dataclass(frozen=True)
class _Scores:
    """The rebuilt model on the recorded holdout, beside what the original recorded there."""

    rebuilt: dict[str, float]
    original: dict[str, float]  # the original's recorded holdout metrics, by metric name
    max_abs_diff: float | None  # None: the registered model could not be loaded to compare
    rows: int


def _score(
    settings: Settings,
    registry: Registry,
    spec: DatasetSpec,
    orig: _Original,
    job: _Job,
    rebuilt: _Rebuilt,
    notices: list[str],
) -> _Scores:
    """The rebuilt model scored on the recorded holdout; its predictions against the original's."""
    from retrainer.model import evaluation, training

    holdout = _read_pinned(settings, spec, job, job.holdout_periods)
    known = holdout[spec.target.column].notna().to_numpy()  # unlabelled rows are predicted, not scored
    y = training.target_array(holdout[known], spec)
    rebuilt_metrics = evaluation.metrics(spec.target.task, y, rebuilt.predictions[known])
    try:
        original_pred = training.predict(registry.models.load_keras(spec, orig.version), holdout, spec)
        max_diff: float | None = float(np.max(np.abs(original_pred - rebuilt.predictions)))
    except Exception as exc:  # the registered artifact is unreachable: compare the metric only
        notices.append(f"could not load the registered v{orig.version} to compare predictions: {exc}")
        max_diff = None
    recorded_names = {k: schema.metric_name(schema.METRIC_HOLDOUT, k) for k in rebuilt_metrics}
    original = {k: orig.metrics[name] for k, name in recorded_names.items() if name in orig.metrics}
    return _Scores(rebuilt_metrics, original, max_diff, len(y))


def _compare(
    settings: Settings,
    registry: Registry,
    spec: DatasetSpec,
    orig: _Original,
    job: _Job,
    cfg: TrainingConfig,
    plan: CodePlan,
    recorded: CodeVersion | None,
    rebuilt_code: CodeVersion,
    rebuilt: _Rebuilt,
    tolerance: float,
    seconds: float,
    notices: list[str],
) -> Reproduction:
    """The rebuilt model scored on the recorded holdout, against the original's record and predictions."""
    scores = _score(settings, registry, spec, orig, job, rebuilt, notices)
    metric = orig.version_tags.get(schema.GATE_METRIC) or spec.gate.metric
    epochs = orig.metrics.get(schema.METRIC_EPOCHS_RUN)
    where = "in this process" if plan.where == "here" else "exported, in a subprocess"
    return Reproduction(
        model=orig.model,
        version=orig.version,
        original_run_id=orig.run_id,
        dataset=orig.dataset,
        data_version=job.data_version,
        data_rev=job.data_rev,
        train_periods=job.train_periods,
        holdout_periods=job.holdout_periods,
        seed=cfg.seed,
        training={k: v for k, v in job.training.items() if k not in ("window_periods", "holdout_periods")},
        recorded_code=recorded.describe() if recorded else "not recorded",
        rebuilt_code=f"{rebuilt_code.describe()}, {where} (retrainer from {rebuilt.module_path})",
        code_where=plan.where,
        code_exact=plan.exact,
        metric=metric,
        original=scores.original.get(metric),
        rebuilt=scores.rebuilt[metric],
        tolerance=tolerance,
        original_metrics=scores.original,
        rebuilt_metrics=scores.rebuilt,
        max_abs_prediction_diff=scores.max_abs_diff,
        n_holdout=scores.rows,
        original_epochs_run=None if epochs is None else int(epochs),
        epochs_run=rebuilt.epochs_run,
        rebuild_seconds=round(seconds, 2),
        notices=notices,
    )


def _record(client: MlflowClient, run_id: str, result: Reproduction) -> None:
    from mlflow.entities import Metric, Param, RunTag

    now = int(time.time() * 1000)
    values: dict[str, float | None] = {
        schema.metric_name(schema.METRIC_ORIGINAL_HOLDOUT, result.metric): result.original,
        schema.metric_name(schema.METRIC_REBUILT_HOLDOUT, result.metric): result.rebuilt,
        schema.METRIC_DIFFERENCE: result.difference,
        schema.METRIC_RELATIVE_DIFFERENCE: result.relative_difference,
        schema.METRIC_MAX_PREDICTION_DIFF: result.max_abs_prediction_diff,
        schema.METRIC_EPOCHS_RUN: float(result.epochs_run),
        schema.METRIC_REBUILD_SECONDS: result.rebuild_seconds,
        **schema.metric_names(schema.METRIC_REBUILT_HOLDOUT, result.rebuilt_metrics),
    }
    verdict = result.within_tolerance
    client.log_batch(
        run_id,
        metrics=[Metric(k, float(v), now, 0) for k, v in values.items() if v is not None and np.isfinite(v)],
        params=[Param(k, str(v)) for k, v in result.training.items()],
        tags=[RunTag(schema.REPRODUCE_WITHIN_TOLERANCE, "unknown" if verdict is None else str(verdict).lower())],
    )
    client.log_text(run_id, result.render() + "\n", schema.ARTIFACT_REPRODUCTION_TEXT)
    client.log_dict(run_id, result.to_dict(), schema.ARTIFACT_REPRODUCTION)
    client.set_terminated(run_id, "FINISHED")
