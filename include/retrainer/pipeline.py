"""The steps of the two pipelines, one function per Airflow task.

Each step takes and returns small JSON-able dicts (references: paths, versions, ids),
never data frames, and is idempotent: run again with the same inputs it finds what it
made the first time and returns the same answer instead of making a second one.

ingest: validate_batch -> quarantine_batch | version_batch
retrain: plan_training -> validate_window -> train_and_log -> evaluate -> register
         -> promote -> deploy -> verify_deployment
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from retrainer.config import DataFileError, DatasetSpec, Settings
from retrainer.registry import CHALLENGER, CHAMPION, ChampionMovedError, Registry, RunContext
from retrainer.validation import ValidationReport, file_md5, validate_file, validate_frame
from retrainer.versioning import DataRegistry

log = logging.getLogger(__name__)

Result = dict[str, Any]


class DataValidationError(ValueError):
    """Data failed its expectations; the message says what and where."""


class NotEnoughDataError(LookupError):
    """The data version holds fewer periods than a training window and its holdout need."""


def _write_json_atomic(path: Path, payload: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    tmp.write_text(payload)
    tmp.replace(path)
    return path


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


# =============================================================================== ingest


def validate_batch(settings: Settings, dataset: str, batch: str, period: str) -> Result:
    """Validate a landed batch file against its spec's suite; the full GX result is kept on disk."""
    spec = settings.load_spec(dataset)
    path = Path(batch)
    if not path.is_file():
        raise DataFileError(f"{path}: batch file for {dataset} {period} does not exist")
    md5 = file_md5(path)
    report = validate_file(path, spec, period)
    result_path = Path(settings.validation_results) / dataset / period / f"{md5}.json"
    _write_json_atomic(result_path, report.to_json())
    return {
        "dataset": dataset,
        "period": period,
        "batch": str(path),
        "md5": md5,
        "success": report.success,
        "n_rows": report.n_rows,
        "evaluated": report.evaluated,
        "failures": report.failures,
        "summary": report.summary(),
        "result_path": str(result_path),
    }


def quarantine_batch(settings: Settings, validation: Result) -> Result:
    """Copy a failed batch and its validation result, side by side, into quarantine.

    The folder is keyed by the batch's content hash and appears in one step (written
    elsewhere, then renamed), so a retry finds it complete instead of writing it twice.
    """
    src = Path(validation["batch"])
    dest = Path(settings.quarantine) / validation["dataset"] / validation["period"] / validation["md5"][:12]
    if not (dest / "validation.json").is_file():
        dest.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".incoming-", dir=dest.parent))
        try:
            shutil.copy2(src, staging / src.name)
            shutil.copy2(validation["result_path"], staging / "validation.json")
            if file_md5(staging / src.name) != validation["md5"]:
                raise RuntimeError(f"{src} changed while it was being quarantined")
            os.rename(staging, dest)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    log.error(
        "QUARANTINED %s %s -> %s: %s",
        validation["dataset"],
        validation["period"],
        dest,
        "; ".join(validation["failures"]),
    )
    return {**validation, "quarantine": str(dest)}


def version_batch(settings: Settings, validation: Result) -> Result:
    """Add an accepted batch to the DVC data registry as a new immutable data version."""
    if not validation["success"]:
        raise DataValidationError(f"refusing to version {validation['batch']}: {validation['summary']}")
    spec = settings.load_spec(validation["dataset"])
    path = Path(validation["batch"])
    md5 = file_md5(path)
    if md5 != validation["md5"]:
        raise DataValidationError(f"{path} changed after it was validated (md5 {validation['md5']} -> {md5})")
    res = DataRegistry(settings).add_batch(spec, validation["period"], path, md5)
    return {
        "dataset": spec.name,
        "period": validation["period"],
        "data_version": res.version.label,
        "data_tag": res.version.tag,
        "data_rev": res.version.rev,
        "created": res.created,
        "pushed_bytes": res.pushed_bytes,
        "n_periods": len(res.version.periods),
    }


# =============================================================================== retrain


def period_before(when: datetime) -> str:
    """The last whole monthly period before ``when`` (a data interval's end): 2011-08-01 -> 2011-07,
    and 2011-08-15 -> 2011-07 too (August is not whole yet)."""
    year, month = (when.year, when.month - 1) if when.month > 1 else (when.year - 1, 12)
    return f"{year:04d}-{month:02d}"


def plan_training(
    settings: Settings,
    dataset: str,
    data_version: str | None,
    window: int | None = None,
    as_of: str | None = None,
    backfill: bool = False,
) -> Result:
    """Pin the data version and choose the training window and the later holdout slice.

    ``as_of`` (a period, from a run's data interval end) pins the version that was current
    once that period had landed, when no version is named, and ends the window there; so a
    scheduled run or a backfill of an old interval trains on the data of its time, not the latest."""
    spec = settings.load_spec(dataset)
    registry = DataRegistry(settings)
    if as_of and data_version in (None, "", "latest"):
        version = registry.as_of(dataset, as_of)
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
    return {
        "dataset": dataset,
        "model_name": spec.model_name,
        "data_version": version.label,
        "data_tag": version.tag,
        "data_rev": version.rev,
        "train_periods": periods[:win],
        "holdout_periods": periods[win:],
        "window": win,
        "as_of": as_of,
        "backfill": backfill,
    }


def _read(settings: Settings, spec: DatasetSpec, plan: Result, periods: list[str]) -> pd.DataFrame:
    reg = DataRegistry(settings)
    version = reg.resolve(plan["dataset"], plan["data_tag"])
    if version.rev != plan["data_rev"]:
        raise RuntimeError(f"data tag {plan['data_tag']} moved from {plan['data_rev']} to {version.rev}")
    return reg.read_periods(spec, version, periods)


def trained_by_other_runs(settings: Settings, plan: Result, ctx: RunContext) -> list[str]:
    """Model versions already trained on this plan's data version and window by other runs
    (``v5 (run scheduled__2011-08-01...)``); empty when there are none or only this run's."""
    spec = settings.load_spec(plan["dataset"])
    registry = Registry(settings)
    try:
        found = registry.client.search_model_versions(
            f"name = '{spec.model_name}' and tags.`data.version` = '{plan['data_version']}'"
        )
    except Exception:  # no such registered model yet
        return []
    window = ",".join(plan["train_periods"])
    return [
        f"v{mv.version} (run {mv.tags.get('airflow.run_id')})"
        for mv in sorted(found, key=lambda mv: int(mv.version))
        if mv.tags.get("data.train_periods") == window
        and (mv.tags.get("airflow.dag_id"), mv.tags.get("airflow.run_id")) != (ctx.dag_id, ctx.run_id)
    ]


def validate_window(settings: Settings, plan: Result) -> Result:
    """Re-validate every period of the pinned window and holdout, as read from the registry."""
    spec = settings.load_spec(plan["dataset"])
    reports: list[ValidationReport] = []
    for period in [*plan["train_periods"], *plan["holdout_periods"]]:
        df = _read(settings, spec, plan, [period])
        reports.append(validate_frame(df, spec, period, source=f"{plan['data_tag']}:{period}"))
    failures = [f"{r.period}: {f}" for r in reports for f in r.failures]
    path = Path(settings.validation_results) / plan["dataset"] / "windows" / f"{plan['data_version']}.json"
    _write_json_atomic(path, json.dumps([json.loads(r.to_json()) for r in reports], indent=1))
    result = {
        "success": not failures,
        "evaluated": sum(r.evaluated for r in reports),
        "failures": failures,
        "result_path": str(path),
    }
    if failures:
        raise DataValidationError(f"{plan['data_tag']} window failed validation: " + "; ".join(failures[:10]))
    return result


def train_and_log(
    settings: Settings, plan: Result, ctx: RunContext, validation: Result, epochs: int | None = None
) -> Result:
    """Train on the pinned window and log everything to this Airflow run's MLflow run."""
    import mlflow
    import mlflow.tensorflow
    from mlflow.models import infer_signature

    from retrainer import reports, training

    spec = settings.load_spec(plan["dataset"])
    registry = Registry(settings)
    run_id, _ = registry.get_or_create_run(
        spec,
        ctx,
        {
            "retrainer.dataset": spec.name,
            "retrainer.data_version": plan["data_version"],
            "retrainer.data_rev": plan["data_rev"],
        },
    )
    tags = registry.run_tags(run_id)
    if tags.get("retrainer.model_uri"):
        log.info("MLflow run %s already holds a trained model; reusing it", run_id)
        return {"run_id": run_id, "model_uri": tags["retrainer.model_uri"], "reused": True}

    cfg = spec.training if epochs is None else replace(spec.training, epochs=epochs)
    df = _read(settings, spec, plan, plan["train_periods"])
    result = training.train(df, spec, cfg)
    sample = df.iloc[:5]
    with mlflow.start_run(run_id=run_id):
        mlflow.log_params(
            {
                **result.params,
                "data_version": plan["data_version"],
                "data_rev": plan["data_rev"],
                "train_periods": ",".join(plan["train_periods"]),
                "holdout_periods": ",".join(plan["holdout_periods"]),
                "n_train": result.n_train,
                "n_val": result.n_val,
            }
        )
        for key, values in result.history.items():
            for step, value in enumerate(values):
                mlflow.log_metric(key, value, step=step)
        mlflow.log_metric("epochs_run", result.epochs_run)
        mlflow.log_metric("gx_expectations_evaluated", validation["evaluated"])
        mlflow.set_tag("gx.success", str(validation["success"]).lower())
        mlflow.log_artifact(validation["result_path"], artifact_path="validation")
        # what rebuilds this model besides the data: the code version, the seed and the spec
        from retrainer.lineage import code_version

        mlflow.set_tags({**code_version().tags(), "training.seed": str(cfg.seed)})
        if Path(spec.source_path).is_file():
            mlflow.log_artifact(spec.source_path, artifact_path="spec")
        with tempfile.TemporaryDirectory() as tmp:
            png = reports.learning_curves(
                result.history, Path(tmp) / "learning_curves.png", f"{spec.model_name} on {plan['data_version']}"
            )
            mlflow.log_artifact(str(png), artifact_path="plots")
        signature = infer_signature(
            training.feature_arrays(sample, spec), training.predict(result.model, sample, spec).reshape(-1, 1)
        )
        info = mlflow.tensorflow.log_model(
            result.model, name="model", signature=signature, pip_requirements=training.library_versions()
        )
        mlflow.set_tag("retrainer.model_uri", info.model_uri)
    log.info("logged model %s on MLflow run %s", info.model_uri, run_id)
    return {"run_id": run_id, "model_uri": info.model_uri, "reused": False, "epochs_run": result.epochs_run}


def evaluate(settings: Settings, plan: Result, trained: Result) -> Result:
    """Score the candidate, the champion and the naive baseline on the same holdout; apply the gate."""
    import mlflow
    import mlflow.tensorflow
    import numpy as np

    from retrainer import evaluation, reports, training

    spec = settings.load_spec(plan["dataset"])
    registry = Registry(settings)
    champ_version = registry.alias_version(spec, CHAMPION)
    if registry.run_tags(trained["run_id"]).get("retrainer.evaluated") == "true":
        done = dict(mlflow.artifacts.load_dict(f"runs:/{trained['run_id']}/evaluation/evaluation.json"))
        own = registry.version_for_run(spec, trained["run_id"])
        decided = own is not None and (str(own.version) == champ_version or "promotion.decision" in own.tags)
        if done.get("champion_version") == champ_version or decided:
            # the same champion, or this run's candidate is decided already (it may be the champion
            # now): the recorded evaluation is the one that decided, never a comparison with itself
            log.info("evaluation of run %s against champion v%s is already recorded; reusing it",
                     trained["run_id"], done.get("champion_version"))  # fmt: skip
            return done
        log.warning("champion moved from v%s to v%s since run %s was evaluated; evaluating again",
                    done.get("champion_version"), champ_version, trained["run_id"])  # fmt: skip

    holdout = _read(settings, spec, plan, plan["holdout_periods"])
    train_df = _read(settings, spec, plan, plan["train_periods"])
    y = training.target_array(holdout, spec)
    task = spec.target.task
    cand_pred = training.predict(mlflow.tensorflow.load_model(trained["model_uri"]), holdout, spec)
    cand = evaluation.metrics(task, y, cand_pred)
    base = evaluation.metrics(
        task, y, evaluation.baseline_predictions(task, training.target_array(train_df, spec), len(y))
    )
    champ: dict[str, float] | None = None
    champ_pred = None
    if champ_version is not None:
        champ_pred = training.predict(registry.load_keras(spec, champ_version), holdout, spec)
        champ = evaluation.metrics(task, y, champ_pred)
    slices = evaluation.slice_table(spec.gate, task, holdout, y, cand_pred, champ_pred)
    decision = evaluation.gate(spec.gate, cand, base, champ, champ_version, slices)
    out: Result = {
        **decision.to_dict(),
        "candidate_metrics": cand,
        "baseline_metrics": base,
        "champion_metrics": champ,
        "n_holdout": len(y),
    }
    with mlflow.start_run(run_id=trained["run_id"]):
        mlflow.log_metrics({f"holdout_{k}": v for k, v in cand.items() if np.isfinite(v)})
        mlflow.log_metrics({f"baseline_{k}": v for k, v in base.items() if np.isfinite(v)})
        if champ:
            mlflow.log_metrics({f"champion_{k}": v for k, v in champ.items() if np.isfinite(v)})
        mlflow.set_tags(
            {
                "gate.passed": str(decision.passed).lower(),
                "gate.metric": decision.metric,
                "gate.champion_version": champ_version or "none",
                "gate.reasons": " | ".join(decision.reasons),
            }
        )
        with tempfile.TemporaryDirectory() as tmp:
            holdout_name = ",".join(plan["holdout_periods"])
            png = reports.holdout_plot(y, cand_pred, champ_pred, Path(tmp) / "holdout.png", f"holdout {holdout_name}")
            mlflow.log_artifact(str(png), artifact_path="plots")
            page = reports.evaluation_report_html(
                f"{spec.model_name}: candidate vs champion v{champ_version or '-'} on {holdout_name}",
                decision, y, cand_pred, champ_pred, holdout, Path(tmp) / "evaluation_report.html",
            )  # fmt: skip
            mlflow.log_artifact(str(page), artifact_path="evaluation")
            out["report_uri"] = f"{mlflow.get_artifact_uri()}/evaluation/evaluation_report.html"
            mlflow.log_dict(out, "evaluation/evaluation.json")
        mlflow.set_tag("retrainer.evaluated", "true")
    log.info("gate %s: %s", "PASSED" if decision.passed else "FAILED", "; ".join(decision.reasons))
    return out


def register(
    settings: Settings,
    plan: Result,
    trained: Result,
    evaluated: Result,
    ctx: RunContext,
    evidence: dict[str, str] | None = None,
) -> Result:
    """Register the run's model once, with its evidence as version tags, as ``challenger``."""
    spec = settings.load_spec(plan["dataset"])
    registry = Registry(settings)
    tags = {
        **ctx.tags(),
        "mlflow.run_id": trained["run_id"],
        "data.version": plan["data_version"],
        "data.rev": plan["data_rev"],
        "data.train_periods": ",".join(plan["train_periods"]),
        "data.holdout_periods": ",".join(plan["holdout_periods"]),
        "gx.success": "true",
        **_gate_tags(evaluated),
        **(evidence or {}),
    }
    if plan.get("backfill"):  # a model of the past: evidence only, never a candidate for production
        tags.update({"retrainer.backfill": "true", "promotion.decision": "not considered (backfill run)"})
    version, created = registry.register(spec, trained["run_id"], trained["model_uri"], tags)
    if (
        not plan.get("backfill")
        and registry.alias_version(spec, CHAMPION) != version
        and "promotion.decision" not in registry.version_tags(spec, version)
    ):
        registry.set_alias(spec, CHALLENGER, version)
    log.info("%s v%s %s", spec.model_name, version, "registered" if created else "was already registered")
    return {"model_name": spec.model_name, "version": version, "created": created}


def _gate_tags(evaluated: Result) -> dict[str, str]:
    """The gate's evidence as model-version tags."""
    metric = evaluated["metric"]
    delta = evaluated.get("delta_vs_champion")
    return {
        "gate.passed": str(evaluated["passed"]).lower(),
        "gate.metric": metric,
        f"gate.{metric}": f"{evaluated['candidate']:.6g}",
        f"gate.baseline_{metric}": f"{evaluated['baseline']:.6g}",
        "gate.champion_version": evaluated.get("champion_version") or "none",
        f"gate.delta_{metric}_vs_champion": "n/a" if delta is None else f"{delta:+.6g}",
        "gate.reasons": " | ".join(evaluated["reasons"]),
        "gate.slices_failed": ", ".join(
            f"{x['feature']}={x['value']}" for x in evaluated.get("slices", []) if x["failed"]
        )
        or "none",
        "evaluation.report": evaluated.get("report_uri", ""),
    }


class ReviewPendingError(RuntimeError):
    """Policy ``review``: no reviewer has approved this version, so it must not be promoted."""


MAX_REEVALUATIONS = 3


def review_links(settings: Settings, spec: DatasetSpec, version: str, airflow_url: str) -> dict[str, str]:
    """Where a reviewer reads the evidence: the version and its run in MLflow, the evaluation
    report, and the Airflow run that asks."""
    registry = Registry(settings)
    run_id = registry.version_tags(spec, version).get("mlflow.run_id", "")
    ui = settings.mlflow_ui_url
    run_url = f"{ui}/#/experiments/{registry.experiment_id(spec)}/runs/{run_id}" if run_id else ""
    return {
        "Model version in MLflow": f"{ui}/#/models/{spec.model_name}/versions/{version}",
        "Evaluation report": f"{run_url}/artifacts/evaluation/evaluation_report.html" if run_url else "",
        "MLflow run": run_url,
        "Airflow run": airflow_url,
    }


def promote(
    settings: Settings, plan: Result, evaluated: Result, registered: Result, trained: Result | None = None
) -> Result:
    """Move ``champion`` to the candidate when the gate passed (and, under policy ``review``,
    a reviewer approved). ``champion`` moves by compare-and-set against the version the gate
    compared with; if it moved meanwhile, the candidate is evaluated again against the new
    champion (needs ``trained``) and promoted only if it passes again. The decision is recorded."""
    from retrainer import approval

    spec = settings.load_spec(plan["dataset"])
    registry = Registry(settings)
    version = registered["version"]
    tags = registry.version_tags(spec, version)
    if "promotion.decision" in tags:
        log.info("%s v%s: decision already recorded (%s)", spec.model_name, version, tags["promotion.decision"])
        return {
            "promoted": tags["promotion.decision"] == "promoted",
            "version": version,
            "previous_champion": tags.get("promotion.previous_champion") or None,
            "reused": True,
        }
    decided = {"promotion.decided_by": "policy:auto", "promotion.decided_at": _now()}
    if spec.approval.policy == "review" and evaluated["passed"]:
        review = approval.recorded(tags)
        if review is None or not review.approved:
            raise ReviewPendingError(
                f"{spec.model_name} v{version}: policy is review and no reviewer approved it "
                f"(approval.decision={tags.get(approval.DECISION_TAG, 'none')}); not promoting"
            )
        decided["promotion.decided_by"] = f"review:{review.via}:{review.reviewer}"
    for attempt in range(MAX_REEVALUATIONS + 1):
        if not evaluated["passed"]:
            reason = " | ".join(evaluated["reasons"])
            if attempt:
                reason = f"re-evaluated against champion v{evaluated.get('champion_version')}: {reason}"
            registry.tag_version(
                spec, version, {**decided, "promotion.decision": "rejected", "promotion.reason": reason}
            )
            if registry.alias_version(spec, CHALLENGER) == version:
                registry.client.delete_registered_model_alias(spec.model_name, CHALLENGER)
            log.warning("%s v%s not promoted: %s", spec.model_name, version, reason)
            return {"promoted": False, "version": version, "previous_champion": evaluated.get("champion_version")}
        try:
            previous = registry.promote(spec, version, evaluated.get("champion_version"))
            break
        except ChampionMovedError as moved:
            if trained is None or attempt == MAX_REEVALUATIONS:
                raise
            log.warning("%s; evaluating v%s again against the new champion", moved, version)
            evaluated = evaluate(settings, plan, trained)
            registry.tag_version(spec, version, {
                **_gate_tags(evaluated),
                "promotion.reevaluated": f"champion moved to v{evaluated.get('champion_version')} before promotion; "
                                         f"evaluated again (round {attempt + 1})",
            })  # fmt: skip
    registry.tag_version(
        spec,
        version,
        {**decided, "promotion.decision": "promoted", "promotion.previous_champion": previous or "none"},
    )
    log.info("%s v%s is champion (previous: %s)", spec.model_name, version, previous or "none")
    return {"promoted": True, "version": version, "previous_champion": previous}


def deploy(settings: Settings, plan: Result, registered: Result) -> Result:
    """Export the registry's model version into the model store (TensorFlow Serving layout),
    labelled ``canary`` when the spec asks for it."""
    from retrainer import deployment, serving

    spec = settings.load_spec(plan["dataset"])
    registry = Registry(settings)
    version = registered["version"]
    model = registry.load_keras(spec, version)
    res = deployment.deploy(settings, spec, version, model)
    tags = {"deploy.location": res.location, **_tflite(settings, spec, plan, version, model)}
    entry = serving.read_config(settings.model_store, settings.s3_endpoint_url).get(spec.model_name)
    labels = dict(entry.labels) if entry else {}
    if labels.get(serving.STABLE) == int(version):  # a rerun after verify: it serves already
        tags["deploy.label"] = serving.STABLE
    elif spec.deploy.canary:  # stable keeps serving the previous version until the check passes
        labels = serving.set_label(settings.model_store, spec.model_name, serving.CANARY, int(version),
                                   settings.s3_endpoint_url)  # fmt: skip
        tags["deploy.label"] = serving.CANARY
    registry.tag_version(spec, version, tags)
    return {"version": version, "location": res.location, "created": res.created, "labels": labels}


def _tflite(settings: Settings, spec: DatasetSpec, plan: Result, version: str, model: Any) -> dict[str, str]:
    """Write the version's TFLite artifact beside the store (once) and measure what it costs:
    size against the SavedModel, and the gate metric on the holdout against the full model."""
    from retrainer import deployment, evaluation, storage, training

    location = deployment.tflite_location(settings, spec, version)
    blob, saved_size = deployment.convert_tflite(model)
    if not storage.exists(location, settings.s3_endpoint_url):
        storage.write_bytes(location, blob, settings.s3_endpoint_url)
    holdout = _read(settings, spec, plan, plan["holdout_periods"])
    y = training.target_array(holdout, spec)
    metric = spec.gate.metric
    full = evaluation.metrics(spec.target.task, y, training.predict(model, holdout, spec))[metric]
    lite = evaluation.metrics(spec.target.task, y, deployment.tflite_predictions(blob, holdout, spec))[metric]
    log.info("TFLite v%s: %d bytes (%.2fx the SavedModel), %s %.4g vs %.4g", version, len(blob),
             len(blob) / saved_size, metric, lite, full)  # fmt: skip
    return {
        "tflite.location": location,
        "tflite.size_bytes": str(len(blob)),
        "tflite.size_ratio_vs_savedmodel": f"{len(blob) / saved_size:.3f}",
        f"tflite.{metric}": f"{lite:.6g}",
        f"tflite.{metric}_change": f"{(lite - full) / abs(full) if full else 0.0:+.4%}",
    }


def verify_deployment(settings: Settings, plan: Result, deployed: Result) -> Result:
    """The check after a deploy, through a model server: health, predictions equal to the
    registry model's on holdout rows, latency. Passed: ``stable`` moves to the version (only
    while it is the champion: a rerun of an old run must not move the label back) and the
    ``canary`` label is dropped. Failed: ``canary`` is dropped and DeployCheckError raised."""
    from retrainer import postdeploy, serving, training

    spec = settings.load_spec(plan["dataset"])
    registry = Registry(settings)
    version = deployed["version"]
    sample = _read(settings, spec, plan, plan["holdout_periods"]).iloc[: spec.deploy.check_rows]
    expected = training.predict(registry.load_keras(spec, version), sample, spec)
    entry = serving.read_config(settings.model_store, settings.s3_endpoint_url).get(spec.model_name)
    labels = dict(entry.labels) if entry else {}
    label = serving.CANARY if labels.get(serving.CANARY) == int(version) else None
    try:
        with postdeploy.endpoint(settings, spec, version, labels) as url:
            result = postdeploy.check(url, spec, version, sample, expected, label)
    except postdeploy.DeployCheckError as exc:
        if label:
            serving.clear_label(settings.model_store, spec.model_name, serving.CANARY, settings.s3_endpoint_url)
        registry.tag_version(spec, version, {"deploy.verified": "false", "deploy.check.error": str(exc)[:500]})
        raise
    tags = {
        "deploy.verified": "true",
        "deploy.max_abs_diff": f"{result.max_abs_diff:.3g}",
        "deploy.check.p50_ms": f"{result.p50_ms:.2f}",
        "deploy.check.p99_ms": f"{result.p99_ms:.2f}",
        "deploy.check.endpoint": result.endpoint + result.route,
    }
    if registry.alias_version(spec, CHAMPION) == version:
        labels = serving.set_label(settings.model_store, spec.model_name, serving.STABLE, int(version),
                                   settings.s3_endpoint_url)  # fmt: skip
        tags["deploy.label"] = serving.STABLE
    else:
        log.warning("v%s is no longer the champion; the stable label stays at %s", version, labels.get(serving.STABLE))
    if label:
        labels = serving.clear_label(settings.model_store, spec.model_name, serving.CANARY, settings.s3_endpoint_url)
    registry.tag_version(spec, version, tags)
    log.info("verified %s: labels now %s", deployed["location"], labels)
    return {**deployed, **result.to_dict(), "labels": labels}


# =============================================================================== rollback


def roll_back_bad_deploy(settings: Settings, plan: Result, deployed: Result, ctx: RunContext, error: str) -> str:
    """After a failed deploy check: if the bad version is the champion, put the one it replaced
    back (alias and label). Returns what happened, in words, for the failure message."""
    spec = settings.load_spec(plan["dataset"])
    if Registry(settings).alias_version(spec, CHAMPION) != deployed["version"]:
        return f"v{deployed['version']} is not the champion, so nothing to roll back"
    try:
        back = rollback(settings, plan["dataset"], "previous", ctx, f"automatic: deploy check failed: {error}",
                        "retrainer:auto")  # fmt: skip
    except LookupError as none:  # the first model: there is nothing to go back to
        return f"no rollback ({none})"
    return f"rolled back from v{back['from']} to v{back['to']}"


def rollback(settings: Settings, dataset: str, target: str, ctx: RunContext, reason: str, who: str) -> Result:
    """Serve an earlier version again: ``target`` is a version number or "previous" (the version
    the current champion replaced). The version is (re)deployed if needed and verified from
    the store, then the ``champion`` alias moves by compare-and-set and the ``stable`` label
    follows; who, why and when are recorded on both versions."""
    from retrainer import deployment, serving

    spec = settings.load_spec(dataset)
    registry = Registry(settings)
    current = registry.alias_version(spec, CHAMPION)
    if current is None:
        raise LookupError(f"{spec.model_name} has no champion: nothing to roll back from")
    if target == "previous":
        previous = registry.version_tags(spec, current).get("promotion.previous_champion", "none")
        if previous == "none":
            raise LookupError(f"{spec.model_name} v{current} replaced no earlier champion: no 'previous' to go back to")
        target = previous
    if not target.isdigit():
        raise ValueError(f"rollback target must be a version number or 'previous', got {target!r}")
    try:
        tags = registry.version_tags(spec, target)
    except Exception as exc:  # MlflowException: RESOURCE_DOES_NOT_EXIST
        raise LookupError(f"{spec.model_name} has no version {target}") from exc
    if current == target:
        log.info("%s v%s is already the champion", spec.model_name, target)
    model = registry.load_keras(spec, target)
    deployed = deployment.deploy(settings, spec, target, model)
    sample = (
        DataRegistry(settings)
        .read_periods(
            spec, DataRegistry(settings).resolve(dataset, tags["data.version"]), tags["data.holdout_periods"].split(",")
        )
        .iloc[:64]
    )
    diff = deployment.verify(settings, spec, deployed.location, model, sample)
    if current != target:
        registry.promote(spec, target, expected_champion=current)
    labels = serving.set_label(settings.model_store, spec.model_name, serving.STABLE, int(target),
                               settings.s3_endpoint_url)  # fmt: skip
    when = _now()
    registry.tag_version(
        spec,
        target,
        {
            "rollback.from": current,
            "rollback.reason": reason,
            "rollback.by": who,
            "rollback.at": when,
            "rollback.airflow_run_id": ctx.run_id,
            "deploy.location": deployed.location,
            "deploy.verified": "true",
            "deploy.label": serving.STABLE,
        },
    )
    if current != target:
        registry.tag_version(spec, current, {"rolled_back.to": target, "rolled_back.by": who, "rolled_back.at": when})
    log.warning("%s rolled back from v%s to v%s by %s: %s", spec.model_name, current, target, who, reason)
    return {"from": current, "to": target, "labels": labels, "max_abs_diff": diff, "by": who, "reason": reason}
