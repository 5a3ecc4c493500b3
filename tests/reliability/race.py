"""One contender of a race, run as its own process by tests/reliability/test_races.py.

    python -m tests.reliability.race promote <tracking_uri> <index> <rounds> <t0> <period>
    python -m tests.reliability.race register <tracking_uri> <run_id> <model_uri> <rounds> <t0> <period>
    python -m tests.reliability.race labels <store> <label> <writes>

Each prints one JSON line per attempt. Round r starts at t0 + r * period (wall clock), so all
contenders of a round call at the same moment.
"""

from __future__ import annotations

import json
import sys
import time
from types import SimpleNamespace
from typing import Any


def _registry(uri: str) -> Any:
    from retrainer.registry.client import Registry
    from retrainer.settings import Settings

    return Registry(Settings.from_env({"MLFLOW_TRACKING_URI": uri}))


def _at(t: float) -> None:
    time.sleep(max(0.0, t - time.time()))


def promote(uri: str, index: int, rounds: int, t0: float, period: float) -> None:
    from retrainer.registry.versions import ChampionMovedError

    registry = _registry(uri)
    for r in range(rounds):
        spec = SimpleNamespace(model_name=f"race-{r}")
        _at(t0 + r * period)
        try:
            registry.versions.promote(spec, str(index + 2), expected_champion="1")
            out = {"round": r, "won": True}
        except ChampionMovedError as exc:
            out = {"round": r, "won": False, "told": str(exc)[:80]}
        except Exception as exc:
            out = {"round": r, "won": False, "error": f"{type(exc).__name__}: {exc}"[:200]}
        print(json.dumps(out), flush=True)


def register(uri: str, run_id: str, model_uri: str, rounds: int, t0: float, period: float) -> None:
    registry = _registry(uri)
    for r in range(rounds):
        spec = SimpleNamespace(model_name=f"reg-{r}")
        _at(t0 + r * period)
        try:
            version, created = registry.versions.register(spec, run_id, model_uri, {})
            out = {"round": r, "version": version, "created": created}
        except Exception as exc:
            out = {"round": r, "error": f"{type(exc).__name__}: {exc}"[:200]}
        print(json.dumps(out), flush=True)


def labels(store: str, label: str, writes: int) -> None:
    from retrainer.serving import modelstore

    lost = 0
    for i in range(writes):
        version = 1 + i % 2
        modelstore.set_label(store, "race", label, version)
        if modelstore.read_config(store)["race"].labels.get(label) != version:
            lost += 1
        modelstore.clear_label(store, "race", label)
        if label in modelstore.read_config(store)["race"].labels:
            lost += 1
    print(json.dumps({"writes": 2 * writes, "lost": lost}), flush=True)


if __name__ == "__main__":
    mode, *args = sys.argv[1:]
    if mode == "promote":
        promote(args[0], int(args[1]), int(args[2]), float(args[3]), float(args[4]))
    elif mode == "register":
        register(args[0], args[1], args[2], int(args[3]), float(args[4]), float(args[5]))
    else:
        labels(args[0], args[1], int(args[2]))
