"""The command line, ``python -m retrainer``: its arguments, and the exit status and message each
outcome gives (0 done, 1 failed or not reproduced, 2 not found or bad arguments). A version
rebuilt through it end to end: tests/integration/test_reproduce.py; reviewers on a server with
logins: tests/integration/test_mlflow_server.py."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from retrainer import __main__ as cli
from retrainer import schema
from retrainer.records import RunContext
from retrainer.registry.client import Registry
from retrainer.settings import Settings
from retrainer.spec.dataset import DatasetSpec
from tests.helpers import REPO, log_model_entry, logging_as_it_was

REPO_SPEC = REPO / "include" / "specs" / "bike_sharing.yaml"


@pytest.fixture(autouse=True)
def logging_kept() -> Iterator[None]:
    """``main`` configures logging for a terminal; each test leaves it as it found it."""
    with logging_as_it_was():
        yield


@pytest.mark.parametrize(
    "argv",
    [[], ["lineage"], ["lineage", "model", "bike_demand"], ["reproduce", "m", "1", "--code", "elsewhere"], ["rebuild"]],
)
def test_bad_arguments_exit_2_with_the_usage(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(argv)
    assert exit_.value.code == cli.EXIT_NOT_FOUND == 2
    assert "usage: python -m retrainer" in capsys.readouterr().err


def test_an_unknown_model_exits_2_naming_it(settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["lineage", "model", "nope", "1"], ["reproduce", "nope", "champion"]):
        assert cli.main(argv) == cli.EXIT_NOT_FOUND
        assert capsys.readouterr().err.startswith("retrainer: model 'nope' is not in the MLflow registry at ")


def test_an_unknown_dataset_or_data_version_exits_2(settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["lineage", "data", "weather", "v0001"]) == cli.EXIT_NOT_FOUND
    assert "retrainer: dataset 'weather' has no spec" in capsys.readouterr().err
    assert cli.main(["lineage", "data", "bike_sharing", "v0001"]) == cli.EXIT_NOT_FOUND  # nothing versioned yet
    assert (
        capsys.readouterr().err == "retrainer: data version 'v0001' of 'bike_sharing' does not exist (latest: none)\n"
    )


def test_a_version_that_cannot_be_rebuilt_exits_1(
    settings: Settings, bike_spec: DatasetSpec, capsys: pytest.CaptureFixture[str]
) -> None:
    registry = Registry(settings)
    run_id, uri = log_model_entry(registry, bike_spec, RunContext("retrain_model", "manual__1"))
    registry.versions.register(bike_spec, run_id, uri, {})
    capsys.readouterr()
    assert cli.main(["reproduce", "bike_demand", "v1"]) == cli.EXIT_FAILED
    assert capsys.readouterr().err == f"retrainer: MLflow run {run_id} of bike_demand v1 does not say its dataset\n"


def test_the_lineage_of_a_version_prints_as_text_or_json(
    settings: Settings, bike_spec: DatasetSpec, capsys: pytest.CaptureFixture[str]
) -> None:
    registry = Registry(settings)
    run_id, uri = log_model_entry(registry, bike_spec, RunContext("retrain_model", "manual__1"))
    registry.versions.register(bike_spec, run_id, uri, {schema.DATA_VERSION: "v0004"})
    assert cli.main(["lineage", "model", "bike_demand", "1"]) == cli.EXIT_OK
    assert capsys.readouterr().out.startswith("bike_demand v1\n")
    assert cli.main(["-v", "lineage", "model", "bike_demand", "v1", "--json"]) == cli.EXIT_OK
    printed = json.loads(capsys.readouterr().out)
    assert (printed["model"], printed["version"], printed["data"]["version"]) == ("bike_demand", "1", "v0004")
    assert logging.getLogger("retrainer").level == logging.INFO  # -v: progress on stderr


def test_reviewers_are_managed_on_an_mlflow_server_only(settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["reviewers", "add", "rita", "bike_demand"]) == cli.EXIT_FAILED  # the store is a SQLite file
    assert "retrainer: reviewers live on an MLflow server: set MLFLOW_TRACKING_URI" in capsys.readouterr().err


def _bike_months(folder: Path, months: dict[str, pd.DataFrame], spec: DatasetSpec) -> list[str]:
    from retrainer.data.demo_data import write_batch

    return [str(write_batch(months[p], spec, folder / f"{p}.csv")) for p in ("2011-01", "2011-02", "2011-03")]


def test_a_spec_is_drafted_from_samples_and_checked_against_them(
    home: Path,
    bike_months: dict[str, pd.DataFrame],
    bike_spec: DatasetSpec,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """draft writes <specs>/<name>.yaml, prints it and checks it against the samples; check reports
    a spec's every error, and with --against what ingest would do with each file."""
    monkeypatch.setenv("RETRAINER_SPECS_DIR", str(home / "specs"))
    files = _bike_months(home / "samples", bike_months, bike_spec)
    argv = ["spec", "draft", *files, "--time", "timestamp", "--target", "cnt", "--name", "bikes"]
    assert cli.main(argv) == cli.EXIT_OK
    out = capsys.readouterr().out
    assert f"drafted {home / 'specs' / 'bikes.yaml'}:" in out and "frequency: monthly" in out
    assert "3 batch(es): 3 would be versioned, 0 quarantined" in out
    assert cli.main(argv) == cli.EXIT_NOT_FOUND  # it would replace the draft: --force does
    assert "exists: give another -o, or --force to replace it" in capsys.readouterr().err

    from retrainer.data.demo_data import write_batch

    march = bike_months["2011-03"].assign(hum=bike_months["2011-03"]["hum"] / 100)
    fixed = write_batch(march, bike_spec, home / "samples" / "march-fixed.csv")  # its rows say its period
    assert cli.main(["spec", "check", "bikes", "--against", *files[:2], str(fixed)]) == cli.EXIT_FAILED
    out = capsys.readouterr().out
    assert "march-fixed.csv (2011-03, 730 rows): would be QUARANTINED:" in out
    assert "- column 'hum': its values spread" in out and "1 quarantined" in out

    spec_file = home / "specs" / "bikes.yaml"
    spec_file.write_text(
        spec_file.read_text()
        .replace("metric: rmse", "metric: auc")
        .replace("frequency: monthly", "frequency: fortnightly")
    )
    assert cli.main(["spec", "check"]) == cli.EXIT_FAILED  # every spec of the folder
    out = capsys.readouterr().out
    assert f"{spec_file}: 2 error(s)" in out
    assert "  - field 'gate.metric': 'auc' is not one of ['mae', 'rmse'] for regression" in out
    assert "  - field 'frequency': " in out


def test_spec_check_says_what_it_cannot_find(
    home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RETRAINER_SPECS_DIR", str(home / "empty"))
    assert cli.main(["spec", "check"]) == cli.EXIT_NOT_FOUND
    assert f"no spec files in {home / 'empty'}" in capsys.readouterr().err
    assert cli.main(["spec", "check", "bike_sharing", str(REPO_SPEC), "--against", "x.csv"]) == cli.EXIT_NOT_FOUND
    assert "--against checks files with one spec: name it" in capsys.readouterr().err
    argv = ["spec", "draft", "missing.csv", "--time", "t", "--target", "y", "--name", "x"]
    assert cli.main(argv) == cli.EXIT_NOT_FOUND
    assert "retrainer: missing.csv: no such file" in capsys.readouterr().err
