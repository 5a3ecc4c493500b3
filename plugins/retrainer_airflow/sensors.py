"""DriftSensor: succeeds when new data has drifted enough to retrain the model.

Shaped like Airflow's own sensors: ``poke()`` does the check (on a worker, since it reads
data and runs the champion); ``execute()`` pokes once and, when there is no drift yet,
defers to :class:`DriftTrigger`, which waits without a worker slot for a newer data version;
``execute_complete()`` raises if the trigger reports an error and otherwise pokes again.
It is deferrable by default; ``deferrable=False`` gives the classic ``poke`` or
``reschedule`` modes. The sensor pushes the drift check (a ``retrainer.contracts.DriftCheck``:
reason, drift summary, data version) as its XCom.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.sdk import BaseOperatorLink, BaseSensorOperator, PokeReturnValue
from airflow.sdk.exceptions import AirflowException

from retrainer.contracts import DriftCheck
from retrainer_airflow.triggers import DriftTrigger


class DriftReportLink(BaseOperatorLink):
    """'Drift report' button on the task in the Airflow UI, to the check's MLflow run."""

    name = "Drift report (MLflow)"

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        return str(getattr(operator, "report_link", "") or "")


class DriftSensor(BaseSensorOperator):
    """Wait until new data of ``dataset`` drifts from what the champion was trained on, by the
    rule of the dataset spec; push the drift check as XCom.

    :param dataset: the dataset spec's name (templated).
    :param data_version: the data version to look at first, ``latest`` or ``vNNNN`` (templated);
        later looks (after a reschedule or a deferral) take the newest version.
    :param deferrable: wait for a newer data version in the triggerer (:class:`DriftTrigger`),
        holding no worker slot; ``False`` gives the classic ``poke``/``reschedule`` modes.
    :param kwargs: ``BaseSensorOperator``'s: ``poke_interval`` (also the trigger's polling
        interval), ``timeout`` (how long to wait for drift), ``mode``, ``soft_fail``, ...
    """

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
        self._last: DriftCheck | None = None
        self.report_link = ""

    def _check(self, data_version: str) -> DriftCheck:
        from retrainer_airflow.tasks import monitor

        return monitor.check_drift(self.dataset, data_version)

    def _judge(self, data_version: str) -> PokeReturnValue | bool:
        from retrainer import links
        from retrainer_airflow.tasks import runtime

        check = self._last = self._check(data_version)
        self.log.info("drift check of %s %s: %s", self.dataset, check.data_version, check.reason)
        if check.report_uri and check.mlflow_run_id and check.mlflow_experiment_id:
            ui = runtime.settings().mlflow_ui_url
            self.report_link = links.mlflow_artifacts(ui, check.mlflow_experiment_id, check.mlflow_run_id)
            self.log.info("drift report: %s (MLflow UI: %s)", check.report_uri, self.report_link)
        return PokeReturnValue(is_done=True, xcom_value=check.to_json()) if check.retrain else False

    def poke(self, context: Any) -> PokeReturnValue | bool:
        # the first look is at the version asked for; later looks (reschedule) at the newest
        return self._judge(self.data_version if self._last is None else "latest")

    def _defer(self) -> None:
        from retrainer_airflow.tasks import runtime

        self.defer(
            trigger=DriftTrigger(
                dataset=self.dataset,
                registry=runtime.settings().data_registry,
                last_checked=self._last.data_version if self._last else None,
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
