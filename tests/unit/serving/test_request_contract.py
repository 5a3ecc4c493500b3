"""The request contract: what a prediction request may hold, written from the spec next to each
deployed version and checked before the model sees a row, every problem named by row, field and
rule (through the model server: tests/unit/serving/test_rest.py)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from retrainer.serving import request_contract
from retrainer.serving.request_contract import CONTRACT_FILE, MAX_PROBLEMS, check, from_spec
from retrainer.spec.columns import Feature
from retrainer.spec.dataset import DatasetSpec

CONTRACT = {
    "dataset": "flights",
    "model": "delays",
    "features": [
        {"name": "distance", "type": "numeric", "nullable": False, "min": 0, "max": 5000},
        {"name": "wind", "type": "numeric", "nullable": True, "min": None, "max": None},
        {
            "name": "carrier",
            "type": "categorical",
            "nullable": False,
            "categories": ["AA", "DL", "7"],
            "unseen": "refuse",
        },
        {"name": "origin", "type": "categorical", "nullable": True, "categories": ["JFK"], "unseen": "allow"},
        {"name": "gate", "type": "categorical", "nullable": False, "categories": None, "unseen": "allow"},
    ],
}
ROWS = ["instance 0", "instance 1", "instance 2"]


def _one(**values: Any) -> dict[str, list[Any]]:
    row = {"distance": 100, "wind": 3.5, "carrier": "AA", "origin": "JFK", "gate": "B7"} | values
    return {k: [v] for k, v in row.items()}


def test_the_contract_of_a_spec_lists_each_feature_with_its_rules(bike_spec: DatasetSpec) -> None:
    contract = from_spec(bike_spec)
    assert (contract["dataset"], contract["model"]) == ("bike_sharing", "bike_demand")
    by_name = {f["name"]: f for f in contract["features"]}
    assert list(by_name) == list(bike_spec.feature_names)
    assert by_name["temp"] == {"name": "temp", "type": "numeric", "nullable": False, "min": -15.0, "max": 45.0}
    assert by_name["weekday"]["nullable"] and by_name["weekday"]["unseen"] == "refuse"
    assert by_name["season"]["categories"] == ["winter", "spring", "summer", "fall"]
    assert contract["target"] == {"column": "cnt", "task": "regression"}
    assert request_contract.classes(contract) is None
    json.dumps(contract)  # written as JSON


def test_the_contract_names_the_classes_a_prediction_is_about(bike_spec: DatasetSpec) -> None:
    """A multiclass version's answers name their classes, in the order of the probabilities; a
    binary one's single probability is the positive class's."""
    from retrainer.spec.columns import Target

    multi = from_spec(replace(bike_spec, target=Target("delay", "multiclass", classes=("on_time", "late", "lost"))))
    assert multi["target"] == {"column": "delay", "task": "multiclass", "classes": ["on_time", "late", "lost"]}
    assert request_contract.classes(multi) == ["on_time", "late", "lost"]
    binary = from_spec(replace(bike_spec, target=Target("churned", "classification", positive="yes")))
    assert binary["target"] == {"column": "churned", "task": "classification", "positive": "yes"}
    assert request_contract.classes(binary) is None and request_contract.classes(CONTRACT) is None  # an older one


def test_learned_or_tolerated_categories_let_unseen_values_through(bike_spec: DatasetSpec) -> None:
    learned = Feature("origin", "categorical", learn_categories=True, max_categories=5)
    tolerant = Feature("season", "categorical", categories=("winter", "summer"), max_unseen_rate=0.01)
    contract = from_spec(replace(bike_spec, features=(learned, tolerant)))
    assert contract["features"] == [
        {"name": "origin", "type": "categorical", "nullable": False, "categories": None, "unseen": "allow"},
        {
            "name": "season",
            "type": "categorical",
            "nullable": False,
            "categories": ["winter", "summer"],
            "unseen": "allow",
        },
    ]


def test_the_contract_is_written_beside_the_saved_model_and_read_back(bike_spec: DatasetSpec, tmp_path: Path) -> None:
    path = request_contract.write(bike_spec, tmp_path / "1")
    assert path == tmp_path / "1" / CONTRACT_FILE and path.parent.name == "assets.extra"
    assert request_contract.read(tmp_path / "1") == from_spec(bike_spec)
    assert request_contract.read(tmp_path / "2") is None  # deployed before contracts: nothing to check


def test_a_request_within_the_contract_passes_as_the_model_takes_it() -> None:
    out = check(CONTRACT, _one(carrier=7, wind=None, origin="LGA"), [], ["instance 0"])
    assert out.problems == []
    assert out.columns["carrier"] == ["7"]  # a category sent as the number that names it becomes its text
    assert out.columns["wind"] == [None] and out.columns["distance"] == [100]
    assert out.warnings == ["instance 0, field 'origin': \"LGA\" is not a listed category (the unseen-value slot)"]
    assert check(CONTRACT, _one(gate="anything"), [], ["instance 0"]).warnings == []  # a learned vocabulary


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"distance": None}, "field 'distance': null, and the spec allows no missing distance"),
        ({"distance": "far"}, "field 'distance': \"far\" is text, not a number"),
        ({"distance": True}, "field 'distance': true is true/false, not a number"),
        ({"distance": float("nan")}, "field 'distance': nan is not a finite number"),
        ({"distance": -1}, "field 'distance': -1 is below the spec's min 0"),
        ({"distance": 5000.5}, "field 'distance': 5000.5 is above the spec's max 5000"),
        ({"carrier": "UA"}, "field 'carrier': \"UA\" is not a category of carrier (AA, DL, 7)"),
        ({"carrier": 8}, "field 'carrier': 8 is an integer, the model takes text (one of AA, DL, 7)"),
        ({"carrier": ["AA"]}, "field 'carrier': [\"AA\"] is a list, the model takes text (one of AA, DL, 7)"),
        ({"gate": {"id": 3}}, "field 'gate': {\"id\": 3} is an object, the model takes text"),
    ],
)
def test_each_broken_rule_is_named_by_row_and_field(change: dict[str, Any], says: str) -> None:
    out = check(CONTRACT, _one(**change), [], ["inputs[0]"])
    assert out.problems == [f"inputs[0], {says}"] and out.warnings == []


def test_fields_the_model_has_no_input_for_are_refused() -> None:
    out = check(CONTRACT, _one(), ["colour", "size"], ["instance 0"])
    assert out.problems == [
        "field 'colour' is not an input of this model (its inputs: distance, wind, carrier, origin, gate)",
        "field 'size' is not an input of this model (its inputs: distance, wind, carrier, origin, gate)",
    ]


def test_out_of_range_may_be_a_warning_but_a_wrong_type_never() -> None:
    cols = {"distance": [9999, "far"]}
    out = check(CONTRACT, cols, [], ROWS[:2], out_of_range="warn")
    assert out.problems == ["instance 1, field 'distance': \"far\" is text, not a number"]
    assert out.warnings == ["instance 0, field 'distance': 9999 is above the spec's max 5000"]
    assert out.columns == {"distance": [9999, "far"]}


def test_many_problems_are_listed_up_to_a_limit_with_the_rest_counted() -> None:
    def refused(n: int) -> list[str]:
        return check(CONTRACT, {"carrier": ["UA"] * n}, [], [f"instance {i}" for i in range(n)]).problems

    assert len(refused(MAX_PROBLEMS)) == MAX_PROBLEMS  # all of them, up to the limit
    one_more = refused(MAX_PROBLEMS + 1)
    assert len(one_more) == MAX_PROBLEMS + 1 and one_more[-1] == "and 1 more"
    assert one_more[0].startswith("instance 0, field 'carrier'") and one_more[-2].startswith(
        f"instance {MAX_PROBLEMS - 1},"
    )
    assert refused(MAX_PROBLEMS + 30)[-1] == "and 30 more"


def test_a_long_value_is_shown_cut_short() -> None:
    out = check(CONTRACT, {"carrier": ["X" * 500]}, [], ["instance 0"])
    (problem,) = out.problems
    assert '"XXXX' in problem and "..." in problem and len(problem) < 200


def test_a_field_the_request_leaves_out_is_not_checked_here() -> None:
    """Missing inputs are the server's to refuse (it names them); the contract checks what came."""
    out = check(CONTRACT, {"distance": [1]}, [], ["instance 0"])
    assert out.problems == [] and list(out.columns) == ["distance"]
