"""Waiting for something to happen: one poll loop for the stacks, the tests and the benchmarks.

``wait_until(condition, timeout_s)`` calls ``condition()`` until it returns a truthy value and
returns that value. It looks once at once, then every ``interval_s`` seconds, and a last time
at the deadline; if the condition has not held by then it raises :class:`WaitTimeout`, whose
message says what was awaited (``what``), for how long, what the condition answered last (or
the error it raised last) and, with ``details``, whatever else explains the wait (component
logs, task states).

An exception the condition raises ends the wait at once and reaches the caller unchanged: a
component that died, an answer that can never turn into the one awaited. Only the exception
types named in ``retry_on`` mean "not yet" (a server that does not listen yet refuses the
connection): they are retried like a falsy answer, the last one is named in the timeout's
message and chained to it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

#: how much of the last answer or error the timeout's message repeats
SHOWN_CHARS = 1000


class WaitTimeout(TimeoutError):
    """What was awaited did not happen in time (the message says what, how long, and what was seen)."""


def _shown(text: str) -> str:
    return text if len(text) <= SHOWN_CHARS else text[:SHOWN_CHARS] + " ..."


def wait_until(
    condition: Callable[[], T | None],
    timeout_s: float,
    *,
    interval_s: float = 1.0,
    what: str = "the condition",
    retry_on: tuple[type[Exception], ...] = (),
    details: Callable[[], str] | None = None,
) -> T:
    """``condition()``'s first truthy value, polled every ``interval_s`` s for up to ``timeout_s`` s.

    Raises :class:`WaitTimeout` when the time is up (after a last look at the deadline);
    exceptions of ``retry_on`` count as "not yet", every other exception ends the wait at
    once. ``details()`` is called once, on the timeout, and its text ends the message.
    """
    started = time.monotonic()
    deadline = started + timeout_s
    looks = 0
    error: Exception | None = None
    while True:
        looks += 1
        try:
            value = condition()
        except retry_on as exc:
            last, error = f"last error: {type(exc).__name__}: {_shown(str(exc))}", exc
        else:
            if value:
                return value
            last, error = f"last answer: {_shown(repr(value))}", None
        left = deadline - time.monotonic()
        if left <= 0:
            took = time.monotonic() - started
            message = f"{what}: not within {timeout_s:g} s ({looks} looks in {took:.1f} s); {last}"
            if details is not None:
                message += "\n" + details()
            raise WaitTimeout(message) from error
        time.sleep(min(interval_s, left))
