"""Benchmark: retrainer's data validation step against bare Great Expectations, same suite, same file.

Data: the hourly UCI bike sharing rows (``retrainer.data.demo_data.load_bike_sharing``, about 17k)
tiled to the size asked for, every value as delivered (so in the spec's ranges and categories),
the timestamps respaced evenly through the batch's month so that they are unique and inside it.
The spec is ``include/specs/bike_sharing.yaml`` copied into a temporary specs folder with two
limits widened to the benchmark's sizes: ``rows`` (600 to 744 rows a month in the product; the
minimum is lowered only for batches smaller than that) and ``ingest.max_file_mb`` (64 MB).
Every expectation the suite holds is kept.

1. Validation step vs bare GX, at ``--rows`` (1M) and the ``--growth`` fractions of it (1/16,
   1/4, 1), each side a whole fresh process, measured by ``bench/common.py``'s
   ``run_process`` (wall time and peak RSS), median of ``--repeat`` runs, ours and bare taking
   turns so that a change of machine load hits both:

   * ours: ``ingest.validate_batch`` on the landed CSV (what the ``ingest_batch`` DAG's task
     does): reading it as the spec's table with its delivery checks, its md5, the GX suite
     of ``validation.build_suite`` and the batch checks, the result written to disk;
   * bare GX: a Python that does not import retrainer: it imports ``great_expectations``,
     creates an ephemeral context, rebuilds the same suite from JSON (each expectation's
     class and arguments, as ``build_suite`` made them) with plain GX calls, reads the CSV
     with ``pandas.read_csv`` (categories as text, the time column parsed) and validates a
     pandas dataframe batch.

   Both must pass and run the same number of GX expectations.

2. ``validate_window`` (``retrain_model``'s re-validation of the pinned window, every period
   as read from the DVC data registry) over 1, 12 and 48 monthly periods of ``--rows`` / 48
   rows each, against one file holding the same rows (one month), validated two ways:
   ``validation.validate_file`` (what ingest does to a file: reading it with the delivery
   checks, the GX suite, the batch checks) and only what validate_window does to a period
   (reading the file, the GX suite: ``validation.validate_frame``). All in this process after
   one warm-up of each side (imports and first-use costs are counted on neither), median of
   ``--repeat`` runs, taking turns. validate_window keeps a passing period's GX result in GX's
   BASIC format (``validation.FrameValidator``), the file's is kept in SUMMARY, as ingest keeps
   it. Setting up the registry (48 data versions, one period each, through
   ``DataRegistry.add_batch`` with the canonical files ``version_batch`` writes) is not measured.

When a target is missed, what bounds it is measured in this process afterwards (where the time
of each side goes) and written as the target's ``bound``.

Run from the repository root in the embedded default's environment (``make bench`` does);
at the default sizes it takes about 7 minutes on 2 cores. All state lives in a temporary
folder (the embedded default of ``retrainer_dev.localenv`` applied to it) that is removed at
the end; the result is written to ``.local/bench/validation.json`` through ``bench/common.py``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shutil
import statistics
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "bench"), str(REPO / "include"), str(REPO / "plugins"), str(REPO / "tools")]

import common  # noqa: E402

if TYPE_CHECKING:
    from retrainer.records import TrainingPlan
    from retrainer.settings import Settings
    from retrainer.spec.dataset import DatasetSpec

DATASET = "bike_sharing"
PERIOD = "2011-03"  # 31 days: room for 2.6M rows one second apart
FIRST_MONTH = "2011-01"  # the window's periods are the months from here on
TARGET_VS_GX = 1.2  # the product's targets: our validation step within 1.2x of bare GX ...
TARGET_WINDOW = 2.0  # ... and validate_window within 2x of one file of the same rows
SMALL = 744  # rows of a month of hourly data: a batch whose validation costs GX little but its own overhead

# ---------------------------------------------------------------------------- the two processes

OURS = r"""
import json, sys
from retrainer.pipeline import ingest
from retrainer.settings import Settings

checked = ingest.validate_batch(Settings.from_env(), sys.argv[1], sys.argv[2], sys.argv[3])
kept = json.loads(open(checked.result_path).read())
print(json.dumps({"success": checked.success, "expectations": len(kept["gx_result"]["results"]),
                  "rows": checked.n_rows, "failures": checked.failures[:3]}))
"""

BARE = r"""
import json, sys
from datetime import datetime

import great_expectations as gx
import pandas as pd

context = gx.get_context(mode="ephemeral")
spec = json.loads(open(sys.argv[1]).read())
suite = gx.ExpectationSuite(name=spec["name"])
for exp in spec["expectations"]:
    kwargs = {k: datetime.fromisoformat(v["datetime"]) if isinstance(v, dict) and "datetime" in v else v
              for k, v in exp["kwargs"].items()}
    suite.add_expectation(getattr(gx.expectations, exp["class"])(**kwargs))
df = pd.read_csv(sys.argv[2], dtype=spec["text_columns"], parse_dates=[spec["time_column"]])
asset = context.data_sources.add_pandas("bare").add_dataframe_asset(name="batch")
batch = asset.add_batch_definition_whole_dataframe("batch").get_batch(batch_parameters={"dataframe": df})
result = batch.validate(suite)
failed = [r.expectation_config.type for r in result.results if not r.success]
print(json.dumps({"success": result.success, "expectations": len(result.results), "rows": len(df),
                  "failures": failed[:3]}))
"""


def suite_json(spec: DatasetSpec, period: str, dest: Path) -> Path:
    """``validation.build_suite``'s suite as JSON the bare process rebuilds with plain GX calls:
    each expectation's class and arguments (datetimes marked, as JSON has none)."""
    from retrainer.data import validation
    from retrainer.data.batchfile import text_columns

    suite = validation.build_suite(spec, period)

    def plain(v: Any) -> Any:
        return {"datetime": v.isoformat()} if isinstance(v, datetime) else v

    doc = {
        "name": suite.name,
        "time_column": spec.time_column,
        "text_columns": {c: "str" for c in text_columns(spec) if c != spec.time_column},
        "expectations": [
            {"class": type(e).__name__, "kwargs": {k: plain(v) for k, v in e.configuration.kwargs.items()}}
            for e in suite.expectations
        ],
    }
    dest.write_text(json.dumps(doc, indent=1))
    return dest


# ---------------------------------------------------------------------------- data


def spec_copy(specs: Path, min_rows: int, max_rows: int) -> Path:
    """The bike spec with its row limits and file size limit widened to the benchmark's sizes."""
    import yaml

    raw = yaml.safe_load((REPO / "include" / "specs" / f"{DATASET}.yaml").read_text())
    raw["rows"] = {"min": min(min_rows, raw["rows"]["min"]), "max": max_rows}
    raw["ingest"]["max_file_mb"] = 1 << 14
    specs.mkdir(parents=True, exist_ok=True)
    path = specs / f"{DATASET}.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def batch(real: pd.DataFrame, rows: int, period: str, spec: DatasetSpec) -> pd.DataFrame:
    """``rows`` real rows (tiled), their timestamps spread evenly over ``period``, whole seconds apart."""
    from retrainer import periods

    start, end = periods.bounds(period, spec.frequency)
    step = int((end - start).total_seconds()) // rows
    if step < 1:
        raise SystemExit(f"{rows} rows do not fit in {period} one second apart: ask for fewer rows")
    out = real.iloc[np.arange(rows) % len(real)].reset_index(drop=True)
    stamps = pd.Timestamp(start) + pd.to_timedelta(np.arange(rows, dtype="int64") * step, unit="s")
    out[spec.time_column] = stamps
    out["dteday"] = stamps.strftime("%Y-%m-%d")
    return out


def months(first: str, n: int) -> list[str]:
    start = pd.Period(first, freq="M")
    return [str(start + i) for i in range(n)]


# ---------------------------------------------------------------------------- 1. ours vs bare GX


def run_side(script: str, args: list[str], env: dict[str, str]) -> dict[str, Any]:
    """One fresh process of one side: wall time, peak RSS and what it said."""
    run = common.run_process([common.interpreter(), "-c", script, *args], env=env, cwd=REPO)
    said = json.loads(run["stdout"].strip().splitlines()[-1])
    return {"seconds": run["seconds"], "peak_mb": run["peak_mb"], **said}


def compare_sides(landed: Path, suite: Path, rows: int, repeat: int, env: dict[str, str]) -> dict[str, Any]:
    """Ours and bare GX on one landed file, taking turns; medians and both verdicts checked."""
    ours_args = [DATASET, str(landed), PERIOD]
    runs: dict[str, list[dict[str, Any]]] = {"ours": [], "bare": []}
    for _ in range(repeat):
        runs["ours"].append(run_side(OURS, ours_args, env))
        runs["bare"].append(run_side(BARE, [str(suite), str(landed)], env))
    for side, done in runs.items():
        for r in done:
            if not r["success"] or r["rows"] != rows:
                raise RuntimeError(f"{side} at {rows} rows: success {r['success']}, {r['rows']} rows: {r['failures']}")
    counts = {side: {r["expectations"] for r in done} for side, done in runs.items()}
    if counts["ours"] != counts["bare"] or len(counts["ours"]) != 1:
        raise RuntimeError(f"the two sides ran different numbers of expectations: {counts}")

    def median(side: str, key: str) -> float:
        return statistics.median(r[key] for r in runs[side])

    out = {"rows": rows, "expectations": counts["ours"].pop(), "mb": landed.stat().st_size / 2**20}
    for side in runs:
        out[side] = {
            "seconds": median(side, "seconds"),
            "peak_mb": median(side, "peak_mb"),
            "all_seconds": [r["seconds"] for r in runs[side]],
        }
    out["ratio"] = out["ours"]["seconds"] / out["bare"]["seconds"]
    print(
        f"{rows:>9,} rows: ours {out['ours']['seconds']:.2f} s {out['ours']['peak_mb']:.0f} MB, bare GX "
        f"{out['bare']['seconds']:.2f} s {out['bare']['peak_mb']:.0f} MB: {out['ratio']:.2f}x",
        flush=True,
    )
    return out


def steps_vs_gx(
    settings: Settings, spec: DatasetSpec, real: pd.DataFrame, sizes: list[int], repeat: int
) -> tuple[list[dict[str, Any]], dict[str, str], dict[str, Any]]:
    """Part 1 at every size (a landed file each, then the two sides on it); at the largest, when
    ours misses its target, where the time goes."""
    from retrainer.data.demo_data import write_batch

    suite = suite_json(spec, PERIOD, Path(settings.home) / "suite.json")
    env = common.python_env()
    found: list[dict[str, Any]] = []
    bounds: dict[str, str] = {}
    costs: dict[str, Any] = {}
    for rows in sizes:
        landed = Path(settings.landing) / DATASET / f"{PERIOD}.{rows}.csv"
        write_batch(batch(real, rows, PERIOD, spec), spec, landed)
        found.append(compare_sides(landed, suite, rows, repeat, env))
        if rows == max(sizes) and found[-1]["ratio"] > TARGET_VS_GX:
            costs["step"] = step_costs(landed, spec)
            bounds["step"] = step_bound(rows, costs["step"])
        landed.unlink()
    return found, bounds, costs


def step_costs(landed: Path, spec: DatasetSpec) -> dict[str, float]:
    """Where the time of the two sides goes at one size, measured once in this process: what
    bounds the validation step when it misses its target."""
    from retrainer.data import batchchecks, validation
    from retrainer.data.batchfile import read_delivery, text_columns

    costs: dict[str, float] = {}

    def clock(name: str, fn: Callable[[], Any]) -> Any:
        t0 = time.perf_counter()
        out = fn()
        costs[name] = time.perf_counter() - t0
        return out

    df = clock("read", lambda: read_delivery(landed, spec).frame)
    clock("md5", lambda: validation.file_md5(landed))
    clock("suite", lambda: validation.validate_frame(df, spec, PERIOD, str(landed)))
    clock("leak check", lambda: batchchecks.leak_problems(df, spec))
    clock(
        "other batch checks",
        lambda: (
            batchchecks.column_problems(df, spec)
            + batchchecks.reference_problems(df, spec, PERIOD, batchchecks.Reference())
        ),
    )
    text = {c: "str" for c in text_columns(spec) if c != spec.time_column}
    bare = clock("bare read", lambda: pd.read_csv(landed, dtype=text, parse_dates=[spec.time_column]))
    asset = validation._context().data_sources.add_pandas("bare").add_dataframe_asset(name="batch")
    whole = asset.add_batch_definition_whole_dataframe("batch")
    suite = validation.build_suite(spec, PERIOD)
    clock("bare suite", lambda: whole.get_batch(batch_parameters={"dataframe": bare}).validate(suite))
    return costs


def step_bound(rows: int, c: dict[str, float]) -> str:
    checks = c["leak check"] + c["other batch checks"]
    return (
        f"at {rows:,} rows, measured in process: ours reads the file with its delivery checks in {c['read']:.1f} s "
        f"(pandas.read_csv alone: {c['bare read']:.1f} s), hashes it in {c['md5']:.1f} s, runs the GX suite in "
        f"{c['suite']:.1f} s (bare GX: {c['bare suite']:.1f} s) and the batch checks in {checks:.1f} s, "
        f"{c['leak check']:.1f} s of them the target-leak check (retrainer.data.batchchecks.leak_problems, which turns "
        "every feature and the target into text)"
    )


# ---------------------------------------------------------------------------- 2. validate_window


def version_months(settings: Settings, spec: DatasetSpec, real: pd.DataFrame, per_period: int, n: int) -> None:
    """``n`` months of ``per_period`` rows into the data registry, one data version each, as
    ``version_batch`` adds an accepted batch (its canonical file)."""
    from retrainer.data.batchfile import canonical_frame, write_frame
    from retrainer.data.demo_data import write_batch
    from retrainer.data.validation import file_md5
    from retrainer.data.versioning import DataRegistry

    registry = DataRegistry(settings)
    scratch = Path(settings.home) / "scratch"
    t0 = time.perf_counter()
    for period in months(FIRST_MONTH, n):
        landed = write_batch(batch(real, per_period, period, spec), spec, scratch / f"{period}.landed.csv")
        canonical = write_frame(canonical_frame(landed, spec, spec.ingest.other_columns), scratch / f"{period}.csv")
        with contextlib.redirect_stdout(io.StringIO()):  # DVC's greeting on the first one
            registry.add_batch(spec, period, canonical, file_md5(canonical))
    shutil.rmtree(scratch)
    print(f"versioned {n} months of {per_period:,} rows in {time.perf_counter() - t0:.0f} s (not measured)", flush=True)


def plan_of(settings: Settings, spec: DatasetSpec, n: int) -> TrainingPlan:
    """The training plan of the last ``n`` periods of the latest data version (the last one
    held out, as ``plan_training`` does; with one period, it alone)."""
    from retrainer.data.versioning import DataRegistry
    from retrainer.records import TrainingPlan

    version = DataRegistry(settings).latest(spec.name)
    chosen = list(version.periods[-n:])
    train, holdout = (chosen[:-1], chosen[-1:]) if n > 1 else (chosen, [])
    return TrainingPlan(
        dataset=spec.name,
        model_name=spec.model_name,
        data_version=version.label,
        data_tag=version.tag,
        data_rev=version.rev,
        train_periods=train,
        holdout_periods=holdout,
        window=len(train),
    )


def window_sides(settings: Settings, spec: DatasetSpec, plan: TrainingPlan, one: Path) -> dict[str, Callable[[], None]]:
    """validate_window on the plan; validate_file on one file of the same rows; and, on that
    file, only what validate_window does to a period (read it, run the GX suite)."""
    from retrainer.data.batchfile import read_delivery
    from retrainer.data.validation import validate_file, validate_frame
    from retrainer.pipeline import train

    def passed(what: str, ok: bool) -> None:
        if not ok:
            raise RuntimeError(f"{what} failed validation: the benchmark's data should pass")

    def window() -> None:
        passed(
            f"the window of {len(plan.train_periods) + len(plan.holdout_periods)} periods",
            train.validate_window(settings, plan).success,
        )

    def file() -> None:
        passed(str(one), validate_file(one, spec, PERIOD).success)

    def suite() -> None:
        frame = read_delivery(one, spec).frame
        passed(str(one), frame is not None and validate_frame(frame, spec, PERIOD, str(one)).success)

    return {"window": window, "file": file, "suite": suite}


def taking_turns(sides: dict[str, Callable[[], None]], repeat: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {side: [] for side in sides}
    for _ in range(repeat):
        for side, fn in sides.items():
            t0 = time.perf_counter()
            fn()
            times[side].append(time.perf_counter() - t0)
    return times


def window_vs_file(
    settings: Settings, spec: DatasetSpec, real: pd.DataFrame, per_period: int, counts: list[int], repeat: int
) -> list[dict[str, Any]]:
    """Part 2: validate_window over each of ``counts`` periods against one file of the same rows."""
    from retrainer.data.demo_data import write_batch

    version_months(settings, spec, real, per_period, max(counts))
    found: list[dict[str, Any]] = []
    for n in counts:
        rows = n * per_period
        one = write_batch(batch(real, rows, PERIOD, spec), spec, Path(settings.home) / "one" / f"{PERIOD}.csv")
        sides = window_sides(settings, spec, plan_of(settings, spec, n), one)
        if not found:  # one warm-up of each side: imports and first-use costs are counted on neither
            for fn in sides.values():
                fn()
        times = taking_turns(sides, repeat)
        row: dict[str, Any] = {"periods": n, "rows": rows, **{s: statistics.median(t) for s, t in times.items()}}
        row.update(ratio=row["window"] / row["file"], ratio_suite=row["window"] / row["suite"], all_seconds=times)
        print(
            f"{n:>3} periods, {rows:>9,} rows: validate_window {row['window']:.2f} s, one file {row['file']:.2f} s "
            f"({row['ratio']:.2f}x), its suite alone {row['suite']:.2f} s ({row['ratio_suite']:.2f}x)",
            flush=True,
        )
        found.append(row)
    return found


def window_costs(settings: Settings, spec: DatasetSpec, n: int) -> dict[str, float]:
    """What a period of the window costs, as validate_window spends it, measured in this process:
    reading it from the registry (the whole window through one view of it, per period), making
    its frame, validating it, and how much of that GX spends whatever the batch's size (the suite
    on a month of hourly rows), on a few periods (the best of them): what bounds validate_window
    when it misses its target."""
    from retrainer.data.validation import FrameValidator
    from retrainer.data.versioning import DataRegistry, periods_frame

    plan = plan_of(settings, spec, n)
    registry = DataRegistry(settings)
    version = registry.pinned(spec.name, plan.data_tag, plan.data_rev)
    window = [*plan.train_periods, *plan.holdout_periods]
    t0 = time.perf_counter()
    texts = registry.read_texts(spec, version, window)
    read = (time.perf_counter() - t0) / len(window)
    validator = FrameValidator(spec, brief=True)
    costs: dict[str, list[float]] = {"frame": [], "validate": [], "fixed": []}
    for period in plan.train_periods[:7]:
        t0 = time.perf_counter()
        df = periods_frame(spec, [texts[period]])
        t1 = time.perf_counter()
        validator.validate(df, period, period)
        t2 = time.perf_counter()
        small = df.iloc[:SMALL].copy()
        t3 = time.perf_counter()
        validator.validate(small, period, period)
        costs["frame"].append(t1 - t0)
        costs["validate"].append(t2 - t1)
        costs["fixed"].append(time.perf_counter() - t3)
    return {"read": read, **{k: min(v) for k, v in costs.items()}}  # the best of a few: machine load only adds


def window_bound(row: dict[str, Any], c: dict[str, float]) -> str:
    n, per = row["periods"], row["rows"] // row["periods"]
    return (
        f"costs paid once per period, which the one file pays once: a period of {per:,} rows takes "
        f"{c['read']:.3f} s to read from the registry (one view of it for the whole window), {c['frame']:.3f} s to "
        f"parse and {c['validate']:.2f} s to validate, {c['fixed']:.2f} s of which GX spends on any batch whatever "
        f"its size (the suite on {SMALL} rows); {n} periods x {c['fixed']:.2f} s = {n * c['fixed']:.1f} s "
        f"of the window's {row['window']:.1f} s"
    )


# ---------------------------------------------------------------------------- report


STEP_COLUMNS = [
    "rows",
    "file MB",
    "GX expectations",
    "ours s",
    "bare GX s",
    "ours / bare",
    "ours peak MB",
    "bare peak MB",
]
WINDOW_COLUMNS = [
    "periods",
    "rows",
    "validate_window s",
    "one file s",
    "window / file",
    "suite alone s",
    "window / suite alone",
]


def step_table(steps: list[dict[str, Any]], repeat: int) -> str:
    rows = [
        [
            f"{s['rows']:,}",
            f"{s['mb']:.0f}",
            s["expectations"],
            f"{s['ours']['seconds']:.2f}",
            f"{s['bare']['seconds']:.2f}",
            f"{s['ratio']:.2f}x",
            f"{s['ours']['peak_mb']:.0f}",
            f"{s['bare']['peak_mb']:.0f}",
        ]
        for s in steps
    ]
    return (
        f"The bike sharing spec (row and file size limits widened) on one month ({PERIOD}) of tiled real rows. "
        f"Each side a fresh process, imports and GX context included; median of {repeat} runs, taking turns. "
        "Ours: `ingest.validate_batch` (the file read with the delivery checks, its md5, the GX suite, the "
        "batch checks, the result written). Bare GX: an ephemeral context, the same suite rebuilt from JSON "
        "with plain GX calls, `pandas.read_csv`, a dataframe batch. Both passed, running the same expectations."
        "\n\n" + common.table(STEP_COLUMNS, rows)
    )


def window_table(windows: list[dict[str, Any]], repeat: int, per_period: int) -> str:
    rows = [
        [
            w["periods"],
            f"{w['rows']:,}",
            f"{w['window']:.2f}",
            f"{w['file']:.2f}",
            f"{w['ratio']:.2f}x",
            f"{w['suite']:.2f}",
            f"{w['ratio_suite']:.2f}x",
        ]
        for w in windows
    ]
    return (
        f"`validate_window` over monthly periods of {per_period:,} rows read from the DVC data registry, against "
        "one file of the same rows: `validation.validate_file` (what ingest does to a file: the GX suite and the "
        "batch checks) and, as validate_window does to each period, the file read and the suite run on it "
        f"(suite alone). In this process after a warm-up; median of {repeat} runs, taking turns. A passing period "
        "of the window is kept in GX's BASIC result format, the file in SUMMARY."
        "\n\n" + common.table(WINDOW_COLUMNS, rows)
    )


def targets(steps: list[dict[str, Any]], windows: list[dict[str, Any]], bounds: dict[str, str]) -> list[Any]:
    full = max(steps, key=lambda s: s["rows"])
    found = [
        common.target(
            f"validation step vs bare GX, {full['rows']:,} rows",
            round(full["ratio"], 2),
            TARGET_VS_GX,
            op="<=",
            bound=bounds.get("step", ""),
            detail=f"{full['ours']['seconds']:.2f} s vs {full['bare']['seconds']:.2f} s",
        )
    ]
    for w in windows:
        if w["periods"] > 1:
            found.append(
                common.target(
                    f"validate_window, {w['periods']} periods vs one file of the same rows",
                    round(w["ratio"], 2),
                    TARGET_WINDOW,
                    op="<=",
                    bound=bounds.get(f"window {w['periods']}", ""),
                    detail=f"{w['window']:.2f} s vs {w['file']:.2f} s ({w['rows']:,} rows); the file's suite "
                    f"alone {w['suite']:.2f} s ({w['ratio_suite']:.2f}x)",
                )
            )
    return found


def report(result: dict[str, Any], args: argparse.Namespace, seconds: float) -> None:
    """The tables, the targets and the scaling series, through ``common.write_part``."""
    steps, windows = result["steps"], result["windows"]
    scaling = [
        common.series(
            name, [s["rows"] for s in steps], [s[side]["seconds"] for s in steps], [s[side]["peak_mb"] for s in steps]
        )
        for name, side in (("validation step (ours)", "ours"), ("bare GX", "bare"))
    ]
    common.write_part(
        "validation",
        "Data validation (Great Expectations)",
        step_table(steps, args.repeat) + "\n\n" + window_table(windows, args.repeat, result["per_period"]),
        targets=targets(steps, windows, result["bounds"]),
        scaling=scaling,
        data={**result, "args": {k: str(v) for k, v in vars(args).items()}, "period": PERIOD},
        seconds=seconds,
        out=args.out,
    )


# ---------------------------------------------------------------------------- main


def ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def run(args: argparse.Namespace, home: Path) -> dict[str, Any]:
    """Both parts, in the temporary home; what bounds a missed target is measured after them."""
    from retrainer.data.demo_data import load_bike_sharing
    from retrainer.settings import Settings
    from retrainer.spec.dataset import DatasetSpec

    counts, growth = ints(args.periods), ints(args.growth)
    sizes = sorted({args.rows * g // max(growth) for g in growth})
    per_period = args.rows // max(counts)
    spec_copy(home / "specs", min(per_period, *sizes), max(args.rows, per_period * max(counts)))
    os.environ["RETRAINER_SPECS_DIR"] = str(home / "specs")
    settings = Settings.from_env()
    spec = DatasetSpec.load(settings.spec_path(DATASET))
    real = load_bike_sharing()
    steps, bounds, costs = steps_vs_gx(settings, spec, real, sizes, args.repeat)
    windows = window_vs_file(settings, spec, real, per_period, counts, args.repeat)
    missed = [w for w in windows if w["periods"] > 1 and w["ratio"] > TARGET_WINDOW]
    if missed:
        costs["window"] = window_costs(settings, spec, max(counts))
        bounds.update({f"window {w['periods']}": window_bound(w, costs["window"]) for w in missed})
    return {"steps": steps, "windows": windows, "per_period": per_period, "bounds": bounds, "costs": costs}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--rows", type=int, default=1_000_000, help="rows of the largest file and of the largest window")
    p.add_argument("--repeat", type=int, default=3, help="runs of each side; the median is reported")
    p.add_argument("--periods", default="1,12,48", help="window sizes of validate_window, in periods")
    p.add_argument("--growth", default="1,4,16", help="file sizes, relative: 1,4,16 = rows/16, rows/4, rows")
    p.add_argument("--out", type=Path, default=common.RESULTS / "validation.json", help="the result file")
    p.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = p.parse_args()

    t0 = time.perf_counter()
    with common.scratch_home("retrainer-validation-bench-", args.keep) as home:
        result = run(args, home)
    report(result, args, time.perf_counter() - t0)


if __name__ == "__main__":
    main()
