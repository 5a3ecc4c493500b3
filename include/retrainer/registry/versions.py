"""Model versions and aliases: a version registered once per run, the evidence as its tags, and
aliases instead of stages (``challenger`` for the candidate, ``champion`` for what serves).

``champion`` moves only if it still points where the evaluation assumed (``promote``), and
registering, moving aliases and moving serving labels happen under the model's lock
(``exclusive``, ``retrainer.registry.locking``): MLflow itself has no compare-and-set.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from retrainer import faults, schema
from retrainer.registry.session import Session, is_error
from retrainer.schema import CHALLENGER, CHAMPION
from retrainer.spec.dataset import DatasetSpec

if TYPE_CHECKING:
    from mlflow.entities.model_registry import ModelVersion


class ChampionMovedError(RuntimeError):
    """The champion alias moved between evaluation and promotion (compare-and-set failed)."""


class Versions:
    def __init__(self, session: Session) -> None:
        self.session = session
        self.client = session.client

    @contextmanager
    def exclusive(self, spec: DatasetSpec, purpose: str) -> Iterator[None]:
        """One writer at a time of the model's aliases, labels and registrations (re-entrant)."""
        from retrainer.registry import locking

        with locking.exclusive(self.client, spec.model_name, purpose):
            yield

    def for_run(self, spec: DatasetSpec, run_id: str) -> ModelVersion | None:
        """The version registered from ``run_id`` (the first, should there be two)."""
        found = self.client.search_model_versions(schema.tag_filter({}, name=spec.model_name, run_id=run_id))
        return min(found, key=lambda v: int(v.version)) if found else None

    def search(self, spec: DatasetSpec, tags: dict[str, str]) -> list[ModelVersion]:
        """The versions of the spec's model whose tags hold ``tags``, oldest first."""
        found = self.client.search_model_versions(schema.tag_filter(tags, name=spec.model_name))
        return sorted(found, key=lambda mv: int(mv.version))

    def register(self, spec: DatasetSpec, run_id: str, model_uri: str, tags: dict[str, str]) -> tuple[str, bool]:
        """Register the run's model once. Returns (version, created)."""
        import mlflow

        with self.exclusive(spec, "register"):  # a stuck task and its retry at once: one version
            existing = self.for_run(spec, run_id)
            if existing is not None:
                created = False
                version = str(existing.version)
            else:
                with self.session.tracking():
                    mv = mlflow.register_model(model_uri, spec.model_name, tags=tags, await_registration_for=120)
                created, version = True, str(mv.version)
                faults.point("register:created")  # a version without its evidence tags yet
        self.tag(spec, version, tags)
        return version, created

    def tags(self, spec: DatasetSpec, version: str) -> dict[str, str]:
        return dict(self.client.get_model_version(spec.model_name, version).tags)

    def exists(self, spec: DatasetSpec, version: str) -> bool:
        try:
            self.client.get_model_version(spec.model_name, version)
        except Exception as exc:
            if is_error(exc, "RESOURCE_DOES_NOT_EXIST"):
                return False
            raise
        return True

    def tag(self, spec: DatasetSpec, version: str, tags: dict[str, str]) -> None:
        for key, value in tags.items():
            self.client.set_model_version_tag(spec.model_name, version, key, value)

    def aliases(self, spec: DatasetSpec) -> dict[str, str]:
        """The model's aliases (alias -> version); empty while the model is not registered yet."""
        try:
            model = self.client.get_registered_model(spec.model_name)
        except Exception as exc:
            if is_error(exc, "RESOURCE_DOES_NOT_EXIST"):
                return {}
            raise
        return {str(alias): str(version) for alias, version in (model.aliases or {}).items()}

    def model_tags(self, spec: DatasetSpec) -> dict[str, str]:
        """The registered model's own tags (empty while it is not registered yet)."""
        try:
            return dict(self.client.get_registered_model(spec.model_name).tags or {})
        except Exception as exc:
            if is_error(exc, "RESOURCE_DOES_NOT_EXIST"):
                return {}
            raise

    def set_model_tag(self, spec: DatasetSpec, key: str, value: str) -> None:
        self.client.set_registered_model_tag(spec.model_name, key, value)

    def delete_model_tag(self, spec: DatasetSpec, key: str) -> None:
        try:
            self.client.delete_registered_model_tag(spec.model_name, key)
        except Exception as exc:
            if not is_error(exc, "RESOURCE_DOES_NOT_EXIST"):
                raise

    def alias(self, spec: DatasetSpec, alias: str) -> str | None:
        """The version ``alias`` points at, if any."""
        return self.aliases(spec).get(alias)

    def set_alias(self, spec: DatasetSpec, alias: str, version: str) -> None:
        self.client.set_registered_model_alias(spec.model_name, alias, version)

    def drop_alias(self, spec: DatasetSpec, alias: str, version: str) -> None:
        """Remove ``alias`` if it (still) points at ``version``."""
        if self.alias(spec, alias) == version:
            self.client.delete_registered_model_alias(spec.model_name, alias)

    def promote(self, spec: DatasetSpec, version: str, expected_champion: str | None) -> str | None:
        """Move ``champion`` to ``version`` only if it still points at ``expected_champion``.

        Returns the previous champion. Raises ChampionMovedError when somebody else moved it.
        """
        with self.exclusive(spec, f"promote v{version}"):  # compare and set, with nobody in between
            current = self.alias(spec, CHAMPION)
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
