"""The command line, ``python -m retrainer``: its arguments, and the exit status and message each
outcome gives (0 done, 1 failed or not reproduced, 2 not found or bad arguments). A version
rebuilt through it end to end: tests/integration/test_reproduce.py; reviewers on a server with
logins: tests/integration/test_mlflow_server.py."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

from retrainer import __main__ as cli
from retrainer import schema
from retrainer.records import RunContext
from retrainer.registry.client import Registry
from retrainer.settings import Settings
from retrainer.spec.dataset import DatasetSpec
from tests.helpers import log_model_entry


@pytest.fixture(autouse=True)
def logging_as_it_was() -> Iterator[None]:
    """``main`` configures logging for a terminal; each test leaves it as it found it."""
    root, ours = logging.getLogger(), logging.getLogger("retrainer")
    handlers, level, our_level = list(root.handlers), root.level, ours.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    ours.setLevel(our_level)


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
