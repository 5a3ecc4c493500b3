"""One writer at a time for a registered model's aliases, serving labels and registrations.

MLflow has no compare-and-set: an alias write is last-writer-wins, and "find the run's
version, else register one" is check-then-create. Two promotions, a promotion and a
rollback, or a stuck task and its retry could each believe they won. The one atomic step
MLflow's model registry has is numbering a new model version (unique per model, in the
store's transaction), so that is the lock:

* a would-be writer takes a ticket: a version of the registered model ``<model>.lock``
  (one per model, no model files; created on first use);
* it goes ahead once no live ticket with a smaller number is left, and deletes its ticket
  when done (the lock model is normally empty);
* every ticket's owner bumps the ticket's ``lock.beat`` tag every ``HEARTBEAT_S``. A ticket
  whose beat has not changed for ``RETRAINER_LOCK_DEAD_AFTER_S`` (30 s) as seen by a waiter
  belongs to a process that died (SIGKILL, a lost worker): the waiter deletes it and goes
  on. No clocks are compared between hosts.

Held locks are re-entrant within a thread (a rollback promotes under the lock it holds).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from retrainer import schema

log = logging.getLogger(__name__)

LOCK_SUFFIX = schema.LOCK_MODEL.removeprefix(schema.EXPERIMENT_MODEL)  # ".lock"
LOCK_SOURCE = "retrainer://lock/ticket"  # a ticket has no model files (an absolute path: servers check)
HEARTBEAT_S = 2.0
_held = threading.local()


class RegistryBusyError(RuntimeError):
    """The model's lock could not be taken in time (another writer holds it and is alive)."""


def lock_model(model: str) -> str:
    return f"{model}{LOCK_SUFFIX}"


def dead_after_s() -> float:
    return float(os.environ.get("RETRAINER_LOCK_DEAD_AFTER_S", "30"))


def _missing(exc: BaseException) -> bool:
    return getattr(exc, "error_code", None) == "RESOURCE_DOES_NOT_EXIST"


def _take_ticket(client: Any, name: str, purpose: str, owner: str) -> int:
    from mlflow.exceptions import MlflowException

    about = f"retrainer: tickets that serialize writes of {name.removesuffix(LOCK_SUFFIX)}'s aliases and labels"
    try:
        client.create_registered_model(name, description=about + " (not a model)")
    except MlflowException as exc:
        if getattr(exc, "error_code", None) != "RESOURCE_ALREADY_EXISTS":
            raise
    tags = {schema.LOCK_PURPOSE: purpose, schema.LOCK_OWNER: owner, schema.LOCK_BEAT: "0"}
    mv = client.create_model_version(name, LOCK_SOURCE, tags=tags)
    return int(mv.version)


def _holder(tags: dict[str, str]) -> str:
    """Who holds a ticket and why, for a writer that waits."""
    return f"{tags.get(schema.LOCK_OWNER)} ({tags.get(schema.LOCK_PURPOSE)})"


class _Heartbeat(threading.Thread):
    def __init__(self, client: Any, name: str, ticket: int) -> None:
        super().__init__(name=f"lock-heartbeat-{name}-{ticket}", daemon=True)
        self.client, self.lock_name, self.ticket, self.stop = client, name, ticket, threading.Event()

    def run(self) -> None:
        beat = 0
        while not self.stop.wait(HEARTBEAT_S):
            beat += 1
            try:
                self.client.set_model_version_tag(self.lock_name, str(self.ticket), schema.LOCK_BEAT, str(beat))
            except Exception as exc:  # the server is away for a moment: waiters give us DEAD_AFTER
                log.warning("lock %s ticket %s: heartbeat failed: %s", self.lock_name, self.ticket, exc)


def _wait_turn(client: Any, name: str, ticket: int, wait_s: float) -> None:
    """Block until no live ticket below ``ticket`` is left; delete the dead ones."""
    seen: dict[int, tuple[str, float]] = {}  # ticket -> (last beat, when it last changed, here)
    deadline = time.monotonic() + wait_s
    pause = 0.05
    while True:
        ahead = {int(v.version): v for v in client.search_model_versions(f"name = '{name}'") if int(v.version) < ticket}
        now = time.monotonic()
        for number, mv in ahead.items():
            beat = (mv.tags or {}).get(schema.LOCK_BEAT, "")
            if number not in seen or seen[number][0] != beat:
                seen[number] = (beat, now)
            elif now - seen[number][1] > dead_after_s():
                log.warning(
                    "lock %s: ticket %s of %s (%s) stopped beating: its owner died; going on",
                    name,
                    number,
                    (mv.tags or {}).get(schema.LOCK_OWNER),
                    (mv.tags or {}).get(schema.LOCK_PURPOSE),
                )
                _delete(client, name, number)
        if not ahead:
            return
        if now > deadline:
            holders = ", ".join(_holder(v.tags or {}) for v in ahead.values())
            raise RegistryBusyError(f"{name}: still held after {wait_s:.0f} s by {holders}")
        time.sleep(pause)
        pause = min(pause * 1.5, 1.0)


def _delete(client: Any, name: str, ticket: int) -> None:
    try:
        client.delete_model_version(name, str(ticket))
    except Exception as exc:
        if not _missing(exc):
            raise


@contextmanager
def exclusive(client: Any, model: str, purpose: str, wait_s: float = 900.0) -> Iterator[None]:
    """Hold ``model``'s lock for the block (re-entrant within a thread)."""
    held: set[str] = getattr(_held, "models", set())
    _held.models = held
    if model in held:
        yield
        return
    name = lock_model(model)
    owner = f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"
    ticket = _take_ticket(client, name, purpose, owner)
    beat = _Heartbeat(client, name, ticket)
    beat.start()
    try:
        _wait_turn(client, name, ticket, wait_s)
        held.add(model)
        try:
            yield
        finally:
            held.discard(model)
    except BaseException as exc:
        _release(client, name, ticket, beat, failing=exc)
        raise
    else:
        _release(client, name, ticket, beat, failing=None)


def _release(client: Any, name: str, ticket: int, beat: _Heartbeat, failing: BaseException | None) -> None:
    """Stop the heartbeat and delete the ticket. When the block failed already (often because the
    server went away), a ticket that cannot be deleted is left to expire (waiters take it for a
    dead owner's after ``dead_after_s``) rather than hiding the block's own error."""
    beat.stop.set()
    beat.join(timeout=HEARTBEAT_S + 5)
    try:
        _delete(client, name, ticket)
    except Exception as exc:
        if failing is None:
            raise
        log.warning(
            "could not release %s ticket %s (%s: %s); it expires after %.0f s without heartbeat",
            name,
            ticket,
            type(exc).__name__,
            exc,
            dead_after_s(),
        )
