"""Fault points: places between two writes where a test can kill the task for real.

``RETRAINER_FAULT=<point>`` (e.g. ``rollback:alias``) makes the process that reaches that
point kill itself with SIGKILL there, as a lost worker would be: no cleanup, no exception
handler, no ``finally``. Unset (always, outside the reliability tests) a point does nothing.
``RETRAINER_FAULT_ONCE=<file>`` makes it fire only while that file does not exist (it is
created just before the kill), so the retry runs through.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

#: every point the code has, in the order a run reaches them
POINTS = (
    "register:created",
    "promote:alias",
    "deploy:published",
    "deploy:loaded",
    "verify:stable",
    "rollback:pending",
    "rollback:alias",
    "rollback:label",
)


def point(name: str) -> None:
    """Die here if the reliability tests ask for it."""
    if os.environ.get("RETRAINER_FAULT") != name:
        return
    once = os.environ.get("RETRAINER_FAULT_ONCE")
    if once:
        if Path(once).exists():
            return
        Path(once).write_text(name)
    os.kill(os.getpid(), signal.SIGKILL)
