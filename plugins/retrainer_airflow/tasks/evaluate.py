"""retrain_model's evaluate task."""

from __future__ import annotations

from typing import TYPE_CHECKING

from retrainer_airflow.tasks.boundary import record_task
from retrainer_airflow.tasks.runtime import settings

if TYPE_CHECKING:
    from retrainer.records import Evaluation, TrainedRun, TrainingPlan


@record_task
def evaluate(plan: TrainingPlan, trained: TrainedRun) -> Evaluation:
    """Candidate, champion and a naive baseline on the same holdout, and the spec's gate."""
    from retrainer.pipeline import evaluate as stage

    return stage.evaluate(settings(), plan, trained)
