"""Fault points: a hook run where the code reaches a point, and the environment that makes a
process stall or die there (``RETRAINER_FAULT``), once or every time."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from retrainer import faults
from tests.helpers import REPO, subprocess_env


class Cut(Exception):
    """What a test raises at a fault point, in place of the process dying there."""


def _raise() -> None:
    raise Cut("cut off here")


def test_every_fault_point_is_in_the_code() -> None:
    code = "\n".join(p.read_text() for p in (REPO / "include" / "retrainer").rglob("*.py"))
    used = set(re.findall(r'faults\.point\("([^"]+)"\)', code))
    assert used == set(faults.POINTS)
    with pytest.raises(ValueError, match="no fault point"), faults.hooked("nowhere", _raise):
        pass


def test_a_stalled_point_stops_once_and_says_where(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    once = tmp_path / "stalled"
    monkeypatch.setenv("RETRAINER_FAULT", "train:epoch")
    monkeypatch.setenv("RETRAINER_FAULT_ACTION", "stall")
    monkeypatch.setenv("RETRAINER_FAULT_STALL_S", "0.2")
    monkeypatch.setenv("RETRAINER_FAULT_ONCE", str(once))
    faults.point("train:model")  # another point: nothing
    assert not once.exists()
    t0 = time.monotonic()
    faults.point("train:epoch")
    assert time.monotonic() - t0 >= 0.2 and once.read_text() == f"train:epoch {os.getpid()}"
    t0 = time.monotonic()
    faults.point("train:epoch")  # once: the retry goes through
    assert time.monotonic() - t0 < 0.2


def test_a_point_does_nothing_unless_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RETRAINER_FAULT", raising=False)
    for name in faults.POINTS:
        faults.point(name)
    monkeypatch.setenv("RETRAINER_FAULT", "no such point")
    faults.point("deploy:loaded")


def test_a_hook_runs_at_its_point_once_then_is_gone() -> None:
    with faults.hooked("deploy:loaded", _raise) as fired:
        faults.point("deploy:published")  # another point
        assert fired == []
        with pytest.raises(Cut):
            faults.point("deploy:loaded")
        faults.point("deploy:loaded")  # once: the second time passes
        assert fired == [1]
    faults.point("deploy:loaded")  # after the block: no hook


def test_a_hook_may_run_every_time_and_is_removed_when_its_block_fails() -> None:
    seen: list[str] = []
    with faults.hooked("rollback:alias", lambda: seen.append("here"), once=False) as fired:
        for _ in range(3):
            faults.point("rollback:alias")
    assert seen == ["here"] * 3 and len(fired) == 3
    with pytest.raises(Cut), faults.hooked("rollback:label", _raise):
        faults.point("rollback:label")
    faults.point("rollback:label")  # the failing block took its hook with it


KILLED_AT = """
from retrainer import faults
print("before", flush=True)
faults.point("promote:alias")
print("after", flush=True)
"""


def test_the_process_that_reaches_the_point_is_killed_there_once(tmp_path: Path) -> None:
    """No cleanup runs: the process dies with SIGKILL at the point, as a lost worker would; with
    RETRAINER_FAULT_ONCE the retry finds the file the first one wrote and goes through."""
    once = tmp_path / "fired"
    env = {**subprocess_env(), "RETRAINER_FAULT": "promote:alias", "RETRAINER_FAULT_ONCE": str(once)}
    env.pop("RETRAINER_FAULT_ACTION", None)
    first = subprocess.run([sys.executable, "-c", KILLED_AT], env=env, capture_output=True, text=True, timeout=60)
    assert first.returncode == -signal.SIGKILL and first.stdout == "before\n"
    pid = once.read_text().split()
    assert pid[0] == "promote:alias" and pid[1].isdigit()
    retry = subprocess.run([sys.executable, "-c", KILLED_AT], env=env, capture_output=True, text=True, timeout=60)
    assert retry.returncode == 0 and retry.stdout == "before\nafter\n"
