"""MLflow tracking and model registry, with the conventions reviewers rely on.

- one experiment per model; one MLflow run per Airflow DAG run, found again by its
  ``airflow.dag_id``/``airflow.run_id`` tags, so a retry reuses it;
- a model version is looked up by its run before one is created: a retry never
  registers a second version;
- aliases, not stages: ``challenger`` for the candidate, ``champion`` for what serves;
  ``champion`` moves only if it still points where the evaluation assumed;
- registering, moving aliases and moving serving labels happen under the model's lock
  (``exclusive``, retrainer.registry_lock): MLflow itself has no compare-and-set.

A thin wrapper over ``MlflowClient``: it talks to the tracking URI of its settings and sets
no global MLflow state when it is made. The few MLflow calls that only exist in the fluent
API (logging a model, loading one by ``models:/`` URI) run inside ``Registry.tracking()``,
which points MLflow at these settings for their duration only. Missing things are told
apart by MLflow's error codes, never by message text.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from retrainer import faults, links, schema, storage
from retrainer.contracts import RunContext
from retrainer.schema import CHALLENGER, CHAMPION
from retrainer.settings import Settings
from retrainer.spec import DatasetSpec
from retrainer.storage import join

if TYPE_CHECKING:
    from mlflow.entities.model_registry import ModelVersion
    from mlflow.tracking import MlflowClient

log = logging.getLogger(__name__)

TRACKING_URI_VAR = "MLFLOW_TRACKING_URI"

__all__ = ["CHALLENGER", "CHAMPION", "ChampionMovedError", "Registry", "RunContext", "error_code"]


class ChampionMovedError(RuntimeError):
    """The champion alias moved between evaluation and promotion (compare-and-set failed)."""


def error_code(exc: BaseException) -> str | None:
    """MLflow's error code of an exception (``RESOURCE_DOES_NOT_EXIST``, ...), or None."""
    return getattr(exc, "error_code", None)


def _is(exc: BaseException, *codes: str) -> bool:
    from mlflow.exceptions import MlflowException

    return isinstance(exc, MlflowException) and error_code(exc) in codes


def mlflow_client(tracking_uri: str) -> MlflowClient:
    """An MLflow client. On a SQLite store (the embedded default) the first client creates and
    migrates the database; tasks that start at once (a mapped drift check per dataset) would
    migrate it twice over (``table _alembic_tmp_metrics already exists``), so clients of one
    SQLite file are made one at a time, under a lock file beside it."""
    import fcntl

    import mlflow

    if not tracking_uri.startswith("sqlite:///"):
        return mlflow.MlflowClient(tracking_uri=tracking_uri)
    db = Path(tracking_uri.removeprefix("sqlite:///"))
    db.parent.mkdir(parents=True, exist_ok=True)
    with open(f"{db}.init-lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            return mlflow.MlflowClient(tracking_uri=tracking_uri)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


class Registry:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.tracking_uri = settings.mlflow_tracking_uri
        self.client: MlflowClient = mlflow_client(self.tracking_uri)

    @contextmanager
    def tracking(self) -> Iterator[None]:
        """MLflow's fluent API pointed at these settings for the duration; afterwards MLflow's
        global state is exactly what it was (``mlflow.set_tracking_uri`` also writes the
        ``MLFLOW_TRACKING_URI`` environment variable, which the settings of later tasks read)."""
        import mlflow
        from mlflow.tracking._tracking_service import utils as tracking_state

        saved_uri = getattr(tracking_state, "_tracking_uri", None)  # None: MLflow follows the environment
        saved_env = os.environ.get(TRACKING_URI_VAR)
        mlflow.set_tracking_uri(self.tracking_uri)
        try:
            yield
        finally:
            tracking_state.set_tracking_uri(saved_uri)  # type: ignore[arg-type]  # None resets it
            if saved_env is None:
                os.environ.pop(TRACKING_URI_VAR, None)
            else:
                os.environ[TRACKING_URI_VAR] = saved_env

    @contextmanager
    def active_run(self, run_id: str) -> Iterator[Any]:
        """``mlflow.start_run(run_id)`` against these settings (for ``mlflow.log_*`` and ``log_model``)."""
        import mlflow

        with self.tracking(), mlflow.start_run(run_id=run_id) as run:
            yield run

    def artifact_link(self, run: Any, path: str) -> str:
        """A run's artifact as a browser opens it: the MLflow UI with the artifact selected (an
        artifact URI such as file:// or s3:// opens nothing from a tag)."""
        return links.mlflow_artifacts(self.settings.mlflow_ui_url, run.info.experiment_id, run.info.run_id, path)

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
            # an ML experiment (training runs, models), not a GenAI one (traces, prompts), in the UI
            tags = {schema.EXPERIMENT_KIND: schema.EXPERIMENT_KIND_ML}
            return str(self.client.create_experiment(name, artifact_location=location, tags=tags))
        except Exception as exc:  # created concurrently by another task: use it
            exp = self.client.get_experiment_by_name(name)
            if exp is None or not _is(exc, "RESOURCE_ALREADY_EXISTS", "INVALID_STATE"):
                raise
            return str(exp.experiment_id)

    def find_run(self, spec: DatasetSpec, ctx: RunContext, match: dict[str, str] | None = None) -> str | None:
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

    def get_or_create_run(
        self,
        spec: DatasetSpec,
        ctx: RunContext,
        tags: dict[str, str],
        match: dict[str, str] | None = None,
        what: str = "",
    ) -> tuple[str, bool]:
        """The MLflow run of this Airflow run (with ``match``: of this Airflow run and those tags):
        reused on retry, created on first try, named by ``what`` it does (``schema.run_name``)."""
        existing = self.find_run(spec, ctx, match)
        if existing:
            self.client.set_tag(existing, schema.AIRFLOW_TRY_NUMBER, str(ctx.try_number))
            return existing, False
        run = self.client.create_run(
            self.experiment_id(spec),
            tags={**schema.context_tags(ctx), **tags, schema.RUN_NAME: schema.run_name(ctx, what)},
        )
        return run.info.run_id, True

    def run_tags(self, run_id: str) -> dict[str, str]:
        return dict(self.client.get_run(run_id).data.tags)

    def run_metrics(self, run_id: str) -> dict[str, float]:
        return dict(self.client.get_run(run_id).data.metrics)

    def load_json_artifact(self, run_id: str, path: str) -> Any:
        with storage.scratch("retrainer-artifact-") as tmp:
            return json.loads(Path(self.client.download_artifacts(run_id, path, str(tmp))).read_text())

    @contextmanager
    def exclusive(self, spec: DatasetSpec, purpose: str) -> Iterator[None]:
        """One writer at a time of the model's aliases, labels and registrations (re-entrant)."""
        from retrainer import registry_lock

        with registry_lock.exclusive(self.client, spec.model_name, purpose):
            yield

    # ------------------------------------------------------------------ versions
    def version_for_run(self, spec: DatasetSpec, run_id: str) -> ModelVersion | None:
        found = self.client.search_model_versions(schema.tag_filter({}, name=spec.model_name, run_id=run_id))
        return min(found, key=lambda v: int(v.version)) if found else None

    def search_versions(self, spec: DatasetSpec, tags: dict[str, str]) -> list[ModelVersion]:
        """The versions of the spec's model whose tags hold ``tags``, oldest first."""
        found = self.client.search_model_versions(schema.tag_filter(tags, name=spec.model_name))
        return sorted(found, key=lambda mv: int(mv.version))

    def register(self, spec: DatasetSpec, run_id: str, model_uri: str, tags: dict[str, str]) -> tuple[str, bool]:
        """Register the run's model once. Returns (version, created)."""
        import mlflow

        with self.exclusive(spec, "register"):  # a stuck task and its retry at once: one version
            existing = self.version_for_run(spec, run_id)
            if existing is not None:
                created = False
                version = str(existing.version)
            else:
                with self.tracking():
                    mv = mlflow.register_model(model_uri, spec.model_name, tags=tags, await_registration_for=120)
                created, version = True, str(mv.version)
                faults.point("register:created")  # a version without its evidence tags yet
        self.tag_version(spec, version, tags)
        return version, created

    def version_tags(self, spec: DatasetSpec, version: str) -> dict[str, str]:
        return dict(self.client.get_model_version(spec.model_name, version).tags)

    def version_exists(self, spec: DatasetSpec, version: str) -> bool:
        try:
            self.client.get_model_version(spec.model_name, version)
        except Exception as exc:
            if _is(exc, "RESOURCE_DOES_NOT_EXIST"):
                return False
            raise
        return True

    def tag_version(self, spec: DatasetSpec, version: str, tags: dict[str, str]) -> None:
        for key, value in tags.items():
            self.client.set_model_version_tag(spec.model_name, version, key, value)

    def aliases(self, spec: DatasetSpec) -> dict[str, str]:
        """The model's aliases (alias -> version); empty while the model is not registered yet."""
        try:
            model = self.client.get_registered_model(spec.model_name)
        except Exception as exc:
            if _is(exc, "RESOURCE_DOES_NOT_EXIST"):
                return {}
            raise
        return {str(alias): str(version) for alias, version in (model.aliases or {}).items()}

    def model_tags(self, spec: DatasetSpec) -> dict[str, str]:
        """The registered model's own tags (empty while it is not registered yet)."""
        try:
            return dict(self.client.get_registered_model(spec.model_name).tags or {})
        except Exception as exc:
            if _is(exc, "RESOURCE_DOES_NOT_EXIST"):
                return {}
            raise

    def set_model_tag(self, spec: DatasetSpec, key: str, value: str) -> None:
        self.client.set_registered_model_tag(spec.model_name, key, value)

    def delete_model_tag(self, spec: DatasetSpec, key: str) -> None:
        try:
            self.client.delete_registered_model_tag(spec.model_name, key)
        except Exception as exc:
            if not _is(exc, "RESOURCE_DOES_NOT_EXIST"):
                raise

    def alias_version(self, spec: DatasetSpec, alias: str) -> str | None:
        return self.aliases(spec).get(alias)

    def set_alias(self, spec: DatasetSpec, alias: str, version: str) -> None:
        self.client.set_registered_model_alias(spec.model_name, alias, version)

    def drop_alias(self, spec: DatasetSpec, alias: str, version: str) -> None:
        """Remove ``alias`` if it (still) points at ``version``."""
        if self.alias_version(spec, alias) == version:
            self.client.delete_registered_model_alias(spec.model_name, alias)

    def promote(self, spec: DatasetSpec, version: str, expected_champion: str | None) -> str | None:
        """Move ``champion`` to ``version`` only if it still points at ``expected_champion``.

        Returns the previous champion. Raises ChampionMovedError when somebody else moved it.
        """
        with self.exclusive(spec, f"promote v{version}"):  # compare and set, with nobody in between
            current = self.alias_version(spec, CHAMPION)
            if current == version:
                return expected_champion  # already done (a retry)
            if current != expected_champion:
                raise ChampionMovedError(
                    f"{spec.model_name}: champion is v{current} but the evaluation compared against "
                    f"v{expected_champion}; re-evaluate before promoting v{version}"
                )
            self.set_alias(spec, CHAMPION, version)
            self.drop_alias(spec, CHALLENGER, version)
            return current

    def model_uri(self, spec: DatasetSpec, version: str) -> str:
        return f"models:/{spec.model_name}/{version}"

    def load_keras(self, spec: DatasetSpec, version: str) -> Any:
        return self.load_model_uri(self.model_uri(spec, version))

    def load_model_uri(self, model_uri: str) -> Any:
        import mlflow.tensorflow

        with self.tracking():
            return mlflow.tensorflow.load_model(model_uri)
