"""A new team's way in, end to end through Airflow: a spec drafted from sample deliveries
(``python -m retrainer spec draft``), checked against them (``spec check --against``), and,
without a hand edit, the samples delivered, versioned, trained on, judged, promoted to champion,
deployed and checked through the model server. For each data set of the test suite, and for
scikit-learn's diabetes data, which no spec here was written for."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from retrainer import __main__ as cli
from retrainer.data.demo_data import load_bike_sharing, split_periods, write_batch
from retrainer.registry.client import Registry
from retrainer.schema import CHAMPION
from retrainer.settings import Settings
from retrainer.spec.dataset import DatasetSpec
from tests.datasets import churn_month, diabetes_weeks, flights_hour
from tests.helpers import logging_as_it_was

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

BIKE_SPEC = Path(__file__).resolve().parents[2] / "include" / "specs" / "bike_sharing.yaml"


def _bike(frequency: str, wanted: Callable[[str], bool], count: int) -> Callable[[Path], list[Path]]:
    def write(folder: Path) -> list[Path]:
        spec = replace(DatasetSpec.load(BIKE_SPEC), frequency=frequency)
        parts = split_periods(load_bike_sharing(), spec)
        chosen = [p for p in parts if wanted(p)][:count]
        return [write_batch(parts[p], spec, folder / f"{p}.csv") for p in chosen]

    return write


def _churn(folder: Path) -> list[Path]:
    rng, files = np.random.default_rng(0), []
    for period in ("2024-01", "2024-02", "2024-03"):
        frame = churn_month(period, rng)
        if period == "2024-02":  # this team's export writes Parquet
            files.append(folder / f"{period}.parquet")
            frame.to_parquet(files[-1])
        else:
            files.append(folder / f"{period}.csv")
            frame.to_csv(files[-1], index=False)
    return files


def _flights(folder: Path) -> list[Path]:
    rng, files = np.random.default_rng(7), []
    for i, hour in enumerate(f"2024-03-05T{h:02d}" for h in range(8, 16)):
        frame = flights_hour(hour, rng)
        shifted = frame["scheduled_at"] + pd.Timedelta(hours=i % 2)  # one producer writes +01:00, one Z
        frame["scheduled_at"] = shifted.dt.strftime("%Y-%m-%dT%H:%M:%S") + ("+01:00" if i % 2 else "Z")
        files.append(folder / f"{hour}.csv")
        frame.to_csv(files[-1], index=False)
    return files


def _diabetes(folder: Path) -> list[Path]:
    files = []
    for week, frame in diabetes_weeks().items():
        files.append(folder / f"{week}.csv")
        frame.to_csv(files[-1], index=False)
    return files


CASES: dict[str, tuple[Callable[[Path], list[Path]], str, str, int]] = {
    # name: (samples, time column, target, the year the runs are dated in)
    "rides": (_bike("monthly", lambda p: p.startswith("2011"), 4), "timestamp", "cnt", 2090),
    "rides_daily": (_bike("daily", lambda p: p.startswith("2011-06-"), 9), "timestamp", "cnt", 2091),
    "churn": (_churn, "ts", "churned", 2092),
    "flights": (_flights, "scheduled_at", "delay", 2093),
    "diabetes": (_diabetes, "visited_at", "progression", 2094),
}


@pytest.mark.parametrize("name", list(CASES))
def test_a_drafted_spec_runs_end_to_end_without_a_hand_edit(
    name: str, make_pipeline: Any, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    samples, time_column, target, year = CASES[name]
    monkeypatch.setenv("RETRAINER_SPECS_DIR", str(home / "specs"))
    folder = home / "samples" / name
    folder.mkdir(parents=True)
    files = samples(folder)
    draft = ["spec", "draft", *map(str, files), "--time", time_column, "--target", target, "--name", name]
    # (no capsys here: DVC binds its log handler to the stream it first sees, for the session)
    with logging_as_it_was():
        assert cli.main(draft) == cli.EXIT_OK
        assert cli.main(["spec", "check", name, "--against", *map(str, files)]) == cli.EXIT_OK
    spec = Settings.from_env().load_spec(name)

    pipe = make_pipeline(year)
    from retrainer_dev.runner import load_dags

    pipe.dags = load_dags()
    assert pipe.dags["retrain_model"].params.get_param("dataset").value == name  # the folder's only spec
    landing = home / "landing" / name
    landing.mkdir(parents=True)
    for path in files:
        delivered = shutil.copy(path, landing / path.name)
        run = pipe.ingest(name, path.name.split(".")[0], Path(delivered))
        assert run.state == "success", (path.name, run.states, run.values.get("validate_batch"))

    run = pipe.retrain(name, "latest")
    assert run.state == "success", run.states
    evaluated = run.values["evaluate"]
    print(name, {k: evaluated[k] for k in ("metric", "candidate", "baseline", "n_holdout")})
    assert evaluated["passed"], evaluated["reasons"]
    assert run.values["promote"]["promoted"]
    assert run.values["verify"]["check"]["max_abs_diff"] < 1e-3
    champion = Registry(Settings.from_env()).client.get_model_version_by_alias(spec.model_name, CHAMPION)
    assert str(champion.version) == "1"
    assert (home / "model-store" / spec.model_name / "1" / "saved_model.pb").is_file()
