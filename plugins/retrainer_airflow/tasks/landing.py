"""watch_landing's tasks: after wait_for_deliveries, one ingest_batch run per new delivery
(start_ingest), and the files whose names say no dataset and period refused (refuse_unroutable)."""

from __future__ import annotations

import logging

from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from retrainer.records import LandingScan
from retrainer_airflow.tasks.runtime import Json, read, settings

log = logging.getLogger(__name__)


def ingest_requests(found: Json | None) -> list[Json]:
    """The ``TriggerDagRunOperator`` arguments of each new delivery: its run id (by its bytes)
    and the conf that says what to ingest."""
    if not found:
        return []
    scan = read(LandingScan, found, "wait_for_deliveries")
    return [
        {"trigger_run_id": d.run_id, "conf": {"dataset": d.dataset, "period": d.period, "batch": d.uri}}
        for d in scan.deliveries
    ]


def refuse_unroutable(found: Json | None) -> None:
    """Quarantine every landed file whose path says no dataset and period, with the reason,
    and fail, naming each one (the other deliveries go on)."""
    from retrainer.data import landing

    scan = read(LandingScan, found, "wait_for_deliveries") if found else None
    if scan is None or not scan.refused:
        raise AirflowSkipException("every landed file has a dataset and a period")
    s = settings()
    lines = [f"{r.uri}: {r.reason} (quarantined at {landing.quarantine_refused(s, r)})" for r in scan.refused]
    for line in lines:
        log.error("refused delivery %s", line)
    raise AirflowFailException(f"{len(lines)} landed file(s) refused: " + "; ".join(lines))
