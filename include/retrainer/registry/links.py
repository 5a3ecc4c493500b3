"""Where people look: addresses in the MLflow UI, built in one place.

The pipeline hands these to reviewers (the review request), to operators (the *Drift
report* button on the sensor, task logs) and records some as tags.

Run pages carry ``?workflowType=machine_learning``: the MLflow UI (3.x) otherwise shows a run
in the view a browser last used, GenAI for a new one (traces, evaluation runs, an assistant),
not the training runs and models these are.
"""

from __future__ import annotations

#: the MLflow UI's view for training runs (its GenAI view is the default of a new browser)
ML_VIEW = "?workflowType=machine_learning"


def _run_path(ui: str, experiment_id: str, run_id: str) -> str:
    return f"{ui.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"


def mlflow_run(ui: str, experiment_id: str, run_id: str) -> str:
    """The page of an MLflow run."""
    return _run_path(ui, experiment_id, run_id) + ML_VIEW


def mlflow_artifacts(ui: str, experiment_id: str, run_id: str, path: str = "") -> str:
    """The artifacts tab of an MLflow run, or one artifact in it, selected."""
    return f"{_run_path(ui, experiment_id, run_id)}/artifacts" + (f"/{path}" if path else "") + ML_VIEW


def mlflow_model_version(ui: str, model: str, version: str) -> str:
    """The page of a registered model version (its tags are the evidence)."""
    return f"{ui.rstrip('/')}/#/models/{model}/versions/{version}"
