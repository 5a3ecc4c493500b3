"""Model versions and aliases: a version registered once per run with its evidence as tags, and
``champion`` moved by compare-and-set under the model's lock."""

from __future__ import annotations

import pytest

from retrainer.model import training
from retrainer.records import RunContext
from retrainer.registry.client import Registry
from retrainer.registry.locking import lock_model
from retrainer.registry.versions import ChampionMovedError
from retrainer.schema import CHALLENGER, CHAMPION
from retrainer.settings import Settings
from retrainer.spec.dataset import DatasetSpec
from tests.helpers import log_keras_model, log_model_entry


@pytest.fixture(scope="module")
def trained(bike_trained: training.TrainResult) -> training.TrainResult:
    return bike_trained


def _log(registry: Registry, spec: DatasetSpec, ctx: RunContext, model: object) -> tuple[str, str]:
    return log_keras_model(registry, spec, ctx, model)


def test_registry_is_idempotent_and_promotion_is_compare_and_set(
    settings: Settings, bike_spec: DatasetSpec, trained: training.TrainResult
) -> None:
    registry = Registry(settings)
    ctx = RunContext(dag_id="retrain_model", run_id="manual__1")
    run_id, uri = _log(registry, bike_spec, ctx, trained.model)
    again, created = registry.runs.get_or_create(bike_spec, RunContext("retrain_model", "manual__1", try_number=2), {})
    assert again == run_id and not created
    assert registry.runs.tags(run_id)["airflow.try_number"] == "2"

    v1, made = registry.versions.register(bike_spec, run_id, uri, {"k": "a"})
    v1b, made_again = registry.versions.register(bike_spec, run_id, uri, {"k": "b"})
    assert (v1, made) == ("1", True) and (v1b, made_again) == ("1", False)
    assert len(registry.client.search_model_versions(f"name = '{bike_spec.model_name}'")) == 1
    assert registry.versions.tags(bike_spec, "1")["k"] == "b"

    assert registry.versions.promote(bike_spec, v1, None) is None
    assert registry.versions.alias(bike_spec, CHAMPION) == "1"
    run2, uri2 = _log(registry, bike_spec, RunContext("retrain_model", "manual__2"), trained.model)
    v2, _ = registry.versions.register(bike_spec, run2, uri2, {})
    with pytest.raises(ChampionMovedError, match="champion is v1"):
        registry.versions.promote(bike_spec, v2, expected_champion=None)  # evaluation assumed no champion
    assert registry.versions.alias(bike_spec, CHAMPION) == "1"
    assert registry.versions.promote(bike_spec, v2, expected_champion="1") == "1"
    assert registry.versions.alias(bike_spec, CHAMPION) == "2"


def _registered(registry: Registry, spec: DatasetSpec, run: str, tags: dict[str, str] | None = None) -> str:
    run_id, uri = log_model_entry(registry, spec, RunContext("retrain_model", run))
    return registry.versions.register(spec, run_id, uri, tags or {})[0]


def test_versions_are_found_by_their_run_and_their_tags(settings: Settings, bike_spec: DatasetSpec) -> None:
    registry = Registry(settings)
    v1 = _registered(registry, bike_spec, "manual__1", {"data.version": "v0003"})
    run_id, uri = log_model_entry(registry, bike_spec, RunContext("retrain_model", "manual__2"))
    v2, _ = registry.versions.register(bike_spec, run_id, uri, {"data.version": "v0004"})
    v3 = _registered(registry, bike_spec, "manual__3", {"data.version": "v0003"})
    assert [str(mv.version) for mv in registry.versions.search(bike_spec, {"data.version": "v0003"})] == [v1, v3]
    assert registry.versions.search(bike_spec, {"data.version": "v0009"}) == []
    found = registry.versions.for_run(bike_spec, run_id)
    assert found is not None and str(found.version) == v2
    assert registry.versions.for_run(bike_spec, "0" * 32) is None
    assert registry.versions.exists(bike_spec, v3) and not registry.versions.exists(bike_spec, "4")
    registry.versions.tag(bike_spec, v1, {"promotion.decision": "rejected", "data.version": "v0003"})
    assert registry.versions.tags(bike_spec, v1) == {"data.version": "v0003", "promotion.decision": "rejected"}


def test_registering_leaves_no_lock_ticket_behind(settings: Settings, bike_spec: DatasetSpec) -> None:
    registry = Registry(settings)
    _registered(registry, bike_spec, "manual__1")
    assert registry.client.search_model_versions(f"name = '{lock_model(bike_spec.model_name)}'") == []


def test_an_alias_is_dropped_only_while_it_still_points_at_the_version(
    settings: Settings, bike_spec: DatasetSpec
) -> None:
    registry = Registry(settings)
    assert registry.versions.aliases(bike_spec) == {}  # not registered yet
    v1, v2 = _registered(registry, bike_spec, "manual__1"), _registered(registry, bike_spec, "manual__2")
    registry.versions.set_alias(bike_spec, CHALLENGER, v2)
    registry.versions.drop_alias(bike_spec, CHALLENGER, v1)  # moved on since: left alone
    assert registry.versions.aliases(bike_spec) == {CHALLENGER: v2}
    registry.versions.drop_alias(bike_spec, CHALLENGER, v2)
    assert registry.versions.alias(bike_spec, CHALLENGER) is None


def test_promotion_takes_the_challenger_alias_and_a_retry_changes_nothing(
    settings: Settings, bike_spec: DatasetSpec
) -> None:
    registry = Registry(settings)
    v1, v2 = _registered(registry, bike_spec, "manual__1"), _registered(registry, bike_spec, "manual__2")
    registry.versions.promote(bike_spec, v1, None)
    registry.versions.set_alias(bike_spec, CHALLENGER, v2)
    assert registry.versions.promote(bike_spec, v2, expected_champion=v1) == v1
    assert registry.versions.aliases(bike_spec) == {CHAMPION: v2}  # the challenger is the champion now
    assert registry.versions.promote(bike_spec, v2, expected_champion=v1) == v1  # a retry: already done
    assert registry.versions.aliases(bike_spec) == {CHAMPION: v2}


def test_the_models_own_tags(settings: Settings, bike_spec: DatasetSpec) -> None:
    registry = Registry(settings)
    assert registry.versions.model_tags(bike_spec) == {}  # not registered yet
    _registered(registry, bike_spec, "manual__1")
    registry.versions.set_model_tag(bike_spec, "rollback.pending", "{}")
    assert registry.versions.model_tags(bike_spec) == {"rollback.pending": "{}"}
    registry.versions.delete_model_tag(bike_spec, "rollback.pending")
    registry.versions.delete_model_tag(bike_spec, "rollback.pending")  # gone already: no error
    assert registry.versions.model_tags(bike_spec) == {}


def test_a_registry_that_fails_otherwise_is_not_taken_for_a_missing_version(
    settings: Settings, bike_spec: DatasetSpec, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow.exceptions import MlflowException

    registry = Registry(settings)

    def down(*args: object) -> None:
        raise MlflowException("the tracking server is down", error_code="TEMPORARILY_UNAVAILABLE")

    monkeypatch.setattr(registry.client, "get_model_version", down)
    with pytest.raises(MlflowException, match="down"):
        registry.versions.exists(bike_spec, "1")
    monkeypatch.setattr(registry.client, "get_registered_model", down)
    with pytest.raises(MlflowException, match="down"):
        registry.versions.model_tags(bike_spec)
