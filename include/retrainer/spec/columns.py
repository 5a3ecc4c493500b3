"""The spec's columns: the target and its task, the features with their types, ranges and
categories, the key no two rows share (``unique_by``) and how timestamps are spelled."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from retrainer.spec.fields import Fields

TaskType = Literal["regression", "classification", "multiclass"]
TASKS: tuple[str, ...] = ("regression", "classification", "multiclass")
FeatureType = Literal["numeric", "categorical"]
#: the keys a target and a feature may have
TARGET_KEYS = frozenset(
    {"column", "task", "min", "max", "positive", "classes", "max_null_rate", "checks", "max_mean_change"}
)
FEATURE_KEYS = frozenset(
    {
        "type",
        "min",
        "max",
        "categories",
        "max_categories",
        "max_null_rate",
        "max_unseen_rate",
        "impute",
        "fill_value",
        "checks",
        "max_scale_change",
    }
)
#: the checks of a batch against the versioned data, each switchable for the whole spec
#: (``ingest.checks``), for one feature (``features.<column>.checks``) or for the target
#: (``target.checks``); all on by default
FEATURE_CHECKS = ("constant_feature", "target_leak", "unit_change")
TARGET_CHECKS = ("target_distribution", "unit_change")
INGEST_CHECKS = (*FEATURE_CHECKS, "target_distribution")
#: a regression target's mean this many times off the versioned periods' is implausible
DEFAULT_MAX_MEAN_CHANGE = 10.0
#: a feature's name is the model's input name, which TensorFlow Serving's signature must take
FEATURE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]*$")
#: ``categories: learn``: a categorical feature's vocabulary comes from each training window
LEARN = "learn"
DEFAULT_MAX_CATEGORIES = 100
#: how a missing numeric value is filled, inside the model (so serving fills as training did)
IMPUTE = ("mean", "median", "constant")


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
    checks: tuple[tuple[str, bool], ...] = ()  # this feature's own ingest checks, on or off (else ingest.checks)
    max_scale_change: float | None = None  # this feature's own unit-change limit (else ingest.max_scale_change)


@dataclass(frozen=True)
class Target:
    column: str
    task: TaskType
    min: float | None = None
    max: float | None = None
    positive: str | None = None  # classification: the value that counts as the positive class
    classes: tuple[str, ...] = ()  # multiclass: the classes, in the order of the model's outputs
    max_null_rate: float = 0.0  # unlabelled rows a batch may have; they train and judge nothing
    checks: tuple[tuple[str, bool], ...] = ()  # the target's own ingest checks, on or off (else ingest.checks)
    max_mean_change: float = DEFAULT_MAX_MEAN_CHANGE  # regression: the mean this many times off the versioned


def read_target(f: Fields, raw: dict[str, Any]) -> Target:
    f.known("target", raw, TARGET_KEYS)
    task = f.choice("target.task", raw.get("task"), TASKS)
    target = Target(
        column=f.string("target.column", raw.get("column")),
        task=task,  # type: ignore[arg-type]
        min=f.optional_number("target.min", raw.get("min")),
        max=f.optional_number("target.max", raw.get("max")),
        positive=None if raw.get("positive") is None else f.text_value("target.positive", raw["positive"]),
        max_null_rate=f.unit("target.max_null_rate", raw.get("max_null_rate", 0.0)),
        classes=_classes(f, raw.get("classes")) if task == "multiclass" else (),
        checks=_checks(f, "target", raw.get("checks"), TARGET_CHECKS),
        max_mean_change=_mean_change(f, task, raw.get("max_mean_change")),
    )
    if task != "multiclass" and raw.get("classes") is not None:
        raise f.error("target.classes", f"is for task: multiclass, not {task}")
    if task != "classification" and raw.get("positive") is not None:
        raise f.error("target.positive", f"is for task: classification, not {task}")
    if target.max_null_rate >= 1:
        raise f.error("target.max_null_rate", "must be below 1 (a batch needs labelled rows)")
    if task == "classification" and target.positive is None:
        raise f.error("target.positive", "classification needs the positive class value")
    return target


def _classes(f: Fields, raw: Any) -> tuple[str, ...]:
    """A multiclass target's classes: at least three distinct values, written as text."""
    if not isinstance(raw, list):
        raise f.error("target.classes", f"multiclass needs the list of classes, got {raw!r}")
    classes = tuple(f.text_value(f"target.classes[{i}]", v) for i, v in enumerate(raw))
    if len(set(classes)) != len(classes):
        raise f.error("target.classes", f"lists a class twice: {list(classes)}")
    if len(classes) < 3:
        raise f.error(
            "target.classes",
            f"multiclass needs 3 classes or more, got {len(classes)} (two: use "
            "task: classification with its positive class)",
        )
    return classes


def _mean_change(f: Fields, task: str, raw: Any) -> float:
    """``target.max_mean_change``: how many times off the versioned means a regression target's
    mean may be (above 1)."""
    if raw is None:
        return DEFAULT_MAX_MEAN_CHANGE
    if task != "regression":
        raise f.error("target.max_mean_change", f"is for task: regression, not {task} (classes have no mean)")
    limit = f.number("target.max_mean_change", raw)
    if limit <= 1:
        raise f.error("target.max_mean_change", f"must be above 1, got {raw!r}")
    return limit


def read_features(f: Fields, raw: dict[str, Any]) -> tuple[Feature, ...]:
    if not raw:
        raise f.error("features", "at least one feature is required")
    return tuple(_feature(f, fname, fraw) for fname, fraw in raw.items())


def _feature(f: Fields, fname: str, fraw: Any) -> Feature:
    where = f"features.{fname}"
    if not isinstance(fname, str) or not FEATURE_NAME.match(fname):
        raise f.error(where, input_name_problem(str(fname)))
    if not isinstance(fraw, dict):
        raise f.error(where, "must be a mapping with at least 'type'")
    f.known(where, fraw, FEATURE_KEYS)
    ftype = f.choice(f"{where}.type", fraw.get("type"), ("numeric", "categorical"))
    rate = fraw.get("max_null_rate", 0.0)
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate <= 1:
        raise f.error(f"{where}.max_null_rate", f"must be in [0, 1], got {rate!r}")
    categories, learn, cap = _categories(f, where, ftype, fraw)
    lo = f.optional_number(f"{where}.min", fraw.get("min"))
    hi = f.optional_number(f"{where}.max", fraw.get("max"))
    if lo is not None and hi is not None and lo > hi:
        raise f.error(f"{where}.min", f"min {lo} is above max {hi}")
    impute, fill = _impute(f, where, ftype, float(rate), fraw)
    unseen = f.unit(f"{where}.max_unseen_rate", fraw.get("max_unseen_rate", 0.0))
    if unseen > 0 and (ftype != "categorical" or learn):
        raise f.error(
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
        checks=_checks(f, where, fraw.get("checks"), FEATURE_CHECKS),
        max_scale_change=_scale(f, where, ftype, fraw.get("max_scale_change")),
    )


def _checks(f: Fields, where: str, raw: Any, known: tuple[str, ...]) -> tuple[tuple[str, bool], ...]:
    """``features.<column>.checks`` or ``target.checks``: check name to true or false, for that
    column alone."""
    if raw is None:
        return ()
    if not isinstance(raw, dict):
        expected = f"must be a mapping of {', '.join(known)} to true or false, got {raw!r}"
        raise f.error(f"{where}.checks", expected)
    f.known(f"{where}.checks", raw, known)
    return tuple((name, f.flag(f"{where}.checks.{name}", on)) for name, on in raw.items())


def _scale(f: Fields, where: str, ftype: str, raw: Any) -> float | None:
    """``features.<column>.max_scale_change``: a numeric feature's own unit-change limit (above 1)."""
    if raw is None:
        return None
    if ftype != "numeric":
        raise f.error(f"{where}.max_scale_change", "is for numeric features (a spread is a numeric feature's)")
    limit = f.number(f"{where}.max_scale_change", raw)
    if limit <= 1:
        raise f.error(f"{where}.max_scale_change", f"must be above 1, got {raw!r}")
    return limit


def input_suggestion(name: str) -> str:
    """What to deliver a column as that cannot name a model input."""
    suggestion = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "x"
    return f"deliver the column as e.g. '{suggestion if suggestion[0].isalpha() else f'f_{suggestion}'}'"


def input_name_problem(name: str) -> str:
    """Why a column cannot be a feature by its name, and what to do."""
    return (
        f"'{name}' cannot name a model input (the served model's signature takes a letter, then letters, digits,"
        f" '_', '.' or '-'): {input_suggestion(name)}"
    )


def _categories(f: Fields, where: str, ftype: str, fraw: dict[str, Any]) -> tuple[tuple[str, ...], bool, int]:
    """A categorical feature's listed categories, or ``learn`` with its cap: (categories, learn, cap)."""
    categories: tuple[str, ...] = ()
    learn, cap = False, 0
    if ftype == "categorical":
        cats = fraw.get("categories")
        learn = cats == LEARN
        if learn:
            cap = f.integer(f"{where}.max_categories", fraw.get("max_categories", DEFAULT_MAX_CATEGORIES), 1)
        elif not isinstance(cats, list) or not cats:
            raise f.error(
                f"{where}.categories",
                f"a categorical feature needs a non-empty list, or '{LEARN}' (from the training window), got {cats!r}",
            )
        else:
            categories = tuple(f.text_value(f"{where}.categories", c) for c in cats)
            if len(set(categories)) != len(categories):
                raise f.error(f"{where}.categories", "has duplicates")
    if not learn and "max_categories" in fraw:
        raise f.error(f"{where}.max_categories", f"caps learned categories (categories: {LEARN})")
    return categories, learn, cap


def _impute(f: Fields, where: str, ftype: str, rate: float, fraw: dict[str, Any]) -> tuple[str | None, float | None]:
    """How a numeric feature that may be missing is filled: required when it may be."""
    impute, fill = fraw.get("impute"), fraw.get("fill_value")
    if impute is not None and ftype != "numeric":
        raise f.error(f"{where}.impute", "only numeric features are imputed (a missing category has a slot of its own)")
    if impute is not None:
        impute = f.choice(f"{where}.impute", impute, IMPUTE)
    if ftype == "numeric" and rate > 0 and impute is None:
        raise f.error(
            f"{where}.impute",
            f"may be missing (max_null_rate {rate:g}): say how the model fills it, impute: {', '.join(IMPUTE)}",
        )
    if impute == "constant":
        return impute, f.number(f"{where}.fill_value", fill)
    if fill is not None:
        raise f.error(f"{where}.fill_value", "is used only with impute: constant")
    return impute, None


def read_unique_by(f: Fields, value: Any, columns: set[str]) -> tuple[str, ...]:
    """The key no two rows of a batch share: the time column by default; several columns for
    event data (many rows per timestamp); an empty list when rows need not be unique."""
    if isinstance(value, str):
        value = [value]
    value = f.column_names("unique_by", value)
    unknown = [c for c in value if c not in columns]
    if unknown:
        raise f.error(
            "unique_by",
            f"{unknown} are not columns of this spec (a key that is not a feature goes in ingest.other_columns)",
        )
    if len(set(value)) != len(value):
        raise f.error("unique_by", "has duplicates")
    return tuple(value)


def read_time_format(f: Fields, value: Any) -> str | None:
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
        raise f.error(
            "time_format", f"{value!r} does not spell a date that reads back (strftime codes, e.g. '%d/%m/%Y %H:%M')"
        )
    return str(value)
