"""Two ``monitor_drift`` runs deciding at once, on a burst of two data versions. Under the
scheduler the in-flight check and the trigger are one task run one at a time
(``TriggerRetrainOperator``), so the second run finds the first's retraining
(``test_soak::test_bursts_of_two_drift_events_start_one_retraining_each``, 50 bursts). Here the
second line of defence: the interleaving is forced (the second run's check sees nothing in
flight, as if the one-at-a-time rule were lost), both trigger, and the retraining on the
older data gives way to the one on the newer in its first task; exactly one trains. The same
burst decided on one data version gives one run id, so one retraining.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from unittest import mock

import pytest

from retrainer.data.demo_data import load_bike_sharing, split_periods, write_batch
from retrainer.settings import Settings
from retrainer_dev.runner import run_dag, run_triggered
from tests.reliability.conftest import record

pytestmark = [pytest.mark.integration, pytest.mark.reliability]


def _drift_runs() -> list[str]:
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        runs = session.scalars(select(DagRun).where(DagRun.dag_id == "retrain_model", DagRun.run_id.like("drift__%")))
        return sorted(r.run_id for r in runs)


def test_two_decisions_at_once_give_one_retraining(
    make_pipeline: Any, home: Path, bike_batches: dict[str, Path]
) -> None:
    spec = Settings.from_env().load_spec("bike_sharing")
    parts = split_periods(load_bike_sharing(), spec)
    pipe = make_pipeline(2043)
    for period in ("2011-01", "2011-02", "2011-03"):
        assert pipe.ingest("bike_sharing", period, bike_batches[period]).state == "success"
    assert pipe.retrain("bike_sharing", "latest").values["promote"]["promoted"]
    # the burst: two months land together, two data versions
    may = write_batch(parts["2011-05"], spec, home / "landing" / "2011-05.csv")
    assert pipe.ingest("bike_sharing", "2011-04", bike_batches["2011-04"]).state == "success"
    assert pipe.ingest("bike_sharing", "2011-05", may).state == "success"

    def monitor(version: str) -> Any:
        return run_dag(
            pipe.dags["monitor_drift"], pipe._next(), {"dataset": "bike_sharing", "data_version": version}, pipe.log
        )

    first = monitor("v0004")
    assert first.states["trigger_retrain"] == "success", first.states
    from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

    with mock.patch.object(RuntimeTaskInstance, "get_dr_count", return_value=0):  # decided at the same instant
        second = monitor("v0005")
    assert second.states["trigger_retrain"] == "success", second.states
    assert _drift_runs() == ["drift__bike_sharing__v0004", "drift__bike_sharing__v0005"]

    older = run_triggered(pipe.dags["retrain_model"], "drift__bike_sharing__v0004", pipe.log)
    newer = run_triggered(pipe.dags["retrain_model"], "drift__bike_sharing__v0005", pipe.log)
    assert older.states["plan_training"] == "skipped" and older.states["train"] == "skipped", older.states
    assert newer.states["train"] == "success", newer.states
    trained = [r.run_id for r in (older, newer) if r.states.get("train") == "success"]

    # the same data version decided twice: one run id, the second trigger finds it there
    again = monitor("v0005")
    assert again.states["trigger_retrain"] in ("skipped", "success") and len(_drift_runs()) == 2
    record(
        "two monitor_drift runs deciding at once on a burst of two data versions, the in-flight check forced to miss",
        1,
        int(trained == ["drift__bike_sharing__v0005"]),
        0,
        "both trigger (in-flight check passed by both); the retraining on older data gives way in plan_training;"
        " one trains, on the newest data",
    )
    assert trained == ["drift__bike_sharing__v0005"]
