"""Where people look: addresses in the MLflow UI, built in one place.

The pipeline hands these to reviewers (the review request), to operators (the *Drift
report* button on the sensor, task logs) and records some as tags.
"""

from __future__ import annotations


def mlflow_run(ui: str, experiment_id: str, run_id: str) -> str:
    """The page of an MLflow run."""
    return f"{ui.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"


def mlflow_artifacts(ui: str, experiment_id: str, run_id: str, path: str = "") -> str:
    """The artifacts tab of an MLflow run, or one artifact in it."""
    return f"{mlflow_run(ui, experiment_id, run_id)}/artifacts" + (f"/{path}" if path else "")


def mlflow_model_version(ui: str, model: str, version: str) -> str:
    """The page of a registered model version (its tags are the evidence)."""
    return f"{ui.rstrip('/')}/#/models/{model}/versions/{version}"
