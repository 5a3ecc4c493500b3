"""Rebuilding a model version from its record: which code rebuilds it, the training configuration
read back from its run, how far the rebuild may differ, and the refusals before any training.
(A version rebuilt and compared end to end: tests/integration/test_reproduce.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from retrainer import schema
from retrainer.records import RunContext
from retrainer.registry.client import Registry
from retrainer.registry.lineage import CodeVersion, LineageNotFoundError
from retrainer.registry.reproduce import (
    ReproductionError,
    export_code,
    plan_code,
    relative_difference,
    reproduce,
    training_config,
)
from retrainer.settings import Settings
from retrainer.spec.dataset import DatasetSpec
from retrainer.spec.learning import TrainingConfig
from tests.helpers import log_model_entry

A = "a" * 40

B = "b" * 40


def test_plan_runs_here_only_when_the_code_is_exactly_the_recorded_code() -> None:
    clean_a = CodeVersion(A, False)
    assert plan_code(clean_a, clean_a) == plan_code(clean_a, CodeVersion(A, False), "auto")
    here = plan_code(clean_a, clean_a)
    assert (here.where, here.exact, here.notices) == ("here", True, ())

    other = plan_code(clean_a, CodeVersion(B, False))
    assert (other.where, other.commit, other.exact) == ("commit", A, True)
    assert "trained on commit aaaaaaaaaa" in other.notices[0] and "bbbbbbbbbb" in other.notices[0]

    dirty_here = plan_code(clean_a, CodeVersion(A, True, changes="x"))
    assert (dirty_here.where, dirty_here.commit) == ("commit", A)
    assert "uncommitted changes" in dirty_here.notices[0]


def test_plan_for_a_version_trained_on_uncommitted_changes() -> None:
    recorded = CodeVersion(A, True, changes="f1")
    same = plan_code(recorded, CodeVersion(A, True, changes="f1"))
    assert (same.where, same.exact) == ("here", True)
    assert "same fingerprint" in same.notices[0]

    differs = plan_code(recorded, CodeVersion(A, True, changes="f2"))
    assert (differs.where, differs.commit, differs.exact) == ("commit", A, False)
    assert any("lacks the uncommitted changes" in n for n in differs.notices)

    forced = plan_code(recorded, CodeVersion(A, True, changes="f2"), "here")
    assert (forced.where, forced.exact) == ("here", None)


def test_plan_without_a_recorded_commit_or_without_git_here() -> None:
    package = CodeVersion("retrainer==0.1.0", None, source="package")
    for recorded in (None, package):
        plan = plan_code(recorded, CodeVersion(A, False))
        assert (plan.where, plan.exact) == ("here", None) and "may differ" in plan.notices[0]
    no_git = plan_code(CodeVersion(A, False), package)
    assert no_git.where == "here" and "no git checkout here" in no_git.notices[0]
    assert plan_code(CodeVersion(A, False), CodeVersion(A, False), "commit").where == "commit"


def test_training_config_from_the_run() -> None:
    spec_cfg = TrainingConfig(epochs=40, seed=1, hidden_units=(8,))
    params = {
        "epochs": "6",
        "batch_size": "64",
        "learning_rate": "0.01",
        "hidden_units": "[64, 32]",
        "patience": "5",
        "seed": "42",
        "validation_fraction": "0.2",
        "holdout_periods": "2011-03",  # the run's period list, not the count
    }
    cfg, notes = training_config(params, {}, spec_cfg, window=2, holdout=1)
    expected = TrainingConfig(
        window_periods=2,
        holdout_periods=1,
        validation_fraction=0.2,
        epochs=6,
        batch_size=64,
        learning_rate=0.01,
        hidden_units=(64, 32),
        patience=5,
        seed=42,
    )
    assert cfg == expected
    assert notes == []

    cfg, notes = training_config({"epochs": "3"}, {"training.seed": "9"}, spec_cfg, window=6, holdout=1)
    assert (cfg.epochs, cfg.seed, cfg.hidden_units) == (3, 9, (8,))
    assert "did not record" in notes[0] and "hidden_units=(8,)" in notes[0]


def test_relative_difference() -> None:
    assert relative_difference(50.0, 50.0) == 0.0
    assert relative_difference(50.0, 51.0) == pytest.approx(0.02)
    assert relative_difference(0.0, 0.5) == 0.5


def test_the_recorded_code_is_exported_from_the_repository(checkout: Path, tmp_path: Path) -> None:
    import subprocess

    commit = subprocess.run(
        ["git", "-C", str(checkout), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    (checkout / "include" / "retrainer" / "training.py").write_text("SEED = 7\n")  # not committed: not exported
    code = export_code(commit, tmp_path, root=checkout)
    assert code == tmp_path / "include" and (code / "retrainer" / "training.py").read_text() == "SEED = 42\n"
    assert not (tmp_path / "README.md").exists() and not (tmp_path / "code.tar").exists()
    with pytest.raises(ReproductionError, match=r"commit b{40} is not in the repository at .*--code here"):
        export_code(B, tmp_path / "other", root=checkout)


def test_a_version_that_cannot_be_rebuilt_as_recorded_is_refused_before_training(
    settings: Settings, bike_spec: DatasetSpec
) -> None:
    with pytest.raises(LineageNotFoundError, match="model 'bike_demand' is not in the MLflow registry"):
        reproduce(settings, "bike_demand", "1")
    registry = Registry(settings)
    run_id, uri = log_model_entry(registry, bike_spec, RunContext("retrain_model", "manual__1"))
    version, _ = registry.versions.register(bike_spec, run_id, uri, {schema.DATA_VERSION: "v0001"})
    with pytest.raises(
        ReproductionError, match=f"MLflow run {run_id} of bike_demand v{version} does not say its dataset"
    ):
        reproduce(settings, "bike_demand", version)
