"""How models of a dataset are trained, judged and watched: the spec's ``training``, ``gate``
and ``drift`` sections."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from retrainer.spec.columns import Feature
from retrainer.spec.fields import Fields

#: metrics where a larger value is better; every other metric is "lower is better"
HIGHER_IS_BETTER = frozenset({"auc", "accuracy", "macro_f1"})
REGRESSION_METRICS = frozenset({"rmse", "mae"})
CLASSIFICATION_METRICS = frozenset({"log_loss", "auc", "accuracy"})
MULTICLASS_METRICS = frozenset({"log_loss", "accuracy", "macro_f1"})
#: the metrics a gate may judge by, per task
TASK_METRICS = {
    "regression": REGRESSION_METRICS,
    "classification": CLASSIFICATION_METRICS,
    "multiclass": MULTICLASS_METRICS,
}
#: keys of ``training`` that are not TrainingConfig's (how the model is trained) but when it is
TRAINING_SCHEDULE_KEYS = ("every",)
DRIFT_METHODS = ("ks", "wasserstein", "psi", "chisquare", "jensenshannon")
DRIFT_KEYS = frozenset(
    {
        "drift_share",
        "null_rate_delta",
        "weights",
        "features",
        "target",
        "prediction",
        "performance_drop",
        "require_performance_drop",
        "cooldown_hours",
    }
)


@dataclass(frozen=True)
class TrainingConfig:
    window_periods: int = 6
    holdout_periods: int = 1
    validation_fraction: float = 0.15
    epochs: int = 40
    batch_size: int = 128
    learning_rate: float = 0.005
    hidden_units: tuple[int, ...] = (64, 32)
    patience: int = 5
    seed: int = 42


@dataclass(frozen=True)
class GateConfig:
    metric: str
    baseline_margin: float = 0.1  # candidate must beat the naive baseline by this fraction
    champion_margin: float = 0.0  # ... and the champion by this fraction
    slices: tuple[str, ...] = ()  # categorical features whose values are compared one by one
    max_slice_regression: float = 0.2  # no slice may be worse than the champion by more than this
    min_slice_rows: int = 30  # slices with fewer holdout rows are shown but not judged

    @property
    def higher_is_better(self) -> bool:
        return self.metric in HIGHER_IS_BETTER


@dataclass(frozen=True)
class DriftTest:
    method: str | None = None  # None: chosen by sample size
    threshold: float | None = None  # None: the method's default


@dataclass(frozen=True)
class DriftConfig:
    """When new data counts as drifted, and what starts a retraining (spec section ``drift``)."""

    drift_share: float = 0.5  # share of drifted features (weighted) that makes the dataset drift
    null_rate_delta: float = 0.1  # a rise of a feature's missing rate by more than this drifts it
    weights: tuple[tuple[str, float], ...] = ()
    features: tuple[tuple[str, DriftTest], ...] = ()
    target: DriftTest = DriftTest()
    prediction: DriftTest = DriftTest()
    performance_drop: float = 0.1  # relative worsening of the gate metric that counts as a drop
    require_performance_drop: bool = False  # retrain only on drift AND a performance drop
    cooldown_hours: float = 0.0  # no new drift-triggered retraining this soon after the last one

    def feature_test(self, name: str) -> DriftTest:
        return dict(self.features).get(name, DriftTest())


def read_training(f: Fields, raw: dict[str, Any]) -> TrainingConfig:
    """``training`` without its schedule keys (``every``, read by ``dataset``)."""
    defaults = TrainingConfig()
    values: dict[str, Any] = {}
    f.known("training", raw, {*TrainingConfig.__dataclass_fields__, *TRAINING_SCHEDULE_KEYS})
    for key, value in raw.items():
        if key in TRAINING_SCHEDULE_KEYS:
            continue
        default = getattr(defaults, key)
        if isinstance(default, tuple):
            if not isinstance(value, list) or not all(isinstance(u, int) and u > 0 for u in value):
                raise f.error(f"training.{key}", f"must be a list of positive integers, got {value!r}")
            value = tuple(value)
        elif isinstance(value, bool) or not isinstance(value, (int, float)):
            raise f.error(f"training.{key}", f"must be a number, got {value!r}")
        elif isinstance(default, int) and not isinstance(value, int):
            raise f.error(f"training.{key}", f"must be an integer, got {value!r}")
        values[key] = value
    training = TrainingConfig(**values)
    if training.window_periods < 1 or training.holdout_periods < 1:
        raise f.error("training.window_periods", "window and holdout must be >= 1")
    return training


def read_gate(f: Fields, raw: dict[str, Any], task: str, features: tuple[Feature, ...]) -> GateConfig:
    f.known("gate", raw, GateConfig.__dataclass_fields__)
    metric = str(raw.get("metric", "rmse" if task == "regression" else "log_loss"))
    allowed = TASK_METRICS[task]
    if metric not in allowed:
        raise f.error("gate.metric", f"'{metric}' is not one of {sorted(allowed)} for {task}")
    slices = raw.get("slices") or []
    types = {feature.name: feature.type for feature in features}
    if not isinstance(slices, list):
        raise f.error("gate.slices", f"must list categorical features, got {slices!r}")
    unknown = [s for s in slices if s not in types]
    if unknown:
        raise f.error("gate.slices", f"{unknown} are not features of this spec (features: {', '.join(types)})")
    numeric = [s for s in slices if types[s] != "categorical"]
    if numeric:
        raise f.error("gate.slices", f"{numeric} are numeric: slices are categorical features, compared value by value")
    return GateConfig(
        metric=metric,
        baseline_margin=f.number("gate.baseline_margin", raw.get("baseline_margin", 0.1)),
        champion_margin=f.number("gate.champion_margin", raw.get("champion_margin", 0.0)),
        slices=tuple(slices),
        max_slice_regression=f.unit("gate.max_slice_regression", raw.get("max_slice_regression", 0.2), None),
        min_slice_rows=f.integer("gate.min_slice_rows", raw.get("min_slice_rows", 30), 1),
    )


def read_drift(f: Fields, raw: dict[str, Any], feature_names: set[str]) -> DriftConfig:
    f.known("drift", raw, DRIFT_KEYS)
    for section in ("weights", "features"):
        value = raw.get(section) or {}
        if not isinstance(value, dict):
            raise f.error(f"drift.{section}", "must be a mapping of feature names")
        for fname in value:
            if fname not in feature_names:
                raise f.error(f"drift.{section}.{fname}", "is not a feature of this spec")
    return DriftConfig(
        drift_share=f.unit("drift.drift_share", raw.get("drift_share", 0.5)),
        null_rate_delta=f.unit("drift.null_rate_delta", raw.get("null_rate_delta", 0.1)),
        weights=tuple((k, f.unit(f"drift.weights.{k}", v, None)) for k, v in (raw.get("weights") or {}).items()),
        features=tuple((k, _drift_test(f, f"drift.features.{k}", v)) for k, v in (raw.get("features") or {}).items()),
        target=_drift_test(f, "drift.target", raw.get("target")),
        prediction=_drift_test(f, "drift.prediction", raw.get("prediction")),
        performance_drop=f.unit("drift.performance_drop", raw.get("performance_drop", 0.1), None),
        require_performance_drop=f.flag("drift.require_performance_drop", raw.get("require_performance_drop", False)),
        cooldown_hours=f.unit("drift.cooldown_hours", raw.get("cooldown_hours", 0.0), None),
    )


def _drift_test(f: Fields, name: str, raw: Any) -> DriftTest:
    if raw is None:
        return DriftTest()
    if not isinstance(raw, dict) or set(raw) - {"method", "threshold"}:
        raise f.error(name, "must be a mapping with 'method' and/or 'threshold'")
    method = raw.get("method")
    if method is not None and method not in DRIFT_METHODS:
        raise f.error(f"{name}.method", f"must be one of {list(DRIFT_METHODS)}, got {method!r}")
    threshold = raw.get("threshold")
    return DriftTest(method, None if threshold is None else f.unit(f"{name}.threshold", threshold, None))
