"""Pictures for people: learning curves and holdout plots, written as PNG files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


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
    """Actual vs predicted on the holdout for the candidate (and the champion, if any)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9, 3.5))
    n = min(len(y), 168)  # the first 168 rows: a week of hourly data
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
