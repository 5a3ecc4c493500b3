"""One ``retrain_model`` DAG run in a process of its own (so that a fault point can kill it
with everything in it): ``python -m tests.reliability.retrain_step <logical date> <log file>``.
Running the same logical date again re-runs the same DAG run (same run id) from its first
task, as clearing the whole run in the Airflow UI does. Locations come from the environment.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path

from retrainer_dev.runner import load_dags, run_dag

if __name__ == "__main__":
    at, log = datetime.fromisoformat(sys.argv[1]), Path(sys.argv[2])
    conf = {"dataset": "bike_sharing", "data_version": "latest", "reason": "reliability"}
    out = run_dag(load_dags()["retrain_model"], at, conf, log)
    print(json.dumps({"run_id": out.run_id, "state": out.state, "states": out.states}))
