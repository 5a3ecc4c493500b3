"""Defaults shared by the retrainer DAGs (cheap to import: no heavy modules)."""

from __future__ import annotations

import logging
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

#: the dataset the Params default to when the specs folder holds none (the shipped spec's)
SHIPPED_DATASET = "bike_sharing"

#: one writer of the data registry at a time, the Airflow way (the registry's remote also
#: refuses a second writer's push, which then starts again: the pool saves that work)
REGISTRY_POOL = "retrainer_data_registry"
#: the pools the DAGs use, created by the setup (``make demo``, ``make up``, the compose file's
#: airflow-init, the tests): name -> (slots, description)
POOLS = {REGISTRY_POOL: (1, "retrainer: tasks that write the data registry (version_batch), one at a time")}

#: the JSON Schema dialect of the Params. Airflow checks every Param's schema against its
#: dialect's metaschema each time it resolves the Param, and while it serializes a DAG it resolves
#: each DAG Param several times in every task (the Params are copied into each task): against
#: the default dialect (2020-12, a metaschema of seven vocabularies) that was about half of
#: retrain_model's parse. Draft 7 has every keyword the Params use and checks in a quarter of
#: the time.
PARAM_SCHEMA_DIALECT = "http://json-schema.org/draft-07/schema#"


def param(*default: Any, description: str | None = None, **schema: Any) -> Param:
    """An Airflow ``Param`` (``default`` optional: without it the field is required) whose JSON
    Schema is ``schema`` in the dialect ``PARAM_SCHEMA_DIALECT``."""
    if len(default) > 1:
        raise TypeError(f"param() takes one default, got {len(default)}")
    given = {"default": default[0]} if default else {}
    return Param(**given, description=description, schema={"$schema": PARAM_SCHEMA_DIALECT, **schema})


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
    return sorted({default_dataset(), *(p.stem for p in folder.glob("*.yaml"))})


def default_dataset() -> str:
    """The dataset the Params default to: ``RETRAINER_DEFAULT_DATASET`` when the specs folder
    holds that spec; else the folder's only spec; else the shipped bike spec if the folder has
    it; else the folder's first spec by name. So a folder of one team's specs defaults to one
    of them, never to a spec it does not hold."""
    from retrainer.settings import specs_dir

    names = sorted(p.stem for p in specs_dir().glob("*.yaml"))
    chosen = os.environ.get("RETRAINER_DEFAULT_DATASET", "").strip()
    if chosen and (chosen in names or not names):
        return chosen
    if chosen:
        logging.getLogger(__name__).warning(
            "RETRAINER_DEFAULT_DATASET=%s: no such spec in %s; the Params default to another", chosen, specs_dir()
        )
    if not names:
        return SHIPPED_DATASET
    return SHIPPED_DATASET if SHIPPED_DATASET in names else names[0]


def retrain_cron() -> str:
    """When ``retrain_model`` runs on schedule: ``RETRAINER_RETRAIN_SCHEDULE`` (a cron), else as
    each period of the most frequent ``training.every`` among the specs starts (monthly for
    monthly specs only, daily once a daily spec is there); a run retrains the datasets whose
    period ended within its interval. Specs are read as YAML only (no heavy import); one that
    does not load is left out here and fails where it is used, with its reason."""
    from retrainer.periods import CRONS, FREQUENCIES
    from retrainer.settings import specs_dir
    from retrainer.spec.cadence import cadences

    cron = os.environ.get("RETRAINER_RETRAIN_SCHEDULE", "").strip()
    if cron:
        return cron
    return CRONS[min(["monthly", *cadences(specs_dir()).values()], key=FREQUENCIES.index)]


def dataset_param(description: str = "the dataset spec to work on") -> Param:
    default = default_dataset()
    return param(
        default,
        type="string",
        enum=known_datasets(),
        title="Dataset",
        description=f"{description} (a spec file in the specs folder)",
        examples=[default],
    )


def period_param() -> Param:
    from retrainer.periods import ANY, EXAMPLES, FORMS

    forms = ", ".join(f"{FORMS[f]} ({f})" for f in FORMS)
    return param(
        "2011-01",
        type="string",
        pattern=f"^(?:{ANY})$",
        title="Period",
        description=f"the batch's period, written in its dataset's frequency: {forms}",
        examples=[EXAMPLES[f] for f in EXAMPLES],
    )


def data_version_param() -> Param:
    return param(
        "latest",
        type="string",
        pattern=r"^(latest|v[0-9]{4,})$",
        title="Data version",
        description="'latest' or a data version such as v0007",
        examples=["latest", "v0007"],
    )


def sensor_args(name: str, poke_s: int, wait_s: int) -> dict[str, Any]:
    """How a retrainer sensor waits, from ``RETRAINER_<NAME>_POKE_S`` (how often it looks),
    ``RETRAINER_<NAME>_WAIT_S`` (how long before it ends as skipped) and
    ``RETRAINER_<NAME>_DEFERRABLE`` (``false`` where no triggerer runs, e.g. ``dag.test``:
    it then reschedules instead of deferring)."""
    env = f"RETRAINER_{name.upper()}"
    return {
        "poke_interval": int(os.environ.get(f"{env}_POKE_S", str(poke_s))),
        "timeout": int(os.environ.get(f"{env}_WAIT_S", str(wait_s))),
        "mode": "reschedule",
        "soft_fail": True,
        "deferrable": os.environ.get(f"{env}_DEFERRABLE", "true").lower() == "true",
    }
