"""Settings: where the pipeline keeps its state, read from the environment.

Every location may be a local path or ``s3://``. The defaults put all state of the embedded
default under one folder, ``RETRAINER_HOME`` (``<repo>/.local``), so ``make clean`` resets it.
``Settings.to_env`` is the inverse of ``Settings.from_env``: a subprocess given that
environment sees the same settings. What a dataset *is* lives apart, in its spec file
(``retrainer.spec``).

This module is cheap to import (no third-party import): DAG files reach it while parsing.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from retrainer.spec.dataset import DatasetSpec

#: the repository that holds this package (``<repo>/include/retrainer/settings.py``): the one
#: definition of the repository root
REPO_ROOT = Path(__file__).resolve().parents[2]

DEFAULT_MLFLOW_UI_URL = "http://127.0.0.1:5000"

#: each setting and the environment variable it comes from
ENV_VARS: dict[str, str] = {
    "home": "RETRAINER_HOME",
    "specs_dir": "RETRAINER_SPECS_DIR",
    "landing": "RETRAINER_LANDING",
    "quarantine": "RETRAINER_QUARANTINE",
    "validation_results": "RETRAINER_VALIDATION_RESULTS",
    "data_registry": "RETRAINER_DATA_REGISTRY",
    "data_registry_url": "RETRAINER_DATA_REGISTRY_URL",
    "dvc_remote": "RETRAINER_DVC_REMOTE",
    "model_store": "RETRAINER_MODEL_STORE",
    "mlflow_tracking_uri": "MLFLOW_TRACKING_URI",
    "mlflow_artifacts": "RETRAINER_MLFLOW_ARTIFACTS",
    "s3_endpoint_url": "AWS_ENDPOINT_URL",
    "serving_url": "RETRAINER_SERVING_URL",
    "mlflow_ui_url": "RETRAINER_MLFLOW_UI_URL",
}


def default_home(environ: Mapping[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    return Path(env.get("RETRAINER_HOME") or REPO_ROOT / ".local").resolve()


def specs_dir(environ: Mapping[str, str] | None = None) -> Path:
    """The folder of dataset spec files: ``RETRAINER_SPECS_DIR``, else ``<repo>/include/specs``."""
    env = os.environ if environ is None else environ
    return Path(env.get("RETRAINER_SPECS_DIR") or REPO_ROOT / "include" / "specs")


@dataclass(frozen=True)
class Settings:
    """Where the pipeline keeps its state. Every location may be a local path or ``s3://``."""

    home: str
    specs_dir: str
    landing: str
    quarantine: str
    validation_results: str
    data_registry: str
    dvc_remote: str
    model_store: str
    mlflow_tracking_uri: str
    mlflow_artifacts: str
    s3_endpoint_url: str | None = None
    data_registry_url: str | None = None  # the registry's git remote; data_registry is then this host's clone
    serving_url: str | None = None  # a running TF Serving-compatible server the deploy check goes through
    mlflow_ui_url: str = DEFAULT_MLFLOW_UI_URL  # for links shown to reviewers

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = dict(os.environ if environ is None else environ)

        def get(name: str, default: Path | str) -> str:
            return env.get(ENV_VARS[name]) or str(default)

        home = default_home(env)
        settings = cls(
            home=str(home),
            specs_dir=str(specs_dir(env)),
            landing=get("landing", home / "landing"),
            quarantine=get("quarantine", home / "quarantine"),
            validation_results=get("validation_results", home / "validation"),
            data_registry=get("data_registry", home / "data-registry"),
            dvc_remote=get("dvc_remote", home / "dvc-remote"),
            model_store=get("model_store", home / "model-store"),
            mlflow_tracking_uri=get("mlflow_tracking_uri", f"sqlite:///{home / 'mlflow' / 'mlflow.db'}"),
            mlflow_artifacts=get("mlflow_artifacts", home / "mlflow" / "artifacts"),
            s3_endpoint_url=env.get(ENV_VARS["s3_endpoint_url"]) or None,
            data_registry_url=env.get(ENV_VARS["data_registry_url"]) or None,
            serving_url=(env.get(ENV_VARS["serving_url"]) or "").rstrip("/") or None,
            mlflow_ui_url=get("mlflow_ui_url", DEFAULT_MLFLOW_UI_URL).rstrip("/"),
        )
        settings.validate()
        return settings

    def to_env(self) -> dict[str, str]:
        """The environment that makes ``from_env`` return these settings (unset ones left out)."""
        return {ENV_VARS[f.name]: value for f in fields(self) if (value := getattr(self, f.name)) is not None}

    def validate(self) -> None:
        if self.data_registry.startswith("s3://"):
            raise ValueError(
                "RETRAINER_DATA_REGISTRY must be a local folder (it is a git repository); "
                "put RETRAINER_DVC_REMOTE on S3 instead"
            )
        for name in ("landing", "quarantine", "validation_results"):
            if not getattr(self, name):
                raise ValueError(f"setting {name} ({ENV_VARS[name]}) is empty")

    def datasets(self) -> list[str]:
        """The datasets that have a spec (file names in the specs folder), sorted."""
        return sorted(p.stem for p in Path(self.specs_dir).glob("*.yaml"))

    def spec_path(self, dataset: str) -> Path:
        return Path(self.specs_dir) / f"{dataset}.yaml"

    def spec_digest(self, dataset: str, *parts: str) -> str:
        """A digest of ``dataset``'s spec file content and ``parts``: the basis a recorded answer
        (a drift check, a gate's verdict) is reused under, so that any change of either judges again."""
        import hashlib

        digest = hashlib.sha256("".join(f"{part}\n" for part in parts).encode())
        digest.update(self.spec_path(dataset).read_bytes())
        return digest.hexdigest()[:32]

    def load_spec(self, dataset: str) -> DatasetSpec:
        from retrainer.spec.dataset import DatasetSpec

        return DatasetSpec.load(self.spec_path(dataset))
