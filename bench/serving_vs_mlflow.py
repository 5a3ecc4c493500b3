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
import socket
import statistics
import subprocess
import sys
import tempfile
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
sys.path[:0] = [str(REPO / "include"), str(REPO / "plugins")]

TARGET_SPEEDUP = 5.0  # the product's targets: throughput at least 5x MLflow's ...
TARGET_P99_MS = 15.0  # ... and p99 at batch 1 at most 15 ms
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

    from retrainer import deployment, modelstore, sources, training
    from retrainer.settings import Settings

    _quiet()  # again: importing TensorFlow resets the warning filters
    settings = Settings.from_env()
    spec = settings.load_spec("bike_sharing")
    periods = sources.split_periods(sources.load_bike_sharing(), spec)
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
    deployment.deploy(settings, spec, version, result.model)
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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """A server process in its own process group, stopped (group and all) on exit."""

    def __init__(self, name: str, cmd: list[str], port: int, ready_path: str, log_dir: Path) -> None:
        self.name, self.port, self.ready_path = name, port, ready_path
        self.log_path = log_dir / f"{name.replace(' ', '_')}.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)
        self.started = time.monotonic()
        self._stopped = False

    def wait_ready(self, timeout: float = 180.0) -> float:
        """Seconds from start until the server answers its status or ping endpoint with 200."""
        t0 = self.started
        while time.monotonic() - t0 < timeout:
            if self.proc.poll() is not None:
                tail = self.log_path.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode} while starting:\n{tail}")
            with contextlib.suppress(OSError, http.client.HTTPException):
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                conn.request("GET", self.ready_path)
                if conn.getresponse().status == 200:
                    conn.close()
                    return time.monotonic() - t0
                conn.close()
            time.sleep(0.25)
        raise TimeoutError(f"{self.name} not ready on port {self.port} after {timeout:.0f} s (log {self.log_path})")

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
    try:
        for i in range(warmup + n):
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
    return {"p50_ms": _percentile(times, 50), "p99_ms": _percentile(times, 99), "mean_ms": statistics.fmean(times)}


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
        "loaded_p50_ms": _percentile(times, 50),
        "loaded_p99_ms": _percentile(times, 99),
    }


# =============================================================================== in process


def call_paths(built: dict[str, Any], store: Path, rows: pd.DataFrame, n: int) -> dict[str, float]:
    """Median in-process time (ms) of one batch-1 call through each way of calling the model."""
    import tensorflow as tf

    from retrainer import training

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

    from retrainer import deployment, evaluation, training

    spec, model, holdout = built["spec"], built["model"], built["holdout"]
    blob, saved_size = deployment.convert_tflite(model)
    y = training.target_array(holdout, spec)
    metric = spec.gate.metric
    full_pred = deployment.serve_predictions(str(store / spec.model_name / "1"), holdout, spec, None)
    full = evaluation.metrics(spec.target.task, y, full_pred)[metric]
    lite = evaluation.metrics(spec.target.task, y, deployment.tflite_predictions(blob, holdout, spec))[metric]

    arrays = training.feature_arrays(holdout.iloc[:64], spec)
    sig = tf.saved_model.load(str(store / spec.model_name / "1")).signatures[deployment.SIGNATURE]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        runner = tf.lite.Interpreter(model_content=blob).get_signature_runner(deployment.SIGNATURE)
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


def run(a: argparse.Namespace, home: Path) -> dict[str, Any]:
    py = sys.executable
    mlflow_cli = str(Path(py).with_name("mlflow"))
    built = build(home, a.epochs)
    spec = built["spec"]
    store = Path(built["settings"].model_store)
    names = list(spec.feature_names)
    rows = records(built["holdout"], names)
    n_bodies = 64

    print("in process: TFLite vs SavedModel, and the cost of one call through each path ...", flush=True)
    lite = tflite(built, store, a.requests)
    paths = call_paths(built, store, built["holdout"], a.requests)

    def mlflow_serve(uri: str, port: int) -> list[str]:
        return [mlflow_cli, "models", "serve", "-m", uri, "--env-manager", "local",
                "-h", "127.0.0.1", "-p", str(port), "-w", str(a.mlflow_workers)]  # fmt: skip

    ports = [free_port() for _ in range(3)]
    with servers() as start:  # all three load at once; each is stopped on the way out, error or not
        ours_cmd = [py, "-m", "retrainer.serving", "--store", str(store), "--port", str(ports[0])]
        ours = start("ours", ours_cmd, ports[0], f"/v1/models/{spec.model_name}", home)
        flavor = start("mlflow tensorflow flavor", mlflow_serve(built["flavor_uri"], ports[1]), ports[1], "/ping", home)
        wrapper = start("mlflow pyfunc wrapper", mlflow_serve(built["wrapper_uri"], ports[2]), ports[2], "/ping", home)
        for server in (ours, flavor, wrapper):
            print(f"{server.name}: ready {server.wait_ready():.1f} s after start", flush=True)

        probes = probe_flavor(flavor.port, rows[:2])
        flavor_served = probes[0]["status"] == 200  # the format the benchmark sends
        mlflow_server = flavor if flavor_served else wrapper
        (wrapper if flavor_served else flavor).stop()

        ours_path = f"/v1/models/{spec.model_name}:predict"
        check_rows = rows[:32]
        s1, p1 = post(ours.port, ours_path, ours_body(check_rows))
        s2, p2 = post(mlflow_server.port, "/invocations", mlflow_body(check_rows))
        if s1 != 200 or s2 != 200:
            raise RuntimeError(f"a server refused the check request: ours {s1} {p1}, MLflow {s2} {p2}")
        agreement = float(np.max(np.abs(np.asarray(p1["predictions"]) - np.asarray(mlflow_values(p2)))))

        results: list[dict[str, Any]] = []
        for batch in (1, 32):
            slices = [rows[(i * batch) % len(rows) :][:batch] for i in range(n_bodies)]
            slices = [s if len(s) == batch else rows[:batch] for s in slices]
            for name, server, path, encode in (
                ("ours", ours, ours_path, ours_body),
                ("MLflow", mlflow_server, "/invocations", mlflow_body),
            ):
                bodies = [encode(s) for s in slices]
                print(f"batch {batch}, {name}: latency ...", flush=True)
                lat = latency(server.port, path, bodies, a.requests, a.warmup)
                print(f"batch {batch}, {name}: throughput with {a.threads} clients ...", flush=True)
                thr = throughput(server.port, path, bodies, a.threads, a.throughput_requests // a.threads)
                results.append(
                    {"batch": batch, "server": name, **lat, **thr, "rows_per_s": thr["requests_per_s"] * batch}
                )
    ratios = {}
    for batch in (1, 32):
        o, m = (next(x for x in results if x["batch"] == batch and x["server"] == n) for n in ("ours", "MLflow"))
        ratio = o["requests_per_s"] / m["requests_per_s"]
        met = ratio >= TARGET_SPEEDUP and (batch != 1 or o["p99_ms"] <= TARGET_P99_MS)
        ratios[str(batch)] = {"throughput": ratio, "p99_ours_ms": o["p99_ms"], "p99_mlflow_ms": m["p99_ms"], "met": met}
    return {
        "model": spec.model_name,
        "epochs_run": built["epochs_run"],
        "holdout_period": HOLDOUT_PERIOD,
        "flavor_probe": probes,
        "flavor_served": flavor_served,
        "prediction_max_abs_diff": agreement,
        "call_paths_ms": paths,
        "results": results,
        "ratios": ratios,
        "targets": {"throughput_vs_mlflow": TARGET_SPEEDUP, "p99_ms_batch_1": TARGET_P99_MS},
        "mlflow_served": "tensorflow flavor as logged" if flavor_served else "pyfunc wrapper (Keras predict_on_batch)",
        "mlflow_input": "{'inputs': {column: [[value], ...]}}",
        "tflite": lite,
        "settings": {
            "requests": a.requests,
            "warmup": a.warmup,
            "threads": a.threads,
            "throughput_requests": a.throughput_requests // a.threads * a.threads,
            "cpus": os.cpu_count(),
            "mlflow_workers": a.mlflow_workers,
        },
    }


def report(r: dict[str, Any]) -> None:
    s = r["settings"]
    print("\nMLflow serving the model as the pipeline logs it (tensorflow flavor):")
    print("| input format | HTTP | error |")
    print("|---|---|---|")
    for p in r["flavor_probe"]:
        print(f"| {p['format']} | {p['status']} | {p['error'] or '-'} |")
    if r["flavor_served"]:
        print('MLflow below serves the model as logged, input {"inputs": {column: [[value], ...]}}.')
    else:
        print(
            "MLflow's tensorflow pyfunc passes the request to keras.Model.predict, which refuses string inputs:"
            " it cannot serve this model as logged.\nMLflow below serves the same Keras model through a pyfunc"
            ' wrapper (columns to tensors, predict_on_batch), input {"inputs": {column: [[value], ...]}}.'
        )
    print(f"Both servers agree on 32 holdout rows to {r['prediction_max_abs_diff']:.2g} (max abs difference).")

    print("\nOne batch-1 call in process, by call path (median ms):")
    for name, ms in r["call_paths_ms"].items():
        print(f"  {name}: {ms:.2f}")

    print(
        f"\nServing over loopback ({s['cpus']} CPUs; client and server share them). Latency: {s['requests']} "
        f"sequential requests after {s['warmup']} warm-up, one keep-alive connection. Throughput: {s['threads']} "
        f"client threads, {s['throughput_requests']} requests, a keep-alive connection each. MLflow: "
        f"{s['mlflow_workers']} uvicorn worker; ours: one process."
    )
    print("| batch | server | requests/s | rows/s | p50 (ms) | p99 (ms) | p50 / p99 under load (ms) |")
    print("|---|---|---|---|---|---|---|")
    for x in r["results"]:
        print(
            f"| {x['batch']} | {x['server']} | {x['requests_per_s']:.0f} | {x['rows_per_s']:.0f} | {x['p50_ms']:.2f} "
            f"| {x['p99_ms']:.2f} | {x['loaded_p50_ms']:.1f} / {x['loaded_p99_ms']:.1f} |"
        )
    print(
        f"\n| batch | throughput ours / MLflow | p99 ours (ms) | p99 MLflow (ms) "
        f"| targets: >= {TARGET_SPEEDUP:g}x, p99 <= {TARGET_P99_MS:g} ms at batch 1 |"
    )
    print("|---|---|---|---|---|")
    for batch, x in r["ratios"].items():
        verdict = "met" if x["met"] else "MISSED"
        print(f"| {batch} | {x['throughput']:.2f}x | {x['p99_ours_ms']:.2f} | {x['p99_mlflow_ms']:.2f} | {verdict} |")

    t = r["tflite"]
    print(f"\nTFLite (dynamic range) vs SavedModel, {t['n_holdout']} holdout rows ({r['holdout_period']}):")
    print("| artifact | size (KB) | " + t["metric"].upper() + " | batch-1 p50 (ms) | batch-1 p99 (ms) |")
    print("|---|---|---|---|---|")
    for name, size, value, lat in (
        ("SavedModel", t["savedmodel_bytes"], t["savedmodel_metric"], t["savedmodel_latency"]),
        ("TFLite", t["tflite_bytes"], t["tflite_metric"], t["tflite_latency"]),
    ):
        print(f"| {name} | {size / 1024:.0f} | {value:.3f} | {lat['p50_ms']:.3f} | {lat['p99_ms']:.3f} |")
    print(f"size ratio {t['size_ratio']:.3f}x; {t['metric'].upper()} change {t['metric_change']:+.3%}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--requests", type=int, default=300, help="sequential requests per latency run")
    p.add_argument("--warmup", type=int, default=30)
    p.add_argument("--threads", type=int, default=3, help="concurrent clients in the throughput run")
    p.add_argument("--throughput-requests", type=int, default=900, help="requests of a throughput run, all clients")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--mlflow-workers", type=int, default=1, help="uvicorn workers of mlflow models serve (its default)")
    p.add_argument("--out", type=Path, default=REPO / ".local" / "bench" / "serving.json")
    p.add_argument("--keep", action="store_true", help="keep the temporary folder (model, MLflow store, logs)")
    a = p.parse_args()

    # every location of the embedded default in a temporary folder; nothing touches .local/ but the results
    home = Path(tempfile.mkdtemp(prefix="retrainer-serving-bench-"))
    from retrainer_dev import localenv

    for var in ("RETRAINER_MODEL_STORE", "RETRAINER_MLFLOW_ARTIFACTS", "RETRAINER_DVC_REMOTE", "AWS_ENDPOINT_URL"):
        os.environ.pop(var, None)
    localenv.apply(home, override=True)
    os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])  # uvicorn
    _quiet()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so that the servers are stopped on kill too
    t0 = time.perf_counter()
    try:
        result = run(a, home)
    finally:
        if a.keep:
            print(f"kept: {home}")
        else:
            shutil.rmtree(home, ignore_errors=True)
    report(result)
    result["seconds"] = time.perf_counter() - t0
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(result, indent=2))
    print(f"\nwall time {result['seconds']:.0f} s; written: {a.out}")


if __name__ == "__main__":
    main()
