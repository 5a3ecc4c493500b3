"""DriftTrigger and DriftSensor, tested the way Airflow tests its own: the trigger's
serialize round trip and its events from ``run()`` in an event loop; the sensor deferring
with the right trigger, resuming, failing on an error event, and its reschedule mode."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk import PokeReturnValue
from airflow.sdk.exceptions import AirflowException, TaskDeferred

from retrainer.records import DriftCheck
from retrainer_airflow.sensors import DriftSensor
from retrainer_airflow.triggers import DriftTrigger
from tests.helpers import first_event


def _registry(tmp_path: Path, *tags: str) -> Path:
    repo = tmp_path / "registry"
    repo.mkdir()
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "x"], check=True)
    for tag in tags:
        subprocess.run([*git, "tag", tag], check=True)
    return repo


def test_trigger_serialize_round_trip() -> None:
    trigger = DriftTrigger(dataset="bike", registry="/r", last_checked="v0003", poll_interval=7)
    path, kwargs = trigger.serialize()
    assert path == "retrainer_airflow.triggers.DriftTrigger"
    assert DriftTrigger(**kwargs).serialize() == (path, kwargs)


def test_trigger_fires_on_a_newer_data_version(tmp_path: Path) -> None:
    repo = _registry(tmp_path, "bike/v0001", "bike/v0002", "other/v0009")
    event = first_event(DriftTrigger("bike", str(repo), last_checked="v0001", poll_interval=0.05))
    assert event.payload == {"status": "new_data", "data_version": "v0002"}


def test_trigger_waits_while_nothing_is_new(tmp_path: Path) -> None:
    repo = _registry(tmp_path, "bike/v0001")
    with pytest.raises(TimeoutError):
        first_event(DriftTrigger("bike", str(repo), last_checked="v0001", poll_interval=0.05), timeout=0.5)


def test_trigger_reports_errors(tmp_path: Path) -> None:
    event = first_event(DriftTrigger("bike", str(tmp_path / "missing"), last_checked=None, poll_interval=0.05))
    assert event.payload["status"] == "error" and "missing" in event.payload["message"]


class FakeChecks:
    """Stands in for the drift check (which needs a champion and data) with given answers."""

    def __init__(self, *answers: dict[str, Any]) -> None:
        self.answers = list(answers)
        self.asked: list[str] = []

    def __call__(self, data_version: str) -> DriftCheck:
        self.asked.append(data_version)
        return DriftCheck.from_json(self.answers.pop(0))


def _check(**values: Any) -> dict[str, Any]:
    """A drift check as the sensor pushes it to XCom."""
    return DriftCheck.from_json({"status": "checked", **values}).to_json()


NO_DRIFT = _check(retrain=False, data_version="v0004", reason="no retraining")
DRIFT = _check(retrain=True, data_version="v0005", reason="retrain: features drifted")


def _sensor(checks: FakeChecks, **kw: Any) -> DriftSensor:
    sensor = DriftSensor(task_id="wait_for_drift", dataset="bike", data_version="v0004", timeout=60, **kw)
    sensor._check = checks  # type: ignore[method-assign]
    return sensor


def test_sensor_is_deferrable_by_default() -> None:
    assert DriftSensor(task_id="s", dataset="bike").deferrable is True


def test_a_run_started_by_an_announcement_does_not_wait(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The next data version is announced too and starts a check of its own: without drift the
    sensor ends as skipped at once (its check still in the XCom), where a scheduled run waits."""
    from types import SimpleNamespace

    from airflow.sdk.exceptions import AirflowSkipException

    monkeypatch.setenv("RETRAINER_DATA_REGISTRY", str(tmp_path / "reg"))
    pushed: dict[str, Any] = {}
    ti = SimpleNamespace(xcom_push=lambda key, value: pushed.update({key: value}))
    announced = {"dag_run": SimpleNamespace(run_type="asset_triggered"), "ti": ti}
    with pytest.raises(AirflowSkipException, match="bike v0004: no retraining; the next data version"):
        _sensor(FakeChecks(NO_DRIFT)).execute(context=announced)
    assert pushed == {"return_value": NO_DRIFT}
    with pytest.raises(TaskDeferred):
        _sensor(FakeChecks(NO_DRIFT)).execute(context={"dag_run": SimpleNamespace(run_type="scheduled"), "ti": ti})
    sensor = _sensor(FakeChecks(DRIFT))
    assert sensor.execute(context=announced) == DRIFT  # drift: done, whatever started the run


def test_sensor_defers_with_the_right_trigger(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RETRAINER_DATA_REGISTRY", str(tmp_path / "reg"))
    sensor = _sensor(FakeChecks(NO_DRIFT), poke_interval=30)
    sensor._last = None
    checks: FakeChecks = sensor._check  # type: ignore[assignment]
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute(context={})
    trigger = deferred.value.trigger
    assert isinstance(trigger, DriftTrigger)
    assert trigger.last_checked == "v0004" and trigger.poll_interval == 30
    assert trigger.registry == str(tmp_path / "reg")
    assert deferred.value.method_name == "execute_complete"
    assert checks.asked == ["v0004"]


def test_sensor_returns_the_check_when_drift_is_found() -> None:
    sensor = _sensor(FakeChecks(DRIFT))
    assert sensor.execute(context={}) == DRIFT


def test_sensor_resumes_and_checks_the_new_version(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RETRAINER_DATA_REGISTRY", str(tmp_path / "reg"))
    checks = FakeChecks(DRIFT, NO_DRIFT)
    sensor = _sensor(checks)
    assert sensor.execute_complete({}, {"status": "new_data", "data_version": "v0005"}) == DRIFT
    with pytest.raises(TaskDeferred):  # no drift on the next version either: wait again
        sensor.execute_complete({}, {"status": "new_data", "data_version": "v0006"})
    assert checks.asked == ["v0005", "v0006"]


def test_sensor_fails_on_a_trigger_error() -> None:
    with pytest.raises(AirflowException, match="drift trigger failed: git tag"):
        _sensor(FakeChecks()).execute_complete({}, {"status": "error", "message": "git tag failed"})


def test_reschedule_mode_pokes() -> None:
    sensor = _sensor(FakeChecks(NO_DRIFT, DRIFT), deferrable=False, mode="reschedule")
    assert sensor.poke({}) is False
    done = sensor.poke({})
    assert isinstance(done, PokeReturnValue) and done.is_done and done.xcom_value == DRIFT


def test_drift_report_link(monkeypatch: pytest.MonkeyPatch) -> None:
    from retrainer.registry import links
    from retrainer_airflow.plugin import RetrainerPlugin
    from retrainer_airflow.sensors import DriftReportLink

    monkeypatch.setenv("RETRAINER_MLFLOW_UI_URL", "http://mlflow.example:5000/")
    check = {**DRIFT, "mlflow_run_id": "abc", "mlflow_experiment_id": "3", "report_uri": "file:///r.html"}
    report_link = links.mlflow_artifacts("http://mlflow.example:5000", "3", "abc", "drift/drift_report.html")
    # the report itself, selected in the run's artifacts (the form MLflow's own UI links use)
    assert report_link == (
        "http://mlflow.example:5000/#/experiments/3/runs/abc/artifacts/drift/drift_report.html"
        "?workflowType=machine_learning"  # the training-run view of the MLflow UI, not its GenAI one
    )
    sensor = _sensor(FakeChecks(check))
    assert any(isinstance(link, DriftReportLink) for link in sensor.operator_extra_links)
    assert sensor.execute(context={}) == check
    assert DriftReportLink().get_link(sensor, ti_key=None) == report_link
    assert any(isinstance(link, DriftReportLink) for link in RetrainerPlugin.operator_extra_links)
