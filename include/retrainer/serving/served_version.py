"""One version as the model server serves it: its inputs, and one call on rows of them.

A version folder of the model store holds a SavedModel (``saved_model.pb``, its
``serving_default`` signature over raw features). When it also holds ``model.tflite`` (the
deploy writes it for a spec with ``deploy.tflite`` whose quantized model scores within the
spec's tolerance), the TFLite model is served instead, as TensorFlow Serving does with
``--prefer_tflite_model``. Both take the same inputs (one array per feature, a row each) and
give the same output layout.
"""

from __future__ import annotations

import threading
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from retrainer.serving.batching import Call
from retrainer.serving.modelstore import SIGNATURE, TFLITE_MODEL

SAVEDMODEL = "savedmodel"
TFLITE = "tflite"


@dataclass
class ServedVersion:
    inputs: dict[str, Any]  # input name -> numpy dtype (object for strings)
    call: Call
    artifact: str  # SAVEDMODEL or TFLITE
    keep: Any = field(default=None, repr=False)  # what the call needs kept alive

    def warm(self) -> None:
        """One call on one row of zeros (TensorFlow traces, TFLite allocates, on the first call)."""
        self.call({n: np.array([""], dtype=object) if d is object else np.zeros(1, d) for n, d in self.inputs.items()})


def load(folder: Path) -> ServedVersion:
    """The version in ``folder``: its TFLite model if there is one, else its SavedModel."""
    if (folder / TFLITE_MODEL).is_file():
        return _tflite(folder / TFLITE_MODEL)
    return _saved_model(folder)


def _saved_model(folder: Path) -> ServedVersion:
    import tensorflow as tf

    loaded = tf.saved_model.load(str(folder))
    fn = loaded.signatures[SIGNATURE]
    specs = fn.structured_input_signature[1]
    inputs = {n: object if s.dtype == tf.string else s.dtype.as_numpy_dtype for n, s in specs.items()}

    def call(arrays: dict[str, Any]) -> Any:
        return next(iter(fn(**{n: tf.constant(a.reshape(-1, 1)) for n, a in arrays.items()}).values())).numpy()

    return ServedVersion(inputs, call, SAVEDMODEL, keep=(loaded, fn))


def _tflite(path: Path) -> ServedVersion:
    import tensorflow as tf

    with warnings.catch_warnings():  # tf.lite.Interpreter announces its move to ai-edge-litert
        warnings.simplefilter("ignore")
        interpreter = tf.lite.Interpreter(model_path=str(path))
    runner = interpreter.get_signature_runner(SIGNATURE)
    details = runner.get_input_details()
    inputs = {n: object if d["dtype"] in (np.bytes_, np.object_) else d["dtype"] for n, d in details.items()}
    lock = threading.Lock()  # an interpreter runs one call at a time

    def call(arrays: dict[str, Any]) -> Any:
        feed = {n: (a.astype(bytes) if a.dtype == object else a).reshape(-1, 1) for n, a in arrays.items()}
        with lock:
            out = runner(**feed)
        return np.asarray(next(iter(out.values())))

    return ServedVersion(inputs, call, TFLITE, keep=(interpreter, runner))
