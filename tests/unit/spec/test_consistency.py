"""The spec's ``coverage`` and ``relations``: read into records, every malformed entry refused
naming the field (and, for a relation, the entry)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from retrainer.spec.columns import Feature, Target
from retrainer.spec.consistency import (
    CoverageConfig,
    Derived,
    Order,
    Sum,
    read_coverage,
    read_relations,
    spelled,
)
from retrainer.spec.dataset import DatasetSpec, spec_errors
from retrainer.spec.fields import Fields, SpecError
from tests.helpers import assert_refused_naming_file_and_field, bike_spec_data, write_spec

F = Fields({}, "rides.yaml")
TARGET = Target(column="cnt", task="regression")
FEATURES = (
    Feature("hr", "categorical", categories=("1am",)),
    Feature("temp", "numeric"),
    Feature("temp_min", "numeric"),
    Feature("temp_max", "numeric"),
    Feature("my-col", "numeric"),
)
OTHER = ("casual", "registered")


def relations(*entries: object) -> tuple[object, ...]:
    return read_relations(F, list(entries), "timestamp", TARGET, FEATURES, OTHER)


def test_coverage_reads_durations_and_defaults() -> None:
    assert read_coverage(F, {}, "monthly") is None
    assert read_coverage(F, {"step": "1h"}, "monthly") == CoverageConfig(timedelta(hours=1), 1.0)
    both = read_coverage(F, {"step": "15min", "min_share": 0.9, "max_gap": "2d"}, "daily")
    assert both == CoverageConfig(timedelta(minutes=15), 0.9, timedelta(days=2))
    # a gap or a count to judge by: the share is judged only when given
    assert read_coverage(F, {"step": "1D", "min_steps": 20}, "monthly") == CoverageConfig(
        timedelta(days=1), 0.0, None, 20
    )
    assert read_coverage(F, {"step": "1w"}, "weekly") == CoverageConfig(timedelta(weeks=1))


@pytest.mark.parametrize(
    ("raw", "frequency", "field", "said"),
    [
        ({"min_share": 0.9}, "monthly", "coverage.step", "got None"),
        ({"step": 60}, "monthly", "coverage.step", "a whole number and a unit"),
        ({"step": "1.5h"}, "monthly", "coverage.step", "a whole number and a unit"),
        ({"step": "0h"}, "monthly", "coverage.step", "a whole number and a unit"),
        ({"step": "1 fortnight"}, "monthly", "coverage.step", "a whole number and a unit"),
        ({"step": "5m"}, "monthly", "coverage.step", "minutes or months"),
        ({"step": "2d"}, "daily", "coverage.step", "2d is longer than a daily period"),
        ({"step": "1h", "min_share": 1.5}, "monthly", "coverage.min_share", "at most 1.0"),
        ({"step": "1h", "max_gap": "long"}, "monthly", "coverage.max_gap", "a whole number and a unit"),
        ({"step": "1d", "min_steps": 0}, "monthly", "coverage.min_steps", "at least 1"),
        ({"step": "1d", "min_steps": 30}, "monthly", "coverage.min_steps", "more than the 28 steps of 1d"),
        ({"step": "1h", "max_gaps": "2d"}, "monthly", "coverage.max_gaps", "did you mean 'max_gap'"),
    ],
)
def test_malformed_coverage_is_refused_naming_the_field(
    raw: dict[str, object], frequency: str, field: str, said: str
) -> None:
    with pytest.raises(SpecError, match=said) as err:
        read_coverage(F, raw, frequency)
    assert err.value.field == field


def test_relations_read_each_form() -> None:
    assert relations() == ()
    assert read_relations(F, None, "timestamp", TARGET, FEATURES, OTHER) == ()
    derived, total, order, late, quoted = relations(
        "hr = hour(timestamp)",
        "cnt = casual + registered",
        "temp_min <= temp <= temp_max",
        "temp_max > temp_min",
        "`my-col` = cnt - casual within 0.5",
    )
    assert derived == Derived("hr = hour(timestamp)", "hr", "hour", "timestamp")
    assert total == Sum("cnt = casual + registered", "cnt", ((1, "casual"), (1, "registered")))
    assert total.columns == ("cnt", "casual", "registered")
    assert order == Order("temp_min <= temp <= temp_max", ("temp_min", "temp", "temp_max"), ("<=", "<="))
    assert late == Order("temp_max > temp_min", ("temp_max", "temp_min"), (">",))
    assert quoted == Sum("`my-col` = cnt - casual within 0.5", "my-col", ((1, "cnt"), (-1, "casual")), 0.5)


@pytest.mark.parametrize(
    ("entry", "said"),
    [
        ("hr == hour(timestamp)", "not a relation"),
        ("hr = hours(timestamp)", "unknown time part 'hours' \\(did you mean 'hour'\\?\\)"),
        ("hr = hour(temp)", "hour\\(\\) takes the time column 'timestamp', not 'temp'"),
        ("timestamp = hour(timestamp)", "cannot be derived from itself"),
        ("hour = hour(timestamp)", "'hour' is not a column of this spec"),
        ("cnt = casual + registred", "'registred' is not a column of this spec \\(did you mean 'registered'\\?\\)"),
        ("cnt = casual +", "not a relation"),
        ("cnt = casual * registered", "not a relation"),
        ("cnt = casual + 3", "not a relation"),
        ("cnt = casual + casual", "\\['casual'\\] appear more than once"),
        ("cnt = hr + casual", "'hr' is not numeric"),
        ("cnt = timestamp + casual", "'timestamp' is the time column"),
        ("temp_min <= temp >= temp_max", "an order goes one way"),
        ("temp_min <= temp <= temp_max <= cnt", "not a relation"),
        ("temp <= 40", "an order compares columns"),
        ("temp_min <= temp; drop", "not a relation"),
        ("", "not a relation"),
        (3, "not a relation"),
        ({"hr": "hour(timestamp)"}, "not a relation"),
    ],
)
def test_a_malformed_relation_is_refused_naming_its_entry(entry: object, said: str) -> None:
    with pytest.raises(SpecError, match=said) as err:
        relations("hr = hour(timestamp)", entry)
    assert err.value.field == "relations"
    assert f"entry 2, {entry!r}" in err.value.problem


def test_relations_must_be_a_list() -> None:
    with pytest.raises(SpecError, match="must be a list of relations") as err:
        read_relations(F, "hr = hour(timestamp)", "timestamp", TARGET, FEATURES, OTHER)
    assert err.value.field == "relations"


def test_a_classification_target_is_not_a_number() -> None:
    with pytest.raises(SpecError, match="'cnt' is not numeric"):
        read_relations(F, ["cnt <= temp"], "timestamp", Target("cnt", "classification", positive="1"), FEATURES, OTHER)


def test_durations_are_spelled_as_the_spec_writes_them() -> None:
    assert [spelled(timedelta(hours=h)) for h in (1, 36, 79)] == ["1h", "1d 12h", "3d 7h"]
    assert spelled(timedelta(minutes=15)) == "15min"


def test_the_bike_spec_declares_both(bike_spec: DatasetSpec) -> None:
    assert bike_spec.coverage == CoverageConfig(timedelta(hours=1), 0.92, timedelta(days=2))
    assert [r.text for r in bike_spec.relations] == [
        "hr = hour(timestamp)",
        "weekday = weekday(timestamp)",
        "cnt = casual + registered",
    ]


def test_a_spec_without_them_judges_neither(tmp_path: Path) -> None:
    data = bike_spec_data()
    del data["coverage"], data["relations"]
    spec = DatasetSpec.load(write_spec(tmp_path, data))
    assert (spec.coverage, spec.relations) == (None, ())


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda d: d.update(coverage={"step": "1x"}), "coverage.step"),
        (lambda d: d.update(coverage=["1h"]), "coverage"),
        (lambda d: d["relations"].append("cnt = casual + season"), "relations"),
    ],
)
def test_malformed_spec_names_file_and_field(tmp_path: Path, mutate, field: str) -> None:  # type: ignore[no-untyped-def]
    assert_refused_naming_file_and_field(tmp_path, mutate, field)


def test_every_error_is_listed_with_the_others(tmp_path: Path) -> None:
    data = bike_spec_data()
    data["coverage"] = {"step": "1x"}
    data["relations"] = ["hr = hours(timestamp)"]
    data["gate"]["metric"] = "r2"
    fields = [e.field for e in spec_errors(write_spec(tmp_path, data, "bike_sharing"))]
    assert {"coverage.step", "relations", "gate.metric"} <= set(fields)
