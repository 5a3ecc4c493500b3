"""Evaluation: metrics, the naive baseline and the promotion gate.

The candidate, the current champion and a naive baseline (the training window's mean,
its positive rate for classification, its class shares for multiclass) are all scored on
the same held-out time slice that follows the training window. The gate is a pure function of those scores.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from retrainer.records import Evaluation, SliceRow
from retrainer.spec.learning import GateConfig

EPS = 1e-7


def regression_metrics(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    err = pred - y
    return {"rmse": float(np.sqrt(np.mean(err**2))), "mae": float(np.mean(np.abs(err)))}


def _auc(y: np.ndarray, p: np.ndarray) -> float:
    """ROC AUC by the rank-sum formula (ties get average ranks)."""
    pos = y > 0.5
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(p, kind="mergesort")
    ranks = np.empty(len(p), dtype=float)
    sorted_p = p[order]
    i = 0
    while i < len(p):
        j = i
        while j + 1 < len(p) and sorted_p[j + 1] == sorted_p[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def classification_metrics(y: np.ndarray, prob: np.ndarray) -> dict[str, float]:
    p = np.clip(prob, EPS, 1 - EPS)
    return {
        "log_loss": float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))),
        "accuracy": float(np.mean((p >= 0.5) == (y > 0.5))),
        "auc": _auc(y, p),
    }


def multiclass_metrics(y: np.ndarray, prob: np.ndarray) -> dict[str, float]:
    """Log-loss, accuracy and macro-F1 of class probabilities ``prob`` [rows, classes] against
    class indices ``y``. Macro-F1 averages the F1 of every class that occurs in ``y`` or is
    predicted (a class neither present nor predicted says nothing); none: undefined."""
    idx = y.astype(int)
    p = np.clip(prob, EPS, 1.0)
    predicted = np.argmax(prob, axis=1)
    f1 = []
    for c in sorted(set(idx.tolist()) | set(predicted.tolist())):
        tp = float(np.sum((predicted == c) & (idx == c)))
        fp = float(np.sum((predicted == c) & (idx != c)))
        fn = float(np.sum((predicted != c) & (idx == c)))
        f1.append(2 * tp / (2 * tp + fp + fn))
    return {
        "log_loss": float(-np.mean(np.log(p[np.arange(len(idx)), idx]))),
        "accuracy": float(np.mean(predicted == idx)),
        "macro_f1": float(np.mean(f1)) if f1 else float("nan"),
    }


def metrics(task: str, y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """The task's metrics of predictions ``pred`` (flat, or [rows, classes] for multiclass)."""
    y = np.asarray(y, dtype=float).reshape(-1)
    if len(y) == 0:
        raise ValueError("cannot score an empty holdout")
    if task == "multiclass":
        return multiclass_metrics(y, np.asarray(pred, dtype=float).reshape(len(y), -1))
    pred = np.asarray(pred, dtype=float).reshape(-1)
    return regression_metrics(y, pred) if task == "regression" else classification_metrics(y, pred)


def baseline_predictions(task: str, y_train: np.ndarray, n: int, n_classes: int = 0) -> np.ndarray:
    """The naive model: the training window's mean (regression), positive rate (classification)
    or share of each class (multiclass; a class the window never saw gets half a row's share,
    so it is unlikely, not impossible)."""
    if task == "multiclass":
        counts = np.bincount(np.asarray(y_train, dtype=int), minlength=n_classes).astype(float)
        weights = np.where(counts > 0, counts, 0.5)
        return np.tile(weights / weights.sum(), (n, 1))
    return np.full(n, float(np.mean(y_train)))


def slice_table(
    cfg: GateConfig,
    task: str,
    frame: pd.DataFrame,
    y: np.ndarray,
    candidate: np.ndarray,
    champion: np.ndarray | None,
) -> list[SliceRow]:
    """The gate metric per value of every slice feature, candidate against champion."""
    out: list[SliceRow] = []
    for feature in cfg.slices:
        values = frame[feature].astype("object").where(frame[feature].notna(), "(missing)").astype(str).to_numpy()
        for value in sorted(set(values)):
            mask = values == value
            rows = int(mask.sum())
            cand = metrics(task, y[mask], candidate[mask])[cfg.metric]
            champ = None if champion is None else metrics(task, y[mask], champion[mask])[cfg.metric]
            regression = None if champ is None else relative_change(cand, champ, cfg.higher_is_better)
            judged = rows >= cfg.min_slice_rows and regression is not None
            failed = judged and regression is not None and regression > cfg.max_slice_regression
            out.append(SliceRow(feature, value, rows, cand, champ, regression, judged, failed))
    return out


#: why a metric can be undefined on a set of rows
_WHY_UNDEFINED = {"auc": " (AUC needs both classes)", "macro_f1": " (no class present or predicted)"}


def _undefined_slices(cfg: GateConfig, slices: list[SliceRow]) -> list[SliceRow]:
    """Slices with enough rows to judge where the candidate's or the champion's metric is undefined."""
    return [
        s
        for s in slices
        if s.rows >= cfg.min_slice_rows
        and not (np.isfinite(s.candidate) and (s.champion is None or np.isfinite(s.champion)))
    ]


def worse_by(fraction: float | None, places: int = 0) -> str:
    """A relative worsening said in words whatever the metric's direction: 0.04 is "4% worse",
    -0.04 "4% better" (for RMSE as for AUC: the sign is already the metric's direction)."""
    if fraction is None or not np.isfinite(fraction):
        return "n/a"
    if fraction == 0:
        return "unchanged"
    size = f"{abs(fraction):.{places}%}"
    if size == f"{0:.{places}%}":  # too small for the places asked: two significant digits
        size = f"{abs(fraction) * 100:.2g}%"
    return f"{size} {'worse' if fraction > 0 else 'better'}"


def relative_change(candidate: float, reference: float, higher_is_better: bool) -> float | None:
    """How much worse ``candidate`` is than ``reference`` (positive = worse, e.g. 0.25 for RMSE
    100 -> 125 or AUC 0.8 -> 0.6); None when the reference is 0 or either is undefined."""
    if not reference or not np.isfinite(candidate) or not np.isfinite(reference):
        return None
    change = (candidate - reference) / abs(reference)
    return -change if higher_is_better else change


def _beats(candidate: float, reference: float, margin: float, higher_is_better: bool) -> bool:
    """Whether ``candidate`` is better than ``reference`` by ``margin`` (a fraction of the
    reference's size). A tie is not an improvement: with a margin of 0 or more the candidate
    must be strictly better; only a negative margin lets it be equal (or that much worse)."""
    gain = candidate - reference if higher_is_better else reference - candidate
    if gain < margin * abs(reference):
        return False
    return gain > 0 or margin < 0


def _overall(
    cfg: GateConfig, c: float, b: float, ch: float | None, champion_version: str | None
) -> list[tuple[bool, str]]:
    """The candidate's score against the baseline and the champion: (passed, reason) each."""
    m, hib = cfg.metric, cfg.higher_is_better
    if not np.isfinite(c):
        verdicts = [(False, f"candidate {m} is undefined on this holdout ({c}){_WHY_UNDEFINED.get(m, '')}")]
    elif _beats(c, b, cfg.baseline_margin, hib):
        said = worse_by(relative_change(c, b, hib))
        verdicts = [(True, f"beats the baseline: {m} {c:.4g} vs {b:.4g}, {said} (margin {cfg.baseline_margin:.0%})")]
    else:
        said = worse_by(relative_change(c, b, hib))
        verdicts = [(False, f"does not beat the baseline by {cfg.baseline_margin:.0%}: {m} {c:.4g} vs {b:.4g}, {said}")]
    if ch is None:
        verdicts.append((True, "no champion yet"))
    elif _beats(c, ch, cfg.champion_margin, hib):
        said = worse_by(relative_change(c, ch, hib), 1)
        verdicts.append((True, f"beats champion v{champion_version}: {m} {c:.4g} vs {ch:.4g}, {said}"))
    elif c == ch:
        verdicts.append((False, f"ties champion v{champion_version} ({m} {c:.4g}): a tie is not an improvement"))
    else:
        said = worse_by(relative_change(c, ch, hib), 1)
        verdicts.append(
            (
                False,
                f"does not beat champion v{champion_version} by {cfg.champion_margin:.0%}:"
                f" {m} {c:.4g} vs {ch:.4g}, {said}",
            )
        )
    return verdicts


def _by_slice(cfg: GateConfig, slices: list[SliceRow]) -> list[tuple[bool, str]]:
    """The slices: those where the metric is undefined are named, not judged (never a silent
    pass); those worse than the champion by more than the spec allows fail the gate."""
    verdicts = []
    undefined = _undefined_slices(cfg, slices)
    if undefined:
        where = ", ".join(f"{s.feature}={s.value} ({s.rows} rows)" for s in undefined[:5])
        more = f" and {len(undefined) - 5} more" if len(undefined) > 5 else ""
        why = _WHY_UNDEFINED.get(cfg.metric, "")
        verdicts.append(
            (True, f"{cfg.metric} is undefined on {len(undefined)} slice(s){why}, not judged: {where}{more}")
        )
    failed = [s for s in slices if s.failed]
    if failed:
        worst = ", ".join(f"{s.feature}={s.value} {worse_by(s.regression)}" for s in failed[:5])
        verdicts.append((False, f"slices worse than the champion by more than {cfg.max_slice_regression:.0%}: {worst}"))
    return verdicts


def gate(
    cfg: GateConfig,
    candidate: dict[str, float],
    baseline: dict[str, float],
    champion: dict[str, float] | None,
    champion_version: str | None,
    slices: list[SliceRow] | None = None,
    n_holdout: int = 0,
) -> Evaluation:
    """Pass when the candidate beats the baseline by ``baseline_margin`` and, if a champion
    exists, is better than it by ``champion_margin`` on the same holdout (strictly: a tie is no
    improvement, unless the margin is negative), and no slice
    (with enough rows) is worse than the champion's by more than ``max_slice_regression``.

    The verdict is the evaluation record the tasks hand on (its report link is added once the
    report is written)."""
    m = cfg.metric
    c, b = candidate[m], baseline[m]
    ch = None if champion is None else champion[m]
    verdicts = _overall(cfg, c, b, ch, champion_version) + _by_slice(cfg, slices or [])
    return Evaluation(
        passed=all(ok for ok, _ in verdicts),
        metric=m,
        candidate=c,
        baseline=b,
        champion=ch,
        champion_version=champion_version,
        reasons=[reason for _, reason in verdicts],
        slices=list(slices or []),
        delta_vs_champion=None if ch is None else c - ch,
        candidate_metrics=candidate,
        baseline_metrics=baseline,
        champion_metrics=champion,
        n_holdout=n_holdout,
    )
