"""Release: the candidate registered once with its evidence as ``challenger``, then promoted by
compare-and-set (or rejected), the decision recorded and the first one standing; under policy
``review`` only a reviewer's approval promotes. (A champion moved between evaluation and promotion,
evaluated again, across processes: tests/integration/test_promotion_cas.py and tests/reliability/.)"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from retrainer import schema
from retrainer.model import training
from retrainer.pipeline import release
from retrainer.records import DriftSummary, Evaluation, RegisteredVersion, RunContext, TrainedRun, TrainingPlan
from retrainer.registry.client import Registry
from retrainer.registry.versions import ChampionMovedError
from retrainer.schema import CHALLENGER, CHAMPION
from retrainer.settings import Settings
from retrainer.spec.dataset import DatasetSpec
from tests.helpers import bike_spec_data, log_keras_model, log_model_entry, write_spec
from tests.unit.pipeline.conftest import logged, plan_of, small_spec_data


@pytest.fixture(scope="module")
def trained(bike_trained: training.TrainResult) -> training.TrainResult:
    return bike_trained


def _log(registry: Registry, spec: DatasetSpec, ctx: RunContext, model: object) -> tuple[str, str]:
    return log_keras_model(registry, spec, ctx, model)


RELEASE_WITHOUT_TENSORFLOW = """
import json, sys
from retrainer.registry import approval
from retrainer.records import Evaluation, RunContext, TrainedRun, TrainingPlan
from retrainer.pipeline import release
from retrainer.registry.client import Registry
from retrainer.settings import Settings

s = Settings.from_env()
spec = s.load_spec("bike_sharing")
plan = TrainingPlan("bike_sharing", spec.model_name, "v0001", "bike_sharing/v0001", "0" * 40, ["2011-04", "2011-05"],
                    ["2011-06"], 2)
ev = Evaluation(True, "rmse", 1.0, 2.0, None, None, [], [], None, {}, {}, None, 10)
trained = TrainedRun(sys.argv[1], sys.argv[2], False)
registered = release.register(s, plan, trained, ev, RunContext("retrain_model", "manual__3"))
approval.recorded(Registry(s).versions.tags(spec, registered.version))  # what the review reads
promoted = release.promote(s, plan, ev, registered, trained)
print(json.dumps({"promoted": promoted.promoted, "imported": [m for m in ("tensorflow", "keras") if m in sys.modules]}))
"""


def test_the_release_steps_do_not_import_tensorflow(
    settings: Settings, bike_spec: DatasetSpec, trained: training.TrainResult
) -> None:
    """register, the review's decision and promote work on MLflow alone: their task processes
    never pay for TensorFlow."""
    import json
    import subprocess
    import sys

    from tests.helpers import subprocess_env

    run_id, uri = _log(Registry(settings), bike_spec, RunContext("retrain_model", "manual__3"), trained.model)
    out = subprocess.run(
        [sys.executable, "-c", RELEASE_WITHOUT_TENSORFLOW, run_id, uri],
        capture_output=True,
        text=True,
        env=subprocess_env(),
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {"promoted": True, "imported": []}


PLAN = TrainingPlan(
    "bike_sharing", "bike_demand", "v0003", "bike_sharing/v0003", "a" * 40, ["2011-04", "2011-05"], ["2011-06"], 2
)


def _evaluation(passed: bool = True, champion: str | None = None) -> Evaluation:
    reasons = ["rmse 61.2 vs baseline 150 (-59.3%)"] if passed else ["rmse 180 is not 25% better than baseline 150"]
    return Evaluation(
        passed,
        "rmse",
        61.2 if passed else 180.0,
        150.3,
        None,
        champion,
        reasons,
        [],
        None,
        {"rmse": 61.2},
        {"rmse": 150.3},
        None,
        720,
    )


def _trained(settings: Settings, spec: DatasetSpec, run: str) -> TrainedRun:
    run_id, uri = log_model_entry(Registry(settings), spec, RunContext("retrain_model", run))
    return TrainedRun(run_id, uri, False)


def _register(
    settings: Settings, spec: DatasetSpec, run: str, ev: Evaluation, plan: TrainingPlan = PLAN
) -> tuple[TrainedRun, RegisteredVersion]:
    trained = _trained(settings, spec, run)
    return trained, release.register(settings, plan, trained, ev, RunContext("retrain_model", run))


def test_a_candidate_is_registered_once_with_its_evidence_as_challenger(
    settings: Settings, bike_spec: DatasetSpec
) -> None:
    drift = DriftSummary("6/10 features drifted", "http://mlflow/drift", "r1", ["temp", "hum"])
    trained = _trained(settings, bike_spec, "manual__1")
    ctx = RunContext("retrain_model", "manual__1", trigger="drift: 6/10 features drifted")
    registered = release.register(settings, PLAN, trained, _evaluation(), ctx, drift)
    assert registered == RegisteredVersion("bike_demand", "1", True)
    registry = Registry(settings)
    tags = registry.versions.tags(bike_spec, "1")
    assert tags[schema.VERSION_RUN_ID] == trained.run_id and tags[schema.DATA_VERSION] == "v0003"
    assert tags[schema.DATA_TRAIN_PERIODS] == "2011-04,2011-05" and tags[schema.GX_SUCCESS] == "true"
    assert tags[schema.GATE_PASSED] == "true" and tags[schema.AIRFLOW_RUN_ID] == "manual__1"
    assert tags[schema.TRIGGER] == "drift: 6/10 features drifted" and tags[schema.DRIFT_REASON] == drift.reason
    assert (tags[schema.DRIFT_REPORT_URI], tags[schema.DRIFT_MLFLOW_RUN_ID]) == ("http://mlflow/drift", "r1")
    assert registry.versions.aliases(bike_spec) == {CHALLENGER: "1"}
    retry = release.register(settings, PLAN, trained, _evaluation(), replace(ctx, try_number=2))
    assert retry == RegisteredVersion("bike_demand", "1", False)
    assert len(registry.versions.search(bike_spec, {})) == 1


def test_a_model_of_the_past_is_evidence_only(settings: Settings, bike_spec: DatasetSpec) -> None:
    _, registered = _register(settings, bike_spec, "backfill__1", _evaluation(), replace(PLAN, backfill=True))
    registry = Registry(settings)
    tags = registry.versions.tags(bike_spec, registered.version)
    assert tags[schema.BACKFILL] == "true" and tags[schema.PROMOTION_DECISION] == schema.NOT_CONSIDERED_BACKFILL
    assert registry.versions.aliases(bike_spec) == {}  # never a challenger
    promotion = release.promote(settings, PLAN, _evaluation(), registered)
    assert (promotion.promoted, promotion.reused) == (False, True)  # the decision recorded stands


def test_a_candidate_that_passed_is_promoted_once_and_the_decision_recorded(
    settings: Settings, bike_spec: DatasetSpec
) -> None:
    _, first = _register(settings, bike_spec, "manual__1", _evaluation())
    done = release.promote(settings, PLAN, _evaluation(), first)
    assert (done.promoted, done.version, done.previous_champion, done.reused) == (True, "1", None, False)
    registry = Registry(settings)
    assert registry.versions.aliases(bike_spec) == {CHAMPION: "1"}
    tags = registry.versions.tags(bike_spec, "1")
    assert tags[schema.PROMOTION_DECISION] == schema.PROMOTED and tags[schema.PROMOTION_DECIDED_BY] == "policy:auto"
    assert release.promote(settings, PLAN, _evaluation(), first).reused  # a retry: the recorded decision

    _, second = _register(settings, bike_spec, "manual__2", _evaluation(champion="1"))
    done = release.promote(settings, PLAN, _evaluation(champion="1"), second)
    assert (done.promoted, done.previous_champion) == (True, "1")
    assert schema.read_previous_champion(registry.versions.tags(bike_spec, "2")) == "1"


def test_a_candidate_that_failed_is_rejected_with_the_gates_reasons(settings: Settings, bike_spec: DatasetSpec) -> None:
    failed = _evaluation(passed=False)
    _, registered = _register(settings, bike_spec, "manual__1", failed)
    assert Registry(settings).versions.aliases(bike_spec) == {CHALLENGER: "1"}
    done = release.promote(settings, PLAN, failed, registered)
    assert (done.promoted, done.previous_champion) == (False, None)
    registry = Registry(settings)
    tags = registry.versions.tags(bike_spec, "1")
    assert tags[schema.PROMOTION_DECISION] == schema.REJECTED
    assert tags[schema.PROMOTION_REASON] == "rmse 180 is not 25% better than baseline 150"
    assert registry.versions.aliases(bike_spec) == {}  # no longer the challenger


def test_a_champion_moved_since_the_evaluation_is_not_overwritten(settings: Settings, bike_spec: DatasetSpec) -> None:
    _, first = _register(settings, bike_spec, "manual__1", _evaluation())
    _, second = _register(settings, bike_spec, "manual__2", _evaluation())
    release.promote(settings, PLAN, _evaluation(), first)
    with pytest.raises(ChampionMovedError, match="champion is v1 but the evaluation compared against vNone"):
        release.promote(settings, PLAN, _evaluation(), second)  # nothing to evaluate it again with
    assert Registry(settings).versions.alias(bike_spec, CHAMPION) == "1"
    assert schema.PROMOTION_DECISION not in Registry(settings).versions.tags(bike_spec, "2")


def test_equal_candidates_end_on_one_champion_and_every_other_decided(
    world: Settings, world_spec: DatasetSpec, bike_trained: training.TrainResult
) -> None:
    """Three candidates of one score, each judged while there was no champion: the first to
    promote wins; each other one, evaluated again against it (under the model's lock), ties,
    and a tie is no improvement: rejected, its decision recorded, the champion where it was."""
    from retrainer.pipeline.evaluate import evaluate

    plan = plan_of(world)
    candidates = []
    for run in ("manual__1", "manual__2", "manual__3"):
        run_id, uri = logged(world, world_spec, run, bike_trained.model, plan)
        trained = TrainedRun(run_id, uri, False)
        ev = evaluate(world, plan, trained)
        assert ev.passed and ev.champion_version is None
        registered = release.register(world, plan, trained, ev, RunContext("retrain_model", run))
        candidates.append((trained, ev, registered))
    outs = [release.promote(world, plan, ev, registered, trained) for trained, ev, registered in candidates]
    assert [(o.version, o.promoted) for o in outs] == [("1", True), ("2", False), ("3", False)]
    registry = Registry(world)
    assert registry.versions.aliases(world_spec) == {CHAMPION: "1"}
    for version in ("2", "3"):
        tags = registry.versions.tags(world_spec, version)
        assert tags[schema.PROMOTION_DECISION] == schema.REJECTED
        reason = tags[schema.PROMOTION_REASON]
        assert reason.startswith("re-evaluated against champion v1:") and "ties champion v1 (rmse " in reason
        assert tags[schema.GATE_CHAMPION_VERSION] == "1" and tags[schema.GATE_PASSED] == "false"


def test_a_promotion_on_a_reevaluation_killed_before_its_record_names_the_champion_it_replaced(
    world: Settings, world_spec: DatasetSpec, bike_trained: training.TrainResult, tmp_path: Path
) -> None:
    """v2 was evaluated while there was no champion; v1 became champion meanwhile; v2, evaluated
    again against v1 and passing (a margin that lets a tie pass), moves the alias and is killed
    before its decision is recorded. Its retry holds the first evaluation only (no champion),
    yet records that v2 replaced v1, so that a rollback "previous" goes back to v1."""
    from retrainer import faults
    from retrainer.pipeline.evaluate import evaluate

    lenient = small_spec_data()
    lenient["gate"]["champion_margin"] = -1.0
    write_spec(Path(world.specs_dir), lenient, "bike_sharing")
    plan = plan_of(world)
    candidates = []
    for run in ("manual__1", "manual__2"):
        run_id, uri = logged(world, world_spec, run, bike_trained.model, plan)
        trained = TrainedRun(run_id, uri, False)
        ev = evaluate(world, plan, trained)
        candidates.append((trained, ev, release.register(world, plan, trained, ev, RunContext("retrain_model", run))))
    (t1, ev1, v1), (t2, ev2, v2) = candidates
    assert release.promote(world, plan, ev1, v1, t1).promoted

    class Killed(Exception):
        pass

    def kill() -> None:
        raise Killed("killed after the alias moved")

    with faults.hooked("promote:alias", kill), pytest.raises(Killed):
        release.promote(world, plan, ev2, v2, t2)
    registry = Registry(world)
    assert registry.versions.alias(world_spec, CHAMPION) == "2"
    assert schema.PROMOTION_DECISION not in registry.versions.tags(world_spec, "2")
    retry = release.promote(world, plan, ev2, v2, t2)  # the first evaluation, from the task's input
    assert (retry.promoted, retry.previous_champion) == (True, "1")
    assert schema.read_previous_champion(registry.versions.tags(world_spec, "2")) == "1"


def _review_policy(settings: Settings, tmp_path: Path) -> Settings:
    data = bike_spec_data()
    data["approval"]["policy"] = "review"
    write_spec(tmp_path, data, "bike_sharing")
    return replace(settings, specs_dir=str(tmp_path))


def test_under_review_only_an_approval_promotes(settings: Settings, bike_spec: DatasetSpec, tmp_path: Path) -> None:
    review = _review_policy(settings, tmp_path)
    _, registered = _register(review, bike_spec, "manual__1", _evaluation())
    with pytest.raises(release.ReviewPendingError, match=r"v1: policy is review and no reviewer approved it .*=none"):
        release.promote(review, PLAN, _evaluation(), registered)
    registry = Registry(review)
    registry.versions.tag(bike_spec, "1", {schema.APPROVAL_DECISION: "rejected", schema.APPROVAL_REVIEWER: "rita"})
    with pytest.raises(release.ReviewPendingError, match=r"approval\.decision=rejected"):
        release.promote(review, PLAN, _evaluation(), registered)
    registry.versions.tag(
        bike_spec,
        "1",
        {schema.APPROVAL_DECISION: "approved", schema.APPROVAL_VIA: "airflow", schema.APPROVAL_REVIEWER: "rita"},
    )
    assert release.promote(review, PLAN, _evaluation(), registered).promoted
    assert registry.versions.tags(bike_spec, "1")[schema.PROMOTION_DECIDED_BY] == "review:airflow:rita"


def test_a_failed_gate_is_rejected_without_waiting_for_a_review(
    settings: Settings, bike_spec: DatasetSpec, tmp_path: Path
) -> None:
    review = _review_policy(settings, tmp_path)
    _, registered = _register(review, bike_spec, "manual__1", _evaluation(passed=False))
    assert not release.promote(review, PLAN, _evaluation(passed=False), registered).promoted


def test_a_reviewer_is_shown_where_the_evidence_is(settings: Settings, bike_spec: DatasetSpec) -> None:
    trained, registered = _register(settings, bike_spec, "manual__1", _evaluation())
    links = release.review_links(settings, bike_spec, registered.version, "http://airflow/run/1")
    exp = Registry(settings).runs.experiment_id(bike_spec)
    run = f"{settings.mlflow_ui_url}/#/experiments/{exp}/runs/{trained.run_id}"
    assert links == {
        "Model version in MLflow": f"{settings.mlflow_ui_url}/#/models/bike_demand/versions/1",
        "Evaluation report": f"{run}/artifacts/{schema.ARTIFACT_EVALUATION_REPORT}?workflowType=machine_learning",
        "MLflow run": f"{run}?workflowType=machine_learning",
        "Airflow run": "http://airflow/run/1",
    }
