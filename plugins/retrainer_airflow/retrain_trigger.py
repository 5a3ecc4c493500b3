"""``trigger_retrain``: start a drift retraining unless one of the dataset is in flight, as one step.

Two ``monitor_drift`` runs that decide at once (a burst of data versions, each announced on its
own) would otherwise both find nothing in flight and both start a retraining. Here the
in-flight check and the trigger happen in one task, and the task runs one instance at a time
across every ``monitor_drift`` run (``max_active_tis_per_dag=1``, held by the scheduler until
the instance has ended): the run it starts is in the metadata database, queued, before the next
decision looks. Airflow's own trigger step (``TriggerDagRunOperator``) does the rest: the run
id is one per dataset and data version, and one that exists already is skipped.

Its base's module imports much of Airflow's run-triggering code. A DAG file that uses this
operator imports that module at its own top (``import
airflow.providers.standard.operators.trigger_dagrun``), so that the DAG processor imports it
once, in its own process (``[dag_processor] parsing_pre_import_modules``), rather than in the
fresh process of every parse of the file.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk.exceptions import AirflowSkipException

if TYPE_CHECKING:
    from airflow.sdk import Context


class TriggerRetrainOperator(TriggerDagRunOperator):
    """Starts ``retrain_model`` with the conf ``start_retraining`` made, one decision at a time."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_active_tis_per_dag", 1)
        kwargs.setdefault("skip_when_already_exists", True)
        super().__init__(**kwargs)

    def execute(self, context: Context) -> Any:
        from retrainer_airflow.tasks import monitor

        dataset, version = _subject(self.conf)
        if dataset and version:
            busy = monitor.in_flight(context["ti"], dataset, version)
            if busy:
                raise AirflowSkipException(
                    f"{busy} drift retraining(s) of {dataset} already in flight; not starting another for {version}"
                )
        else:
            self.log.warning("the conf names no dataset and data_version (%r): no in-flight check", self.conf)
        return super().execute(context)


def _subject(conf: Any) -> tuple[str, str]:
    """(dataset, data_version) of the retraining the conf asks for; a conf rendered as JSON text is read too."""
    if isinstance(conf, str):
        try:
            conf = json.loads(conf)
        except ValueError:
            return "", ""
    if not isinstance(conf, dict):
        return "", ""
    return str(conf.get("dataset") or ""), str(conf.get("data_version") or "")
