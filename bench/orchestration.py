"""Benchmark: orchestration overhead: one ``retrain_model`` run (LocalExecutor and Celery)
against the same work in a bare script (same data, epochs, seed).

What is compared, for each executor:

* **Airflow**: the real components, as the integration tests start them
  (``retrainer_dev.stacks.airflow``: API server, scheduler, DAG processor and triggerer
  over a fresh PostgreSQL metadata database; ``retrainer_dev.stacks.celery`` adds the
  CeleryExecutor with a Redis broker, two workers with homes of their own, an MLflow server
  and S3 on ``moto_server``), configured as the product configures them (the embedded
  default's settings; for Celery the compose file's worker preload). The data is the shipped
  ``bike_sharing`` spec's, months 2011-08 to 2012-02 (a six-month window and a month of
  holdout): all land, the first is ingested by an ``ingest_batch`` run (as a running
  deployment ingests; it also has the workers start their task processes once, so the run
  measured next finds them in their steady state), the others are versioned straight into
  the data registry. Then one ``retrain_model`` run is triggered by hand on that data version
  and timed from the trigger to the run's end. Approval policy ``auto`` (the shipped spec's):
  the review task runs and passes straight through, so no reviewer's think time is counted
  on either side. Per task, the task instances API gives when it was scheduled, queued,
  started and ended.
* **bare script**: one fresh Python process that imports what the steps need, then calls the
  same ``retrainer.pipeline`` functions the tasks call, in the same order, with the same
  settings, data, epochs and seed, against the same kind of stores: for the LocalExecutor the
  embedded default's local stores (MLflow on SQLite) on a home where the data was versioned,
  as the stack's tasks share one; for Celery an MLflow server of its own (PostgreSQL store),
  artifacts, DVC remote and model store on the same ``moto_server``, the data registry behind
  a git remote, on a home that has not seen the data (it clones the registry and fetches the
  window, as a Celery worker does). Its wall time includes the interpreter's start and every
  import, paid once.

The ratio (Airflow run / bare script) is the target: at most 1.5x on the LocalExecutor and
2x on Celery. Beside it, each step's bare time and its task's time: what a task costs beyond
its step is process start, imports, the DAG file's parse, settings and XCom through the API;
what lies between tasks is scheduling and queueing, split into the scheduler's loop, the
executor's slots and the worker's start.

Run from the repository root in the embedded default's environment::

    .venv/bin/python bench/orchestration.py [--executor local,celery] [--epochs N]

``--no-preload`` starts the stacks without the workers' preload of the tasks' imports
(``retrainer_airflow.preload``), to see what it saves; that result goes to
``.local/bench/orchestration-no-preload.json`` and is shown beside the next regular one.
``--keep`` keeps the stacks' folders (component and task logs). It needs PostgreSQL
(``RETRAINER_TEST_POSTGRES``) and, for Celery, Redis (``RETRAINER_TEST_REDIS``); without them
it says why and exits non-zero, writing nothing. Every stack and store lives in a temporary
folder (and fresh databases) removed at the end; the result is written to
``.local/bench/orchestration.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common

REPO = common.REPO
sys.path[:0] = [str(REPO / "include"), str(REPO / "plugins"), str(REPO / "tools")]

DATASET = "bike_sharing"
DAG_ID = "retrain_model"
#: the shipped spec trains on six months and holds out the seventh (2011-07's weather column
#: fails the spec's null limit, so the months after it)
PERIODS = ("2011-08", "2011-09", "2011-10", "2011-11", "2011-12", "2012-01", "2012-02")
#: retrain_model's tasks in the order they run; the bare script's steps carry the same names
CHAIN = ("plan_training", "validate_window", "train", "evaluate", "register", "review", "promote", "deploy", "verify")
#: tasks beside the chain (a run by hand covers its own dataset only: the fan-out is empty)
SIDE = ("plan_other_datasets", "retrain_other_datasets")
TARGETS = {"local": 1.5, "celery": 2.0}
NAMES = {"local": "LocalExecutor", "celery": "CeleryExecutor"}
RUN_TIMEOUT_S = 1800.0

Json = dict[str, Any]


class Unavailable(RuntimeError):
    """A stack cannot run here (no PostgreSQL, no Redis, ...): said loudly, never reported as measured."""


# =============================================================================== in a child process


def _child_env_settings() -> Any:
    from retrainer.settings import Settings

    return Settings.from_env()


def land(out: Path) -> None:
    """Deliver the benchmark's months into the landing location, as a data producer does."""
    from retrainer import storage
    from retrainer.data.demo_data import load_bike_sharing, split_periods, write_batch

    settings = _child_env_settings()
    spec = settings.load_spec(DATASET)
    parts = split_periods(load_bike_sharing(), spec)
    landed = {}
    with tempfile.TemporaryDirectory(prefix="retrainer-bench-batches-") as tmp:
        for period in PERIODS:
            local = write_batch(parts[period], spec, Path(tmp) / f"{period}.csv")
            landed[period] = storage.join(settings.landing, DATASET, f"{period}.csv")
            storage.write_bytes(landed[period], local.read_bytes(), settings.s3_endpoint_url)
    out.write_text(json.dumps(landed))


def version(out: Path, periods: list[str]) -> None:
    """Validate and version landed months into the data registry, as ingest_batch would.
    Writes the data version made last."""
    from retrainer import storage
    from retrainer.pipeline import ingest

    settings = _child_env_settings()
    label = ""
    for period in periods:
        batch = storage.join(settings.landing, DATASET, f"{period}.csv")
        validation = ingest.validate_batch(settings, DATASET, batch, period)
        if not validation.success:
            raise RuntimeError(f"{period} failed validation: {validation.failures}")
        label = ingest.version_batch(settings, validation).data_version
    out.write_text(json.dumps({"data_version": label}))


def bare(out: Path, data_version: str, epochs: int | None) -> None:
    """The steps of one retrain_model run, called one after the other in this process: the
    same ``retrainer.pipeline`` functions the tasks call, with the same arguments. Writes each
    step's wall time (imports included where a step is the first to need them)."""
    steps: list[tuple[str, float]] = []
    done: Json = {}

    def step(name: str, fn: Any) -> Any:
        t0 = time.perf_counter()
        result = fn()
        steps.append((name, time.perf_counter() - t0))
        print(f"  bare {name}: {steps[-1][1]:.1f} s", flush=True)
        return result

    settings = _child_env_settings()
    step("imports", _bare_imports)
    done["plan"] = step("plan_training", lambda: _bare_plan(settings, data_version))
    done["validation"] = step("validate_window", lambda: _bare_validate(settings, done["plan"]))
    done["trained"] = step("train", lambda: _bare_train(settings, done, epochs))
    done["evaluation"] = step("evaluate", lambda: _bare_evaluate(settings, done))
    done["registered"] = step("register", lambda: _bare_register(settings, done))
    step("review", lambda: _bare_review(settings, done))
    done["promoted"] = step("promote", lambda: _bare_promote(settings, done))
    if not done["promoted"].promoted:
        raise RuntimeError(f"the bare run's model was not promoted: {done['evaluation']}")
    done["deployed"] = step("deploy", lambda: _bare_deploy(settings, done))
    step("verify", lambda: _bare_verify(settings, done))
    out.write_text(json.dumps({"steps": steps, "epochs_run": done["trained"].epochs_run}))


def _bare_imports() -> None:
    """What the steps import, first and once (as a script would at its top): the modules the
    workers preload, less Airflow's and its adapters'. So each step's time is its work alone."""
    from retrainer_airflow.worker_imports import MODULES, preload

    preload([m for m in MODULES if not m.startswith(("airflow.", "retrainer_airflow."))])


def _run_context() -> Any:
    from retrainer.records import RunContext

    return RunContext(dag_id=DAG_ID, run_id=f"bare__{secrets.token_hex(4)}", trigger="benchmark")


_CTX: list[Any] = []


def _ctx() -> Any:
    if not _CTX:
        _CTX.append(_run_context())
    return _CTX[0]


def _bare_plan(settings: Any, data_version: str) -> Any:
    """plan_training: pin the version and window; nothing trained on it by other runs."""
    from retrainer.pipeline import train

    plan = train.plan_training(settings, DATASET, data_version, None, as_of=None, backfill=False)
    if train.trained_by_other_runs(settings, plan, _ctx()):
        raise RuntimeError("the bare run's home already holds a model of this data version")
    return plan


def _bare_validate(settings: Any, plan: Any) -> Any:
    from retrainer.pipeline import train

    return train.validate_window(settings, plan)


def _bare_train(settings: Any, done: Json, epochs: int | None) -> Any:
    from retrainer.pipeline import train

    return train.train_and_log(settings, done["plan"], _ctx(), done["validation"], epochs)


def _bare_evaluate(settings: Any, done: Json) -> Any:
    from retrainer.pipeline import evaluate

    return evaluate.evaluate(settings, done["plan"], done["trained"])


def _bare_register(settings: Any, done: Json) -> Any:
    from retrainer.pipeline import release

    return release.register(settings, done["plan"], done["trained"], done["evaluation"], _ctx(), None)


def _bare_review(settings: Any, done: Json) -> Any:
    """What the review task asks under policy auto: a decision already recorded, else the policy's."""
    from retrainer.registry import approval
    from retrainer.registry.client import Registry

    spec = settings.load_spec(DATASET)
    first = approval.recorded(Registry(settings).versions.tags(spec, done["registered"].version))
    if first is not None or spec.approval.policy != "auto":
        raise RuntimeError("the benchmark runs under approval policy auto, with nothing decided before")
    return done["evaluation"].passed


def _bare_promote(settings: Any, done: Json) -> Any:
    from retrainer.pipeline import release

    return release.promote(settings, done["plan"], done["evaluation"], done["registered"], done["trained"])


def _bare_deploy(settings: Any, done: Json) -> Any:
    from retrainer.pipeline import deploy

    return deploy.deploy(settings, done["plan"], done["registered"])


def _bare_verify(settings: Any, done: Json) -> Any:
    from retrainer.pipeline import deploy

    return deploy.verify_deployment(settings, done["plan"], done["deployed"])


# =============================================================================== helpers of the parent


def _child(what: list[str], env: dict[str, str], out: Path) -> tuple[Json, float]:
    """Run this script's ``what`` step in a fresh Python with ``env``: its result and wall time."""
    child_env = {**env, "PYTHONPATH": os.pathsep.join([str(REPO / p) for p in ("include", "plugins", "tools")])}
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, __file__, "--child", *what, "--out", str(out)], env=child_env, cwd=REPO, check=False
    )
    took = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{what[0]} failed (exit {proc.returncode}); its output is above")
    return json.loads(out.read_text()), took


def _ts(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


def _since(a: datetime | None, b: datetime | None) -> float | None:
    return None if a is None or b is None else (b - a).total_seconds()


def _spec_file(specs: Path) -> None:
    """The shipped bike sharing spec (approval policy auto), in place of the tests' small one."""
    specs.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "include" / "specs" / f"{DATASET}.yaml", specs / f"{DATASET}.yaml")


def _base_env() -> dict[str, str]:
    from retrainer_dev.stacks.components import inherited_env

    return inherited_env()


def _warm_page_cache() -> None:
    """Import the heavy libraries once, unmeasured, so neither side pays a cold disk."""
    code = "import tensorflow, mlflow, great_expectations, dvc.repo, airflow.sdk"
    subprocess.run(
        [sys.executable, "-c", code], env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}, check=True, capture_output=True
    )


@dataclass
class Measured:
    """One executor's figures: the bare script and the Airflow run."""

    executor: str
    bare_s: float
    bare_steps: dict[str, float]
    bare_epochs: int
    run_s: float
    run_id: str
    tasks: dict[str, Json] = field(default_factory=dict)
    trigger_to_first_s: float = 0.0
    last_to_end_s: float = 0.0
    epochs_run: int | None = None
    preloaded: str = "none"  # where the workers preloaded the tasks' imports
    memory_mb: dict[str, float] = field(default_factory=dict)  # PSS of the task-running processes after the run
    notes: list[str] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        return self.run_s / self.bare_s


# =============================================================================== the Airflow run


def _trigger_and_wait(stack: Any, data_version: str, epochs: int | None) -> tuple[str, float, datetime]:
    """One retrain_model run by hand on ``data_version``; returns its id, the seconds from
    the trigger to its end (the run's own end_date) and when it was triggered."""
    api = stack.client
    # the run takes the DAG's next scheduled logical date and is triggered before the DAG is
    # unpaused, so the scheduler starts no monthly run of its own beside it
    nxt = api.wait_for_dag(DAG_ID).get("next_dagrun_logical_date")
    logical = datetime.fromisoformat(nxt) if nxt else datetime(2011, 2, 1, tzinfo=UTC)
    conf = {"dataset": DATASET, "data_version": data_version, "reason": "orchestration benchmark", "epochs": epochs}
    t_trigger = datetime.now(UTC)
    run_id = api.trigger(DAG_ID, conf, logical)
    api.unpause(DAG_ID)
    api.wait_for_run(DAG_ID, run_id, timeout=RUN_TIMEOUT_S)
    ended = _ts(api.run(DAG_ID, run_id)["end_date"])
    return run_id, float(_since(t_trigger, ended) or 0.0), t_trigger


def _task_figures(stack: Any, run_id: str, triggered: datetime) -> tuple[dict[str, Json], float, float]:
    """Per task: state, host, start to end, queued to start, and the wait since the task before
    it in the chain ended; and the seconds from the trigger to the first task's start and
    from the last task's end to the run's end."""
    api = stack.client
    tis = api.task_instances(DAG_ID, run_id)
    out: dict[str, Json] = {}
    prev_end: datetime | None = None
    for task_id in (*CHAIN, *SIDE):
        ti = tis.get(task_id) or {}
        start, end = _ts(ti.get("start_date")), _ts(ti.get("end_date"))
        out[task_id] = {
            "state": ti.get("state"),
            "hostname": ti.get("hostname"),
            "try_number": ti.get("try_number"),
            "start": ti.get("start_date"),
            "end": ti.get("end_date"),
            "run_s": _since(start, end),
            "queued_to_start_s": _since(_ts(ti.get("queued_when")), start),
            "scheduled_to_start_s": _since(_ts(ti.get("scheduled_when")), start),
        }
        if task_id in CHAIN:
            out[task_id]["wait_before_s"] = _since(prev_end or triggered, start)
            prev_end = end or prev_end
    run = api.run(DAG_ID, run_id)
    first_start = _ts(out[CHAIN[0]]["start"])
    return out, float(_since(triggered, first_start) or 0.0), float(_since(prev_end, _ts(run["end_date"])) or 0.0)


def _bare_data(env: dict[str, str], where: Path) -> str:
    """The months landed and versioned on the bare script's home; returns the data version."""
    _child(["land"], env, where / "landed.json")
    versioned, _ = _child(["version", "--periods", ",".join(PERIODS)], env, where / "versioned.json")
    return str(versioned["data_version"])


def _stack_data(stack: Any, what: str) -> str:
    """The months landed and versioned on the stack: the first through an ``ingest_batch`` run (as
    a running deployment ingests; it also starts the workers' task processes once, so the run
    measured next finds them as they are in steady state), the others straight into the registry.
    Returns the data version."""
    api = stack.client
    landed, _ = _child(["land"], stack.env, stack.root / "landed.json")
    first = PERIODS[0]
    print(f"{what}: {first} through ingest_batch, then {len(PERIODS) - 1} months into the registry ...", flush=True)
    api.unpause("ingest_batch")
    conf = {"dataset": DATASET, "period": first, "batch": landed[first]}
    api.wait_for_run("ingest_batch", api.trigger("ingest_batch", conf, datetime.now(UTC)), timeout=600)
    versioned, _ = _child(["version", "--periods", ",".join(PERIODS[1:])], stack.env, stack.root / "versioned.json")
    return str(versioned["data_version"])


def _measure_run(stack: Any, executor: str, data_version: str, epochs: int | None) -> tuple[str, float, Json]:
    """Start the stack, put the data in, run retrain_model once; the stack is stopped after."""
    with _running(stack, NAMES[executor]):
        made = _stack_data(stack, NAMES[executor])
        if made != data_version:
            raise RuntimeError(f"the stack versioned {made}, the bare script {data_version}")
        print(f"{NAMES[executor]}: one retrain_model run on {data_version} ...", flush=True)
        run_id, run_s, triggered = _trigger_and_wait(stack, data_version, epochs)
        tasks, to_first, to_end = _task_figures(stack, run_id, triggered)
        xcom = _xcom(stack, run_id, "train")
        figures = {
            "preloaded": _preloaded(stack, executor),
            "memory_mb": _memory_mb(stack, executor),
            "tasks": tasks,
            "trigger_to_first_s": to_first,
            "last_to_end_s": to_end,
            "epochs_run": xcom.get("epochs_run"),
        }
        return run_id, run_s, figures


def _xcom(stack: Any, run_id: str, task_id: str) -> Json:
    from urllib.parse import quote

    path = f"/api/v2/dags/{DAG_ID}/dagRuns/{quote(run_id, safe='')}/taskInstances/{task_id}/xcomEntries/return_value"
    try:
        value = stack.client.request("GET", path)["value"]
    except (AssertionError, KeyError):
        return {}
    return value if isinstance(value, dict) else json.loads(value) if isinstance(value, str) else {}


@contextlib.contextmanager
def _running(stack: Any, what: str) -> Iterator[Any]:
    t0 = time.monotonic()
    try:
        stack.start()
        print(f"{what}: up in {time.monotonic() - t0:.0f} s ({stack.db.note}); state under {stack.root}", flush=True)
        yield stack
    except BaseException:
        print(f"{what}: component logs:\n{stack.log_tails(30)}", file=sys.stderr, flush=True)
        raise
    finally:
        stack.stop()


# =============================================================================== the two executors


def _local(parent: Path, epochs: int | None, preload: bool) -> Measured:
    from retrainer_dev import localenv
    from retrainer_dev.stacks.airflow import make_stack

    home = parent / "bare-local"
    (home / "mlflow").mkdir(parents=True)
    _spec_file(home / "specs")
    env = {**_base_env(), **localenv.local_env(home), "RETRAINER_SPECS_DIR": str(home / "specs")}
    print("LocalExecutor: the bare script on local stores ...", flush=True)
    version = _bare_data(env, parent / "bare-local")
    args = ["bare", "--data-version", version] + ([] if epochs is None else ["--epochs", str(epochs)])
    result, bare_s = _child(args, env, parent / "bare-local.json")
    stack = make_stack(parent, review=False)
    if stack.db.backend != "postgresql":
        stack.db.drop()
        raise Unavailable(f"the stacks need PostgreSQL here ({stack.db.note})")
    _spec_file(Path(stack.env["RETRAINER_SPECS_DIR"]))
    _preload_switch(stack, preload)
    run_id, run_s, figures = _measure_run(stack, "local", version, epochs)
    return _measured("local", bare_s, result, run_id, run_s, figures)


#: the settings that make the workers preload what the tasks import (``retrainer_airflow.preload``)
PRELOAD_SETTINGS = (
    "AIRFLOW__SCHEDULER__MP_START_METHOD",
    "AIRFLOW__SCHEDULER__MP_FORKSERVER_PRELOAD",
    "AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS",
)


def _preload_switch(stack: Any, preload: bool) -> None:
    """As the product sets the stack up, or (``--no-preload``) without the workers' preload."""
    if not preload:
        for key in PRELOAD_SETTINGS:
            stack.env.pop(key, None)


def _preloaded(stack: Any, executor: str) -> str:
    """Where the stack's workers preloaded the tasks' imports and what it took them, once: what a
    look at its processes and logs finds (the LocalExecutor's fork server, started with the
    scheduler; each Celery worker, as it starts)."""
    import re

    import psutil

    names = ["scheduler"] if executor == "local" else [c.name for c in stack.components if "worker" in c.name]
    took = []
    for name in names:
        text = (stack.logs / f"{name}.log").read_text(errors="replace")
        took += [float(s) for s in re.findall(r"preloaded \d+ modules in ([\d.]+) s", text)]
    spent = ", ".join(f"{s:.0f} s" for s in took)
    if executor == "local":
        for proc in stack.processes("scheduler"):
            with contextlib.suppress(psutil.Error):
                cmd = " ".join(proc.cmdline())
                if "forkserver" in cmd and "retrainer_airflow.preload" in cmd:
                    return f"in the fork server (pid {proc.pid}), at the scheduler's start, taking it {spent or '?'}"
        return "none"
    return f"in {len(took)} of {len(names)} Celery workers as each started, taking {spent}" if took else "none"


def _memory_mb(stack: Any, executor: str) -> dict[str, float]:
    """Memory (PSS, MB: a shared page counted once) of the processes that run the tasks, after the
    run: the scheduler with its LocalExecutor workers (and fork server), or each Celery worker
    with its pool."""
    import psutil

    out: dict[str, float] = {}
    for name in ["scheduler"] if executor == "local" else [c.name for c in stack.components if "worker" in c.name]:
        total = 0
        for proc in stack.processes(name):
            with contextlib.suppress(psutil.Error):
                total += proc.memory_full_info().pss
        out[name] = round(total / 2**20, 1)
    return out


def _measured(executor: str, bare_s: float, bare: Json, run_id: str, run_s: float, figures: Json) -> Measured:
    m = Measured(
        executor,
        bare_s,
        {k: float(v) for k, v in bare["steps"]},
        int(bare["epochs_run"]),
        run_s,
        run_id,
        figures["tasks"],
        figures["trigger_to_first_s"],
        figures["last_to_end_s"],
        figures["epochs_run"],
        figures["preloaded"],
        figures["memory_mb"],
    )
    if m.epochs_run is not None and m.epochs_run != m.bare_epochs:
        m.notes.append(
            f"early stopping ended the Airflow run's training after {m.epochs_run} epochs, the bare "
            f"script's after {m.bare_epochs}"
        )
    bad = {t: f["state"] for t, f in m.tasks.items() if f["state"] not in ("success", "skipped")}
    if bad:
        raise RuntimeError(f"{NAMES[executor]}: tasks did not succeed: {bad}")
    return m


@contextlib.contextmanager
def _moto() -> Iterator[str]:
    """A real S3 API (moto_server) on loopback."""
    from retrainer_dev.stacks.s3 import moto_server
    from retrainer_dev.waiting import WaitTimeout

    with contextlib.ExitStack() as running:
        try:
            url = running.enter_context(moto_server())
        except WaitTimeout as exc:
            raise Unavailable(f"moto_server did not start ({exc})") from None
        yield url


def _bucket(s3: str) -> str:
    from retrainer_dev.stacks.s3 import create_bucket

    return create_bucket(s3, f"retrainer-orch-{secrets.token_hex(4)}")


@contextlib.contextmanager
def _mlflow_server(root: Path, artifacts: str) -> Iterator[str]:
    """An MLflow tracking server of the bare run's own, as the Celery stack runs it (PostgreSQL
    store, artifacts on S3 written by the clients)."""
    from retrainer_dev.stacks.mlflow import MlflowServer, client_artifacts
    from retrainer_dev.stacks.postgres import metadata_db

    db = metadata_db(root)
    if db.backend != "postgresql":
        raise Unavailable(f"the MLflow server needs PostgreSQL here ({db.note})")
    server = MlflowServer(db.url, client_artifacts(artifacts), root / "mlflow-server.log")
    try:
        server.start()
        yield server.url
    finally:
        server.stop(grace=10)
        db.drop()


def _redis_answers() -> None:
    """The broker is there (checked before any database is made for the stack)."""
    import redis

    from retrainer_dev.stacks.celery import redis_server

    server = redis_server()
    try:
        redis.Redis.from_url(server, socket_connect_timeout=5).ping()
    except redis.RedisError as exc:
        raise Unavailable(f"the CeleryExecutor needs Redis: {server} does not answer ({exc})") from None


def _celery(parent: Path, epochs: int | None, preload: bool) -> Measured:
    from retrainer_dev import localenv
    from retrainer_dev.stacks.celery import make_celery_stack, shared_settings
    from retrainer_dev.stacks.components import StackUnavailable

    _redis_answers()
    with _moto() as s3:
        root = parent / "bare-celery"
        (root / "home" / "mlflow").mkdir(parents=True)
        _spec_file(root / "specs")
        subprocess.run(
            [shutil.which("git") or "git", "init", "-q", "--bare", "-b", "main", str(root / "registry.git")], check=True
        )
        bucket = _bucket(s3)
        print("CeleryExecutor: the bare script on an MLflow server and S3 ...", flush=True)
        with _mlflow_server(root, f"s3://{bucket}/mlflow") as mlflow_url:
            shared = {**_base_env(), **shared_settings(root, bucket, s3, mlflow_url)}
            version = _bare_data({**localenv.local_env(root / "home"), **shared}, parent / "bare-celery")
            # on a home of its own that has seen none of the data, as a Celery worker's has not:
            # it clones the data registry and fetches the window from the DVC remote on S3
            (root / "worker-home" / "mlflow").mkdir(parents=True)
            env = {**localenv.local_env(root / "worker-home"), **shared}
            args = ["bare", "--data-version", version] + ([] if epochs is None else ["--epochs", str(epochs)])
            result, bare_s = _child(args, env, parent / "bare-celery.json")
        try:
            stack = make_celery_stack(parent, s3, _bucket(s3))
        except StackUnavailable as exc:
            raise Unavailable(str(exc)) from None
        _spec_file(Path(stack.env["RETRAINER_SPECS_DIR"]))
        _preload_switch(stack, preload)
        run_id, run_s, figures = _measure_run(stack, "celery", version, epochs)
    return _measured("celery", bare_s, result, run_id, run_s, figures)


# =============================================================================== the report


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _overheads(m: Measured) -> tuple[float, float, int]:
    """Seconds the tasks took beyond their bare steps, seconds between tasks (and before the
    first and after the last), and how many chain tasks ran."""
    ran = [t for t in CHAIN if m.tasks[t]["run_s"] is not None]
    beyond = sum(float(m.tasks[t]["run_s"]) - m.bare_steps.get(t, 0.0) for t in ran)
    waits = sum(float(m.tasks[t].get("wait_before_s") or 0.0) for t in ran[1:])
    return beyond, waits + m.trigger_to_first_s + m.last_to_end_s, len(ran)


def _table(m: Measured) -> str:
    paid = "once per worker, before the run" if m.preloaded != "none" else "in each task (below)"
    rows: list[list[Any]] = [["imports", _fmt(m.bare_steps.get("imports")), paid, "", "", "", ""]]
    for t in CHAIN:
        f = m.tasks[t]
        bare = m.bare_steps.get(t)
        extra = None if f["run_s"] is None or bare is None else float(f["run_s"]) - bare
        rows.append(
            [
                t,
                _fmt(bare),
                _fmt(f["run_s"]),
                _fmt(extra),
                _fmt(f.get("wait_before_s")),
                _fmt(f["queued_to_start_s"]),
                f["hostname"] or "-",
            ]
        )
    for t in SIDE:
        f = m.tasks[t]
        rows.append([f"({t}, beside)", "-", _fmt(f["run_s"]), "-", "-", _fmt(f["queued_to_start_s"]), f"{f['state']}"])
    rows.append(["last task end -> run end", "", "", "", _fmt(m.last_to_end_s), "", ""])
    steps = sum(v for k, v in m.bare_steps.items() if k != "imports")
    rows.append(
        [
            f"**whole run** ({m.ratio:.2f}x)",
            f"**{m.bare_s:.1f}** (steps {steps:.1f})",
            f"**{m.run_s:.1f}**",
            "",
            "",
            "",
            "",
        ]
    )
    cols = [
        "step / task",
        "bare script (s)",
        "task start->end (s)",
        "task - bare step (s)",
        "wait before (s, trigger or previous task end)",
        "queued->start (s)",
        "host / state",
    ]
    return common.table(cols, rows)


def _waits(m: Measured) -> tuple[float, float, float]:
    """The waits between the chain's tasks, split where they pass: from the previous task's end to
    this one's being scheduled (the scheduler's loop), from scheduled to queued (the executor's
    open slots), from queued to started (the executor and the worker)."""
    parts = [0.0, 0.0, 0.0]
    for t in CHAIN[1:]:
        f = m.tasks[t]
        if f["run_s"] is None or f.get("wait_before_s") is None:
            continue
        sched, queued = float(f["scheduled_to_start_s"] or 0.0), float(f["queued_to_start_s"] or 0.0)
        parts[0] += float(f["wait_before_s"]) - sched
        parts[1] += sched - queued
        parts[2] += queued
    return parts[0], parts[1], parts[2]


def _bound(m: Measured) -> str:
    beyond, waits, n = _overheads(m)
    loop, slots, start = _waits(m)
    train = float(m.tasks["train"]["run_s"] or 0.0) - m.bare_steps.get("train", 0.0)
    return (
        f"per-task process start, imports, DAG parse, settings and XCom: {beyond:.0f} s over {n} tasks "
        f"(train {train:.0f} s of it); waits between tasks {waits:.0f} s: previous end to scheduled {loop:.0f} s "
        f"(scheduler loop), scheduled to queued {slots:.0f} s (executor slots), queued to started {start:.0f} s; "
        f"bare script {m.bare_s:.0f} s"
    )


NO_PRELOAD = common.RESULTS / "orchestration-no-preload.json"


def _section(m: Measured) -> str:
    beyond, waits, n = _overheads(m)
    steps = sum(v for k, v in m.bare_steps.items() if k != "imports")
    loop, slots, start = _waits(m)
    head = (
        f"### {NAMES[m.executor]}: {m.run_s:.1f} s from trigger to run end, bare script {m.bare_s:.1f} s: "
        f"**{m.ratio:.2f}x** (target at most {TARGETS[m.executor]}x)"
    )
    body = (
        f"Workers' preload of the tasks' imports: {m.preloaded}; memory (PSS) of the processes that run "
        f"tasks after the run: {', '.join(f'{k} {v:.0f} MB' for k, v in m.memory_mb.items())}. Beyond their "
        f"bare steps the {n} tasks took "
        f"{beyond:.1f} s (process start, imports, DAG parse, settings and XCom); between tasks {waits:.1f} s "
        f"passed with no task running: trigger to first task {m.trigger_to_first_s:.1f} s, then from a task's "
        f"end to the next one's being scheduled {loop:.1f} s (the scheduler's loop), scheduled to queued "
        f"{slots:.1f} s (waiting for an executor slot), queued to started {start:.1f} s. Against the bare "
        f"steps alone, without the script's start and imports ({m.bare_s - steps:.1f} s), the run is "
        f"{m.run_s / steps:.2f}x. Training ran "
        f"{m.epochs_run or '?'} epochs under Airflow, {m.bare_epochs} in the bare script."
    )
    return "\n\n".join([head, body, _table(m), *(f"Note: {note}" for note in m.notes)])


def _without_preload() -> str:
    """The last ``--no-preload`` measurement, if there is one, for comparison."""
    if not NO_PRELOAD.is_file():
        return ""
    doc = json.loads(NO_PRELOAD.read_text())
    rows = [[NAMES[e], f"{d['run_s']:.1f}", f"{d['bare_s']:.1f}", f"{d['ratio']:.2f}x"] for e, d in doc["data"].items()]
    return (
        f"### Without the workers' preload\n\nThe same benchmark with `--no-preload` (each task process imports "
        f"TensorFlow, MLflow, GX, ... itself), measured {doc['measured_at']}:\n\n"
        + common.table(["executor", "run (s)", "bare script (s)", "ratio"], rows)
    )


def report(measured: list[Measured], epochs: int | None, preload: bool, took: float) -> None:
    intro = (
        f"One `retrain_model` run (shipped `bike_sharing` spec: six months of training, one of holdout, "
        f"{'the spec’s epochs' if epochs is None else f'{epochs} epochs'}, seed 42, approval policy auto, deploy "
        f"with canary and the check through the model server) against the same pipeline steps called in one "
        f"Python process with the same kind of stores (for Celery on a home that has not seen the data, as a "
        f"worker's has not). Times are wall seconds on a shared machine; the task times come from the task "
        f"instances API."
    )
    targets = [
        common.target(
            f"retrain_model on {NAMES[m.executor]} vs bare script",
            round(m.ratio, 3),
            TARGETS[m.executor],
            op="<=",
            bound=_bound(m),
        )
        for m in measured
    ]
    data = {m.executor: {**m.__dict__, "ratio": m.ratio} for m in measured}
    if not preload:  # what the preload saves, not the product as it runs: kept apart from the report's part
        md = "\n\n".join([intro, *(_section(m) for m in measured)])
        common.write_part(
            "orchestration-no-preload",
            "Orchestration overhead without the workers' preload",
            md,
            data=data,
            seconds=took,
            out=NO_PRELOAD,
        )
        return
    md = "\n\n".join(part for part in [intro, *(_section(m) for m in measured), _without_preload()] if part)
    common.write_part("orchestration", "Orchestration overhead", md, targets=targets, data=data, seconds=took)


# =============================================================================== main


def _parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--executor", default="local,celery", help="comma-separated: local, celery (default both)")
    p.add_argument("--epochs", type=int, default=None, help="most epochs to train (default: the spec's)")
    p.add_argument(
        "--no-preload",
        dest="preload",
        action="store_false",
        help="start the stacks without the workers' preload of the tasks' imports (to see what it saves)",
    )
    p.add_argument("--keep", action="store_true", help="keep the stacks' folders (component and task logs)")
    p.add_argument("--child", nargs="?", choices=("land", "version", "bare"), help=argparse.SUPPRESS)
    p.add_argument("--data-version", help=argparse.SUPPRESS)
    p.add_argument("--periods", default=",".join(PERIODS), help=argparse.SUPPRESS)
    p.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    return p.parse_args()


def _on_term(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main() -> int:
    a = _parse()
    if a.child == "land":
        land(a.out)
        return 0
    if a.child == "version":
        version(a.out, a.periods.split(","))
        return 0
    if a.child == "bare":
        bare(a.out, a.data_version, a.epochs)
        return 0
    executors = [e.strip() for e in a.executor.split(",") if e.strip()]
    unknown = sorted(set(executors) - set(TARGETS))
    if unknown or not executors:
        print(f"unknown executor(s) {unknown}; choose from local, celery", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _on_term)  # stop the stacks on the way out
    parent = Path(tempfile.mkdtemp(prefix="retrainer-bench-orch-"))
    os.environ.setdefault("AIRFLOW_HOME", str(parent / "airflow"))
    t0 = time.perf_counter()
    measured: list[Measured] = []
    try:
        _warm_page_cache()
        for executor in executors:
            measured.append((_local if executor == "local" else _celery)(parent, a.epochs, a.preload))
            m = measured[-1]
            print(f"{NAMES[executor]}: run {m.run_s:.1f} s, bare {m.bare_s:.1f} s: {m.ratio:.2f}x", flush=True)
    except Unavailable as exc:
        print(f"\n*** NOT MEASURED: {exc}. Nothing was written. ***\n", file=sys.stderr, flush=True)
        return 3
    finally:
        if a.keep:
            print(f"kept: {parent}", flush=True)
        else:
            shutil.rmtree(parent, ignore_errors=True)
    report(measured, a.epochs, a.preload, time.perf_counter() - t0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
