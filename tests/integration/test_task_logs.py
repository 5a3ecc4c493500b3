"""Runs made in this process (``make demo``, the end-to-end tests) have their task logs where
the Airflow UI reads them: the log of the task that quarantined a batch holds its reasons, and
a failed task's log its error, through Airflow's own REST API (what the UI's log view calls)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration


def _log(api: Any, dag_id: str, run_id: str, task_id: str, try_number: int = 1) -> str:
    r = api.get(
        f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}",
        headers={"Accept": "application/json"},
    )
    assert r.status_code == 200, r.text
    return "\n".join(str(line.get("event", "")) for line in r.json()["content"])


def test_the_ui_shows_the_task_logs_of_runs_made_here(
    api: Any, make_pipeline: Any, bike_batches: dict[str, Path]
) -> None:
    pipe = make_pipeline(2082)
    good = pipe.ingest("bike_sharing", "2011-01", bike_batches["2011-01"])
    assert good.state == "success"
    versioned = _log(api, "ingest_batch", good.run_id, "version_batch")
    assert "v0001" in versioned and "running version_batch of ingest_batch" in versioned

    bad = pipe.ingest("bike_sharing", "2011-03", bike_batches["2011-03-bad"])
    assert bad.state == "failed" and bad.states["quarantine_batch"] == "failed", bad.states
    validated = _log(api, "ingest_batch", bad.run_id, "validate_batch")
    quarantined = _log(api, "ingest_batch", bad.run_id, "quarantine_batch")
    assert "quarantine" in quarantined.lower() and "the task failed" in quarantined
    # the reasons are in the log an operator opens: the validation's, and the quarantine's
    # failure says them once more, without a traceback (a failure the task meant)
    first = bad.values["validate_batch"]["failures"][0]
    assert first[:80] in validated and first[:80] in quarantined, quarantined[-2000:]
    assert "Traceback" not in quarantined
