"""The suite as GX would build it, checked the same whatever the timestamps' resolution, and one
validator judging every period of a window on its own in one GX context (as validate_window
uses it: tests/unit/pipeline/test_train.py)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from retrainer.data import validation
from retrainer.data.demo_data import load_bike_sharing, split_periods, write_batch
from retrainer.data.validation import FrameValidator, build_suite, validate_frame
from retrainer.data.versioning import period_frame
from retrainer.spec.dataset import DatasetSpec


@pytest.fixture(scope="module")
def months(bike_spec: DatasetSpec) -> dict[str, pd.DataFrame]:
    parts = split_periods(load_bike_sharing(), bike_spec)
    return {k: parts[k] for k in ("2011-05", "2011-06", "2011-07")}


def _as_read(df: pd.DataFrame, spec: DatasetSpec, tmp_path: Path) -> pd.DataFrame:
    """A period as validate_window reads it (timestamps parsed by pandas, at microseconds)."""
    return period_frame(spec, write_batch(df, spec, tmp_path / "period.csv").read_text())


def test_the_suite_holds_what_gx_would_add_one_by_one(bike_spec: DatasetSpec) -> None:
    import great_expectations as gx

    suite = build_suite(bike_spec, "2011-03")
    validation._context()  # add_expectation needs one
    again = gx.ExpectationSuite(name="again")
    for expectation in suite.expectations:
        again.add_expectation(expectation.copy(update={"id": None}))
    assert [e.configuration for e in again.expectations] == [e.configuration for e in suite.expectations]
    assert suite.name == "bike_sharing.batch" and len(suite.expectations) == 43
    collected = validation._Suite()
    for expectation in [*suite.expectations[:2], suite.expectations[0]]:
        collected.add_expectation(expectation)
    assert collected.expectations == suite.expectations[:2]  # an equal expectation is added once


def test_timestamps_are_checked_alike_at_any_resolution(
    months: dict[str, pd.DataFrame], bike_spec: DatasetSpec, tmp_path: Path
) -> None:
    may = _as_read(months["2011-05"], bike_spec, tmp_path)
    assert may["timestamp"].dtype == "datetime64[us]"
    assert validation._for_gx(may, "timestamp")["timestamp"].dtype == "datetime64[ns]"
    assert may["timestamp"].dtype == "datetime64[us]"  # the caller's frame is left as it is
    late = may.copy()
    late.loc[3, "timestamp"] = pd.Timestamp("2011-06-01 00:00:00")  # the first instant after May
    far = may.copy()
    far.loc[3, "timestamp"] = pd.Timestamp("2300-05-01 00:00:00")  # beyond nanoseconds: checked as it is
    assert validation._for_gx(far, "timestamp")["timestamp"].dtype == "datetime64[us]"
    assert validate_frame(may, bike_spec, "2011-05", "may").success
    for bad, shown in ((late, "2011-06-01 00:00:00"), (far, "2300-05-01 00:00:00")):
        report = validate_frame(bad, bike_spec, "2011-05", "may")
        assert [f for f in report.failures if "'timestamp'" in f] == [
            f"column 'timestamp': 1 values (0.1%) outside [2011-05-01 00:00:00, 2011-05-31 23:59:59.999999], "
            f"e.g. ['{shown}']"
        ]


def test_one_validator_judges_each_batch_on_its_own(
    months: dict[str, pd.DataFrame], bike_spec: DatasetSpec, tmp_path: Path
) -> None:
    """The periods of a window share a GX context and batch definition, never a verdict."""
    validator = FrameValidator(bike_spec)
    may, june = (_as_read(months[p], bike_spec, tmp_path) for p in ("2011-05", "2011-06"))
    hot = june.assign(temp=june["temp"] + 100)
    verdicts = [validator.validate(df, p, p) for df, p in ((may, "2011-05"), (hot, "2011-06"), (june, "2011-06"))]
    assert [r.success for r in verdicts] == [True, False, True]
    assert any("column 'temp'" in f for f in verdicts[1].failures)
    assert verdicts[2].gx_result == validate_frame(june, bike_spec, "2011-06", "2011-06").gx_result | {
        "meta": verdicts[2].gx_result["meta"]  # run ids and times differ
    }


def test_brief_results_say_what_full_ones_say(
    months: dict[str, pd.DataFrame], bike_spec: DatasetSpec, tmp_path: Path
) -> None:
    """A brief validator (validate_window's) gives the same verdicts, failures and notes; only a
    passing batch's GX result lacks SUMMARY's counts per unexpected value and row numbers."""
    from dataclasses import replace

    tolerant = replace(
        bike_spec,
        features=tuple(replace(f, max_unseen_rate=0.01) if f.name == "weathersit" else f for f in bike_spec.features),
    )
    june = _as_read(months["2011-06"], bike_spec, tmp_path)
    june.loc[june.index[:5], "weathersit"] = "Sandstorm"  # tolerated: passes with a note
    brief, full = FrameValidator(tolerant, brief=True), FrameValidator(tolerant)
    for df in (june, june.assign(temp=june["temp"] + 100), june.assign(weekday=None)):
        briefly, fully = (v.validate(df, "2011-06", "x") for v in (brief, full))
        assert (briefly.success, briefly.failures, briefly.notes, briefly.evaluated) == (
            fully.success,
            fully.failures,
            fully.notes,
            fully.evaluated,
        )
        kept = [r["result"] for r in briefly.gx_result["results"]]
        assert any("partial_unexpected_index_list" in r for r in kept) == (not briefly.success)  # failed: in full
    passed = brief.validate(june, "2011-06", "x")
    assert passed.success and len(passed.notes) == 1 and "['Sandstorm']" in passed.notes[0]
