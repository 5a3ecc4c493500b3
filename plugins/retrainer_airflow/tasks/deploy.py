"""retrain_model's deploy and verify tasks."""

from __future__ import annotations

from typing import TYPE_CHECKING

from retrainer.outcomes import NothingToDo, Refused
from retrainer_airflow.tasks.boundary import record_task
from retrainer_airflow.tasks.runtime import run_context, settings

if TYPE_CHECKING:
    from retrainer.records import Deployment, Promotion, RegisteredVersion, RetrainConf, TrainingPlan, Verification


@record_task
def deploy(plan: TrainingPlan, registered: RegisteredVersion, promoted: Promotion) -> Deployment:
    """The promoted version into the model store, labelled ``canary`` (or ``stable``)."""
    from retrainer.pipeline import deploy as stage

    if not promoted.promoted:
        raise NothingToDo(f"v{promoted.version} was not promoted; nothing to deploy")
    return stage.deploy(settings(), plan, registered)


@record_task
def verify(plan: TrainingPlan, deployed: Deployment, params: RetrainConf) -> Verification:
    """Check the deployed version; if it is bad, put the previous champion back on its own
    (alias and label) before failing the run, so a bad deploy never stays."""
    from retrainer.pipeline import deploy as stage
    from retrainer.pipeline import rollback
    from retrainer.serving.export import DeployVerificationError
    from retrainer.serving.postdeploy import DeployCheckError

    s = settings()
    try:
        return stage.verify_deployment(s, plan, deployed)
    except (DeployCheckError, DeployVerificationError) as exc:
        outcome = rollback.roll_back_bad_deploy(s, plan, deployed, run_context(params.reason), str(exc))
        raise Refused(f"{exc}; {outcome}") from exc
