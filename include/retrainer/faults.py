"""Fault points: places between two writes where a test can break the run for real.

``RETRAINER_FAULT=<point>`` (e.g. ``rollback:alias``) makes the process that reaches that
point kill itself with SIGKILL there, as a lost worker would be: no cleanup, no exception
handler, no ``finally``. ``RETRAINER_FAULT_ONCE=<file>`` makes it fire only while that file
does not exist (it is created just before the kill, holding the point and the process id),
so the retry runs through. With ``RETRAINER_FAULT_ACTION=stall`` the process instead stops
at the point for ``RETRAINER_FAULT_STALL_S`` seconds (600 unless set), so that a test can
kill the whole host (a Celery worker and its task processes) at a known moment.

A test running the pipeline in its own process can instead hook a point (``hooked``): the
hook runs there, e.g. stops the S3 endpoint or the MLflow server the run talks to, and the
run goes on against the stopped component. Unset (always, outside the reliability tests)
a point does nothing.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

#: every point the code has, in the order a run reaches them
POINTS = (
    "version:pushing",  # the batch is added to DVC; its push to the remote starts
    "version:pushed",  # the data is in the remote; the commit and tag are not made yet
    "train:epoch",  # an epoch of training is over, the next not begun (the run and its tags exist)
    "train:model",  # params, metrics and reports logged; the model's artifacts not yet
    "register:created",
    "promote:alias",
    "publish:object",  # the first object of a version folder is in the S3 store, the rest not
    "deploy:tflite",  # the SavedModel is published; the TFLite artifact not yet
    "deploy:published",
    "deploy:loaded",
    "verify:stable",
    "rollback:pending",
    "rollback:alias",
    "rollback:label",
    "rollback:done",  # every write made, the pending record gone; the task has not reported success
)

_hooks: dict[str, Callable[[], None]] = {}


@contextmanager
def hooked(name: str, hook: Callable[[], None], once: bool = True) -> Iterator[list[int]]:
    """Run ``hook`` when this process reaches point ``name`` (once, unless ``once`` is False).
    Yields a list that grows by one each time the hook ran."""
    if name not in POINTS:
        raise ValueError(f"no fault point {name!r}; the points are {', '.join(POINTS)}")
    fired: list[int] = []

    def run() -> None:
        if once and fired:
            return
        fired.append(1)
        hook()

    _hooks[name] = run
    try:
        yield fired
    finally:
        _hooks.pop(name, None)


def point(name: str) -> None:
    """Break here if a reliability test asks for it."""
    hook = _hooks.get(name)
    if hook is not None:
        hook()
    if os.environ.get("RETRAINER_FAULT") != name:
        return
    once = os.environ.get("RETRAINER_FAULT_ONCE")
    if once:
        if Path(once).exists():
            return
        Path(once).write_text(f"{name} {os.getpid()}")
    if os.environ.get("RETRAINER_FAULT_ACTION") == "stall":
        time.sleep(float(os.environ.get("RETRAINER_FAULT_STALL_S", "600")))
        return
    os.kill(os.getpid(), signal.SIGKILL)
