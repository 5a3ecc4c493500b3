"""Deployment: export the champion as a SavedModel into TensorFlow Serving's layout.

``<model store>/<model name>/<version>/`` (``retrainer.serving.modelstore``) holds a SavedModel whose
``serving_default`` signature takes raw features. A version is exported to a scratch folder
and published in one step (``storage.publish_dir``): TensorFlow Serving never sees half a
model, and a version that is already there is never written again. ``verify`` loads the
version back from the store and compares its predictions with the registry model's on the
spec's check rows, within the spec's tolerance (``compare``, which the check through a
model server uses too).
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from retrainer import storage
from retrainer.model.training import feature_arrays, predict, shaped
from retrainer.serving import modelstore
from retrainer.serving.modelstore import SAVED_MODEL, SIGNATURE
from retrainer.settings import Settings
from retrainer.spec.dataset import DatasetSpec

log = logging.getLogger(__name__)


class DeployVerificationError(RuntimeError):
    """The deployed model does not answer like the registry model."""


@dataclass(frozen=True)
class DeployResult:
    location: str
    created: bool


def version_location(settings: Settings, spec: DatasetSpec, version: str) -> str:
    return modelstore.version_location(settings.model_store, spec.model_name, version)


def compare(served: np.ndarray, expected: np.ndarray, tolerance: float) -> tuple[float, float]:
    """(largest |served - expected|, what is allowed): ``tolerance`` relative to the predictions'
    scale, at least 1. Equal models agree within float noise; a different model does not."""
    allowed = tolerance * max(1.0, float(np.max(np.abs(expected))))
    return float(np.max(np.abs(np.asarray(served, dtype=float) - expected))), allowed


def export_saved_model(model: Any, out_dir: Path, spec: DatasetSpec | None = None) -> Path:
    """Write ``model`` as a SavedModel with a ``serving_default`` signature over raw features,
    and, given its spec, the request contract the model server checks requests against."""
    from retrainer.serving import request_contract

    model.export(str(out_dir), format="tf_saved_model", verbose=False)
    if spec is not None:
        request_contract.write(spec, out_dir)
    return out_dir


def deploy(
    settings: Settings, spec: DatasetSpec, version: str, model: Any, extra: dict[str, bytes] | None = None
) -> DeployResult:
    """Publish ``model`` as the version's folder, with ``extra`` files in it (``model.tflite``)."""
    location = version_location(settings, spec, version)
    if storage.exists(storage.join(location, SAVED_MODEL), settings.s3_endpoint_url):
        log.info("%s v%s is already in the model store at %s", spec.model_name, version, location)
        return DeployResult(location, created=False)
    scratch = storage.temp_dir("retrainer-export-")
    try:
        export_saved_model(model, scratch / "model", spec)
        for name, blob in (extra or {}).items():
            (scratch / "model" / name).write_bytes(blob)
        created = storage.publish_dir(scratch / "model", location, SAVED_MODEL, settings.s3_endpoint_url)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    log.info("published %s v%s at %s", spec.model_name, version, location)
    return DeployResult(location, created)


def serve_predictions(location: str, df: pd.DataFrame, spec: DatasetSpec, endpoint_url: str | None) -> np.ndarray:
    """Predictions of the SavedModel at ``location`` through its serving signature."""
    import tensorflow as tf

    scratch = storage.temp_dir("retrainer-verify-")
    try:
        local = storage.download_dir(location, scratch / "model", endpoint_url)
        fn = tf.saved_model.load(str(local)).signatures[SIGNATURE]
        inputs = {k: tf.constant(v) for k, v in feature_arrays(df, spec).items()}
        outputs = fn(**inputs)
        return np.asarray(next(iter(outputs.values()))).reshape(-1)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def verify(settings: Settings, spec: DatasetSpec, location: str, registry_model: Any, sample: pd.DataFrame) -> float:
    """Max absolute difference between the store's and the registry's predictions on ``sample``;
    raises DeployVerificationError above the spec's ``deploy.tolerance``."""
    served = serve_predictions(location, sample, spec, settings.s3_endpoint_url)
    diff, allowed = compare(served, predict(registry_model, sample, spec), spec.deploy.tolerance)
    if not diff <= allowed:
        raise DeployVerificationError(
            f"{location}: served predictions differ from the registry model by {diff:.6g} on "
            f"{len(sample)} sample rows (allowed {allowed:.3g})"
        )
    return diff


# ------------------------------------------------------------------------------ TFLite


def tflite_location(settings: Settings, spec: DatasetSpec, version: str) -> str:
    return modelstore.tflite_location(settings.model_store, spec.model_name, version)


def convert_tflite(model: Any) -> tuple[bytes, int]:
    """A dynamic-range quantized TFLite model (with TF ops for the string lookups), and the
    size of the SavedModel it was converted from, in bytes."""
    import tensorflow as tf

    scratch = storage.temp_dir("retrainer-tflite-")
    try:
        saved = export_saved_model(model, scratch / "model")
        saved_size = sum(p.stat().st_size for p in saved.rglob("*") if p.is_file())
        converter = tf.lite.TFLiteConverter.from_saved_model(str(saved))
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS, tf.lite.OpsSet.SELECT_TF_OPS]
        return bytes(converter.convert()), saved_size
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def served_tflite(settings: Settings, location: str) -> bytes | None:
    """The TFLite model the version folder at ``location`` serves (``model.tflite``), if any."""
    return storage.read_bytes(storage.join(location, modelstore.TFLITE_MODEL), settings.s3_endpoint_url)


def tflite_to_republish(settings: Settings, spec: DatasetSpec, version: str, artifact: str | None) -> dict[str, bytes]:
    """What a version folder published again (a rollback to a version whose folder is gone)
    holds besides the SavedModel: the TFLite model the version served (``artifact``, its
    ``deploy.artifact`` tag, is ``tflite``), as kept beside the store at its deploy. Without that
    copy the folder serves its SavedModel, and the caller records so."""
    if artifact != "tflite":
        return {}
    blob = storage.read_bytes(tflite_location(settings, spec, version), settings.s3_endpoint_url)
    if blob is None:
        log.warning(
            "%s v%s served its TFLite model, but no copy is kept at %s: its folder serves the SavedModel",
            spec.model_name,
            version,
            tflite_location(settings, spec, version),
        )
        return {}
    return {modelstore.TFLITE_MODEL: blob}


def served_artifact(settings: Settings, spec: DatasetSpec, version: str, location: str) -> str:
    """What the version folder at ``location`` serves: ``tflite`` (its ``model.tflite``, which
    must be the TFLite model deployed for the version, kept beside the store) or ``savedmodel``."""
    lite = served_tflite(settings, location)
    if lite is None:
        return "savedmodel"
    kept = storage.read_bytes(tflite_location(settings, spec, version), settings.s3_endpoint_url)
    if kept is not None and kept != lite:
        raise DeployVerificationError(
            f"{location}: its {modelstore.TFLITE_MODEL} is not the TFLite model deployed for v{version} "
            f"(kept at {tflite_location(settings, spec, version)})"
        )
    return "tflite"


def tflite_predictions(blob: bytes, df: pd.DataFrame, spec: DatasetSpec) -> np.ndarray:
    import warnings

    import tensorflow as tf

    with warnings.catch_warnings():  # tf.lite.Interpreter announces its move to ai-edge-litert
        warnings.simplefilter("ignore")
        runner = tf.lite.Interpreter(model_content=blob).get_signature_runner(SIGNATURE)
    inputs = {
        k: v.astype(bytes) if v.dtype == object else v.astype(np.float32) for k, v in feature_arrays(df, spec).items()
    }
    return shaped(next(iter(runner(**inputs).values())), spec)
