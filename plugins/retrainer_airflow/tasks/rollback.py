"""rollback_model's task."""

from __future__ import annotations

from typing import TYPE_CHECKING

from retrainer.outcomes import Refused
from retrainer_airflow.tasks.boundary import record_task
from retrainer_airflow.tasks.runtime import context, run_context, settings

if TYPE_CHECKING:
    from retrainer.records import Rollback, RollbackConf


@record_task
def rollback(params: RollbackConf) -> Rollback:
    """Serve the version the Params name again (``previous``: the one the champion replaced),
    recording who, why and when; a version that cannot be served is refused, saying why."""
    from retrainer.pipeline import rollback as stage

    who = str(getattr(context()["dag_run"], "triggering_user_name", None) or "unknown")
    ctx = run_context(params.reason)
    try:
        return stage.rollback(settings(), params.dataset, params.version, ctx, params.reason, who)
    except (LookupError, ValueError) as exc:
        raise Refused(str(exc)) from exc
