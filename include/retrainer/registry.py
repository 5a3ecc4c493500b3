"""MLflow tracking and model registry, with the conventions reviewers rely on.

- one experiment per model; one MLflow run per Airflow DAG run, found again by its
  ``airflow.dag_id``/``airflow.run_id`` tags, so a retry reuses it;
- a model version is looked up by its run before one is created: a retry never
  registers a second version;
- aliases, not stages: ``challenger`` for the candidate, ``champion`` for what serves;
  ``champion`` moves only if it still points where the evaluation assumed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from retrainer.config import DatasetSpec, Settings
from retrainer.storage import join

if TYPE_CHECKING:
    from mlflow.entities.model_registry import ModelVersion
    from mlflow.tracking import MlflowClient

log = logging.getLogger(__name__)

CHAMPION = "champion"
CHALLENGER = "challenger"


class ChampionMovedError(RuntimeError):
    """The champion alias moved between evaluation and promotion (compare-and-set failed)."""


@dataclass(frozen=True)
class RunContext:
    """Who is asking: the orchestrator's run, recorded on every MLflow run and version."""

    dag_id: str
    run_id: str
    try_number: int = 1
    trigger: str = "manual"
    run_type: str = "manual"

    def tags(self) -> dict[str, str]:
        return {
            "airflow.dag_id": self.dag_id,
            "airflow.run_id": self.run_id,
            "airflow.try_number": str(self.try_number),
            "airflow.run_type": self.run_type,
            "retrainer.trigger": self.trigger,
        }


def _quote(value: str) -> str:
    return value.replace("'", "\\'")


class Registry:
    def __init__(self, settings: Settings) -> None:
        import mlflow

        self.settings = settings
        mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
        self.client: MlflowClient = mlflow.MlflowClient(tracking_uri=settings.mlflow_tracking_uri)

    # ------------------------------------------------------------------ runs
    def experiment_id(self, spec: DatasetSpec) -> str:
        return self.experiment_id_named(spec.model_name)

    def experiment_id_named(self, name: str) -> str:
        """The experiment ``name``, created (artifacts under the settings' artifact root) if new."""
        exp = self.client.get_experiment_by_name(name)
        if exp is not None:
            return str(exp.experiment_id)
        location = join(self.settings.mlflow_artifacts, name)
        if not location.startswith("s3://"):
            location = f"file://{location}"
        try:
            return str(self.client.create_experiment(name, artifact_location=location))
        except Exception:  # created concurrently by another task: use it
            exp = self.client.get_experiment_by_name(name)
            if exp is None:
                raise
            return str(exp.experiment_id)

    def find_run(self, spec: DatasetSpec, ctx: RunContext) -> str | None:
        runs = self.client.search_runs(
            [self.experiment_id(spec)],
            filter_string=(
                f"tags.`airflow.dag_id` = '{_quote(ctx.dag_id)}' and tags.`airflow.run_id` = '{_quote(ctx.run_id)}'"
            ),
            order_by=["attributes.start_time ASC"],
            max_results=2,
        )
        if len(runs) > 1:
            log.warning("more than one MLflow run for %s/%s; using the first", ctx.dag_id, ctx.run_id)
        return runs[0].info.run_id if runs else None

    def get_or_create_run(self, spec: DatasetSpec, ctx: RunContext, tags: dict[str, str]) -> tuple[str, bool]:
        """The MLflow run of this Airflow run: reused on retry, created on first try."""
        existing = self.find_run(spec, ctx)
        if existing:
            self.client.set_tag(existing, "airflow.try_number", str(ctx.try_number))
            return existing, False
        run = self.client.create_run(
            self.experiment_id(spec),
            tags={**ctx.tags(), **tags, "mlflow.runName": f"{ctx.dag_id}:{ctx.run_id}"},
        )
        return run.info.run_id, True

    def run_tags(self, run_id: str) -> dict[str, str]:
        return dict(self.client.get_run(run_id).data.tags)

    def run_metrics(self, run_id: str) -> dict[str, float]:
        return dict(self.client.get_run(run_id).data.metrics)

    # ------------------------------------------------------------------ versions
    def version_for_run(self, spec: DatasetSpec, run_id: str) -> ModelVersion | None:
        found = self.client.search_model_versions(f"name = '{_quote(spec.model_name)}' and run_id = '{run_id}'")
        return min(found, key=lambda v: int(v.version)) if found else None

    def register(self, spec: DatasetSpec, run_id: str, model_uri: str, tags: dict[str, str]) -> tuple[str, bool]:
        """Register the run's model once. Returns (version, created)."""
        import mlflow

        existing = self.version_for_run(spec, run_id)
        if existing is not None:
            created = False
            version = str(existing.version)
        else:
            mv = mlflow.register_model(model_uri, spec.model_name, tags=tags, await_registration_for=120)
            created, version = True, str(mv.version)
        for key, value in tags.items():
            self.client.set_model_version_tag(spec.model_name, version, key, value)
        return version, created

    def version_tags(self, spec: DatasetSpec, version: str) -> dict[str, str]:
        return dict(self.client.get_model_version(spec.model_name, version).tags)

    def tag_version(self, spec: DatasetSpec, version: str, tags: dict[str, str]) -> None:
        for key, value in tags.items():
            self.client.set_model_version_tag(spec.model_name, version, key, value)

    def alias_version(self, spec: DatasetSpec, alias: str) -> str | None:
        try:
            return str(self.client.get_model_version_by_alias(spec.model_name, alias).version)
        except Exception as exc:  # MlflowException: no such alias, or no such model yet
            if "not found" in str(exc).lower() or "does not exist" in str(exc).lower():
                return None
            raise

    def set_alias(self, spec: DatasetSpec, alias: str, version: str) -> None:
        self.client.set_registered_model_alias(spec.model_name, alias, version)

    def promote(self, spec: DatasetSpec, version: str, expected_champion: str | None) -> str | None:
        """Move ``champion`` to ``version`` only if it still points at ``expected_champion``.

        Returns the previous champion. Raises ChampionMovedError when somebody else moved it.
        """
        current = self.alias_version(spec, CHAMPION)
        if current == version:
            return expected_champion  # already done (a retry)
        if current != expected_champion:
            raise ChampionMovedError(
                f"{spec.model_name}: champion is v{current} but the evaluation compared against "
                f"v{expected_champion}; re-evaluate before promoting v{version}"
            )
        self.set_alias(spec, CHAMPION, version)
        if self.alias_version(spec, CHALLENGER) == version:
            self.client.delete_registered_model_alias(spec.model_name, CHALLENGER)
        return current

    def model_uri(self, spec: DatasetSpec, version: str) -> str:
        return f"models:/{spec.model_name}/{version}"

    def load_keras(self, spec: DatasetSpec, version: str) -> Any:
        import mlflow.tensorflow

        return mlflow.tensorflow.load_model(self.model_uri(spec, version))
