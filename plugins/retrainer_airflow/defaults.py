"""Defaults shared by the retrainer DAGs (cheap to import: no heavy modules)."""

from __future__ import annotations

import os
from datetime import timedelta

import pendulum

START_DATE = pendulum.datetime(2011, 1, 1, tz="UTC")

DEFAULT_ARGS = {
    "owner": "ml-platform",
    "retries": int(os.environ.get("RETRAINER_TASK_RETRIES", "2")),
    "retry_delay": timedelta(seconds=int(os.environ.get("RETRAINER_RETRY_DELAY_S", "30"))),
}

DEFAULT_DATASET = os.environ.get("RETRAINER_DEFAULT_DATASET", "bike_sharing")
