"""The typed field readers every section of a spec uses: a value of the right kind, or a
``SpecError`` naming the file, the field and what was wrong."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from retrainer.spec.dataset import DatasetSpec
from retrainer.spec.fields import Fields, SpecError
from tests.helpers import bike_spec_data, write_spec

PATH = "specs/flights.yaml"


@pytest.fixture
def f() -> Fields:
    return Fields({"name": "flights", "count": 3, "target": {"column": "delay"}, "listed": [1]}, PATH)


def _refused(call: Any) -> SpecError:
    with pytest.raises(SpecError) as err:
        call()
    return err.value


def test_a_spec_error_names_file_field_and_problem() -> None:
    err = SpecError(Path("specs/a.yaml"), "training.epochs", "must be a number, got 'many'")
    assert (err.path, err.field, err.problem) == ("specs/a.yaml", "training.epochs", "must be a number, got 'many'")
    assert str(err) == "specs/a.yaml: field 'training.epochs': must be a number, got 'many'"
    assert isinstance(err, ValueError)
    assert str(Fields({}, PATH).error("gate", "why")) == f"{PATH}: field 'gate': why"


def test_a_string_is_read_from_the_top_level_unless_given(f: Fields) -> None:
    assert f.string("name") == "flights"
    assert f.string("target.column", "delay") == "delay"
    nested = _refused(lambda: f.string("target.column"))  # a nested field is never looked up at the top
    assert (nested.field, nested.problem) == ("target.column", "must be a non-empty string, got None")
    assert _refused(lambda: f.string("count")).problem == "must be a non-empty string, got 3"
    assert _refused(lambda: f.string("name", "")).problem == "must be a non-empty string, got ''"


def test_a_mapping_is_required_unless_said_otherwise(f: Fields) -> None:
    assert f.mapping("target") == {"column": "delay"}
    assert f.mapping("gate", required=False) == {}
    assert _refused(lambda: f.mapping("gate")).problem == "must be a mapping, got NoneType"
    assert _refused(lambda: f.mapping("listed", required=False)).problem == "must be a mapping, got list"


def test_a_choice_names_the_options(f: Fields) -> None:
    assert f.choice("ingest.format", "csv", ("auto", "csv")) == "csv"
    err = _refused(lambda: f.choice("ingest.format", "xlsx", ("auto", "csv")))
    assert (err.field, err.problem) == ("ingest.format", "must be one of ['auto', 'csv'], got 'xlsx'")


@pytest.mark.parametrize("value", [True, "3", None, [1]])
def test_a_number_is_a_number_and_never_a_boolean(f: Fields, value: Any) -> None:
    assert _refused(lambda: f.number("gate.baseline_margin", value)).problem == f"must be a number, got {value!r}"


def test_numbers_are_read_as_floats(f: Fields) -> None:
    assert f.number("x", 3) == 3.0 and isinstance(f.number("x", 3), float)
    assert f.optional_number("x", None) is None and f.optional_number("x", -2) == -2.0
    assert _refused(lambda: f.optional_number("features.temp.min", "cold")).field == "features.temp.min"


@pytest.mark.parametrize("value", [0, 2.0, True, "5"])
def test_an_integer_has_a_least_value(f: Fields, value: Any) -> None:
    assert f.integer("rows.min", 5, 1) == 5
    err = _refused(lambda: f.integer("rows.min", value, 1))
    assert err.problem == f"must be an integer of at least 1, got {value!r}"


def test_a_unit_is_a_share_unless_told_otherwise(f: Fields) -> None:
    assert f.unit("drift.drift_share", 0) == 0.0 and f.unit("drift.drift_share", 1) == 1.0
    assert _refused(lambda: f.unit("drift.drift_share", 1.5)).problem == "must be at most 1.0, got 1.5"
    assert _refused(lambda: f.unit("x", -0.1, None)).problem == "must be a non-negative number, got -0.1"
    assert _refused(lambda: f.unit("x", False)).problem == "must be a non-negative number, got False"
    assert f.unit("deploy.max_p99_ms", 250, None) == 250.0  # no upper bound


def test_a_flag_is_true_or_false(f: Fields) -> None:
    assert f.flag("deploy.canary", False) is False
    assert _refused(lambda: f.flag("deploy.canary", "yes")).problem == "must be true or false, got 'yes'"
    assert _refused(lambda: f.flag("deploy.canary", 1)).problem == "must be true or false, got 1"


def test_a_named_value_is_text_and_a_yaml_boolean_is_refused_with_how_to_write_it(f: Fields) -> None:
    assert f.text_value("target.positive", "Yes") == "Yes"
    assert f.text_value("features.hr.categories", 3) == "3"
    err = _refused(lambda: f.text_value("target.positive", False))
    assert err.problem.startswith("is read as the boolean false (YAML takes unquoted yes, no, on, off")
    assert 'quote it, e.g. "No"' in err.problem
    for odd in (None, {"a": 1}, ["a"]):
        assert _refused(lambda odd=odd: f.text_value("x", odd)).problem == f"must be a value, got {odd!r}"


@pytest.mark.parametrize("value", ["flight", ["flight", ""], ["flight", 3], None])
def test_column_names_are_a_list_of_names(f: Fields, value: Any) -> None:
    assert f.column_names("unique_by", ["flight", "timestamp"]) == ["flight", "timestamp"]
    assert _refused(lambda: f.column_names("unique_by", value)).problem == (
        f"must be a list of column names, got {value!r}"
    )


def test_an_unknown_key_is_refused_with_what_was_meant(f: Fields) -> None:
    f.known("gate", {"metric": "rmse"}, {"metric", "slices"})  # nothing unknown
    close = _refused(lambda: f.known("gate", {"metrik": "rmse"}, {"metric", "slices"}))
    assert close.field == "gate.metrik"
    assert close.problem == "unknown key; did you mean 'metric'? known: metric, slices"
    far = _refused(lambda: f.known("gate", {"colour": 1}, {"metric", "slices"}))
    assert far.problem == "unknown key; known: metric, slices"
    top = _refused(lambda: f.known("", {"trainig": {}}, {"training", "gate"}))
    assert top.field == "trainig" and "did you mean 'training'?" in top.problem


def test_a_typo_is_named_with_what_was_meant(tmp_path: Path) -> None:
    data = bike_spec_data()
    data["gate"]["baseline_margn"] = data["gate"].pop("baseline_margin")
    with pytest.raises(SpecError, match=r"field 'gate\.baseline_margn': unknown key; did you mean 'baseline_margin'\?"):
        DatasetSpec.load(write_spec(tmp_path, data))
