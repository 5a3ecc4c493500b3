"""Categories learned from the training window (``categories: learn``)."""

from __future__ import annotations

import pandas as pd

from retrainer.model.training import learned_categories, vocabulary
from retrainer.spec.columns import Feature
from retrainer.spec.dataset import DatasetSpec


def test_a_learned_vocabulary_is_the_most_frequent_values_up_to_its_cap() -> None:
    feature = Feature("origin", "categorical", learn_categories=True, max_categories=3)
    frame = pd.DataFrame({"origin": ["JFK"] * 5 + ["LAX"] * 3 + ["BOS"] * 3 + ["ORD"] * 3 + ["SEA"] + [None] * 4})
    # ties in text order, so the same window always learns the same vocabulary
    assert vocabulary(feature, frame) == ("JFK", "BOS", "LAX")
    assert vocabulary(feature, frame.sample(frac=1, random_state=1)) == ("JFK", "BOS", "LAX")
    listed = Feature("origin", "categorical", categories=("A", "B"))
    assert vocabulary(listed, frame) == ("A", "B")  # a listed vocabulary is the spec's, whatever the data


def test_what_was_learned_is_recorded_with_its_coverage(bike_spec: DatasetSpec) -> None:
    from dataclasses import replace

    learned = Feature("weathersit", "categorical", learn_categories=True, max_categories=2)
    spec = replace(bike_spec, features=tuple(learned if f.name == "weathersit" else f for f in bike_spec.features))
    frame = pd.DataFrame({"weathersit": ["Clear"] * 6 + ["Mist"] * 3 + ["Light Rain"]})
    assert learned_categories(spec, frame) == {"categories.weathersit": "learned 2 of 3 values (max 2), 90.0% of rows"}
