"""Drift monitoring: new data against what the serving model learned from.

The reference is the data the current champion was trained on, read from its registry
tags (``data.version`` and ``data.train_periods``), so after a promotion the reference
moves with the champion. The current data is every period that arrived after the
champion's data (at most one training window of it). The check covers feature drift,
target drift, the champion's prediction drift and, since batches carry labels, its
performance on the new data against its own holdout score. Each check is one MLflow run
(per Airflow run, so a retry reuses it) holding the HTML report, the scores and the
decision.
"""

from __future__ import annotations

import json
import logging
import tempfile
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from retrainer.config import DatasetSpec, Settings
from retrainer.registry import CHAMPION, Registry, RunContext
from retrainer.versioning import DataRegistry

log = logging.getLogger(__name__)

Result = dict[str, Any]


def cooldown_remaining(settings: Settings, spec: DatasetSpec, now: datetime | None = None) -> float:
    """Seconds left of the spec's cooldown after the last drift-triggered retraining (0 if none)."""
    if spec.drift.cooldown_hours <= 0:
        return 0.0
    registry = Registry(settings)
    runs = registry.client.search_runs(
        [registry.experiment_id(spec)],
        filter_string="tags.`retrainer.trigger` LIKE 'drift:%'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    if not runs:
        return 0.0
    started = datetime.fromtimestamp(runs[0].info.start_time / 1000, tz=UTC)
    elapsed = ((now or datetime.now(UTC)) - started).total_seconds()
    return max(0.0, spec.drift.cooldown_hours * 3600 - elapsed)


def recorded_check(settings: Settings, dataset: str, dag_id: str, run_id: str) -> Result | None:
    """The drift check an Airflow run recorded in MLflow (None if it recorded none)."""
    spec = settings.load_spec(dataset)
    registry = Registry(settings)
    mlflow_run = registry.find_run(spec, RunContext(dag_id=dag_id, run_id=run_id))
    recorded = registry.run_tags(mlflow_run).get("drift.result") if mlflow_run else None
    return dict(json.loads(recorded)) if recorded else None


def _no_check(status: str, reason: str, **extra: Any) -> Result:
    return {"status": status, "retrain": False, "reason": reason, **extra}


def check_drift(settings: Settings, dataset: str, data_version: str | None, ctx: RunContext) -> Result:
    """Measure drift of the newest data against the champion's training data and decide."""
    import mlflow
    import numpy as np

    from retrainer import drift, evaluation, reports, training

    spec = settings.load_spec(dataset)
    registry = Registry(settings)
    earlier = registry.find_run(spec, ctx)
    recorded = registry.run_tags(earlier).get("drift.result") if earlier else None
    if recorded:  # a retry or a rerun of the same Airflow run: the same answer, even if the champion moved
        log.info("drift check of this Airflow run is already recorded on MLflow run %s; reusing it", earlier)
        return dict(json.loads(recorded))
    data = DataRegistry(settings)
    version = data.resolve(dataset, data_version)
    champion = registry.alias_version(spec, CHAMPION)
    if champion is None:
        return _no_check("no_champion", "no champion yet: nothing to compare against", data_version=version.label)
    tags = registry.version_tags(spec, champion)
    seen = set(tags["data.train_periods"].split(",")) | set(tags["data.holdout_periods"].split(","))
    new_periods = [p for p in version.periods if p > max(seen)][-spec.training.window_periods :]
    base = {"data_version": version.label, "champion_version": champion}
    if not new_periods:
        return _no_check("no_new_data", f"{version.tag} holds nothing newer than champion v{champion}'s data", **base)

    run_id, _ = registry.get_or_create_run(
        spec, ctx, {"retrainer.kind": "drift_check", "retrainer.data_version": version.label}
    )

    ref_version = data.resolve(dataset, tags["data.version"])
    reference = data.read_periods(spec, ref_version, tags["data.train_periods"].split(","))
    current = data.read_periods(spec, version, new_periods)
    result = drift.detect_for_spec(spec, reference, current)

    model = registry.load_keras(spec, champion)
    pred_ref = training.predict(model, reference, spec)
    pred_cur = training.predict(model, current, spec)
    result.extra["prediction"] = asdict(drift.prediction_drift(pred_ref, pred_cur, spec.drift.prediction))
    metric = spec.gate.metric
    champion_score = float(tags[f"gate.{metric}"])
    current_score = evaluation.metrics(spec.target.task, training.target_array(current, spec), pred_cur)[metric]
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

    signals = {
        "features": result.drifted,
        "target": bool(result.extra.get("target", {}).get("drifted")),
        "prediction": bool(result.extra["prediction"]["drifted"]),
    }
    detected = any(signals.values())
    if spec.drift.require_performance_drop:
        retrain = detected and dropped
        rule = "drift and a performance drop"
    else:
        retrain = detected
        rule = "drift"
    fired = [k for k, v in signals.items() if v] + (["performance"] if dropped else [])
    reason = (
        f"{'retrain' if retrain else 'no retraining'} ({rule} required): "
        f"{', '.join(fired) or 'nothing'} drifted on {','.join(new_periods)} vs champion v{champion}'s data "
        f"({tags['data.version']}); {metric} {current_score:.4g} vs {champion_score:.4g} ({drop:+.0%})"
    )
    out: Result = {
        "status": "checked",
        "retrain": retrain,
        "reason": reason,
        **base,
        "current_periods": new_periods,
        "reference_version": tags["data.version"],
        "reference_periods": tags["data.train_periods"].split(","),
        "signals": signals,
        "performance_drop": drop,
        "metric": metric,
        "share_drifted": result.share_drifted,
        "drifted_features": result.drifted_features,
        "mlflow_run_id": run_id,
        "mlflow_experiment_id": registry.experiment_id(spec),
    }
    with mlflow.start_run(run_id=run_id), tempfile.TemporaryDirectory() as tmp:
        mlflow.log_metrics(
            {
                "drift_share": result.share_drifted,
                "performance_drop": float(drop) if np.isfinite(drop) else 0.0,
                **{f"drift.{f.feature}": f.score for f in result.features if np.isfinite(f.score)},
            }
        )
        report = reports.drift_report_html(
            f"Drift of {spec.name} {','.join(new_periods)} vs champion v{champion}",
            result,
            reference,
            current,
            {
                "decision": reason,
                "data version": version.tag,
                "reference": f"{tags['data.version']} ({tags['data.train_periods']})",
                "Airflow run": f"{ctx.dag_id} / {ctx.run_id}",
            },
            Path(tmp) / "drift_report.html",
        )
        mlflow.log_artifact(str(report), artifact_path="drift")
        mlflow.log_dict(result.to_dict(), "drift/drift.json")
        out["report_uri"] = f"{mlflow.get_artifact_uri()}/drift/drift_report.html"
        mlflow.set_tags(
            {"drift.retrain": str(retrain).lower(), "drift.reason": reason[:5000], "drift.result": json.dumps(out)}
        )
    log.info("drift check: %s", reason)
    return out
