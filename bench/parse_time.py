"""Benchmark: how long Airflow's DAG processor takes to parse each retrainer DAG file, against a trivial DAG.

Airflow parses every DAG file again and again (every ``[dag_processor] min_file_process_interval``),
each time in a fresh child process, so whatever a DAG file imports or computes at its top is paid
on every parse. The product's target: every DAG file parses within 2x a trivial DAG.

A parse is measured the way Airflow 3's DAG processor parses a file. A Python process imports
what the DAG processor manager has imported (Airflow with its settings, the Task SDK, the manager,
the file processor, the in-process execution API) and freezes its objects (``gc.freeze``, as the
manager does). For one DAG file, a forked copy of it runs the processor's own pre-import
(``_pre_import_airflow_modules``: the ``airflow.*`` modules the file imports at its top are
imported once, in the parent: ``[dag_processor] parsing_pre_import_modules``) and then forks a
child for each parse, as the processor does. The child blocks database access as the
processor's child does and times the processor's own ``_parse_file``: the DAG-stability check,
a ``DagBag`` of that one file (importing the file and building its DAGs: "load") and the
serialization of its DAGs, and within them the time Airflow spends on the DAGs' Params (copied
into each task, validated, and checked again as each task is serialized); it reports through a
pipe. A parse with an import error, or one that yields no DAG, stops the benchmark: a failed
parse is quick, and no measurement. Python's bytecode cache is written and read, as in a
running deployment after its first parse.

Compared with, in the same run and measured the same way:

* a trivial DAG (one DAG with one TaskFlow task, written to a temporary folder): its parses and
  the DAG file's are taken in turns (one warm-up, then --repeat of each: median, min and max),
  each from a parent of its own, so that a ratio compares parses taken moments apart;
* each DAG file with the heavy libraries imported at its top (``import tensorflow, mlflow,
  great_expectations, pandas, dvc.api``, those installed; --heavy-repeat parses), to show what
  thin DAG files save.

Each DAG file is measured in a fresh manager process, so no file profits from another file's
pre-imports (a long-running DAG processor holds those of every file it has parsed, so a real
parse is at most as slow). The total is the sum over the DAG files. Where a file misses the
target, the benchmark says what bounds it: its load, serialization and Params times against the
trivial DAG's, and, from a run under ``python -X importtime``, the slowest imports that the
trivial DAG does not make.

Run it from the repository root in the local environment (``make bench`` does); the result goes
to ``.local/bench/parse.json`` (--out).
"""

from __future__ import annotations

import argparse
import ast
import gc
import importlib
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, ClassVar, NoReturn

import common

REPO = common.REPO
DAGS = REPO / "dags"
TARGET = 2.0  # every DAG file parses within 2x a trivial DAG
HEAVY = ("tensorflow", "mlflow", "great_expectations", "pandas", "dvc.api")
BUNDLE = "dags-folder"  # the bundle Airflow makes of [core] dags_folder
#: what the DAG processor manager has imported before it starts parsing
MANAGER_MODULES = (
    "airflow",
    "airflow.sdk",
    "airflow.cli.commands.dag_processor_command",
    "airflow.dag_processing.manager",
    "airflow.dag_processing.processor",
    "airflow.api_fastapi.execution_api.app",
)
MARK = "-- parse-time: the DAG file --"

TRIVIAL_DAG = '''"""A trivial DAG: one DAG, one task."""

from airflow.sdk import dag, task


@dag(dag_id="trivial", schedule=None)
def trivial() -> None:
    @task
    def hello() -> str:
        return "hello"

    hello()


trivial()
'''


# =============================================================================== the child


@contextmanager
def _params_timed() -> Iterator[list[float]]:
    """The time spent on DAG Params (copied into tasks, validated, dumped), outermost calls only."""
    from airflow.sdk.definitions.param import ParamsDict

    took, depth = [0.0], [0]
    originals = {name: getattr(ParamsDict, name) for name in ("__deepcopy__", "dump", "validate")}

    def timed(fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            depth[0] += 1
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                depth[0] -= 1
                took[0] += time.perf_counter() - t0 if depth[0] == 0 else 0.0

        return wrapper

    for name, fn in originals.items():
        setattr(ParamsDict, name, timed(fn))
    try:
        yield took
    finally:
        for name, fn in originals.items():
            setattr(ParamsDict, name, fn)


def _parse_in_child(path: str, bundle: str, pipe: int) -> NoReturn:
    """In the forked child: parse ``path`` as the DAG processor's child does, report through ``pipe``."""
    try:
        try:
            out = _timed_parse(path, bundle)
        except BaseException:
            out = {"error": traceback.format_exc()}
        with os.fdopen(pipe, "w") as fh:
            fh.write(json.dumps(out, default=str))
    finally:
        os._exit(0)  # never back into the parent's code


def _timed_parse(path: str, bundle: str) -> dict[str, Any]:
    import structlog
    from airflow.dag_processing import processor
    from airflow.sdk.execution_time.supervisor import block_orm_access

    os.environ["_AIRFLOW_PROCESS_CONTEXT"] = "client"
    block_orm_access()
    phases: dict[str, float] = {}
    bags: list[Any] = []
    real_bag, real_serialize = processor.BundleDagBag, processor._serialize_dags

    def bag(**kwargs: Any) -> Any:  # the processor's DagBag, its load timed
        t0 = time.perf_counter()
        bags.append(real_bag(**kwargs))
        phases["load"] = time.perf_counter() - t0
        return bags[-1]

    def serialize(dagbag: Any, log: Any) -> Any:  # the processor's serialization, timed
        t0 = time.perf_counter()
        done = real_serialize(dagbag, log)
        phases["serialize"] = time.perf_counter() - t0
        return done

    processor.BundleDagBag = bag  # type: ignore[misc,assignment]
    processor._serialize_dags = serialize
    request = processor.DagFileParseRequest(file=path, bundle_path=Path(bundle), bundle_name=BUNDLE)
    log = structlog.get_logger(logger_name="processor")
    with _params_timed() as params:
        t0 = time.perf_counter()
        result = processor._parse_file(request, log)
        seconds = time.perf_counter() - t0
    dags = list(bags[0].dags.values()) if bags else []
    return {
        "seconds": seconds,
        **phases,
        "params_s": params[0],
        "dags": len(result.serialized_dags) if result else 0,
        "import_errors": dict(result.import_errors or {}) if result else {},
        "tasks": sum(len(d.tasks) for d in dags),
        "params": sum(len(d.params) for d in dags),
    }


def _fork_parse(path: Path, bundle: Path) -> dict[str, Any]:
    """One parse of ``path`` in a forked child of this process (the parent the processor forks from)."""
    read, write = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        _parse_in_child(str(path), str(bundle), write)
    os.close(write)
    with os.fdopen(read) as fh:
        text = fh.read()
    _, status = os.waitpid(pid, 0)
    if not text:
        raise RuntimeError(f"the parse of {path} died (wait status {status})")
    sample: dict[str, Any] = json.loads(text)
    if "error" in sample:
        raise RuntimeError(f"the parse of {path} failed:\n{sample['error']}")
    if sample["import_errors"] or not sample["dags"]:
        raise RuntimeError(f"{path} did not parse: {sample['dags']} DAG(s), import errors {sample['import_errors']}")
    return sample


# =============================================================================== the parent (one per DAG file)


def _become_the_manager() -> Any:
    """Import what the DAG processor manager has, freeze it as the manager does; its logger."""
    sys.dont_write_bytecode = False  # a running deployment reads its bytecode cache
    for name in MANAGER_MODULES:
        importlib.import_module(name)
    gc.freeze()
    import structlog

    return structlog.get_logger(logger_name="processor")


@dataclass
class Parent:
    """A copy of the manager that has pre-imported one file's ``airflow.*`` imports; it forks a
    child for each parse asked of it, as the DAG processor does for each parse of the file."""

    path: Path
    pid: int
    ask: IO[str]
    answers: IO[str]
    running: ClassVar[list[Parent]] = []

    @classmethod
    def start(cls, path: Path, log: Any) -> Parent:
        from airflow.dag_processing.processor import _pre_import_airflow_modules

        ask_r, ask_w = os.pipe()
        answer_r, answer_w = os.pipe()
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            try:
                for fd in (ask_w, answer_r, *(f.fileno() for p in cls.running for f in (p.ask, p.answers))):
                    os.close(fd)  # so that a parent stopped is told (its asks end), whatever its siblings hold
                _pre_import_airflow_modules(str(path), log)
                cls._serve(path, ask_r, answer_w)
            finally:
                os._exit(0)  # never back into the manager's code
        os.close(ask_r)
        os.close(answer_w)
        cls.running.append(cls(path, pid, os.fdopen(ask_w, "w"), os.fdopen(answer_r)))
        return cls.running[-1]

    @staticmethod
    def _serve(path: Path, ask_r: int, answer_w: int) -> None:
        with os.fdopen(ask_r) as asks, os.fdopen(answer_w, "w") as answers:
            for _ in asks:  # one line per parse
                try:
                    answer = _fork_parse(path, path.parent)
                except Exception as exc:
                    answer = {"error": str(exc)}
                answers.write(json.dumps(answer) + "\n")
                answers.flush()

    def parse(self) -> dict[str, Any]:
        self.ask.write("parse\n")
        self.ask.flush()
        line = self.answers.readline()
        sample: dict[str, Any] = json.loads(line) if line else {"error": f"the parent of {self.path} died"}
        if "error" in sample:
            raise RuntimeError(sample["error"])
        return sample

    def stop(self) -> None:
        self.running.remove(self)
        self.ask.close()
        self.answers.close()
        os.waitpid(self.pid, 0)


def _worker(spec: dict[str, Any]) -> None:
    """The manager for one DAG file: parses of the trivial DAG and of the file, taken in turns (each
    from a parent of its own, so neither profits from the other's pre-imports), then the heavy copy."""
    log = _become_the_manager()
    trivial, ours = Parent.start(Path(spec["trivial"]), log), Parent.start(Path(spec["file"]), log)
    try:
        turns = [(trivial.parse(), ours.parse()) for _ in range(1 + spec["repeat"])][1:]  # after a warm-up
    finally:
        trivial.stop()
        ours.stop()
    out = {"trivial": [t for t, _ in turns], "ours": [o for _, o in turns]}
    if spec.get("heavy"):
        heavy = Parent.start(Path(spec["heavy"]), log)
        try:  # no warm-up: the heavy libraries' bytecode is installed with them
            out["heavy"] = [heavy.parse() for _ in range(spec["heavy_repeat"])]
        finally:
            heavy.stop()
    Path(spec["out"]).write_text(json.dumps(out))


def _explain(spec: dict[str, Any]) -> None:
    """Under ``python -X importtime``: after the trivial DAG's parse, what parsing the file imports
    (the import lines after the mark)."""
    from airflow.dag_processing import processor

    log = _become_the_manager()
    path, trivial = Path(spec["file"]), Path(spec["trivial"])
    processor._pre_import_airflow_modules(str(path), log)
    for dag_file in (trivial, path):
        if dag_file == path:
            print(MARK, file=sys.stderr, flush=True)
        request = processor.DagFileParseRequest(file=str(dag_file), bundle_path=dag_file.parent, bundle_name=BUNDLE)
        processor._parse_file(request, log)


# =============================================================================== orchestration


def _run_self(mode: str, spec: dict[str, Any], log: Path, *python_flags: str) -> str:
    """Run this script in ``mode`` in a fresh interpreter; its stderr (the Airflow logs go to ``log``)."""
    cmd = [sys.executable, *python_flags, __file__, f"--{mode}", json.dumps(spec)]
    with log.open("a") as fh:
        proc = subprocess.run(cmd, cwd=REPO, stdout=fh, stderr=subprocess.PIPE, text=True)
        fh.write(proc.stderr[-20000:])
    if proc.returncode != 0:
        raise RuntimeError(f"measuring {spec['file']} failed:\n{proc.stderr[-4000:]}")
    return proc.stderr


def with_heavy_imports(source: str, modules: list[str]) -> str:
    """``source`` with ``import <modules>`` at its top (after its docstring and ``__future__`` imports)."""
    body = ast.parse(source).body
    after = 0
    for node in body:
        is_doc = isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and node is body[0]
        if not (is_doc or (isinstance(node, ast.ImportFrom) and node.module == "__future__")):
            break
        after = node.end_lineno or node.lineno
    lines = source.splitlines(keepends=True)
    return "".join([*lines[:after], f"\nimport {', '.join(modules)}\n", *lines[after:]])


def installed(modules: tuple[str, ...]) -> list[str]:
    """The heavy modules this environment has (looked up, not imported)."""
    return [m for m in modules if importlib.util.find_spec(m.split(".")[0]) is not None]


def slowest_imports(stderr: str, top: int = 4) -> list[tuple[str, float]]:
    """From the ``-X importtime`` run: the file's own imports (those after the mark), slowest first (ms)."""
    imports, seen = [], False
    for line in stderr.splitlines():
        seen = seen or line.strip() == MARK
        parts = line.split("|")
        if not seen or not line.startswith("import time:") or len(parts) != 3 or not parts[1].strip().isdigit():
            continue
        name = parts[2].rstrip()
        if len(name) - len(name.lstrip(" ")) <= 1:  # imported by the file (or code it runs), not by an import
            imports.append((name.strip(), int(parts[1]) / 1000))
    return sorted(imports, key=lambda item: -item[1])[:top]


def summary(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """Median, min and max of a file's parses (ms), with the median load and serialization."""
    ms = [s["seconds"] * 1000 for s in samples]
    return {
        "median_ms": statistics.median(ms),
        "min_ms": min(ms),
        "max_ms": max(ms),
        "load_ms": statistics.median(s.get("load", 0.0) * 1000 for s in samples),
        "serialize_ms": statistics.median(s.get("serialize", 0.0) * 1000 for s in samples),
        "params_ms": statistics.median(s["params_s"] * 1000 for s in samples),
        "dags": samples[0]["dags"],
        "tasks": samples[0]["tasks"],
        "params": samples[0]["params"],
        "ms": ms,
    }


def what_bounds(ours: dict[str, Any], trivial: dict[str, Any], imports: list[tuple[str, float]]) -> str:
    """Why a file parses more slowly than the target: its phases against the trivial DAG's, measured."""
    said = [
        f"loading it (imports, DAG build) takes {ours['load_ms']:.0f} ms against {trivial['load_ms']:.0f} ms",
        f"serializing it {ours['serialize_ms']:.0f} ms against {trivial['serialize_ms']:.0f} ms",
    ]
    if ours["params"]:
        said.append(
            f"its {ours['params']} DAG Params take {ours['params_ms']:.0f} ms of its {ours['median_ms']:.0f} ms"
            f" (Airflow copies them into each of its {ours['tasks']} tasks, validates them, and as it serializes"
            " each task checks every Param's JSON Schema against the metaschema twice)"
        )
    if imports:
        slowest = ", ".join(f"{name} {ms:.0f} ms" for name, ms in imports)
        said.append(f"its slowest imports the trivial DAG does not make (python -X importtime): {slowest}")
    return "; ".join(said)


def _cell(ms: float) -> str:
    return f"{ms:.1f}"


def markdown(results: dict[str, dict[str, Any]], heavy: list[str], repeat: int) -> str:
    """The table: per DAG file and in total, ours against the trivial DAG and against heavy imports."""
    rows, total = [], {"ours": 0.0, "trivial": 0.0, "heavy": 0.0}
    for name, r in results.items():
        ours, trivial, loaded = r["ours"], r["trivial"], r.get("heavy")
        total["ours"] += ours["median_ms"]
        total["trivial"] += trivial["median_ms"]
        total["heavy"] += loaded["median_ms"] if loaded else 0.0
        rows.append(
            [
                f"`{name}`",
                f"{_cell(ours['median_ms'])} ({_cell(ours['min_ms'])}–{_cell(ours['max_ms'])})",
                f"{ours['load_ms']:.1f} + {ours['serialize_ms']:.1f}",
                _cell(trivial["median_ms"]),
                f"**{ours['median_ms'] / trivial['median_ms']:.2f}x**",
                _cell(loaded["median_ms"]) if loaded else "-",
                f"{loaded['median_ms'] / trivial['median_ms']:.1f}x" if loaded else "-",
            ]
        )
    rows.append(
        [
            f"**all {len(results)} files**",
            _cell(total["ours"]),
            "",
            _cell(total["trivial"]),
            f"**{total['ours'] / total['trivial']:.2f}x**",
            _cell(total["heavy"]) if heavy else "-",
            f"{total['heavy'] / total['trivial']:.1f}x" if heavy else "-",
        ]
    )
    columns = [
        "DAG file",
        "ours ms (min–max)",
        "load + serialize ms",
        "trivial DAG ms",
        "ratio (target <= 2x)",
        "with heavy imports ms",
        "ratio",
    ]
    heavy_said = f"`import {', '.join(heavy)}` at the top of a copy of the file" if heavy else "not measured"
    return "\n\n".join(
        [
            "Wall time of Airflow's DAG processor parsing one file in its forked child (`_parse_file`: stability "
            "check, `DagBag` load, serialization), after the parent's pre-import of the file's `airflow.*` imports; "
            f"median of {repeat} parses after a warm-up (min–max), taken in turns with parses of a trivial DAG (one "
            f"DAG, one task). Heavy imports: {heavy_said}.",
            common.table(columns, rows),
        ]
    )


def measure_all(files: list[Path], a: argparse.Namespace, work: Path, heavy: list[str]) -> dict[str, dict[str, Any]]:
    """Each DAG file in a parent of its own, with the trivial DAG (and the heavy copy); summaries by file name."""
    trivial = work / "trivial" / "trivial_dag.py"
    trivial.parent.mkdir()
    trivial.write_text(TRIVIAL_DAG)
    (work / "heavy").mkdir()
    results: dict[str, dict[str, Any]] = {}
    for path in files:
        spec: dict[str, Any] = {
            "file": str(path),
            "trivial": str(trivial),
            "repeat": a.repeat,
            "heavy_repeat": a.heavy_repeat,
            "out": str(work / f"{path.stem}.json"),
        }
        if heavy:
            copy = work / "heavy" / path.name
            copy.write_text(with_heavy_imports(path.read_text(), heavy))
            spec["heavy"] = str(copy)
        print(f"parsing {path.name} ...", flush=True)
        _run_self("worker", spec, work / "airflow.log")
        raw = json.loads(Path(spec["out"]).read_text())
        results[path.name] = {part: summary(samples) for part, samples in raw.items()}
        r = results[path.name]
        r["ratio"] = r["ours"]["median_ms"] / r["trivial"]["median_ms"]
        if r["ratio"] > TARGET:
            stderr = _run_self("explain", spec, work / "airflow.log", "-X", "importtime")
            r["slowest_imports"] = slowest_imports(stderr)
    return results


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("files", nargs="*", type=Path, help="DAG files to measure (default: every dags/*.py)")
    p.add_argument("--repeat", type=int, default=7, help="parses of each file and of the trivial DAG, after a warm-up")
    p.add_argument("--heavy-repeat", type=int, default=1, help="parses of each copy with heavy imports (seconds each)")
    p.add_argument("--no-heavy", action="store_true", help="leave out the copies with heavy imports")
    p.add_argument("--out", type=Path, default=common.RESULTS / "parse.json")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--explain", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.repeat < 1 or a.heavy_repeat < 1:
        p.error("--repeat and --heavy-repeat take 1 or more")
    if a.worker:
        return _worker(json.loads(a.worker))
    if a.explain:
        return _explain(json.loads(a.explain))

    from retrainer_dev import localenv

    localenv.apply()  # the DAG processor's environment (values already set win)
    files = [f.resolve() for f in a.files] or sorted(DAGS.glob("*.py"))
    heavy = [] if a.no_heavy else installed(HEAVY)
    work = Path(tempfile.mkdtemp(prefix="retrainer-parse-bench-"))
    t0 = time.perf_counter()
    try:
        results = measure_all(files, a, work, heavy)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    targets = [
        common.target(
            f"{name} parse vs a trivial DAG",
            round(r["ratio"], 2),
            TARGET,
            op="<=",
            bound=what_bounds(r["ours"], r["trivial"], r.get("slowest_imports", [])),
            detail=f"{r['ours']['median_ms']:.0f} ms against {r['trivial']['median_ms']:.0f} ms",
        )
        for name, r in results.items()
    ]
    data = {"repeat": a.repeat, "heavy_repeat": a.heavy_repeat, "heavy_imports": heavy, "files": results}
    common.write_part(
        "parse",
        "DAG parse time",
        markdown(results, heavy, a.repeat),
        targets=targets,
        data=data,
        seconds=time.perf_counter() - t0,
        out=a.out,
    )


if __name__ == "__main__":
    main()
