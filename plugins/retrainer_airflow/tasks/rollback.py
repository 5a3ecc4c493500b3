"""rollback_model's task."""

from __future__ import annotations

from airflow.sdk.exceptions import AirflowFailException

from retrainer_airflow.tasks.runtime import Json, context, params, run_context, settings


def rollback() -> Json:
    from retrainer.pipeline import rollback as stage

    p = params()
    who = str(getattr(context()["dag_run"], "triggering_user_name", None) or "unknown")
    try:
        return stage.rollback(settings(), p["dataset"], str(p["version"]), run_context(), p["reason"], who).to_json()
    except (LookupError, ValueError) as exc:
        raise AirflowFailException(str(exc)) from exc
