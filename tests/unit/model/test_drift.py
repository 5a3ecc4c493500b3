"""Drift engine: shifts that must be caught, same-distribution samples that must not alarm,
edge cases with a clear outcome, and agreement with the textbook (scipy) statistics."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial import distance

from retrainer.model import drift
from retrainer.spec.dataset import DatasetSpec
from retrainer.spec.learning import DriftTest

RNG = np.random.default_rng(7)


def _num(n: int, loc: float = 0.0, scale: float = 1.0) -> np.ndarray:
    return RNG.normal(loc, scale, n)


def _cat(n: int, p: list[float], cats: str = "abcd") -> np.ndarray:
    return RNG.choice(list(cats[: len(p)]), n, p=p)


def _one(ref: pd.DataFrame, cur: pd.DataFrame, col: str, kind: str, **kw: object) -> drift.FeatureDrift:
    numeric, categorical = ([col], []) if kind == "numeric" else ([], [col])
    return drift.detect(ref, cur, numeric, categorical, **kw).features[0]  # type: ignore[arg-type]


# ------------------------------------------------------------------ agreement with scipy


def test_statistics_match_scipy() -> None:
    n = 4000
    ref = pd.DataFrame({"a": _num(n), "b": _num(n), "c": _cat(n, [0.4, 0.3, 0.2, 0.1])})
    cur = pd.DataFrame({"a": _num(n, 0.1), "b": _num(n, 0, 1.2), "c": _cat(n, [0.3, 0.3, 0.2, 0.2])})
    ref.loc[:99, "a"] = np.nan  # missing values are left out of the distribution tests
    choices = {"b": DriftTest("ks"), "c": DriftTest("chisquare")}
    res = {f.feature: f for f in drift.detect(ref, cur, ["a", "b"], ["c"], choices=choices).features}
    a = ref["a"].dropna()
    assert res["a"].method == "wasserstein"
    assert res["a"].score == pytest.approx(stats.wasserstein_distance(a, cur["a"]) / np.std(a))
    assert res["b"].score == pytest.approx(stats.ks_2samp(ref["b"], cur["b"]).pvalue)
    keys = sorted(set(ref["c"]) | set(cur["c"]))
    rc, cc = (s.value_counts().reindex(keys, fill_value=0).to_numpy() for s in (ref["c"], cur["c"]))
    assert res["c"].score == pytest.approx(stats.chisquare(cc, rc * len(cur) / len(ref)).pvalue)
    js = {f.feature: f for f in drift.detect(ref, cur, [], ["c"]).features}["c"]
    assert js.method == "jensenshannon"
    assert js.score == pytest.approx(distance.jensenshannon(rc / rc.sum(), cc / cc.sum()))


def test_ks_asymptotic_above_exact_range() -> None:
    n = 30_000
    ref, cur = pd.DataFrame({"a": _num(n)}), pd.DataFrame({"a": _num(n, 0.02)})
    f = _one(ref, cur, "a", "numeric", choices={"a": DriftTest("ks")})
    assert f.score == pytest.approx(stats.ks_2samp(ref["a"], cur["a"], method="asymp").pvalue, rel=1e-6)


def test_psi_numeric_and_categorical() -> None:
    n = 5000
    ref = pd.DataFrame({"a": _num(n), "c": _cat(n, [0.5, 0.5])})
    cur = pd.DataFrame({"a": _num(n, 1.0), "c": _cat(n, [0.5, 0.5])})
    choices = {"a": DriftTest("psi"), "c": DriftTest("psi")}
    res = {f.feature: f for f in drift.detect(ref, cur, ["a"], ["c"], choices=choices).features}
    assert res["a"].drifted and res["a"].score > 0.5
    assert not res["c"].drifted and res["c"].score < 0.01


@pytest.mark.parametrize("storage", ["object", "category", "string"])
def test_category_counts_do_not_depend_on_how_values_are_stored(storage: str) -> None:
    n, m = 3000, 2500
    ref = pd.Series(_cat(n, [0.4, 0.3, 0.2, 0.1]), dtype=object)
    cur = pd.Series(_cat(m, [0.2, 0.3, 0.1, 0.1, 0.3], cats="abcde"), dtype=object)  # "e" is new
    ref[:30], cur[:100] = None, None  # missing values are not counted
    frame_r, frame_c = pd.DataFrame({"c": ref.astype(storage)}), pd.DataFrame({"c": cur.astype(storage)})
    res = {
        method: _one(frame_r, frame_c, "c", "categorical", choices={"c": DriftTest(method)})
        for method in ("jensenshannon", "chisquare")
    }
    keys = sorted(set(ref.dropna()) | set(cur.dropna()))
    rc, cc = (s.value_counts().reindex(keys, fill_value=0).to_numpy() for s in (ref, cur))
    assert res["jensenshannon"].score == pytest.approx(distance.jensenshannon(rc / rc.sum(), cc / cc.sum()))
    assert res["chisquare"].score == 0.0  # a category the reference never had: chi-squared is infinite
    assert res["jensenshannon"].n_reference == n - 30 and res["jensenshannon"].n_current == m - 100


def test_a_block_of_columns_scores_as_each_column_alone() -> None:
    n, m = 2000, 1500
    ref = pd.DataFrame({"a": _num(n), "b": _num(n, 0.2), "c": RNG.poisson(3, n).astype(float), "d": _num(n)})
    cur = pd.DataFrame({"a": _num(m), "b": _num(m), "c": RNG.poisson(4, m).astype(float), "d": _num(m, 0, 2)})
    ref.loc[:400, "a"] = np.nan  # missing tails of different lengths once the values are sorted
    cur.loc[:900, "b"] = np.nan
    cur.loc[:5, "d"] = [np.inf, -np.inf, np.inf, 1e308, -1e308, np.nan]  # infinities, overflowing widths
    cols = ["a", "b", "c", "d"]
    choices = {"b": DriftTest("ks"), "c": DriftTest("ks")}
    together = drift.detect(ref, cur, cols, [], choices=choices, block=4).features
    alone = drift.detect(ref, cur, cols, [], choices=choices, block=1).features
    for t, one in zip(together, alone, strict=True):  # sums over rows of a block run in another order
        assert (t.method, t.n_reference, t.n_current) == (one.method, one.n_reference, one.n_current)
        assert t.score == pytest.approx(one.score, rel=1e-12)
    a = ref["a"].dropna()
    assert together[0].score == pytest.approx(stats.wasserstein_distance(a, cur["a"]) / np.std(a))
    assert together[1].score == pytest.approx(stats.ks_2samp(ref["b"], cur["b"].dropna()).pvalue)


# ------------------------------------------------------------------ shifts that must be caught


@pytest.mark.parametrize("n", [300, 20_000])  # p-value tests at small n, distances at large n
def test_mean_shift_is_caught(n: int) -> None:
    f = _one(pd.DataFrame({"a": _num(n)}), pd.DataFrame({"a": _num(n, 0.5)}), "a", "numeric")
    assert f.drifted, f


@pytest.mark.parametrize("n", [300, 20_000])
def test_variance_change_is_caught(n: int) -> None:
    f = _one(pd.DataFrame({"a": _num(n)}), pd.DataFrame({"a": _num(n, 0, 2.0)}), "a", "numeric")
    assert f.drifted, f


@pytest.mark.parametrize("n", [300, 20_000])
def test_new_category_is_caught(n: int) -> None:
    ref = pd.DataFrame({"c": _cat(n, [0.5, 0.3, 0.2])})
    cur = pd.DataFrame({"c": _cat(n, [0.35, 0.2, 0.15, 0.3])})  # "d" never seen before
    assert _one(ref, cur, "c", "categorical").drifted


def test_jump_in_missing_rate_is_caught() -> None:
    n = 5000
    ref, cur = pd.DataFrame({"a": _num(n)}), pd.DataFrame({"a": _num(n)})
    cur.loc[: n // 4, "a"] = np.nan
    f = _one(ref, cur, "a", "numeric")
    assert f.drifted and "missing rate rose from 0.0% to 25.0%" in f.note


def test_label_shift_is_target_drift(bike_spec: DatasetSpec) -> None:
    n = 3000
    feats = {
        f.name: (_num(n, 10, 5) if f.type == "numeric" else np.array(list(f.categories) * n)[:n])
        for f in bike_spec.features
    }
    ref = pd.DataFrame({**feats, "cnt": RNG.poisson(150, n)})
    cur = pd.DataFrame({**feats, "cnt": RNG.poisson(250, n)})  # same features, more demand
    res = drift.detect_for_spec(bike_spec, ref, cur)
    assert not res.drifted and res.drifted_features == []
    assert res.extra["target"]["drifted"] and res.extra["target"]["feature"] == "cnt"


def test_prediction_and_performance_drift() -> None:
    f = drift.prediction_drift(_num(5000, 100, 10), _num(5000, 130, 10), DriftTest())
    assert f.drifted and f.method == "wasserstein"
    assert drift.performance_drop(100.0, 125.0, higher_is_better=False) == pytest.approx(0.25)
    assert drift.performance_drop(0.8, 0.6, higher_is_better=True) == pytest.approx(0.25)


def test_dataset_decision_uses_share_and_weights() -> None:
    n = 5000
    ref = pd.DataFrame({"a": _num(n), "b": _num(n), "c": _num(n)})
    cur = pd.DataFrame({"a": _num(n, 1.0), "b": _num(n), "c": _num(n)})
    plain = drift.detect(ref, cur, ["a", "b", "c"], [])
    assert plain.drifted_features == ["a"] and not plain.drifted
    assert plain.share_drifted == pytest.approx(1 / 3)
    weighted = drift.detect(ref, cur, ["a", "b", "c"], [], weights={"a": 2.0})
    assert weighted.drifted and weighted.share_drifted == pytest.approx(0.5)


# ------------------------------------------------------------------ no false alarms


@pytest.mark.parametrize("n", [1000, 200_000])
def test_same_distribution_does_not_alarm(n: int) -> None:
    cols = [f"x{i}" for i in range(8)]
    ref = pd.DataFrame({c: _num(n) for c in cols} | {"c": _cat(n, [0.4, 0.3, 0.2, 0.1])})
    cur = pd.DataFrame({c: _num(n) for c in cols} | {"c": _cat(n, [0.4, 0.3, 0.2, 0.1])})
    res = drift.detect(ref, cur, cols, ["c"])
    if n > drift.SMALL_SAMPLE:  # distances do not alarm on sampling noise at large n
        assert res.drifted_features == []
    else:  # p-value tests at 5%: a false alarm on 1 of 9 features is possible, never the dataset
        assert len(res.drifted_features) <= 1
    assert not res.drifted


# ------------------------------------------------------------------ edge cases


def test_empty_current_batch() -> None:
    res = drift.detect(pd.DataFrame({"a": _num(100)}), pd.DataFrame({"a": []}), ["a"], [])
    assert not res.drifted and res.features == [] and "current data is empty" in res.note


def test_constant_columns() -> None:
    ref, same, other = (pd.DataFrame({"a": np.full(500, v)}) for v in (3.0, 3.0, 4.0))
    assert not _one(ref, same, "a", "numeric").drifted
    assert _one(ref, other, "a", "numeric").drifted


def test_all_null_column() -> None:
    ref = pd.DataFrame({"a": _num(500)})
    cur = pd.DataFrame({"a": np.full(500, np.nan)})
    f = _one(ref, cur, "a", "numeric")
    assert f.drifted and np.isnan(f.score)
    assert "no values in the current data" in f.note and "missing rate rose" in f.note
    both = _one(cur, cur, "a", "numeric")
    assert not both.drifted and "no values" in both.note


def test_single_category() -> None:
    ref, cur = pd.DataFrame({"c": ["x"] * 300}), pd.DataFrame({"c": ["x"] * 200})
    f = _one(ref, cur, "c", "categorical")
    assert not f.drifted and f.score == pytest.approx(1.0)  # chi-squared p-value


def test_unseen_categories_only() -> None:
    ref, cur = pd.DataFrame({"c": ["x"] * 3000}), pd.DataFrame({"c": ["y"] * 3000})
    f = _one(ref, cur, "c", "categorical")
    assert f.drifted and f.score == pytest.approx(np.sqrt(np.log(2)))  # maximal JS distance


def test_one_row() -> None:
    f = _one(pd.DataFrame({"a": _num(500)}), pd.DataFrame({"a": [0.1]}), "a", "numeric")
    assert f.n_current == 1 and 0.0 <= f.score <= 1.0 and not f.drifted


def test_wrong_method_for_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="'wasserstein' does not apply to categorical feature 'c'"):
        drift.detect(
            pd.DataFrame({"c": ["x"]}), pd.DataFrame({"c": ["x"]}), [], ["c"], choices={"c": DriftTest("wasserstein")}
        )


def test_the_drift_of_class_probabilities_is_the_drift_of_the_predicted_class() -> None:
    from retrainer.model.drift import prediction_drift
    from retrainer.spec.learning import DriftTest

    rng = np.random.default_rng(0)
    reference = rng.dirichlet([4, 2, 1], 1000)
    assert not prediction_drift(reference, rng.permutation(reference), DriftTest()).drifted
    moved = rng.dirichlet([1, 2, 4], 1000)  # the third class is now the likely one
    shifted = prediction_drift(reference, moved, DriftTest())
    assert shifted.drifted and shifted.kind == "categorical"
