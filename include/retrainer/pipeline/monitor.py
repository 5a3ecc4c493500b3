"""Drift monitoring: new data against what the serving model learned from.

The reference is the data the current champion was trained on, read from its registry
tags (``data.version`` and ``data.train_periods``), so after a promotion the reference
moves with the champion. The current data is every period that arrived after the
champion's data (at most one training window of it). The check covers feature drift,
target drift, the champion's prediction drift and, since batches carry labels, its
performance on the new data against its own holdout score. Each check is one MLflow run
(per Airflow run, so a retry reuses it) holding the HTML report, the scores and the
decision; a later check of the same data version against the same champion under the same
spec file, in any Airflow run, reuses that answer (tag ``drift.basis``) instead of measuring
again.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Collection, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from retrainer import schema, storage
from retrainer.data.versioning import DataRegistry, DataVersion, DataVersionError, version_number
from retrainer.model.evaluation import worse_by
from retrainer.records import DatasetCheck, DriftCheck, RunContext
from retrainer.registry.client import Registry
from retrainer.schema import CHAMPION
from retrainer.settings import Settings
from retrainer.spec.dataset import DatasetSpec

if TYPE_CHECKING:
    import pandas as pd

    from retrainer.model.drift import DriftResult

log = logging.getLogger(__name__)


def cooldown_remaining(settings: Settings, spec: DatasetSpec, now: datetime | None = None) -> float:
    """Seconds left of the spec's cooldown after the last drift-triggered retraining (0 if none)."""
    if spec.drift.cooldown_hours <= 0:
        return 0.0
    registry = Registry(settings)
    runs = registry.client.search_runs(
        [registry.runs.experiment_id(spec)],
        filter_string=f"tags.`{schema.TRIGGER}` LIKE 'drift:%'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    if not runs:
        return 0.0
    started = datetime.fromtimestamp(runs[0].info.start_time / 1000, tz=UTC)
    elapsed = ((now or datetime.now(UTC)) - started).total_seconds()
    return max(0.0, spec.drift.cooldown_hours * 3600 - elapsed)


def checks_for_announcements(
    announced: Sequence[Mapping[str, Any]], known: Collection[str]
) -> tuple[list[DatasetCheck], list[str]]:
    """What a drift monitor started by data-version announcements looks at: each dataset once,
    at the newest version announced for it (several announcements can start one run).

    ``announced``: the announcements' extras (``dataset``, ``data_version``); ``known``: the
    datasets that have a spec. Returns the checks (by dataset)
    and, for the log, why any announcement was left out."""
    newest: dict[str, str] = {}
    left_out: list[str] = []
    for extra in announced:
        dataset, version = extra.get("dataset"), extra.get("data_version")
        number = version_number(version) if isinstance(version, str) else None
        if not isinstance(dataset, str) or not isinstance(version, str) or number is None:
            left_out.append(f"an announcement without a dataset and data version: {dict(extra)!r:.200}")
        elif dataset not in known:
            left_out.append(f"{dataset} {version}: no spec {dataset}.yaml in the specs folder")
        elif dataset not in newest or number > (version_number(newest[dataset]) or 0):
            newest[dataset] = version
    return [DatasetCheck(d, v) for d, v in sorted(newest.items())], left_out


def recorded_check(settings: Settings, dataset: str, dag_id: str, run_id: str) -> DriftCheck | None:
    """The drift check an Airflow run recorded in MLflow (None if it recorded none)."""
    spec = settings.load_spec(dataset)
    registry = Registry(settings)
    return _recorded(registry, registry.runs.find(spec, RunContext(dag_id=dag_id, run_id=run_id)))


def _recorded(registry: Registry, mlflow_run: str | None) -> DriftCheck | None:
    recorded = registry.runs.tags(mlflow_run).get(schema.DRIFT_RESULT) if mlflow_run else None
    return DriftCheck.from_json(json.loads(recorded)) if recorded else None


def _basis(settings: Settings, spec: DatasetSpec, version: DataVersion, champion: str) -> str:
    """What a check's answer depends on: the data version's commit, the champion version and the
    spec file (its drift rules, columns and gate metric). The same basis, the same answer."""
    return settings.spec_digest(spec.name, version.rev, champion)


def _same_check(registry: Registry, spec: DatasetSpec, basis: str) -> DriftCheck | None:
    """A finished check with this basis, in any Airflow run (the daily check of unchanged data,
    a burst announcing one version twice): its answer."""
    runs = registry.client.search_runs(
        [registry.runs.experiment_id(spec)],
        filter_string=schema.tag_filter({schema.RUN_KIND: schema.DRIFT_CHECK_KIND, schema.DRIFT_BASIS: basis}),
        order_by=["attributes.start_time ASC"],
        max_results=20,
    )
    for run in runs:
        recorded = run.data.tags.get(schema.DRIFT_RESULT)
        if recorded:
            return DriftCheck.from_json(json.loads(recorded))
    return None


@dataclass(frozen=True)
class _Measured:
    """A drift measurement: the data compared, the drift found and the champion's score."""

    reference: pd.DataFrame
    current: pd.DataFrame
    result: DriftResult
    current_periods: list[str]
    champion_score: float
    current_score: float
    drop: float
    dropped: bool


def check_drift(settings: Settings, dataset: str, data_version: str | None, ctx: RunContext) -> DriftCheck:
    """Measure drift of the newest data against the champion's training data and decide."""
    spec = settings.load_spec(dataset)
    registry = Registry(settings)
    try:
        version = DataRegistry(settings).resolve(dataset, data_version)
    except DataVersionError as exc:
        if data_version not in (None, "", "latest"):
            raise
        return DriftCheck("no_data", False, f"nothing to check yet: {exc}", dataset=dataset)
    # one check per Airflow run and data version: a retry or a rerun gets the same answer, even
    # if the champion moved; a later look of the same run (a sensor that waited) at a newer
    # version is a check of its own
    this_version = {schema.RUN_DATA_VERSION: version.label}
    earlier = _recorded(registry, registry.runs.find(spec, ctx, this_version))
    if earlier is not None:
        log.info(
            "drift check of %s %s in this Airflow run is already recorded in MLflow; reusing it", dataset, version.label
        )
        return replace(earlier, dataset=dataset)
    champion = registry.versions.alias(spec, CHAMPION)
    if champion is None:
        reason = "no champion yet: nothing to compare against"
        return DriftCheck("no_champion", False, reason, version.label, dataset=dataset)
    ref = schema.read_data(registry.versions.tags(spec, champion))
    new_periods = [p for p in version.periods if p > max(ref.periods_seen)][-spec.training.window_periods :]
    if not new_periods:
        reason = f"{version.tag} holds nothing newer than champion v{champion}'s data"
        return DriftCheck("no_new_data", False, reason, version.label, champion, dataset=dataset)
    basis = _basis(settings, spec, version, champion)
    same = _same_check(registry, spec, basis)
    if same is not None:  # the same data, champion and rules: the same answer, not measured again
        log.info(
            "drift check of %s %s against champion v%s: already answered by MLflow run %s (same data, "
            "champion and spec); reusing it",
            dataset,
            version.label,
            champion,
            same.mlflow_run_id,
        )
        return replace(same, dataset=dataset)
    run_id, _ = registry.runs.get_or_create(
        spec,
        ctx,
        {schema.RUN_KIND: schema.DRIFT_CHECK_KIND, schema.DRIFT_BASIS: basis, **this_version},
        match=this_version,
        what=f"drift check {spec.name} {version.label}",
    )
    measured = _measure(settings, registry, spec, champion, version, new_periods)
    check = _decide(spec, measured, version, champion, ref)
    check = replace(
        check, mlflow_run_id=run_id, mlflow_experiment_id=registry.runs.experiment_id(spec), dataset=dataset
    )
    check = _log_check(registry, spec, run_id, ctx, check, measured, version)
    log.info("drift check: %s", check.reason)
    return check


def _measure(
    settings: Settings,
    registry: Registry,
    spec: DatasetSpec,
    champion: str,
    version: DataVersion,
    new_periods: list[str],
) -> _Measured:
    """Feature and target drift, the champion's prediction drift and its score on the new data."""
    import numpy as np

    from retrainer.model import drift, evaluation, training

    tags = registry.versions.tags(spec, champion)
    ref = schema.read_data(tags)
    data = DataRegistry(settings)
    reference = data.read_periods(spec, data.resolve(spec.name, ref.version), ref.train_periods)
    current = data.read_periods(spec, version, new_periods)
    result = drift.detect_for_spec(spec, reference, current)
    model = registry.models.load_keras(spec, champion)
    pred_cur = training.predict(model, current, spec)
    result.extra["prediction"] = asdict(
        drift.prediction_drift(training.predict(model, reference, spec), pred_cur, spec.drift.prediction)
    )
    metric = spec.gate.metric
    champion_score = schema.read_gate_score(tags, metric)
    known = current[spec.target.column].notna().to_numpy()  # unlabelled rows count for drift, not for the score
    current_score = evaluation.metrics(spec.target.task, training.target_array(current[known], spec), pred_cur[known])[
        metric
    ]
    drop = drift.performance_drop(champion_score, current_score, spec.gate.higher_is_better)
    dropped = bool(np.isfinite(drop) and drop > spec.drift.performance_drop)
    result.extra["performance"] = {
        "metric": metric,
        "champion_holdout": champion_score,
        "current": current_score,
        "drop": drop,
        "threshold": spec.drift.performance_drop,
        "drifted": dropped,
    }
    return _Measured(reference, current, result, new_periods, champion_score, current_score, drop, dropped)


def _decide(spec: DatasetSpec, m: _Measured, version: DataVersion, champion: str, ref: schema.DataRef) -> DriftCheck:
    """Whether to retrain, by the spec's rule (drift, or drift and a performance drop), and why."""
    signals = {
        "features": m.result.drifted,
        "target": bool(m.result.extra.get("target", {}).get("drifted")),
        "prediction": bool(m.result.extra["prediction"]["drifted"]),
    }
    detected = any(signals.values())
    if spec.drift.require_performance_drop:
        retrain, rule = detected and m.dropped, "drift and a performance drop"
    else:
        retrain, rule = detected, "drift"
    fired = [k for k, v in signals.items() if v] + (["performance"] if m.dropped else [])
    metric = spec.gate.metric
    reason = (
        f"{'retrain' if retrain else 'no retraining'} ({rule} required): "
        f"{', '.join(fired) or 'nothing'} drifted on {','.join(m.current_periods)} vs champion v{champion}'s data "
        f"({ref.version}); {metric} {m.current_score:.4g} vs {m.champion_score:.4g} ({worse_by(m.drop)})"
    )
    return DriftCheck(
        status="checked",
        retrain=retrain,
        reason=reason,
        data_version=version.label,
        champion_version=champion,
        current_periods=m.current_periods,
        reference_version=ref.version,
        reference_periods=ref.train_periods,
        signals=signals,
        performance_drop=m.drop,
        metric=metric,
        share_drifted=m.result.share_drifted,
        drifted_features=m.result.drifted_features,
    )


def _log_check(
    registry: Registry,
    spec: DatasetSpec,
    run_id: str,
    ctx: RunContext,
    check: DriftCheck,
    m: _Measured,
    version: DataVersion,
) -> DriftCheck:
    """Scores, the HTML report, every feature's test and the decision, on the check's MLflow run."""
    import mlflow
    import numpy as np

    from retrainer.model import reports

    scores: dict[str, Any] = {f.feature: f.score for f in m.result.features if np.isfinite(f.score)}
    with registry.runs.active(run_id) as run, storage.scratch("retrainer-report-") as tmp:
        mlflow.log_metrics(
            {
                schema.METRIC_DRIFT_SHARE: m.result.share_drifted,
                schema.METRIC_PERFORMANCE_DROP: float(m.drop) if np.isfinite(m.drop) else 0.0,
                **schema.metric_names(schema.METRIC_DRIFT_FEATURE, scores),
            }
        )
        report = Path(tmp) / schema.artifact_file(schema.ARTIFACT_DRIFT_REPORT)
        reference = f"{check.reference_version} ({','.join(check.reference_periods)})"
        reports.drift_report_html(
            f"Drift of {spec.name} {','.join(m.current_periods)} vs champion v{check.champion_version}",
            m.result,
            m.reference,
            m.current,
            {
                "decision": check.reason,
                "data version": version.tag,
                "reference": reference,
                "Airflow run": f"{ctx.dag_id} / {ctx.run_id}",
            },
            report,
        )
        mlflow.log_artifact(str(report), artifact_path=schema.artifact_dir(schema.ARTIFACT_DRIFT_REPORT))
        mlflow.log_dict(m.result.to_dict(), schema.ARTIFACT_DRIFT)
        check = replace(check, report_uri=registry.runs.artifact_link(run, schema.ARTIFACT_DRIFT_REPORT))
        mlflow.set_tags(
            {
                schema.DRIFT_RETRAIN: str(check.retrain).lower(),
                schema.DRIFT_REASON: check.reason[:5000],
                schema.DRIFT_RESULT: json.dumps(check.to_json()),
            }
        )
    return check
