"""Dataset specs: what a dataset is, read from its spec file.

A spec names the time column, the target and the task, the features with their types,
ranges and categories, and how to train, judge, review, deploy and watch models on it.
The pipeline knows nothing about a dataset beyond its spec, so a new dataset is a new spec
file. Where things live is apart, in ``retrainer.settings``.
"""

from __future__ import annotations

import codecs
import difflib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml

from retrainer.cadence import load_yaml
from retrainer.periods import FREQUENCIES, Frequency, retrain_every

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from retrainer.delivery import Limits

TaskType = Literal["regression", "classification", "multiclass"]
TASKS: tuple[str, ...] = ("regression", "classification", "multiclass")
FeatureType = Literal["numeric", "categorical"]

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
#: the keys a spec may have at the top level, in a target, a feature and ``rows``
TOP_LEVEL_KEYS = frozenset(
    {
        "name",
        "description",
        "model_name",
        "time_column",
        "time_format",
        "frequency",
        "target",
        "features",
        "unique_by",
        "rows",
        "training",
        "gate",
        "drift",
        "approval",
        "deploy",
        "ingest",
    }
)
TARGET_KEYS = frozenset({"column", "task", "min", "max", "positive", "classes", "max_null_rate"})
FEATURE_KEYS = frozenset(
    {"type", "min", "max", "categories", "max_categories", "max_null_rate", "max_unseen_rate", "impute", "fill_value"}
)
#: ``categories: learn``: a categorical feature's vocabulary comes from each training window
LEARN = "learn"
DEFAULT_MAX_CATEGORIES = 100
#: how a missing numeric value is filled, inside the model (so serving fills as training did)
IMPUTE = ("mean", "median", "constant")
ROWS_KEYS = frozenset({"min", "max"})
#: what YAML 1.1 reads an unquoted yes/no/on/off/true/false as
_YAML_BOOLEAN = (
    "is read as the boolean {value} (YAML takes unquoted yes, no, on, off, true and false as booleans); "
    'quote it, e.g. "No"'
)


class SpecError(ValueError):
    """A dataset spec is missing, malformed or inconsistent. Names the file and the field."""

    def __init__(self, path: Path | str, field_name: str, problem: str) -> None:
        self.path = str(path)
        self.field = field_name
        self.problem = problem
        super().__init__(f"{path}: field '{field_name}': {problem}")


@dataclass(frozen=True)
class Feature:
    name: str
    type: FeatureType
    min: float | None = None
    max: float | None = None
    categories: tuple[str, ...] = ()
    max_null_rate: float = 0.0
    max_unseen_rate: float = 0.0  # categorical: share of values outside the categories a batch may have
    impute: str | None = None  # numeric: how the model fills a missing value (mean, median, constant)
    fill_value: float | None = None  # impute: constant
    learn_categories: bool = False  # categorical: the vocabulary is learned from each training window
    max_categories: int = 0  # learn: at most this many, the most frequent (the rest share the unseen slot)


@dataclass(frozen=True)
class Target:
    column: str
    task: TaskType
    min: float | None = None
    max: float | None = None
    positive: str | None = None  # classification: the value that counts as the positive class
    classes: tuple[str, ...] = ()  # multiclass: the classes, in the order of the model's outputs
    max_null_rate: float = 0.0  # unlabelled rows a batch may have; they train and judge nothing


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


APPROVAL_POLICIES = ("auto", "review")


@dataclass(frozen=True)
class ApprovalConfig:
    """Who decides that a candidate that passed the gate goes to production (spec section ``approval``)."""

    policy: str = "auto"  # auto: the gate decides; review: a reviewer decides, in Airflow or in MLflow
    timeout_hours: float = 72.0  # review: no answer by then means rejected


@dataclass(frozen=True)
class DeployConfig:
    """The check after each deploy (spec section ``deploy``)."""

    canary: bool = True  # label a new version ``canary`` first; ``stable`` moves only after the check
    check_rows: int = 64  # holdout rows whose served predictions must equal the registry model's
    tolerance: float = 1e-3  # allowed |served - registry|, relative to the predictions' scale (at least 1)
    latency_requests: int = 50  # single-row requests timed through the server
    max_p99_ms: float = 250.0  # the check fails when their 99th percentile is slower
    tflite: bool = False  # serve the quantized TFLite model when it scores within tflite_max_change
    tflite_max_change: float = 0.01  # largest |relative change| of the gate metric on the holdout, TFLite vs full


#: what a column the spec does not name does to a delivery (``ingest.extra_columns``)
EXTRA_COLUMNS = ("reject", "keep", "drop")
#: the older name of ``ingest.extra_columns`` (values refuse|keep|drop), still read
OLD_EXTRA_COLUMNS_KEY = "unexpected_columns"
#: what a delivery of a period that is versioned already may do to it
REDELIVERY = ("reject", "replace", "append")
#: keys of ``training`` that are not TrainingConfig's (how the model is trained) but when it is
TRAINING_SCHEDULE_KEYS = ("every",)
#: how deliveries are read: by the file's extension (.parquet is Parquet, anything else CSV), or all as one
FORMATS = ("auto", "csv", "parquet")
#: the checks against the versioned data that ``ingest.checks`` may turn off (all on by default)
INGEST_CHECKS = ("constant_feature", "target_leak", "unit_change")


@dataclass(frozen=True)
class IngestConfig:
    """What a delivered batch may be (spec section ``ingest``); the checks in ``retrainer.delivery``
    and ``retrainer.batchchecks``."""

    other_columns: tuple[str, ...] = ()  # delivered and kept, never used as features
    extra_columns: str = "reject"  # a column the spec does not name: reject (quarantine), keep or drop it
    redelivery: str = "reject"  # a versioned period delivered again with other content: reject, replace or append
    max_file_mb: float = 512.0
    max_field_chars: int = 10_000
    redelivery_max_row_loss: float = 0.0  # a re-delivery may replace a versioned period losing at most this share
    max_scale_change: float = 10.0  # a numeric feature's spread this many times off the versioned data's: a unit change
    leak_correlation: float = 0.999  # a feature this correlated with (or equal to) the target is a leak
    encoding: str = "utf-8"  # of CSV deliveries (a Python codec: latin-1, cp1252, utf-16, ...)
    format: str = "auto"  # csv, parquet, or auto: by the file's extension
    checks: tuple[str, ...] = INGEST_CHECKS  # the checks against the versioned data that are on

    @property
    def limits(self) -> Limits:
        from retrainer.delivery import Limits

        return Limits(
            max_bytes=int(self.max_file_mb * 1024 * 1024),
            max_field_chars=self.max_field_chars,
            encoding=self.encoding,
            format=self.format,
        )

    def checks_on(self, check: str) -> bool:
        return check in self.checks


DRIFT_METHODS = ("ks", "wasserstein", "psi", "chisquare", "jensenshannon")


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


@dataclass(frozen=True)
class DatasetSpec:
    """What a dataset is: its time column, target, features and how to judge models on it."""

    name: str
    model_name: str
    time_column: str
    frequency: Frequency
    target: Target
    features: tuple[Feature, ...]
    min_rows: int
    max_rows: int | None
    training: TrainingConfig
    gate: GateConfig
    drift: DriftConfig = DriftConfig()
    approval: ApprovalConfig = ApprovalConfig()
    deploy: DeployConfig = DeployConfig()
    ingest: IngestConfig = IngestConfig()
    description: str = ""
    source_path: str = ""
    unique_by: tuple[str, ...] = ()  # the columns no two rows of a batch share; () = rows need not be unique
    time_format: str | None = None  # how deliveries spell a timestamp (strftime codes); None: ISO 8601
    training_every: str = ""  # training.every: hourly, daily, weekly, monthly ("": see retrain_every)

    @property
    def retrain_every(self) -> str:
        """How often scheduled runs retrain this dataset (``periods.retrain_every``)."""
        return retrain_every(self.frequency, self.training_every)

    @property
    def numeric_features(self) -> tuple[Feature, ...]:
        return tuple(f for f in self.features if f.type == "numeric")

    @property
    def categorical_features(self) -> tuple[Feature, ...]:
        return tuple(f for f in self.features if f.type == "categorical")

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features)

    @classmethod
    def load(cls, path: Path | str) -> DatasetSpec:
        path = Path(path)
        if not path.is_file():
            raise SpecError(path, "<file>", "spec file does not exist")
        try:
            raw = load_yaml(path.read_text())
        except yaml.YAMLError as exc:
            raise SpecError(path, "<file>", f"not valid YAML: {exc}") from exc
        if not isinstance(raw, dict):
            raise SpecError(path, "<file>", "top level must be a mapping")
        return cls.from_dict(raw, path)

    @classmethod
    def from_dict(cls, raw: dict[str, Any], path: Path | str = "<spec>") -> DatasetSpec:
        p = _SpecParser(raw, path)
        p.known("", raw, TOP_LEVEL_KEYS)
        name = p.string("name")
        target = p.target(p.mapping("target"))
        features = p.features(p.mapping("features"))
        time_column = p.string("time_column")
        if time_column in p.raw["features"] or target.column in p.raw["features"]:
            raise SpecError(path, "features", "must not contain the time column or the target")
        rows = p.rows(p.mapping("rows", required=False))
        training_raw = p.mapping("training", required=False)
        every = (
            str(p.choice("training.every", training_raw.get("every"), FREQUENCIES)) if "every" in training_raw else ""
        )
        training = p.training({k: v for k, v in training_raw.items() if k not in TRAINING_SCHEDULE_KEYS})
        if training.window_periods < 1 or training.holdout_periods < 1:
            raise SpecError(path, "training.window_periods", "window and holdout must be >= 1")
        frequency = p.choice("frequency", raw.get("frequency", "monthly"), FREQUENCIES)
        if every and FREQUENCIES.index(every) < FREQUENCIES.index(frequency):
            raise SpecError(
                path,
                "training.every",
                f"{every} retraining of {frequency} data would find no new"
                f" period most times: at most as often as the data arrives ({frequency})",
            )
        columns = {time_column, target.column, *p.raw["features"]}
        ingest = p.ingest(p.mapping("ingest", required=False), columns)
        return cls(
            name=name,
            model_name=str(raw.get("model_name") or f"{name}_model"),
            time_column=time_column,
            frequency=frequency,  # type: ignore[arg-type]
            target=target,
            features=features,
            min_rows=rows[0],
            max_rows=rows[1],
            training=training,
            gate=p.gate(p.mapping("gate", required=False), target.task, features),
            drift=p.drift(p.mapping("drift", required=False), {f.name for f in features}),
            approval=p.approval(p.mapping("approval", required=False)),
            deploy=p.deploy(p.mapping("deploy", required=False)),
            ingest=ingest,
            description=str(raw.get("description", "")),
            source_path=str(path),
            unique_by=p.unique_by(raw.get("unique_by", [time_column]), {*columns, *ingest.other_columns}),
            time_format=p.time_format(raw.get("time_format")),
            training_every=every,
        )


class _SpecParser:
    """Small helpers that turn a raw mapping into typed values or a SpecError naming the field."""

    def __init__(self, raw: dict[str, Any], path: Path | str) -> None:
        self.raw = raw
        self.path = path

    def string(self, name: str, value: Any = None) -> str:
        """``value`` if given (nested fields), else the top-level field ``name``."""
        if value is None and "." not in name:
            value = self.raw.get(name)
        if not isinstance(value, str) or not value:
            raise SpecError(self.path, name, f"must be a non-empty string, got {value!r}")
        return value

    def mapping(self, name: str, required: bool = True) -> dict[str, Any]:
        value = self.raw.get(name)
        if value is None and not required:
            return {}
        if not isinstance(value, dict):
            raise SpecError(self.path, name, f"must be a mapping, got {type(value).__name__}")
        return value

    def choice(self, name: str, value: Any, options: tuple[str, ...]) -> str:
        if value not in options:
            raise SpecError(self.path, name, f"must be one of {list(options)}, got {value!r}")
        return str(value)

    def optional_number(self, name: str, value: Any) -> float | None:
        return None if value is None else self.number(name, value)

    def number(self, name: str, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SpecError(self.path, name, f"must be a number, got {value!r}")
        return float(value)

    def time_format(self, value: Any) -> str | None:
        """A strftime format that spells at least a whole date (it reads back what it wrote)."""
        if value is None:
            return None
        from datetime import datetime

        sample = datetime(2011, 3, 14, 15, 9, 26)
        try:
            back = datetime.strptime(sample.strftime(value), value) if isinstance(value, str) else None
        except ValueError:
            back = None
        if back is None or back.date() != sample.date():
            raise SpecError(
                self.path,
                "time_format",
                f"{value!r} does not spell a date that reads back (strftime codes, e.g. '%d/%m/%Y %H:%M')",
            )
        return str(value)

    def unique_by(self, value: Any, columns: set[str]) -> tuple[str, ...]:
        """The key no two rows of a batch share: the time column by default; several columns for
        event data (many rows per timestamp); an empty list when rows need not be unique."""
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(c, str) and c for c in value):
            raise SpecError(self.path, "unique_by", f"must be a list of column names, got {value!r}")
        unknown = [c for c in value if c not in columns]
        if unknown:
            raise SpecError(
                self.path,
                "unique_by",
                f"{unknown} are not columns of this spec (a key that is not a feature goes in ingest.other_columns)",
            )
        if len(set(value)) != len(value):
            raise SpecError(self.path, "unique_by", "has duplicates")
        return tuple(value)

    def integer(self, name: str, value: Any, least: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise SpecError(self.path, name, f"must be an integer of at least {least}, got {value!r}")
        return value

    def rows(self, raw: dict[str, Any]) -> tuple[int, int | None]:
        self.known("rows", raw, ROWS_KEYS)
        least = self.integer("rows.min", raw.get("min", 1), 1)
        most = None if raw.get("max") is None else self.integer("rows.max", raw["max"], least)
        return least, most

    def text_value(self, name: str, value: Any) -> str:
        """A value that names a class or a category: YAML's booleans are refused, not turned into 'True'."""
        if isinstance(value, bool):
            raise SpecError(self.path, name, _YAML_BOOLEAN.format(value=str(value).lower()))
        if value is None or isinstance(value, (dict, list)):
            raise SpecError(self.path, name, f"must be a value, got {value!r}")
        return str(value)

    def target(self, raw: dict[str, Any]) -> Target:
        self.known("target", raw, TARGET_KEYS)
        task = self.choice("target.task", raw.get("task"), TASKS)
        target = Target(
            column=self.string("target.column", raw.get("column")),
            task=task,  # type: ignore[arg-type]
            min=self.optional_number("target.min", raw.get("min")),
            max=self.optional_number("target.max", raw.get("max")),
            positive=None if raw.get("positive") is None else self.text_value("target.positive", raw["positive"]),
            max_null_rate=self._unit("target.max_null_rate", raw.get("max_null_rate", 0.0)),
            classes=self.classes(raw.get("classes")) if task == "multiclass" else (),
        )
        if task != "multiclass" and raw.get("classes") is not None:
            raise SpecError(self.path, "target.classes", f"is for task: multiclass, not {task}")
        if task != "classification" and raw.get("positive") is not None:
            raise SpecError(self.path, "target.positive", f"is for task: classification, not {task}")
        if target.max_null_rate >= 1:
            raise SpecError(self.path, "target.max_null_rate", "must be below 1 (a batch needs labelled rows)")
        if task == "classification" and target.positive is None:
            raise SpecError(self.path, "target.positive", "classification needs the positive class value")
        return target

    def classes(self, raw: Any) -> tuple[str, ...]:
        """A multiclass target's classes: at least three distinct values, written as text."""
        if not isinstance(raw, list):
            raise SpecError(self.path, "target.classes", f"multiclass needs the list of classes, got {raw!r}")
        classes = tuple(self.text_value(f"target.classes[{i}]", v) for i, v in enumerate(raw))
        if len(set(classes)) != len(classes):
            raise SpecError(self.path, "target.classes", f"lists a class twice: {list(classes)}")
        if len(classes) < 3:
            raise SpecError(
                self.path,
                "target.classes",
                f"multiclass needs 3 classes or more, got {len(classes)} (two: use "
                "task: classification with its positive class)",
            )
        return classes

    def features(self, raw: dict[str, Any]) -> tuple[Feature, ...]:
        if not raw:
            raise SpecError(self.path, "features", "at least one feature is required")
        return tuple(self.feature(fname, fraw) for fname, fraw in raw.items())

    def gate(self, raw: dict[str, Any], task: str, features: tuple[Feature, ...]) -> GateConfig:
        self.known("gate", raw, GateConfig.__dataclass_fields__)
        metric = str(raw.get("metric", "rmse" if task == "regression" else "log_loss"))
        allowed = TASK_METRICS[task]
        if metric not in allowed:
            raise SpecError(self.path, "gate.metric", f"'{metric}' is not one of {sorted(allowed)} for {task}")
        slices = raw.get("slices") or []
        categorical_names = {f.name for f in features if f.type == "categorical"}
        if not isinstance(slices, list) or any(s not in categorical_names for s in slices):
            raise SpecError(self.path, "gate.slices", f"must list categorical features, got {slices!r}")
        return GateConfig(
            metric=metric,
            baseline_margin=self.number("gate.baseline_margin", raw.get("baseline_margin", 0.1)),
            champion_margin=self.number("gate.champion_margin", raw.get("champion_margin", 0.0)),
            slices=tuple(slices),
            max_slice_regression=self._unit("gate.max_slice_regression", raw.get("max_slice_regression", 0.2), None),
            min_slice_rows=self.integer("gate.min_slice_rows", raw.get("min_slice_rows", 30), 1),
        )

    def training(self, raw: dict[str, Any]) -> TrainingConfig:
        defaults = TrainingConfig()
        values: dict[str, Any] = {}
        self.known("training", raw, {*TrainingConfig.__dataclass_fields__, *TRAINING_SCHEDULE_KEYS})
        for key, value in raw.items():
            default = getattr(defaults, key)
            if isinstance(default, tuple):
                if not isinstance(value, list) or not all(isinstance(u, int) and u > 0 for u in value):
                    raise SpecError(self.path, f"training.{key}", f"must be a list of positive integers, got {value!r}")
                value = tuple(value)
            elif isinstance(value, bool) or not isinstance(value, (int, float)):
                raise SpecError(self.path, f"training.{key}", f"must be a number, got {value!r}")
            elif isinstance(default, int) and not isinstance(value, int):
                raise SpecError(self.path, f"training.{key}", f"must be an integer, got {value!r}")
            values[key] = value
        return TrainingConfig(**values)

    def _unit(self, name: str, value: Any, upper: float | None = 1.0) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise SpecError(self.path, name, f"must be a non-negative number, got {value!r}")
        if upper is not None and value > upper:
            raise SpecError(self.path, name, f"must be at most {upper}, got {value!r}")
        return float(value)

    def drift_test(self, name: str, raw: Any) -> DriftTest:
        if raw is None:
            return DriftTest()
        if not isinstance(raw, dict) or set(raw) - {"method", "threshold"}:
            raise SpecError(self.path, name, "must be a mapping with 'method' and/or 'threshold'")
        method = raw.get("method")
        if method is not None and method not in DRIFT_METHODS:
            raise SpecError(self.path, f"{name}.method", f"must be one of {list(DRIFT_METHODS)}, got {method!r}")
        threshold = raw.get("threshold")
        return DriftTest(method, None if threshold is None else self._unit(f"{name}.threshold", threshold, None))

    def drift(self, raw: dict[str, Any], feature_names: set[str]) -> DriftConfig:
        known = {
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
        self.known("drift", raw, known)
        for section in ("weights", "features"):
            value = raw.get(section) or {}
            if not isinstance(value, dict):
                raise SpecError(self.path, f"drift.{section}", "must be a mapping of feature names")
            for fname in value:
                if fname not in feature_names:
                    raise SpecError(self.path, f"drift.{section}.{fname}", "is not a feature of this spec")
        require = raw.get("require_performance_drop", False)
        if not isinstance(require, bool):
            raise SpecError(self.path, "drift.require_performance_drop", f"must be true or false, got {require!r}")
        return DriftConfig(
            drift_share=self._unit("drift.drift_share", raw.get("drift_share", 0.5)),
            null_rate_delta=self._unit("drift.null_rate_delta", raw.get("null_rate_delta", 0.1)),
            weights=tuple(
                (k, self._unit(f"drift.weights.{k}", v, None)) for k, v in (raw.get("weights") or {}).items()
            ),
            features=tuple(
                (k, self.drift_test(f"drift.features.{k}", v)) for k, v in (raw.get("features") or {}).items()
            ),
            target=self.drift_test("drift.target", raw.get("target")),
            prediction=self.drift_test("drift.prediction", raw.get("prediction")),
            performance_drop=self._unit("drift.performance_drop", raw.get("performance_drop", 0.1), None),
            require_performance_drop=require,
            cooldown_hours=self._unit("drift.cooldown_hours", raw.get("cooldown_hours", 0.0), None),
        )

    def known(self, section: str, raw: dict[str, Any], known: Any) -> None:
        """Refuse a key the section does not have (a typo would otherwise fall back to a default)."""
        for key in raw:
            if key not in known:
                close = difflib.get_close_matches(str(key), [str(k) for k in known], n=1, cutoff=0.75)
                hint = f"did you mean '{close[0]}'? " if close else ""
                where = f"{section}.{key}" if section else str(key)
                raise SpecError(self.path, where, f"unknown key; {hint}known: {', '.join(sorted(known))}")

    def approval(self, raw: dict[str, Any]) -> ApprovalConfig:
        self.known("approval", raw, ApprovalConfig.__dataclass_fields__)
        policy = self.choice("approval.policy", raw.get("policy", "auto"), APPROVAL_POLICIES)
        timeout = self._unit("approval.timeout_hours", raw.get("timeout_hours", 72.0), None)
        if timeout <= 0:
            raise SpecError(self.path, "approval.timeout_hours", "must be above 0 (no answer in time = rejected)")
        return ApprovalConfig(policy=policy, timeout_hours=timeout)

    def deploy(self, raw: dict[str, Any]) -> DeployConfig:
        self.known("deploy", raw, DeployConfig.__dataclass_fields__)
        flags: dict[str, Any] = {}
        for key, default in (("canary", True), ("tflite", False)):
            flags[key] = raw.get(key, default)
            if not isinstance(flags[key], bool):
                raise SpecError(self.path, f"deploy.{key}", f"must be true or false, got {flags[key]!r}")
        ints: dict[str, Any] = {}
        for key in ("check_rows", "latency_requests"):
            value = raw.get(key, getattr(DeployConfig(), key))
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise SpecError(self.path, f"deploy.{key}", f"must be a positive integer, got {value!r}")
            ints[key] = value
        return DeployConfig(
            tolerance=self._unit("deploy.tolerance", raw.get("tolerance", 1e-3), None),
            max_p99_ms=self._unit("deploy.max_p99_ms", raw.get("max_p99_ms", 250.0), None),
            tflite_max_change=self._unit("deploy.tflite_max_change", raw.get("tflite_max_change", 0.01), None),
            **flags,
            **ints,
        )

    def ingest(self, raw: dict[str, Any], spec_columns: set[str]) -> IngestConfig:
        self.known("ingest", raw, {*IngestConfig.__dataclass_fields__, OLD_EXTRA_COLUMNS_KEY})
        other = raw.get("other_columns") or []
        if not isinstance(other, list) or not all(isinstance(c, str) and c for c in other):
            raise SpecError(self.path, "ingest.other_columns", f"must be a list of column names, got {other!r}")
        if set(other) & spec_columns:
            raise SpecError(self.path, "ingest.other_columns", f"{sorted(set(other) & spec_columns)} are used already")
        field_chars = raw.get("max_field_chars", IngestConfig.max_field_chars)
        if isinstance(field_chars, bool) or not isinstance(field_chars, int) or field_chars < 1:
            raise SpecError(self.path, "ingest.max_field_chars", f"must be a positive integer, got {field_chars!r}")
        size = self._unit("ingest.max_file_mb", raw.get("max_file_mb", IngestConfig.max_file_mb), None)
        scale = self._unit("ingest.max_scale_change", raw.get("max_scale_change", IngestConfig.max_scale_change), None)
        if size <= 0 or scale <= 1:
            raise SpecError(self.path, "ingest", "max_file_mb must be above 0 and max_scale_change above 1")
        return IngestConfig(
            other_columns=tuple(other),
            extra_columns=self.extra_columns(raw),
            max_file_mb=size,
            max_field_chars=field_chars,
            redelivery=self.choice("ingest.redelivery", raw.get("redelivery", "reject"), REDELIVERY),
            redelivery_max_row_loss=self._unit(
                "ingest.redelivery_max_row_loss", raw.get("redelivery_max_row_loss", 0.0)
            ),
            max_scale_change=scale,
            leak_correlation=self._unit("ingest.leak_correlation", raw.get("leak_correlation", 0.999)),
            encoding=self.encoding(raw.get("encoding", "utf-8")),
            format=self.choice("ingest.format", raw.get("format", "auto"), FORMATS),
            checks=self.ingest_checks(raw.get("checks")),
        )

    def extra_columns(self, raw: dict[str, Any]) -> str:
        """``ingest.extra_columns``, or its older name ``unexpected_columns`` (``refuse`` for ``reject``)."""
        if OLD_EXTRA_COLUMNS_KEY not in raw:
            return self.choice("ingest.extra_columns", raw.get("extra_columns", "reject"), EXTRA_COLUMNS)
        if "extra_columns" in raw:
            raise SpecError(
                self.path, "ingest.unexpected_columns", "is the older name of ingest.extra_columns: give one of them"
            )
        old = raw[OLD_EXTRA_COLUMNS_KEY]
        old = "reject" if old == "refuse" else old
        return self.choice("ingest.unexpected_columns", old, EXTRA_COLUMNS)

    def ingest_checks(self, raw: Any) -> tuple[str, ...]:
        """``ingest.checks``: a mapping of check name to true/false; a check not named stays on."""
        if raw is None:
            return INGEST_CHECKS
        if not isinstance(raw, dict):
            raise SpecError(
                self.path,
                "ingest.checks",
                f"must be a mapping of {', '.join(INGEST_CHECKS)} to true or false, got {raw!r}",
            )
        self.known("ingest.checks", raw, INGEST_CHECKS)
        for name, on in raw.items():
            if not isinstance(on, bool):
                raise SpecError(self.path, f"ingest.checks.{name}", f"must be true or false, got {on!r}")
        return tuple(c for c in INGEST_CHECKS if raw.get(c, True))

    def encoding(self, value: Any) -> str:
        """A codec Python knows, by its canonical name (``UTF8`` and ``utf_8`` are ``utf-8``)."""
        try:
            name = codecs.lookup(str(value)).name
        except LookupError:
            raise SpecError(
                self.path, "ingest.encoding", f"unknown encoding {value!r} (e.g. utf-8, latin-1, cp1252, utf-16)"
            ) from None
        return name

    def feature(self, fname: str, fraw: Any) -> Feature:
        where = f"features.{fname}"
        if not isinstance(fraw, dict):
            raise SpecError(self.path, where, "must be a mapping with at least 'type'")
        self.known(where, fraw, FEATURE_KEYS)
        ftype = self.choice(f"{where}.type", fraw.get("type"), ("numeric", "categorical"))
        rate = fraw.get("max_null_rate", 0.0)
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate <= 1:
            raise SpecError(self.path, f"{where}.max_null_rate", f"must be in [0, 1], got {rate!r}")
        categories: tuple[str, ...] = ()
        learn, cap = False, 0
        if ftype == "categorical":
            cats = fraw.get("categories")
            learn = cats == LEARN
            if learn:
                cap = self.integer(f"{where}.max_categories", fraw.get("max_categories", DEFAULT_MAX_CATEGORIES), 1)
            elif not isinstance(cats, list) or not cats:
                raise SpecError(
                    self.path,
                    f"{where}.categories",
                    f"a categorical feature needs a non-empty list, or "
                    f"'{LEARN}' (from the training window), got {cats!r}",
                )
            else:
                categories = tuple(self.text_value(f"{where}.categories", c) for c in cats)
                if len(set(categories)) != len(categories):
                    raise SpecError(self.path, f"{where}.categories", "has duplicates")
        if not learn and "max_categories" in fraw:
            raise SpecError(self.path, f"{where}.max_categories", f"caps learned categories (categories: {LEARN})")
        lo = self.optional_number(f"{where}.min", fraw.get("min"))
        hi = self.optional_number(f"{where}.max", fraw.get("max"))
        if lo is not None and hi is not None and lo > hi:
            raise SpecError(self.path, f"{where}.min", f"min {lo} is above max {hi}")
        impute, fill = self.impute(where, ftype, float(rate), fraw)
        unseen = self._unit(f"{where}.max_unseen_rate", fraw.get("max_unseen_rate", 0.0))
        if unseen > 0 and (ftype != "categorical" or learn):
            raise SpecError(
                self.path,
                f"{where}.max_unseen_rate",
                "is for categorical features with listed categories (a learned vocabulary takes what the window holds)",
            )
        return Feature(
            name=fname,
            type=ftype,  # type: ignore[arg-type]
            min=lo,
            max=hi,
            categories=categories,
            max_null_rate=float(rate),
            max_unseen_rate=unseen,
            impute=impute,
            fill_value=fill,
            learn_categories=learn,
            max_categories=cap,
        )

    def impute(self, where: str, ftype: str, rate: float, fraw: dict[str, Any]) -> tuple[str | None, float | None]:
        """How a numeric feature that may be missing is filled: required when it may be."""
        impute, fill = fraw.get("impute"), fraw.get("fill_value")
        if impute is not None and ftype != "numeric":
            raise SpecError(
                self.path,
                f"{where}.impute",
                "only numeric features are imputed (a missing category has a slot of its own)",
            )
        if impute is not None:
            impute = self.choice(f"{where}.impute", impute, IMPUTE)
        if ftype == "numeric" and rate > 0 and impute is None:
            raise SpecError(
                self.path,
                f"{where}.impute",
                f"may be missing (max_null_rate {rate:g}): say how the model fills it, impute: {', '.join(IMPUTE)}",
            )
        if impute == "constant":
            return impute, self.number(f"{where}.fill_value", fill)
        if fill is not None:
            raise SpecError(self.path, f"{where}.fill_value", "is used only with impute: constant")
        return impute, None


def retraining_periods(folder: Path | str) -> dict[str, str]:
    """How often each spec in ``folder`` retrains on schedule (name -> ``retrain_every``). A
    spec that does not load is logged and left out: it holds up no other dataset, and fails
    with its reason where it is used."""
    out = {}
    for path in sorted(Path(folder).glob("*.yaml")):
        try:
            out[path.stem] = DatasetSpec.load(path).retrain_every
        except (SpecError, OSError) as exc:
            log.error("not retrained on schedule: %s", exc)
    return out
