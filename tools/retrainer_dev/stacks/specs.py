"""The dataset specs a stack's tasks read: the shipped bike spec, made small enough to train in moments."""

from __future__ import annotations

from pathlib import Path

import yaml

from retrainer.settings import REPO_ROOT

BIKE_SPEC = REPO_ROOT / "include" / "specs" / "bike_sharing.yaml"


def small_bike_spec(specs: Path, window: int = 2, epochs: int = 6, review: bool = False) -> Path:
    """The bike spec with a short window and few epochs, written into ``specs``; with ``review``,
    a reviewer's decision before promotion (where the spec has an approval policy), so the
    Human-in-the-loop path runs too."""
    spec = yaml.safe_load(BIKE_SPEC.read_text())
    spec["training"].update(window_periods=window, epochs=epochs)
    if review and isinstance(spec.get("approval"), dict):
        spec["approval"]["policy"] = "review"
    specs.mkdir(parents=True, exist_ok=True)
    path = specs / "bike_sharing.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path
