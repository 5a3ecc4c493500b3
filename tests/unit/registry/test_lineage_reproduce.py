"""The pure parts of lineage and reproduction: the code version, which code rebuilds a
version, and the training configuration read back from a run."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from retrainer.registry.lineage import CodeVersion, code_version
from retrainer.registry.reproduce import plan_code, relative_difference, training_config
from retrainer.spec.learning import TrainingConfig

A = "a" * 40
B = "b" * 40


def _git(root: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True)


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "include" / "retrainer").mkdir(parents=True)
    (root / "include" / "retrainer" / "training.py").write_text("SEED = 42\n")
    (root / "README.md").write_text("readme\n")
    _git(root, "init", "-q", "-b", "main")
    _git(root, "-c", "user.name=t", "-c", "user.email=t@localhost", "add", "-A")
    _git(root, "-c", "user.name=t", "-c", "user.email=t@localhost", "commit", "-q", "-m", "first")
    return root


def test_code_version_of_a_checkout(checkout: Path) -> None:
    clean = code_version(checkout)
    assert clean.is_git and not clean.dirty and clean.changes is None
    assert clean.tags() == {"code.commit": clean.commit, "code.dirty": "false", "code.source": "git"}

    (checkout / "README.md").write_text("changed outside include/\n")
    assert code_version(checkout).dirty is False

    (checkout / "include" / "retrainer" / "training.py").write_text("SEED = 7\n")
    edited = code_version(checkout)
    assert edited.dirty and edited.changes and edited.commit == clean.commit
    (checkout / "include" / "retrainer" / "new.py").write_text("x = 1\n")  # a new file counts too
    added = code_version(checkout)
    assert added.dirty and added.changes != edited.changes
    assert CodeVersion.from_tags(added.tags()) == added


def test_code_version_outside_a_checkout(tmp_path: Path) -> None:
    found = code_version(tmp_path)
    assert not found.is_git and found.dirty is None and found.commit.startswith("retrainer==")
    assert found.tags()["code.dirty"] == "unknown"


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
