"""The registry client: MLflow tracking and model registry, with the conventions reviewers rely on.

A thin facade over its parts, as MLflow's own client is over its tracking and registry clients:

- ``runs`` (``retrainer.registry.runs``): one experiment per model, one MLflow run per Airflow
  run, found again by its tags so a retry reuses it;
- ``versions`` (``retrainer.registry.versions``): a version registered once per run, its tags,
  the aliases ``challenger`` and ``champion`` (moved by compare-and-set, under the model's lock);
- ``models`` (``retrainer.registry.model_loading``): registered models loaded back.

It talks to the tracking URI of its settings and sets no global MLflow state when it is made.
The few MLflow calls that only exist in the fluent API (logging a model, loading one by
``models:/`` URI) run inside ``Registry.tracking()``, which points MLflow at these settings for
their duration only. Missing things are told apart by MLflow's error codes, never by message text.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from retrainer.registry.model_loading import ModelLoading
from retrainer.registry.runs import Runs
from retrainer.registry.session import Session
from retrainer.registry.versions import Versions
from retrainer.settings import Settings

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient


class Registry:
    """The registry of ``settings``: ``runs``, ``versions`` and ``models``, over one MLflow client."""

    def __init__(self, settings: Settings) -> None:
        self.session = Session(settings)
        self.settings = settings
        self.tracking_uri = self.session.tracking_uri
        self.client: MlflowClient = self.session.client
        self.tracking = self.session.tracking
        self.runs = Runs(self.session)
        self.versions = Versions(self.session)
        self.models = ModelLoading(self.session)
