"""Benchmark: retrainer's model server against ``mlflow models serve``, same model, over loopback.

One bike sharing model is trained (few epochs: this measures serving, not training), logged
to MLflow the way the pipeline logs it, and deployed into a model store labelled ``stable``.
Then both servers answer the same real holdout rows from the same client:

* ours: ``python -m retrainer.serving`` (TensorFlow Serving's REST API, row format
  ``{"instances": [...]}``);
* MLflow: ``mlflow models serve --env-manager local`` (``POST /invocations``, one uvicorn
  worker, its default; input ``{"inputs": {column: [[value], ...]}}``). The model as the
  pipeline logs it (the tensorflow flavor) is probed first with each JSON format MLflow
  documents. MLflow 3.17's tensorflow pyfunc hands the request to ``keras.Model.predict``,
  which does not take string inputs, so MLflow cannot serve our model as logged; the
  benchmark says so and then serves the same Keras model through a small pyfunc wrapper that
  turns the columns into tensors and calls ``predict_on_batch`` (the cheapest per-request
  Keras call, cheaper than the flavor's own ``predict``). The in-process cost of each call
  path is printed beside the results. Should a later MLflow serve the model as logged, the
  benchmark measures that instead.

Client: Python ``http.client`` with persistent keep-alive connections, a warm-up, then
sequential requests for latency (p50/p99) and concurrent client threads for throughput, at
batch 1 and batch 32. Last, the TFLite artifact against the SavedModel: size, gate metric
on the holdout, and single-row latency in process.

Run with `make bench` (after the drift benchmark; this one runs in the main environment).
All state lives in a temporary folder that is removed at the end; the results are written
to ``.local/bench/serving.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import replace
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "include"), str(REPO / "plugins"), str(REPO / "tools"), str(REPO / "bench")]

import common as bench_common  # noqa: E402

from retrainer_dev.stacks.ports import free_port  # noqa: E402
from retrainer_dev.waiting import wait_until  # noqa: E402

TARGET_SPEEDUP = 5.0  # the product's targets: throughput at least 5x MLflow's at batch 1 with 8 clients ...
TARGET_P99_MS = 5.0  # ... and p99 at batch 1, one client, at most 5 ms
HOLDOUT_PERIOD = "2011-07"  # trained on the six months before it


def _quiet() -> None:
    """Progress bars, info logs and warnings of TensorFlow and MLflow would bury the tables."""
    import logging

    os.environ.update(TF_CPP_MIN_LOG_LEVEL="2", MLFLOW_CONFIGURE_LOGGING="false")
    os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
    warnings.filterwarnings("ignore")
    for name in ("tensorflow", "absl", "mlflow", "alembic", "keras"):
        logging.getLogger(name).setLevel(logging.ERROR)


# =============================================================================== the model


def pip_requirements() -> list[str]:
    """What the pipeline writes into the logged model (and spares MLflow inferring it)."""
    reqs = []
    for dist in ("tensorflow-cpu", "tensorflow", "keras", "mlflow", "numpy", "pandas"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            reqs.append(f"{dist}=={metadata.version(dist)}")
    return reqs


class KerasOnTensors:
    """The pyfunc wrapper MLflow needs to serve our Keras model: columns to tensors, one
    ``predict_on_batch`` call. It loads the very model logged with the tensorflow flavor."""

    # built as an mlflow.pyfunc.PythonModel subclass in make_wrapper(), so that importing
    # this file does not import MLflow

    def load_context(self, context: Any) -> None:
        import mlflow.tensorflow

        self.model = mlflow.tensorflow.load_model(context.artifacts["keras_model"])

    def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
        # no type hints here: MLflow would try to derive a second signature from them
        import tensorflow as tf

        tensors = {}
        for name, values in model_input.items():
            arr = np.asarray(values)
            if arr.dtype.kind in "OUS":  # categories; a missing one is "" (the out-of-vocabulary slot)
                flat = ["" if v is None else str(v) for v in arr.reshape(-1)]
                tensors[name] = tf.constant(np.array(flat, dtype=object).reshape(-1, 1))
            else:
                tensors[name] = tf.constant(arr.astype(np.float32).reshape(-1, 1))
        return np.asarray(self.model.predict_on_batch(tensors))


def make_wrapper() -> Any:
    import mlflow.pyfunc

    return type("KerasOnTensors", (KerasOnTensors, mlflow.pyfunc.PythonModel), {})()


def build(home: Path, epochs: int) -> dict[str, Any]:
    """Train, log (tensorflow flavor, as the pipeline does, and the pyfunc wrapper), deploy, label."""
    import mlflow
    import mlflow.pyfunc
    import mlflow.tensorflow
    from mlflow.models import infer_signature

    from retrainer.data import demo_data
    from retrainer.model import training
    from retrainer.serving import export, modelstore
    from retrainer.settings import Settings

    _quiet()  # again: importing TensorFlow resets the warning filters
    settings = Settings.from_env()
    spec = settings.load_spec("bike_sharing")
    periods = demo_data.split_periods(demo_data.load_bike_sharing(), spec)
    names = list(periods)
    h = names.index(HOLDOUT_PERIOD)
    train_df = pd.concat([periods[p] for p in names[h - spec.training.window_periods : h]], ignore_index=True)
    holdout = periods[HOLDOUT_PERIOD]
    t0 = time.perf_counter()
    result = training.train(train_df, spec, replace(spec.training, epochs=epochs))
    took = time.perf_counter() - t0
    print(f"trained on {len(train_df):,} rows: {result.epochs_run} epochs, {took:.1f} s", flush=True)

    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
    experiment = mlflow.create_experiment("serving-bench", artifact_location=str(home / "mlflow" / "artifacts"))
    sample = train_df.iloc[:5]
    signature = infer_signature(
        training.feature_arrays(sample, spec), training.predict(result.model, sample, spec).reshape(-1, 1)
    )
    with mlflow.start_run(experiment_id=experiment):
        flavor = mlflow.tensorflow.log_model(
            result.model, name="model", signature=signature, pip_requirements=pip_requirements()
        )
        wrapper = mlflow.pyfunc.log_model(
            name="pyfunc_model",
            python_model=make_wrapper(),
            artifacts={"keras_model": flavor.model_uri},
            signature=signature,
            pip_requirements=pip_requirements(),
        )
    version = "1"
    export.deploy(settings, spec, version, result.model)
    modelstore.set_label(settings.model_store, spec.model_name, modelstore.STABLE, int(version))
    return {
        "settings": settings,
        "spec": spec,
        "model": result.model,
        "holdout": holdout,
        "epochs_run": result.epochs_run,
        "flavor_uri": flavor.model_uri,
        "wrapper_uri": wrapper.model_uri,
    }


# =============================================================================== servers


class Server:
    """A server process in its own process group, stopped (group and all) on exit."""

    def __init__(
        self, name: str, cmd: list[str], port: int, ready_path: str, log_dir: Path, env: dict[str, str] | None = None
    ) -> None:
        self.name, self.port, self.ready_path = name, port, ready_path
        self.log_path = log_dir / f"{name.replace(' ', '_').replace(',', '')}.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True, env=env)
        self.started = time.monotonic()
        self._stopped = False

    def ready(self) -> bool:
        """Whether the server answers its status or ping endpoint with 200 now (an error if it exited)."""
        if self.proc.poll() is not None:
            tail = self.log_path.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{self.name} exited with {self.proc.returncode} while starting:\n{tail}")
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        try:
            conn.request("GET", self.ready_path)
            return bool(conn.getresponse().status == 200)
        finally:
            conn.close()

    def wait_ready(self, timeout: float = 180.0) -> float:
        """Seconds from start until the server answers its status or ping endpoint with 200."""
        wait_until(
            self.ready,
            timeout - (time.monotonic() - self.started),
            interval_s=0.25,
            what=f"{self.name} ready on port {self.port}",
            retry_on=(OSError, http.client.HTTPException),
            details=lambda: f"(log {self.log_path})",
        )
        return time.monotonic() - self.started

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=15)
        with contextlib.suppress(ProcessLookupError):  # children that outlived the leader (uvicorn)
            os.killpg(self.proc.pid, signal.SIGKILL)
        self._log.close()


@contextlib.contextmanager
def servers() -> Iterator[Callable[..., Server]]:
    started: list[Server] = []

    def start(*args: Any) -> Server:
        server = Server(*args)
        started.append(server)
        return server

    try:
        yield start
    finally:
        for server in started:
            server.stop()


def post(port: int, path: str, body: bytes, timeout: float = 60.0) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("POST", path, body, {"Content-Type": "application/json"})
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read() or b"null")
    finally:
        conn.close()


def batch_counts(port: int) -> tuple[float, float]:
    """Model calls and the requests they answered so far, from our server's metrics (0, 0 for
    a server without them)."""
    from retrainer.serving import prometheus as m

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", m.PATH)
        resp = conn.getresponse()
        text = resp.read().decode() if resp.status == 200 else ""
    finally:
        conn.close()
    samples = m.parse(text)
    return m.total(m.select(samples, f"{m.BATCH}_count")), m.total(m.select(samples, f"{m.BATCH}_sum"))


# =============================================================================== request bodies


def records(frame: pd.DataFrame, names: list[str]) -> list[dict[str, Any]]:
    """Rows as JSON objects of raw features (missing categories as null), as a client sends them."""
    return list(json.loads(frame[names].to_json(orient="records")))


def ours_body(rows: list[dict[str, Any]]) -> bytes:
    return json.dumps({"instances": rows}).encode()


def mlflow_body(rows: list[dict[str, Any]]) -> bytes:
    """MLflow's tensor input: named columns, each value a list of one (the model's inputs are [n, 1])."""
    return json.dumps({"inputs": {k: [[r[k]] for r in rows] for k in rows[0]}}).encode()


def mlflow_values(payload: Any) -> list[float]:
    return [float(np.asarray(p).reshape(-1)[0]) for p in payload["predictions"]]


def probe_flavor(port: int, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every JSON input format MLflow documents, against the model as the pipeline logs it."""
    names = list(rows[0])
    attempts = {
        "inputs, columns of [n, 1] values": mlflow_body(rows),
        "inputs, flat columns": json.dumps({"inputs": {k: [r[k] for r in rows] for k in names}}).encode(),
        "instances, row objects": json.dumps({"instances": rows}).encode(),
        "dataframe_split": json.dumps(
            {"dataframe_split": {"columns": names, "data": [[r[k] for k in names] for r in rows]}}
        ).encode(),
    }
    out = []
    for fmt, body in attempts.items():
        status, payload = post(port, "/invocations", body)
        error = ""
        if status != 200:
            trace = str(payload.get("stack_trace") or "").strip().splitlines()
            message = " ".join(str(payload.get("message", "")).split())
            error = (trace[-1] if trace else message.rsplit("Error: ", 1)[-1])[:160]
        out.append({"format": fmt, "status": status, "error": error})
    return out


# =============================================================================== load generator


def _percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def latency(port: int, path: str, bodies: list[bytes], n: int, warmup: int) -> dict[str, float]:
    """Sequential requests on one keep-alive connection."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"Content-Type": "application/json"}
    times = []
    started = 0.0
    try:
        for i in range(warmup + n):
            if i == warmup:
                started = time.perf_counter()
            body = bodies[i % len(bodies)]
            t0 = time.perf_counter()
            conn.request("POST", path, body, headers)
            resp = conn.getresponse()
            resp.read()
            dt = time.perf_counter() - t0
            if resp.status != 200:
                raise RuntimeError(f"{path}: HTTP {resp.status}")
            if i >= warmup:
                times.append(dt * 1000)
    finally:
        conn.close()
    elapsed = time.perf_counter() - started
    return {"requests_per_s": n / elapsed, "p50_ms": _percentile(times, 50), "p99_ms": _percentile(times, 99)}


def throughput(port: int, path: str, bodies: list[bytes], threads: int, per_thread: int) -> dict[str, float]:
    """``threads`` clients, each on its own keep-alive connection, ``per_thread`` requests each."""
    headers = {"Content-Type": "application/json"}
    barrier = threading.Barrier(threads + 1)
    errors: list[str] = []
    times: list[float] = []
    lock = threading.Lock()

    def client(k: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        mine = []
        try:
            for i in range(5):  # own warm-up: the connection (and its server thread) exists before timing
                conn.request("POST", path, bodies[(k + i) % len(bodies)], headers)
                conn.getresponse().read()
            barrier.wait()
            for i in range(per_thread):
                t0 = time.perf_counter()
                conn.request("POST", path, bodies[(k * per_thread + i) % len(bodies)], headers)
                resp = conn.getresponse()
                resp.read()
                mine.append((time.perf_counter() - t0) * 1000)
                if resp.status != 200:
                    errors.append(f"HTTP {resp.status}")
                    break
        except Exception as exc:  # reported below; the barrier must not hang the others
            errors.append(repr(exc))
            barrier.abort()
        finally:
            conn.close()
            with lock:
                times.extend(mine)

    workers = [threading.Thread(target=client, args=(k,), daemon=True) for k in range(threads)]
    for w in workers:
        w.start()
    with contextlib.suppress(threading.BrokenBarrierError):
        barrier.wait()
    t0 = time.perf_counter()
    for w in workers:
        w.join()
    elapsed = time.perf_counter() - t0
    if errors:
        raise RuntimeError(f"{path}: {errors[0]}")
    return {
        "requests_per_s": threads * per_thread / elapsed,
        "p50_ms": _percentile(times, 50),
        "p99_ms": _percentile(times, 99),
    }


# =============================================================================== in process


def call_paths(built: dict[str, Any], store: Path, rows: pd.DataFrame, n: int) -> dict[str, float]:
    """Median in-process time (ms) of one batch-1 call through each way of calling the model."""
    import tensorflow as tf

    from retrainer.model import training

    spec, model = built["spec"], built["model"]
    sig = tf.saved_model.load(str(store / spec.model_name / "1")).signatures["serving_default"]
    tensors = {k: tf.constant(v) for k, v in training.feature_arrays(rows.iloc[:1], spec).items()}
    paths: dict[str, Callable[[], Any]] = {
        "SavedModel signature (ours)": lambda: sig(**tensors),
        "Keras predict_on_batch (MLflow wrapper)": lambda: model.predict_on_batch(tensors),
        "Keras predict (MLflow tensorflow flavor)": lambda: model.predict(tensors, verbose=0),
    }
    out = {}
    for name, fn in paths.items():
        reps = n if "flavor" not in name else max(5, n // 20)  # Keras predict is slow: fewer calls
        for _ in range(3):
            fn()
        times = []
        for _ in range(reps):
            t0 = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t0) * 1000)
        out[name] = statistics.median(times)
    return out


def tflite(built: dict[str, Any], store: Path, n: int) -> dict[str, Any]:
    """TFLite (dynamic range) against the SavedModel: size, gate metric on the holdout, batch-1 latency."""
    import tensorflow as tf

    from retrainer.model import evaluation, training
    from retrainer.serving import export

    spec, model, holdout = built["spec"], built["model"], built["holdout"]
    blob, saved_size = export.convert_tflite(model)
    y = training.target_array(holdout, spec)
    metric = spec.gate.metric
    full_pred = export.serve_predictions(str(store / spec.model_name / "1"), holdout, spec, None)
    full = evaluation.metrics(spec.target.task, y, full_pred)[metric]
    lite = evaluation.metrics(spec.target.task, y, export.tflite_predictions(blob, holdout, spec))[metric]

    arrays = training.feature_arrays(holdout.iloc[:64], spec)
    sig = tf.saved_model.load(str(store / spec.model_name / "1")).signatures[export.SIGNATURE]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        runner = tf.lite.Interpreter(model_content=blob).get_signature_runner(export.SIGNATURE)
    saved_rows = [{k: tf.constant(v[i : i + 1]) for k, v in arrays.items()} for i in range(64)]
    lite_rows = [
        {k: (v[i : i + 1].astype(bytes) if v.dtype == object else v[i : i + 1]) for k, v in arrays.items()}
        for i in range(64)
    ]

    def timed(fn: Callable[[dict[str, Any]], Any], inputs: list[dict[str, Any]]) -> dict[str, float]:
        for x in inputs[:10]:
            fn(x)
        times = []
        for i in range(n):
            t0 = time.perf_counter()
            fn(inputs[i % len(inputs)])
            times.append((time.perf_counter() - t0) * 1000)
        return {"p50_ms": _percentile(times, 50), "p99_ms": _percentile(times, 99)}

    return {
        "blob": blob,
        "savedmodel_bytes": saved_size,
        "tflite_bytes": len(blob),
        "size_ratio": len(blob) / saved_size,
        "metric": metric,
        "savedmodel_metric": full,
        "tflite_metric": lite,
        "metric_change": (lite - full) / abs(full) if full else 0.0,
        "n_holdout": len(y),
        "savedmodel_latency": timed(lambda x: sig(**x), saved_rows),
        "tflite_latency": timed(lambda x: runner(**x), lite_rows),
    }


# =============================================================================== main


CLIENTS = (1, 8)
BATCHES = (1, 32)


def lite_store(store: Path, model: str, blob: bytes, home: Path) -> Path:
    """A copy of the store whose version folder holds ``model.tflite``: served from the TFLite model."""
    from retrainer.serving import modelstore

    copy = home / "model-store-tflite"
    shutil.copytree(store, copy)
    (copy / model / "1" / modelstore.TFLITE_MODEL).write_bytes(blob)
    return copy


def start_servers(start: Callable[..., Server], a: argparse.Namespace, built: dict[str, Any], home: Path) -> Any:
    """Our server three ways (adaptive batching, without it, the TFLite model) and MLflow's, all
    loading at once; MLflow serves the model as logged if it can, else through the wrapper."""
    py, spec = sys.executable, built["spec"]
    mlflow_cli = str(Path(py).with_name("mlflow"))

    def mlflow_serve(uri: str, port: int) -> list[str]:
        return [
            mlflow_cli,
            "models",
            "serve",
            "-m",
            uri,
            "--env-manager",
            "local",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-w",
            str(a.mlflow_workers),
        ]

    def ours(name: str, store: Path, env: dict[str, str] | None = None) -> Server:
        port = free_port()
        cmd = [py, "-m", "retrainer.serving", "--store", str(store), "--port", str(port)]
        return start(name, cmd, port, f"/v1/models/{spec.model_name}", home, {**os.environ, **(env or {})})

    store = Path(built["settings"].model_store)
    mine = {
        "ours": ours("ours", store),
        "ours, no batching": ours("ours, no batching", store, {"RETRAINER_SERVING_BATCH_TIMEOUT_US": "0"}),
        "ours, TFLite": ours("ours, TFLite", lite_store(store, spec.model_name, built["tflite_blob"], home)),
    }
    ports = free_port(), free_port()
    flavor = start("mlflow tensorflow flavor", mlflow_serve(built["flavor_uri"], ports[0]), ports[0], "/ping", home)
    wrapper = start("mlflow pyfunc wrapper", mlflow_serve(built["wrapper_uri"], ports[1]), ports[1], "/ping", home)
    for server in (*mine.values(), flavor, wrapper):
        print(f"{server.name}: ready {server.wait_ready():.1f} s after start", flush=True)
    rows = records(built["holdout"], list(spec.feature_names))
    probes = probe_flavor(flavor.port, rows[:2])
    flavor_served = probes[0]["status"] == 200  # the format the benchmark sends
    (wrapper if flavor_served else flavor).stop()
    return mine, (flavor if flavor_served else wrapper), probes


def grid(a: argparse.Namespace, mine: dict[str, Server], mlflow: Server, rows: list[Any], path: str) -> list[Any]:
    """Every server at batch 1 and 32, with one client (sequential) and 8 (concurrent)."""
    results: list[dict[str, Any]] = []
    targets = [(name, server, path, ours_body) for name, server in mine.items()]
    targets.append(("MLflow", mlflow, "/invocations", mlflow_body))
    for batch in BATCHES:
        slices = [rows[(i * batch) % len(rows) :][:batch] for i in range(64)]
        slices = [s if len(s) == batch else rows[:batch] for s in slices]
        for clients in CLIENTS:
            for name, server, route, encode in targets:
                bodies = [encode(s) for s in slices]
                print(f"batch {batch}, {clients} client(s), {name} ...", flush=True)
                calls0, answered0 = batch_counts(server.port) if server is not mlflow else (0.0, 0.0)
                if clients == 1:
                    got = latency(server.port, route, bodies, a.requests, a.warmup)
                else:
                    got = throughput(server.port, route, bodies, clients, a.throughput_requests // clients)
                calls, answered = batch_counts(server.port) if server is not mlflow else (0.0, 0.0)
                per_call = (answered - answered0) / (calls - calls0) if calls > calls0 else None  # warm-ups included
                results.append(
                    {
                        "server": name,
                        "batch": batch,
                        "clients": clients,
                        **got,
                        "rows_per_s": got["requests_per_s"] * batch,
                        "requests_per_call": per_call,
                    }
                )
    return results


def run(a: argparse.Namespace, home: Path) -> dict[str, Any]:
    built = build(home, a.epochs)
    spec = built["spec"]
    store = Path(built["settings"].model_store)
    names = list(spec.feature_names)
    rows = records(built["holdout"], names)

    print("in process: TFLite vs SavedModel, and the cost of one call through each path ...", flush=True)
    lite = tflite(built, store, a.requests)
    built["tflite_blob"] = lite.pop("blob")
    paths = call_paths(built, store, built["holdout"], a.requests)

    with servers() as start:  # all load at once; each is stopped on the way out, error or not
        mine, mlflow_server, probes = start_servers(start, a, built, home)
        ours_path = f"/v1/models/{spec.model_name}:predict"
        s1, p1 = post(mine["ours"].port, ours_path, ours_body(rows[:32]))
        s2, p2 = post(mlflow_server.port, "/invocations", mlflow_body(rows[:32]))
        s3, p3 = post(mine["ours, TFLite"].port, ours_path, ours_body(rows[:32]))
        if s1 != 200 or s2 != 200 or s3 != 200:
            raise RuntimeError(f"a server refused the check request: ours {s1} {p1}, MLflow {s2} {p2}, TFLite {s3}")
        agreement = float(np.max(np.abs(np.asarray(p1["predictions"]) - np.asarray(mlflow_values(p2)))))
        lite_diff = float(np.max(np.abs(np.asarray(p1["predictions"]) - np.asarray(p3["predictions"]))))
        results = grid(a, mine, mlflow_server, rows, ours_path)
    return {
        "model": spec.model_name,
        "epochs_run": built["epochs_run"],
        "holdout_period": HOLDOUT_PERIOD,
        "flavor_probe": probes,
        "flavor_served": mlflow_server.name == "mlflow tensorflow flavor",
        "prediction_max_abs_diff": agreement,
        "tflite_served_max_abs_diff": lite_diff,
        "call_paths_ms": paths,
        "results": results,
        "mlflow_input": "{'inputs': {column: [[value], ...]}}",
        "tflite": lite,
        "settings": {
            "requests": a.requests,
            "warmup": a.warmup,
            "throughput_requests": a.throughput_requests,
            "cpus": os.cpu_count(),
            "mlflow_workers": a.mlflow_workers,
        },
    }


def p99_bound(r: dict[str, Any]) -> str:
    """What sets the tail at one client: the same requests without batching and on the TFLite model."""
    plain, lite = _pick(r, "ours, no batching", 1, 1), _pick(r, "ours, TFLite", 1, 1)
    return (
        f"p50 {_pick(r, 'ours', 1, 1)['p50_ms']:.2f} ms; without adaptive batching p99 {plain['p99_ms']:.2f} ms, "
        f"serving the TFLite model {lite['p99_ms']:.2f} ms: a lone request calls the model in its own "
        f"thread, so the tail is the SavedModel call ({r['call_paths_ms']['SavedModel signature (ours)']:.2f} ms "
        "in process) and the 2 cores the client shares"
    )


def _pick(r: dict[str, Any], server: str, batch: int, clients: int) -> dict[str, Any]:
    return next(x for x in r["results"] if (x["server"], x["batch"], x["clients"]) == (server, batch, clients))


def targets(r: dict[str, Any]) -> list[dict[str, Any]]:
    ours, mlflow = _pick(r, "ours", 1, 8), _pick(r, "MLflow", 1, 8)
    ratio = ours["requests_per_s"] / mlflow["requests_per_s"]
    need = TARGET_SPEEDUP * mlflow["requests_per_s"]
    call = r["call_paths_ms"]["SavedModel signature (ours)"]
    lite = _pick(r, "ours, TFLite", 1, 8)["requests_per_s"] / mlflow["requests_per_s"]
    per_call = ours.get("requests_per_call")
    batched = f", a model call answered {per_call:.1f} of the 8 clients' requests on average" if per_call else ""
    bound = (
        f"{TARGET_SPEEDUP:g}x MLflow's {mlflow['requests_per_s']:.0f} requests/s is {need:.0f}/s, "
        f"{2000 / need:.2f} ms of CPU per request on 2 cores that the 8 clients share; one batch-1 "
        f"model call alone costs {call:.2f} ms in process (SavedModel), "
        f"{r['tflite']['tflite_latency']['p50_ms']:.3f} ms (TFLite){batched}; serving the TFLite model reaches "
        f"{lite:.2f}x"
    )
    seq = _pick(r, "ours", 1, 1)
    return [
        bench_common.target(
            "model server vs mlflow models serve: requests/s at batch 1, 8 clients",
            ratio,
            TARGET_SPEEDUP,
            op=">=",
            bound=bound,
        ),
        bench_common.target(
            "model server p99 at batch 1, one client",
            seq["p99_ms"],
            TARGET_P99_MS,
            op="<=",
            unit=" ms",
            bound=p99_bound(r),
        ),
    ]


def markdown(r: dict[str, Any]) -> str:
    t = r["tflite"]
    out = []
    if not r["flavor_served"]:
        out.append(
            "MLflow cannot serve the model as the pipeline logs it (tensorflow flavor): its pyfunc hands "
            "string inputs to `keras.Model.predict`, which refuses them. The formats tried:\n\n"
            + bench_common.table(
                ["input format", "HTTP", "error"],
                [[p["format"], p["status"], p["error"] or "-"] for p in r["flavor_probe"]],
            )
            + "\n\nSo MLflow serves the same Keras model through a small pyfunc wrapper calling "
            "`predict_on_batch` (the cheapest Keras call), input `" + r["mlflow_input"] + "`."
        )
    out.append(
        f"Both servers agree on 32 holdout rows to {r['prediction_max_abs_diff']:.2g} (max abs difference); "
        f"the TFLite model's answers differ by up to {r['tflite_served_max_abs_diff']:.3g} (quantized)."
    )
    rows = []
    for x in r["results"]:
        m = _pick(r, "MLflow", x["batch"], x["clients"])
        per_call = x.get("requests_per_call")
        rows.append(
            [
                x["batch"],
                x["clients"],
                x["server"],
                f"{x['requests_per_s']:.0f}",
                f"{x['rows_per_s']:,.0f}",
                f"{x['p50_ms']:.2f}",
                f"{x['p99_ms']:.2f}",
                "-" if per_call is None else f"{per_call:.2f}",
                f"{x['requests_per_s'] / m['requests_per_s']:.2f}x",
            ]
        )
    out.append(
        bench_common.table(
            [
                "batch",
                "clients",
                "server",
                "requests/s",
                "rows/s",
                "p50 (ms)",
                "p99 (ms)",
                "requests per model call",
                "vs MLflow",
            ],
            rows,
        )
    )
    out.append(
        "One batch-1 call in process, by call path (median ms): "
        + "; ".join(f"{k} {v:.3f}" for k, v in r["call_paths_ms"].items())
        + "."
    )
    out.append(
        f"TFLite (dynamic range) vs SavedModel on the {t['n_holdout']} holdout rows of {r['holdout_period']}: "
        f"{t['tflite_bytes'] / 1024:.0f} KB vs {t['savedmodel_bytes'] / 1024:.0f} KB ({t['size_ratio']:.3f}x), "
        f"{t['metric'].upper()} {t['tflite_metric']:.3f} vs {t['savedmodel_metric']:.3f} "
        f"({t['metric_change']:+.2%}), "
        f"batch-1 call in process p50 {t['tflite_latency']['p50_ms']:.3f} ms "
        f"vs {t['savedmodel_latency']['p50_ms']:.3f} ms."
    )
    s = r["settings"]
    out.append(
        f"One client: {s['requests']} sequential requests on one keep-alive connection after {s['warmup']} "
        f"warm-up requests; 8 clients: {s['throughput_requests']} requests over 8 threads, each on its own "
        f"connection. The client shares the {s['cpus']} cores with the servers; `mlflow models serve` runs "
        f"{s['mlflow_workers']} uvicorn worker (its default), ours one process."
    )
    return "\n\n".join(out)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--requests", type=int, default=300, help="sequential requests per latency run")
    p.add_argument("--warmup", type=int, default=30)
    p.add_argument("--throughput-requests", type=int, default=900, help="requests of an 8-client run, all clients")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--mlflow-workers", type=int, default=1, help="uvicorn workers of mlflow models serve (its default)")
    p.add_argument("--keep", action="store_true", help="keep the temporary folder (model, MLflow store, logs)")
    a = p.parse_args()

    t0 = time.perf_counter()
    with bench_common.scratch_home("retrainer-serving-bench-", a.keep) as home:
        os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])  # uvicorn
        _quiet()
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so that the servers are stopped on kill too
        result = run(a, home)
    seconds = time.perf_counter() - t0
    bench_common.write_part(
        "serving",
        "Model server vs mlflow models serve",
        markdown(result),
        targets=targets(result),
        data=result,
        seconds=seconds,
    )


if __name__ == "__main__":
    main()
