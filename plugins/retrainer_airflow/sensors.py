"""DriftSensor: succeeds when new data has drifted enough to retrain the model.

Shaped like Airflow's own sensors: ``poke()`` does the check (on a worker, since it reads
data and runs the champion); ``execute()`` pokes once and, when there is no drift yet,
defers to :class:`DriftTrigger`, which waits without a worker slot for a newer data version;
``execute_complete()`` raises if the trigger reports an error and otherwise pokes again.
It is deferrable by default; ``deferrable=False`` gives the classic ``poke`` or
``reschedule`` modes. The sensor pushes
the drift check's result (reason, drift summary, data version) as its XCom.
"""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

from airflow.sdk import BaseOperatorLink, BaseSensorOperator, PokeReturnValue
from airflow.sdk.exceptions import AirflowException

from retrainer_airflow.triggers import DriftTrigger


def mlflow_run_url(check: dict[str, Any]) -> str:
    """The MLflow UI page of the drift check's run (its report is under Artifacts > drift)."""
    base = os.environ.get("RETRAINER_MLFLOW_UI_URL", "http://127.0.0.1:5000").rstrip("/")
    if not check.get("mlflow_run_id"):
        return ""
    return f"{base}/#/experiments/{check['mlflow_experiment_id']}/runs/{check['mlflow_run_id']}/artifacts"


class DriftReportLink(BaseOperatorLink):
    """'Drift report' button on the task in the Airflow UI, to the check's MLflow run."""

    name = "Drift report (MLflow)"

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        return str(getattr(operator, "report_link", "") or "")


class DriftSensor(BaseSensorOperator):
    template_fields = ("dataset", "data_version")
    operator_extra_links = (DriftReportLink(),)

    def __init__(
        self,
        *,
        dataset: str,
        data_version: str = "latest",
        deferrable: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.dataset = dataset
        self.data_version = data_version
        self.deferrable = deferrable
        self._last: dict[str, Any] = {}
        self.report_link = ""

    def _check(self, data_version: str) -> dict[str, Any]:
        from retrainer import monitoring
        from retrainer_airflow import tasks

        result = monitoring.check_drift(tasks.settings(), self.dataset, data_version, tasks.run_context())
        self.log.info("drift check of %s %s: %s", self.dataset, result.get("data_version"), result["reason"])
        return result

    def _judge(self, data_version: str) -> PokeReturnValue | bool:
        self._last = self._check(data_version)
        if self._last.get("report_uri"):
            self.report_link = mlflow_run_url(self._last)
            self.log.info("drift report: %s (MLflow UI: %s)", self._last["report_uri"], self.report_link)
        return PokeReturnValue(is_done=True, xcom_value=self._last) if self._last["retrain"] else False

    def poke(self, context: Any) -> PokeReturnValue | bool:
        # the first look is at the version asked for; later looks (reschedule) at the newest
        return self._judge(self.data_version if not self._last else "latest")

    def _defer(self) -> None:
        from retrainer_airflow import tasks

        self.defer(
            trigger=DriftTrigger(
                dataset=self.dataset,
                registry=tasks.settings().data_registry,
                last_checked=self._last.get("data_version"),
                poll_interval=self.poke_interval,
            ),
            method_name="execute_complete",
            timeout=timedelta(seconds=self.timeout),
        )

    def execute(self, context: Any) -> Any:
        if not self.deferrable:
            return super().execute(context)
        done = self.poke(context)
        if isinstance(done, PokeReturnValue):
            return done.xcom_value
        self._defer()
        return None

    def execute_complete(self, context: Any, event: dict[str, Any] | None = None) -> Any:
        if not event or event.get("status") != "new_data":
            raise AirflowException(f"drift trigger failed: {(event or {}).get('message', 'no event')}")
        done = self._judge(event["data_version"])
        if isinstance(done, PokeReturnValue):
            return done.xcom_value
        self._defer()
        return None
