"""MLflow runs: one experiment per model, one run per Airflow run (found again by its
``airflow.dag_id``/``airflow.run_id`` tags, so a retry reuses it), their tags, metrics and artifacts."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from retrainer import schema, storage
from retrainer.records import RunContext
from retrainer.registry import links
from retrainer.registry.session import Session, is_error
from retrainer.spec.dataset import DatasetSpec

log = logging.getLogger(__name__)


class Runs:
    def __init__(self, session: Session) -> None:
        self.session = session
        self.client = session.client

    def experiment_id(self, spec: DatasetSpec) -> str:
        return self.experiment_id_named(spec.model_name)

    def experiment_id_named(self, name: str) -> str:
        """The experiment ``name``, created (artifacts under the settings' artifact root) if new."""
        exp = self.client.get_experiment_by_name(name)
        if exp is not None:
            return str(exp.experiment_id)
        location = storage.join(self.session.settings.mlflow_artifacts, name)
        if not location.startswith("s3://"):
            location = f"file://{location}"
        try:
            # an ML experiment (training runs, models), not a GenAI one (traces, prompts), in the UI
            tags = {schema.EXPERIMENT_KIND: schema.EXPERIMENT_KIND_ML}
            return str(self.client.create_experiment(name, artifact_location=location, tags=tags))
        except Exception as exc:  # created concurrently by another task: use it
            exp = self.client.get_experiment_by_name(name)
            if exp is None or not is_error(exc, "RESOURCE_ALREADY_EXISTS", "INVALID_STATE"):
                raise
            return str(exp.experiment_id)

    def find(self, spec: DatasetSpec, ctx: RunContext, match: dict[str, str] | None = None) -> str | None:
        """The MLflow run of this Airflow run (and, with ``match``, holding those tags too)."""
        key = {schema.AIRFLOW_DAG_ID: ctx.dag_id, schema.AIRFLOW_RUN_ID: ctx.run_id, **(match or {})}
        runs = self.client.search_runs(
            [self.experiment_id(spec)],
            filter_string=schema.tag_filter(key),
            order_by=["attributes.start_time ASC"],
            max_results=2,
        )
        if len(runs) > 1:
            log.warning("more than one MLflow run for %s/%s; using the first", ctx.dag_id, ctx.run_id)
        return runs[0].info.run_id if runs else None

    def get_or_create(
        self,
        spec: DatasetSpec,
        ctx: RunContext,
        tags: dict[str, str],
        match: dict[str, str] | None = None,
        what: str = "",
    ) -> tuple[str, bool]:
        """The MLflow run of this Airflow run (with ``match``: of this Airflow run and those tags):
        reused on retry, created on first try, named by ``what`` it does (``schema.run_name``)."""
        existing = self.find(spec, ctx, match)
        if existing:
            self.client.set_tag(existing, schema.AIRFLOW_TRY_NUMBER, str(ctx.try_number))
            return existing, False
        run = self.client.create_run(
            self.experiment_id(spec),
            tags={**schema.context_tags(ctx), **tags, schema.RUN_NAME: schema.run_name(ctx, what)},
        )
        return run.info.run_id, True

    def tags(self, run_id: str) -> dict[str, str]:
        return dict(self.client.get_run(run_id).data.tags)

    def metrics(self, run_id: str) -> dict[str, float]:
        return dict(self.client.get_run(run_id).data.metrics)

    def load_json(self, run_id: str, path: str) -> Any:
        """A JSON artifact of the run."""
        with storage.scratch("retrainer-artifact-") as tmp:
            return json.loads(Path(self.client.download_artifacts(run_id, path, str(tmp))).read_text())

    @contextmanager
    def active(self, run_id: str) -> Iterator[Any]:
        """``mlflow.start_run(run_id)`` against these settings (for ``mlflow.log_*`` and ``log_model``)."""
        import mlflow

        with self.session.tracking(), mlflow.start_run(run_id=run_id) as run:
            yield run

    def artifact_link(self, run: Any, path: str) -> str:
        """A run's artifact as a browser opens it: the MLflow UI with the artifact selected (an
        artifact URI such as file:// or s3:// opens nothing from a tag)."""
        settings = self.session.settings
        return links.mlflow_artifacts(settings.mlflow_ui_url, run.info.experiment_id, run.info.run_id, path)
