"""The one YAML loader of the spec files: YAML 1.1 safe loading, through libyaml when PyYAML
has it (the same documents, several times faster: the DAG files read the specs as they are
parsed, through ``retrainer.spec.cadence``)."""

from __future__ import annotations

from typing import Any

import yaml

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

#: what a document that is not YAML raises
YAMLError = yaml.YAMLError


def load_yaml(text: str) -> Any:
    """A spec's YAML as data (safe loading)."""
    return yaml.load(text, Loader=_LOADER)  # noqa: S506 (a safe loader)
