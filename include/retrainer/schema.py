"""The MLflow schema: every tag, param, metric, artifact and alias the pipeline writes or reads.

Registry reviewers read these in the MLflow UI to decide what goes to production, lineage and
reproduce read them back, so they are an interface: each one is a named constant here, and
nowhere else in the code is it spelled out. ``docs/mlflow-tags.md`` says of each one who
writes it, when, and what it means; a test keeps the page and this module naming the same
set. The write helpers build the tags of one event (a registration, a promotion, a deploy);
the read helpers parse what a version recorded.

Names with ``<metric>`` (or ``<feature>``) stand for a family: ``gate.<metric>`` is
``gate.rmse`` for a spec whose gate metric is RMSE.

This module imports nothing heavy.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from retrainer.records import DriftSummary, Evaluation, RunContext, ServerCheck, TrainingPlan


def timestamp() -> str:
    """Now, as the pipeline writes times into tags (UTC, ISO 8601, seconds)."""
    return datetime.now(UTC).isoformat(timespec="seconds")


# =============================================================================== names

# Experiments, runs and aliases
EXPERIMENT_MODEL = "<model name>"
EXPERIMENT_REPRODUCTIONS = "<model name>-reproductions"
RUN_NAME = "mlflow.runName"
CHAMPION = "champion"
CHALLENGER = "challenger"

# Airflow run
AIRFLOW_DAG_ID = "airflow.dag_id"
AIRFLOW_RUN_ID = "airflow.run_id"
AIRFLOW_TRY_NUMBER = "airflow.try_number"
AIRFLOW_RUN_TYPE = "airflow.run_type"
TRIGGER = "retrainer.trigger"

# Training run
DATASET = "retrainer.dataset"
RUN_DATA_VERSION = "retrainer.data_version"
RUN_DATA_REV = "retrainer.data_rev"
RUN_KIND = "retrainer.kind"
MODEL_URI = "retrainer.model_uri"
EVALUATED = "retrainer.evaluated"
GX_SUCCESS = "gx.success"
CODE_COMMIT = "code.commit"
CODE_DIRTY = "code.dirty"
CODE_SOURCE = "code.source"
CODE_CHANGES = "code.changes_sha256"
TRAINING_SEED = "training.seed"
PARAM_DATA_VERSION = "data_version"
PARAM_DATA_REV = "data_rev"
PARAM_TRAIN_PERIODS = "train_periods"
PARAM_HOLDOUT_PERIODS = "holdout_periods"
PARAM_N_TRAIN = "n_train"
PARAM_N_VAL = "n_val"
PARAM_IMPUTE = "impute.<feature>"  # how the model fills a missing value of a numeric feature, and with what
PARAM_CATEGORIES = "categories.<feature>"  # a learned vocabulary: its size and how many rows it covers
PARAM_CONSTANT_FEATURES = "constant_features"  # numeric features constant in the window: entered as 0
PARAM_N_UNLABELLED = "n_unlabelled"  # rows of the training window without a target, left out
METRIC_HOLDOUT_UNLABELLED = "holdout_unlabelled_rows"  # holdout rows without a target, left out
PARAM_TRAINING = "<training field>"
METRIC_LOSS = "loss"  # per epoch (step = epoch), as Keras names it
METRIC_VAL_LOSS = "val_loss"
METRIC_EPOCHS_RUN = "epochs_run"
METRIC_GX_EVALUATED = "gx_expectations_evaluated"
ARTIFACT_VALIDATION = "validation/"
ARTIFACT_SPEC = "spec/"
ARTIFACT_LEARNING_CURVES = "plots/learning_curves.png"
ARTIFACT_MODEL = "model"

# Evaluation and gate
METRIC_HOLDOUT = "holdout_<metric>"
METRIC_BASELINE = "baseline_<metric>"
METRIC_CHAMPION = "champion_<metric>"
ARTIFACT_HOLDOUT_PLOT = "plots/holdout.png"
ARTIFACT_EVALUATION_REPORT = "evaluation/evaluation_report.html"
ARTIFACT_EVALUATION = "evaluation/evaluation.json"
GATE_PASSED = "gate.passed"
GATE_METRIC = "gate.metric"
GATE_CHAMPION_VERSION = "gate.champion_version"
GATE_REASONS = "gate.reasons"
GATE_SCORE = "gate.<metric>"
GATE_BASELINE = "gate.baseline_<metric>"
GATE_DELTA = "gate.delta_<metric>_vs_champion"
GATE_SLICES_FAILED = "gate.slices_failed"
GATE_BASIS = "gate.basis"
EVALUATION_REPORT = "evaluation.report"

# Experiments: MLflow 3's UI opens an experiment by its kind
EXPERIMENT_KIND = "mlflow.experimentKind"
EXPERIMENT_KIND_ML = "custom_model_development"

# Data
VERSION_RUN_ID = "mlflow.run_id"
DATA_VERSION = "data.version"
DATA_REV = "data.rev"
DATA_TRAIN_PERIODS = "data.train_periods"
DATA_HOLDOUT_PERIODS = "data.holdout_periods"
BACKFILL = "retrainer.backfill"

# Drift
DRIFT_REASON = "drift.reason"
DRIFT_REPORT_URI = "drift.report_uri"
DRIFT_MLFLOW_RUN_ID = "drift.mlflow_run_id"
DRIFT_RETRAIN = "drift.retrain"
DRIFT_RESULT = "drift.result"
DRIFT_BASIS = "drift.basis"
METRIC_DRIFT_SHARE = "drift_share"
METRIC_PERFORMANCE_DROP = "performance_drop"
METRIC_DRIFT_FEATURE = "drift.<feature>"
ARTIFACT_DRIFT_REPORT = "drift/drift_report.html"
ARTIFACT_DRIFT = "drift/drift.json"

# Review and promotion
APPROVAL = "approval"
APPROVAL_REVIEWER = "approval.reviewer"
APPROVAL_DECISION = "approval.decision"
APPROVAL_VIA = "approval.via"
APPROVAL_AT = "approval.at"
APPROVAL_REASON = "approval.reason"
APPROVAL_STATUS = "approval.status"
APPROVAL_REQUESTED_AT = "approval.requested_at"
APPROVAL_DEADLINE = "approval.deadline"
PROMOTION_DECISION = "promotion.decision"
PROMOTION_REASON = "promotion.reason"
PROMOTION_DECIDED_BY = "promotion.decided_by"
PROMOTION_DECIDED_AT = "promotion.decided_at"
PROMOTION_PREVIOUS_CHAMPION = "promotion.previous_champion"
PROMOTION_REEVALUATED = "promotion.reevaluated"

# Deployment
DEPLOY_LOCATION = "deploy.location"
DEPLOY_LABEL = "deploy.label"
DEPLOY_VERIFIED = "deploy.verified"
DEPLOY_MAX_ABS_DIFF = "deploy.max_abs_diff"
DEPLOY_CHECK_P50 = "deploy.check.p50_ms"
DEPLOY_CHECK_P99 = "deploy.check.p99_ms"
DEPLOY_CHECK_SERVER_P99 = "deploy.check.server_p99_ms"
DEPLOY_CHECK_ENDPOINT = "deploy.check.endpoint"
DEPLOY_CHECK_ERROR = "deploy.check.error"
DEPLOY_ARTIFACT = "deploy.artifact"
TFLITE_LOCATION = "tflite.location"
TFLITE_SIZE_BYTES = "tflite.size_bytes"
TFLITE_SIZE_RATIO = "tflite.size_ratio_vs_savedmodel"
TFLITE_SCORE = "tflite.<metric>"
TFLITE_CHANGE = "tflite.<metric>_change"

# Rollback
ROLLBACK_FROM = "rollback.from"
ROLLBACK_REASON = "rollback.reason"
ROLLBACK_BY = "rollback.by"
ROLLBACK_AT = "rollback.at"
ROLLBACK_AIRFLOW_RUN_ID = "rollback.airflow_run_id"
ROLLBACK_PENDING = "rollback.pending"
ROLLBACK_DONE = "rollback.done.<run>"  # one per Airflow run that rolled back: what it did
ROLLED_BACK_TO = "rolled_back.to"
ROLLED_BACK_BY = "rolled_back.by"
ROLLED_BACK_AT = "rolled_back.at"

# Reproductions (experiment <model name>-reproductions)
REPRODUCES = "retrainer.reproduces"
REPRODUCES_RUN = "retrainer.reproduces_run"
REPRODUCE_CODE_WHERE = "reproduce.code_where"
REPRODUCE_CODE_EXACT = "reproduce.code_exact"
REPRODUCE_RECORDED_COMMIT = "reproduce.recorded_code_commit"
REPRODUCE_TOLERANCE = "reproduce.tolerance"
REPRODUCE_LIBRARIES = "reproduce.libraries"
REPRODUCE_WITHIN_TOLERANCE = "reproduce.within_tolerance"
REPRODUCE_ERROR = "reproduce.error"
METRIC_ORIGINAL_HOLDOUT = "original_holdout_<metric>"
METRIC_REBUILT_HOLDOUT = "rebuilt_holdout_<metric>"
METRIC_DIFFERENCE = "difference"
METRIC_RELATIVE_DIFFERENCE = "relative_difference"
METRIC_MAX_PREDICTION_DIFF = "max_abs_prediction_diff"
METRIC_REBUILD_SECONDS = "rebuild_seconds"
ARTIFACT_REPRODUCTION = "reproduction.json"
ARTIFACT_REPRODUCTION_TEXT = "reproduction.txt"

# The registry lock (retrainer.registry.locking): a registered model of tickets per model
LOCK_MODEL = "<model name>.lock"
LOCK_BEAT = "lock.beat"
LOCK_PURPOSE = "lock.purpose"
LOCK_OWNER = "lock.owner"

# values that code compares against (not names)
VALUES = frozenset(
    {"APPROVED", "REJECTED", "PROMOTED", "NOT_CONSIDERED_BACKFILL", "DRIFT_CHECK_KIND", "NONE", "EXPERIMENT_KIND_ML"}
)
APPROVED = "approved"
REJECTED = "rejected"
PROMOTED = "promoted"
NOT_CONSIDERED_BACKFILL = "not considered (backfill run)"
DRIFT_CHECK_KIND = "drift_check"
NONE = "none"


# =============================================================================== family names


def gate_score_tag(metric: str) -> str:
    return GATE_SCORE.replace("<metric>", metric)


def gate_baseline_tag(metric: str) -> str:
    return GATE_BASELINE.replace("<metric>", metric)


def gate_delta_tag(metric: str) -> str:
    return GATE_DELTA.replace("<metric>", metric)


def tflite_score_tag(metric: str) -> str:
    return TFLITE_SCORE.replace("<metric>", metric)


def tflite_change_tag(metric: str) -> str:
    return TFLITE_CHANGE.replace("<metric>", metric)


def metric_name(family: str, name: str) -> str:
    """``holdout_rmse`` for ``metric_name(METRIC_HOLDOUT, "rmse")`` (and the like)."""
    return family.replace("<metric>", name).replace("<feature>", name)


def metric_names(family: str, values: dict[str, float]) -> dict[str, float]:
    """``{"rmse": 1.0}`` as ``{"holdout_rmse": 1.0}`` for ``METRIC_HOLDOUT`` (and the like)."""
    return {metric_name(family, k): v for k, v in values.items()}


def reproductions_experiment(model: str) -> str:
    return EXPERIMENT_REPRODUCTIONS.replace("<model name>", model)


def artifact_dir(path: str) -> str:
    """The artifact folder of ``evaluation/evaluation_report.html``: ``evaluation``."""
    return path.rsplit("/", 1)[0] if "/" in path else ""


def artifact_file(path: str) -> str:
    return path.rsplit("/", 1)[-1]


# =============================================================================== filters


def quote(value: str) -> str:
    """A value inside an MLflow search filter's single quotes."""
    return value.replace("\\", "\\\\").replace("'", "\\'")


def tag_filter(tags: dict[str, str], **attributes: str) -> str:
    """An MLflow search filter: ``name = 'm' and tags.`data.version` = 'v0003'``."""
    parts = [f"{name} = '{quote(value)}'" for name, value in attributes.items()]
    parts += [f"tags.`{key}` = '{quote(value)}'" for key, value in tags.items()]
    return " and ".join(parts)


# =============================================================================== write


def run_name(ctx: RunContext, what: str = "") -> str:
    """An MLflow run's name, the telling part first (the UI cuts long names): what the run did,
    on which dataset and data version, then the kind of Airflow run and its id."""
    where = f"{ctx.dag_id}:{ctx.run_id}"
    return f"{what} · {ctx.run_type} · {where}" if what else where


def context_tags(ctx: RunContext) -> dict[str, str]:
    """The Airflow run on an MLflow run or a model version."""
    return {
        AIRFLOW_DAG_ID: ctx.dag_id,
        AIRFLOW_RUN_ID: ctx.run_id,
        AIRFLOW_TRY_NUMBER: str(ctx.try_number),
        AIRFLOW_RUN_TYPE: ctx.run_type,
        TRIGGER: ctx.trigger,
    }


def training_run_tags(plan: TrainingPlan) -> dict[str, str]:
    return {DATASET: plan.dataset, RUN_DATA_VERSION: plan.data_version, RUN_DATA_REV: plan.data_rev}


def training_params(
    plan: TrainingPlan, training: dict[str, object], n_train: int, n_val: int, n_unlabelled: int = 0
) -> dict[str, object]:
    return {
        **training,
        PARAM_DATA_VERSION: plan.data_version,
        PARAM_DATA_REV: plan.data_rev,
        PARAM_TRAIN_PERIODS: ",".join(plan.train_periods),
        PARAM_HOLDOUT_PERIODS: ",".join(plan.holdout_periods),
        PARAM_N_TRAIN: n_train,
        PARAM_N_VAL: n_val,
        PARAM_N_UNLABELLED: n_unlabelled,
    }


def data_tags(plan: TrainingPlan) -> dict[str, str]:
    """What a version was trained and judged on."""
    return {
        DATA_VERSION: plan.data_version,
        DATA_REV: plan.data_rev,
        DATA_TRAIN_PERIODS: ",".join(plan.train_periods),
        DATA_HOLDOUT_PERIODS: ",".join(plan.holdout_periods),
    }


def gate_run_tags(ev: Evaluation) -> dict[str, str]:
    """The gate's decision on the training run."""
    return {
        GATE_PASSED: str(ev.passed).lower(),
        GATE_METRIC: ev.metric,
        GATE_CHAMPION_VERSION: ev.champion_version or NONE,
        GATE_REASONS: " | ".join(ev.reasons),
    }


def gate_tags(ev: Evaluation) -> dict[str, str]:
    """The gate's evidence on the model version."""
    failed = ", ".join(f"{s.feature}={s.value}" for s in ev.slices if s.failed)
    return {
        **gate_run_tags(ev),
        gate_score_tag(ev.metric): f"{ev.candidate:.6g}",
        gate_baseline_tag(ev.metric): f"{ev.baseline:.6g}",
        gate_delta_tag(ev.metric): "n/a" if ev.delta_vs_champion is None else f"{ev.delta_vs_champion:+.6g}",
        GATE_SLICES_FAILED: failed or NONE,
        EVALUATION_REPORT: ev.report_uri,
    }


def drift_tags(drift: DriftSummary | None) -> dict[str, str]:
    """What started a drift-triggered retraining, on its version."""
    if drift is None:
        return {}
    values = {DRIFT_REASON: drift.reason, DRIFT_REPORT_URI: drift.report_uri, DRIFT_MLFLOW_RUN_ID: drift.mlflow_run_id}
    return {k: str(v) for k, v in values.items() if v}


def decided(by: str) -> dict[str, str]:
    return {PROMOTION_DECIDED_BY: by, PROMOTION_DECIDED_AT: timestamp()}


def promoted_tags(by: str, previous: str | None) -> dict[str, str]:
    return {**decided(by), PROMOTION_DECISION: PROMOTED, PROMOTION_PREVIOUS_CHAMPION: previous or NONE}


def rejected_tags(by: str, reason: str, at: str | None = None) -> dict[str, str]:
    tags = {**decided(by), PROMOTION_DECISION: REJECTED, PROMOTION_REASON: reason}
    if at:
        tags[PROMOTION_DECIDED_AT] = at
    return tags


def _server_p99(check: ServerCheck) -> str:
    if check.server_counted < 0:
        return "not exposed"
    return "over 10 s" if check.server_p99_ms is None else f"{check.server_p99_ms:g}"


def verified_tags(check: ServerCheck) -> dict[str, str]:
    return {
        DEPLOY_VERIFIED: "true",
        DEPLOY_MAX_ABS_DIFF: f"{check.max_abs_diff:.3g}",
        DEPLOY_CHECK_P50: f"{check.p50_ms:.2f}",
        DEPLOY_CHECK_P99: f"{check.p99_ms:.2f}",
        DEPLOY_CHECK_SERVER_P99: _server_p99(check),
        DEPLOY_CHECK_ENDPOINT: check.endpoint + check.route,
    }


def failed_check_tags(error: str) -> dict[str, str]:
    return {DEPLOY_VERIFIED: "false", DEPLOY_CHECK_ERROR: error[:500]}


def tflite_tags(location: str, size: int, saved_size: int, metric: str, lite: float, full: float) -> dict[str, str]:
    return {
        TFLITE_LOCATION: location,
        TFLITE_SIZE_BYTES: str(size),
        TFLITE_SIZE_RATIO: f"{size / saved_size:.3f}",
        tflite_score_tag(metric): f"{lite:.6g}",
        tflite_change_tag(metric): f"{(lite - full) / abs(full) if full else 0.0:+.4%}",
    }


def rollback_tags(current: str, reason: str, who: str, at: str, airflow_run_id: str, location: str) -> dict[str, str]:
    """On the version that serves again."""
    return {
        ROLLBACK_FROM: current,
        ROLLBACK_REASON: reason,
        ROLLBACK_BY: who,
        ROLLBACK_AT: at,
        ROLLBACK_AIRFLOW_RUN_ID: airflow_run_id,
        DEPLOY_LOCATION: location,
        DEPLOY_VERIFIED: "true",
    }


def rolled_back_tags(target: str, who: str, at: str) -> dict[str, str]:
    """On the version that no longer serves."""
    return {ROLLED_BACK_TO: target, ROLLED_BACK_BY: who, ROLLED_BACK_AT: at}


# =============================================================================== read


@dataclass(frozen=True)
class DataRef:
    """What a model version recorded about its data."""

    version: str
    rev: str
    train_periods: list[str]
    holdout_periods: list[str]

    @property
    def periods_seen(self) -> set[str]:
        return {*self.train_periods, *self.holdout_periods}


def _periods(value: str | None) -> list[str]:
    return [p for p in (value or "").split(",") if p]


def read_data(tags: dict[str, str], params: dict[str, str] | None = None) -> DataRef:
    """The data a version was trained on, from its tags (or its run's params, for older runs)."""
    params = params or {}
    return DataRef(
        version=tags.get(DATA_VERSION) or params.get(PARAM_DATA_VERSION, ""),
        rev=tags.get(DATA_REV) or params.get(PARAM_DATA_REV, ""),
        train_periods=_periods(tags.get(DATA_TRAIN_PERIODS) or params.get(PARAM_TRAIN_PERIODS)),
        holdout_periods=_periods(tags.get(DATA_HOLDOUT_PERIODS) or params.get(PARAM_HOLDOUT_PERIODS)),
    )


def read_gate_score(tags: dict[str, str], metric: str) -> float:
    return float(tags[gate_score_tag(metric)])


def read_previous_champion(tags: dict[str, str]) -> str | None:
    previous = tags.get(PROMOTION_PREVIOUS_CHAMPION, NONE)
    return None if previous == NONE else previous


@dataclass(frozen=True)
class RollbackPending:
    """A rollback under way (the registered model's ``rollback.pending`` tag, as JSON): written
    before the alias moves, removed once label and records are in place."""

    from_version: str
    to_version: str
    reason: str
    by: str
    airflow_run_id: str
    location: str
    dag_id: str = ""  # the Airflow run's DAG (absent from records written before it was kept)
    max_abs_diff: float | None = None  # the store's copy against the registry model, as verified

    def to_json(self) -> str:
        import json
        from dataclasses import asdict

        return json.dumps(asdict(self), sort_keys=True)


def read_rollback_pending(model_tags: dict[str, str]) -> RollbackPending | None:
    import json

    raw = model_tags.get(ROLLBACK_PENDING)
    return RollbackPending(**json.loads(raw)) if raw else None


def rollback_done_tag(dag_id: str, run_id: str) -> str:
    """The registered model's tag that records what the Airflow run ``dag_id``/``run_id`` rolled
    back (a digest of the two: a run id holds characters a tag name may not)."""
    import hashlib

    return ROLLBACK_DONE.replace("<run>", hashlib.sha256(f"{dag_id}/{run_id}".encode()).hexdigest()[:16])


@dataclass(frozen=True)
class RollbackDone:
    """A finished rollback, recorded on the registered model (``rollback.done.<run>``, as JSON)
    before its pending record goes: a rerun of the same Airflow run finds it and moves nothing."""

    dag_id: str
    airflow_run_id: str
    from_version: str
    to_version: str
    reason: str
    by: str
    at: str
    max_abs_diff: float | None

    def to_json(self) -> str:
        import json
        from dataclasses import asdict

        return json.dumps(asdict(self), sort_keys=True)


def read_rollback_done(model_tags: dict[str, str], dag_id: str, run_id: str) -> RollbackDone | None:
    import json

    raw = model_tags.get(rollback_done_tag(dag_id, run_id))
    return RollbackDone(**json.loads(raw)) if raw else None


def family(tags: dict[str, str], *members: str) -> dict[str, str]:
    """The tags of the families of ``members``: ``family(tags, GATE_PASSED)`` is every ``gate.*`` tag."""
    prefixes = tuple(m.split(".", 1)[0] + "." for m in members)
    return {k: v for k, v in tags.items() if k.startswith(prefixes)}


def pick(tags: dict[str, str], *names: str) -> dict[str, str]:
    return {k: tags[k] for k in names if k in tags}


# =============================================================================== docs


def impute_param(feature: str) -> str:
    return PARAM_IMPUTE.replace("<feature>", feature)


def categories_param(feature: str) -> str:
    return PARAM_CATEGORIES.replace("<feature>", feature)


def names() -> set[str]:
    """Every name of the schema: what ``docs/mlflow-tags.md`` documents, one row each."""
    return {v for k, v in globals().items() if k.isupper() and isinstance(v, str) and k not in VALUES}
