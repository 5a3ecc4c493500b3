"""DriftSensor: succeeds when new data has drifted enough to retrain the model.

Shaped like Airflow's own sensors: ``poke()`` does the check (on a worker, since it reads
data and runs the champion); ``execute()`` pokes once and, when there is no drift yet,
defers to :class:`DriftTrigger`, which waits without a worker slot for a newer data version;
``execute_complete()`` raises if the trigger reports an error and otherwise pokes again.
It is deferrable by default; ``deferrable=False`` gives the classic ``poke`` or
``reschedule`` modes. The sensor pushes the drift check (a ``retrainer.records.DriftCheck``:
reason, drift summary, data version) as its XCom.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperatorLink, BaseSensorOperator, PokeReturnValue
from airflow.sdk.exceptions import AirflowException, AirflowSkipException

from retrainer_airflow.triggers import DriftTrigger, LandingTrigger

if TYPE_CHECKING:  # the records are read when a sensor runs, never when a DAG file is parsed
    from airflow.sdk import Context

    from retrainer.records import DriftCheck


class DriftReportLink(BaseOperatorLink):
    """'Drift report' button on the task in the Airflow UI, to the check's MLflow run."""

    name = "Drift report (MLflow)"

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        return str(getattr(operator, "report_link", "") or "")


class WaitsInTriggerer(BaseSensorOperator):
    """A sensor that looks once on a worker (``poke``) and, with nothing found, waits in the
    triggerer for its trigger (``_trigger``), holding no worker slot; ``deferrable=False`` gives
    the classic ``poke``/``reschedule`` modes. What ``poke`` finds is the task's XCom.

    :param deferrable: wait in the triggerer; ``False`` where no triggerer runs.
    :param kwargs: ``BaseSensorOperator``'s: ``poke_interval``, ``timeout``, ``mode``, ``soft_fail``, ...
    """

    def __init__(self, *, deferrable: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.deferrable = deferrable

    def _trigger(self) -> Any:
        raise NotImplementedError

    def _done_or_defer(self, done: PokeReturnValue | bool) -> Any:
        if isinstance(done, PokeReturnValue):
            return done.xcom_value
        self.defer(trigger=self._trigger(), method_name="execute_complete", timeout=timedelta(seconds=self.timeout))
        return None

    def execute(self, context: Context) -> Any:
        if not self.deferrable:
            return super().execute(context)
        return self._done_or_defer(self.poke(context))


class DriftSensor(WaitsInTriggerer):
    """Wait until new data of ``dataset`` drifts from what the champion was trained on, by the
    rule of the dataset spec; push the drift check as XCom.

    :param dataset: the dataset spec's name (templated).
    :param data_version: the data version to look at first, ``latest`` or ``vNNNN`` (templated);
        later looks (after a reschedule or a deferral) take the newest version. In a run started
        by a data-version announcement (asset event) there is no later look: without drift the
        sensor ends as skipped, since the next version's announcement starts a check of its own.
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
        super().__init__(deferrable=deferrable, **kwargs)
        self.dataset = dataset
        self.data_version = data_version
        self._last: DriftCheck | None = None
        self.report_link = ""

    def _check(self, data_version: str) -> DriftCheck:
        from retrainer_airflow.tasks import monitor

        return monitor.check_drift(self.dataset, data_version)

    def _judge(self, data_version: str) -> PokeReturnValue | bool:
        from retrainer import schema
        from retrainer.registry import links
        from retrainer_airflow.tasks import runtime

        check = self._last = self._check(data_version)
        self.log.info("drift check of %s %s: %s", self.dataset, check.data_version, check.reason)
        if check.report_uri and check.mlflow_run_id and check.mlflow_experiment_id:
            ui = runtime.settings().mlflow_ui_url
            self.report_link = links.mlflow_artifacts(
                ui, check.mlflow_experiment_id, check.mlflow_run_id, schema.ARTIFACT_DRIFT_REPORT
            )  # the report itself, selected
            self.log.info("drift report: %s (MLflow UI: %s)", check.report_uri, self.report_link)
        return PokeReturnValue(is_done=True, xcom_value=check.to_json()) if check.retrain else False

    def poke(self, context: Context) -> PokeReturnValue | bool:
        # the first look is at the version asked for; later looks (reschedule) at the newest
        done = self._judge(self.data_version if self._last is None else "latest")
        started_by = str(getattr(context.get("dag_run"), "run_type", "")).lower()
        if done is False and self._last is not None and "asset" in started_by:
            # a run started by a data-version announcement does not wait: the next version is
            # announced too and starts a check of its own (waiting would hold this run open)
            context["ti"].xcom_push(key="return_value", value=self._last.to_json())
            raise AirflowSkipException(
                f"{self.dataset} {self._last.data_version}: {self._last.reason}; "
                "the next data version starts a check of its own"
            )
        return done

    def _trigger(self) -> DriftTrigger:
        from retrainer_airflow.tasks import runtime

        settings = runtime.settings()
        return DriftTrigger(
            dataset=self.dataset,
            registry=settings.data_registry_url or settings.data_registry,
            last_checked=self._last.data_version if self._last else None,
            poll_interval=self.poke_interval,
        )

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> Any:
        if not event or event.get("status") != "new_data":
            raise AirflowException(f"drift trigger failed: {(event or {}).get('message', 'no event')}")
        return self._done_or_defer(self._judge(event["data_version"]))


INGEST_DAG_ID = "ingest_batch"


class LandingSensor(WaitsInTriggerer):
    """Wait until batch files land that have no ``ingest_batch`` run yet (or files whose names
    must be refused); push what it found (a ``retrainer.records.LandingScan``) as XCom.

    Each look lists the landing location of the settings (a local folder or an ``s3://``
    prefix), routes every file by its path to a dataset and period, names its ingest run by
    its bytes, and keeps the deliveries whose run does not exist. With nothing new it defers
    to :class:`LandingTrigger`, which waits in the triggerer, holding no worker slot, until
    the listing changes.

    :param deferrable: wait in the triggerer; ``False`` gives the classic ``poke``/``reschedule``
        modes (where no triggerer runs).
    :param kwargs: ``BaseSensorOperator``'s: ``poke_interval`` (also the trigger's polling
        interval), ``timeout`` (how long to wait for a delivery), ``mode``, ``soft_fail``, ...
    """

    def __init__(self, *, deferrable: bool = True, **kwargs: Any) -> None:
        super().__init__(deferrable=deferrable, **kwargs)
        self._digest = ""

    def _look(self, context: Context) -> PokeReturnValue | bool:
        from retrainer.data import landing
        from retrainer.records import LandingScan
        from retrainer_airflow.tasks import runtime

        settings = runtime.settings()
        scan = landing.scan(settings)
        ti = context["ti"]
        new = [d for d in scan.deliveries if not ti.get_dr_count(dag_id=INGEST_DAG_ID, run_ids=[d.run_id])]
        self._digest = scan.digest
        self.log.info(
            "%d file(s) in %s: %d new deliveries, %d to refuse, %d held by a spec that does not load",
            len(scan.deliveries) + len(scan.refused) + len(scan.held),
            settings.landing,
            len(new),
            len(scan.refused),
            len(scan.held),
        )
        for held in scan.held:
            self.log.error("%s", held.reason)
        found = LandingScan(deliveries=new, refused=scan.refused, digest=scan.digest, held=scan.held)
        return PokeReturnValue(is_done=True, xcom_value=found.to_json()) if new or scan.refused else False

    def poke(self, context: Context) -> PokeReturnValue | bool:
        return self._look(context)

    def _trigger(self) -> LandingTrigger:
        from retrainer_airflow.tasks import runtime

        settings = runtime.settings()
        return LandingTrigger(
            settings.landing, self._digest, self.poke_interval, settings.s3_endpoint_url, settings.specs_dir
        )

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> Any:
        if not event or event.get("status") != "changed":
            raise AirflowException(f"landing trigger failed: {(event or {}).get('message', 'no event')}")
        return self._done_or_defer(self._look(context))
