"""The model store: TensorFlow Serving's layout, and which version each label serves.

``<store>/<model>/<version>/`` holds a SavedModel (its ``saved_model.pb`` is what a server
looks for, so it is written last or the folder appears in one step); TFLite artifacts sit
beside the versions at ``<store>/<model>/tflite/<version>.tflite``, where TensorFlow Serving
does not look. ``<store>/models.config`` is a model config in TensorFlow Serving's text
format: which versions the server loads (a ``specific`` version policy) and which of them
``stable`` (and ``canary``) name. Each change is a rewrite of that file in one step (write
elsewhere, rename; on S3 one put) that no other writer's change can undo, whoever calls: a
local store's writers take turns under a file lock, an S3 store's write is a compare-and-set
the store checks (``If-Match`` on the config's ETag; a store that ignores it is refused), read
again and retried when another writer went first. TensorFlow Serving re-reads it
(``--model_config_file_poll_wait_seconds``) and labels only a version it has already loaded,
so moving a label to a version not yet served is two writes with a wait between
(``set_label``), and versions no label names are dropped after (``unload_unlabelled``). A
rollback is a label move. The store may be a local folder or ``s3://``.
"""

from __future__ import annotations

import logging
import random
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from retrainer import storage

log = logging.getLogger(__name__)

#: the file a SavedModel folder is complete with (what TensorFlow Serving looks for)
SAVED_MODEL = "saved_model.pb"
#: the signature that takes raw features
SIGNATURE = "serving_default"
#: a version folder's TFLite model, served instead of the SavedModel when present (TensorFlow
#: Serving with ``--prefer_tflite_model``; the deploy writes it only for a spec with ``deploy.tflite``)
TFLITE_MODEL = "model.tflite"
CONFIG_NAME = "models.config"
STABLE = "stable"
CANARY = "canary"
#: a version folder without its SavedModel that had no write for this long is an upload cut off
#: and never retried (S3 has no staging: objects land under the final name, the marker last)
PARTIAL_MAX_AGE_S = 3600.0
#: how often a config change on S3 is read again and retried when another writer went first
CONFLICT_RETRIES = 50


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
    """One model of the config: the versions the server loads, and its labels (each on one of them)."""

    name: str
    base_path: str
    labels: dict[str, int] = field(default_factory=dict)
    versions: set[int] = field(default_factory=set)

    def served(self) -> list[int]:
        """The versions the server keeps loaded, newest first (every labelled one among them)."""
        return sorted(self.versions | set(self.labels.values()), reverse=True)


#: blocks until the server that reads the config has loaded a version (raises if it does not in time)
Waiter = Callable[[int], None]


def parse_config(text: str) -> dict[str, ModelEntry]:
    """Read the subset of TensorFlow Serving's ModelServerConfig text format that we write."""
    models: dict[str, ModelEntry] = {}
    for block in re.findall(r"config\s*\{(.*?)\n\s*\}\s*(?=config\s*\{|\Z|\})", text, flags=re.S):
        name = re.search(r'name:\s*"([^"]+)"', block)
        base = re.search(r'base_path:\s*"([^"]+)"', block)
        if not name or not base:
            continue
        labels = {k: int(v) for k, v in re.findall(r'version_labels\s*\{\s*key:\s*"([^"]+)"\s*value:\s*(\d+)', block)}
        specific = re.search(r"specific\s*\{([^}]*)\}", block)
        versions = {int(v) for v in re.findall(r"versions:\s*(\d+)", specific.group(1))} if specific else set()
        models[name.group(1)] = ModelEntry(name.group(1), base.group(1), labels, versions | set(labels.values()))
    return models


def render_config(models: dict[str, ModelEntry]) -> str:
    """The config text: each model with a specific version policy (never "latest": a version
    is served when the config says so, not when its folder appears). A model with nothing to
    serve is left out."""
    lines = ["model_config_list {"]
    for entry in sorted(models.values(), key=lambda e: e.name):
        versions = entry.served()
        if not versions:
            continue
        specific = " ".join(f"versions: {v}" for v in versions)
        lines += [
            "  config {",
            f'    name: "{entry.name}"',
            f'    base_path: "{entry.base_path}"',
            '    model_platform: "tensorflow"',
            f"    model_version_policy {{ specific {{ {specific} }} }}",
        ]
        for label, version in sorted(entry.labels.items()):
            lines.append(f'    version_labels {{ key: "{label}" value: {version} }}')
        lines.append("  }")
    lines.append("}")
    return "\n".join(lines) + "\n"


def read_config(store: Path | str, endpoint_url: str | None = None) -> dict[str, ModelEntry]:
    text = storage.read_text(storage.join(str(store), CONFIG_NAME), endpoint_url)
    return parse_config(text) if text is not None else {}


def write_config(store: str, text: str, endpoint_url: str | None = None) -> None:
    """One atomic write of the config (locally a rename, on S3 a single object put)."""
    storage.write_text(storage.join(store, CONFIG_NAME), text, endpoint_url)


def write_config_if(store: str, text: str, etag: str | None, endpoint_url: str | None = None) -> bool:
    """An S3 store's config written only if it is still the one read with ``etag`` (None: only if
    there is none): False, and nothing written, when another writer went first."""
    return storage.write_s3_if(storage.join(store, CONFIG_NAME), text, etag, endpoint_url)


@contextmanager
def _locked(store: str) -> Iterator[None]:
    """Read-modify-write of a local config, one process at a time."""
    import fcntl

    Path(store).mkdir(parents=True, exist_ok=True)
    with open(Path(store) / f".{CONFIG_NAME}.lock", "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _update(store: str, model: str, endpoint_url: str | None, change: Callable[[ModelEntry], None]) -> ModelEntry:
    """One change of the config, never lost to another writer, whoever calls: locally under a
    file lock; on S3 by compare-and-set (a write the store refuses if the config changed since
    it was read), read again and retried when somebody wrote in between."""
    if not storage.is_s3(store):
        with _locked(store):
            entry, text = _change(read_config(store, endpoint_url), store, model, change)
            if text is not None:
                write_config(store, text, endpoint_url)
            return entry
    uri = storage.join(store, CONFIG_NAME)
    for attempt in range(CONFLICT_RETRIES):
        current, etag = storage.read_s3_versioned(uri, endpoint_url)
        entry, text = _change(parse_config(current or ""), store, model, change)
        if text is None or write_config_if(store, text, etag, endpoint_url):
            return entry
        time.sleep(random.uniform(0.01, 0.05) * (attempt + 1))  # noqa: S311 (a jitter) another writer went first
    raise RuntimeError(f"{uri}: changed by another writer at each of {CONFLICT_RETRIES} attempts; try again")


def _change(
    models: dict[str, ModelEntry], store: str, model: str, change: Callable[[ModelEntry], None]
) -> tuple[ModelEntry, str | None]:
    """``change`` applied to ``model``'s entry: the entry, and the config's new text (None: unchanged)."""
    before = render_config(models)
    entry = models.setdefault(model, ModelEntry(model, storage.join(store, model)))
    change(entry)
    text = render_config(models)
    return entry, (text if text != before else None)


def load_version(store: Path | str, model: str, version: int, endpoint_url: str | None = None) -> list[int]:
    """Step one of a label move: serve ``version`` beside what is served, labels unchanged.
    Returns the served versions."""
    store = str(store)
    if not has_version(store, model, version, endpoint_url):
        raise FileNotFoundError(f"{version_location(store, model, version)}: no complete version to serve")
    return _update(store, model, endpoint_url, lambda e: e.versions.add(int(version))).served()


def set_label(
    store: Path | str,
    model: str,
    label: str,
    version: int,
    endpoint_url: str | None = None,
    wait: Waiter | None = None,
) -> dict[str, int]:
    """Point ``label`` of ``model`` at ``version``. TensorFlow Serving labels only a version it has
    loaded, so a version not served yet takes two writes: serve it (``load_version``), ``wait``
    until the server has it (a server check; None when no long-running server reads the
    config), then move the label. Each write is atomic."""
    store = str(store)
    version = int(version)
    if not has_version(store, model, version, endpoint_url):
        raise FileNotFoundError(f"{version_location(store, model, version)}: no complete version to label {label}")
    entry = read_config(store, endpoint_url).get(model)
    if entry is None or version not in entry.served():
        load_version(store, model, version, endpoint_url)
        if wait is not None:
            wait(version)
    return dict(_update(store, model, endpoint_url, lambda e: e.labels.__setitem__(label, version)).labels)


def clear_label(store: Path | str, model: str, label: str, endpoint_url: str | None = None) -> dict[str, int]:
    """Remove ``label`` of ``model`` (e.g. ``canary`` once its check is over); the version stays
    served until ``unload_unlabelled``. One atomic write."""
    entry = read_config(str(store), endpoint_url).get(model)
    if entry is None or label not in entry.labels:
        return dict(entry.labels) if entry else {}

    def drop(e: ModelEntry) -> None:
        e.labels.pop(label, None)

    return dict(_update(str(store), model, endpoint_url, drop).labels)


def unload_unlabelled(store: Path | str, model: str, endpoint_url: str | None = None) -> list[int]:
    """The last step of a label move: serve only the versions a label points at. Returns them."""
    entry = read_config(str(store), endpoint_url).get(model)
    if entry is None:
        return []

    def keep_labelled(e: ModelEntry) -> None:
        e.versions = set(e.labels.values())

    return _update(str(store), model, endpoint_url, keep_labelled).served()


def sweep_partial(
    store: Path | str, model: str, endpoint_url: str | None = None, max_age_s: float = PARTIAL_MAX_AGE_S
) -> list[int]:
    """Remove version folders of ``model`` that hold objects but no ``saved_model.pb`` and had no
    write for ``max_age_s``: uploads cut off (S3) that no retry finished. No server loads them
    (their version is in no config), and a publish still under way would not write its marker
    over them (it checks every object first). Returns the versions removed."""
    store = str(store)
    if not storage.is_s3(store):
        return []  # locally a version appears by a rename: there are no partial folders of ours
    entry = read_config(store, endpoint_url).get(model)
    served = set(entry.served()) if entry else set()
    removed = []
    for version in storage.list_versions(store, model, endpoint_url):
        if version in served or has_version(store, model, version, endpoint_url):
            continue
        location = version_location(store, model, version)
        files = storage.list_files(location, endpoint_url)
        if files and time.time() - max(f.modified for f in files) < max_age_s:
            continue  # an upload that may still be under way
        count = storage.remove_prefix(location, endpoint_url)
        log.warning("removed %s: %d object(s) of an upload cut off, without %s", location, count, SAVED_MODEL)
        removed.append(version)
    return removed
