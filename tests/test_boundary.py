"""The typed task boundary: a task declared once, its records read from XCom by its own types
(a wrong shape named by task, argument and field), domain outcomes mapped to task states, and
its result pushed as strict JSON."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import pytest
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from retrainer.outcomes import NothingToDo, Refused
from retrainer_airflow.tasks.boundary import call, encode, hints_of, record_task

if TYPE_CHECKING:  # as in the task modules: the names are resolved when a task runs
    from retrainer.records import DatasetCheck, LandingScan, TrainingPlan

PLAN = {
    "dataset": "bike_sharing",
    "model_name": "bike_demand",
    "data_version": "v0007",
    "data_tag": "bike_sharing/v0007",
    "data_rev": "abc",
    "train_periods": ["2011-01", "2011-02"],
    "holdout_periods": ["2011-03"],
    "window": 2,
}


def holdout_of(plan: TrainingPlan) -> list[str]:
    return plan.holdout_periods


def checks(params: DatasetCheck, scan: LandingScan | None) -> list[DatasetCheck]:
    return [params] if scan is None else []


def refuses(plan: TrainingPlan) -> None:
    raise Refused(f"{plan.data_tag}: the window failed validation")


def nothing(plan: TrainingPlan) -> None:
    raise NothingToDo("no period of bike_sharing ended in this run's interval")


def breaks(plan: TrainingPlan) -> None:
    raise ConnectionError("MLflow is away")


def test_the_types_are_read_from_the_records_when_the_task_runs() -> None:
    from retrainer.records import DatasetCheck, LandingScan, TrainingPlan

    assert hints_of(holdout_of) == {"plan": TrainingPlan, "return": list[str]}
    assert hints_of(checks)["scan"] == LandingScan | None and hints_of(checks)["params"] is DatasetCheck


def test_each_argument_is_read_as_its_record_and_the_result_is_strict_json() -> None:
    assert call(holdout_of, PLAN) == ["2011-03"]
    got = call(checks, scan=None, params={"dataset": "flights", "data_version": "v0002", "ignored": 1})
    assert got == [{"dataset": "flights", "data_version": "v0002"}]


def test_a_wrong_shape_fails_the_task_naming_task_argument_and_field() -> None:
    bad = {**PLAN, "train_periods": "2011-01"}
    with pytest.raises(AirflowFailException) as raised:
        call(holdout_of, bad)
    message = str(raised.value)
    assert message.startswith("holdout_of: argument 'plan' is not a TrainingPlan")
    assert message.endswith("plan.train_periods: expected a list, got str")
    missing = {k: v for k, v in PLAN.items() if k != "data_rev"}
    with pytest.raises(AirflowFailException, match="field 'data_rev' is missing"):
        call(holdout_of, missing)


def test_outcomes_become_task_states() -> None:
    with pytest.raises(AirflowFailException, match="bike_sharing/v0007: the window failed validation"):
        call(refuses, PLAN)
    with pytest.raises(AirflowSkipException, match="no period of bike_sharing ended"):
        call(nothing, PLAN)
    with pytest.raises(ConnectionError):  # any other error fails the try, and Airflow retries it
        call(breaks, PLAN)


def test_what_a_task_returns_goes_to_xcom_as_strict_json() -> None:
    from retrainer.records import UNREPRESENTABLE, IngestConf, SliceRow, StartIngest

    start = StartIngest("bike_sharing__2011-03__abc", IngestConf("bike_sharing", "2011-03", "/landing/b.csv"))
    assert encode([start]) == [
        {
            "trigger_run_id": "bike_sharing__2011-03__abc",
            "conf": {"dataset": "bike_sharing", "period": "2011-03", "batch": "/landing/b.csv"},
        }
    ]
    row = encode(SliceRow("season", "fall", 3, math.nan, None, None, False, False))
    assert row["candidate"] is None and UNREPRESENTABLE in row
    assert encode(None) is None and encode("version_batch") == "version_batch"


def test_a_declared_task_keeps_its_name_signature_and_arguments() -> None:
    from airflow.sdk import DAG

    declared = record_task(retries=0)(holdout_of)
    branching = record_task(branch=True)(holdout_of)
    with DAG("boundary_shape", schedule=None):
        op = declared({"from": "upstream"}).operator
        chooser = branching.override(task_id="choose")({"from": "upstream"}).operator
    assert op.task_id == "holdout_of" and op.retries == 0 and not op.multiple_outputs
    assert chooser.task_id == "choose" and type(chooser).__name__.startswith("_Branch")
    with DAG("boundary_binding", schedule=None), pytest.raises(TypeError):
        declared(1, 2)  # a task wired with the wrong arguments fails as its DAG file is parsed


def plan_of(plan: TrainingPlan) -> TrainingPlan:
    return plan


def test_a_task_that_returns_one_record_pushes_each_field_too() -> None:
    """The XCom tab of the Airflow UI lists a record's fields (the evaluation's report_uri, a
    link); downstream tasks read the whole record (return_value)."""
    from airflow.sdk import DAG

    with DAG("boundary_outputs", schedule=None):
        one = record_task(plan_of)(PLAN).operator
        many = record_task(checks)(scan=None).operator
        nothing_back = record_task(refuses)(PLAN).operator
        chooser = record_task(branch=True)(plan_of).override(task_id="choose")(PLAN).operator
    assert one.multiple_outputs and not many.multiple_outputs
    assert not nothing_back.multiple_outputs and not chooser.multiple_outputs
    assert call(plan_of, PLAN) == {**PLAN, "as_of": None, "backfill": False}
