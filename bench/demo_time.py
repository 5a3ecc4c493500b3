"""Benchmark: how long `make demo`'s pipeline takes, on a fresh home and run again.

The demo (``python -m retrainer_dev.demo``) runs the bike sharing months through real
``ingest_batch`` and ``retrain_model`` DAG runs on the embedded default. It runs here twice
in a temporary ``RETRAINER_HOME`` (never the user's ``.local/``): first on a fresh home (the
metadata database is created, every month ingested, every retraining trained, deployed and
verified), then again on the same home, where every task finds what it made the first time
(the rerun's time is what idempotence costs). Each run is a whole fresh process, timed with
its peak memory; the first run's last lines (the demo's own summary) are kept.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common

sys.path.insert(0, str(common.REPO / "tools"))


def demo_env(home: Path) -> dict[str, str]:
    from retrainer_dev import localenv

    env = dict(os.environ)
    for var in common.OWN_STATE:
        env.pop(var, None)
    env.update(localenv.local_env(home))
    env["PYTHONPATH"] = os.pathsep.join([env["PYTHONPATH"], str(common.REPO / "tools")])
    return env


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--months", type=int, default=None, help="stop after this many months (default: all 24)")
    a = p.parse_args()
    home = Path(tempfile.mkdtemp(prefix="retrainer-demo-bench-"))
    cmd = [sys.executable, "-m", "retrainer_dev.demo"] + (["--months", str(a.months)] if a.months else [])
    try:
        env = demo_env(home)
        print("demo on a fresh home ...", flush=True)
        first = common.run_process(cmd, env=env, cwd=common.REPO)
        print(f"  {first['seconds']:.0f} s; again on the same home ...", flush=True)
        again = common.run_process(cmd, env=env, cwd=common.REPO)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    lines = [line for line in first["stdout"].splitlines() if line.strip()]
    end = next((i for i, line in enumerate(lines) if line.startswith("Where to look next")), len(lines))
    summary = lines[max(0, end - 30) : end]  # the demo's table of months and what happened, not its pointers
    months = a.months or 24
    md = common.table(
        ["run", "wall time (s)", "peak memory (MB)"],
        [
            [f"fresh home ({months} months)", f"{first['seconds']:.0f}", f"{first['peak_mb']:.0f}"],
            ["again on the same home (nothing new to do)", f"{again['seconds']:.0f}", f"{again['peak_mb']:.0f}"],
        ],
    )
    md += "\n\nThe demo's summary of the fresh run:\n\n```\n" + "\n".join(summary) + "\n```"
    common.write_part(
        "demo",
        "make demo",
        md,
        data={
            "fresh_s": first["seconds"],
            "again_s": again["seconds"],
            "fresh_peak_mb": first["peak_mb"],
            "again_peak_mb": again["peak_mb"],
            "months": months,
            "summary": summary,
        },
        seconds=first["seconds"] + again["seconds"],
    )


if __name__ == "__main__":
    main()
