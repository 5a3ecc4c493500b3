"""Helpers the test modules share (fixtures live in the conftest files; the stacks, free ports
and the small training spec are developer tooling: ``retrainer_dev.stacks``)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def subprocess_env() -> dict[str, str]:
    """This environment, with the repository's code importable: for a test's helper processes
    (``python -m tests.reliability.<step>``)."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join(str(REPO / p) for p in ("", "include", "plugins", "tools"))}


def first_event(trigger: Any, timeout: float = 5.0) -> Any:
    """The first event a trigger's ``run()`` yields, driven in an event loop (TimeoutError if none)."""

    async def first() -> Any:
        async for event in trigger.run():
            return event
        return None

    return asyncio.run(asyncio.wait_for(first(), timeout))
