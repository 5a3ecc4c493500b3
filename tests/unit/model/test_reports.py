from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from retrainer.model import drift, reports
from retrainer.spec.learning import DriftTest


def test_drift_report_shows_decision_tests_and_plots(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    ref = pd.DataFrame({"a": rng.normal(0, 1, 3000), "b": rng.normal(0, 1, 3000), "c": rng.choice(["x", "y"], 3000)})
    cur = pd.DataFrame({"a": rng.normal(1, 1, 3000), "b": rng.normal(0, 1, 3000), "c": rng.choice(["x", "y"], 3000)})
    result = drift.detect(ref, cur, ["a", "b"], ["c"], choices={"b": DriftTest("ks")})
    result.extra["performance"] = {
        "metric": "rmse",
        "champion_holdout": 10.0,
        "current": 13.0,
        "drop": 0.3,
        "threshold": 0.15,
        "drifted": True,
    }
    page = reports.drift_report_html("Drift of t", result, ref, cur, {"decision": "retrain"}, tmp_path / "r.html")
    html = page.read_text()
    assert "Drift of t" in html and result.summary() in html
    assert html.count("data:image/png;base64,") == 3  # one plot per feature
    assert "drift at or above 0.1" in html  # wasserstein on a
    assert "drift below 0.05" in html  # the p-value test on b
    assert (
        "30.0% worse (13 vs 10 on the champion&#x27;s holdout)" in html
        or "30.0% worse (13 vs 10 on the champion's holdout)" in html
    )
