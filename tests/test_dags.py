"""DAG integrity: the DAGs parse with no error, follow our policies, and stay cheap to parse."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from unittest import mock

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
DAG_FILES = sorted((REPO / "dags").glob("*.py"))
DAG_IDS = ["ingest_batch", "retrain_model", "monitor_drift", "rollback_model", "watch_landing", "rerun_quarantined"]
HEAVY = ("tensorflow", "keras", "mlflow", "great_expectations", "pandas", "dvc", "sklearn", "boto3", "numpy")


@pytest.fixture(scope="module")
def dagbag():  # type: ignore[no-untyped-def]
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(REPO / "dags"))


def test_no_import_errors(dagbag) -> None:  # type: ignore[no-untyped-def]
    assert dagbag.import_errors == {}
    assert set(dagbag.dag_ids) == set(DAG_IDS)


@pytest.mark.parametrize("dag_id", DAG_IDS)
def test_policies(dagbag, dag_id: str) -> None:  # type: ignore[no-untyped-def]
    dag = dagbag.dags[dag_id]
    assert dag.doc_md and dag_id in dag.doc_md
    assert "retrainer" in dag.tags
    assert not dag.catchup
    for task in dag.tasks:
        assert task.owner == "ml-platform", task.task_id
        # every task retries as configured, except quarantine: it fails its run on purpose; the
        # review keeps one retry at least (a resumed review lost to the scheduler takes its answer then)
        expected = 0 if task.task_id == "quarantine_batch" else dag.default_args["retries"]
        if task.task_id == "review":
            expected = max(expected, 1)
        assert task.retries == expected, task.task_id
    assert "retry_delay" in dag.default_args


def test_a_broken_spec_is_an_import_error_naming_its_file_field_and_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The DAG processor shows a spec that does not load (every error of it) as an import error
    of dags/dataset_specs.py; the DAGs themselves load and offer the specs that do."""
    from airflow.dag_processing.dagbag import DagBag

    good = yaml.safe_load((REPO / "include" / "specs" / "bike_sharing.yaml").read_text())
    broken = {**good, "name": "taxi", "gate": {"metric": "auc", "slices": ["hour"]}}
    broken["ingest"] = {**good["ingest"], "max_file_mb": 0}
    (tmp_path / "bike_sharing.yaml").write_text(yaml.safe_dump(good))
    (tmp_path / "taxi.yaml").write_text(yaml.safe_dump(broken))
    monkeypatch.setenv("RETRAINER_SPECS_DIR", str(tmp_path))
    bag = DagBag(dag_folder=str(REPO / "dags"))
    assert set(bag.dag_ids) == set(DAG_IDS)
    ((where, error),) = bag.import_errors.items()
    assert where.endswith("dags/dataset_specs.py")
    assert "1 dataset spec(s) do not load" in error and f"{tmp_path / 'taxi.yaml'}:" in error
    assert "field 'gate.metric': 'auc' is not one of ['mae', 'rmse'] for regression" in error
    assert "field 'ingest': max_file_mb must be above 0" in error  # every error, not the first alone
    assert "bike_sharing.yaml" not in error


def test_the_params_default_to_a_spec_the_folder_holds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A specs folder of one team's specs: the Params default to its only spec, never to one it
    does not hold; RETRAINER_DEFAULT_DATASET chooses among several."""
    from retrainer_airflow.defaults import default_dataset, known_datasets

    monkeypatch.setenv("RETRAINER_SPECS_DIR", str(tmp_path))
    monkeypatch.delenv("RETRAINER_DEFAULT_DATASET", raising=False)
    bike = (REPO / "include" / "specs" / "bike_sharing.yaml").read_text()
    (tmp_path / "taxi.yaml").write_text(bike.replace("name: bike_sharing", "name: taxi"))
    assert default_dataset() == "taxi" and known_datasets() == ["taxi"]
    (tmp_path / "weather.yaml").write_text(bike.replace("name: bike_sharing", "name: weather"))
    assert default_dataset() == "taxi" and known_datasets() == ["taxi", "weather"]  # the first by name
    monkeypatch.setenv("RETRAINER_DEFAULT_DATASET", "weather")
    assert default_dataset() == "weather"
    monkeypatch.setenv("RETRAINER_DEFAULT_DATASET", "bike_sharing")  # not in this folder: not offered
    assert default_dataset() == "taxi" and known_datasets() == ["taxi", "weather"]


def test_the_docs_state_the_ranges_the_forms_allow(dagbag) -> None:  # type: ignore[no-untyped-def]
    """Every Param with a range that the README or a docs page states as `name` (low to high ...)
    states the range its form allows."""
    import re

    pages = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    text = "\n".join(p.read_text() for p in pages)
    checked = 0
    for dag in dagbag.dags.values():
        for name, p in dag.params.items():
            schema = p.schema
            if "minimum" not in schema or "maximum" not in schema:
                continue
            for low, high in re.findall(rf"`{name}` \((\d+) to (\d+)", text.replace("\n", " ")):
                assert (int(low), int(high)) == (schema["minimum"], schema["maximum"]), (dag.dag_id, name)
                checked += 1
    assert checked >= 2  # window and epochs are stated


def test_default_retries_are_on() -> None:
    """Outside the test session (which turns retries off to fail fast), tasks retry."""
    code = "from retrainer_airflow.defaults import DEFAULT_ARGS; print(DEFAULT_ARGS['retries'])"
    env = {k: v for k, v in os.environ.items() if k != "RETRAINER_TASK_RETRIES"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert int(out.stdout) >= 1


def test_new_data_versions_reach_the_drift_monitor(dagbag) -> None:  # type: ignore[no-untyped-def]
    from retrainer_airflow.assets import DATA_VERSIONS

    ingest, monitor = dagbag.dags["ingest_batch"], dagbag.dags["monitor_drift"]
    assert DATA_VERSIONS in ingest.get_task("publish").outlets
    assert "retrainer_data_versions" in str(monitor.timetable.asset_condition)
    assert monitor.timetable.timetable._expression == "0 6 * * *"  # and every morning
    trigger = monitor.get_task("trigger_retrain")
    assert trigger.trigger_dag_id == "retrain_model" and trigger.skip_when_already_exists
    # the in-flight check and the start are one task, one instance at a time over all runs
    assert trigger.max_active_tis_per_dag == 1
    # retrain_model: monthly for the month that ended (a data interval), or when asked, not on
    # every new data version
    retrain = dagbag.dags["retrain_model"].timetable
    assert "retrainer_retrain_requests" in str(retrain.asset_condition)
    assert "retrainer_data_versions" not in str(retrain.asset_condition)
    assert type(retrain.timetable).__name__ == "CronDataIntervalTimetable"
    assert retrain.timetable._expression == "0 0 1 * *"


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.name)
def test_no_heavy_imports_at_parse_time(path: Path) -> None:
    """Parsing a DAG file must not import TensorFlow, MLflow, GX, pandas, DVC, ..."""
    code = (
        "import json, runpy, sys\n"
        f"runpy.run_path({str(path)!r})\n"
        f"print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & set({list(HEAVY)!r}))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_no_variable_or_connection_lookup_at_parse_time() -> None:
    from airflow.dag_processing.dagbag import DagBag
    from airflow.sdk import BaseHook, Variable

    with (
        mock.patch.object(Variable, "get", side_effect=AssertionError("Variable.get at parse time")) as var,
        mock.patch.object(BaseHook, "get_connection", side_effect=AssertionError("connection at parse time")) as conn,
    ):
        bag = DagBag(dag_folder=str(REPO / "dags"))
    assert bag.import_errors == {}
    var.assert_not_called()
    conn.assert_not_called()


@pytest.mark.parametrize(
    ("dag_id", "key", "value"),
    [
        ("ingest_batch", "period", "2011-13"),
        ("retrain_model", "window", 0),
        ("retrain_model", "epochs", "many"),
        ("rollback_model", "version", "last"),
        ("rollback_model", "reason", ""),
    ],
)
def test_bad_params_are_refused_before_work(dagbag, dag_id: str, key: str, value: object) -> None:  # type: ignore[no-untyped-def]
    import copy

    from airflow.sdk.exceptions import ParamValidationError

    params = copy.deepcopy(dagbag.dags[dag_id].params)
    with pytest.raises(ParamValidationError, match=key):
        params[key] = value


def test_the_data_registry_has_one_writer_at_a_time(dagbag) -> None:  # type: ignore[no-untyped-def]
    from retrainer_airflow.defaults import POOLS, REGISTRY_POOL

    assert dagbag.dags["ingest_batch"].get_task("version_batch").pool == REGISTRY_POOL
    assert POOLS[REGISTRY_POOL][0] == 1
