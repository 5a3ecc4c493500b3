"""One rollback, as the rollback_model task runs it, in a process of its own (so that a fault
point can kill it): ``python -m tests.reliability.rollback_step <target> <run_id>``; the
locations come from the environment."""

from __future__ import annotations

import json
import sys

from retrainer.pipeline.rollback import rollback
from retrainer.records import RunContext
from retrainer.settings import Settings

if __name__ == "__main__":
    target, run_id = sys.argv[1], sys.argv[2]
    ctx = RunContext(dag_id="rollback_model", run_id=run_id)
    done = rollback(Settings.from_env(), "bike_sharing", target, ctx, f"reliability: to {target}", "reliability")
    print(json.dumps({"from": done.from_version, "to": done.to_version}))
