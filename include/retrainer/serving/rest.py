"""Serving on the embedded default: a small TensorFlow Serving-compatible REST server over
the model store (its layout and labels: ``retrainer.serving.modelstore``).

The server speaks TensorFlow Serving's REST API for the parts clients use:

* ``GET  /v1/models/<name>``: the status of the version labelled ``stable``;
* ``POST /v1/models/<name>:predict`` (also ``/versions/<v>:predict`` and
  ``/labels/<label>:predict``) with ``{"instances": [...]}`` (row format, one object of raw
  features per row) or ``{"inputs": {...}}`` (columnar format).

It serves what the label points to and notices a relabel without a restart (it re-reads
the config file when its modification time changes). Malformed requests get a 4xx with a
message that names what is wrong; a request the version's contract refuses (the dataset
spec's features: ``retrainer.serving.request_contract``) gets a 400 naming row, field and rule; a
wrong method gets a 405.

At start it loads and warms every served version in the background: ``GET /healthz``
answers as soon as the process listens (liveness), ``GET /readyz`` only once every served
version answered a first call (readiness), so the first real request is as fast as the rest.
A version folder that holds ``model.tflite`` is served from its TFLite model, as TensorFlow
Serving does with ``--prefer_tflite_model`` (``retrainer.serving.served_version``).

``GET /monitoring/prometheus/metrics`` (TensorFlow Serving's path and metric names) gives the
request counts and the latency histogram of predict calls per model, version and label
(``retrainer.serving.prometheus``).

``python -m retrainer.serving --port 8501`` serves the store of the current settings.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from retrainer.serving import batching, prometheus, request_contract, served_version
from retrainer.serving.modelstore import CONFIG_NAME, SAVED_MODEL, STABLE, ModelEntry, read_config

log = logging.getLogger(__name__)


# =============================================================================== server


class RequestError(ValueError):
    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status


class ModelServer:
    """Loads versions from the store on demand and answers predict and status calls."""

    def __init__(self, store: Path, out_of_range: str | None = None) -> None:
        import os

        self.store = Path(store)
        self._lock = threading.Lock()
        self._loaded: dict[tuple[str, int], Any] = {}
        self._contracts: dict[tuple[str, int], dict[str, Any] | None] = {}
        self._config_mtime: float | None = None
        self._config: dict[str, ModelEntry] = {}
        self.out_of_range = out_of_range or os.environ.get("RETRAINER_SERVING_OUT_OF_RANGE", "refuse")
        if self.out_of_range not in request_contract.OUT_OF_RANGE:
            raise ValueError(
                f"RETRAINER_SERVING_OUT_OF_RANGE must be one of {list(request_contract.OUT_OF_RANGE)}, "
                f"got {self.out_of_range!r}"
            )
        self.ready = threading.Event()
        self.warm_error = ""
        self.metrics = prometheus.Metrics()
        self.batch_limits = batching.BatchLimits.from_env()
        self._batchers: dict[tuple[str, int], batching.Batcher] = {}

    def config(self) -> dict[str, ModelEntry]:
        path = self.store / CONFIG_NAME
        mtime = path.stat().st_mtime_ns if path.is_file() else None
        if mtime != self._config_mtime:
            with self._lock:
                self._config = read_config(self.store)
                self._config_mtime = mtime
            log.info("model config (re)read: %s", {k: v.labels for k, v in self._config.items()})
        return self._config

    def resolve(self, model: str, version: int | None = None, label: str | None = None) -> int:
        entry = self.config().get(model)
        if entry is None:
            raise RequestError(HTTPStatus.NOT_FOUND, f"model '{model}' is not served (no entry in {CONFIG_NAME})")
        if version is not None:
            if not (self.store / model / str(version) / SAVED_MODEL).is_file():
                raise RequestError(HTTPStatus.NOT_FOUND, f"model '{model}' has no version {version}")
            if version not in entry.served():  # as TensorFlow Serving: only what the config serves
                raise RequestError(
                    HTTPStatus.NOT_FOUND,
                    f"model '{model}' version {version} is not served (not in the specific versions of {CONFIG_NAME})",
                )
            return version
        label = label or STABLE
        if label not in entry.labels:
            raise RequestError(HTTPStatus.NOT_FOUND, f"model '{model}' has no version labelled '{label}'")
        return entry.labels[label]

    def served_version(self, model: str, version: int) -> served_version.ServedVersion:
        key = (model, version)
        loaded = self._loaded.get(key)
        if loaded is None:
            with self._lock:
                loaded = self._loaded.get(key)
                if loaded is None:
                    folder = self.store / model / str(version)
                    loaded = served_version.load(folder)
                    self._contracts[key] = request_contract.read(folder)
                    self._loaded[key] = loaded
                    log.info("loaded %s version %s (%s)", model, version, loaded.artifact)
        return loaded

    def warm(self) -> None:
        """Load every served version and call it once (TensorFlow traces on the first call), then
        set ``ready``. A version that fails to load is logged; the others are still served."""
        failed = []
        for model, entry in self.config().items():
            for version in entry.served():
                try:
                    self.served_version(model, version).warm()
                except Exception as exc:  # a broken version must not keep the others from serving
                    failed.append(f"{model} v{version}: {exc}")
                    log.error("could not load and warm %s version %s: %s", model, version, exc)
        self.warm_error = "; ".join(failed)
        self.ready.set()
        log.info("warm: every served version loaded%s", f" but {self.warm_error}" if failed else "")

    def readiness(self) -> tuple[HTTPStatus, dict[str, Any]]:
        if not self.ready.is_set():
            return HTTPStatus.SERVICE_UNAVAILABLE, {"status": "loading"}
        return HTTPStatus.OK, {"status": "ready", **({"errors": self.warm_error} if self.warm_error else {})}

    def predict(
        self, model: str, body: Any, version: int | None = None, label: str | None = None, client: Any = None
    ) -> dict[str, Any]:
        """Predictions of the version asked for (by number or label, else ``stable``); every
        call is counted, and timed when it succeeds, in ``metrics``. ``client`` names the
        connection the request came on, for batching (``serving_batch``)."""
        t0 = time.perf_counter()
        named = label or ("" if version is not None else STABLE)
        served: int | None = None
        try:
            served = self.resolve(model, version, label)
            out = self._answer(model, served, body, client)
        except RequestError as exc:
            known = model if model in self._config else "(not served)"  # no label per unknown name
            self.metrics.observe("predict", known, served, named, exc.status.name, time.perf_counter() - t0)
            raise
        self.metrics.observe("predict", model, served, named, "OK", time.perf_counter() - t0)
        return out

    def _answer(self, model: str, v: int, body: Any, client: Any = None) -> dict[str, Any]:
        batcher = self._batcher(model, v)
        try:
            if batcher is None:
                return self._predict(model, v, body, None)
            with batcher.in_flight(client):  # a batch being formed waits for this request to join
                return self._predict(model, v, body, batcher)
        except RequestError:
            raise
        except Exception as exc:  # the model call failed: a 500 naming the version, never a dropped connection
            log.exception("%s version %s failed on a request", model, v)
            message = f"model '{model}' version {v} failed on this request: {type(exc).__name__}: {exc}"
            raise RequestError(HTTPStatus.INTERNAL_SERVER_ERROR, message[:2000]) from exc

    def client_gone(self, client: Any) -> None:
        """A connection closed: no batch waits for its next request."""
        for batcher in list(self._batchers.values()):
            batcher.forget(client)

    def _batcher(self, model: str, v: int) -> batching.Batcher | None:
        """The version's batching thread (``retrainer.serving.batching``); None with batching off."""
        if not self.batch_limits.enabled:
            return None
        key = (model, v)
        batcher = self._batchers.get(key)
        if batcher is None:
            served = self.served_version(model, v)
            with self._lock:
                batcher = self._batchers.get(key)
                if batcher is None:
                    batcher = batching.Batcher(
                        served.call, self.batch_limits, f"{model}-{v}", lambda n: self.metrics.batch(model, v, n)
                    )
                    self._batchers[key] = batcher
        return batcher

    def _predict(self, model: str, v: int, body: Any, batcher: batching.Batcher | None) -> dict[str, Any]:
        import numpy as np

        served = self.served_version(model, v)
        columns, row_format, extra, where = _columns(body, list(served.inputs))
        contract = self._contracts.get((model, v))
        if contract is not None:
            checked = request_contract.check(contract, columns, extra, where, self.out_of_range)
            for warning in checked.warnings[: request_contract.MAX_PROBLEMS]:
                log.warning("%s v%s: %s", model, v, warning)
            if checked.problems:
                raise RequestError(HTTPStatus.BAD_REQUEST, "request refused: " + "; ".join(checked.problems))
            columns = {**columns, **checked.columns}
        arrays = {}
        for name, dtype in served.inputs.items():
            values = columns[name]
            try:
                if dtype is object:
                    arr = np.array(["" if x is None else str(x) for x in values], dtype=object)
                else:
                    arr = np.array([np.nan if x is None else x for x in values], dtype=dtype)
            except (TypeError, ValueError) as exc:
                kind = "string" if dtype is object else np.dtype(dtype).name
                raise RequestError(HTTPStatus.BAD_REQUEST, f"input '{name}' must be {kind} values: {exc}") from None
            arrays[name] = arr
        raw = (batcher or served.call)(arrays)
        # one value per row (a [rows, 1] output) flat; class probabilities as one list per row,
        # in the order of the classes the answer names (a multiclass version's contract)
        out = raw.reshape(-1).tolist() if raw.ndim < 2 or raw.shape[-1] == 1 else raw.reshape(len(raw), -1).tolist()
        answer: dict[str, Any] = {"predictions": out} if row_format else {"outputs": out}
        names = request_contract.classes(contract)
        if names is not None:
            answer["classes"] = names
        return answer

    def status(self, model: str, version: int | None = None, label: str | None = None) -> dict[str, Any]:
        named = label or ("" if version is not None else STABLE)
        try:
            v = self.resolve(model, version, label)
        except RequestError as exc:
            known = model if model in self._config else "(not served)"
            self.metrics.observe("status", known, None, named, exc.status.name, 0.0)
            raise
        self.served_version(model, v)  # AVAILABLE means loaded and callable, as in TensorFlow Serving
        self.metrics.observe("status", model, v, named, "OK", 0.0)
        return {
            "model_version_status": [
                {"version": str(v), "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
            ]
        }


def _columns(body: Any, names: list[str]) -> tuple[dict[str, list[Any]], bool, list[str], list[str]]:
    """Columns of raw feature values from a row-format or a columnar request body, whether it
    was row format, the fields it sent that are no input, and how to name each row."""
    if not isinstance(body, dict) or ("instances" in body) == ("inputs" in body):
        raise RequestError(HTTPStatus.BAD_REQUEST, "the body must be a JSON object with 'instances' or 'inputs'")
    if "instances" in body:
        rows = body["instances"]
        if not isinstance(rows, list) or not rows:
            raise RequestError(HTTPStatus.BAD_REQUEST, "'instances' must be a non-empty list of objects")
        for i, row in enumerate(rows):
            if not isinstance(row, dict):
                raise RequestError(HTTPStatus.BAD_REQUEST, f"instance {i} must be an object of named inputs")
            missing = [n for n in names if n not in row]
            if missing:
                raise RequestError(HTTPStatus.BAD_REQUEST, f"instance {i} misses inputs {missing}")
        extra = sorted({str(k) for row in rows for k in row} - set(names))
        return {n: [row[n] for row in rows] for n in names}, True, extra, [f"instance {i}" for i in range(len(rows))]
    inputs = body["inputs"]
    if not isinstance(inputs, dict):
        raise RequestError(HTTPStatus.BAD_REQUEST, "'inputs' must be an object of named input lists")
    missing = [n for n in names if n not in inputs]
    if missing:
        raise RequestError(HTTPStatus.BAD_REQUEST, f"'inputs' misses {missing}")
    cols = {n: inputs[n] if isinstance(inputs[n], list) else [inputs[n]] for n in names}
    lengths = {len(v) for v in cols.values()}
    if len(lengths) != 1 or 0 in lengths:
        raise RequestError(HTTPStatus.BAD_REQUEST, "all inputs must have the same, non-zero length")
    extra = sorted(str(k) for k in inputs if k not in names)
    return cols, False, extra, [f"inputs[{i}]" for i in range(lengths.pop())]


_PREDICT = re.compile(r"^/v1/models/([^/:]+)(?:/versions/(\d+)|/labels/([^/:]+))?:predict$")
_STATUS = re.compile(r"^/v1/models/([^/:]+)(?:/versions/(\d+)|/labels/([^/:]+))?$")
_GET_ONLY = ("/healthz", "/readyz", prometheus.PATH)


class _Handler(BaseHTTPRequestHandler):
    """The REST endpoints over ``model_server`` (set by :func:`make_handler`)."""

    model_server: ModelServer

    protocol_version = "HTTP/1.1"
    # A response leaves in one write (headers and body buffered, flushed after each request)
    # with Nagle off: otherwise a keep-alive client waits out its delayed ACK, ~40 ms a call.
    wbufsize = -1
    disable_nagle_algorithm = True

    def handle(self) -> None:
        try:
            super().handle()
        finally:  # the connection is closing
            self.model_server.client_gone(self.client_address)

    def handle_expect_100(self) -> bool:
        ok = super().handle_expect_100()
        self.wfile.flush()  # "100 Continue" must reach the client before it sends the body
        return ok

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    def _send(self, status: HTTPStatus, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        for key, value in {**(headers or {}), "Content-Type": "application/json"}.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _send_text(self, text: str, content_type: str) -> None:
        data = text.encode()
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _not_allowed(self, allow: str) -> None:
        message = f"{self.command} is not allowed on {self.path} (use {allow})"
        self._send(HTTPStatus.METHOD_NOT_ALLOWED, {"error": message}, {"Allow": allow})

    def _other_method(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:  # read the body: on a kept-alive connection it would be taken for the next request
            self.rfile.read(length)
        if _PREDICT.match(self.path):
            self._not_allowed("POST")
        elif _STATUS.match(self.path) or self.path in _GET_ONLY:
            self._not_allowed("GET")
        else:
            self._send(HTTPStatus.NOT_FOUND, {"error": f"no such endpoint: {self.command} {self.path}"})

    do_PUT = do_DELETE = do_PATCH = _other_method

    def do_GET(self) -> None:
        if self.path == "/healthz":  # liveness: the process answers
            self._send(HTTPStatus.OK, {"status": "alive"})
            return
        if self.path == "/readyz":  # readiness: every served version loaded and warmed
            self._send(*self.model_server.readiness())
            return
        if self.path == prometheus.PATH:
            self._send_text(self.model_server.metrics.render(), prometheus.CONTENT_TYPE)
            return
        if _PREDICT.match(self.path):
            self._not_allowed("POST")
            return
        m = _STATUS.match(self.path)
        try:
            if not m:
                raise RequestError(HTTPStatus.NOT_FOUND, f"no such endpoint: GET {self.path}")
            version = int(m.group(2)) if m.group(2) else None
            self._send(HTTPStatus.OK, self.model_server.status(m.group(1), version, m.group(3)))
        except RequestError as exc:
            self._send(exc.status, {"error": str(exc)})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        m = _PREDICT.match(self.path)
        if not m and (_STATUS.match(self.path) or self.path in _GET_ONLY):
            self._not_allowed("GET")
            return
        try:
            if not m:
                raise RequestError(HTTPStatus.NOT_FOUND, f"no such endpoint: POST {self.path}")
            try:
                body = json.loads(raw or b"null")
            except json.JSONDecodeError as exc:
                raise RequestError(HTTPStatus.BAD_REQUEST, f"the body is not valid JSON: {exc}") from None
            version = int(m.group(2)) if m.group(2) else None
            answer = self.model_server.predict(m.group(1), body, version, m.group(3), client=self.client_address)
            self._send(HTTPStatus.OK, answer)
        except RequestError as exc:
            self._send(exc.status, {"error": str(exc)})


def make_handler(server: ModelServer) -> type[BaseHTTPRequestHandler]:
    return type("Handler", (_Handler,), {"model_server": server})


def serve(store: Path, host: str = "127.0.0.1", port: int = 8501, warm: bool = True) -> ThreadingHTTPServer:
    """A started-but-not-running server (call ``serve_forever``); ``port=0`` picks a free one.
    With ``warm``, every served version is loaded and called once in the background."""
    model_server = ModelServer(store)
    httpd = ThreadingHTTPServer((host, port), make_handler(model_server))
    httpd.daemon_threads = True
    if warm:
        threading.Thread(target=model_server.warm, name="warm", daemon=True).start()
    else:
        model_server.ready.set()
    return httpd


def main() -> None:
    from retrainer.settings import Settings

    parser = argparse.ArgumentParser(description="TensorFlow Serving-compatible REST server over the model store")
    parser.add_argument("--store", default=None, help="model store folder (default: the settings' model store)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8501)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    store = Path(args.store or Settings.from_env().model_store)
    httpd = serve(store, args.host, args.port)
    log.info("serving %s on http://%s:%s/v1/models/<name>", store, args.host, httpd.server_port)
    httpd.serve_forever()


if __name__ == "__main__":
    main()
