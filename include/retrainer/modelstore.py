"""The model store: TensorFlow Serving's layout, and which version each label serves.

``<store>/<model>/<version>/`` holds a SavedModel (its ``saved_model.pb`` is what a server
looks for, so it is written last or the folder appears in one step); TFLite artifacts sit
beside the versions at ``<store>/<model>/tflite/<version>.tflite``, where TensorFlow Serving
does not look. ``<store>/models.config`` is a model config in TensorFlow Serving's text
format whose ``version_labels`` say which version is ``stable`` (and ``canary``). Moving a
label is a rewrite of that file in one step (write elsewhere, rename), so a rollback is a
relabel. The store may be a local folder or ``s3://``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from retrainer import storage

#: the file a SavedModel folder is complete with (what TensorFlow Serving looks for)
SAVED_MODEL = "saved_model.pb"
#: the signature that takes raw features
SIGNATURE = "serving_default"
CONFIG_NAME = "models.config"
STABLE = "stable"
CANARY = "canary"


def version_location(store: str, model: str, version: str | int) -> str:
    return storage.join(store, model, str(int(version)))


def tflite_location(store: str, model: str, version: str | int) -> str:
    """``<store>/<model>/tflite/<version>.tflite``: beside the versions, where TF Serving does not look."""
    return storage.join(store, model, "tflite", f"{int(version)}.tflite")


def has_version(store: str, model: str, version: str | int, endpoint_url: str | None = None) -> bool:
    """Whether the store holds a complete SavedModel of ``version``."""
    return storage.exists(storage.join(version_location(store, model, version), SAVED_MODEL), endpoint_url)


@dataclass
class ModelEntry:
    name: str
    base_path: str
    labels: dict[str, int] = field(default_factory=dict)


def parse_config(text: str) -> dict[str, ModelEntry]:
    """Read the subset of TensorFlow Serving's ModelServerConfig text format that we write."""
    models: dict[str, ModelEntry] = {}
    for block in re.findall(r"config\s*\{(.*?)\n\s*\}\s*(?=config\s*\{|\Z|\})", text, flags=re.S):
        name = re.search(r'name:\s*"([^"]+)"', block)
        base = re.search(r'base_path:\s*"([^"]+)"', block)
        if not name or not base:
            continue
        labels = {k: int(v) for k, v in re.findall(r'version_labels\s*\{\s*key:\s*"([^"]+)"\s*value:\s*(\d+)', block)}
        models[name.group(1)] = ModelEntry(name.group(1), base.group(1), labels)
    return models


def render_config(models: dict[str, ModelEntry]) -> str:
    lines = ["model_config_list {"]
    for entry in sorted(models.values(), key=lambda e: e.name):
        versions = sorted(set(entry.labels.values()), reverse=True)
        lines += [
            "  config {",
            f'    name: "{entry.name}"',
            f'    base_path: "{entry.base_path}"',
            '    model_platform: "tensorflow"',
        ]
        if versions:
            specific = " ".join(f"versions: {v}" for v in versions)
            lines.append(f"    model_version_policy {{ specific {{ {specific} }} }}")
        for label, version in sorted(entry.labels.items()):
            lines.append(f'    version_labels {{ key: "{label}" value: {version} }}')
        lines.append("  }")
    lines.append("}")
    return "\n".join(lines) + "\n"


def read_config(store: Path | str, endpoint_url: str | None = None) -> dict[str, ModelEntry]:
    text = storage.read_text(storage.join(str(store), CONFIG_NAME), endpoint_url)
    return parse_config(text) if text is not None else {}


def set_label(
    store: Path | str, model: str, label: str, version: int, endpoint_url: str | None = None
) -> dict[str, int]:
    """Point ``label`` of ``model`` at ``version`` (which must be in the store); one atomic write
    (locally a rename, on S3 a single object put)."""
    store = str(store)
    if not has_version(store, model, version, endpoint_url):
        raise FileNotFoundError(f"{version_location(store, model, version)}: no complete version to label {label}")
    models = read_config(store, endpoint_url)
    entry = models.setdefault(model, ModelEntry(model, storage.join(store, model)))
    entry.labels[label] = int(version)
    storage.write_text(storage.join(store, CONFIG_NAME), render_config(models), endpoint_url)
    return dict(entry.labels)


def clear_label(store: Path | str, model: str, label: str, endpoint_url: str | None = None) -> dict[str, int]:
    """Remove ``label`` of ``model`` (e.g. ``canary`` once its check is over); one atomic write."""
    store = str(store)
    models = read_config(store, endpoint_url)
    entry = models.get(model)
    if entry is not None and label in entry.labels:
        del entry.labels[label]
        storage.write_text(storage.join(store, CONFIG_NAME), render_config(models), endpoint_url)
    return dict(entry.labels) if entry else {}
