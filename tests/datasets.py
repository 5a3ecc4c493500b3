"""The data sets the end-to-end tests deliver, made up with known structure (a generator each,
seeded by the caller), and the real ones installed with the packages: the UCI Bike Sharing data
(``retrainer.data.demo_data``) and scikit-learn's copy of the diabetes data (Efron et al., 2004,
"Least Angle Regression"; shipped with scikit-learn under its BSD licence), which no spec here
was written for."""

from __future__ import annotations

import numpy as np
import pandas as pd

from retrainer import periods


def churn_month(period: str, rng: np.random.Generator, n: int = 500) -> pd.DataFrame:
    start = pd.Timestamp(f"{period}-01")
    ts = start + pd.to_timedelta(np.sort(rng.choice(27 * 24 * 60, n, replace=False)), unit="min")
    tenure = rng.uniform(0, 120, n)
    spend = rng.uniform(0, 1000, n)
    plan = rng.choice(["basic", "plus", "pro"], n)
    logit = 2.0 - 0.05 * tenure + 0.002 * spend + np.where(plan == "basic", 1.0, -0.5)
    churned = np.where(rng.uniform(size=n) < 1 / (1 + np.exp(-logit)), "yes", "no").astype(object)
    churned[rng.choice(n, n // 50, replace=False)] = None  # 2% not labelled yet
    spend[rng.choice(n, n // 50, replace=False)] = np.nan  # 2% without a spend: the model fills in the mean
    return pd.DataFrame({"ts": ts, "tenure": tenure, "spend": spend, "plan": plan, "churned": churned})


CARRIERS = ["AA", "B6", "DL", "UA", "WN", "AS"]
DELAYS = ["on_time", "late", "very_late"]
AIRPORTS = [f"{a}{b}X" for a in "ABCDEFGHIJKL" for b in "MNOPQRSTUV"]  # 120 made-up codes


def flights_hour(period: str, rng: np.random.Generator, n: int = 240) -> pd.DataFrame:
    """An hour of departures: several per minute, ids unique, the delay class driven by load,
    carrier and distance."""
    start = pd.Timestamp(period.replace("T", " ") + ":00")
    ts = start + pd.to_timedelta(np.sort(rng.integers(0, 60, n)), unit="min")  # many rows share a minute
    carrier = rng.choice(CARRIERS, n)
    distance = rng.uniform(50, 5000, n).round(0)
    load = rng.uniform(0, 1, n).round(3)
    score = 3.0 * load + np.where(np.isin(carrier, ["B6", "WN"]), 1.0, 0.0) - distance / 5000 + rng.normal(0, 0.4, n)
    delay = np.array(DELAYS, dtype=object)[np.digitize(score, [1.2, 2.4])]
    ids = [f"{period}-{i:04d}" for i in range(n)]
    weights = 1.0 / np.arange(1, len(AIRPORTS) + 1)  # a few hubs, a long tail
    origin = rng.choice(AIRPORTS, n, p=weights / weights.sum())
    return pd.DataFrame(
        {
            "flight_id": ids,
            "scheduled_at": ts,
            "carrier": carrier,
            "origin": origin,
            "distance": distance,
            "load": load,
            "delay": delay,
        }
    )


def diabetes_weeks(start: str = "2024-01-01", weeks: int = 8, seed: int = 0) -> dict[str, pd.DataFrame]:
    """scikit-learn's diabetes data (442 patients: age, sex, body mass index, blood pressure and
    six blood serum measurements, in their original units; the target a measure of disease
    progression a year later) as weekly deliveries of the patients seen that week: each row
    given a visit time, in the file's order, spread over ``weeks`` weeks."""
    from sklearn.datasets import load_diabetes

    frame = load_diabetes(scaled=False, as_frame=True).frame.rename(columns={"target": "progression"})
    rng = np.random.default_rng(seed)
    minutes = np.sort(rng.choice(weeks * 7 * 24 * 60, len(frame), replace=False))
    frame.insert(0, "visited_at", pd.Timestamp(start) + pd.to_timedelta(minutes, unit="min"))
    labels = periods.labels(frame["visited_at"], "weekly")
    return {str(p): g.reset_index(drop=True) for p, g in frame.groupby(labels, sort=True)}
