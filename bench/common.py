"""What every benchmark shares: the machine it ran on, its result file, its tables and targets.

Each benchmark script measures one thing side by side with its peer and writes one result
file, ``.local/bench/<part>.json``, through :func:`write_part`. ``bench/report.py`` then
gathers the parts (in ``$RETRAINER_HOME/bench``, ``.local/bench`` by default) into
``docs/benchmarks.md``, ``docs/benchmarks.json`` and the scaling plot.
This module imports nothing beyond the standard library: the drift benchmark runs in its own
environment (``.venv-bench``).
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS = Path(os.environ.get("RETRAINER_HOME") or REPO / ".local") / "bench"
#: settings that could point a benchmark's state elsewhere than its temporary home
OWN_STATE = (
    "RETRAINER_SPECS_DIR",
    "RETRAINER_LANDING",
    "RETRAINER_QUARANTINE",
    "RETRAINER_VALIDATION_RESULTS",
    "RETRAINER_DATA_REGISTRY",
    "RETRAINER_DATA_REGISTRY_URL",
    "RETRAINER_DVC_REMOTE",
    "RETRAINER_MODEL_STORE",
    "RETRAINER_MLFLOW_ARTIFACTS",
    "AWS_ENDPOINT_URL",
)


def machine() -> dict[str, Any]:
    """The machine and interpreter a figure was measured on."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gb = 0.0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_gb = int(line.split()[1]) / 2**20
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(mem_gb, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
    }


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")


def target(
    what: str,
    measured: float,
    limit: float,
    *,
    op: str,
    unit: str = "x",
    bound: str = "",
    detail: str = "",
) -> dict[str, Any]:
    """One target: ``measured op limit`` (op ``<=`` or ``>=``), with what bounds it when missed."""
    if op not in ("<=", ">="):
        raise ValueError(f"op must be '<=' or '>=', not {op!r}")
    met = measured <= limit if op == "<=" else measured >= limit
    return {
        "what": what,
        "measured": measured,
        "limit": limit,
        "op": op,
        "unit": unit,
        "met": bool(met),
        "bound": "" if met else bound,
        "detail": detail,
    }


def series(what: str, rows: Sequence[int], seconds: Sequence[float], peak_mb: Sequence[float]) -> dict[str, Any]:
    """How time and peak memory grow with rows, for the scaling plot (one line per series)."""
    return {"what": what, "rows": list(rows), "seconds": list(seconds), "peak_mb": list(peak_mb)}


def table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A markdown table."""
    out = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


def write_part(
    part: str,
    title: str,
    markdown: str,
    *,
    targets: Sequence[dict[str, Any]] = (),
    scaling: Sequence[dict[str, Any]] = (),
    data: Any = None,
    seconds: float | None = None,
    out: Path | None = None,
) -> Path:
    """Write one benchmark's result file (and print its markdown)."""
    path = out or RESULTS / f"{part}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "part": part,
        "title": title,
        "measured_at": now(),
        "machine": machine(),
        "markdown": markdown,
        "targets": list(targets),
        "scaling": list(scaling),
        "seconds": seconds,
        "data": data,
    }
    path.write_text(json.dumps(doc, indent=2, default=float))
    print(f"\n## {title}\n\n{markdown}\n\nwritten: {path}", flush=True)
    return path


def timed(fn: Callable[[], Any], repeat: int = 3, warmup: int = 1) -> tuple[float, list[float]]:
    """Median wall time of ``fn`` over ``repeat`` runs after ``warmup`` runs, and all the times."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times


_MEASURE = """
import json, resource, subprocess, sys, time
t0 = time.perf_counter()
rc = subprocess.run(sys.argv[2:]).returncode
took = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
open(sys.argv[1], "w").write(json.dumps({"rc": rc, "seconds": took, "peak_mb": peak}))
"""


def run_process(cmd: Sequence[str], *, env: dict[str, str] | None = None, cwd: Path | None = None) -> dict[str, Any]:
    """Run a command to its end in a fresh measuring process: wall time and peak RSS (MB).

    The peak is the largest resident set of any process the command waited for (itself or
    a child), read with ``getrusage(RUSAGE_CHILDREN)`` in a process that runs only it.
    """
    import tempfile

    with tempfile.NamedTemporaryFile(suffix=".json") as f:
        proc = subprocess.run(
            [sys.executable, "-c", _MEASURE, f.name, *cmd], env=env, cwd=cwd, capture_output=True, text=True
        )
        measured = json.loads(Path(f.name).read_text() or "{}")
    if proc.returncode != 0 or measured.get("rc") != 0:
        raise RuntimeError(f"{' '.join(cmd[:4])} ... failed:\n{proc.stderr[-3000:]}")
    return {"seconds": measured["seconds"], "peak_mb": measured["peak_mb"], "stdout": proc.stdout}


@contextlib.contextmanager
def scratch_home(prefix: str, keep: bool = False) -> Iterator[Path]:
    """A temporary home holding every location of the embedded default, put into this process's
    environment (nothing touches the user's ``.local/`` but the result files); removed at the
    end unless ``keep``."""
    sys.path.insert(0, str(REPO / "tools"))
    from retrainer_dev import localenv

    home = Path(tempfile.mkdtemp(prefix=prefix))
    for var in OWN_STATE:
        os.environ.pop(var, None)
    localenv.apply(home, override=True)
    try:
        yield home
    finally:
        if keep:
            print(f"kept: {home}")
        else:
            shutil.rmtree(home, ignore_errors=True)


def python_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for a measured child Python: the repo's code on its path, quiet TensorFlow."""
    env = dict(os.environ)
    paths = [str(REPO / "include"), str(REPO / "plugins"), env.get("PYTHONPATH", "")]
    env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env.update(extra or {})
    return env


def interpreter() -> str:
    return sys.executable
