"""retrain_model's deploy and verify tasks."""

from __future__ import annotations

from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from retrainer.records import Deployment, Promotion, RegisteredVersion, TrainingPlan
from retrainer_airflow.tasks.runtime import Json, read, run_context, settings


def deploy(plan: Json, registered: Json, promoted: Json) -> Json:
    from retrainer.pipeline import deploy as stage

    promotion = read(Promotion, promoted, "promote")
    if not promotion.promoted:
        raise AirflowSkipException(f"v{promotion.version} was not promoted; nothing to deploy")
    return stage.deploy(
        settings(), read(TrainingPlan, plan, "plan_training"), read(RegisteredVersion, registered, "register")
    ).to_json()


def verify(plan: Json, deployed: Json) -> Json:
    """Check the deployed version; if it is bad, put the previous champion back on its own
    (alias and label) before failing the run, so a bad deploy never stays."""
    from retrainer.pipeline import deploy as stage
    from retrainer.pipeline import rollback
    from retrainer.serving.export import DeployVerificationError
    from retrainer.serving.postdeploy import DeployCheckError

    s = settings()
    planned = read(TrainingPlan, plan, "plan_training")
    deployment = read(Deployment, deployed, "deploy")
    try:
        return stage.verify_deployment(s, planned, deployment).to_json()
    except (DeployCheckError, DeployVerificationError) as exc:
        outcome = rollback.roll_back_bad_deploy(s, planned, deployment, run_context(), str(exc))
        raise AirflowFailException(f"{exc}; {outcome}") from exc
