"""What a delivered batch may be: the spec's ``rows`` and ``ingest`` sections, and the limits the
batch reader takes from them."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from retrainer.spec.dataset import DatasetSpec
from retrainer.spec.fields import Fields, SpecError
from retrainer.spec.intake import INGEST_CHECKS, IngestConfig, Limits, OtherColumn, read_ingest, read_rows
from tests.helpers import assert_refused_naming_file_and_field, bike_spec_data, write_spec

F = Fields({}, "flights.yaml")
COLUMNS = {"timestamp", "delay", "distance"}


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda d: d["rows"].update(minimum=5), "rows.minimum"),
        (lambda d: d["rows"].update(min="many"), "rows.min"),
        (lambda d: d["rows"].update(max=10), "rows.max"),
        (lambda d: d["rows"].update(min=0), "rows.min"),
        (lambda d: d.update(ingest=["csv"]), "ingest"),
    ],
)
def test_malformed_spec_names_file_and_field(tmp_path: Path, mutate, field: str) -> None:  # type: ignore[no-untyped-def]
    assert_refused_naming_file_and_field(tmp_path, mutate, field)


def test_rows_default_to_at_least_one_and_no_most() -> None:
    assert read_rows(F, {}) == (1, None)
    assert read_rows(F, {"min": 600, "max": 744}) == (600, 744)
    assert read_rows(F, {"min": 5, "max": 5}) == (5, 5)
    with pytest.raises(SpecError, match="must be an integer of at least 600, got 500") as err:
        read_rows(F, {"min": 600, "max": 500})  # the most below the fewest
    assert err.value.field == "rows.max"


def test_ingest_defaults() -> None:
    ingest = read_ingest(F, {}, COLUMNS)
    assert ingest == IngestConfig()
    assert (ingest.extra_columns, ingest.redelivery, ingest.format, ingest.encoding) == (
        "reject",
        "reject",
        "auto",
        "utf-8",
    )
    assert ingest.checks == INGEST_CHECKS and all(ingest.checks_on(c) for c in INGEST_CHECKS)
    assert not ingest.checks_on("spelling")


def test_the_batch_readers_limits_come_from_the_section() -> None:
    ingest = read_ingest(
        F, {"max_file_mb": 1.5, "max_field_chars": 80, "encoding": "Latin-1", "format": "csv"}, COLUMNS
    )
    assert ingest.limits == Limits(max_bytes=1572864, max_field_chars=80, encoding="iso8859-1", format="csv")
    assert IngestConfig().limits == Limits()  # the defaults agree


def test_the_header_limits_are_read_and_cover_the_spec_columns() -> None:
    """``max_columns`` and ``max_header_kb``: 1000 and 64 KiB unless given; fewer columns than the
    spec names (its own and the other columns) would refuse every delivery."""
    assert (Limits().max_columns, Limits().max_header_bytes) == (1000, 65536)
    ingest = read_ingest(F, {"max_columns": 40, "max_header_kb": 4}, COLUMNS)
    assert (ingest.limits.max_columns, ingest.limits.max_header_bytes) == (40, 4096)
    with pytest.raises(SpecError, match=r"must be an integer of at least 4 \(the columns named\), got 3") as err:
        read_ingest(F, {"max_columns": 3, "other_columns": ["tail"]}, COLUMNS)
    assert err.value.field == "ingest.max_columns"
    with pytest.raises(SpecError, match="must be an integer of at least 1, got 0") as err:
        read_ingest(F, {"max_header_kb": 0}, COLUMNS)
    assert err.value.field == "ingest.max_header_kb"


@pytest.mark.parametrize(("given", "canonical"), [("UTF8", "utf-8"), ("utf_8", "utf-8"), ("cp1252", "cp1252")])
def test_an_encoding_is_kept_by_its_canonical_name(given: str, canonical: str) -> None:
    assert read_ingest(F, {"encoding": given}, COLUMNS).encoding == canonical


def test_other_columns_are_kept_and_must_be_new() -> None:
    ingest = read_ingest(F, {"other_columns": ["flight_no", "tail"]}, COLUMNS)
    assert ingest.other_columns == ("flight_no", "tail")
    with pytest.raises(SpecError, match=r"\['delay'\] are used already"):
        read_ingest(F, {"other_columns": ["tail", "delay"]}, COLUMNS)


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
    data = bike_spec_data()
    data["ingest"] = {k: v for k, v in data.get("ingest", {}).items() if k not in {"unexpected_columns"}} | ingest
    assert DatasetSpec.load(write_spec(tmp_path, data)).ingest.extra_columns == policy


def test_ingest_checks_are_read_from_the_spec(bike_spec: DatasetSpec) -> None:
    raw = yaml.safe_load(Path(bike_spec.source_path).read_text())
    assert DatasetSpec.from_dict(raw).ingest.checks == INGEST_CHECKS
    assert INGEST_CHECKS == ("constant_feature", "target_leak", "unit_change", "target_distribution")
    raw["ingest"] = {**(raw.get("ingest") or {}), "checks": {"unit_change": False}, "format": "parquet"}
    ingest = DatasetSpec.from_dict(raw).ingest
    assert ingest.checks == ("constant_feature", "target_leak", "target_distribution") and ingest.format == "parquet"
    assert ingest.limits.format == "parquet"


@pytest.mark.parametrize(
    ("ingest", "field"),
    [
        ({"other_colums": []}, "ingest.other_colums"),
        ({"other_columns": ["temp"]}, "ingest.other_columns"),
        ({"unexpected_columns": "ignore"}, "ingest.unexpected_columns"),
        ({"extra_columns": "refuse"}, "ingest.extra_columns"),
        ({"extra_columns": "drop", "unexpected_columns": "drop"}, "ingest.unexpected_columns"),
        ({"max_field_chars": 0}, "ingest.max_field_chars"),
        ({"redelivery_max_row_loss": 2}, "ingest.redelivery_max_row_loss"),
        ({"max_scale_change": 1}, "ingest"),
        ({"encoding": "latin-99"}, "ingest.encoding"),
        ({"format": "xlsx"}, "ingest.format"),
        ({"checks": ["unit_change"]}, "ingest.checks"),
        ({"checks": {"unit_changes": False}}, "ingest.checks.unit_changes"),
        ({"checks": {"target_leak": "no"}}, "ingest.checks.target_leak"),
    ],
)
def test_ingest_section_errors_name_the_field(bike_spec: DatasetSpec, ingest: dict, field: str) -> None:  # type: ignore[type-arg]
    raw = yaml.safe_load(Path(bike_spec.source_path).read_text())
    raw["ingest"] = ingest
    with pytest.raises(SpecError) as err:
        DatasetSpec.from_dict(raw)
    assert err.value.field == field


@pytest.mark.parametrize(
    ("ingest", "says"),
    [
        ({"max_file_mb": 0}, "max_file_mb must be above 0 and max_scale_change above 1"),
        ({"max_field_chars": True}, "must be a positive integer, got True"),
        ({"redelivery": "merge"}, r"must be one of \['reject', 'replace', 'append'\], got 'merge'"),
        ({"encoding": "latin-99"}, r"unknown encoding 'latin-99' \(e\.g\. utf-8, latin-1"),
        ({"leak_correlation": 1.2}, "must be at most 1.0, got 1.2"),
    ],
)
def test_ingest_errors_say_what_is_allowed(ingest: dict, says: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(SpecError, match=says):
        read_ingest(F, ingest, COLUMNS)


def test_other_columns_as_a_list_are_text_columns_with_the_defaults() -> None:
    ingest = read_ingest(F, {"other_columns": ["flight_no", "note"]}, COLUMNS)
    assert ingest.other_column_rules == (OtherColumn("flight_no"), OtherColumn("note"))
    assert OtherColumn("note") == OtherColumn("note", "text", None, None, None, 1.0)
    assert ingest.formulas == "reject"


def test_other_columns_as_a_mapping_say_what_each_may_hold() -> None:
    raw = {
        "other_columns": {
            "flight_no": {"max_chars": 12, "max_null_rate": 0},
            "fare": {"type": "numeric", "min": 0, "max": 5000},
            "note": None,
        },
        "formulas": "neutralise",
    }
    ingest = read_ingest(F, raw, COLUMNS)
    assert ingest.other_columns == ("flight_no", "fare", "note")  # the names, as every reader takes them
    assert ingest.other_column_rules == (
        OtherColumn("flight_no", max_chars=12, max_null_rate=0.0),
        OtherColumn("fare", "numeric", min=0.0, max=5000.0),
        OtherColumn("note"),
    )
    assert ingest.formulas == "neutralise"


@pytest.mark.parametrize(
    ("other", "field", "says"),
    [
        ({"fare": {"type": "money"}}, "ingest.other_columns.fare.type", r"must be one of \['text', 'numeric'\]"),
        ({"fare": {"typ": "numeric"}}, "ingest.other_columns.fare.typ", "unknown key; did you mean 'type'?"),
        ({"note": {"min": 0}}, "ingest.other_columns.note.min", "is for type: numeric"),
        ({"fare": {"type": "numeric", "max_chars": 9}}, "ingest.other_columns.fare.max_chars", "is for type: text"),
        ({"fare": {"type": "numeric", "min": 9, "max": 1}}, "ingest.other_columns.fare.min", "min 9.0 is above max"),
        ({"note": {"max_chars": 0}}, "ingest.other_columns.note.max_chars", "must be an integer of at least 1"),
        ({"note": {"max_null_rate": 2}}, "ingest.other_columns.note.max_null_rate", "must be at most 1.0"),
        (
            {"note": "text"},
            "ingest.other_columns.note",
            "must be a mapping of max, max_chars, max_null_rate, min, type",
        ),
        ({"delay": {}}, "ingest.other_columns", r"\['delay'\] are used already"),
        ("note", "ingest.other_columns", "must be a list of column names"),
    ],
)
def test_other_column_rules_are_refused_naming_the_field(other: object, field: str, says: str) -> None:
    with pytest.raises(SpecError, match=says) as err:
        read_ingest(F, {"other_columns": other}, COLUMNS)
    assert err.value.field == field


def test_formulas_is_one_of_three_and_the_rules_are_no_key_of_their_own() -> None:
    with pytest.raises(SpecError, match=r"must be one of \['reject', 'neutralise', 'allow'\], got 'escape'"):
        read_ingest(F, {"formulas": "escape"}, COLUMNS)
    with pytest.raises(SpecError, match="unknown key") as err:  # read from other_columns, never written
        read_ingest(F, {"other_column_rules": []}, COLUMNS)
    assert err.value.field == "ingest.other_column_rules"
