"""The Celery configuration of retrainer's workers: Airflow's own, and a preload.

``CELERY_CONFIG`` is Airflow's ``DEFAULT_CELERY_CONFIG`` unchanged. What this module adds is
that ``airflow celery worker`` imports :mod:`retrainer_airflow.preload` as it starts, before
it forks its pool processes, so every task process forked from them starts with TensorFlow,
MLflow, Great Expectations, DVC and pandas imported instead of importing them again.

Set ``[celery] celery_config_options = retrainer_airflow.celery_config.CELERY_CONFIG``
(``AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS``) for the workers and the scheduler alike. The
scheduler imports this module too (to send tasks) but imports nothing heavy: the preload runs
on Celery's ``import_modules`` signal, which only a worker sends (as Airflow's own preload of
its operators does; connected before it, so Airflow's ``gc.freeze`` covers these modules too).
"""

from __future__ import annotations

from typing import Any

from airflow.providers.celery.executors.default_celery import DEFAULT_CELERY_CONFIG
from celery.signals import import_modules

CELERY_CONFIG: dict[str, Any] = dict(DEFAULT_CELERY_CONFIG)


@import_modules.connect
def preload_task_imports(*args: Any, **kwargs: Any) -> None:
    """In the worker's main process, before the pool processes are forked."""
    import retrainer_airflow.preload  # noqa: F401
