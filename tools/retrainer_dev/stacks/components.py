"""What every stack is made of: components (one process each), their health, their logs, and
the environment they start from."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import requests

#: locations and credentials that must come from the stack, never from the shell that starts it
NOT_INHERITED = (
    "RETRAINER_",
    "AIRFLOW_",
    "MLFLOW_",
    "AWS_",
    "PYTEST_",
)


class StackUnavailable(RuntimeError):
    """A stack cannot run on this machine (no PostgreSQL, no Redis, ...); the message says what is missing."""


@dataclass(frozen=True)
class Component:
    """One process of a stack: its name, command and what its environment adds."""

    name: str
    args: list[str]
    env: dict[str, str] = field(default_factory=dict)
    health: str = ""  # a URL that answers 200 once it is up (besides Airflow's own health check)


def inherited_env() -> dict[str, str]:
    """This process's environment without what a stack sets itself (``NOT_INHERITED``)."""
    return {k: v for k, v in os.environ.items() if not k.startswith(NOT_INHERITED)}


def answers(url: str, timeout: float = 5.0) -> bool:
    """Whether ``url`` answers 200 now."""
    try:
        return requests.get(url, timeout=timeout).status_code == 200
    except requests.RequestException:
        return False


def tail(path: Path, lines: int = 60) -> str:
    """The last ``lines`` lines of a log (or why there are none)."""
    if not path.is_file():
        return f"({path} does not exist)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
