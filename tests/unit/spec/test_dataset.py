"""``DatasetSpec``: a whole spec read from its file, the top-level keys, and the specs of a folder
(each section's own rules are in the test module of its reader)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from retrainer.spec.dataset import DatasetSpec, retraining_periods, spec_errors
from retrainer.spec.fields import SpecError
from tests.helpers import assert_refused_naming_file_and_field, bike_spec_data, write_spec


def test_bike_spec_loads(bike_spec: DatasetSpec) -> None:
    assert bike_spec.target.column == "cnt"
    assert bike_spec.target.task == "regression"
    assert {f.name for f in bike_spec.categorical_features} >= {"season", "hr", "weathersit"}
    assert bike_spec.gate.metric == "rmse"
    assert not bike_spec.gate.higher_is_better


def test_the_spec_knows_its_file_and_its_features(bike_spec: DatasetSpec) -> None:
    assert bike_spec.source_path.endswith("include/specs/bike_sharing.yaml")
    assert (bike_spec.name, bike_spec.model_name, bike_spec.frequency) == ("bike_sharing", "bike_demand", "monthly")
    assert (bike_spec.min_rows, bike_spec.max_rows) == (600, 744)
    assert bike_spec.feature_names[:3] == ("season", "hr", "holiday")  # in the file's order
    assert {f.name for f in bike_spec.numeric_features} == {"temp", "atemp", "hum", "windspeed"}
    assert len(bike_spec.numeric_features) + len(bike_spec.categorical_features) == len(bike_spec.features)
    assert bike_spec.unique_by == ("timestamp",)  # the time column, unless the spec says otherwise


def test_missing_spec_file_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as err:
        DatasetSpec.load(tmp_path / "nope.yaml")
    assert "nope.yaml" in str(err.value)
    assert "does not exist" in str(err.value)


def test_not_yaml(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("name: [unclosed")
    with pytest.raises(SpecError, match="not valid YAML"):
        DatasetSpec.load(path)


@pytest.mark.parametrize("text", ["- a\n- list\n", "just text\n", ""])
def test_a_file_that_is_not_a_mapping_is_refused(tmp_path: Path, text: str) -> None:
    path = tmp_path / "odd.yaml"
    path.write_text(text)
    with pytest.raises(SpecError, match="top level must be a mapping") as err:
        DatasetSpec.load(path)
    assert (err.value.field, err.value.path) == ("<file>", str(path))


def test_defaults_of_the_top_level(tmp_path: Path) -> None:
    data = bike_spec_data()
    for key in ("model_name", "description", "frequency", "rows"):
        data.pop(key)
    spec = DatasetSpec.load(write_spec(tmp_path, data))
    assert spec.model_name == "bike_sharing_model" and spec.description == ""
    assert spec.frequency == "monthly" and (spec.min_rows, spec.max_rows) == (1, None)


def test_from_dict_names_where_the_spec_came_from() -> None:
    spec = DatasetSpec.from_dict(bike_spec_data())
    assert spec.source_path == "<spec>"
    data = bike_spec_data()
    del data["name"]
    with pytest.raises(SpecError, match=r"^flights\.yaml: field 'name': must be a non-empty string, got None"):
        DatasetSpec.from_dict(data, "flights.yaml")


@pytest.mark.parametrize("column", ["timestamp", "cnt"])
def test_the_time_column_and_the_target_are_no_features(tmp_path: Path, column: str) -> None:
    data = bike_spec_data()
    data["features"][column] = {"type": "numeric"}
    with pytest.raises(SpecError, match="must not contain the time column or the target") as err:
        DatasetSpec.load(write_spec(tmp_path, data))
    assert err.value.field == "features"


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda d: d.pop("time_column"), "time_column"),
        (lambda d: d.update(name=""), "name"),
        (lambda d: d.update(frequency="yearly"), "frequency"),
        (lambda d: d.update(target=["cnt"]), "target"),
        (lambda d: d.pop("features"), "features"),
        # unknown keys anywhere are refused: a typo would otherwise fall back to a default
        (lambda d: d.update(trainig={"epochs": 3}), "trainig"),
        (lambda d: d["training"].update(every="yearly"), "training.every"),
        (lambda d: d["training"].update(every="weekly"), "training.every"),  # monthly data, weekly retraining
    ],
)
def test_malformed_spec_names_file_and_field(tmp_path: Path, mutate, field: str) -> None:  # type: ignore[no-untyped-def]
    assert_refused_naming_file_and_field(tmp_path, mutate, field)


def test_retraining_more_often_than_the_data_arrives_is_refused_saying_why(tmp_path: Path) -> None:
    data = bike_spec_data()
    data["training"]["every"] = "daily"
    with pytest.raises(SpecError, match=r"daily retraining of monthly data would find no new period most times"):
        DatasetSpec.load(write_spec(tmp_path, data))


def test_the_specs_of_a_folder_that_load_are_retrained_on_schedule(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = bike_spec_data()
    data["frequency"] = "daily"
    write_spec(tmp_path, data, "daily_bikes")
    write_spec(tmp_path, bike_spec_data(), "bike_sharing")
    broken = bike_spec_data()
    broken["gate"]["metric"] = "auc"  # a cadence that reads, a spec that does not load
    write_spec(tmp_path, broken, "broken")
    (tmp_path / "notes.txt").write_text("not a spec")
    with caplog.at_level(logging.ERROR, logger="retrainer.spec.dataset"):
        assert retraining_periods(tmp_path) == {"bike_sharing": "monthly", "daily_bikes": "daily"}
    assert "not retrained on schedule" in caplog.text and "broken.yaml" in caplog.text and "gate.metric" in caplog.text


def test_every_error_of_a_spec_is_reported_not_the_first_alone(tmp_path: Path) -> None:
    data = bike_spec_data()
    data["gate"]["metric"] = "auc"
    data["ingest"]["max_file_mb"] = 0
    data["deploy"]["canary"] = "sometimes"
    data["drift"]["drift_shar"] = 0.5
    path = write_spec(tmp_path, data, "bike_sharing")
    errors = {(e.field, e.problem.split(":")[0]) for e in spec_errors(path)}
    assert {field for field, _ in errors} == {"gate.metric", "ingest", "deploy.canary", "drift.drift_shar"}
    assert all(str(e).startswith(f"{path}: field ") for e in spec_errors(path))


def test_a_spec_that_loads_has_no_errors_unless_its_file_is_misnamed(tmp_path: Path) -> None:
    assert spec_errors(write_spec(tmp_path, bike_spec_data(), "bike_sharing")) == []
    (misnamed,) = spec_errors(write_spec(tmp_path, bike_spec_data(), "bikes"))
    assert misnamed.field == "name" and "'bike_sharing' is not the file's name 'bikes'" in misnamed.problem


def test_a_file_that_is_no_spec_reports_that_alone(tmp_path: Path) -> None:
    (tmp_path / "x.yaml").write_text("name: x\nname: y\n")
    (twice,) = spec_errors(tmp_path / "x.yaml")
    assert twice.field == "name" and twice.problem == "given twice (lines 1 and 2): give it once"
    (missing,) = spec_errors(tmp_path / "nope.yaml")
    assert missing.problem == "spec file does not exist"
