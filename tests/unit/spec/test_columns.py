"""The spec's columns: the target and its task, the features (types, ranges, categories, missing
values), the key no two rows share and how timestamps are spelled."""

from __future__ import annotations

from pathlib import Path

import pytest

from retrainer.spec.columns import (
    DEFAULT_MAX_MEAN_CHANGE,
    TARGET_CHECKS,
    Feature,
    read_features,
    read_target,
    read_time_format,
    read_unique_by,
)
from retrainer.spec.dataset import DatasetSpec
from retrainer.spec.fields import Fields, SpecError
from tests.helpers import REPO, assert_refused_naming_file_and_field, bike_spec_data, write_spec


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda d: d["target"].update(task="ranking"), "target.task"),
        (lambda d: d["target"].pop("column"), "target.column"),
        (lambda d: d["features"]["temp"].update(type="float"), "features.temp.type"),
        (lambda d: d["features"]["season"].update(categories=[]), "features.season.categories"),
        (lambda d: d["features"]["hum"].update(min=200), "features.hum.min"),
        (lambda d: d["features"]["weekday"].update(max_null_rate=1.5), "features.weekday.max_null_rate"),
        (lambda d: d["target"].update(positve="yes"), "target.positve"),
        (lambda d: d["target"].update(max_null_rate=1.0), "target.max_null_rate"),
        (lambda d: d["features"]["temp"].update(maximum=50), "features.temp.maximum"),
        (lambda d: d["features"]["season"].update(categories=["winter", None]), "features.season.categories"),
        # a numeric feature that may be missing says how the model fills it
        (lambda d: d["features"]["hum"].update(max_null_rate=0.1), "features.hum.impute"),
        (lambda d: d["features"]["hum"].update(checks={"unit_chnge": False}), "features.hum.checks.unit_chnge"),
        (lambda d: d["features"]["hum"].update(checks={"unit_change": "no"}), "features.hum.checks.unit_change"),
        (lambda d: d["features"]["hum"].update(checks=["unit_change"]), "features.hum.checks"),
        (lambda d: d["features"]["hum"].update(max_scale_change=1), "features.hum.max_scale_change"),
        (lambda d: d["features"]["season"].update(max_scale_change=20), "features.season.max_scale_change"),
        (lambda d: d["features"]["hum"].update(max_null_rate=0.1, impute="zero"), "features.hum.impute"),
        (lambda d: d["features"]["hum"].update(max_null_rate=0.1, impute="constant"), "features.hum.fill_value"),
        (lambda d: d["features"]["hum"].update(impute="mean", fill_value=3), "features.hum.fill_value"),
        (lambda d: d["features"]["season"].update(impute="mean"), "features.season.impute"),
        (lambda d: d["features"]["temp"].update(max_unseen_rate=0.1), "features.temp.max_unseen_rate"),
        (lambda d: d.update(unique_by=["timestamp", "flight"]), "unique_by"),
        (lambda d: d.update(unique_by={"timestamp": 1}), "unique_by"),
        (lambda d: d.update(time_format="%H:%M"), "time_format"),
        (lambda d: d.update(time_format="%Y-%m"), "time_format"),
        (lambda d: d.update(time_format=42), "time_format"),
        (lambda d: d["features"]["season"].update(max_unseen_rate=2), "features.season.max_unseen_rate"),
        (lambda d: d["features"]["season"].update(categories=["winter", "winter"]), "features.season.categories"),
        (lambda d: d["features"].update(temp=[-15, 45]), "features.temp"),
        (lambda d: d.update(features={}), "features"),
        (lambda d: d.update(unique_by=["timestamp", "timestamp"]), "unique_by"),
        (lambda d: d["target"].update(checks={"target_distributon": False}), "target.checks.target_distributon"),
        (lambda d: d["target"].update(checks={"constant_feature": False}), "target.checks.constant_feature"),
        (lambda d: d["target"].update(checks={"unit_change": "off"}), "target.checks.unit_change"),
        (lambda d: d["target"].update(checks=["unit_change"]), "target.checks"),
        (lambda d: d["target"].update(max_mean_change=1), "target.max_mean_change"),
        (lambda d: d["target"].update(max_mean_change="10x"), "target.max_mean_change"),
        (
            lambda d: d["features"]["hum"].update(checks={"target_distribution": False}),
            "features.hum.checks.target_distribution",
        ),
    ],
)
def test_malformed_spec_names_file_and_field(tmp_path: Path, mutate, field: str) -> None:  # type: ignore[no-untyped-def]
    assert_refused_naming_file_and_field(tmp_path, mutate, field)


def test_classification_needs_positive_class(tmp_path: Path) -> None:
    data = bike_spec_data()
    data["target"] = {"column": "cnt", "task": "classification"}
    data["gate"] = {"metric": "log_loss"}
    with pytest.raises(SpecError, match=r"target\.positive"):
        DatasetSpec.load(write_spec(tmp_path, data))


def test_yaml_booleans_are_refused_where_a_value_is_named(tmp_path: Path) -> None:
    """Unquoted No/Yes (and on/off/true/false) are booleans in YAML 1.1: a category or a class
    written so is refused with how to write it, never turned into 'False'/'True'."""
    text = (REPO / "include" / "specs" / "bike_sharing.yaml").read_text()
    path = tmp_path / "spec.yaml"
    path.write_text(
        text.replace(
            'holiday:    {type: categorical, categories: ["No", "Yes"]}',
            "holiday:    {type: categorical, categories: [No, Yes]}",
        )
    )
    with pytest.raises(SpecError, match=r"features\.holiday\.categories.*boolean false.*quote it"):
        DatasetSpec.load(path)
    data = bike_spec_data()
    data["target"] = {"column": "cnt", "task": "classification", "positive": True}
    data["gate"] = {"metric": "log_loss"}
    with pytest.raises(SpecError, match=r"target\.positive.*boolean true"):
        DatasetSpec.load(write_spec(tmp_path, data))


def _multiclass(tmp_path: Path, target: dict, gate: dict | None = None) -> DatasetSpec:
    data = bike_spec_data()
    data["target"] = {"column": "weathersit", "task": "multiclass", **target}
    del data["features"]["weathersit"]
    del data["relations"]  # cnt, in the bike spec's sum, is no column here
    data["gate"] = {"metric": "macro_f1"} if gate is None else gate
    return DatasetSpec.load(write_spec(tmp_path, data))


def test_a_multiclass_target_lists_its_classes(tmp_path: Path) -> None:
    spec = _multiclass(tmp_path, {"classes": ["Clear", "Mist", "Light Rain", "Heavy Rain"]})
    assert spec.target.classes == ("Clear", "Mist", "Light Rain", "Heavy Rain")
    assert spec.gate.metric == "macro_f1" and spec.gate.higher_is_better
    assert _multiclass(tmp_path, {"classes": [0, 1, 2]}, {}).gate.metric == "log_loss"  # the default
    assert _multiclass(tmp_path, {"classes": [0, 1, 2]}, {}).target.classes == ("0", "1", "2")


@pytest.mark.parametrize(
    ("target", "gate", "says"),
    [
        ({}, None, "multiclass needs the list of classes"),
        ({"classes": ["a", "b"]}, None, "3 classes or more, got 2 .*task: classification"),
        ({"classes": ["a", "b", "a"]}, None, "lists a class twice"),
        ({"classes": ["a", "b", "c"], "positive": "a"}, None, "target.positive.*for task: classification"),
        ({"classes": ["a", "b", "c"]}, {"metric": "auc"}, "'auc' is not one of .*macro_f1.* for multiclass"),
        ({"classes": ["a", "No", "c"]}, None, None),
    ],
)
def test_a_multiclass_target_is_refused_saying_why(
    tmp_path: Path, target: dict, gate: dict | None, says: str | None
) -> None:
    if says is None:  # a quoted "No" is a class; the YAML boolean is refused below
        _multiclass(tmp_path, target, gate)
        (tmp_path / "spec.yaml").write_text((tmp_path / "spec.yaml").read_text().replace("'No'", "No"))
        with pytest.raises(SpecError, match="is read as the boolean false"):
            DatasetSpec.load(tmp_path / "spec.yaml")
        return
    with pytest.raises(SpecError, match=says):
        _multiclass(tmp_path, target, gate)


def test_classes_belong_to_multiclass_only(tmp_path: Path) -> None:
    data = bike_spec_data()
    data["target"]["classes"] = ["a", "b", "c"]
    with pytest.raises(SpecError, match=r"target\.classes.*for task: multiclass, not regression"):
        DatasetSpec.load(write_spec(tmp_path, data))


def test_categories_may_be_learned_with_a_cap(tmp_path: Path) -> None:
    data = bike_spec_data()
    data["features"]["weathersit"] = {"type": "categorical", "categories": "learn", "max_null_rate": 0.1}
    data["features"]["season"] = {"type": "categorical", "categories": "learn", "max_categories": 3}
    spec = DatasetSpec.load(write_spec(tmp_path, data))
    weather, season = (next(f for f in spec.features if f.name == n) for n in ("weathersit", "season"))
    assert weather.learn_categories and weather.max_categories == 100 and weather.categories == ()
    assert season.max_categories == 3


@pytest.mark.parametrize(
    ("feature", "says"),
    [
        ({"type": "categorical", "categories": "lern"}, "a non-empty list, or 'learn'"),
        ({"type": "categorical", "categories": "learn", "max_categories": 0}, "max_categories.*at least 1"),
        ({"type": "categorical", "categories": ["a"], "max_categories": 5}, r"caps learned categories"),
        ({"type": "categorical", "categories": "learn", "max_unseen_rate": 0.1}, "with listed categories"),
    ],
)
def test_learned_categories_are_refused_saying_why(tmp_path: Path, feature: dict, says: str) -> None:
    data = bike_spec_data()
    data["features"]["season"] = feature
    with pytest.raises(SpecError, match=says):
        DatasetSpec.load(write_spec(tmp_path, data))


F = Fields({}, "flights.yaml")


def test_a_target_reads_into_its_record() -> None:
    target = read_target(F, {"column": "delayed", "task": "classification", "positive": 1, "max_null_rate": 0.2})
    assert (target.column, target.task, target.positive, target.max_null_rate) == (
        "delayed",
        "classification",
        "1",
        0.2,
    )
    assert target.classes == () and (target.min, target.max) == (None, None)
    bounded = read_target(F, {"column": "delay", "task": "regression", "min": -60, "max": 600})
    assert (bounded.min, bounded.max) == (-60.0, 600.0) and bounded.positive is None


def test_features_read_in_order_with_their_rules() -> None:
    features = read_features(
        F,
        {
            "distance": {"type": "numeric", "min": 0, "max_null_rate": 0.05, "impute": "constant", "fill_value": -1},
            "carrier": {"type": "categorical", "categories": ["AA", 9], "max_unseen_rate": 0.01},
            "origin": {"type": "categorical", "categories": "learn", "max_categories": 50},
        },
    )
    assert [f.name for f in features] == ["distance", "carrier", "origin"]
    distance, carrier, origin = features
    assert distance == Feature(
        "distance", "numeric", min=0.0, max_null_rate=0.05, impute="constant", fill_value=-1.0, max_categories=0
    )
    assert carrier.categories == ("AA", "9") and carrier.max_unseen_rate == 0.01 and not carrier.learn_categories
    assert origin.learn_categories and origin.max_categories == 50 and origin.categories == ()
    assert read_features(F, {"x": {"type": "numeric", "max_null_rate": 0.5, "impute": "median"}})[0].fill_value is None


def test_the_row_key_is_a_list_of_known_columns() -> None:
    columns = {"timestamp", "flight", "delay"}
    assert read_unique_by(F, "timestamp", columns) == ("timestamp",)  # one name is a key of one column
    assert read_unique_by(F, ["timestamp", "flight"], columns) == ("timestamp", "flight")
    assert read_unique_by(F, [], columns) == ()  # rows need not be unique
    with pytest.raises(SpecError, match=r"\['gate'\] are not columns of this spec .*ingest\.other_columns"):
        read_unique_by(F, ["timestamp", "gate"], columns)


def test_a_time_format_must_read_back_a_whole_date() -> None:
    assert read_time_format(F, None) is None
    assert read_time_format(F, "%d/%m/%Y %H:%M") == "%d/%m/%Y %H:%M"
    assert read_time_format(F, "%Y%m%d") == "%Y%m%d"
    with pytest.raises(SpecError, match=r"'%m/%d' does not spell a date that reads back") as err:
        read_time_format(F, "%m/%d")  # no year: a different date comes back
    assert err.value.field == "time_format" and err.value.path == "flights.yaml"


def test_the_target_tunes_its_own_checks() -> None:
    """``target.checks`` and ``target.max_mean_change``: the target's plausibility against the
    versioned data, switched for the target alone (else by ``ingest.checks``)."""
    target = read_target(F, {"column": "cnt", "task": "regression"})
    assert target.checks == () and target.max_mean_change == DEFAULT_MAX_MEAN_CHANGE == 10
    tuned = read_target(
        F, {"column": "cnt", "task": "regression", "checks": {"target_distribution": False}, "max_mean_change": 4}
    )
    assert tuned.checks == (("target_distribution", False),) and tuned.max_mean_change == 4
    assert TARGET_CHECKS == ("target_distribution", "unit_change")
    with pytest.raises(SpecError, match=r"must be above 1, got 0\.5") as err:
        read_target(F, {"column": "cnt", "task": "regression", "max_mean_change": 0.5})
    assert err.value.field == "target.max_mean_change"
    with pytest.raises(SpecError, match="is for task: regression, not classification"):
        read_target(F, {"column": "y", "task": "classification", "positive": "yes", "max_mean_change": 3})
    with pytest.raises(SpecError, match=r"must be a mapping of target_distribution, unit_change to true or false"):
        read_target(F, {"column": "cnt", "task": "regression", "checks": "off"})


def test_a_feature_tunes_its_own_ingest_checks() -> None:
    """``features.<column>.checks`` and ``max_scale_change`` override ``ingest`` for that feature alone."""
    spec = bike_spec_data()
    spec["features"]["windspeed"].update(checks={"constant_feature": False}, max_scale_change=30)
    spec["ingest"]["checks"] = {"unit_change": False}
    loaded = DatasetSpec.from_dict(spec)
    wind, temp = (next(f for f in loaded.features if f.name == n) for n in ("windspeed", "temp"))
    assert wind.checks == (("constant_feature", False),) and wind.max_scale_change == 30
    assert not loaded.ingest.checks_on("constant_feature", wind) and loaded.ingest.checks_on("constant_feature", temp)
    assert not loaded.ingest.checks_on("unit_change", wind) and not loaded.ingest.checks_on("unit_change")
    assert loaded.ingest.scale_limit(wind) == 30 and loaded.ingest.scale_limit(temp) == 10
