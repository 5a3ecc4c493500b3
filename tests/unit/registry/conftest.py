"""Fixtures of the registry's unit tests."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest


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
