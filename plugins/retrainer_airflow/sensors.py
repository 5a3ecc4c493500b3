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

from datetime import timedelta
from typing import Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue
from airflow.sdk.exceptions import AirflowException

from retrainer_airflow.triggers import DriftTrigger


class DriftSensor(BaseSensorOperator):
    template_fields = ("dataset", "data_version")

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

    def _check(self, data_version: str) -> dict[str, Any]:
        from retrainer import monitoring
        from retrainer_airflow import tasks

        result = monitoring.check_drift(tasks.settings(), self.dataset, data_version, tasks.run_context())
        self.log.info("drift check of %s %s: %s", self.dataset, result.get("data_version"), result["reason"])
        if result.get("report_uri"):
            self.log.info("drift report: %s", result["report_uri"])
        return result

    def _judge(self, data_version: str) -> PokeReturnValue | bool:
        self._last = self._check(data_version)
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
