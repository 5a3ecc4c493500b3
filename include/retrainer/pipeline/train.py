"""Train: pin the data version, validate the window again, train and log to MLflow.

plan_training -> validate_window -> train_and_log (the first tasks of ``retrain_model``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Collection, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from retrainer import faults, schema, storage
from retrainer.data.validation import DataValidationError, FrameValidator, ValidationReport
from retrainer.data.versioning import DataRegistry, DataVersionError, periods_frame, version_number
from retrainer.outcomes import NothingToDo
from retrainer.records import RunContext, TrainedRun, TrainingPlan, WindowValidation
from retrainer.registry.client import Registry
from retrainer.settings import Settings
from retrainer.spec.dataset import DatasetSpec

if TYPE_CHECKING:
    import pandas as pd

    from retrainer.model.training import TrainResult

log = logging.getLogger(__name__)


class NotEnoughDataError(NothingToDo, LookupError):
    """The data version holds fewer periods than a training window and its holdout need."""


def datasets_to_retrain(
    requests: Sequence[Mapping[str, Any]], default: str, known: Collection[str]
) -> tuple[dict[str, str], list[str]]:
    """The datasets a run started by retrain requests covers, each with the data version asked
    for it (the newest one named, else ``latest``); a request without a dataset is for
    ``default``. The run trains one of them (:func:`split_run`) and starts a run for each of the
    others. Returns them (by name) and, for the log, why any request was left out."""
    asked: dict[str, str] = {}
    left_out: list[str] = []
    for extra in requests:
        dataset = extra.get("dataset") or default
        version = extra.get("data_version") or "latest"
        if not isinstance(dataset, str) or dataset not in known:
            left_out.append(f"a request for {dataset!r:.80}: no such dataset spec")
        elif version == "latest":
            asked.setdefault(dataset, "latest")
        elif not isinstance(version, str) or (number := version_number(version)) is None:
            left_out.append(f"a request for {dataset} {version!r:.80}: not 'latest' nor a data version like v0007")
        elif number > (version_number(asked.get(dataset, "latest")) or 0):
            asked[dataset] = version
    return dict(sorted(asked.items())), left_out


def due_datasets(settings: Settings, start: datetime | None, end: datetime | None) -> list[str]:
    """The datasets a scheduled run (or a backfill) over the data interval (start, end] retrains:
    those whose retraining period (``training.every``) ended within it (a spec that does not
    load is left out). Without an interval (a manual run), every dataset."""
    from retrainer import periods
    from retrainer.spec.dataset import retraining_periods

    if start is None or end is None:
        return settings.datasets()
    every = retraining_periods(settings.specs_dir)
    return [name for name, e in every.items() if periods.ended_within(start, end, e)]


def split_run(datasets: Collection[str], preferred: str) -> tuple[str | None, list[str]]:
    """Which dataset a run covering several trains itself (``preferred`` if among them, else the
    first by name) and which get runs of their own."""
    ordered = sorted(datasets)
    mine = preferred if preferred in ordered else (ordered[0] if ordered else None)
    return mine, [d for d in ordered if d != mine]


def plan_training(
    settings: Settings,
    dataset: str,
    data_version: str | None,
    window: int | None = None,
    as_of: str | None = None,
    backfill: bool = False,
) -> TrainingPlan:
    """Pin the data version and choose the training window and the later holdout slice.

    ``as_of`` (a period, from a run's data interval end) pins the version that was current
    once that period had landed, when no version is named, and ends the window there; so a
    scheduled run or a backfill of an old interval trains on the data of its time, not the latest."""
    spec = settings.load_spec(dataset)
    registry = DataRegistry(settings)
    if as_of and data_version in (None, "", "latest"):
        try:
            version = registry.as_of(dataset, as_of)
        except DataVersionError as exc:  # a schedule or a backfill before its data: nothing to train yet
            raise NotEnoughDataError(f"{exc}: nothing to train on for this interval") from exc
    else:
        version = registry.resolve(dataset, data_version)
    available = [p for p in version.periods if as_of is None or p <= as_of]
    win = window or spec.training.window_periods
    hold = spec.training.holdout_periods
    if len(available) < win + hold:
        raise NotEnoughDataError(
            f"{version.tag} holds {len(available)} periods of {dataset}"
            + (f" up to {as_of}" if as_of else "")
            + f"; training needs {win} + {hold} (window + holdout)"
        )
    periods = available[-(win + hold) :]
    return TrainingPlan(
        dataset=dataset,
        model_name=spec.model_name,
        data_version=version.label,
        data_tag=version.tag,
        data_rev=version.rev,
        train_periods=periods[:win],
        holdout_periods=periods[win:],
        window=win,
        as_of=as_of,
        backfill=backfill,
    )


def read_plan(settings: Settings, spec: DatasetSpec, plan: TrainingPlan, periods: list[str]) -> pd.DataFrame:
    """Rows of ``periods`` exactly as the plan pinned them (refused if the data version's tag moved)."""
    return DataRegistry(settings).read_pinned(spec, plan.data_tag, plan.data_rev, periods)


def trained_by_other_runs(settings: Settings, plan: TrainingPlan, ctx: RunContext) -> list[str]:
    """Model versions already trained on this plan's data version and window by other runs
    (``v5 (run scheduled__2011-08-01...)``); empty when there are none or only this run's."""
    spec = settings.load_spec(plan.dataset)
    found = Registry(settings).versions.search(spec, {schema.DATA_VERSION: plan.data_version})
    window = ",".join(plan.train_periods)
    return [
        f"v{mv.version} (run {mv.tags.get(schema.AIRFLOW_RUN_ID)})"
        for mv in found
        if mv.tags.get(schema.DATA_TRAIN_PERIODS) == window
        and (mv.tags.get(schema.AIRFLOW_DAG_ID), mv.tags.get(schema.AIRFLOW_RUN_ID)) != (ctx.dag_id, ctx.run_id)
    ]


def validate_window(settings: Settings, plan: TrainingPlan) -> WindowValidation:
    """Re-validate every period of the pinned window and holdout, as read from the registry."""
    spec = settings.load_spec(plan.dataset)
    registry = DataRegistry(settings)
    # pinned once (refused if the version's tag moved); every period is read at the pinned rev
    version = registry.pinned(spec.name, plan.data_tag, plan.data_rev)
    # one GX context for the whole window; a period that passes is kept in brief (see FrameValidator)
    validator = FrameValidator(spec, brief=True)
    reports: list[ValidationReport] = []
    window = [*plan.train_periods, *plan.holdout_periods]
    texts = registry.read_texts(spec, version, window)  # one view of the registry for the whole window
    for period in window:
        df = periods_frame(spec, [texts.pop(period)])
        reports.append(validator.validate(df, period, source=f"{plan.data_tag}:{period}"))
    failures = [f"{r.period}: {f}" for r in reports for f in r.failures]
    path = storage.join(settings.validation_results, plan.dataset, "windows", f"{plan.data_version}.json")
    storage.write_text(path, json.dumps([json.loads(r.to_json()) for r in reports], indent=1), settings.s3_endpoint_url)
    if failures:
        raise DataValidationError(f"{plan.data_tag} window failed validation: " + "; ".join(failures[:10]))
    return WindowValidation(
        success=True, evaluated=sum(r.evaluated for r in reports), failures=failures, result_path=path
    )


def train_and_log(
    settings: Settings, plan: TrainingPlan, ctx: RunContext, validation: WindowValidation, epochs: int | None = None
) -> TrainedRun:
    """Train on the pinned window and log everything to this Airflow run's MLflow run."""
    from retrainer.model import training

    spec = settings.load_spec(plan.dataset)
    registry = Registry(settings)
    what = f"train {spec.name} {plan.data_version} {plan.holdout_periods[-1] if plan.holdout_periods else ''}".strip()
    run_id, _ = registry.runs.get_or_create(spec, ctx, schema.training_run_tags(plan), what=what)
    tags = registry.runs.tags(run_id)
    if tags.get(schema.MODEL_URI):
        log.info("MLflow run %s already holds a trained model; reusing it", run_id)
        return TrainedRun(run_id=run_id, model_uri=tags[schema.MODEL_URI], reused=True)

    cfg = spec.training if epochs is None else replace(spec.training, epochs=epochs)
    df = read_plan(settings, spec, plan, plan.train_periods)
    result = training.train(df, spec, cfg)
    model_uri = _log_training(registry, run_id, spec, plan, validation, result, df.iloc[:5])
    log.info("logged model %s on MLflow run %s", model_uri, run_id)
    return TrainedRun(run_id=run_id, model_uri=model_uri, reused=False, epochs_run=result.epochs_run)


#: MLflow's limit of metrics in one log_batch call
_BATCH = 1000


def _log_curves(registry: Registry, run_id: str, result: TrainResult, validation: WindowValidation) -> None:
    """The learning curves and counts in as few writes as MLflow takes, ``epochs_run`` last: a
    retry of a training cut off further on (the model upload) finds it and adds no second
    history (MLflow appends metric values, it does not replace them)."""
    import time

    from mlflow.entities import Metric

    if schema.METRIC_EPOCHS_RUN in registry.runs.metrics(run_id):
        log.info("MLflow run %s holds this training's curves already (a retry); not logging them again", run_id)
        return
    now = int(time.time() * 1000)
    metrics = [
        Metric(key, float(v), now, step) for key, values in result.history.items() for step, v in enumerate(values)
    ]
    metrics.append(Metric(schema.METRIC_GX_EVALUATED, float(validation.evaluated), now, 0))
    for start in range(0, len(metrics), _BATCH):
        registry.client.log_batch(run_id, metrics=metrics[start : start + _BATCH])
    registry.client.log_batch(run_id, metrics=[Metric(schema.METRIC_EPOCHS_RUN, float(result.epochs_run), now, 0)])


def _log_training(
    registry: Registry,
    run_id: str,
    spec: DatasetSpec,
    plan: TrainingPlan,
    validation: WindowValidation,
    result: TrainResult,
    sample: pd.DataFrame,
) -> str:
    """Params, learning curves, the window's validation, code version and seed, the spec and
    the model with its signature, on the run. Returns the logged model's URI."""
    import mlflow
    import mlflow.tensorflow
    from mlflow.models import infer_signature

    from retrainer.model import reports, training
    from retrainer.registry.lineage import code_version

    params: dict[str, Any] = schema.training_params(
        plan, result.params, result.n_train, result.n_val, result.n_unlabelled
    )
    with registry.runs.active(run_id):
        mlflow.log_params(params)  # the same values again on a retry: MLflow accepts that
        _log_curves(registry, run_id, result, validation)
        mlflow.set_tag(schema.GX_SUCCESS, str(validation.success).lower())
        with storage.local_copy(validation.result_path, registry.settings.s3_endpoint_url) as validated:
            if validated is not None:
                mlflow.log_artifact(str(validated), artifact_path=schema.ARTIFACT_VALIDATION.rstrip("/"))
        # what rebuilds this model besides the data: the code version, the seed and the spec
        mlflow.set_tags({**code_version().tags(), schema.TRAINING_SEED: str(result.params["seed"])})
        if Path(spec.source_path).is_file():
            mlflow.log_artifact(spec.source_path, artifact_path=schema.ARTIFACT_SPEC.rstrip("/"))
        with storage.scratch("retrainer-report-") as tmp:
            curves = Path(tmp) / schema.artifact_file(schema.ARTIFACT_LEARNING_CURVES)
            reports.learning_curves(result.history, curves, f"{spec.model_name} on {plan.data_version}")
            mlflow.log_artifact(str(curves), artifact_path=schema.artifact_dir(schema.ARTIFACT_LEARNING_CURVES))
        signature = infer_signature(
            training.feature_arrays(sample, spec), training.predict(result.model, sample, spec).reshape(len(sample), -1)
        )
        faults.point("train:model")
        info = mlflow.tensorflow.log_model(
            result.model, name=schema.ARTIFACT_MODEL, signature=signature, pip_requirements=training.library_versions()
        )
        mlflow.set_tag(schema.MODEL_URI, info.model_uri)
    return str(info.model_uri)
