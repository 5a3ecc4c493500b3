"""One ``promote`` task of a retrain_model run, in a process of its own, started at a given
instant so that several candidates' promotions race:
``python -m tests.reliability.promote_step <records.json> <t0>``. The records are those the
upstream tasks returned (plan, trained, evaluation, registered); locations from the environment.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from retrainer.pipeline.release import promote
from retrainer.records import Evaluation, RegisteredVersion, TrainedRun, TrainingPlan
from retrainer.settings import Settings

if __name__ == "__main__":
    records, t0 = json.loads(Path(sys.argv[1]).read_text()), float(sys.argv[2])
    plan, trained = TrainingPlan.from_json(records["plan"]), TrainedRun.from_json(records["trained"])
    evaluation, registered = (
        Evaluation.from_json(records["evaluation"]),
        RegisteredVersion.from_json(records["registered"]),
    )
    settings = Settings.from_env()
    time.sleep(max(0.0, t0 - time.time()))
    try:
        done = promote(settings, plan, evaluation, registered, trained)
        out = {"version": registered.version, "promoted": done.promoted}
    except Exception as exc:  # reported to the test, which fails on it
        out = {"version": registered.version, "error": f"{type(exc).__name__}: {exc}"[:300]}
    print(json.dumps(out), flush=True)
