"""Gather the benchmark result files into docs/benchmarks.md, docs/benchmarks.json and the plot.

Each benchmark writes ``.local/bench/<part>.json`` (bench/common.py). This script reads the
parts in the order below, puts every target in one table (met or missed, and for a miss what
bounds it), writes each part's own section, and draws how time and peak memory grow with rows
for every series a part measured at several sizes (``docs/benchmarks-scaling.png``).
A part that is missing is named as missing, never left out silently.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import REPO, RESULTS, machine, now, table

PARTS = ["parse", "orchestration", "validation", "drift", "serving", "demo"]


def load(results: Path, parts: list[str]) -> tuple[dict[str, dict[str, Any]], list[str]]:
    found, missing = {}, []
    for part in parts:
        path = results / f"{part}.json"
        if path.exists():
            found[part] = json.loads(path.read_text())
        else:
            missing.append(part)
    return found, missing


def _fmt(value: float, unit: str) -> str:
    if unit == "x":
        return f"{value:.2f}x"
    if abs(value) >= 100 or value == int(value):
        return f"{value:.0f}{unit}"
    return f"{value:.2f}{unit}"


def targets_table(parts: dict[str, dict[str, Any]]) -> str:
    rows = []
    for doc in parts.values():
        for t in doc["targets"]:
            rows.append(
                [
                    t["what"],
                    f"{t['op']} {_fmt(t['limit'], t['unit'])}",
                    _fmt(t["measured"], t["unit"]),
                    "met" if t["met"] else "**missed**",
                    t["bound"] or t.get("detail", "") or "",
                ]
            )
    return table(["target", "limit", "measured", "", "what bounds it / detail"], rows)


def plot(parts: dict[str, dict[str, Any]], out: Path) -> bool:
    """Time and peak memory against rows, log-log, one line per series; False if nothing to draw."""
    lines = [s for doc in parts.values() for s in doc.get("scaling", []) if len(s["rows"]) > 1]
    if not lines:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_t, ax_m) = plt.subplots(1, 2, figsize=(12, 4.8))
    for s in lines:
        ax_t.plot(s["rows"], s["seconds"], marker="o", label=s["what"])
        ax_m.plot(s["rows"], s["peak_mb"], marker="o", label=s["what"])
    for ax, label in ((ax_t, "wall time (s)"), (ax_m, "peak memory (MB)")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("rows")
        ax.set_ylabel(label)
        ax.grid(True, which="both", alpha=0.3)
    ax_t.set_title("time vs rows (1x, 4x, 16x)")
    ax_m.set_title("peak memory vs rows (1x, 4x, 16x)")
    ax_m.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return True


def markdown(parts: dict[str, dict[str, Any]], missing: list[str], has_plot: bool, note: str = "") -> str:
    m = machine()
    dates = sorted({doc["measured_at"] for doc in parts.values()})
    head = [
        "# Benchmarks",
        "",
        "Written by `make bench` (bench/report.py from the result of each benchmark in bench/); every",
        "figure is measured side by side with its peer in the same run, on this machine:",
        "",
        f"- {m['cpu']}, {m['cores']} cores, {m['memory_gb']} GB, {m['os']}, Python {m['python']}",
        f"- measured {dates[0]} to {dates[-1]}; written {now()}" if dates else f"- written {now()}",
        "",
        "Ratios come from one run of each benchmark; on 2 shared cores they move by 10-30% from run",
        "to run (the parts say where they repeat and take medians).",
        *(["", f"**This run:** {note}"] if note else []),
        "",
        "## Targets",
        "",
        targets_table(parts),
    ]
    if missing:
        head += ["", "Not measured in this run: " + ", ".join(missing) + "."]
    if has_plot:
        head += ["", "## Scaling", "", "![time and peak memory vs rows](benchmarks-scaling.png)"]
    for doc in parts.values():
        took = f" ({doc['seconds']:.0f} s)" if doc.get("seconds") else ""
        head += ["", f"## {doc['title']}", "", f"Measured {doc['measured_at']}{took}.", "", doc["markdown"].strip()]
    return "\n".join(line.rstrip() for line in "\n".join(head).splitlines()) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--results", type=Path, default=RESULTS)
    p.add_argument("--docs", type=Path, default=REPO / "docs")
    p.add_argument("--parts", default=",".join(PARTS))
    p.add_argument("--note", default="", help="what to know about this run (e.g. the machine was busy)")
    a = p.parse_args()
    parts, missing = load(a.results, a.parts.split(","))
    if not parts:
        sys.exit(f"no benchmark results in {a.results}: run make bench")
    has_plot = plot(parts, a.docs / "benchmarks-scaling.png")
    (a.docs / "benchmarks.md").write_text(markdown(parts, missing, has_plot, a.note))
    doc = {"machine": machine(), "written": now(), "note": a.note, "missing": missing, "parts": parts}
    (a.docs / "benchmarks.json").write_text(json.dumps(doc, indent=2) + "\n")
    met = sum(t["met"] for d in parts.values() for t in d["targets"])
    total = sum(len(d["targets"]) for d in parts.values())
    print(f"{met} of {total} targets met; written {a.docs / 'benchmarks.md'}, benchmarks.json, benchmarks-scaling.png")
    if missing:
        print("not measured: " + ", ".join(missing))


if __name__ == "__main__":
    main()
