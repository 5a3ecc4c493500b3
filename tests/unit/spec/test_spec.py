from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from retrainer.spec.dataset import DatasetSpec
from retrainer.spec.fields import SpecError

REPO = Path(__file__).resolve().parents[3]


def _write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _valid() -> dict:
    return yaml.safe_load((REPO / "include" / "specs" / "bike_sharing.yaml").read_text())


def test_bike_spec_loads(bike_spec: DatasetSpec) -> None:
    assert bike_spec.target.column == "cnt"
    assert bike_spec.target.task == "regression"
    assert {f.name for f in bike_spec.categorical_features} >= {"season", "hr", "weathersit"}
    assert bike_spec.gate.metric == "rmse"
    assert not bike_spec.gate.higher_is_better


def test_missing_spec_file_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as err:
        DatasetSpec.load(tmp_path / "nope.yaml")
    assert "nope.yaml" in str(err.value)
    assert "does not exist" in str(err.value)


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda d: d["target"].update(task="ranking"), "target.task"),
        (lambda d: d["target"].pop("column"), "target.column"),
        (lambda d: d["features"]["temp"].update(type="float"), "features.temp.type"),
        (lambda d: d["features"]["season"].update(categories=[]), "features.season.categories"),
        (lambda d: d["features"]["hum"].update(min=200), "features.hum.min"),
        (lambda d: d["features"]["weekday"].update(max_null_rate=1.5), "features.weekday.max_null_rate"),
        (lambda d: d["gate"].update(metric="auc"), "gate.metric"),
        (lambda d: d["training"].update(learning_rat=0.1), "training.learning_rat"),
        (lambda d: d.pop("time_column"), "time_column"),
        (lambda d: d["training"].update(epochs="many"), "training.epochs"),
        (lambda d: d.update(drift={"features": {"nope": {"method": "ks"}}}), "drift.features.nope"),
        (lambda d: d.update(drift={"features": {"temp": {"method": "t-test"}}}), "drift.features.temp.method"),
        (lambda d: d.update(drift={"drift_share": 1.5}), "drift.drift_share"),
        (lambda d: d.update(drift={"cooldown": 3}), "drift.cooldown"),
        (lambda d: d["training"].update(hidden_units=[64, -1]), "training.hidden_units"),
        (lambda d: d.update(approval={"policy": "manual"}), "approval.policy"),
        (lambda d: d.update(approval={"timeout_hours": 0}), "approval.timeout_hours"),
        (lambda d: d.update(approval={"reviewers": ["a"]}), "approval.reviewers"),
        (lambda d: d.update(deploy={"canary": "yes"}), "deploy.canary"),
        (lambda d: d.update(deploy={"check_rows": 0}), "deploy.check_rows"),
        (lambda d: d.update(deploy={"max_p99_ms": -1}), "deploy.max_p99_ms"),
        # unknown keys anywhere are refused: a typo would otherwise fall back to a default
        (lambda d: d.update(trainig={"epochs": 3}), "trainig"),
        (lambda d: d["target"].update(positve="yes"), "target.positve"),
        (lambda d: d["target"].update(max_null_rate=1.0), "target.max_null_rate"),
        (lambda d: d["features"]["temp"].update(maximum=50), "features.temp.maximum"),
        (lambda d: d["gate"].update(baseline_margn=0.2), "gate.baseline_margn"),
        (lambda d: d["rows"].update(minimum=5), "rows.minimum"),
        (lambda d: d["rows"].update(min="many"), "rows.min"),
        (lambda d: d["rows"].update(max=10), "rows.max"),
        (lambda d: d["gate"].update(baseline_margin="a lot"), "gate.baseline_margin"),
        (lambda d: d["gate"].update(min_slice_rows=0), "gate.min_slice_rows"),
        (lambda d: d["features"]["season"].update(categories=["winter", None]), "features.season.categories"),
        # a numeric feature that may be missing says how the model fills it
        (lambda d: d["features"]["hum"].update(max_null_rate=0.1), "features.hum.impute"),
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
        (lambda d: d["training"].update(every="yearly"), "training.every"),
        (lambda d: d["training"].update(every="weekly"), "training.every"),  # monthly data, weekly retraining
    ],
)
def test_malformed_spec_names_file_and_field(tmp_path: Path, mutate, field: str) -> None:  # type: ignore[no-untyped-def]
    data = _valid()
    mutate(data)
    path = _write(tmp_path, data)
    with pytest.raises(SpecError) as err:
        DatasetSpec.load(path)
    assert err.value.field == field
    assert str(path) in str(err.value) and field in str(err.value)


def test_drift_section(tmp_path: Path) -> None:
    data = _valid()
    data["drift"] = {
        "drift_share": 0.3,
        "features": {"temp": {"method": "ks", "threshold": 0.01}},
        "weights": {"hr": 2},
    }
    spec = DatasetSpec.load(_write(tmp_path, data))
    assert spec.drift.drift_share == 0.3
    assert spec.drift.feature_test("temp").method == "ks" and spec.drift.feature_test("temp").threshold == 0.01
    assert spec.drift.feature_test("hum").method is None
    assert dict(spec.drift.weights) == {"hr": 2.0}


def test_classification_needs_positive_class(tmp_path: Path) -> None:
    data = _valid()
    data["target"] = {"column": "cnt", "task": "classification"}
    data["gate"] = {"metric": "log_loss"}
    with pytest.raises(SpecError, match=r"target\.positive"):
        DatasetSpec.load(_write(tmp_path, data))


def test_not_yaml(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("name: [unclosed")
    with pytest.raises(SpecError, match="not valid YAML"):
        DatasetSpec.load(path)


def test_approval_and_deploy_sections(bike_spec: DatasetSpec, tmp_path: Path) -> None:
    assert (bike_spec.approval.policy, bike_spec.approval.timeout_hours) == ("auto", 72)
    assert bike_spec.deploy.canary and bike_spec.deploy.check_rows == 64 and bike_spec.deploy.max_p99_ms == 250
    data = _valid()
    data["approval"] = {"policy": "review", "timeout_hours": 0.5}
    spec = DatasetSpec.load(_write(tmp_path, data))
    assert (spec.approval.policy, spec.approval.timeout_hours) == ("review", 0.5)


def test_a_typo_is_named_with_what_was_meant(tmp_path: Path) -> None:
    data = _valid()
    data["gate"]["baseline_margn"] = data["gate"].pop("baseline_margin")
    with pytest.raises(SpecError, match=r"field 'gate\.baseline_margn': unknown key; did you mean 'baseline_margin'\?"):
        DatasetSpec.load(_write(tmp_path, data))


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
    data = _valid()
    data["target"] = {"column": "cnt", "task": "classification", "positive": True}
    data["gate"] = {"metric": "log_loss"}
    with pytest.raises(SpecError, match=r"target\.positive.*boolean true"):
        DatasetSpec.load(_write(tmp_path, data))


def _multiclass(tmp_path: Path, target: dict, gate: dict | None = None) -> DatasetSpec:
    data = _valid()
    data["target"] = {"column": "weathersit", "task": "multiclass", **target}
    del data["features"]["weathersit"]
    data["gate"] = {"metric": "macro_f1"} if gate is None else gate
    return DatasetSpec.load(_write(tmp_path, data))


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
    data = _valid()
    data["target"]["classes"] = ["a", "b", "c"]
    with pytest.raises(SpecError, match=r"target\.classes.*for task: multiclass, not regression"):
        DatasetSpec.load(_write(tmp_path, data))


def test_categories_may_be_learned_with_a_cap(tmp_path: Path) -> None:
    data = _valid()
    data["features"]["weathersit"] = {"type": "categorical", "categories": "learn", "max_null_rate": 0.1}
    data["features"]["season"] = {"type": "categorical", "categories": "learn", "max_categories": 3}
    spec = DatasetSpec.load(_write(tmp_path, data))
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
    data = _valid()
    data["features"]["season"] = feature
    with pytest.raises(SpecError, match=says):
        DatasetSpec.load(_write(tmp_path, data))


@pytest.mark.parametrize(
    ("frequency", "every", "expected"),
    [
        ("monthly", None, "monthly"),
        ("weekly", None, "weekly"),
        ("daily", None, "daily"),
        ("hourly", None, "daily"),
        ("hourly", "hourly", "hourly"),
        ("daily", "monthly", "monthly"),
    ],
)
def test_retraining_follows_the_data_unless_the_spec_says(
    tmp_path: Path, frequency: str, every: str | None, expected: str
) -> None:
    """The spec's retrain_every, and the two-field reader the DAG file uses for its timetable, agree."""
    from retrainer.spec.cadence import cadences

    data = _valid()
    data["frequency"] = frequency
    if every:
        data["training"]["every"] = every
    assert DatasetSpec.load(_write(tmp_path, data)).retrain_every == expected
    assert cadences(tmp_path) == {"spec": expected}


@pytest.mark.parametrize(
    "text",
    ["name: [", "frequency: fortnightly\n", "training: {every: yearly}\n", "training: [daily]\n", "- a list\n"],
)
def test_a_spec_whose_cadence_does_not_read_is_left_out_of_the_timetable(tmp_path: Path, text: str) -> None:
    from retrainer.spec.cadence import cadences

    (tmp_path / "odd.yaml").write_text(text)
    (tmp_path / "fine.yaml").write_text("frequency: weekly\n")
    assert cadences(tmp_path) == {"fine": "weekly"}


@pytest.mark.parametrize(
    ("ingest", "policy"),
    [
        ({}, "reject"),
        ({"extra_columns": "drop"}, "drop"),
        ({"unexpected_columns": "refuse"}, "reject"),
        ({"unexpected_columns": "keep"}, "keep"),
    ],
)
def test_extra_columns_policy_and_its_older_name(tmp_path: Path, ingest: dict, policy: str) -> None:
    data = _valid()
    data["ingest"] = {k: v for k, v in data.get("ingest", {}).items() if k not in {"unexpected_columns"}} | ingest
    assert DatasetSpec.load(_write(tmp_path, data)).ingest.extra_columns == policy
