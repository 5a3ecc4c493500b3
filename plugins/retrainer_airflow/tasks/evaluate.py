"""retrain_model's evaluate task."""

from __future__ import annotations

from retrainer.records import TrainedRun, TrainingPlan
from retrainer_airflow.tasks.runtime import Json, read, settings


def evaluate(plan: Json, trained: Json) -> Json:
    from retrainer.pipeline import evaluate as stage

    return stage.evaluate(
        settings(), read(TrainingPlan, plan, "plan_training"), read(TrainedRun, trained, "train")
    ).to_json()
