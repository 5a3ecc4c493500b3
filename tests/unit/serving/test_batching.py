"""Adaptive request batching: concurrent requests share model calls, each gets its own rows
back, a lone client never waits, errors reach every request of the batch."""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np
import pytest

from retrainer.serving.batching import Batcher, BatchLimits
from retrainer_dev.waiting import wait_until


class FakeModel:
    """Doubles ``x``; each call takes a little while (as a model call does) and is recorded."""

    def __init__(self, seconds: float = 0.003, fail: bool = False) -> None:
        self.seconds, self.fail = seconds, fail
        self.batch_rows: list[int] = []
        self.threads: list[str] = []  # the thread each call ran in

    def __call__(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        time.sleep(self.seconds)
        self.batch_rows.append(len(inputs["x"]))
        self.threads.append(threading.current_thread().name)
        if self.fail:
            raise RuntimeError("the model broke")
        return inputs["x"] * 2 + (inputs["tag"] == "b")


def _ask(batcher: Batcher, x: np.ndarray, tag: str = "a", client: str | None = None) -> np.ndarray:
    with batcher.in_flight(client):
        return np.asarray(batcher({"x": x, "tag": np.array([tag] * len(x), dtype=object)}))


def _clients(batcher: Batcher, clients: int, each: int) -> dict[tuple[int, int], tuple[np.ndarray, np.ndarray]]:
    answers: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}

    def client(c: int) -> None:
        for k in range(each):
            x = np.arange(1 + (c + k) % 3, dtype=float) + 100 * c + k
            answers[(c, k)] = (x, _ask(batcher, x, "b" if c % 2 else "a"))

    threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return answers


def test_concurrent_requests_share_calls_and_each_gets_its_own_rows() -> None:
    model = FakeModel()
    heard: list[int] = []
    batcher = Batcher(model, BatchLimits(timeout_s=0.002, max_rows=16), "fake", heard.append)
    answers = _clients(batcher, clients=8, each=20)
    assert len(answers) == 160
    assert sum(heard) == 160 and len(heard) == batcher.calls  # each call told how many requests it answered
    for (c, _), (x, y) in answers.items():
        np.testing.assert_array_equal(y, x * 2 + (c % 2))
    assert batcher.rows == sum(len(x) for x, _ in answers.values())
    assert batcher.calls == len(model.batch_rows) < 160  # requests were batched
    assert max(model.batch_rows) <= 16


def test_a_lone_client_is_never_made_to_wait() -> None:
    """With a timeout of a minute, sequential requests still go through one by one at once,
    each in its own thread (no hand-off to the batching thread and back): the batch waits
    only while other requests are in flight."""
    model = FakeModel(seconds=0)
    batcher = Batcher(model, BatchLimits(timeout_s=60, max_rows=64), "lone")
    done: list[np.ndarray] = []
    ask = lambda k: _ask(batcher, np.array([float(k)]), client="only")  # noqa: E731
    worker = threading.Thread(target=lambda: done.extend(ask(k) for k in range(5)), name="client")
    worker.start()
    worker.join(timeout=20)
    assert len(done) == 5 and model.batch_rows == [1] * 5
    assert model.threads == ["client"] * 5 and batcher.calls == 5


def test_a_batch_waits_for_an_active_client_between_its_requests() -> None:
    """Clients a, b and c sent requests moments ago. a's and b's next requests are in flight
    together; c is not in flight (it is reading its answer and writing the next request): the
    batch waits for c's request too, and the three share one call. Once c's connection closes,
    nothing waits for it."""
    model = FakeModel(seconds=0)
    batcher = Batcher(model, BatchLimits(timeout_s=2.0, max_rows=64), "active")
    for client in ("a", "b", "c"):  # all three seen
        _ask(batcher, np.array([0.0]), client=client)
    model.batch_rows.clear()
    waiting_with: list[int] = []  # the size of the batch each time it waited for another request
    others_coming = batcher._others_coming

    def watched(batch: list[Any]) -> bool:
        coming = others_coming(batch)
        if coming:
            waiting_with.append(len(batch))
        return coming

    batcher._others_coming = watched  # type: ignore[method-assign]
    both_in = threading.Barrier(2)
    answers: dict[str, np.ndarray] = {}

    def together(client: str, x: float) -> None:
        with batcher.in_flight(client):
            both_in.wait()
            answers[client] = np.asarray(batcher({"x": np.array([x]), "tag": np.array(["a"], dtype=object)}))

    threads = [threading.Thread(target=together, args=(c, x)) for c, x in (("a", 1.0), ("b", 2.0))]
    for t in threads:
        t.start()
    # c comes back later, while a's and b's batch waits for it (well within the timeout)
    wait_until(lambda: 2 in waiting_with, 2.0, interval_s=0.001, what="a's and b's batch waiting for another request")
    answers["c"] = _ask(batcher, np.array([3.0]), client="c")
    for t in threads:
        t.join(timeout=20)
    assert model.batch_rows == [3]  # one call for the three
    assert {k: float(v[0]) for k, v in answers.items()} == {"a": 2.0, "b": 4.0, "c": 6.0}
    with batcher._lock:
        assert batcher._active() == 3
    batcher.forget("c")  # c's connection closed
    with batcher._lock:
        assert batcher._active() == 2


def test_a_request_larger_than_a_batch_runs_alone() -> None:
    model = FakeModel()
    batcher = Batcher(model, BatchLimits(timeout_s=0.002, max_rows=4), "big")
    y = _ask(batcher, np.arange(10, dtype=float))
    np.testing.assert_array_equal(y, np.arange(10) * 2)
    assert model.batch_rows == [10]


def test_an_error_reaches_every_request_of_the_batch() -> None:
    batcher = Batcher(FakeModel(fail=True), BatchLimits(timeout_s=0.002, max_rows=16), "broken")
    errors: list[BaseException] = []

    def client() -> None:
        try:
            _ask(batcher, np.array([1.0]))
        except RuntimeError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=client) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(errors) == 6 and all(str(e) == "the model broke" for e in errors)


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, BatchLimits(0.001, 256)),
        ({"RETRAINER_SERVING_BATCH_TIMEOUT_US": "0"}, BatchLimits(0.0, 256)),
        (
            {"RETRAINER_SERVING_BATCH_TIMEOUT_US": "250", "RETRAINER_SERVING_MAX_BATCH_ROWS": "32"},
            BatchLimits(0.00025, 32),
        ),
    ],
)
def test_limits_from_settings(env: dict[str, str], expected: BatchLimits) -> None:
    limits = BatchLimits.from_env(env)
    assert limits == expected
    assert limits.enabled == (expected.timeout_s > 0)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"RETRAINER_SERVING_BATCH_TIMEOUT_US": "1ms"},
            "RETRAINER_SERVING_BATCH_TIMEOUT_US must be a number, got '1ms'",
        ),
        ({"RETRAINER_SERVING_MAX_BATCH_ROWS": "-1"}, "RETRAINER_SERVING_MAX_BATCH_ROWS must be 0 or more, got '-1'"),
    ],
)
def test_bad_limits_are_refused_by_name(env: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        BatchLimits.from_env(env)
