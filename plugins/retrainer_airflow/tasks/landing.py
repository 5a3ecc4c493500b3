"""watch_landing's tasks: after wait_for_deliveries, one ingest_batch run per new delivery
(start_ingest), and the files whose names say no dataset and period refused (refuse_unroutable)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from retrainer.outcomes import NothingToDo, Refused
from retrainer_airflow.tasks.boundary import record_task
from retrainer_airflow.tasks.runtime import settings

if TYPE_CHECKING:
    from retrainer.records import LandingScan, StartIngest

log = logging.getLogger(__name__)


@record_task
def plan_ingests(scan: LandingScan | None) -> list[StartIngest]:
    """The ``ingest_batch`` run of each new delivery: its run id (by its bytes) and the conf that
    says what to ingest, for the mapped ``start_ingest``."""
    from retrainer.records import IngestConf, StartIngest

    if scan is None:
        return []
    return [StartIngest(d.run_id, IngestConf(d.dataset, d.period, d.uri)) for d in scan.deliveries]


@record_task
def refuse_unroutable(scan: LandingScan | None) -> None:
    """Quarantine every landed file whose path says no dataset and period, with the reason,
    and fail, naming each one (the other deliveries go on)."""
    from retrainer.data import landing

    if scan is None or not scan.refused:
        raise NothingToDo("every landed file has a dataset and a period")
    s = settings()
    lines = [f"{r.uri}: {r.reason} (quarantined at {landing.quarantine_refused(s, r)})" for r in scan.refused]
    for line in lines:
        log.error("refused delivery %s", line)
    raise Refused(f"{len(lines)} landed file(s) refused: " + "; ".join(lines))
