"""Process groups of the services started for ``make up`` and for the tests."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Callable

from retrainer_dev.waiting import WaitTimeout, wait_until


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False


def stop_group(pgid: int, grace: float = 20.0, running: Callable[[], bool] | None = None) -> None:
    """TERM to the whole process group, then KILL whatever is left of it after ``grace`` seconds
    (or as soon as ``running`` says the processes that matter are gone: stragglers such as task
    processes are killed then)."""
    running = running or (lambda: group_alive(pgid))
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
    with contextlib.suppress(WaitTimeout):  # the grace is over: KILL below
        wait_until(lambda: not running(), grace, interval_s=0.3, what=f"process group {pgid} to end")
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)
