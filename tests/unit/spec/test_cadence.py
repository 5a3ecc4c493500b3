"""How often each spec retrains on schedule, read from two fields of its file as the DAG file
is parsed; a spec whose two fields do not read is left out of the timetable, saying why."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from retrainer.spec.cadence import cadences
from retrainer.spec.dataset import DatasetSpec
from tests.helpers import bike_spec_data, write_spec


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
    data = bike_spec_data()
    data["frequency"] = frequency
    if every:
        data["training"]["every"] = every
    assert DatasetSpec.load(write_spec(tmp_path, data)).retrain_every == expected
    assert cadences(tmp_path) == {"spec": expected}


@pytest.mark.parametrize(
    "text",
    ["name: [", "frequency: fortnightly\n", "training: {every: yearly}\n", "training: [daily]\n", "- a list\n"],
)
def test_a_spec_whose_cadence_does_not_read_is_left_out_of_the_timetable(tmp_path: Path, text: str) -> None:
    (tmp_path / "odd.yaml").write_text(text)
    (tmp_path / "fine.yaml").write_text("frequency: weekly\n")
    assert cadences(tmp_path) == {"fine": "weekly"}


def test_only_the_two_fields_are_read(tmp_path: Path) -> None:
    """The whole spec is checked where it is used: here a spec broken elsewhere still has its
    cadence, and one with neither field retrains monthly (the spec's defaults)."""
    (tmp_path / "broken_elsewhere.yaml").write_text("frequency: daily\ntarget: not a mapping\n")
    (tmp_path / "bare.yaml").write_text("name: bare\n")
    (tmp_path / "no_training.yaml").write_text("frequency: hourly\ntraining: null\n")
    assert cadences(tmp_path) == {"bare": "monthly", "broken_elsewhere": "daily", "no_training": "daily"}


def test_what_is_left_out_is_logged_with_its_file(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "latin.yaml").write_bytes("name: caf\xe9\n".encode("latin-1"))  # not UTF-8
    (tmp_path / "yearly.yaml").write_text("frequency: yearly\n")
    (tmp_path / "notes.yml").write_text("frequency: weekly\n")  # not a spec file (.yaml)
    with caplog.at_level(logging.ERROR, logger="retrainer.spec.cadence"):
        assert cadences(tmp_path) == {}
    logged = {r.getMessage().split(": ")[1] for r in caplog.records}
    assert logged == {str(tmp_path / "latin.yaml"), str(tmp_path / "yearly.yaml")}
    assert "frequency or training.every is not one of hourly, daily, weekly, monthly" in caplog.text


def test_a_folder_without_specs_has_no_cadence(tmp_path: Path) -> None:
    assert cadences(tmp_path) == {}
    assert cadences(tmp_path / "missing") == {}
