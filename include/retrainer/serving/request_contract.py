"""What a prediction request may hold: the dataset spec's features, written with each deployed
version (``assets.extra/retrainer_request.json``, a folder TensorFlow Serving leaves alone) and
checked by the model server before the model sees a row.

A request is refused (HTTP 400) with every problem named by row, field and rule: a field the
model has no input for, a missing value where the spec allows none, a value of the wrong
type, a category the spec does not list (unless it allows unseen values, which then go to the
model's out-of-vocabulary slot), a number outside the spec's range (refused, or only logged
under ``RETRAINER_SERVING_OUT_OF_RANGE=warn``).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from retrainer.spec.dataset import DatasetSpec

CONTRACT_FILE = "assets.extra/retrainer_request.json"
OUT_OF_RANGE = ("refuse", "warn")
#: at most this many problems are listed in one answer
MAX_PROBLEMS = 20


def from_spec(spec: DatasetSpec) -> dict[str, Any]:
    """The request contract of a dataset spec, as written next to the SavedModel."""
    features = []
    for f in spec.features:
        entry: dict[str, Any] = {"name": f.name, "type": f.type, "nullable": f.max_null_rate > 0}
        if f.type == "numeric":
            entry.update(min=f.min, max=f.max)
        else:
            learned = f.learn_categories
            entry.update(
                categories=None if learned else list(f.categories),
                unseen="allow" if learned or f.max_unseen_rate > 0 else "refuse",
            )
        features.append(entry)
    target: dict[str, Any] = {"column": spec.target.column, "task": spec.target.task}
    if spec.target.task == "multiclass":  # the order of each row's probabilities
        target["classes"] = list(spec.target.classes)
    elif spec.target.task == "classification":  # the one probability is this class's
        target["positive"] = spec.target.positive
    return {"dataset": spec.name, "model": spec.model_name, "features": features, "target": target}


def classes(contract: dict[str, Any] | None) -> list[str] | None:
    """A multiclass version's classes, in the order of each row's probabilities (None: another
    task, or a version deployed before contracts named their target)."""
    target = (contract or {}).get("target") or {}
    found = target.get("classes")
    return list(found) if isinstance(found, list) else None


def write(spec: DatasetSpec, saved_model_dir: Path) -> Path:
    path = Path(saved_model_dir) / CONTRACT_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(from_spec(spec), indent=1))
    return path


@dataclass
class Checked:
    """A request's columns after the check: values as the model takes them (a category sent
    as a number that names a category becomes its text), the refusals and the warnings."""

    columns: dict[str, list[Any]]
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _show(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, float) or math.isfinite(value) else str(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _kind(value: Any) -> str:
    return {
        bool: "true/false",
        int: "an integer",
        float: "a number",
        str: "text",
        list: "a list",
        dict: "an object",
    }.get(type(value), type(value).__name__)


def _numeric(f: dict[str, Any], value: Any) -> tuple[str, str]:
    """(refusal, range problem) of a numeric value; empty strings when there is none."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"{_show(value)} is {_kind(value)}, not a number", ""
    if not math.isfinite(value):
        return f"{_show(value)} is not a finite number", ""
    low, high = f.get("min"), f.get("max")
    if low is not None and value < low:
        return "", f"{_show(value)} is below the spec's min {_show(low)}"
    if high is not None and value > high:
        return "", f"{_show(value)} is above the spec's max {_show(high)}"
    return "", ""


def _listed(categories: list[str]) -> str:
    return ", ".join(categories[:12]) + (", ..." if len(categories) > 12 else "")


def _categorical(f: dict[str, Any], value: Any) -> tuple[Any, str, str]:
    """(the value as the model takes it, refusal, warning) of a categorical value."""
    categories = f.get("categories")
    text = value if isinstance(value, str) else None
    if text is None and isinstance(value, (int, float)) and not isinstance(value, bool):
        text = str(value) if categories is not None and str(value) in categories else None  # 3 for "3"
    if text is None:
        known = f" (one of {_listed(categories)})" if categories else ""
        return value, f"{_show(value)} is {_kind(value)}, the model takes text{known}", ""
    if categories is not None and text not in categories:
        if f.get("unseen") == "allow":
            return text, "", f"{_show(value)} is not a listed category (the unseen-value slot)"
        return text, f"{_show(value)} is not a category of {f['name']} ({_listed(categories)})", ""
    return text, "", ""


def check(
    contract: dict[str, Any],
    columns: dict[str, list[Any]],
    extra: list[str],
    where: list[str],
    out_of_range: str = "refuse",
) -> Checked:
    """Check a request's columns (one list per input) against ``contract``; ``extra`` are the
    fields the request sent that the model has no input for, ``where[i]`` names row ``i``
    (``instance 3`` or ``inputs[3]``)."""
    out = Checked({})
    problems, warnings = out.problems, out.warnings
    names = [f["name"] for f in contract["features"]]
    for name in extra:
        problems.append(f"field '{name}' is not an input of this model (its inputs: {', '.join(names)})")
    for f in contract["features"]:
        name = f["name"]
        values = columns.get(name)
        if values is None:
            continue
        kept = []
        for i, value in enumerate(values):
            at = f"{where[i]}, field '{name}'"
            refusal = warning = ""
            if value is None:
                refusal = "" if f.get("nullable") else f"null, and the spec allows no missing {name}"
            elif f["type"] == "numeric":
                refusal, off = _numeric(f, value)
                refusal, warning = (refusal or off, "") if out_of_range == "refuse" else (refusal, off)
            else:
                value, refusal, warning = _categorical(f, value)
            if refusal:
                problems.append(f"{at}: {refusal}")
            if warning:
                warnings.append(f"{at}: {warning}")
            kept.append(value)
        out.columns[name] = kept
    if len(problems) > MAX_PROBLEMS:
        out.problems = [*problems[:MAX_PROBLEMS], f"and {len(problems) - MAX_PROBLEMS} more"]
    return out


def read(saved_model_dir: Path) -> dict[str, Any] | None:
    """The contract deployed with a version, or None for a version deployed without one."""
    path = Path(saved_model_dir) / CONTRACT_FILE
    if not path.is_file():
        return None
    contract: dict[str, Any] = json.loads(path.read_text())
    return contract
