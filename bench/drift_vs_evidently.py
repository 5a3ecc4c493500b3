"""Benchmark: retrainer's drift check against Evidently's DataDriftPreset, side by side.

Both run in the same process on the same data frames, with the same tests and thresholds
(Evidently's defaults, which ours follow: normalized Wasserstein and Jensen-Shannon above
1,000 reference rows). Reported: wall time (median of --repeat runs after a warm-up),
peak memory allocated during the call (tracemalloc, which numpy and pandas report to),
the ratios, per-column verdict agreement, and how our time grows with the row count.

Run with `make bench` (it builds .venv-bench from requirements-bench.txt: Evidently
0.7 needs pandas < 3, so the benchmark has its own environment).
"""

from __future__ import annotations

import argparse
import gc
import json
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
sys.path.insert(0, str(REPO / "include"))

from retrainer import drift  # noqa: E402


def synthetic(rows: int, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame, list[str], list[str]]:
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


def bike() -> tuple[pd.DataFrame, pd.DataFrame, list[str], list[str]]:
    """UCI Bike Sharing: 2011 as reference, 2012 as current."""
    from retrainer.sources import load_bike_sharing
    from retrainer.spec import DatasetSpec

    spec = DatasetSpec.load(REPO / "include" / "specs" / "bike_sharing.yaml")
    df = load_bike_sharing()
    year = pd.to_datetime(df["timestamp"]).dt.year
    cols = list(spec.feature_names)
    numeric = [f.name for f in spec.numeric_features]
    categorical = [f.name for f in spec.categorical_features]
    ref = df[year == 2011][cols].reset_index(drop=True)
    cur = df[year == 2012][cols].reset_index(drop=True)
    return ref, cur, numeric, categorical


def ours(ref: pd.DataFrame, cur: pd.DataFrame, numeric: list[str], categorical: list[str]) -> dict[str, bool]:
    result = drift.detect(ref, cur, numeric, categorical)
    return {f.feature: f.drifted for f in result.features}


def evidently(ref: pd.DataFrame, cur: pd.DataFrame, numeric: list[str], categorical: list[str]) -> dict[str, bool]:
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
        verdicts[cfg["column"]] = value < threshold if is_p_value else value >= threshold
    return verdicts


def measure(fn: Callable[..., dict[str, bool]], args: tuple[Any, ...], repeat: int) -> dict[str, Any]:
    verdicts = fn(*args)  # warm-up: imports and first-call costs are not measured
    times = []
    for _ in range(repeat):
        gc.collect()
        t0 = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - t0)
    gc.collect()
    tracemalloc.start()
    fn(*args)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {"seconds": statistics.median(times), "peak_mb": peak / 2**20, "verdicts": verdicts}


def compare(name: str, data: tuple[Any, ...], repeat: int) -> dict[str, Any]:
    ref, cur = data[0], data[1]
    print(f"{name}: reference {len(ref):,} x {ref.shape[1]}, current {len(cur):,} rows ...", flush=True)
    a = measure(ours, data, repeat)
    b = measure(evidently, data, repeat)
    agree = sum(a["verdicts"][c] == b["verdicts"].get(c) for c in a["verdicts"])
    return {
        "data": name,
        "ours_s": a["seconds"],
        "evidently_s": b["seconds"],
        "speedup": b["seconds"] / a["seconds"],
        "ours_peak_mb": a["peak_mb"],
        "evidently_peak_mb": b["peak_mb"],
        "memory_ratio": a["peak_mb"] / b["peak_mb"],
        "agreement": agree / len(a["verdicts"]),
        "columns": len(a["verdicts"]),
        "drifted_ours": sorted(c for c, v in a["verdicts"].items() if v),
        "drifted_evidently": sorted(c for c, v in b["verdicts"].items() if v),
    }


def growth(base_rows: int, factors: list[int], repeat: int) -> list[dict[str, Any]]:
    out = []
    for f in factors:
        data = synthetic(base_rows * f, seed=f)
        m = measure(ours, data, repeat)
        out.append({"rows": base_rows * f, "factor": f, "seconds": m["seconds"], "peak_mb": m["peak_mb"]})
        print(f"  ours at {base_rows * f:,} rows: {m['seconds']:.2f} s", flush=True)
        del data
    first = out[0]
    for row in out:
        row["time_ratio"] = row["seconds"] / first["seconds"]
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--rows", type=int, default=100_000)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--growth", default="1,4,16")
    p.add_argument("--out", type=Path, default=REPO / ".local" / "bench" / "drift.json")
    a = p.parse_args()
    results = [compare(f"synthetic {a.rows:,} + {a.rows:,} rows x 50 columns", synthetic(a.rows), a.repeat)]
    results.append(compare("bike sharing 2011 vs 2012", bike(), a.repeat))
    scaling = growth(a.rows, [int(x) for x in a.growth.split(",")], 1)

    print(
        "\n| data | ours (s) | Evidently (s) | speed-up | ours peak (MB) | Evidently peak (MB) | memory ratio "
        "| verdict agreement |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r['data']} | {r['ours_s']:.3f} | {r['evidently_s']:.3f} | {r['speedup']:.1f}x "
            f"| {r['ours_peak_mb']:.0f} | {r['evidently_peak_mb']:.0f} | {r['memory_ratio']:.2f}x "
            f"| {r['agreement']:.0%} of {r['columns']} |"
        )
    print("\n| rows (reference = current) | ours (s) | time vs 1x |")
    print("|---|---|---|")
    for g in scaling:
        print(f"| {g['rows']:,} ({g['factor']}x) | {g['seconds']:.2f} | {g['time_ratio']:.1f}x |")
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps({"comparisons": results, "growth": scaling}, indent=2))
    print(f"\nwritten: {a.out}")


if __name__ == "__main__":
    main()
