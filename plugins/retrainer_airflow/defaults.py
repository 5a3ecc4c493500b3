"""Defaults shared by the retrainer DAGs (cheap to import: no heavy modules)."""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

import pendulum
from airflow.sdk import Param

START_DATE = pendulum.datetime(2011, 1, 1, tz="UTC")

DEFAULT_ARGS = {
    "owner": "ml-platform",
    "retries": int(os.environ.get("RETRAINER_TASK_RETRIES", "2")),
    "retry_delay": timedelta(seconds=int(os.environ.get("RETRAINER_RETRY_DELAY_S", "30"))),
}

DEFAULT_DATASET = os.environ.get("RETRAINER_DEFAULT_DATASET", "bike_sharing")


def dag_defaults(retries: int | None = None) -> dict[str, Any]:
    """What every retrainer DAG shares: start date, no catch-up, owner and retries, and the
    failure notifier."""
    from retrainer_airflow.notify import FailureWebhook

    args = DEFAULT_ARGS if retries is None else {**DEFAULT_ARGS, "retries": retries}
    return {"start_date": START_DATE, "catchup": False, "default_args": args, "on_failure_callback": FailureWebhook()}


def known_datasets() -> list[str]:
    """The dataset specs there are (file names in the specs folder), for the Params form."""
    from retrainer.settings import specs_dir

    folder = specs_dir()
    # the default is always offered, so the Params' defaults stay valid whatever folder is read
    return sorted({DEFAULT_DATASET, *(p.stem for p in folder.glob("*.yaml"))})


def dataset_param() -> Param:
    return Param(DEFAULT_DATASET, type="string", enum=known_datasets(), title="Dataset",
                 description="the dataset spec to work on")  # fmt: skip


def data_version_param() -> Param:
    return Param("latest", type="string", pattern=r"^(latest|v[0-9]{4,})$", title="Data version",
                 description="'latest' or a data version such as v0007")  # fmt: skip
