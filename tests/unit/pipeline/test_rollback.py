"""Rollback: an earlier version served again, on purpose or after a failed deploy check, with
alias, label and records moved together; one cut off half way is finished first. (Through
rollback_model, and killed at each step: tests/integration/test_rollback_e2e.py and
test_rollback_kills.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from retrainer import faults, schema
from retrainer.model import training
from retrainer.pipeline import rollback
from retrainer.records import Deployment, RunContext, TrainingPlan
from retrainer.registry.client import Registry
from retrainer.schema import CHAMPION
from retrainer.serving import export, modelstore
from retrainer.serving.modelstore import STABLE
from retrainer.settings import Settings
from retrainer.spec.dataset import DatasetSpec
from tests.helpers import log_model_entry
from tests.unit.pipeline.conftest import logged, plan_of

CTX = RunContext("rollback_model", "manual__9")


def _second_champion(settings: Settings, spec: DatasetSpec, model: object, champions: int = 2) -> None:
    """v1 promoted, then v2 in its place (and so on up to ``champions``), the last serving as
    stable; all trained on the world's data."""
    plan = plan_of(settings)
    registry = Registry(settings)
    for n in range(1, champions + 1):
        version = str(n)
        run_id, uri = logged(settings, spec, f"manual__{n}", model, plan)
        assert registry.versions.register(spec, run_id, uri, schema.data_tags(plan))[0] == version
        previous = registry.versions.promote(spec, version, registry.versions.alias(spec, CHAMPION))
        registry.versions.tag(spec, version, schema.promoted_tags("policy:auto", previous))
    deployed = export.deploy(settings, spec, str(champions), model)
    modelstore.set_label(settings.model_store, spec.model_name, STABLE, champions)
    tags = {schema.DEPLOY_LABEL: STABLE, schema.DEPLOY_LOCATION: deployed.location}
    registry.versions.tag(spec, str(champions), tags)


def test_a_failed_deploy_of_the_champion_puts_the_one_it_replaced_back(
    world: Settings, world_spec: DatasetSpec, bike_trained: training.TrainResult
) -> None:
    _second_champion(world, world_spec, bike_trained.model)
    bad = Deployment("2", f"{world.model_store}/bike_demand/2", True, {STABLE: 2})
    said = rollback.roll_back_bad_deploy(world, plan_of(world), bad, CTX, "latency: p99 900 ms")
    assert said == "rolled back from v2 to v1"
    registry = Registry(world)
    assert registry.versions.alias(world_spec, CHAMPION) == "1"
    entry = modelstore.read_config(world.model_store)["bike_demand"]
    assert entry.labels == {STABLE: 1} and entry.served() == [1]
    back = registry.versions.tags(world_spec, "1")
    assert back[schema.ROLLBACK_FROM] == "2" and back[schema.ROLLBACK_BY] == rollback.AUTOMATIC
    assert back[schema.ROLLBACK_REASON] == "automatic: deploy check failed: latency: p99 900 ms"
    assert back[schema.DEPLOY_LABEL] == STABLE and back[schema.DEPLOY_ARTIFACT] == "savedmodel"
    assert registry.versions.tags(world_spec, "2")[schema.ROLLED_BACK_TO] == "1"
    assert schema.ROLLBACK_PENDING not in registry.versions.model_tags(world_spec)
    with pytest.raises(LookupError, match="bike_demand v1 replaced no earlier champion: no 'previous' to go back to"):
        rollback.rollback(world, "bike_sharing", "previous", RunContext("rollback_model", "manual__10"), "again", "ops")


class Cut(Exception):
    """A process cut off at a fault point."""


def _cut() -> None:
    raise Cut("cut off here")


def test_a_rollback_cut_off_half_way_is_finished_and_never_goes_two_steps(
    world: Settings, world_spec: DatasetSpec, bike_trained: training.TrainResult
) -> None:
    _second_champion(world, world_spec, bike_trained.model)
    with faults.hooked("rollback:alias", _cut), pytest.raises(Cut):  # the alias moved, the label not yet
        rollback.rollback(world, "bike_sharing", "previous", CTX, "bad numbers", "ops")
    registry = Registry(world)
    assert registry.versions.alias(world_spec, CHAMPION) == "1"
    assert modelstore.read_config(world.model_store)["bike_demand"].labels == {STABLE: 2}
    pending = schema.read_rollback_pending(registry.versions.model_tags(world_spec))
    assert pending is not None and (pending.from_version, pending.to_version) == ("2", "1")

    retry = RunContext("rollback_model", "manual__9", try_number=2)
    done = rollback.rollback(world, "bike_sharing", "previous", retry, "x", "y")  # "previous" of v2, not of v1
    assert (done.from_version, done.to_version, done.by, done.reason) == ("2", "1", "ops", "bad numbers")
    assert done.labels == {STABLE: 1} and done.max_abs_diff < 1e-3
    assert schema.ROLLBACK_PENDING not in registry.versions.model_tags(world_spec)

    # cut off again on the way back to v2; asked for v1 instead, that one is finished first
    with faults.hooked("rollback:alias", _cut), pytest.raises(Cut):
        rollback.rollback(world, "bike_sharing", "2", RunContext("rollback_model", "manual__10"), "it was fine", "ops")
    done = rollback.rollback(
        world, "bike_sharing", "1", RunContext("rollback_model", "manual__11"), "it was not", "ops"
    )
    assert (done.from_version, done.to_version, done.labels) == ("2", "1", {STABLE: 1})
    assert registry.versions.tags(world_spec, "2")[schema.ROLLBACK_REASON] == "it was fine"  # recorded, then left
    assert registry.versions.tags(world_spec, "1")[schema.ROLLBACK_REASON] == "it was not"


def test_a_finished_rollback_run_again_moves_nothing(
    world: Settings, world_spec: DatasetSpec, bike_trained: training.TrainResult
) -> None:
    """v3 replaced v2, which replaced v1. A rollback "previous" moves 3 -> 2 and its process dies
    after the last write, before Airflow records its success; the task runs again under the
    same run id: it answers what it did and moves nothing (not 2 -> 1). Another run asking
    "previous" is a new request and goes on to v1; the first run, run once more, still moves nothing."""
    _second_champion(world, world_spec, bike_trained.model, champions=3)
    registry = Registry(world)
    first = rollback.rollback(world, "bike_sharing", "previous", CTX, "bad numbers", "ops")  # then the task dies
    assert (first.from_version, first.to_version) == ("3", "2")
    assert registry.versions.alias(world_spec, CHAMPION) == "2"
    assert schema.ROLLBACK_PENDING not in registry.versions.model_tags(world_spec)

    retry = RunContext("rollback_model", "manual__9", try_number=2)
    again = rollback.rollback(world, "bike_sharing", "previous", retry, "bad numbers", "ops")
    assert (again.from_version, again.to_version, again.by, again.reason) == ("3", "2", "ops", "bad numbers")
    assert again.labels == {STABLE: 2} and again.max_abs_diff < 1e-3
    assert registry.versions.alias(world_spec, CHAMPION) == "2"
    assert modelstore.read_config(world.model_store)["bike_demand"].labels == {STABLE: 2}
    assert registry.versions.tags(world_spec, "2")[schema.ROLLBACK_AIRFLOW_RUN_ID] == "manual__9"

    other = rollback.rollback(world, "bike_sharing", "previous", RunContext("rollback_model", "manual__10"), "x", "ops")
    assert (other.from_version, other.to_version) == ("2", "1")
    cleared = rollback.rollback(world, "bike_sharing", "previous", CTX, "bad numbers", "ops")
    assert (cleared.from_version, cleared.to_version) == ("3", "2")
    assert registry.versions.alias(world_spec, CHAMPION) == "1"  # the cleared run moved nothing back
    assert modelstore.read_config(world.model_store)["bike_demand"].labels == {STABLE: 1}
    with pytest.raises(LookupError, match="bike_demand has no version 7"):  # one run id, another DAG: not this run
        rollback.rollback(world, "bike_sharing", "7", RunContext("retrain_model", "manual__9"), "x", "ops")


def test_a_rollback_is_refused_when_there_is_nowhere_to_go(settings: Settings, bike_spec: DatasetSpec) -> None:
    with pytest.raises(LookupError, match="bike_demand has no champion: nothing to roll back from"):
        rollback.rollback(settings, "bike_sharing", "previous", CTX, "why", "ops")
    registry = Registry(settings)
    run_id, uri = log_model_entry(registry, bike_spec, RunContext("retrain_model", "manual__1"))
    registry.versions.register(bike_spec, run_id, uri, {})
    registry.versions.promote(bike_spec, "1", None)
    with pytest.raises(LookupError, match="v1 replaced no earlier champion"):
        rollback.rollback(settings, "bike_sharing", "previous", CTX, "why", "ops")
    with pytest.raises(ValueError, match="rollback target must be a version number or 'previous', got 'v0'"):
        rollback.rollback(settings, "bike_sharing", "v0", CTX, "why", "ops")
    with pytest.raises(LookupError, match="bike_demand has no version 9"):
        rollback.rollback(settings, "bike_sharing", "9", CTX, "why", "ops")
    assert Registry(settings).versions.alias(bike_spec, CHAMPION) == "1"  # nothing moved


def test_a_failed_deploy_rolls_back_only_a_champion_that_replaced_one(
    settings: Settings, bike_spec: DatasetSpec
) -> None:
    registry = Registry(settings)
    for run in ("manual__1", "manual__2"):
        run_id, uri = log_model_entry(registry, bike_spec, RunContext("retrain_model", run))
        registry.versions.register(bike_spec, run_id, uri, {})
    registry.versions.promote(bike_spec, "1", None)
    for version in (1, 2):  # the store serves both, as after v2's deploy beside v1
        folder = Path(settings.model_store) / "bike_demand" / str(version)
        folder.mkdir(parents=True)
        (folder / modelstore.SAVED_MODEL).write_bytes(b"")
    modelstore.set_label(settings.model_store, "bike_demand", STABLE, 1)
    modelstore.set_label(settings.model_store, "bike_demand", modelstore.CANARY, 2)
    plan = TrainingPlan(
        "bike_sharing", "bike_demand", "v0003", "bike_sharing/v0003", "a" * 40, ["2011-04"], ["2011-05"], 1
    )
    not_champion = Deployment("2", "/store/bike_demand/2", True, {})
    assert rollback.roll_back_bad_deploy(settings, plan, not_champion, CTX, "x") == (
        "v2 is not the champion, so nothing to roll back"
    )
    first = Deployment("1", "/store/bike_demand/1", True, {})
    said = rollback.roll_back_bad_deploy(settings, plan, first, CTX, "x")
    assert said == "no rollback (bike_demand v1 replaced no earlier champion: no 'previous' to go back to)"
