"""Helpers the test modules share (fixtures live in the conftest files)."""

from __future__ import annotations

import asyncio
import os
import socket
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]


def subprocess_env() -> dict[str, str]:
    """This environment, with the repository's code importable: for a test's helper processes
    (``python -m tests.reliability.<step>``)."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join(str(REPO / p) for p in ("", "include", "plugins", "tools"))}


def free_port() -> int:
    """A TCP port on loopback that nothing listens on (now)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def small_bike_spec(specs: Path, window: int = 2, epochs: int = 6, review: bool = False) -> Path:
    """The bike spec with a short window and few epochs, written into ``specs``; with ``review``,
    a reviewer's decision before promotion (where the spec has an approval policy), so the
    Human-in-the-loop path runs too."""
    spec = yaml.safe_load((REPO / "include" / "specs" / "bike_sharing.yaml").read_text())
    spec["training"].update(window_periods=window, epochs=epochs)
    if review and isinstance(spec.get("approval"), dict):
        spec["approval"]["policy"] = "review"
    specs.mkdir(parents=True, exist_ok=True)
    path = specs / "bike_sharing.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def first_event(trigger: Any, timeout: float = 5.0) -> Any:
    """The first event a trigger's ``run()`` yields, driven in an event loop (TimeoutError if none)."""

    async def first() -> Any:
        async for event in trigger.run():
            return event
        return None

    return asyncio.run(asyncio.wait_for(first(), timeout))
