"""Deploy: the champion into the model store, then checked through a model server.

deploy -> verify_deployment (the last tasks of ``retrain_model``). A new version is
labelled ``canary`` while ``stable`` keeps serving the previous one; ``stable`` moves only
after the check passed, and only while the version is still the champion.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from retrainer import faults, schema, storage
from retrainer.outcomes import Refused
from retrainer.pipeline.train import read_plan
from retrainer.records import Deployment, RegisteredVersion, TrainingPlan, Verification
from retrainer.registry.client import Registry
from retrainer.schema import CHAMPION
from retrainer.serving import modelstore
from retrainer.serving.modelstore import CANARY, STABLE
from retrainer.settings import Settings
from retrainer.spec.dataset import DatasetSpec

log = logging.getLogger(__name__)


def _labels(settings: Settings, spec: DatasetSpec) -> dict[str, int]:
    entry = modelstore.read_config(settings.model_store, settings.s3_endpoint_url).get(spec.model_name)
    return dict(entry.labels) if entry else {}


def deploy(settings: Settings, plan: TrainingPlan, registered: RegisteredVersion) -> Deployment:
    """Export the registry's model version into the model store (TensorFlow Serving layout),
    labelled ``canary`` when the spec asks for it."""
    from retrainer.serving import export

    spec = settings.load_spec(plan.dataset)
    registry = Registry(settings)
    version = registered.version
    model = registry.models.load_keras(spec, version)
    _sweep(settings, spec)
    lite = _tflite(settings, spec, plan, version, model)
    res = export.deploy(settings, spec, version, model, {modelstore.TFLITE_MODEL: lite.blob} if lite.serve else None)
    faults.point("deploy:published")
    if not storage.exists(lite.location, settings.s3_endpoint_url):  # the artifact beside the store, once
        faults.point("deploy:tflite")
        storage.write_bytes(lite.location, lite.blob, settings.s3_endpoint_url)
    in_folder = storage.exists(storage.join(res.location, modelstore.TFLITE_MODEL), settings.s3_endpoint_url)
    served = "tflite" if in_folder else "savedmodel"
    tags = {schema.DEPLOY_LOCATION: res.location, schema.DEPLOY_ARTIFACT: served, **lite.tags}
    with registry.versions.exclusive(spec, f"deploy v{version}"):  # labels change one writer at a time
        refuse_lost_store(settings, registry, spec, "before deploying")
        labels = _labels(settings, spec)
        if labels.get(STABLE) == int(version):  # a rerun after verify: it serves already
            tags[schema.DEPLOY_LABEL] = STABLE
        else:  # served beside stable, which keeps serving the previous version until the check passes
            labels = _serve_beside(settings, spec, int(version))
            if labels.get(CANARY) == int(version):
                tags[schema.DEPLOY_LABEL] = CANARY
    registry.versions.tag(spec, version, tags)
    return Deployment(version=version, location=res.location, created=res.created, labels=labels)


def _sweep(settings: Settings, spec: DatasetSpec) -> None:
    """What deploys killed half way left: this host's scratch folders, and version folders of
    the store an upload was cut off in (see ``modelstore.sweep_partial``)."""
    from retrainer import storage

    storage.sweep_scratch()
    modelstore.sweep_partial(settings.model_store, spec.model_name, settings.s3_endpoint_url)


class ModelStoreLostError(Refused, RuntimeError):
    """The model store no longer holds what the registry says serves (its config or a version):
    nothing is written over it and nothing moves in the registry until somebody restores it."""


def refuse_lost_store(
    settings: Settings, registry: Registry, spec: DatasetSpec, then: str, deployed: str | None = None
) -> None:
    """Raise ModelStoreLostError, with its remedy, when the store lost what the registry says it
    serves: a missing ``models.config`` would otherwise be read as empty, so that every label
    vanishes unnoticed, a check through it fails as if the model were bad, and a rollback writes
    a config serving one version over the loss. ``deployed``: a version deployed to it since."""
    lost = _lost(settings, registry, spec, deployed)
    if lost is None:
        return
    last = registry.versions.alias(spec, CHAMPION) or deployed or "N"
    raise ModelStoreLostError(
        f"{lost}: the store lost its state. Restore it, or serve v{last} again with rollback_model "
        f"(version {last}), {then}"
    )


def _lost(settings: Settings, registry: Registry, spec: DatasetSpec, deployed: str | None) -> str | None:
    """What the store lost, in words, or None while it holds everything it should."""
    store, url, model = settings.model_store, settings.s3_endpoint_url, spec.model_name
    config = f"{store}/{modelstore.CONFIG_NAME}"
    entry = modelstore.read_config(store, url).get(model)
    if entry is None:
        served = sorted(int(mv.version) for mv in registry.versions.search(spec, {schema.DEPLOY_LABEL: STABLE}))
        if served:  # something served as stable before: the entry cannot just be gone
            return f"{config} has no entry for {model}, but versions {served} served as stable before"
        if deployed is not None:
            return f"{config} has no entry for {model}, but v{deployed} was deployed to it"
        return None
    wanted = set(entry.served()) | ({int(deployed)} if deployed is not None else set())
    gone = sorted(v for v in wanted if not modelstore.has_version(store, model, v, url))
    if gone:
        where = ", ".join(modelstore.version_location(store, model, v) for v in gone)
        versions = ", ".join(f"v{v}" for v in gone)
        return f"{store} holds no complete {versions} of {model} ({where} without {modelstore.SAVED_MODEL})"
    return None


def _serve_beside(settings: Settings, spec: DatasetSpec, version: int) -> dict[str, int]:
    """Load ``version`` beside what serves, then (spec ``deploy.canary``) label it ``canary``
    once the server clients use has it."""
    from retrainer.serving import postdeploy

    store, url = settings.model_store, settings.s3_endpoint_url
    modelstore.load_version(store, spec.model_name, version, url)
    faults.point("deploy:loaded")
    if not spec.deploy.canary:
        return _labels(settings, spec)
    return modelstore.set_label(store, spec.model_name, CANARY, version, url, postdeploy.waiter(settings, spec))


def _drop_canary(settings: Settings, spec: DatasetSpec, label: str | None) -> dict[str, int]:
    """The check is over: no ``canary`` label, and only labelled versions served."""
    if label:
        modelstore.clear_label(settings.model_store, spec.model_name, CANARY, settings.s3_endpoint_url)
    modelstore.unload_unlabelled(settings.model_store, spec.model_name, settings.s3_endpoint_url)
    return _labels(settings, spec)


@dataclass(frozen=True)
class TfliteModel:
    blob: bytes
    location: str  # beside the store: <store>/<model>/tflite/<version>.tflite
    tags: dict[str, str]
    serve: bool  # the spec asks for it and it scores within deploy.tflite_max_change


def _tflite(settings: Settings, spec: DatasetSpec, plan: TrainingPlan, version: str, model: Any) -> TfliteModel:
    """The version's TFLite model and what it costs: size against the SavedModel, and the gate
    metric on the holdout against the full model; served when the spec asks and it is within tolerance."""
    from retrainer.model import evaluation, training
    from retrainer.serving import export

    blob, saved_size = export.convert_tflite(model)
    holdout = training.labelled(read_plan(settings, spec, plan, plan.holdout_periods), spec)
    y = training.target_array(holdout, spec)
    metric = spec.gate.metric
    full = evaluation.metrics(spec.target.task, y, training.predict(model, holdout, spec))[metric]
    lite = evaluation.metrics(spec.target.task, y, export.tflite_predictions(blob, holdout, spec))[metric]
    change = abs(lite - full) / abs(full) if full else abs(lite - full)
    serve = spec.deploy.tflite and change <= spec.deploy.tflite_max_change
    said = evaluation.worse_by(evaluation.relative_change(lite, full, spec.gate.higher_is_better), 2)
    why = "served" if serve else f"not served: deploy.tflite {spec.deploy.tflite}, {said} than the full model"
    log.info(
        "TFLite v%s: %d bytes (%.2fx the SavedModel), %s %.4g vs %.4g; %s",
        version,
        len(blob),
        len(blob) / saved_size,
        metric,
        lite,
        full,
        why,
    )
    location = export.tflite_location(settings, spec, version)
    return TfliteModel(blob, location, schema.tflite_tags(location, len(blob), saved_size, metric, lite, full), serve)


def verify_deployment(settings: Settings, plan: TrainingPlan, deployed: Deployment) -> Verification:
    """The check after a deploy, through a model server: health, predictions equal to the
    registry model's on holdout rows, latency. Passed: ``stable`` moves to the version (only
    while it is the champion: a rerun of an old run must not move the label back) and the
    ``canary`` label is dropped. Failed: ``canary`` is dropped and DeployCheckError raised. A store
    that lost its state (before the check or during it) is no verdict on the model:
    ModelStoreLostError, and nothing changes in the registry or the store.
    A version folder that serves its TFLite model (``deploy.tflite``) is checked against the
    TFLite model's answers."""
    from retrainer.model import training
    from retrainer.serving import export, postdeploy

    spec = settings.load_spec(plan.dataset)
    registry = Registry(settings)
    version = deployed.version
    lost = "then deploy again (a check through it would blame the model; nothing in the registry moved)"
    refuse_lost_store(settings, registry, spec, lost, version)
    sample = read_plan(settings, spec, plan, plan.holdout_periods).iloc[: spec.deploy.check_rows]
    lite = export.served_tflite(settings, deployed.location)  # the folder serves its TFLite model
    if lite is None:
        expected = training.predict(registry.models.load_keras(spec, version), sample, spec)
    else:
        expected = export.tflite_predictions(lite, sample, spec)
    labels = _labels(settings, spec)
    label = CANARY if labels.get(CANARY) == int(version) else None
    try:
        with postdeploy.endpoint(settings, spec, version, labels) as url:
            result = postdeploy.check(url, spec, version, sample, expected, label)
    except postdeploy.DeployCheckError as exc:
        refuse_lost_store(settings, registry, spec, lost, version)  # lost while the check ran: not the model's fault
        with registry.versions.exclusive(spec, f"verify v{version} failed"):
            _drop_canary(settings, spec, label)
        registry.versions.tag(spec, version, schema.failed_check_tags(str(exc)))
        raise
    tags = schema.verified_tags(result)
    if not settings.serving_url:  # a server started for the check and gone since: no link to keep
        tags[schema.DEPLOY_CHECK_ENDPOINT] = f"the embedded model server, started for the check: {result.route}"
    with registry.versions.exclusive(spec, f"verify v{version}"):  # stable moves only while it is the champion
        if registry.versions.alias(spec, CHAMPION) == version:
            labels = modelstore.set_label(
                settings.model_store, spec.model_name, STABLE, int(version), settings.s3_endpoint_url
            )
            tags[schema.DEPLOY_LABEL] = STABLE
            faults.point("verify:stable")
        else:
            log.warning("v%s is no longer the champion; the stable label stays at %s", version, labels.get(STABLE))
        labels = _drop_canary(settings, spec, label)
    registry.versions.tag(spec, version, tags)
    log.info("verified %s: labels now %s", deployed.location, labels)
    return Verification(version=version, location=deployed.location, labels=labels, check=result)
