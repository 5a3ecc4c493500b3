"""Helpers the test modules share (fixtures live in the conftest files; the stacks, free ports
and the small training spec are developer tooling: ``retrainer_dev.stacks``)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]


def subprocess_env() -> dict[str, str]:
    """This environment, with the repository's code importable: for a test's helper processes
    (``python -m tests.reliability.<step>``)."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join(str(REPO / p) for p in ("", "include", "plugins", "tools"))}


def bike_spec_data() -> dict[str, Any]:
    """The bike spec file as data, a fresh copy to change."""
    data: dict[str, Any] = yaml.safe_load((REPO / "include" / "specs" / "bike_sharing.yaml").read_text())
    return data


def write_spec(folder: Path, data: dict[str, Any], name: str = "spec") -> Path:
    """``data`` as the spec file ``<folder>/<name>.yaml``."""
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def first_event(trigger: Any, timeout: float = 5.0) -> Any:
    """The first event a trigger's ``run()`` yields, driven in an event loop (TimeoutError if none)."""

    async def first() -> Any:
        async for event in trigger.run():
            return event
        return None

    return asyncio.run(asyncio.wait_for(first(), timeout))


def log_keras_model(registry: Any, spec: Any, ctx: Any, model: Any) -> tuple[str, str]:
    """The MLflow run of ``ctx`` (created if new) with ``model`` logged on it, its pip
    requirements given as the pipeline gives them (so MLflow infers none: seconds saved);
    returns (run id, model URI)."""
    import mlflow.tensorflow

    from retrainer.model.training import library_versions

    run_id, _ = registry.runs.get_or_create(spec, ctx, {})
    with registry.runs.active(run_id):
        info = mlflow.tensorflow.log_model(model, name="model", pip_requirements=library_versions())
    return run_id, str(info.model_uri)


def log_model_entry(registry: Any, spec: Any, ctx: Any, tags: dict[str, str] | None = None) -> tuple[str, str]:
    """The MLflow run of ``ctx`` (created if new) with a logged model that has no files: what
    registering versions, tags, aliases and locks need, without a model to load; returns
    (run id, model URI)."""
    run_id, _ = registry.runs.get_or_create(spec, ctx, tags or {})
    logged = registry.client.create_logged_model(registry.runs.experiment_id(spec), name="model", source_run_id=run_id)
    return run_id, f"models:/{logged.model_id}"


def assert_refused_naming_file_and_field(folder: Path, mutate: Any, field: str) -> None:
    """The bike spec changed by ``mutate`` and written to ``folder`` is refused with a
    ``SpecError`` that names the file and ``field``."""
    import pytest

    from retrainer.spec.dataset import DatasetSpec
    from retrainer.spec.fields import SpecError

    data = bike_spec_data()
    mutate(data)
    path = write_spec(folder, data)
    with pytest.raises(SpecError) as err:
        DatasetSpec.load(path)
    assert err.value.field == field
    assert str(path) in str(err.value) and field in str(err.value)


@contextlib.contextmanager
def logging_as_it_was() -> Iterator[None]:
    """The command line (``retrainer.__main__.main``) configures logging for a terminal: the
    root's level and handlers, and the level of ``retrainer``; put them back after it."""
    root, ours = logging.getLogger(), logging.getLogger("retrainer")
    handlers, level, our_level = list(root.handlers), root.level, ours.level
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        ours.setLevel(our_level)
