"""Components that go away for real, for the reliability tests.

``Gate`` puts a TCP front on a server's port: while it is down its port refuses connections
and every connection in flight is reset, as when the server's process or host stops; brought
back, it forwards again to the same server, whose data survived (an S3 store restarting on
its volume). ``retrainer_dev.stacks.mlflow.MlflowServer`` is a real ``mlflow server`` process
that can be stopped and started again on the same port over the same database. ``until``
brings a component back once a condition holds (e.g. the task that met the outage has
failed), so a client's own retries cannot ride over the outage and the task's retry is what
recovers.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable
from typing import Protocol

from retrainer_dev.stacks.ports import free_port
from retrainer_dev.waiting import WaitTimeout, wait_until


class Component(Protocol):
    def stop(self) -> None: ...
    def start(self) -> None: ...


class Gate:
    """A TCP front on ``127.0.0.1:<target>``: clients use ``url``; ``stop`` and ``start``."""

    def __init__(self, target_port: int) -> None:
        self.target = target_port
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._listener: socket.socket | None = None
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()
        self.outages = 0

    def start(self) -> None:
        if self._listener is not None:
            return
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def stop(self) -> None:
        """Close the port and reset every open connection."""
        listener, self._listener = self._listener, None
        if listener is None:
            return
        self.outages += 1
        listener.close()
        with self._lock:
            conns, self._conns = set(self._conns), set()
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                conn.close()  # linger 0: the peer gets a reset, as from a host that went away

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # closed by stop()
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target), timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns |= {client, upstream}
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
            with self._lock:
                self._conns -= {src, dst}


def until(component: Component, condition: Callable[[], bool], limit_s: float = 300.0) -> Callable[[], None]:
    """A fault-point hook: stop ``component`` now and start it again, from another thread, once
    ``condition()`` holds (or after ``limit_s``)."""

    def hook() -> None:
        component.stop()

        def back() -> None:
            # the condition reads a database that may be busy: an error is another "not yet"
            with contextlib.suppress(WaitTimeout):  # after limit_s it comes back regardless
                wait_until(condition, limit_s, interval_s=0.5, what="the outage's end", retry_on=(Exception,))
            component.start()

        threading.Thread(target=back, daemon=True).start()

    return hook
