"""Deploy: the champion exported into the model store and served beside ``stable`` as ``canary``;
its check through a model server moves ``stable`` (only while it is the champion), or drops the
canary and leaves ``stable`` where it was; a store that lost its state is not written over. (A
failed check rolling back on its own, through Airflow: tests/integration/test_rollback_e2e.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from retrainer import schema
from retrainer.model import training
from retrainer.pipeline import deploy
from retrainer.records import RegisteredVersion, TrainingPlan
from retrainer.registry.client import Registry
from retrainer.serving import export, modelstore, postdeploy
from retrainer.serving.modelstore import CANARY, STABLE
from retrainer.settings import Settings
from retrainer.spec.dataset import DatasetSpec
from tests.helpers import write_spec
from tests.unit.pipeline.conftest import logged, plan_of, small_spec_data


def _champion(settings: Settings, spec: DatasetSpec, run: str, model: object, plan: TrainingPlan) -> RegisteredVersion:
    """A version of ``model`` registered with its data, and promoted."""
    registry = Registry(settings)
    run_id, uri = logged(settings, spec, run, model, plan)
    version, _ = registry.versions.register(spec, run_id, uri, schema.data_tags(plan))
    registry.versions.promote(spec, version, registry.versions.alias(spec, schema.CHAMPION))
    return RegisteredVersion(spec.model_name, version, True)


def test_a_champion_serves_as_canary_then_as_stable_once_its_check_passed(
    world: Settings, world_spec: DatasetSpec, bike_trained: training.TrainResult
) -> None:
    plan = plan_of(world)
    registered = _champion(world, world_spec, "manual__1", bike_trained.model, plan)
    deployed = deploy.deploy(world, plan, registered)
    assert deployed.created and deployed.labels == {CANARY: 1}
    assert deployed.location == str(Path(world.model_store) / "bike_demand" / "1")
    registry = Registry(world)
    tags = registry.versions.tags(world_spec, "1")
    assert (tags[schema.DEPLOY_LABEL], tags[schema.DEPLOY_ARTIFACT]) == (CANARY, "savedmodel")
    assert tags[schema.DEPLOY_LOCATION] == deployed.location
    assert Path(tags[schema.TFLITE_LOCATION]).is_file()  # the TFLite model kept beside the store, not served
    assert not (Path(deployed.location) / modelstore.TFLITE_MODEL).exists()

    verified = deploy.verify_deployment(world, plan, deployed)
    assert verified.labels == {STABLE: 1} and (verified.check.rows, verified.check.requests) == (16, 5)
    assert verified.check.route == "/v1/models/bike_demand/labels/canary"
    tags = registry.versions.tags(world_spec, "1")
    assert tags[schema.DEPLOY_LABEL] == STABLE and tags[schema.DEPLOY_VERIFIED] == "true"
    assert tags[schema.DEPLOY_CHECK_ENDPOINT].startswith("the embedded model server, started for the check: /v1/")
    assert modelstore.read_config(world.model_store)["bike_demand"].served() == [1]


def test_a_new_version_whose_check_fails_leaves_stable_where_it_was(
    world: Settings, world_spec: DatasetSpec, bike_trained: training.TrainResult, tmp_path: Path
) -> None:
    plan = plan_of(world)
    first = _champion(world, world_spec, "manual__1", bike_trained.model, plan)
    export.deploy(world, world_spec, first.version, bike_trained.model)  # serving as stable already
    modelstore.set_label(world.model_store, "bike_demand", STABLE, 1)
    second = _champion(world, world_spec, "manual__2", bike_trained.model, plan)
    deployed = deploy.deploy(world, plan, second)
    assert deployed.labels == {STABLE: 1, CANARY: 2}
    assert modelstore.read_config(world.model_store)["bike_demand"].served() == [2, 1]

    strict = small_spec_data()
    strict["deploy"]["max_p99_ms"] = 0.001  # no server answers that fast
    write_spec(Path(world.specs_dir), strict, "bike_sharing")
    with pytest.raises(postdeploy.DeployCheckError, match=r"^latency: p99 .* above the limit 0\.001 ms"):
        deploy.verify_deployment(world, plan, deployed)
    entry = modelstore.read_config(world.model_store)["bike_demand"]
    assert entry.labels == {STABLE: 1} and entry.served() == [1]  # canary dropped, v2 unloaded
    tags = Registry(world).versions.tags(world_spec, "2")
    assert tags[schema.DEPLOY_VERIFIED] == "false" and tags[schema.DEPLOY_CHECK_ERROR].startswith("latency: p99")


def test_a_store_that_lost_its_state_is_not_written_over(
    world: Settings, world_spec: DatasetSpec, bike_trained: training.TrainResult
) -> None:
    """Its models.config gone, the store would read as serving nothing: every label would vanish."""
    plan = plan_of(world)
    first = _champion(world, world_spec, "manual__1", bike_trained.model, plan)
    Registry(world).versions.tag(world_spec, first.version, {schema.DEPLOY_LABEL: STABLE})  # served before
    second = _champion(world, world_spec, "manual__2", bike_trained.model, plan)
    with pytest.raises(deploy.ModelStoreLostError) as err:
        deploy.deploy(world, plan, second)
    assert "has no entry for bike_demand, but versions [1] served as stable before: the store lost" in str(err.value)
    assert "serve v2 again with rollback_model (version 2), before deploying" in str(err.value)  # the champion
    assert modelstore.read_config(world.model_store) == {}  # no label written


def _registry_state(settings: Settings, spec: DatasetSpec) -> tuple[object, ...]:
    registry = Registry(settings)
    versions = {mv.version: dict(mv.tags) for mv in registry.versions.search(spec, {})}
    return registry.versions.aliases(spec), registry.versions.model_tags(spec), versions


def test_a_store_lost_between_deploy_and_verify_is_not_taken_for_a_bad_model(
    world: Settings, world_spec: DatasetSpec, bike_trained: training.TrainResult
) -> None:
    """v2 deployed as canary beside v1 (stable); then the store is emptied. The check, and the
    rollback of a bad deploy that follows a failed check, both stop with ModelStoreLostError and
    its remedy: no champion moved back, no version tagged rolled back or failed, nothing written
    to the store. A store that lost one version's folder alone is refused the same way."""
    import shutil

    from retrainer.pipeline import rollback
    from retrainer.records import RunContext

    plan = plan_of(world)
    registry = Registry(world)
    first = _champion(world, world_spec, "manual__1", bike_trained.model, plan)
    export.deploy(world, world_spec, first.version, bike_trained.model)
    modelstore.set_label(world.model_store, "bike_demand", STABLE, 1)
    registry.versions.tag(world_spec, "1", {schema.DEPLOY_LABEL: STABLE})
    second = _champion(world, world_spec, "manual__2", bike_trained.model, plan)
    registry.versions.tag(world_spec, "2", schema.promoted_tags("policy:auto", "1"))  # v2 replaced v1
    deployed = deploy.deploy(world, plan, second)
    assert deployed.labels == {STABLE: 1, CANARY: 2}

    shutil.rmtree(world.model_store)
    before = _registry_state(world, world_spec)
    with pytest.raises(deploy.ModelStoreLostError) as err:
        deploy.verify_deployment(world, plan, deployed)
    said = str(err.value)
    assert "models.config has no entry for bike_demand, but versions [1] served as stable before" in said
    assert "the store lost its state. Restore it, or serve v2 again with rollback_model (version 2), then" in said
    ctx = RunContext("retrain_model", "manual__2")
    with pytest.raises(deploy.ModelStoreLostError, match="nothing was rolled back"):
        rollback.roll_back_bad_deploy(world, plan, deployed, ctx, "no entry in models.config")
    assert _registry_state(world, world_spec) == before
    assert registry.versions.alias(world_spec, schema.CHAMPION) == "2"
    assert not Path(world.model_store).exists() or modelstore.read_config(world.model_store) == {}

    # the config kept, one version's folder gone
    export.deploy(world, world_spec, "1", bike_trained.model)
    modelstore.set_label(world.model_store, "bike_demand", STABLE, 1)
    deployed = deploy.deploy(world, plan, second)
    shutil.rmtree(Path(world.model_store) / "bike_demand" / "1")
    with pytest.raises(deploy.ModelStoreLostError, match=r"holds no complete v1 of bike_demand \(.*/1 without"):
        deploy.verify_deployment(world, plan, deployed)
    assert modelstore.read_config(world.model_store)["bike_demand"].labels == {STABLE: 1, CANARY: 2}
