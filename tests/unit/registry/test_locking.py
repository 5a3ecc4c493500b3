"""One writer at a time of a model's aliases, labels and registrations: tickets that are versions
of ``<model>.lock`` in MLflow's registry, taken in number order, re-entrant within a thread, and
a dead owner's ticket removed once its heartbeat stopped. (Promotions racing across processes:
tests/reliability/.)"""

from __future__ import annotations

import logging
import threading
import time

import pytest

from retrainer import schema
from retrainer.registry import locking
from retrainer.registry.client import Registry
from retrainer.settings import Settings

MODEL = "bike_demand"
LOCK = f"{MODEL}.lock"


def _tickets(client: object) -> list[dict[str, str]]:
    return [dict(v.tags) for v in client.search_model_versions(f"name = '{LOCK}'")]  # type: ignore[attr-defined]


def test_a_lock_is_a_ticket_while_held_and_nothing_after(settings: Settings) -> None:
    client = Registry(settings).client
    assert locking.lock_model(MODEL) == LOCK
    with locking.exclusive(client, MODEL, "promote v3"):
        (ticket,) = _tickets(client)
        assert ticket[schema.LOCK_PURPOSE] == "promote v3" and ticket[schema.LOCK_BEAT] == "0"
        assert ticket[schema.LOCK_OWNER].endswith(f":{threading.get_ident()}")
        assert "(not a model)" in client.get_registered_model(LOCK).description
    assert _tickets(client) == []


def test_the_lock_is_released_when_the_block_fails(settings: Settings) -> None:
    client = Registry(settings).client
    with pytest.raises(KeyError), locking.exclusive(client, MODEL, "deploy v2"):
        raise KeyError("inside")
    assert _tickets(client) == []
    with locking.exclusive(client, MODEL, "again"):  # and can be taken again
        pass


def test_a_thread_holding_the_lock_takes_it_again_without_a_second_ticket(settings: Settings) -> None:
    client = Registry(settings).client
    inner = locking.exclusive(client, MODEL, "promote inside", wait_s=5)  # not re-entrant: busy after 5 s
    with locking.exclusive(client, MODEL, "rollback"), inner:
        assert len(_tickets(client)) == 1
    assert _tickets(client) == []


def test_writers_take_turns(settings: Settings) -> None:
    client = Registry(settings).client
    inside, order = threading.Event(), []
    release = threading.Event()

    def first() -> None:
        with locking.exclusive(client, MODEL, "first"):
            inside.set()
            release.wait(10)
            order.append("first done")

    holder = threading.Thread(target=first)
    holder.start()
    assert inside.wait(10)
    threading.Timer(0.3, release.set).start()
    with locking.exclusive(client, MODEL, "second"):
        order.append("second in")
    holder.join(10)
    assert order == ["first done", "second in"]


def test_a_writer_that_waits_too_long_is_told_who_holds_the_lock(settings: Settings) -> None:
    client = Registry(settings).client
    inside, release = threading.Event(), threading.Event()

    def holder() -> None:
        with locking.exclusive(client, MODEL, "deploy v7"):
            inside.set()
            release.wait(10)

    thread = threading.Thread(target=holder)
    thread.start()
    try:
        assert inside.wait(10)
        with (
            pytest.raises(
                locking.RegistryBusyError, match=r"bike_demand\.lock: still held after 0 s by .* \(deploy v7\)"
            ),
            locking.exclusive(client, MODEL, "promote v8", wait_s=0.2),
        ):
            pass
        assert [t[schema.LOCK_PURPOSE] for t in _tickets(client)] == ["deploy v7"]  # the waiter's ticket is gone
    finally:
        release.set()
        thread.join(10)


def test_the_ticket_of_a_writer_that_died_is_removed(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A ticket whose beat does not change for RETRAINER_LOCK_DEAD_AFTER_S belongs to a process
    that is gone: the next writer deletes it and goes on."""
    monkeypatch.setenv("RETRAINER_LOCK_DEAD_AFTER_S", "0.3")
    client = Registry(settings).client
    locking._take_ticket(client, LOCK, "train", "gone-host:1:1")  # no heartbeat: its owner died
    started = time.monotonic()
    with (
        caplog.at_level(logging.WARNING, logger="retrainer.registry.locking"),
        locking.exclusive(client, MODEL, "promote"),
    ):
        assert [t[schema.LOCK_PURPOSE] for t in _tickets(client)] == ["promote"]
    assert time.monotonic() - started >= 0.3
    assert "ticket 1 of gone-host:1:1 (train) stopped beating: its owner died" in caplog.text
