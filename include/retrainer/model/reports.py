"""Pictures for people: learning curves and holdout plots, written as PNG files."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from retrainer.model.evaluation import worse_by

if TYPE_CHECKING:
    from retrainer.records import Evaluation


def _pyplot():  # type: ignore[no-untyped-def]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def learning_curves(history: dict[str, list[float]], path: Path, title: str) -> Path:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for key, values in history.items():
        ax.plot(range(1, len(values) + 1), values, label=key)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.set_yscale("log")
    return _save(fig, ax, title, path)


def holdout_plot(y: np.ndarray, candidate: np.ndarray, champion: np.ndarray | None, path: Path, title: str) -> Path:
    """Actual vs predicted on the holdout for the candidate (and the champion, if any); with
    class probabilities, the actual class against the most probable one."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9, 3.5))
    n = min(len(y), 168)  # the first 168 rows: a week of hourly data
    if np.ndim(candidate) == 2:
        ax.step(range(n), y[:n], label="actual class", color="black", linewidth=1.5, where="mid")
        ax.step(range(n), np.argmax(candidate[:n], axis=1), label="candidate's class", linewidth=1, where="mid")
        if champion is not None:
            ax.step(
                range(n),
                np.argmax(champion[:n], axis=1),
                label="champion's class",
                linewidth=1,
                linestyle="--",
                where="mid",
            )
        ax.set_xlabel("row (time order)")
        ax.set_ylabel("class index")
        return _save(fig, ax, title, path)
    ax.plot(y[:n], label="actual", color="black", linewidth=1.5)
    ax.plot(candidate[:n], label="candidate", linewidth=1)
    if champion is not None:
        ax.plot(champion[:n], label="champion", linewidth=1, linestyle="--")
    ax.set_xlabel("row (time order)")
    return _save(fig, ax, title, path)


def _save(fig: Any, ax: Any, title: str, path: Path) -> Path:
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    _pyplot().close(fig)
    return path


def _png_base64(fig: Any) -> str:
    import base64
    import io

    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=80)
    _pyplot().close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def _feature_plot(name: str, kind: str, reference: Any, current: Any) -> str:
    import pandas as pd

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4.2, 2.6))
    ref = pd.Series(reference).dropna()
    cur = pd.Series(current).dropna()
    if kind == "numeric" and len(ref) and len(cur):
        both = np.concatenate([ref.to_numpy(dtype=float), cur.to_numpy(dtype=float)])
        edges = np.histogram_bin_edges(both, bins=30)
        ax.hist(ref, bins=edges, density=True, alpha=0.55, label="reference")
        ax.hist(cur, bins=edges, density=True, alpha=0.55, label="current")
    else:
        shares = pd.DataFrame(
            {
                "reference": ref.astype(str).value_counts(normalize=True),
                "current": cur.astype(str).value_counts(normalize=True),
            }
        ).fillna(0.0)
        shares.sort_index().plot.bar(ax=ax, width=0.8, alpha=0.8)
        ax.tick_params(axis="x", labelrotation=45, labelsize=7)
    ax.set_title(name, fontsize=9)
    ax.legend(fontsize=7)
    return _png_base64(fig)


def drift_report_html(
    title: str,
    result: Any,
    reference: Any,
    current: Any,
    context: dict[str, str],
    path: Path,
) -> Path:
    """One self-contained HTML file: the decision, then per feature the reference and current
    distributions side by side with the test, its score and its threshold."""
    import html

    rows = []
    for f in sorted(result.features, key=lambda f: (not f.drifted, f.feature)):
        img = _feature_plot(f.feature, f.kind, reference[f.feature], current[f.feature])
        direction = "at or above" if f.higher_is_drift else "below"
        verdict = "DRIFT" if f.drifted else "ok"
        rows.append(
            f"<tr class='{'drift' if f.drifted else ''}'><td><b>{html.escape(f.feature)}</b><br>{f.kind}</td>"
            f"<td>{verdict}</td><td>{f.method}</td><td>{f.score:.4g}</td>"
            f"<td>drift {direction} {f.threshold:g}</td>"
            f"<td>{f.null_rate_reference:.1%} &rarr; {f.null_rate_current:.1%}</td>"
            f"<td>{html.escape(f.note)}</td><td><img src='data:image/png;base64,{img}'></td></tr>"
        )
    extra_rows = []
    for key, value in result.extra.items():
        if isinstance(value, dict) and "drop" in value:  # performance of the champion on the new data
            extra_rows.append(
                f"<tr class='{'drift' if value['drifted'] else ''}'><td>{html.escape(key)}</td>"
                f"<td>{'DROP' if value['drifted'] else 'ok'}</td><td>{html.escape(value['metric'])} change</td>"
                f"<td>{worse_by(value['drop'], 1)} ({value['current']:.4g} vs {value['champion_holdout']:.4g} "
                f"on the champion's holdout)</td><td>worse by more than {value['threshold']:.0%}</td></tr>"
            )
        elif isinstance(value, dict) and "score" in value:
            extra_rows.append(
                f"<tr class='{'drift' if value.get('drifted') else ''}'><td>{html.escape(key)}</td>"
                f"<td>{'DRIFT' if value.get('drifted') else 'ok'}</td>"
                f"<td>{html.escape(str(value.get('method', '')))}</td><td>{value['score']:.4g}</td>"
                f"<td>{html.escape(str(value.get('threshold', '')))}</td></tr>"
            )
        else:
            extra_rows.append(f"<tr><td>{html.escape(key)}</td><td colspan=4>{html.escape(str(value))}</td></tr>")
    ctx = "".join(f"<tr><td>{html.escape(k)}</td><td>{html.escape(v)}</td></tr>" for k, v in context.items())
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;margin:1.5em}} table{{border-collapse:collapse;margin-bottom:1.5em}}
td,th{{border:1px solid #ccc;padding:4px 8px;vertical-align:middle;font-size:13px}}
tr.drift td{{background:#fdecea}} .verdict{{font-size:1.3em;font-weight:bold}}</style></head><body>
<h1>{html.escape(title)}</h1>
<p class="verdict">{html.escape(result.summary())}</p>
<table>{ctx}<tr><td>rows</td><td>reference {result.n_reference}, current {result.n_current}</td></tr></table>
<h2>Target, predictions, performance</h2>
<table><tr><th>what</th><th>verdict</th><th>test</th><th>score</th><th>threshold</th></tr>{"".join(extra_rows)}</table>
<h2>Features</h2>
<table><tr><th>feature</th><th>verdict</th><th>test</th><th>score</th><th>threshold</th><th>missing</th>
<th>note</th><th>reference vs current</th></tr>{"".join(rows)}</table>
</body></html>"""
    path.write_text(page)
    return path


def _confusion(y: np.ndarray, candidate: np.ndarray, classes: tuple[str, ...]) -> str:
    """How often each actual class was predicted as each class, by the candidate."""
    plt = _pyplot()
    k = candidate.shape[1]
    names = list(classes) if len(classes) == k else [str(i) for i in range(k)]
    counts = np.zeros((k, k), dtype=int)
    np.add.at(counts, (y.astype(int), np.argmax(candidate, axis=1)), 1)
    fig, ax = plt.subplots(figsize=(1.2 + 0.55 * k, 1.0 + 0.5 * k))
    ax.imshow(counts, cmap="Blues")
    for i in range(k):
        for j in range(k):
            ax.text(j, i, str(counts[i, j]), ha="center", va="center", fontsize=8)
    ax.set_xticks(range(k), names, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(k), names, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("actual")
    ax.set_title("candidate: actual vs predicted class")
    return _png_base64(fig)


def _predicted_vs_actual(y: np.ndarray, candidate: np.ndarray, champion: np.ndarray | None) -> str:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.scatter(y, candidate, s=6, alpha=0.5, label="candidate")
    if champion is not None:
        ax.scatter(y, champion, s=6, alpha=0.4, label="champion")
    lo, hi = float(np.min(y)), float(np.max(y))
    ax.plot([lo, hi], [lo, hi], color="black", linewidth=1)
    ax.set_xlabel("actual")
    ax.set_ylabel("predicted")
    ax.set_title("predicted vs actual")
    ax.legend(fontsize=8)
    return _png_base64(fig)


def _slice_plot(
    evaluation: Evaluation, feature: str, holdout: Any, y: np.ndarray, candidate: np.ndarray, with_champion: bool
) -> str:
    """Candidate residuals by the feature's values, and the metric per value against the champion."""
    import pandas as pd

    plt = _pyplot()
    rows = [s for s in evaluation.slices if s.feature == feature]
    values = holdout[feature].astype("object").where(holdout[feature].notna(), "(missing)").astype(str)
    # with class probabilities: what the model missed of the actual class
    two_d = np.ndim(candidate) == 2
    residual = 1.0 - candidate[np.arange(len(y)), y.astype(int)] if two_d else candidate - y
    frame = pd.DataFrame({"slice": values.to_numpy(), "residual": residual})
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.2))
    order = [r.value for r in rows]
    left.boxplot([frame.loc[frame["slice"] == v, "residual"] for v in order], tick_labels=order)
    left.axhline(0, color="black", linewidth=0.8)
    left.set_title(f"candidate residuals by {feature}")
    x = np.arange(len(rows))
    right.bar(x - 0.2, [r.candidate for r in rows], width=0.4, label="candidate")
    if with_champion:
        right.bar(x + 0.2, [r.champion or 0.0 for r in rows], width=0.4, label="champion")
    right.set_xticks(x, order)
    right.set_title(f"{evaluation.metric} by {feature}")
    right.legend(fontsize=8)
    for a in (left, right):
        a.tick_params(axis="x", labelrotation=30, labelsize=8)
    return _png_base64(fig)


def _metric(value: float | None) -> str:
    """A metric for a table cell: blank when there is none, 'undefined' when it is not finite."""
    if value is None:
        return ""
    return f"{value:.4g}" if np.isfinite(value) else "undefined"


def _slice_rows(evaluation: Evaluation) -> str:
    import html

    return "".join(
        f"<tr class='{'drift' if s.failed else ''}'><td>{html.escape(s.feature)}</td><td>{html.escape(s.value)}</td>"
        f"<td>{s.rows}</td><td>{_metric(s.candidate)}</td><td>{_metric(s.champion)}</td>"
        f"<td>{'' if s.regression is None else worse_by(s.regression, 1)}</td>"
        f"<td>{'FAIL' if s.failed else ('ok' if s.judged else 'not judged')}</td></tr>"
        for s in evaluation.slices
    )


def evaluation_report_html(
    title: str,
    evaluation: Evaluation,
    y: np.ndarray,
    candidate: np.ndarray,
    champion: np.ndarray | None,
    holdout: Any,
    path: Path,
    classes: tuple[str, ...] = (),
) -> Path:
    """The evidence a registry reviewer reads: the gate's decision and reasons, predicted vs
    actual (a confusion matrix of the ``classes`` for class probabilities), residuals by slice
    (1 - the actual class's probability), and candidate vs champion per slice."""
    import html

    if np.ndim(candidate) == 2:
        images = [_confusion(y, candidate, classes)]
    else:
        images = [_predicted_vs_actual(y, candidate, champion)]
    for feature in sorted({s.feature for s in evaluation.slices}):
        images.append(_slice_plot(evaluation, feature, holdout, y, candidate, champion is not None))
    reasons = "".join(f"<li>{html.escape(r)}</li>" for r in evaluation.reasons)
    imgs = "".join(f"<img src='data:image/png;base64,{i}'>" for i in images)
    champion_score = "" if evaluation.champion is None else f"{evaluation.champion:.4g}"
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;margin:1.5em}} table{{border-collapse:collapse;margin-bottom:1.5em}}
td,th{{border:1px solid #ccc;padding:4px 8px;font-size:13px}} tr.drift td{{background:#fdecea}}
.verdict{{font-size:1.3em;font-weight:bold}} img{{margin:4px}}</style></head><body>
<h1>{html.escape(title)}</h1>
<p class="verdict">gate {"PASSED" if evaluation.passed else "FAILED"}</p><ul>{reasons}</ul>
<table><tr><th>{html.escape(evaluation.metric)}</th><th>candidate</th><th>champion</th><th>baseline</th></tr>
<tr><td>holdout</td><td>{evaluation.candidate:.4g}</td>
<td>{champion_score}</td><td>{evaluation.baseline:.4g}</td></tr></table>
<h2>Slices</h2><table><tr><th>feature</th><th>value</th><th>rows</th><th>candidate</th><th>champion</th>
<th>vs champion</th><th>verdict</th></tr>{_slice_rows(evaluation)}</table>
<h2>Plots</h2>{imgs}</body></html>"""
    path.write_text(page)
    return path
