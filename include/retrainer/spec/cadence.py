"""How often each dataset spec retrains on schedule, read for ``retrain_model``'s timetable as
the DAG file is parsed: two fields of each spec's YAML (``frequency`` and ``training.every``),
nothing else. Parsing runs again and again in the DAG processor, so this module stays light (no
spec records); the whole spec is checked by ``retrainer.spec.dataset`` where it is used, and a
spec that does not load fails there with its reason (``pipeline.train.due_datasets`` leaves it out).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from retrainer.periods import FREQUENCIES, retrain_every
from retrainer.spec.yamlfile import YAMLError, load_yaml

log = logging.getLogger(__name__)


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
        except (YAMLError, OSError, UnicodeDecodeError) as exc:
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
