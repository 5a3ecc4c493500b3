"""Drift: per-feature tests computed column-vectorized, and a dataset-level decision.

Numeric features: Kolmogorov-Smirnov (p-value), Wasserstein distance normalized by the
reference's standard deviation, PSI. Categorical features: chi-squared (p-value),
Jensen-Shannon distance, PSI. Each statistic is computed for a block of columns at once
(numeric: one sort and one running sum; categorical: each sample's values factorized on
its own, then counted with bincount); a block holds at most ``BLOCK_VALUES`` values per
array, so many short columns go together and long ones one at a time: the peak memory
is a few arrays of one block, never of the whole table.

Defaults follow the sample size, as Evidently's do: with at most 1,000 reference rows a
p-value test (KS for numeric, chi-squared for categorical); above that, where every
p-value test flags everything, a distance with a threshold (normalized Wasserstein for
numeric, Jensen-Shannon for categorical). A numeric column with at most 5 distinct values
is treated as categorical. Missing values are left out of the distribution tests and
checked on their own: a jump in a feature's missing rate drifts that feature. Every
choice can be overridden per feature in the dataset spec (``drift:`` section).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from retrainer.spec.dataset import DatasetSpec
from retrainer.spec.learning import DriftTest

P_VALUE_METHODS = frozenset({"ks", "chisquare"})
NUMERIC_METHODS = frozenset({"ks", "wasserstein", "psi", "jensenshannon", "chisquare"})
CATEGORICAL_METHODS = frozenset({"chisquare", "jensenshannon", "psi"})
DEFAULT_THRESHOLDS = {"ks": 0.05, "chisquare": 0.05, "wasserstein": 0.1, "jensenshannon": 0.1, "psi": 0.1}
SMALL_SAMPLE = 1000  # reference rows up to which p-value tests are the default
FEW_VALUES = 5  # a numeric column with at most this many distinct values is tested as categorical
PSI_NUMERIC_MIN_UNIQUE = 20  # PSI bins numeric columns with more distinct reference values than this
EXACT_KS_MAX_N = 10_000  # below this, KS p-values are exact (scipy), above asymptotic
BLOCK_VALUES = 1 << 15  # values per column block (reference + current rows x columns)
MAX_BLOCK = 16


@dataclass
class FeatureDrift:
    feature: str
    kind: str  # "numeric" | "categorical"
    method: str
    score: float
    threshold: float
    drifted: bool
    n_reference: int
    n_current: int
    null_rate_reference: float
    null_rate_current: float
    note: str = ""

    @property
    def higher_is_drift(self) -> bool:
        return self.method not in P_VALUE_METHODS


@dataclass
class DriftResult:
    features: list[FeatureDrift]
    drift_share: float
    share_drifted: float
    drifted: bool
    n_reference: int
    n_current: int
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def drifted_features(self) -> list[str]:
        return [f.feature for f in self.features if f.drifted]

    def summary(self) -> str:
        head = (
            f"{'DRIFT' if self.drifted else 'no drift'}: {len(self.drifted_features)} of {len(self.features)} "
            f"features drifted (share {self.share_drifted:.2f}, threshold {self.drift_share:.2f})"
        )
        if self.drifted_features:
            head += ": " + ", ".join(self.drifted_features)
        return head + (f"; {self.note}" if self.note else "")

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["drifted_features"] = self.drifted_features
        return out


# ----------------------------------------------------------------------------- choice


def default_method(kind: str, n_reference: int, n_unique: int) -> str:
    if kind == "numeric" and n_unique > FEW_VALUES:
        return "ks" if n_reference <= SMALL_SAMPLE else "wasserstein"
    return "chisquare" if n_reference <= SMALL_SAMPLE else "jensenshannon"


def _choose(kind: str, choice: DriftTest, n_reference: int, n_unique: int, feature: str) -> tuple[str, float]:
    method = choice.method or default_method(kind, n_reference, n_unique)
    allowed = NUMERIC_METHODS if kind == "numeric" else CATEGORICAL_METHODS
    if method not in allowed:
        raise ValueError(f"drift method '{method}' does not apply to {kind} feature '{feature}'")
    threshold = DEFAULT_THRESHOLDS[method] if choice.threshold is None else choice.threshold
    return method, threshold


# ----------------------------------------------------------------------------- numeric block


def _numeric_block(ref: np.ndarray, cur: np.ndarray) -> dict[str, np.ndarray]:
    """KS statistic, Wasserstein-1 and distinct-value counts for every column of a block.

    ``ref`` (n x k) and ``cur`` (m x k) are float arrays with NaN for missing values. They
    are sorted per column (as rows of a k x (n + m) array, so every sort runs over
    contiguous memory) and merged; the two empirical CDFs are read off cumulative counts.
    The order inside a run of equal values does not matter, because the CDFs are only
    compared where a run ends.
    """
    n, k = ref.shape
    # each sample sorted on its own (fast vectorized sorts, in place), then the two sorted
    # runs merged: a stable argsort of two runs is a linear merge, which keeps large columns cheap
    runs = np.empty((k, n + len(cur)))
    runs[:, :n] = ref.T
    runs[:, n:] = cur.T
    runs[:, :n].sort(axis=1)  # NaN sort last
    runs[:, n:].sort(axis=1)
    order = np.argsort(runs, axis=1, kind="stable")
    values = np.take_along_axis(runs, order, axis=1)
    del runs
    valid = ~np.isnan(values)  # missing values are last in every row: row j has n_valid[j] values
    from_ref = order < n
    del order
    from_ref &= valid
    n_ref = np.count_nonzero(from_ref, axis=1)
    n_valid = np.count_nonzero(valid, axis=1)
    n_cur = n_valid - n_ref
    # one running sum gives F_ref - F_cur: +1/n_ref per reference value, -1/n_cur per current one
    step = np.where(from_ref, 1.0 / np.maximum(n_ref, 1)[:, None], -1.0 / np.maximum(n_cur, 1)[:, None])
    del from_ref
    width = np.empty_like(values)
    with np.errstate(invalid="ignore"):  # inf - inf
        np.subtract(values[:, 1:], values[:, :-1], out=width[:, :-1])  # NaN where the next value is missing
    width[:, -1] = np.nan
    del values
    # a step of the CDFs ends where the next value differs (width > 0) or at the last valid value
    step_end = np.not_equal(width, 0.0)
    step_end &= valid
    del valid
    for j, end in enumerate(n_valid):  # the missing tail adds nothing
        step[j, end:] = 0.0
        width[j, max(end - 1, 0) :] = 0.0
    gap = np.abs(np.cumsum(step, axis=1, out=step), out=step)
    ks = np.max(gap, axis=1, where=step_end, initial=0.0)
    if not np.isfinite(width).all():  # infinite values: inf - inf counts as 0, inf as the largest float
        np.nan_to_num(width, copy=False, nan=0.0)
    wasserstein = np.einsum("ij,ij->i", gap, width)
    return {
        "ks": ks,
        "wasserstein": wasserstein,
        "n_unique": np.count_nonzero(step_end, axis=1),
        "n_ref": n_ref,
        "n_cur": n_cur,
        "ref_std": _std(ref, complete=bool((n_ref == n).all())),
    }


def _std(ref: np.ndarray, complete: bool) -> np.ndarray:
    """Standard deviation per column, missing values left out (0 for a column without values)."""
    if not len(ref):
        return np.zeros(ref.shape[1])
    if complete:  # no missing value: the plain std, same figures as nanstd at a third of its cost
        return np.nan_to_num(np.std(ref, axis=0))
    with warnings.catch_warnings():  # an all-missing column has no std; it is reported as such
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nan_to_num(np.nanstd(ref, axis=0))


def _ks_p_values(ref: np.ndarray, cur: np.ndarray, d: np.ndarray, n_ref: np.ndarray, n_cur: np.ndarray) -> np.ndarray:
    """Two-sided KS p-values: exact (scipy) for small samples, asymptotic above."""
    from scipy import stats

    p = np.ones(len(d))
    for j in range(len(d)):
        n, m = int(n_ref[j]), int(n_cur[j])
        if n == 0 or m == 0:
            p[j] = np.nan
        elif max(n, m) <= EXACT_KS_MAX_N:
            a, b = ref[:, j], cur[:, j]
            p[j] = stats.ks_2samp(a[~np.isnan(a)], b[~np.isnan(b)]).pvalue
        else:
            p[j] = stats.kstwo.sf(d[j], round(n * m / (n + m)))
    return p


def _fill_zeros(p: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """PSI's guard against log(0): empty bins get a tiny share (as Evidently does)."""
    nonzero = np.where((p > 0) & mask, p, np.inf).min(axis=1, keepdims=True)
    fill = np.where(nonzero <= 1e-4, nonzero / 1e6, 1e-4)
    return np.where((p == 0) & mask, fill, p)


def _psi(ref_share: np.ndarray, cur_share: np.ndarray, mask: np.ndarray) -> np.ndarray:
    r = _fill_zeros(ref_share, mask)
    c = _fill_zeros(cur_share, mask)
    terms = np.where(mask, (r - c) * np.log(np.where(mask, r / c, 1.0)), 0.0)
    return np.asarray(terms.sum(axis=1))


def _numeric_psi(ref: np.ndarray, cur: np.ndarray) -> np.ndarray:
    """PSI on equal-width bins over the merged range (Sturges' rule for the bin count); a
    column with at most 20 distinct reference values is compared value by value."""
    k = ref.shape[1]
    out = np.full(k, np.nan)
    for j in range(k):  # bins differ per column; the counting itself is vectorized
        a, b = ref[:, j], cur[:, j]
        a, b = a[~np.isnan(a)], b[~np.isnan(b)]
        if len(a) == 0 or len(b) == 0:
            continue
        both = np.concatenate([a, b])
        if len(np.unique(a)) <= PSI_NUMERIC_MIN_UNIQUE:
            values, codes = np.unique(both, return_inverse=True)
            ra = np.bincount(codes[: len(a)], minlength=len(values)) / len(a)
            rb = np.bincount(codes[len(a) :], minlength=len(values)) / len(b)
        else:
            edges = np.histogram_bin_edges(both, bins="sturges")
            ra = np.histogram(a, edges)[0] / len(a)
            rb = np.histogram(b, edges)[0] / len(b)
        mask = np.ones((1, len(ra)), dtype=bool)
        out[j] = _psi(ra[None, :], rb[None, :], mask)[0]
    return out


# ----------------------------------------------------------------------------- categorical block


def _column_counts(ref: pd.Series, cur: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Counts per category of one column in each sample, over the categories of both in the
    order they first appear (in the reference, then in the current data); missing values
    are not counted. Each sample is factorized on its own (no copy of the two together) and
    only the distinct values of the two are matched."""
    codes_r, uniques_r = pd.factorize(ref, use_na_sentinel=True)
    codes_c, uniques_c = pd.factorize(cur, use_na_sentinel=True)
    union, values = pd.factorize(pd.concat([pd.Series(uniques_r), pd.Series(uniques_c)], ignore_index=True))
    out = []
    for codes, where in ((codes_r, union[: len(uniques_r)]), (codes_c, union[len(uniques_r) :])):
        per_code = np.bincount(codes + 1, minlength=len(where) + 1)[1:]  # code -1 (missing) drops out
        out.append(np.bincount(where, weights=per_code, minlength=len(values)))
    return out[0], out[1]


def _category_counts(ref: Sequence[pd.Series], cur: Sequence[pd.Series]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Counts per category of the union of both samples: (k x K) for ref and cur, and a mask
    of the categories each column really has (columns have different cardinalities)."""
    pairs = [_column_counts(r, c) for r, c in zip(ref, cur, strict=True)]
    sizes = np.array([len(r) for r, _ in pairs], dtype=int)
    width = max(sizes, default=0) or 1
    counts_r, counts_c = np.zeros((len(pairs), width)), np.zeros((len(pairs), width))
    for j, (r, c) in enumerate(pairs):
        counts_r[j, : len(r)] = r
        counts_c[j, : len(c)] = c
    mask = np.arange(width)[None, :] < sizes[:, None]
    return counts_r, counts_c, mask


def _categorical_scores(ref_counts: np.ndarray, cur_counts: np.ndarray, mask: np.ndarray) -> dict[str, np.ndarray]:
    from scipy import stats

    n_ref = ref_counts.sum(axis=1)
    n_cur = cur_counts.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ref_share = ref_counts / n_ref[:, None]
        cur_share = cur_counts / n_cur[:, None]
        expected = ref_counts * (n_cur / n_ref)[:, None]
        chi_terms = np.where(mask & (expected > 0), (cur_counts - expected) ** 2 / expected, 0.0)
        unseen = (mask & (expected == 0) & (cur_counts > 0)).any(axis=1)
        chi = np.where(unseen, np.inf, chi_terms.sum(axis=1))
        dof = np.maximum(mask.sum(axis=1) - 1, 1)
        chi_p = np.where(mask.sum(axis=1) <= 1, 1.0, stats.chi2.sf(chi, dof))
        mid = (ref_share + cur_share) / 2
        kl_r = np.where(ref_share > 0, ref_share * np.log(ref_share / mid), 0.0).sum(axis=1)
        kl_c = np.where(cur_share > 0, cur_share * np.log(cur_share / mid), 0.0).sum(axis=1)
        js = np.sqrt(np.maximum((kl_r + kl_c) / 2, 0.0))
        psi = _psi(np.nan_to_num(ref_share), np.nan_to_num(cur_share), mask)
    return {"chisquare": chi_p, "jensenshannon": js, "psi": psi, "n_ref": n_ref, "n_cur": n_cur}


# ----------------------------------------------------------------------------- entry point


def _drifted(method: str, score: float, threshold: float) -> bool:
    if not math.isfinite(score) and method not in P_VALUE_METHODS:
        return math.isinf(score)
    if method in P_VALUE_METHODS:
        return bool(score < threshold)
    return bool(score >= threshold)


def detect(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    numeric: Sequence[str],
    categorical: Sequence[str],
    choices: dict[str, DriftTest] | None = None,
    drift_share: float = 0.5,
    null_rate_delta: float = 0.1,
    weights: dict[str, float] | None = None,
    block: int | None = None,
) -> DriftResult:
    """Compare ``current`` with ``reference`` feature by feature and decide for the dataset.

    A feature drifts when its test says so, or when its missing rate grew by more than
    ``null_rate_delta``. The dataset drifts when the (weighted) share of drifted features
    reaches ``drift_share``. Columns go through the tests in blocks of ``block`` columns;
    by default a block holds at most ``BLOCK_VALUES`` values per array, so many short
    columns are computed together and long ones one by one, at a bounded memory cost.
    """
    choices = choices or {}
    n, m = len(reference), len(current)
    if m == 0 or n == 0:
        empty = "current" if m == 0 else "reference"
        return DriftResult([], drift_share, 0.0, False, n, m, note=f"{empty} data is empty: nothing to compare")
    block = block or max(1, min(MAX_BLOCK, BLOCK_VALUES // (n + m)))
    results: list[FeatureDrift] = []
    for start in range(0, len(numeric), block):
        cols = list(numeric[start : start + block])
        results += _numeric_block_drift(reference, current, cols, choices, null_rate_delta)
    for start in range(0, len(categorical), block):
        cols = list(categorical[start : start + block])
        results += _categorical_block_drift(reference, current, cols, choices, null_rate_delta)

    weights = weights or {}
    total = sum(weights.get(f.feature, 1.0) for f in results)
    drifted_weight = sum(weights.get(f.feature, 1.0) for f in results if f.drifted)
    share = drifted_weight / total if total else 0.0
    return DriftResult(results, drift_share, share, bool(results) and share >= drift_share, n, m)


def _floats(values: pd.Series) -> np.ndarray:
    if values.dtype == np.float64:  # as it is: no copy
        return values.to_numpy()
    return values.to_numpy(dtype=float, na_value=np.nan)


def _matrix(frame: pd.DataFrame, cols: list[str]) -> np.ndarray:
    if len(cols) == 1:  # a long column goes alone: a view of it
        return _floats(frame[cols[0]])[:, None]
    return np.column_stack([_floats(frame[c]) for c in cols])


def _numeric_block_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    cols: list[str],
    choices: dict[str, DriftTest],
    null_rate_delta: float,
) -> list[FeatureDrift]:
    """Drift of a block of numeric columns: one sort and merge for all of them."""
    n, m = len(reference), len(current)
    ref, cur = _matrix(reference, cols), _matrix(current, cols)
    stats_ = _numeric_block(ref, cur)
    nr_ref, nr_cur = 1 - stats_["n_ref"] / n, 1 - stats_["n_cur"] / m
    methods = [
        _choose("numeric", choices.get(c, DriftTest()), int(stats_["n_ref"][j]), int(stats_["n_unique"][j]), c)
        for j, c in enumerate(cols)
    ]
    need = {meth for meth, _ in methods}
    scores: dict[str, np.ndarray] = {}
    if "ks" in need:
        scores["ks"] = _ks_p_values(ref, cur, stats_["ks"], stats_["n_ref"], stats_["n_cur"])
    if "wasserstein" in need:
        scores["wasserstein"] = stats_["wasserstein"] / np.maximum(stats_["ref_std"], 0.001)
    if "psi" in need:
        scores["psi"] = _numeric_psi(ref, cur)
    if need & {"chisquare", "jensenshannon"}:  # few distinct values: categorical tests on the values
        ref_cols = [pd.Series(ref[:, j]) for j in range(len(cols))]
        cur_cols = [pd.Series(cur[:, j]) for j in range(len(cols))]
        cat = _categorical_scores(*_category_counts(ref_cols, cur_cols))
        scores.update({key: cat[key] for key in ("chisquare", "jensenshannon")})
    return [
        _feature(
            col,
            "numeric",
            method,
            float(scores[method][j]),
            threshold,
            int(stats_["n_ref"][j]),
            int(stats_["n_cur"][j]),
            nr_ref[j],
            nr_cur[j],
            null_rate_delta,
        )
        for j, (col, (method, threshold)) in enumerate(zip(cols, methods, strict=True))
    ]


def _categorical_block_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    cols: list[str],
    choices: dict[str, DriftTest],
    null_rate_delta: float,
) -> list[FeatureDrift]:
    """Drift of a block of categorical columns: counts per category, then all scores at once."""
    n, m = len(reference), len(current)
    counts_r, counts_c, mask = _category_counts([reference[c] for c in cols], [current[c] for c in cols])
    scores = _categorical_scores(counts_r, counts_c, mask)
    nr_ref, nr_cur = 1 - scores["n_ref"] / n, 1 - scores["n_cur"] / m
    out = []
    for j, col in enumerate(cols):
        method, threshold = _choose("categorical", choices.get(col, DriftTest()), n, int(mask[j].sum()), col)
        out.append(
            _feature(
                col,
                "categorical",
                method,
                float(scores[method][j]),
                threshold,
                int(scores["n_ref"][j]),
                int(scores["n_cur"][j]),
                nr_ref[j],
                nr_cur[j],
                null_rate_delta,
            )
        )
    return out


def _feature(
    name: str,
    kind: str,
    method: str,
    score: float,
    threshold: float,
    n_ref: int,
    n_cur: int,
    null_ref: float,
    null_cur: float,
    null_rate_delta: float,
) -> FeatureDrift:
    notes = []
    drifted = False
    if n_ref == 0 or n_cur == 0:
        score = float("nan")
        notes.append("no values in the " + ("reference" if n_ref == 0 else "current") + " data")
    else:
        drifted = _drifted(method, score, threshold)
    if null_cur - null_ref > null_rate_delta:
        drifted = True
        notes.append(f"missing rate rose from {null_ref:.1%} to {null_cur:.1%}")
    return FeatureDrift(
        name, kind, method, score, threshold, drifted, n_ref, n_cur, float(null_ref), float(null_cur), "; ".join(notes)
    )


def detect_for_spec(spec: DatasetSpec, reference: pd.DataFrame, current: pd.DataFrame) -> DriftResult:
    """Feature drift of ``current`` against ``reference`` as the spec's ``drift`` section says,
    plus target drift (reported in ``extra["target"]``, not counted in the feature share)."""
    cfg = spec.drift
    result = detect(
        reference,
        current,
        [f.name for f in spec.numeric_features],
        [f.name for f in spec.categorical_features],
        choices=dict(cfg.features),
        drift_share=cfg.drift_share,
        null_rate_delta=cfg.null_rate_delta,
        weights=dict(cfg.weights),
    )
    col = spec.target.column
    if col in reference and col in current and len(reference) and len(current):
        kind = "numeric" if spec.target.task == "regression" else "categorical"
        target = detect(
            reference[[col]].astype(float if kind == "numeric" else str),
            current[[col]].astype(float if kind == "numeric" else str),
            [col] if kind == "numeric" else [],
            [col] if kind == "categorical" else [],
            choices={col: cfg.target},
            null_rate_delta=cfg.null_rate_delta,
        )
        result.extra["target"] = asdict(target.features[0])
    return result


def prediction_drift(reference_pred: np.ndarray, current_pred: np.ndarray, test: DriftTest) -> FeatureDrift:
    """Drift of the serving model's predictions on current data against reference data: of the
    predicted value (one per row), or of the predicted class (class probabilities per row)."""
    ref, cur = np.asarray(reference_pred, dtype=float), np.asarray(current_pred, dtype=float)
    if ref.ndim == 2 and ref.shape[1] > 1:
        frame_r = pd.DataFrame({"prediction": np.argmax(ref, axis=1).astype(str)})
        frame_c = pd.DataFrame({"prediction": np.argmax(cur, axis=1).astype(str)})
        return detect(frame_r, frame_c, [], ["prediction"], choices={"prediction": test}).features[0]
    frame_r = pd.DataFrame({"prediction": ref.reshape(-1)})
    frame_c = pd.DataFrame({"prediction": cur.reshape(-1)})
    return detect(frame_r, frame_c, ["prediction"], [], choices={"prediction": test}).features[0]


def performance_drop(reference_metric: float, current_metric: float, higher_is_better: bool) -> float:
    """Relative worsening of a metric (positive = worse), e.g. 0.25 for RMSE 100 -> 125."""
    from retrainer.model.evaluation import relative_change

    return relative_change(current_metric, reference_metric, higher_is_better) or 0.0
