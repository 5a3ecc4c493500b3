"""How often each dataset spec retrains on schedule, read for ``retrain_model``'s timetable as
the DAG file is parsed: two fields of each spec's YAML (``frequency`` and ``training.every``),
nothing else. Parsing runs again and again in the DAG processor, so this module stays light (no
spec dataclasses); the whole spec is checked by ``retrainer.spec`` where it is used, and a spec
that does not load fails there with its reason (``pipeline.train.due_datasets`` leaves it out).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import yaml

from retrainer.periods import FREQUENCIES, retrain_every

log = logging.getLogger(__name__)

#: YAML 1.1 safe loading, through libyaml when PyYAML has it (the same documents, several times
#: faster: the DAG files read the specs as they are parsed)
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_yaml(text: str) -> Any:
    """A spec's YAML as data (safe loading; ``retrainer.spec`` reads specs through it too)."""
    return yaml.load(text, Loader=_LOADER)  # noqa: S506 (a safe loader)


def _cadence(raw: Any) -> str | None:
    if not isinstance(raw, dict):
        return None
    frequency = raw.get("frequency", "monthly")
    training = raw.get("training") or {}
    every = training.get("every", "") if isinstance(training, dict) else None
    if frequency not in FREQUENCIES or (every and every not in FREQUENCIES) or every is None:
        return None
    return retrain_every(frequency, every or "")


def cadences(folder: Path | str) -> dict[str, str]:
    """Spec name -> how often it retrains on schedule (``periods.retrain_every``), for each spec
    in ``folder`` whose two fields read; one that does not is logged and left out."""
    out = {}
    for path in sorted(Path(folder).glob("*.yaml")):
        try:
            cadence = _cadence(load_yaml(path.read_text()))
        except (yaml.YAMLError, OSError, UnicodeDecodeError) as exc:
            log.error("not retrained on schedule: %s: %s", path, exc)
            continue
        if cadence is None:
            log.error(
                "not retrained on schedule: %s: frequency or training.every is not one of %s",
                path,
                ", ".join(FREQUENCIES),
            )
            continue
        out[path.stem] = cadence
    return out
