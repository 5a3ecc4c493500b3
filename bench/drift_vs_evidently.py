"""Benchmark: retrainer's drift check against Evidently's DataDriftPreset, side by side.

Both run in the same process on the same data frames, with the same tests and thresholds
(Evidently's defaults, which ours follow: normalized Wasserstein for numeric and
Jensen-Shannon for categorical columns above 1,000 reference rows). Reported per case:
wall time (median of --repeat runs after a warm-up; one run on the large cases), peak
memory allocated during the call (tracemalloc, which numpy and pandas report to: the main
memory figure), the growth of the process's peak resident set during a timed run (RSS,
Linux; allocator caches make it a rougher figure), the ratios and per-column verdict
agreement.

Cases: synthetic 100,000 + 100,000 rows x 50 columns; UCI bike sharing 2011 vs 2012;
1,000,000 + 1,000,000 rows x 100 columns (70 numeric of seven kinds, 30 categorical of
3 to 1,000 values with zipf-like frequencies, a quarter of the columns drifted, others
shifted by a small amount under the threshold or not at all); a no-drift pair of the
same size (current drawn from the reference's distributions with another seed: every
flagged column is a false alarm); and how time and peak memory of both grow with the
rows (1x, 4x, 16x of the first case). --big-rows and --big-columns run the large cases
smaller, to try the script quickly (below about 100,000 rows the sampling noise of the
1,000-value columns reaches the 0.1 threshold, and false alarms are expected).

Run with `make bench` (it builds .venv-bench from requirements-bench.txt: Evidently
0.7 needs pandas < 3, so the benchmark has its own environment). Writes
.local/bench/drift.json through bench/common.py.
"""

from __future__ import annotations

import argparse
import gc
import math
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "bench"), str(REPO / "include")]

import common  # noqa: E402

from retrainer.model import drift  # noqa: E402

Data = tuple[pd.DataFrame, pd.DataFrame, list[str], list[str]]
Verdicts = dict[str, tuple[bool, float]]  # column -> (drifted, score)

NUMERIC_KINDS = ("normal", "normal_scale", "lognormal", "counts", "exponential", "rating", "normal_missing")
CARDINALITIES = (3, 12, 105, 400, 1000)  # categorical columns cycle through these
DRIFT_EFFECTS = (0.2, 0.3, 0.45)  # effect sizes of drifted columns (threshold 0.1)
SMALL_EFFECT = 0.03  # a shift well under the threshold: must not be flagged
HIGH_CARDINALITY = 100


def synthetic(rows: int, seed: int = 0) -> Data:
    """40 numeric and 10 categorical columns; a quarter of each kind shifted in current."""
    rng = np.random.default_rng(seed)
    numeric = [f"n{i}" for i in range(40)]
    categorical = [f"c{i}" for i in range(10)]
    cats = np.array([f"v{j}" for j in range(8)])
    p_ref = np.full(8, 1 / 8)
    p_cur = np.array([0.2, 0.2, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1])

    def frame(shifted: bool) -> pd.DataFrame:
        data: dict[str, Any] = {}
        for i, c in enumerate(numeric):
            moved = shifted and i % 4 == 0
            data[c] = rng.normal(0.15 * (i % 3) if moved else 0.0, 1.0 + (0.2 if moved and i % 8 == 0 else 0.0), rows)
        for i, c in enumerate(categorical):
            data[c] = cats[rng.choice(8, rows, p=p_cur if shifted and i % 4 == 0 else p_ref)]
        return pd.DataFrame(data)

    return frame(False), frame(True), numeric, categorical


def bike() -> Data:
    """UCI Bike Sharing: 2011 as reference, 2012 as current."""
    from retrainer.data.demo_data import load_bike_sharing
    from retrainer.spec.dataset import DatasetSpec

    spec = DatasetSpec.load(REPO / "include" / "specs" / "bike_sharing.yaml")
    df = load_bike_sharing()
    year = pd.to_datetime(df["timestamp"]).dt.year
    cols = list(spec.feature_names)
    numeric = [f.name for f in spec.numeric_features]
    categorical = [f.name for f in spec.categorical_features]
    ref = df[year == 2011][cols].reset_index(drop=True)
    cur = df[year == 2012][cols].reset_index(drop=True)
    return ref, cur, numeric, categorical


# ----------------------------------------------------------------------------- the large case


def design(columns: int) -> list[dict[str, Any]]:
    """The large case's columns: 70% numeric (seven kinds in turn), 30% categorical (3 to
    1,000 values in turn). Of every four columns of a kind one drifts (effect 0.2, 0.3 or
    0.45), one moves by 0.03 (under the 0.1 threshold) and two stay as they are. The effect
    is the normalized Wasserstein distance of numeric columns and the Jensen-Shannon
    distance of categorical ones (and of the few-valued numeric "rating")."""
    n_numeric = round(columns * 0.7)
    out = []
    for j in range(columns):
        i = j if j < n_numeric else j - n_numeric
        effect = DRIFT_EFFECTS[(i // 4) % 3] if i % 4 == 0 else SMALL_EFFECT if i % 4 == 2 else 0.0
        if j < n_numeric:
            kind = NUMERIC_KINDS[i % len(NUMERIC_KINDS)]
            out.append({"name": f"n{i}_{kind}", "kind": kind, "numeric": True, "effect": effect})
        else:
            k = CARDINALITIES[i % len(CARDINALITIES)]
            out.append({"name": f"c{i}_{k}", "kind": "categorical", "values": k, "numeric": False, "effect": effect})
    return out


def _zipf(k: int) -> np.ndarray:
    w = 1.0 / np.arange(1, k + 1) ** 1.1
    return np.asarray(w / w.sum())


def _moved_shares(p: np.ndarray, effect: float) -> np.ndarray:
    """p mixed with its reverse, as far as gives a Jensen-Shannon distance of ``effect``
    (all the way where even that is less)."""
    from scipy.spatial import distance

    lo, hi = 0.0, 1.0
    if effect <= 0 or distance.jensenshannon(p, p[::-1]) <= effect:
        return p if effect <= 0 else p[::-1].copy()
    for _ in range(50):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if distance.jensenshannon(p, (1 - mid) * p + mid * p[::-1]) < effect else (lo, mid)
    return (1 - hi) * p + hi * p[::-1]


def _numeric_column(kind: str, e: float, rows: int, rng: np.random.Generator) -> np.ndarray:
    """One numeric column of ``kind``, moved so its normalized Wasserstein distance to the
    unmoved one is ``e``."""
    if kind == "normal":
        return rng.normal(e, 1.0, rows)
    if kind == "normal_scale":  # W of a scale change: (s - 1) E|Z|
        return rng.normal(0.0, 1.0 + e / math.sqrt(2 / math.pi), rows)
    if kind == "lognormal":  # a scale change a: W = (a - 1) E[X], std = E[X] sqrt(e^s^2 - 1)
        return rng.lognormal(0.0, 0.5, rows) * (1 + e * math.sqrt(math.exp(0.25) - 1))
    if kind == "counts":
        return rng.poisson(20 + e * math.sqrt(20), rows)
    if kind == "exponential":
        return rng.exponential(1.0 + e, rows)
    if kind == "rating":  # four values: tested as categorical by both
        return rng.choice(np.arange(1, 5), rows, p=_moved_shares(_zipf(4), e))
    values = rng.normal(2 * e, 2.0, rows)  # normal_missing: 3% missing on both sides
    values[rng.random(rows) < 0.03] = np.nan
    return values


def big_frame(columns: list[dict[str, Any]], rows: int, seed: int, moved: bool) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    data: dict[str, Any] = {}
    for col in columns:
        e = col["effect"] if moved else 0.0
        if col["numeric"]:
            data[col["name"]] = _numeric_column(col["kind"], e, rows, rng)
        else:
            k = col["values"]
            labels = np.array([f"{col['name']}_v{i}" for i in range(k)], dtype=object)
            data[col["name"]] = labels[rng.choice(k, rows, p=_moved_shares(_zipf(k), e))]
    return pd.DataFrame(data)


def big_case(rows: int, columns: list[dict[str, Any]], seed: int, reference: pd.DataFrame, moved: bool) -> Data:
    numeric = [c["name"] for c in columns if c["numeric"]]
    categorical = [c["name"] for c in columns if not c["numeric"]]
    return reference, big_frame(columns, rows, seed, moved), numeric, categorical


# ----------------------------------------------------------------------------- the two checks


def ours(ref: pd.DataFrame, cur: pd.DataFrame, numeric: list[str], categorical: list[str]) -> Verdicts:
    result = drift.detect(ref, cur, numeric, categorical)
    return {f.feature: (f.drifted, f.score) for f in result.features}


def evidently(ref: pd.DataFrame, cur: pd.DataFrame, numeric: list[str], categorical: list[str]) -> Verdicts:
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    definition = DataDefinition(numerical_columns=numeric, categorical_columns=categorical)
    snapshot = Report([DataDriftPreset()]).run(
        Dataset.from_pandas(cur, data_definition=definition), Dataset.from_pandas(ref, data_definition=definition)
    )
    verdicts = {}
    for metric in snapshot.dict()["metrics"]:
        cfg = metric["config"]
        if not cfg.get("type", "").endswith("ValueDrift"):
            continue
        value, threshold = float(metric["value"]), float(cfg["threshold"])
        is_p_value = "p_value" in cfg["method"]
        verdicts[cfg["column"]] = (value < threshold if is_p_value else value >= threshold, value)
    return verdicts


# ----------------------------------------------------------------------------- measuring


def _status_mb(field: str) -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return math.nan


def _reset_peak_rss() -> float:
    """Reset this process's peak resident set to its current one (Linux); the current RSS in MB."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return math.nan
    return _status_mb("VmRSS")


def measure(
    fn: Callable[..., Verdicts], data: Data, repeat: int, *, memory: bool = True, warm: Data | None = None
) -> dict[str, Any]:
    """Median wall time of ``repeat`` runs, their largest RSS growth, and the tracemalloc peak
    of one more run. The warm-up (imports, first-call costs) runs on ``warm``, a small slice,
    where given, else on the data itself."""
    verdicts = fn(*(warm or data))
    times, rss = [], []
    for _ in range(repeat):
        gc.collect()
        base = _reset_peak_rss()
        t0 = time.perf_counter()
        out = fn(*data)
        times.append(time.perf_counter() - t0)
        rss.append(_status_mb("VmHWM") - base)  # NaN where /proc is not there
        verdicts = out
    peak = None
    if memory:
        gc.collect()
        tracemalloc.start()
        fn(*data)
        peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
    return {
        "seconds": statistics.median(times),
        "times": times,
        "peak_mb": peak,
        "rss_mb": None if math.isnan(max(rss)) else max(rss),
        "verdicts": verdicts,
    }


def compare(name: str, data: Data, repeat: int, warm: Data | None = None, memory: bool = True) -> dict[str, Any]:
    ref, cur = data[0], data[1]
    print(f"{name}: reference {len(ref):,} x {ref.shape[1]}, current {len(cur):,} rows ...", flush=True)
    a = measure(ours, data, repeat, warm=warm, memory=memory)
    print(f"  ours {a['seconds']:.2f} s", flush=True)
    b = measure(evidently, data, repeat, warm=warm, memory=memory)
    print(f"  Evidently {b['seconds']:.2f} s", flush=True)
    va, vb = a["verdicts"], b["verdicts"]
    differ = {c: {"ours": va[c], "evidently": vb.get(c)} for c in va if va[c][0] != (vb.get(c) or (None,))[0]}
    return {
        "data": name,
        "ours_s": a["seconds"],
        "evidently_s": b["seconds"],
        "speedup": b["seconds"] / a["seconds"],
        "ours_peak_mb": a["peak_mb"],
        "evidently_peak_mb": b["peak_mb"],
        "memory_ratio": a["peak_mb"] / b["peak_mb"] if memory else None,
        "ours_rss_mb": a["rss_mb"],
        "evidently_rss_mb": b["rss_mb"],
        "agreement": (len(va) - len(differ)) / len(va),
        "columns": len(va),
        "drifted_ours": sorted(c for c, v in va.items() if v[0]),
        "drifted_evidently": sorted(c for c, v in vb.items() if v[0]),
        "differ": differ,
    }


def head(data: Data, rows: int) -> Data:
    """The first rows of both samples: a warm-up that costs little."""
    return data[0].iloc[:rows], data[1].iloc[:rows], data[2], data[3]


def by_kind(data: Data, columns: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Our time on the large case by kind of column (one run each): where the time goes."""
    groups = {
        "numeric": [c["name"] for c in columns if c["numeric"]],
        f"categorical, < {HIGH_CARDINALITY} values": [
            c["name"] for c in columns if not c["numeric"] and c["values"] < HIGH_CARDINALITY
        ],
        f"categorical, {HIGH_CARDINALITY} to 1,000 values": [
            c["name"] for c in columns if not c["numeric"] and c["values"] >= HIGH_CARDINALITY
        ],
    }
    out = []
    for kind, names in groups.items():
        if not names:
            continue
        numeric = [n for n in names if n in data[2]]
        categorical = [n for n in names if n in data[3]]
        gc.collect()
        t0 = time.perf_counter()
        ours(data[0], data[1], numeric, categorical)
        took = time.perf_counter() - t0
        out.append({"kind": kind, "columns": len(names), "seconds": took, "ms_per_column": 1000 * took / len(names)})
    return out


def growth(base_rows: int, factors: list[int], evidently_factors: list[int]) -> list[dict[str, Any]]:
    """Time (one run) and tracemalloc peak of both at base_rows x each factor, 50 columns."""
    out = []
    for f in factors:
        data = synthetic(base_rows * f, seed=f)
        row: dict[str, Any] = {"rows": base_rows * f, "factor": f}
        for side, fn in (("ours", ours), ("evidently", evidently)):
            if side == "evidently" and f not in evidently_factors:
                continue
            m = measure(fn, data, 1, warm=head(data, 2000))
            row |= {f"{side}_s": m["seconds"], f"{side}_peak_mb": m["peak_mb"], f"{side}_rss_mb": m["rss_mb"]}
            print(f"  {side} at {base_rows * f:,} rows: {m['seconds']:.2f} s, peak {m['peak_mb']:.0f} MB", flush=True)
        out.append(row)
        del data
    return out


def false_alarms(result: dict[str, Any]) -> tuple[int, int]:
    return len(result["drifted_ours"]), len(result["drifted_evidently"])


# ----------------------------------------------------------------------------- report


def _mb(x: float | None) -> str:
    return "-" if x is None or math.isnan(x) else f"{x:,.0f}"


def comparison_table(results: list[dict[str, Any]]) -> str:
    rows = [
        [
            r["data"],
            f"{r['ours_s']:.3f}",
            f"{r['evidently_s']:.3f}",
            f"{r['speedup']:.1f}x",
            _mb(r["ours_peak_mb"]),
            _mb(r["evidently_peak_mb"]),
            f"{r['memory_ratio']:.3f}x",
            _mb(r["ours_rss_mb"]),
            _mb(r["evidently_rss_mb"]),
            f"{r['agreement']:.0%} of {r['columns']}",
            f"{len(r['drifted_ours'])} / {len(r['drifted_evidently'])}",
        ]
        for r in results
    ]
    cols = [
        "data",
        "ours (s)",
        "Evidently (s)",
        "speed-up",
        "ours peak (MB)",
        "Evidently peak (MB)",
        "memory ratio",
        "ours RSS growth (MB)",
        "Evidently RSS growth (MB)",
        "verdict agreement",
        "drifted (ours / Evidently)",
    ]
    return common.table(cols, rows)


def growth_table(rows: list[dict[str, Any]]) -> str:
    first = rows[0]
    out = []
    for g in rows:
        ev = "evidently_s" in g
        out.append(
            [
                f"{g['rows']:,} ({g['factor']}x)",
                f"{g['ours_s']:.2f}",
                f"{g['ours_s'] / first['ours_s']:.1f}x",
                _mb(g["ours_peak_mb"]),
                f"{g['evidently_s']:.2f}" if ev else "not run",
                f"{g['evidently_s'] / first['evidently_s']:.1f}x" if ev and "evidently_s" in first else "-",
                _mb(g["evidently_peak_mb"]) if ev else "-",
                f"{g['evidently_s'] / g['ours_s']:.1f}x" if ev else "-",
            ]
        )
    cols = [
        "rows (reference = current)",
        "ours (s)",
        "ours time vs 1x",
        "ours peak (MB)",
        "Evidently (s)",
        "Evidently time vs 1x",
        "Evidently peak (MB)",
        "speed-up",
    ]
    return common.table(cols, out)


def markdown(res: dict[str, Any]) -> str:
    big, quiet = res["comparisons"][-1], res["no_drift"]
    fa_ours, fa_ev = false_alarms(quiet)
    kinds = common.table(
        ["columns", "how many", "ours (s)", "ours per column (ms)"],
        [[k["kind"], k["columns"], f"{k['seconds']:.2f}", f"{k['ms_per_column']:.0f}"] for k in res["by_kind"]],
    )
    designed = sum(1 for c in res["design"] if c["effect"] > 0.1)
    return "\n\n".join(
        [
            "Same process, same data frames, Evidently's default tests and thresholds on both sides. Time: median of "
            f"{res['repeat']} run(s) after a warm-up (one run on the large cases); peak: tracemalloc, the main memory "
            "figure; RSS growth: the process's peak resident set during a timed run over the one before it (allocator "
            "caches make it rougher).",
            comparison_table(res["comparisons"]),
            f"Large case: {designed} of {len(res['design'])} columns drifted by design (effect 0.2 to 0.45 against "
            f"the 0.1 threshold), {sum(1 for c in res['design'] if 0 < c['effect'] <= 0.1)} moved by "
            f"{SMALL_EFFECT} (under it); flagged: {len(big['drifted_ours'])} by ours, "
            f"{len(big['drifted_evidently'])} by Evidently ({as_designed(big, res['design'])}). "
            "Ours on it by kind of column:",
            kinds,
            f"No-drift pair ({quiet['data']}): false alarms: ours {fa_ours}, Evidently {fa_ev} of {quiet['columns']} "
            f"columns; ours {quiet['ours_s']:.2f} s, Evidently {quiet['evidently_s']:.2f} s ({quiet['speedup']:.0f}x).",
            "Growth with the rows (synthetic, 50 columns, one run each):",
            growth_table(res["growth"]),
        ]
    )


def as_designed(result: dict[str, Any], columns: list[dict[str, Any]]) -> str:
    """Whether each side flagged exactly the columns drifted by design."""
    designed = sorted(c["name"] for c in columns if c["effect"] > 0.1)
    same = [side for side in ("ours", "evidently") if result[f"drifted_{side}"] == designed]
    names = {"ours": "ours", "evidently": "Evidently"}
    if len(same) == 2:
        return "both exactly the columns drifted by design"
    if not same:
        return "neither exactly the columns drifted by design"
    return f"{names[same[0]]} exactly the columns drifted by design, the other not"


def targets(res: dict[str, Any]) -> list[dict[str, Any]]:
    big, quiet = res["comparisons"][-1], res["no_drift"]
    kinds = "; ".join(f"{k['kind']}: {k['ms_per_column']:.0f} ms per column" for k in res["by_kind"])
    rows = res["big_rows"]
    speed_bound = (
        f"ours {big['ours_s']:.1f} s, Evidently {big['evidently_s']:.0f} s; ours by kind of column: {kinds} "
        f"(numeric: two sorts and a merge of {2 * rows:,} values; categorical: pandas factorize of Python strings)"
    )
    memory_bound = (
        f"ours peak {big['ours_peak_mb']:.0f} MB: the working arrays of one column of {2 * rows:,} values, "
        f"Evidently {big['evidently_peak_mb']:.0f} MB"
    )
    differ = "; ".join(f"{c}: ours {v['ours']}, Evidently {v['evidently']}" for c, v in big["differ"].items())
    alarms = "; ".join(f"{c}: {quiet_score(quiet, c)}" for c in quiet["drifted_ours"])
    fa_ours, fa_ev = false_alarms(quiet)
    return [
        common.target(
            "drift 1M x 100: speed vs Evidently",
            big["speedup"],
            50,
            op=">=",
            bound=speed_bound,
            detail=f"{big['data']}: ours {big['ours_s']:.2f} s, Evidently {big['evidently_s']:.1f} s",
        ),
        common.target(
            "drift 1M x 100: peak memory vs Evidently",
            big["memory_ratio"],
            0.1,
            op="<=",
            bound=memory_bound,
            detail=f"tracemalloc peak: ours {big['ours_peak_mb']:.0f} MB, Evidently {big['evidently_peak_mb']:.0f} MB",
        ),
        common.target(
            "drift 1M x 100: verdicts the same as Evidently",
            big["agreement"] * 100,
            100,
            op=">=",
            unit="%",
            bound=f"columns that differ (drifted, score): {differ}",
            detail=f"{big['columns']} columns, {len(big['drifted_ours'])} drifted",
        ),
        common.target(
            "no-drift 1M: false alarms",
            fa_ours,
            0,
            op="<=",
            unit=" columns",
            bound=f"flagged (drifted, score): {alarms}",
            detail=f"Evidently: {fa_ev} false alarms",
        ),
    ]


def quiet_score(result: dict[str, Any], column: str) -> str:
    return f"{result['scores_ours'].get(column, math.nan):.4f}"


def run(a: argparse.Namespace) -> dict[str, Any]:
    res: dict[str, Any] = {"repeat": a.repeat, "big_rows": a.big_rows, "big_columns": a.big_columns}
    results = [compare(f"synthetic {a.rows:,} + {a.rows:,} rows x 50 columns", synthetic(a.rows), a.repeat)]
    results.append(compare("bike sharing 2011 vs 2012", bike(), a.repeat))
    columns = design(a.big_columns)
    res["design"] = columns
    n = a.big_rows
    reference = big_frame(columns, n, 1, moved=False)
    data = big_case(n, columns, 2, reference, moved=True)
    results.append(compare(f"synthetic {n:,} + {n:,} rows x {a.big_columns} columns", data, 1, warm=head(data, 2000)))
    res["by_kind"] = by_kind(data, columns)
    res["comparisons"] = results
    del data
    gc.collect()
    data = big_case(n, columns, 3, reference, moved=False)
    name = f"no drift, {n:,} + {n:,} rows x {a.big_columns} columns"
    quiet = compare(name, data, 1, warm=head(data, 2000), memory=a.no_drift_memory)
    quiet["scores_ours"] = {c: s for c, (_, s) in ours(*data).items()}
    res["no_drift"] = quiet
    del data, reference
    gc.collect()
    factors = [int(x) for x in a.growth.split(",")]
    res["growth"] = growth(a.rows, factors, [int(x) for x in a.evidently_growth.split(",") if x])
    return res


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--rows", type=int, default=100_000, help="rows of the first case and the growth series' 1x")
    p.add_argument("--repeat", type=int, default=3, help="timed runs of the small cases")
    p.add_argument("--big-rows", type=int, default=1_000_000, help="rows of each sample of the large cases")
    p.add_argument("--big-columns", type=int, default=100, help="columns of the large cases")
    p.add_argument("--growth", default="1,4,16", help="row factors of the growth series (ours)")
    p.add_argument("--evidently-growth", default="1,4,16", help="the factors Evidently runs at in the growth series")
    p.add_argument("--no-drift-memory", action="store_true", help="also measure peak memory on the no-drift pair")
    p.add_argument("--out", type=Path, default=None, help="result file (default .local/bench/drift.json)")
    a = p.parse_args()
    t0 = time.perf_counter()
    res = run(a)
    growth_rows = res["growth"]
    ev = [g for g in growth_rows if "evidently_s" in g]
    scaling = [
        common.series(
            "drift check (ours)",
            [g["rows"] for g in growth_rows],
            [g["ours_s"] for g in growth_rows],
            [g["ours_peak_mb"] for g in growth_rows],
        ),
        common.series(
            "Evidently DataDriftPreset",
            [g["rows"] for g in ev],
            [g["evidently_s"] for g in ev],
            [g["evidently_peak_mb"] for g in ev],
        ),
    ]
    common.write_part(
        "drift",
        "Drift check vs Evidently",
        markdown(res),
        targets=targets(res),
        scaling=scaling,
        data=res,
        seconds=time.perf_counter() - t0,
        out=a.out,
    )


if __name__ == "__main__":
    main()
