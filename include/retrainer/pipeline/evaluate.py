"""Evaluate: the candidate, the champion and a naive baseline on the same holdout, and the gate.

The scores and the gate are pure (``retrainer.model.evaluation``); this stage reads the data,
runs the models and records the evaluation on the training run: metrics, the gate's tags,
the holdout plot, the HTML report and the evaluation record itself, which a rerun reuses
only while everything it was judged with is unchanged: the spec file, the champion and the
data (``gate.basis``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from retrainer import schema, storage
from retrainer.pipeline.train import read_plan
from retrainer.records import Evaluation, TrainedRun, TrainingPlan
from retrainer.registry.client import Registry
from retrainer.schema import CHAMPION
from retrainer.settings import Settings
from retrainer.spec.dataset import DatasetSpec

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd


log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Scored:
    """An evaluation and what its report draws."""

    evaluation: Evaluation
    holdout: pd.DataFrame
    y: np.ndarray
    candidate: np.ndarray
    champion: np.ndarray | None
    unlabelled: int  # holdout rows without a target, left out


def evaluate(settings: Settings, plan: TrainingPlan, trained: TrainedRun) -> Evaluation:
    """Score the candidate, the champion and the naive baseline on the same holdout; apply the gate."""
    spec = settings.load_spec(plan.dataset)
    registry = Registry(settings)
    champ_version = registry.versions.alias(spec, CHAMPION)
    # what the verdict depends on (gate.basis): the spec file, the data, the champion
    periods = (",".join(plan.train_periods), ",".join(plan.holdout_periods))
    basis = settings.spec_digest(spec.name, plan.data_rev, *periods, str(champ_version))
    recorded = _recorded(registry, spec, trained, champ_version, basis)
    if recorded is not None:
        return recorded
    scored = _score(settings, registry, spec, plan, trained, champ_version)
    evaluation = _log_evaluation(registry, spec, plan, trained, scored, basis)
    log.info("gate %s: %s", "PASSED" if evaluation.passed else "FAILED", "; ".join(evaluation.reasons))
    return evaluation


def _recorded(
    registry: Registry, spec: DatasetSpec, trained: TrainedRun, champion: str | None, basis: str
) -> Evaluation | None:
    """The evaluation this run recorded, if it still stands: judged with the same spec file, champion
    and data (its basis), or once this run's candidate is decided (it may be the champion now:
    never a comparison with itself; a decision is made once, with the verdict it was made on)."""
    tags = registry.runs.tags(trained.run_id)
    if tags.get(schema.EVALUATED) != "true":
        return None
    done = Evaluation.from_json(registry.runs.load_json(trained.run_id, schema.ARTIFACT_EVALUATION))
    own = registry.versions.for_run(spec, trained.run_id)
    decided = own is not None and (str(own.version) == champion or schema.PROMOTION_DECISION in own.tags)
    if tags.get(schema.GATE_BASIS) == basis or decided:
        log.info(
            "evaluation of run %s against champion v%s is already recorded%s; reusing it",
            trained.run_id,
            done.champion_version,
            " (its candidate is decided)" if decided else "",
        )
        return done
    if done.champion_version != champion:
        changed = f"champion moved from v{done.champion_version} to v{champion}"
    else:
        changed = f"spec file {spec.source_path or spec.name} changed"  # a run's data is fixed by its plan
    log.warning("%s since run %s was evaluated; evaluating again", changed, trained.run_id)
    return None


def _score(
    settings: Settings,
    registry: Registry,
    spec: DatasetSpec,
    plan: TrainingPlan,
    trained: TrainedRun,
    champ_version: str | None,
) -> _Scored:
    from retrainer.model import evaluation, training

    everything = read_plan(settings, spec, plan, plan.holdout_periods)
    holdout = training.labelled(everything, spec)  # unlabelled rows judge nothing
    train_df = training.labelled(read_plan(settings, spec, plan, plan.train_periods), spec)
    y = training.target_array(holdout, spec)
    task = spec.target.task
    cand_pred = training.predict(registry.models.load_uri(trained.model_uri), holdout, spec)
    cand = evaluation.metrics(task, y, cand_pred)
    base_pred = evaluation.baseline_predictions(
        task, training.target_array(train_df, spec), len(y), len(spec.target.classes)
    )
    base = evaluation.metrics(task, y, base_pred)
    champ, champ_pred = None, None
    if champ_version is not None:
        champ_pred = training.predict(registry.models.load_keras(spec, champ_version), holdout, spec)
        champ = evaluation.metrics(task, y, champ_pred)
    slices = evaluation.slice_table(spec.gate, task, holdout, y, cand_pred, champ_pred)
    record = evaluation.gate(spec.gate, cand, base, champ, champ_version, slices, n_holdout=len(y))
    return _Scored(record, holdout, y, cand_pred, champ_pred, len(everything) - len(holdout))


def _log_evaluation(
    registry: Registry, spec: DatasetSpec, plan: TrainingPlan, trained: TrainedRun, scored: _Scored, basis: str
) -> Evaluation:
    """Metrics, gate tags, plot, HTML report and the record, on the training run."""
    import mlflow
    import numpy as np

    from retrainer.model import reports

    ev = scored.evaluation
    finite = {
        schema.METRIC_HOLDOUT: ev.candidate_metrics,
        schema.METRIC_BASELINE: ev.baseline_metrics,
        schema.METRIC_CHAMPION: ev.champion_metrics or {},
    }
    holdout_name = ",".join(plan.holdout_periods)
    with registry.runs.active(trained.run_id) as run, storage.scratch("retrainer-report-") as tmp:
        for family, values in finite.items():
            mlflow.log_metrics(schema.metric_names(family, {k: v for k, v in values.items() if np.isfinite(v)}))
        mlflow.log_metric(schema.METRIC_HOLDOUT_UNLABELLED, scored.unlabelled)
        mlflow.set_tags(schema.gate_run_tags(ev))
        plot = Path(tmp) / schema.artifact_file(schema.ARTIFACT_HOLDOUT_PLOT)
        reports.holdout_plot(scored.y, scored.candidate, scored.champion, plot, f"holdout {holdout_name}")
        mlflow.log_artifact(str(plot), artifact_path=schema.artifact_dir(schema.ARTIFACT_HOLDOUT_PLOT))
        page = Path(tmp) / schema.artifact_file(schema.ARTIFACT_EVALUATION_REPORT)
        reports.evaluation_report_html(
            f"{spec.model_name}: candidate vs "
            + (f"champion v{ev.champion_version}" if ev.champion_version else "baseline (no champion yet)")
            + f" on {holdout_name}",
            scored.evaluation,
            scored.y,
            scored.candidate,
            scored.champion,
            scored.holdout,
            page,
            spec.target.classes,
        )
        mlflow.log_artifact(str(page), artifact_path=schema.artifact_dir(schema.ARTIFACT_EVALUATION_REPORT))
        ev = replace(ev, report_uri=registry.runs.artifact_link(run, schema.ARTIFACT_EVALUATION_REPORT))
        mlflow.log_dict(ev.to_json(), schema.ARTIFACT_EVALUATION)
        mlflow.set_tags({schema.GATE_BASIS: basis, schema.EVALUATED: "true"})
    return ev
