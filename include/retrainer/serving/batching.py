"""Adaptive request batching for the model server: concurrent requests share one model call.

Each served version has one batching thread. A request hands its input arrays to it and waits.
The thread takes the first request waiting and, **only while other requests are coming**,
waits up to ``timeout_s`` for them to join, up to ``max_rows`` rows; then it calls the model
once on all their rows and hands each request its own rows of the answer. Requests are coming
while others are in flight (being parsed, checked or queued for the same version) or while
other clients are active: open connections that sent a request for the version within the
last ``ACTIVE_TIMEOUTS`` timeouts. A keep-alive connection carries one request at a time, so
each active one is a request that will come back (without counting them, the clients a batch
just answered would each start a batch of their own as their next requests arrive); a closed
one is forgotten. A lone client is never made to wait: a request with no other in flight and
none queued calls the model in its own thread. The limits
mirror TensorFlow Serving's batching parameters (``batch_timeout_micros``, ``max_batch_size``);
``RETRAINER_SERVING_BATCH_TIMEOUT_US`` (default 1000; 0 turns batching off) and
``RETRAINER_SERVING_MAX_BATCH_ROWS`` (default 256) set them.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

#: one model call: input values by input name (one array each, rows first) -> the output rows
Call = Callable[[dict[str, Any]], Any]
#: a client is active for this many batch timeouts after its last request (10 ms at the default)
ACTIVE_TIMEOUTS = 10


@dataclass(frozen=True)
class BatchLimits:
    timeout_s: float = 0.001  # how long a batch waits for requests in flight to join it
    max_rows: int = 256  # rows of one model call (a larger request runs alone)

    @property
    def enabled(self) -> bool:
        return self.timeout_s > 0 and self.max_rows > 1

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> BatchLimits:
        env = dict(os.environ if env is None else env)
        timeout = env.get("RETRAINER_SERVING_BATCH_TIMEOUT_US", "1000")
        rows = env.get("RETRAINER_SERVING_MAX_BATCH_ROWS", "256")
        timeout_us = _number("RETRAINER_SERVING_BATCH_TIMEOUT_US", timeout)
        max_rows = _number("RETRAINER_SERVING_MAX_BATCH_ROWS", rows)
        return cls(timeout_us / 1e6, int(max_rows))


def _number(key: str, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{key} must be a number, got {raw!r}") from None
    if value < 0:
        raise ValueError(f"{key} must be 0 or more, got {raw!r}")
    return value


@dataclass
class _Request:
    inputs: dict[str, np.ndarray]
    rows: int
    done: threading.Event = field(default_factory=threading.Event)
    result: Any = None
    error: BaseException | None = None


class Batcher:
    """One version's batching thread (see the module docstring). ``calls`` and ``rows`` count
    model calls and the rows they took, for tests; ``observe`` hears how many requests each
    model call answered."""

    def __init__(
        self, call: Call, limits: BatchLimits, name: str = "", observe: Callable[[int], None] | None = None
    ) -> None:
        self._call = call
        self._observe = observe  # told the number of requests of each model call (the server's metrics)
        self.limits = limits
        self._queue: queue.SimpleQueue[_Request] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._in_flight = 0
        self._seen: dict[Hashable, float] = {}  # client (a connection) -> when its last request came
        self._active_s = limits.timeout_s * ACTIVE_TIMEOUTS
        self.calls = 0
        self.rows = 0
        threading.Thread(target=self._run, name=f"batch-{name}", daemon=True).start()

    @contextmanager
    def in_flight(self, client: Hashable | None = None) -> Iterator[None]:
        """Around a request from its first byte to its answer: while it lasts, a batch being
        formed waits for the request to join it (up to the timeout). ``client`` names the
        connection it came on (None: not counted among the active clients)."""
        with self._lock:
            self._in_flight += 1
            if client is not None:
                self._seen[client] = time.monotonic()
        try:
            yield
        finally:
            with self._lock:
                self._in_flight -= 1

    def __call__(self, inputs: dict[str, np.ndarray]) -> Any:
        """The model's answer for these rows (call within :meth:`in_flight`). A request alone
        (no other in flight, none queued) calls the model in its own thread: no hand-off to the
        batching thread and back, which costs a lone client's latency two thread switches."""
        rows = len(next(iter(inputs.values())))
        request = _Request(inputs, rows)
        with self._lock:
            alone = self._in_flight <= 1 and self._queue.empty()
        if alone:
            self._run_batch([request])
        else:
            self._queue.put(request)
        request.done.wait()
        if request.error is not None:
            raise request.error
        return request.result

    def forget(self, client: Hashable) -> None:
        """``client``'s connection closed: it sends nothing more, so nothing waits for it."""
        with self._lock:
            self._seen.pop(client, None)

    def _active(self) -> int:
        """Clients active now (call under the lock); those gone quiet are forgotten."""
        since = time.monotonic() - self._active_s
        gone = [c for c, t in self._seen.items() if t < since]
        for c in gone:
            del self._seen[c]
        return len(self._seen)

    def _others_coming(self, batch: list[_Request]) -> bool:
        with self._lock:
            return max(self._in_flight, self._active()) > len(batch)

    def _collect(self, first: _Request) -> list[_Request]:
        batch, rows = [first], first.rows
        deadline = time.monotonic() + self.limits.timeout_s
        while rows < self.limits.max_rows:
            try:
                nxt = self._queue.get_nowait()
            except queue.Empty:
                left = deadline - time.monotonic()
                if left <= 0 or not self._others_coming(batch):
                    break
                try:
                    nxt = self._queue.get(timeout=min(left, 0.0002))
                except queue.Empty:
                    continue
            if rows + nxt.rows > self.limits.max_rows:
                self._run_batch([nxt])  # would overflow this batch: runs on its own, not late
                continue
            batch.append(nxt)
            rows += nxt.rows
        return batch

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            self._run_batch(self._collect(first) if first.rows < self.limits.max_rows else [first])

    def _run_batch(self, batch: list[_Request]) -> None:
        import numpy as np

        try:
            if len(batch) == 1:
                out = self._call(batch[0].inputs)
                parts = [out]
            else:
                names = batch[0].inputs.keys()
                joined = {n: np.concatenate([r.inputs[n] for r in batch]) for n in names}
                out = self._call(joined)
                parts = np.split(out, np.cumsum([r.rows for r in batch])[:-1])
            with self._lock:  # the batching thread and a lone request's own thread both count
                self.calls += 1
                self.rows += sum(r.rows for r in batch)
            if self._observe is not None:
                self._observe(len(batch))
            for request, part in zip(batch, parts, strict=True):
                request.result = part
        except BaseException as exc:  # every waiting request hears of it
            for request in batch:
                request.error = exc
        finally:
            for request in batch:
                request.done.set()
