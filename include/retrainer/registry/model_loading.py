"""Registered models loaded back as Keras models, by version or by ``models:/`` / ``runs:/`` URI."""

from __future__ import annotations

from typing import Any

from retrainer.registry.session import Session
from retrainer.spec.dataset import DatasetSpec


class ModelLoading:
    def __init__(self, session: Session) -> None:
        self.session = session

    def uri(self, spec: DatasetSpec, version: str) -> str:
        return f"models:/{spec.model_name}/{version}"

    def load_keras(self, spec: DatasetSpec, version: str) -> Any:
        return self.load_uri(self.uri(spec, version))

    def load_uri(self, model_uri: str) -> Any:
        import mlflow.tensorflow

        with self.session.tracking():
            return mlflow.tensorflow.load_model(model_uri)
