"""The checks of a readable batch that no per-value expectation makes, each on its own: columns
the spec does not name, a feature that leaks the target, and against the versioned data a
re-delivery that loses rows, a feature gone constant, a unit change, and how a re-delivered
period differs row by row. (The catalogue of bad deliveries runs through them all in
tests/unit/data/test_batchfile.py; the spec's re-delivery policies in test_redelivery.py.)"""

from __future__ import annotations

import re
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from retrainer import periods
from retrainer.data.batchchecks import (
    MIN_ROWS_TO_JUDGE,
    Redelivery,
    Reference,
    appended,
    column_problems,
    compare_redelivery,
    leak_problems,
    mean_ratio,
    redelivery_problems,
    reference_periods,
    reference_problems,
    target_problems,
    unexpected_columns,
)
from retrainer.spec.columns import Target
from retrainer.spec.dataset import DatasetSpec
from retrainer.spec.intake import INGEST_CHECKS


@pytest.fixture(scope="module")
def march(bike_months: dict[str, pd.DataFrame]) -> pd.DataFrame:
    return bike_months["2011-03"]


@pytest.fixture(scope="module")
def ref(bike_months: dict[str, pd.DataFrame]) -> Reference:
    return Reference("v0002", {p: bike_months[p] for p in ("2011-01", "2011-02")})


def _ingest(spec: DatasetSpec, **changes: object) -> DatasetSpec:
    return replace(spec, ingest=replace(spec.ingest, **changes))


def test_the_reference_compares_with_the_other_periods() -> None:
    a, b, c = (pd.DataFrame({"x": [i]}) for i in range(3))
    ref = Reference("v0003", {"2011-03": c, "2011-01": a, "2011-02": b})
    assert [int(df["x"].iloc[0]) for df in ref.others("2011-02")] == [0, 2]  # in period order, its own left out
    assert Reference().others("2011-01") == [] and Reference().version == ""


def test_columns_the_spec_does_not_name_are_found_in_their_order(march: pd.DataFrame, bike_spec: DatasetSpec) -> None:
    assert unexpected_columns(march, bike_spec) == []  # casual, registered, dteday: ingest.other_columns
    extra = march.assign(zeta=1, note="x", alpha=2)
    assert unexpected_columns(extra, bike_spec) == ["zeta", "note", "alpha"]


def test_extra_columns_are_a_problem_only_when_the_spec_rejects_them(
    march: pd.DataFrame, bike_spec: DatasetSpec
) -> None:
    (one,) = column_problems(march.assign(note="x"), bike_spec)
    assert one.startswith("unexpected column ['note']: not in the spec (list known extra columns under")
    (many,) = column_problems(march.assign(a=1, b=2, c=3, d=4, e=5), bike_spec)
    assert many.startswith("unexpected columns ['a', 'b', 'c'] and 2 more: not in the spec")
    for policy in ("keep", "drop"):
        assert column_problems(march.assign(note="x"), _ingest(bike_spec, extra_columns=policy)) == []
    assert column_problems(march, bike_spec) == []


def test_a_feature_equal_to_the_target_is_a_leak(march: pd.DataFrame, bike_spec: DatasetSpec) -> None:
    leaked = march.assign(weekday=march["cnt"].astype(str))  # a categorical feature holding the target
    assert leak_problems(leaked, bike_spec) == [
        "feature 'weekday' equals the target 'cnt' in 100.0% of rows: a leak (ingest.checks.target_leak)"
    ]


def test_a_numeric_feature_correlated_with_the_target_is_a_leak(march: pd.DataFrame, bike_spec: DatasetSpec) -> None:
    scaled = march.assign(windspeed=march["cnt"] * 0.5 + 3)
    (problem,) = leak_problems(scaled, bike_spec)
    assert problem.startswith("feature 'windspeed' is correlated with the target 'cnt' at r=1.0000 (limit 0.999")
    assert leak_problems(march, bike_spec) == []  # the real features are far from it
    loose = _ingest(bike_spec, leak_correlation=1.0)
    noisy = march.assign(windspeed=march["cnt"] * 0.5 + np.random.default_rng(1).normal(0, 1, len(march)))
    assert leak_problems(noisy, loose) == []  # below the spec's limit


def test_no_leak_is_judged_on_few_rows_or_with_the_check_off(march: pd.DataFrame, bike_spec: DatasetSpec) -> None:
    leaked = march.assign(windspeed=march["cnt"])
    assert leak_problems(leaked.iloc[: MIN_ROWS_TO_JUDGE - 1], bike_spec) == []
    off = _ingest(bike_spec, checks=tuple(c for c in INGEST_CHECKS if c != "target_leak"))
    assert leak_problems(leaked, off) == []
    assert leak_problems(leaked.drop(columns="cnt"), bike_spec) == []  # no target: nothing to compare


def test_nothing_versioned_yet_means_nothing_to_compare(march: pd.DataFrame, bike_spec: DatasetSpec) -> None:
    assert reference_problems(march.assign(hum=50.0), bike_spec, "2011-03", Reference()) == []


def test_a_numeric_feature_gone_constant_is_named(march: pd.DataFrame, bike_spec: DatasetSpec, ref: Reference) -> None:
    assert reference_problems(march, bike_spec, "2011-03", ref) == []
    (problem,) = reference_problems(march.assign(hum=50.0), bike_spec, "2011-03", ref)
    assert problem.startswith(f"column 'hum' holds one value ('50.0') in all {len(march)} rows; it varies in every")
    assert "(v0002; ingest.checks.constant_feature; a feature constant in some seasons:" in problem
    assert problem.endswith("features.hum.checks.constant_feature: false)")
    off = _ingest(bike_spec, checks=("target_leak", "unit_change"))
    assert reference_problems(march.assign(hum=50.0), off, "2011-03", ref) == []


def test_a_unit_change_is_named_with_its_ratio(march: pd.DataFrame, bike_spec: DatasetSpec, ref: Reference) -> None:
    (narrower,) = reference_problems(march.assign(hum=march["hum"] / 100), bike_spec, "2011-03", ref)
    assert re.match(r"column 'hum': its values spread [0-9.]+x narrower than in the versioned data \(0\.", narrower)
    assert "(limit 10, ingest.max_scale_change; a feature whose spread really moves:" in narrower
    assert narrower.endswith("features.hum.max_scale_change or features.hum.checks.unit_change: false)")
    (wider,) = reference_problems(march.assign(windspeed=march["windspeed"] * 20), bike_spec, "2011-03", ref)
    assert re.match(r"column 'windspeed': its values spread [0-9.]+x wider", wider)
    assert reference_problems(march.assign(hum=march["hum"] * 5), bike_spec, "2011-03", ref) == []  # within 10x
    off = _ingest(bike_spec, checks=("constant_feature", "target_leak"))
    assert reference_problems(march.assign(hum=march["hum"] / 100), off, "2011-03", ref) == []
    assert reference_problems(march.assign(hum=march["hum"] / 100).iloc[:10], bike_spec, "2011-03", ref) == []


def _feature(spec: DatasetSpec, name: str, **changes: object) -> DatasetSpec:
    features = tuple(replace(f, **changes) if f.name == name else f for f in spec.features)
    return replace(spec, features=features)


def test_a_feature_tunes_its_own_checks(march: pd.DataFrame, bike_spec: DatasetSpec, ref: Reference) -> None:
    """A seasonal feature switches a check off, or widens its own unit-change limit, for itself alone."""
    both = march.assign(hum=50.0, windspeed=march["windspeed"] * 20)
    assert len(reference_problems(both, bike_spec, "2011-03", ref)) == 2
    hum_off = _feature(bike_spec, "hum", checks=(("constant_feature", False),))
    (left,) = reference_problems(both, hum_off, "2011-03", ref)
    assert left.startswith("column 'windspeed'")  # the other feature is still judged
    wide = _feature(hum_off, "windspeed", max_scale_change=40.0)
    assert reference_problems(both, wide, "2011-03", ref) == []
    tight = _feature(bike_spec, "windspeed", max_scale_change=1.5)
    (off_scale,) = reference_problems(march.assign(windspeed=march["windspeed"] * 4), tight, "2011-03", ref)
    assert "(limit 1.5, features.windspeed.max_scale_change;" in off_scale
    on_again = _feature(_ingest(bike_spec, checks=()), "hum", checks=(("constant_feature", True),))
    (constant,) = reference_problems(both, on_again, "2011-03", ref)  # on for hum, though off for the spec
    assert constant.startswith("column 'hum' holds one value")


def test_the_same_season_a_year_before_tells_seasonal_from_broken(
    march: pd.DataFrame, bike_spec: DatasetSpec, ref: Reference
) -> None:
    """A column constant (or narrow) now and in the same month last year is seasonal; one off
    against last year too is still a problem."""
    snowless = march.assign(windspeed=0.0)
    (constant,) = reference_problems(snowless, bike_spec, "2011-03", ref)
    assert constant.startswith("column 'windspeed' holds one value")
    last_year = replace(ref, season=march.assign(windspeed=0.0))
    assert reference_problems(snowless, bike_spec, "2011-03", last_year) == []
    varied = replace(ref, season=march)
    (still,) = reference_problems(snowless, bike_spec, "2011-03", varied)
    assert "in every versioned period compared and in the same season a year before" in still
    narrow = march.assign(hum=march["hum"] / 100)
    narrow_last_year = replace(ref, season=march.assign(hum=march["hum"] / 80))
    assert reference_problems(narrow, bike_spec, "2011-03", narrow_last_year) == []
    (unit,) = reference_problems(narrow, bike_spec, "2011-03", varied)
    assert "narrower than in the versioned data and than the same season a year before" in unit


def test_a_replacement_that_loses_rows_is_named(march: pd.DataFrame, bike_spec: DatasetSpec) -> None:
    replace_policy = _ingest(bike_spec, redelivery="replace")
    short = compare_redelivery(march.iloc[:-24], march, replace_policy)
    (problem,) = redelivery_problems(short, replace_policy, "2011-03", "v0007")
    assert problem == (
        f"a re-delivery of 2011-03 with {len(march) - 24} rows would replace the {len(march)} rows versioned in"
        " v0007 (24 fewer): a partial delivery? (ingest.redelivery_max_row_loss 0)"
    )
    lenient = _ingest(bike_spec, redelivery="replace", redelivery_max_row_loss=0.05)
    assert redelivery_problems(short, lenient, "2011-03", "v0007") == []  # 24 of 744: within 5%
    (rejected,) = redelivery_problems(short, bike_spec, "2011-03", "v0007")  # reject: judged row by row
    assert "differs from it: 24 missing" in rejected


def _text(rows: list[tuple[str, str, str]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["timestamp", "cnt", "temp"])


OLD = _text(
    [("2011-03-01T00:00:00", "5", "1.5"), ("2011-03-01T01:00:00", "7", "1.0"), ("2011-03-01T02:00:00", "9", "0.5")]
)


def test_a_redelivery_is_compared_row_by_row_by_its_key(bike_spec: DatasetSpec) -> None:
    new = _text(
        [("2011-03-01T01:00:00", "8", "1.0"), ("2011-03-01T02:00:00", "9", "0.5"), ("2011-03-01T03:00:00", "4", "0")]
    )
    diff = compare_redelivery(new, OLD, bike_spec)
    assert (diff.rows_versioned, diff.rows_delivered, diff.missing, diff.new, diff.changed) == (3, 3, 1, 1, 1)
    assert diff.examples == ("timestamp=2011-03-01T01:00:00: cnt ['7'] -> ['8']",)
    assert not diff.same
    assert diff.says() == "1 missing, 1 changed, 1 new (e.g. timestamp=2011-03-01T01:00:00: cnt ['7'] -> ['8'])"
    same = compare_redelivery(OLD.iloc[::-1], OLD, bike_spec)
    assert same.same and same.says() == "no row differs"


def test_a_column_only_one_side_has_counts_as_changed_values(bike_spec: DatasetSpec) -> None:
    diff = compare_redelivery(OLD.assign(note="x"), OLD, bike_spec)
    assert (diff.missing, diff.new, diff.changed) == (0, 0, 3) and len(diff.examples) == 3
    assert diff.examples[0] == "timestamp=2011-03-01T00:00:00: note [''] -> ['x']"


@pytest.mark.parametrize(
    ("policy", "diff", "says"),
    [
        ("reject", Redelivery(3, 3, 0, 0, 0), None),
        ("reject", Redelivery(3, 4, 0, 1, 0), "2011-03 is versioned already (v0007, 3 rows) and this re-delivery of 4"),
        ("append", Redelivery(3, 4, 0, 1, 0), None),
        ("append", Redelivery(3, 3, 0, 0, 1, ("x",)), "changes 1 of its rows: 1 changed (e.g. x); ingest.redelivery"),
        ("replace", Redelivery(3, 3, 0, 0, 1), None),
        (
            "replace",
            Redelivery(3, 1, 2, 0, 1),
            "a re-delivery of 2011-03 with 1 rows would replace the 3 rows versioned",
        ),
    ],
)
def test_each_redelivery_policy_refuses_what_it_does_not_allow(
    bike_spec: DatasetSpec, policy: str, diff: Redelivery, says: str | None
) -> None:
    problems = redelivery_problems(diff, _ingest(bike_spec, redelivery=policy), "2011-03", "v0007")
    if says is None:
        assert problems == []
    else:
        (problem,) = problems
        named = "ingest.redelivery_max_row_loss" if policy == "replace" else f"ingest.redelivery is '{policy}'"
        assert says in problem and named in problem


def test_late_rows_join_the_versioned_ones_which_win_a_conflict(bike_spec: DatasetSpec) -> None:
    late = _text([("2011-03-01T03:00:00", "4", "0"), ("2011-03-01T01:00:00", "8", "1.0")])
    merged = appended(OLD, late, bike_spec)
    assert merged.to_dict("records") == [
        {"timestamp": "2011-03-01T00:00:00", "cnt": "5", "temp": "1.5"},
        {"timestamp": "2011-03-01T01:00:00", "cnt": "7", "temp": "1.0"},  # the versioned row stays
        {"timestamp": "2011-03-01T02:00:00", "cnt": "9", "temp": "0.5"},
        {"timestamp": "2011-03-01T03:00:00", "cnt": "4", "temp": "0"},
    ]
    keyless = appended(OLD, late, replace(bike_spec, unique_by=()))  # rows are their values: both kept
    assert len(keyless) == 5


def _target(spec: DatasetSpec, **changes: object) -> DatasetSpec:
    return replace(spec, target=replace(spec.target, **changes))


def test_a_target_that_is_mostly_zero_is_a_broken_export(
    march: pd.DataFrame, bike_spec: DatasetSpec, ref: Reference
) -> None:
    assert target_problems(march, bike_spec, "2011-03", ref) == []
    (zeros,) = target_problems(march.assign(cnt=0), bike_spec, "2011-03", ref)
    assert zeros == (
        "target 'cnt' is 0 in 100.0% of rows (at most 0.0% in the versioned periods compared, v0002): a broken"
        " export? (ingest.checks.target_distribution; a target that really does this:"
        " target.checks.target_distribution: false)"
    )
    half = march.assign(cnt=march["cnt"].where(march.index % 2 == 0, 0))  # 50% zeros: above 0% + 25 points
    (said,) = target_problems(half, bike_spec, "2011-03", ref)
    assert said.startswith("target 'cnt' is 0 in 50.0% of rows (at most 0.0%")
    few = march.assign(cnt=march["cnt"].where(march.index % 5 != 0, 0))  # 20%: within the margin
    assert target_problems(few, bike_spec, "2011-03", ref) == []
    dry_last_year = replace(ref, season=half)  # the same season a year before was half zeros too
    assert target_problems(half, bike_spec, "2011-03", dry_last_year) == []


def test_a_target_gone_constant_is_named(march: pd.DataFrame, bike_spec: DatasetSpec, ref: Reference) -> None:
    (constant,) = target_problems(march.assign(cnt=7), bike_spec, "2011-03", ref)
    assert constant == (
        f"target 'cnt' holds one value (7) in all {len(march)} labelled rows; it varies in every versioned period"
        " compared (v0002): a broken export? (ingest.checks.target_distribution; a target that really does this:"
        " target.checks.target_distribution: false)"
    )


def test_a_target_mean_far_off_the_versioned_means_is_named(
    march: pd.DataFrame, bike_spec: DatasetSpec, ref: Reference
) -> None:
    shifted = march.assign(cnt=march["cnt"] + 5000)  # the same spread, the mean far above
    (mean,) = target_problems(shifted, bike_spec, "2011-03", ref)
    assert re.match(r"target 'cnt': its mean [0-9.]+ is [0-9.]+x above the versioned periods' \([0-9.]+, v0002\)", mean)
    assert mean.endswith(
        ": a broken export or another unit? (limit 10, target.max_mean_change; ingest.checks.target_distribution;"
        " a target that really does this: target.checks.target_distribution: false)"
    )
    assert target_problems(shifted, _target(bike_spec, max_mean_change=500.0), "2011-03", ref) == []
    (mean, spread) = target_problems(march.assign(cnt=march["cnt"] / 20), bike_spec, "2011-03", ref)  # in 20s
    assert mean.startswith("target 'cnt': its mean 4.387 is 14.8x below the versioned periods' (64.9, v0002)")
    assert spread.startswith("target 'cnt': its values spread 13.4x narrower than in the versioned data")


def test_a_signed_target_is_judged_by_its_spread_not_its_mean(march: pd.DataFrame, ref: Reference) -> None:
    """A ratio of means says nothing about a target that may be negative: its spread still does."""
    assert mean_ratio(march["cnt"] - 200, [ref.periods["2011-01"]["cnt"] - 200]) is None
    assert mean_ratio(march["cnt"], [ref.periods["2011-01"]["cnt"]]) == pytest.approx(
        march["cnt"].mean() / ref.periods["2011-01"]["cnt"].mean()
    )


def test_a_target_on_another_scale_is_a_unit_change(
    march: pd.DataFrame, bike_spec: DatasetSpec, ref: Reference
) -> None:
    centre = march["cnt"].mean()
    wide = march.assign(cnt=centre + (march["cnt"] - centre) * 20)  # the same mean, 20x the spread
    (unit,) = target_problems(wide, bike_spec, "2011-03", ref)
    assert re.match(r"target 'cnt': its values spread [0-9.]+x wider than in the versioned data \(", unit)
    assert unit.endswith(
        "a unit change? (limit 10, ingest.max_scale_change; ingest.checks.unit_change; a target that really does"
        " this: target.checks.unit_change: false)"
    )
    assert target_problems(wide, _target(bike_spec, checks=(("unit_change", False),)), "2011-03", ref) == []
    assert target_problems(wide, _ingest(bike_spec, checks=("target_distribution",)), "2011-03", ref) == []


def test_the_target_checks_switch_off_for_the_target_or_the_whole_spec(
    march: pd.DataFrame, bike_spec: DatasetSpec, ref: Reference
) -> None:
    zero = march.assign(cnt=0)
    assert target_problems(zero, _target(bike_spec, checks=(("target_distribution", False),)), "2011-03", ref) == []
    spec_off = _ingest(bike_spec, checks=("constant_feature", "target_leak", "unit_change"))
    assert target_problems(zero, spec_off, "2011-03", ref) == []
    on_again = _target(spec_off, checks=(("target_distribution", True),))
    assert len(target_problems(zero, on_again, "2011-03", ref)) == 1
    assert target_problems(zero.iloc[: MIN_ROWS_TO_JUDGE - 1], bike_spec, "2011-03", ref) == []  # too few rows
    assert target_problems(zero, bike_spec, "2011-03", Reference()) == []  # nothing versioned yet


def _labels(values: dict[str, int], seed: int = 0) -> pd.DataFrame:
    labels = [v for v, n in values.items() for _ in range(n)]
    return pd.DataFrame({"churned": np.random.default_rng(seed).permutation(np.array(labels, dtype=object))})


def _classes(spec: DatasetSpec, task: str = "classification") -> DatasetSpec:
    if task == "multiclass":
        return replace(spec, target=Target("churned", "multiclass", classes=("no", "yes", "maybe")))
    return replace(spec, target=Target("churned", "classification", positive="yes"))


BEFORE = Reference("v0007", {p: _labels({"no": 90, "yes": 10}, i) for i, p in enumerate(("2024-01", "2024-02"))})


@pytest.mark.parametrize("task", ["classification", "multiclass"])
def test_a_class_every_versioned_period_holds_missing_is_named(bike_spec: DatasetSpec, task: str) -> None:
    spec = _classes(bike_spec, task)
    assert target_problems(_labels({"no": 90, "yes": 10}), spec, "2024-03", BEFORE) == []
    (gone,) = target_problems(_labels({"no": 100}), spec, "2024-03", BEFORE)
    assert gone == (
        "target 'churned': class 'yes' is missing from all 100 labelled rows, though every versioned period compared"
        " holds it, in at least 10.0% of rows (10 expected here; v0007): a broken export?"
        " (ingest.checks.target_distribution; a target that really does this: target.checks.target_distribution:"
        " false)"
    )
    assert target_problems(_labels({"no": 40}), spec, "2024-03", BEFORE) == []  # 4 expected: absent by chance
    seasonal = replace(BEFORE, season=_labels({"no": 100}))  # none the same season a year before either
    assert target_problems(_labels({"no": 100}), spec, "2024-03", seasonal) == []


def test_a_binary_value_no_versioned_period_holds_is_named_with_its_lines(bike_spec: DatasetSpec) -> None:
    batch = _labels({"no": 90, "yes": 10})
    batch.loc[[3, 8], "churned"] = "YES"
    (renamed,) = target_problems(batch, _classes(bike_spec), "2024-03", BEFORE)
    assert renamed == (
        "target 'churned': 2 rows hold ['YES'], a value no versioned period compared holds (they hold ['no', 'yes'];"
        " v0007) (lines 5, 10): the model would take it for not 'yes'; a renamed class?"
        " (ingest.checks.target_distribution; a target that really does this: target.checks.target_distribution:"
        " false)"
    )
    only_no = Reference("v0001", {"2024-01": _labels({"no": 100})})
    assert target_problems(batch.replace("YES", "no"), _classes(bike_spec), "2024-03", only_no) == []  # the positive


def test_the_bike_target_passes_every_month_against_the_months_before(
    bike_spec: DatasetSpec, bike_months: dict[str, pd.DataFrame]
) -> None:
    """Seasonal data is no broken export: each month of 2011-04 to 2012-12 judged against the three
    months before it, and the same month a year before once versioned, as ingest judges it. The
    bike months' means move up to 2.1 times (2011-05 against 2011-02 to 2011-04), their spreads
    up to 1.9 times: the defaults (10 and 10) leave room for data that moves more (the bike
    days move up to 6 times on a storm day)."""
    judged = [p for p in sorted(bike_months) if "2011-04" <= p <= "2012-12"]
    assert len(judged) == 21
    worst = 1.0
    for period in judged:
        versioned = [p for p in bike_months if p < period]
        last_year = periods.a_year_before(period, bike_spec.frequency)
        ref = Reference(
            "v",
            {p: bike_months[p] for p in reference_periods(versioned, period)},
            season=bike_months[last_year] if last_year in versioned else None,
        )
        assert target_problems(bike_months[period], bike_spec, period, ref) == [], period
        season = None if ref.season is None else ref.season["cnt"]
        ratio = mean_ratio(bike_months[period]["cnt"], [f["cnt"] for f in ref.periods.values()], season)
        assert ratio is not None
        worst = max(worst, ratio, 1 / ratio)
    assert 2.0 < worst < 2.2 < bike_spec.target.max_mean_change
