"""The task's view of Airflow: its settings, its run, and the records it reads from XCom."""

from __future__ import annotations

import os
from typing import Any, TypeVar

from airflow.sdk import Variable, get_current_context
from airflow.sdk.exceptions import AirflowFailException

from retrainer.records import ContractError, Record, RunContext
from retrainer.settings import Settings

Json = dict[str, Any]
R = TypeVar("R", bound=Record)

SETTINGS_VARIABLE = "retrainer_settings"


def settings() -> Settings:
    """Settings for this task: the worker's environment, overlaid with the Airflow Variable
    ``retrainer_settings`` if it exists (a JSON object of the same variable names, e.g.
    ``{"RETRAINER_MODEL_STORE": "s3://models"}``). Read at run time, never at parse time."""
    overrides = Variable.get(SETTINGS_VARIABLE, default=None, deserialize_json=True)
    if overrides is None:
        return Settings.from_env()
    if not isinstance(overrides, dict) or not all(isinstance(v, str) for v in overrides.values()):
        raise AirflowFailException(f"Airflow Variable {SETTINGS_VARIABLE} must be a JSON object of strings")
    return Settings.from_env({**os.environ, **overrides})


def context() -> Any:
    return get_current_context()


def params() -> Any:
    return context().get("params") or {}


def read(cls: type[R], value: Any, what: str) -> R:
    """An upstream task's record from XCom (or a conf), checked; a wrong shape fails the task
    without retries, naming the field."""
    try:
        return cls.from_json(value, what)
    except ContractError as exc:
        raise AirflowFailException(f"{what} is not a {cls.__name__}: {exc}") from exc


def run_type() -> str:
    return str(getattr(context()["dag_run"], "run_type", "manual")).lower().split(".")[-1]


def is_backfill() -> bool:
    return "backfill" in run_type()


def run_context() -> RunContext:
    ctx = context()
    ti = ctx["ti"]
    kind = run_type()
    trigger = str(params().get("reason") or "") or ("new data version" if "asset" in kind else kind)
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
