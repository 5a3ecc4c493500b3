"""monitor_drift end to end through Airflow: drift on new data starts exactly one
retraining with the reason attached; data without drift starts none."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from retrainer.registry.client import Registry
from retrainer.settings import Settings

pytestmark = pytest.mark.integration


def _retrain_runs() -> list[Any]:
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        runs = session.scalars(select(DagRun).where(DagRun.dag_id == "retrain_model", DagRun.run_id.like("drift__%")))
        return [(r.run_id, r.state, dict(r.conf or {})) for r in runs]


def _finish(run_id: str) -> None:
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import update

    with create_session() as session:
        session.execute(update(DagRun).where(DagRun.run_id == run_id).values(state="success"))


def _champion_on_three_months(pipe: Any, bike_batches: dict[str, Path]) -> None:
    for period in ("2011-01", "2011-02", "2011-03"):
        assert pipe.ingest("bike_sharing", period, bike_batches[period]).state == "success"
    assert pipe.retrain("bike_sharing", "latest").values["promote"]["promoted"]
    assert pipe.ingest("bike_sharing", "2011-04", bike_batches["2011-04"]).state == "success"


def _monitor(pipe: Any) -> Any:
    from retrainer_dev.runner import run_dag

    return run_dag(pipe.dags["monitor_drift"], pipe._next(), {"dataset": "bike_sharing"}, pipe.log)


def test_drift_starts_one_retraining_with_its_reason(
    make_pipeline: Any,
    home: Path,
    bike_batches: dict[str, Path],
) -> None:
    pipe = make_pipeline(2040)
    _champion_on_three_months(pipe, bike_batches)

    first = _monitor(pipe)
    assert first.state == "success", first.states
    check = first.values["wait_for_drift"]
    assert check["retrain"] and check["data_version"] == "v0004" and check["current_periods"] == ["2011-04"]
    assert check["reference_periods"] == ["2011-01", "2011-02"]
    assert first.states["trigger_retrain"] == "success"
    runs = _retrain_runs()
    assert [r[0] for r in runs] == ["drift__bike_sharing__v0004"]
    conf = runs[0][2]
    assert conf["data_version"] == "v0004" and conf["reason"].startswith("drift: retrain")
    # the tag a browser opens: the MLflow UI with the report selected, not an artifact path
    ui = Settings.from_env().mlflow_ui_url
    assert conf["drift"]["report_uri"] == (
        f"{ui}/#/experiments/{check['mlflow_experiment_id']}/runs/{check['mlflow_run_id']}/artifacts/drift/drift_report.html"
        "?workflowType=machine_learning"
    )

    registry = Registry(Settings.from_env())
    artifacts = [a.path for a in registry.client.list_artifacts(check["mlflow_run_id"], "drift")]
    assert "drift/drift_report.html" in artifacts
    html = Path(registry.client.download_artifacts(check["mlflow_run_id"], "drift/drift_report.html")).read_text()
    assert "data:image/png;base64," in html and "temp" in html

    # the triggered retraining is still queued: a second look must not start another one
    second = _monitor(pipe)
    assert second.states["trigger_retrain"] == "skipped"
    assert len(_retrain_runs()) == 1

    # once it is done, the same data version still gives no second retraining
    _finish("drift__bike_sharing__v0004")
    third = _monitor(pipe)
    assert third.states["trigger_retrain"] == "skipped"
    assert len(_retrain_runs()) == 1
    # the same data, champion and spec: the answer of the first check, not measured again
    for later in (second, third):
        assert later.values["wait_for_drift"]["mlflow_run_id"] == check["mlflow_run_id"]
    spec_path = Settings.from_env().spec_path("bike_sharing")
    spec_path.write_text(spec_path.read_text() + "\n# thresholds reviewed\n")  # another spec: measured again
    fourth = _monitor(pipe)
    assert fourth.values["wait_for_drift"]["mlflow_run_id"] != check["mlflow_run_id"]


def test_no_drift_starts_nothing(
    make_pipeline: Any,
    home: Path,
    bike_batches: dict[str, Path],
) -> None:
    spec_path = home / "specs" / "bike_sharing.yaml"
    spec = yaml.safe_load(spec_path.read_text())
    spec["drift"] = {  # thresholds no month of bike data reaches
        "drift_share": 1.0,
        "target": {"threshold": 50},
        "prediction": {"threshold": 50},
        "null_rate_delta": 1.0,
    }
    spec_path.write_text(yaml.safe_dump(spec))
    pipe = make_pipeline(2041)
    _champion_on_three_months(pipe, bike_batches)
    before = len(_retrain_runs())
    run = _monitor(pipe)
    assert run.states["wait_for_drift"] == "skipped"
    assert run.states["start_retraining"] == "skipped" and run.states["trigger_retrain"] == "skipped"
    assert len(_retrain_runs()) == before
