"""The dataset specs, checked each time the Airflow DAG processor parses the DAG files: a spec
that does not load is an import error of this file (the UI's "DAG Import Errors"), naming each
spec file, field and fix. This file defines no DAG; the DAGs go on with the specs that load,
and a run of a broken spec's dataset fails at once, naming the spec.

``python -m retrainer spec check`` says the same before a spec reaches the specs folder.
"""

from __future__ import annotations

from retrainer.settings import specs_dir
from retrainer.spec.dataset import spec_errors


class BrokenSpecError(Exception):
    """Dataset specs of the specs folder that do not load, each with every error it has."""


def _broken() -> list[str]:
    out = []
    for path in sorted(specs_dir().glob("*.yaml")):
        errors = spec_errors(path)
        if errors:
            out.append(f"{path}:\n" + "\n".join(f"  field '{e.field}': {e.problem}" for e in errors))
    return out


_BROKEN = _broken()
if _BROKEN:
    raise BrokenSpecError(
        f"{len(_BROKEN)} dataset spec(s) do not load; their datasets' runs fail until each is fixed"
        " (check a fix with: python -m retrainer spec check <name>)\n" + "\n".join(_BROKEN)
    )
