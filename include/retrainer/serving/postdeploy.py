"""The check after each deploy, through a model server as clients see it.

Three questions, asked over HTTP of TensorFlow Serving's REST API against the version as
the server resolves it (by its ``canary`` label while the check runs, so ``stable`` keeps
serving the previous version until the check passes):

* health: does the server report the version AVAILABLE?
* correctness: do its predictions on sample holdout rows equal the registry model's?
* latency: is the 99th percentile of single-row requests under the spec's limit?
* telemetry: did the server's own Prometheus metrics (TensorFlow Serving's path and names,
  ``retrainer.serving.prometheus``) count those requests for the version? The server-side p99
  is recorded beside the client's. A server that exposes no metrics is noted, not failed.

The server is ``RETRAINER_SERVING_URL`` when one is set (TensorFlow Serving, or ``make
serve``); otherwise the embedded model server is started on loopback over the model store
for the check (over a local copy of the version when the store is on S3).
"""

from __future__ import annotations

import http.client
import json
import logging
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pandas as pd

from retrainer import storage
from retrainer.records import ServerCheck
from retrainer.serving import modelstore, prometheus, rest
from retrainer.serving.export import compare
from retrainer.settings import Settings
from retrainer.spec.dataset import DatasetSpec

log = logging.getLogger(__name__)


class DeployCheckError(RuntimeError):
    """The deployed version failed its check; the message says which part and by how much."""


class _Client:
    """One keep-alive connection to the server."""

    def __init__(self, base_url: str, timeout: float = 30.0) -> None:
        parts = urlsplit(base_url)
        self.prefix = parts.path.rstrip("/")
        self.conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=timeout)

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"} if data is not None else {}
        self.conn.request(method, self.prefix + path, body=data, headers=headers)
        resp = self.conn.getresponse()
        raw = resp.read()
        try:
            return resp.status, json.loads(raw or b"null")
        except json.JSONDecodeError:
            return resp.status, raw.decode(errors="replace")

    def close(self) -> None:
        self.conn.close()


def _rows(df: pd.DataFrame, spec: DatasetSpec) -> list[dict[str, Any]]:
    """Raw feature rows as a client would send them (missing values as null)."""
    out = []
    for rec in df[list(spec.feature_names)].to_dict("records"):
        out.append(
            {str(k): None if pd.isna(v) else v.item() if isinstance(v, np.generic) else v for k, v in rec.items()}
        )
    return out


@contextmanager
def endpoint(settings: Settings, spec: DatasetSpec, version: str, labels: dict[str, int]) -> Iterator[str]:
    """The base URL of the server the check goes through (see the module docstring)."""
    if settings.serving_url:
        yield settings.serving_url
        return
    store = settings.model_store
    scratch: Path | None = None
    if store.startswith("s3://"):
        scratch = storage.temp_dir("retrainer-check-")
        for v in {int(version), *labels.values()}:
            if modelstore.has_version(store, spec.model_name, v, settings.s3_endpoint_url):
                src = modelstore.version_location(store, spec.model_name, v)
                storage.download_dir(src, scratch / spec.model_name / str(v), settings.s3_endpoint_url)
        for label, v in labels.items():
            modelstore.set_label(scratch, spec.model_name, label, v)
        store = str(scratch)
    # no warm-up of every served version: the check loads the one it checks, as a request would
    httpd = rest.serve(Path(store), "127.0.0.1", 0, warm=False)
    thread = threading.Thread(target=httpd.serve_forever, name="deploy-check-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_port}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


def waiter(settings: Settings, spec: DatasetSpec, wait_s: float = 180.0) -> modelstore.Waiter | None:
    """Between the two writes of a label move: wait until the server clients use
    (``RETRAINER_SERVING_URL``) reports the version AVAILABLE. None without such a server (the
    embedded one reads the config on each request and loads versions on demand)."""
    url = settings.serving_url
    if not url:
        return None

    def wait(version: int) -> None:
        client = _Client(url)
        try:
            route = f"/v1/models/{spec.model_name}/versions/{version}"
            client = _wait_available(client, url, route, str(version), wait_s)
        finally:
            client.close()

    return wait


def check(
    base_url: str,
    spec: DatasetSpec,
    version: str,
    sample: pd.DataFrame,
    expected: np.ndarray,
    label: str | None = None,
    wait_s: float = 60.0,
) -> ServerCheck:
    """Health, correctness and latency of ``version`` as served at ``base_url``."""
    route = f"/v1/models/{spec.model_name}" + (f"/labels/{label}" if label else f"/versions/{int(version)}")
    client = _Client(base_url)
    try:
        client = _wait_available(client, base_url, route, version, wait_s)
        rows = _rows(sample, spec)
        diff = _check_predictions(client, base_url, route, rows, expected, spec.deploy.tolerance)
        before = _metrics(client)
        p50, p99, times = _check_latency(client, route, rows, spec.deploy.latency_requests, spec.deploy.max_p99_ms)
        counted, server_p99 = _check_metrics(before, _metrics(client), spec.model_name, version, label, times + 1)
    finally:
        client.close()
    log.info(
        "deploy check of %s v%s at %s%s: max |diff| %.3g on %d rows, p50 %.1f ms, p99 %.1f ms (server: %s)",
        spec.model_name,
        version,
        base_url,
        route,
        diff,
        len(rows),
        p50,
        p99,
        "no metrics" if counted < 0 else f"{counted} counted, p99 <= {server_p99} ms",
    )
    return ServerCheck(base_url, route, diff, len(rows), p50, p99, times, counted, server_p99)


def _wait_available(client: _Client, base_url: str, route: str, version: str, wait_s: float) -> _Client:
    """Health: a server may need a moment to load a new version (TF Serving polls its config)."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            status, body = client.call("GET", route)
        except OSError as exc:
            status, body = 0, str(exc)
            client.close()
            client = _Client(base_url)
        states = body.get("model_version_status", []) if isinstance(body, dict) else []
        if status == 200 and any(
            s.get("version") == str(int(version)) and s.get("state") == "AVAILABLE" for s in states
        ):
            return client
        if time.monotonic() > deadline:
            raise DeployCheckError(
                f"health: {base_url}{route} did not report v{version} AVAILABLE within {wait_s:.0f} s "
                f"(last answer: HTTP {status} {str(body)[:300]})"
            )
        time.sleep(1.0)


def _check_predictions(
    client: _Client, base_url: str, route: str, rows: list[dict[str, Any]], expected: np.ndarray, tolerance: float
) -> float:
    """Correctness: the served predictions equal the registry model's on the sample rows."""
    status, body = client.call("POST", route + ":predict", {"instances": rows})
    if status != 200 or not isinstance(body, dict) or "predictions" not in body:
        raise DeployCheckError(f"predict: {base_url}{route}:predict answered HTTP {status}: {str(body)[:300]}")
    served = np.asarray(body["predictions"], dtype=float)
    if served.size != expected.size or len(served) != len(expected):
        raise DeployCheckError(f"predict: {served.size} predicted values for {expected.size} ({len(expected)} rows)")
    served = served.reshape(expected.shape)
    diff, allowed = compare(served, expected, tolerance)
    if not diff <= allowed:
        raise DeployCheckError(
            f"predict: served predictions differ from the registry model's by {diff:.6g} on {len(rows)} "
            f"sample rows (allowed {allowed:.3g})"
        )
    return diff


def _metrics(client: _Client) -> list[prometheus.Sample] | None:
    """The server's Prometheus metrics, or None if it exposes none at TF Serving's path."""
    status, body = client.call("GET", prometheus.PATH)
    if status != 200 or not isinstance(body, str):
        return None
    return prometheus.parse(body)


def _check_metrics(
    before: list[prometheus.Sample] | None,
    after: list[prometheus.Sample] | None,
    model: str,
    version: str,
    label: str | None,
    sent: int,
) -> tuple[int, float | None]:
    """Telemetry: the successful predict calls the server counted for the version between the
    two reads (at least the ``sent`` of the check; other clients may add), and the p99 of the
    latency it measured (a bucket's upper bound, ms). (-1, None) for a server without metrics."""
    if before is None or after is None:
        log.warning("telemetry: the server exposes no metrics at %s; not checked", prometheus.PATH)
        return -1, None
    m = prometheus
    match = {"model_name": model, "API": "predict", "version": str(int(version)), **({"label": label} if label else {})}
    ok = {**match, "status": "OK"}
    counted = int(m.total(m.select(after, m.COUNT, **ok)) - m.total(m.select(before, m.COUNT, **ok)))
    if counted < sent:
        raise DeployCheckError(
            f"telemetry: the server's metrics counted {counted} successful predict calls of {model} v{version}"
            f"{f' ({label})' if label else ''} for the {sent} the check made ({m.COUNT} at {m.PATH})"
        )
    hist = f"{m.LATENCY}_bucket"
    p99_us = m.quantile(m.buckets(m.select(before, hist, **match)), m.buckets(m.select(after, hist, **match)), 0.99)
    return counted, None if p99_us is None or p99_us == float("inf") else p99_us / 1000


def _check_latency(
    client: _Client, route: str, rows: list[dict[str, Any]], requests: int, max_p99_ms: float
) -> tuple[float, float, int]:
    """Latency: single-row requests, one connection, after one warm-up call. (p50, p99, requests)."""
    client.call("POST", route + ":predict", {"instances": rows[:1]})
    times = []
    for i in range(requests):
        t0 = time.perf_counter()
        status, _ = client.call("POST", route + ":predict", {"instances": [rows[i % len(rows)]]})
        times.append((time.perf_counter() - t0) * 1000)
        if status != 200:
            raise DeployCheckError(f"latency: request {i} answered HTTP {status}")
    p50, p99 = (float(x) for x in np.percentile(times, [50, 99]))
    if p99 > max_p99_ms:
        raise DeployCheckError(
            f"latency: p99 {p99:.1f} ms over {len(times)} single-row requests is above the limit "
            f"{max_p99_ms:g} ms (p50 {p50:.1f} ms)"
        )
    return p50, p99, len(times)
