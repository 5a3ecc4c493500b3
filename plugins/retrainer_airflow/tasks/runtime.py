"""The task's view of Airflow: its settings, its context and its run."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from airflow.sdk import Variable, get_current_context
from airflow.sdk.exceptions import AirflowFailException

if TYPE_CHECKING:
    from airflow.sdk import Context

    from retrainer.records import RunContext
    from retrainer.settings import Settings

SETTINGS_VARIABLE = "retrainer_settings"


def settings() -> Settings:
    """Settings for this task: the worker's environment, overlaid with the Airflow Variable
    ``retrainer_settings`` if it exists (a JSON object of the same variable names, e.g.
    ``{"RETRAINER_MODEL_STORE": "s3://models"}``). Read at run time, never at parse time."""
    from retrainer.settings import Settings

    overrides = Variable.get(SETTINGS_VARIABLE, default=None, deserialize_json=True)
    if overrides is None:
        return Settings.from_env()
    if not isinstance(overrides, dict) or not all(isinstance(v, str) for v in overrides.values()):
        raise AirflowFailException(f"Airflow Variable {SETTINGS_VARIABLE} must be a JSON object of strings")
    return Settings.from_env({**os.environ, **overrides})


def context() -> Context:
    return get_current_context()


def run_type() -> str:
    return str(getattr(context()["dag_run"], "run_type", "manual")).lower().split(".")[-1]


def is_backfill() -> bool:
    return "backfill" in run_type()


def run_context(reason: str | None = None) -> RunContext:
    """Which Airflow run asks, recorded on MLflow runs and model versions; ``reason`` (the run's
    Param, if it has one) says why it started, else the kind of run does."""
    from retrainer.records import RunContext

    ti = context()["ti"]
    kind = run_type()
    trigger = reason or ("new data version" if "asset" in kind else kind)
    return RunContext(
        dag_id=ti.dag_id,
        run_id=ti.run_id,
        try_number=int(getattr(ti, "try_number", 1) or 1),
        trigger=trigger,
        run_type=kind,
    )


def airflow_ui_url() -> str:
    """This run's page in the Airflow UI."""
    ti = context()["ti"]
    base = (
        os.environ.get("AIRFLOW__API__BASE_URL") or f"http://127.0.0.1:{os.environ.get('AIRFLOW__API__PORT', '8080')}"
    )
    return f"{base.rstrip('/')}/dags/{ti.dag_id}/runs/{ti.run_id}"
