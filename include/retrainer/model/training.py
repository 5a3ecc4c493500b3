"""Training: a Keras model whose preprocessing lives inside the model, fed by tf.data.

The model takes raw features (one named input per feature: float32 for numeric, string
for categorical), normalizes numeric inputs with statistics adapted on the training
window and one-hot encodes categories through ``StringLookup`` layers built from the
spec's vocabulary. A regression head rescales to the target's units; a classification
head outputs the positive-class probability, a multiclass head one probability per class
(in the order of the spec's ``target.classes``). So what trains is what serves.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from retrainer import schema
from retrainer.spec.columns import Feature
from retrainer.spec.dataset import DatasetSpec
from retrainer.spec.learning import TrainingConfig

if TYPE_CHECKING:
    import keras
    import tensorflow as tf

log = logging.getLogger(__name__)

MISSING = ""  # how a missing category reaches the model (it maps to the OOV slot)


def library_versions() -> list[str]:
    """The training stack's installed versions as pins (``tensorflow-cpu==2.21.0``, ...): the
    pip requirements logged with a model, and what a reproduction ran with."""
    from importlib import metadata

    pins = []
    for dist in ("tensorflow-cpu", "tensorflow", "keras"):
        try:
            pins.append(f"{dist}=={metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            continue
    return pins


def feature_arrays(df: pd.DataFrame, spec: DatasetSpec) -> dict[str, np.ndarray]:
    """Raw feature columns as the model's inputs expect them (shape [n, 1])."""
    out: dict[str, np.ndarray] = {}
    for f in spec.features:
        col = df[f.name]
        if f.type == "numeric":
            arr = pd.to_numeric(col, errors="raise").to_numpy(dtype="float32")
            if f.impute is None and np.isnan(arr).any():
                raise ValueError(
                    f"numeric feature '{f.name}' has missing values and its spec says no 'impute' to fill them"
                )
        else:
            arr = col.astype("object").where(col.notna(), MISSING).astype(str).to_numpy(dtype=object)
        out[f.name] = arr.reshape(-1, 1)
    return out


def labelled(df: pd.DataFrame, spec: DatasetSpec) -> pd.DataFrame:
    """The rows whose target is known: unlabelled rows (as many as ``target.max_null_rate``
    lets a batch have) neither train a model nor judge one."""
    known = df[spec.target.column].notna()
    return df if bool(known.all()) else df[known]


def target_array(df: pd.DataFrame, spec: DatasetSpec) -> np.ndarray:
    """What the model learns: the target's value (regression), 1.0 for the positive class
    (classification), the class's index in ``target.classes`` (multiclass)."""
    col = df[spec.target.column]
    if spec.target.task == "classification":
        return (col.astype(str) == str(spec.target.positive)).to_numpy(dtype="float32")
    if spec.target.task == "multiclass":
        index = {c: i for i, c in enumerate(spec.target.classes)}
        coded = col.astype(str).map(index)
        if coded.isna().any():
            unknown = sorted(set(col[coded.isna()].astype(str)))[:5]
            raise ValueError(f"target '{spec.target.column}' holds values not among its classes: {unknown}")
        return coded.to_numpy(dtype="float32")
    return col.to_numpy(dtype="float32")


def make_dataset(df: pd.DataFrame, spec: DatasetSpec, cfg: TrainingConfig, shuffle: bool) -> tf.data.Dataset:
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices((feature_arrays(df, spec), target_array(df, spec)))
    if shuffle:
        ds = ds.shuffle(len(df), seed=cfg.seed, reshuffle_each_iteration=True)
    return ds.batch(cfg.batch_size).prefetch(tf.data.AUTOTUNE)


def fill_value(feature: Feature, values: np.ndarray) -> float:
    """What the model puts in place of a missing value of ``feature``, from the training rows."""
    if feature.impute == "constant":
        return float(feature.fill_value or 0.0)
    present = values[~np.isnan(values)]
    if present.size == 0:
        raise ValueError(f"numeric feature '{feature.name}' is missing on every training row; nothing to impute from")
    return float(np.mean(present) if feature.impute == "mean" else np.median(present))


def window_fill(feature: Feature, values: np.ndarray) -> float:
    """What the model fills a missing value of ``feature`` with: ``fill_value`` of the training
    rows, or, when the feature is missing on every one of them (it then enters the model as a
    constant, see ``constant_features``), the spec's constant (0 for mean and median)."""
    if np.isnan(values).all() and feature.impute != "constant":
        return 0.0
    return fill_value(feature, values)


def constant_features(spec: DatasetSpec, train_df: pd.DataFrame) -> list[str]:
    """The numeric features with fewer than two distinct values in the training rows (missing
    values left out; all missing counts as constant). Nothing can be learned from them, and a
    normalization adapted on them has variance 0: it would divide any other value by Keras'
    epsilon (1e-7) and blow the predictions up on data where they vary. They enter the model
    as 0 instead (``build_model``), and the run records them."""
    out = []
    for f in spec.numeric_features:
        values = pd.to_numeric(train_df[f.name], errors="coerce").to_numpy(dtype="float64")
        if np.unique(values[np.isfinite(values)]).size < 2:
            out.append(f.name)
    return out


def vocabulary(feature: Feature, train_df: pd.DataFrame) -> tuple[str, ...]:
    """The categories the model has a slot for: the spec's list, or (``categories: learn``) the
    ``max_categories`` most frequent values of the training rows, most frequent first (ties in
    text order, so the same window always learns the same vocabulary); every other value
    shares the out-of-vocabulary slot."""
    if not feature.learn_categories:
        return feature.categories
    col = train_df[feature.name]
    counts = col[col.notna()].astype(str).value_counts()
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return tuple(str(value) for value, _ in ranked[: feature.max_categories] if str(value) != MISSING)


def learned_categories(spec: DatasetSpec, train_df: pd.DataFrame) -> dict[str, str]:
    """For the run's params: what each learned vocabulary is, how much it covers."""
    out = {}
    for f in spec.categorical_features:
        if not f.learn_categories:
            continue
        vocab = vocabulary(f, train_df)
        col = train_df[f.name].dropna().astype(str)
        covered = float(col.isin(set(vocab)).mean()) if len(col) else 0.0
        out[schema.categories_param(f.name)] = (
            f"learned {len(vocab)} of {col.nunique()} values (max {f.max_categories}), {covered:.1%} of rows"
        )
    return out


def build_model(spec: DatasetSpec, train_df: pd.DataFrame, cfg: TrainingConfig) -> keras.Model:
    import keras

    inputs: dict[str, Any] = {}
    encoded = []
    constant = set(constant_features(spec, train_df))
    for f in spec.features:
        if f.type == "numeric":
            inp = keras.Input(shape=(1,), name=f.name, dtype="float32")
            values = train_df[f.name].to_numpy(dtype="float32").reshape(-1, 1)
            filled: Any = inp
            if f.impute is not None:  # inside the model: a served request is filled as training was
                fill = window_fill(f, values)
                filled = keras.ops.where(keras.ops.not_equal(inp, inp), keras.ops.full_like(inp, fill), inp)
                values = np.where(np.isnan(values), np.float32(fill), values)
            if f.name in constant:  # no variance to normalize by: it enters as 0, whatever it is later
                encoded.append(keras.layers.Rescaling(0.0, name=f"constant_{f.name}")(filled))
            else:
                norm = keras.layers.Normalization(name=f"norm_{f.name}")
                norm.adapt(values)
                encoded.append(norm(filled))
        else:
            inp = keras.Input(shape=(1,), name=f.name, dtype="string")
            lookup = keras.layers.StringLookup(
                vocabulary=list(vocabulary(f, train_df)),
                num_oov_indices=1,
                output_mode="one_hot",
                name=f"lookup_{f.name}",
            )
            encoded.append(lookup(inp))
        inputs[f.name] = inp
    x = keras.layers.Concatenate(name="features")(encoded)
    for i, units in enumerate(cfg.hidden_units):
        x = keras.layers.Dense(units, activation="relu", name=f"dense_{i}")(x)
    if spec.target.task == "classification":
        out = keras.layers.Dense(1, activation="sigmoid", name="probability")(x)
        loss: Any = "binary_crossentropy"
    elif spec.target.task == "multiclass":
        out = keras.layers.Dense(len(spec.target.classes), activation="softmax", name="probabilities")(x)
        loss = "sparse_categorical_crossentropy"
    else:
        y = target_array(train_df, spec)
        raw = keras.layers.Dense(1, name="standardized")(x)
        out = keras.layers.Rescaling(scale=float(y.std() or 1.0), offset=float(y.mean()), name="prediction")(raw)
        loss = "mse"
    model = keras.Model(inputs=inputs, outputs=out, name=f"{spec.name}_model")
    model.compile(optimizer=keras.optimizers.Adam(cfg.learning_rate), loss=loss)
    return model


@dataclass
class TrainResult:
    model: Any
    history: dict[str, list[float]]
    epochs_run: int
    n_train: int
    n_val: int
    n_unlabelled: int = 0  # rows of the window without a target, left out
    params: dict[str, Any] = field(default_factory=dict)


def split_train_val(df: pd.DataFrame, spec: DatasetSpec, fraction: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The last ``fraction`` of the window (in time) validates; the rest trains."""
    df = df.sort_values(spec.time_column, kind="stable")
    n_val = max(1, round(len(df) * fraction))
    return df.iloc[:-n_val], df.iloc[-n_val:]


def _progress(keras: Any, name: str, epochs: int) -> Any:
    """A line per epoch in the task log (loss and val_loss), so a long training shows where it is."""
    from retrainer import faults

    class Progress(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
            logs = logs or {}
            log.info(
                "%s: epoch %d/%d, loss %.4f, val_loss %.4f",
                name,
                epoch + 1,
                epochs,
                logs.get("loss", float("nan")),
                logs.get("val_loss", float("nan")),
            )
            faults.point("train:epoch")

    return Progress()


def train(train_window: pd.DataFrame, spec: DatasetSpec, cfg: TrainingConfig | None = None) -> TrainResult:
    """Train on a window (seeded, deterministic ops), early-stopping on its latest slice."""
    import keras
    import tensorflow as tf

    cfg = cfg or spec.training
    keras.utils.set_random_seed(cfg.seed)
    tf.config.experimental.enable_op_determinism()
    window = labelled(train_window, spec)
    if len(window) < len(train_window):
        log.info(
            "%s: %d unlabelled rows of %d left out of training",
            spec.name,
            len(train_window) - len(window),
            len(train_window),
        )
    train_df, val_df = split_train_val(window, spec, cfg.validation_fraction)
    if len(train_df) < 10:
        raise ValueError(f"training window of {spec.name} has only {len(train_df)} rows")
    model = build_model(spec, train_df, cfg)
    stop = keras.callbacks.EarlyStopping(patience=cfg.patience, restore_best_weights=True)
    hist = model.fit(
        make_dataset(train_df, spec, cfg, shuffle=True),
        validation_data=make_dataset(val_df, spec, cfg, shuffle=False),
        epochs=cfg.epochs,
        callbacks=[stop, _progress(keras, spec.name, cfg.epochs)],
        verbose=0,
    )
    history = {k: [float(v) for v in vals] for k, vals in hist.history.items()}
    log.info("trained %s: %d epochs, best val_loss %.4f", spec.name, len(history["loss"]), min(history["val_loss"]))
    return TrainResult(
        model=model,
        history=history,
        epochs_run=len(history["loss"]),
        n_train=len(train_df),
        n_val=len(val_df),
        n_unlabelled=len(train_window) - len(window),
        params=_run_params(spec, cfg, train_df),
    )


def _run_params(spec: DatasetSpec, cfg: TrainingConfig, train_df: pd.DataFrame) -> dict[str, Any]:
    """What a training run records as its params: the training config, how the model fills a
    missing value, the features constant in the window (entered as 0) and the learned vocabularies."""
    fills = {
        schema.impute_param(f.name): f"{f.impute} {window_fill(f, train_df[f.name].to_numpy(dtype='float32')):.6g}"
        for f in spec.numeric_features
        if f.impute is not None
    }
    constant = constant_features(spec, train_df)
    if constant:
        log.warning(
            "%s: %s constant in the training window: the model gives them no weight", spec.name, ", ".join(constant)
        )
    return {
        "window_periods": cfg.window_periods,
        "holdout_periods": cfg.holdout_periods,
        "epochs": cfg.epochs,
        "batch_size": cfg.batch_size,
        "learning_rate": cfg.learning_rate,
        "hidden_units": list(cfg.hidden_units),
        "patience": cfg.patience,
        "seed": cfg.seed,
        "validation_fraction": cfg.validation_fraction,
        **fills,
        schema.PARAM_CONSTANT_FEATURES: ", ".join(constant) or "none",
        **learned_categories(spec, train_df),
    }


def predict(model: Any, df: pd.DataFrame, spec: DatasetSpec) -> np.ndarray:
    """Predictions of a Keras model on raw rows: one value per row (regression, classification),
    one row of class probabilities per row (multiclass)."""
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices(feature_arrays(df, spec)).batch(1024)
    return shaped(model.predict(ds, verbose=0), spec)


def shaped(predictions: Any, spec: DatasetSpec) -> np.ndarray:
    """A model's raw outputs as :func:`predict` returns them: flat, or [rows, classes]."""
    out = np.asarray(predictions)
    if spec.target.task == "multiclass":
        return out.reshape(-1, len(spec.target.classes))
    return out.reshape(-1)
