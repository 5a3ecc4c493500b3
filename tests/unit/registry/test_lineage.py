"""Where a model version came from (its code, data, validation, run and decisions) and what
was built from a data version: the code version of a checkout, and the lineage read back from
the registry. (``python -m retrainer lineage`` end to end: tests/integration/test_reproduce.py.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from retrainer import schema
from retrainer.records import RunContext
from retrainer.registry.client import Registry
from retrainer.registry.lineage import (
    CodeVersion,
    LineageNotFoundError,
    code_version,
    data_lineage,
    find_model_version,
    model_lineage,
)
from retrainer.settings import Settings
from retrainer.spec.dataset import DatasetSpec
from tests.helpers import log_model_entry


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


def test_a_code_version_reads_back_from_its_tags() -> None:
    assert CodeVersion.from_tags({}) is None  # not recorded
    dirty = CodeVersion("a" * 40, True, changes="f1")
    assert CodeVersion.from_tags(dirty.tags()) == dirty and dirty.tags()[schema.CODE_CHANGES] == "f1"
    assert "uncommitted" in dirty.describe() and dirty.short == "a" * 10


def _version(registry: Registry, spec: DatasetSpec, run: str, tags: dict[str, str]) -> str:
    run_tags = {schema.DATASET: spec.name, **CodeVersion("c" * 40, False).tags(), schema.TRAINING_SEED: "42"}
    run_id, uri = log_model_entry(registry, spec, RunContext("retrain_model", run), run_tags)
    return registry.versions.register(spec, run_id, uri, tags)[0]


def test_the_lineage_of_a_version_is_what_was_recorded_with_it(settings: Settings, bike_spec: DatasetSpec) -> None:
    registry = Registry(settings)
    tags = {
        schema.DATA_VERSION: "v0003",
        schema.DATA_REV: "0123456789abcdef",
        schema.DATA_TRAIN_PERIODS: "2011-04,2011-05",
        schema.DATA_HOLDOUT_PERIODS: "2011-06",
        schema.GX_SUCCESS: "true",
        schema.GATE_PASSED: "true",
        schema.PROMOTION_DECISION: schema.PROMOTED,
        **schema.context_tags(RunContext("retrain_model", "manual__1")),
    }
    version = _version(registry, bike_spec, "manual__1", tags)
    registry.versions.promote(bike_spec, version, None)
    found = model_lineage(settings, "bike_demand", "champion")
    assert (found.model, found.version, found.aliases) == ("bike_demand", version, ("champion",))
    assert (found.data.dataset, found.data.version, found.data.rev) == ("bike_sharing", "v0003", "0123456789abcdef")
    assert (found.data.train_periods, found.data.holdout_periods) == (("2011-04", "2011-05"), ("2011-06",))
    assert found.gx_success is True and found.seed == "42" and found.code == CodeVersion("c" * 40, False)
    assert (found.airflow_dag_id, found.airflow_run_id) == ("retrain_model", "manual__1")
    assert found.gate == {schema.GATE_PASSED: "true"} and found.reproductions == ()
    assert found.promotion[schema.PROMOTION_DECISION] == schema.PROMOTED
    assert model_lineage(settings, "bike_demand", f"v{version}") == found
    text = found.render()
    assert text.startswith(f"bike_demand v{version}  [champion]") and "data           bike_sharing v0003" in text
    assert "reproductions  none" in text
    assert json.loads(json.dumps(found.to_dict(), default=str))["data"]["version"] == "v0003"


def test_an_unknown_model_or_version_is_named_with_what_there_is(settings: Settings, bike_spec: DatasetSpec) -> None:
    with pytest.raises(LineageNotFoundError, match="model 'bike_demand' is not in the MLflow registry at sqlite"):
        find_model_version(settings, "bike_demand", "1")
    registry = Registry(settings)
    for run in ("manual__1", "manual__2"):
        _version(registry, bike_spec, run, {})
    with pytest.raises(LineageNotFoundError, match=r"model 'bike_demand' has no version 'v7' \(versions: 1, 2\)"):
        find_model_version(settings, "bike_demand", "v7")
    with pytest.raises(LineageNotFoundError, match="has no version 'champion'"):
        find_model_version(settings, "bike_demand", "champion")  # no such alias yet


def test_the_lineage_of_a_data_version_needs_its_dataset(settings: Settings, tmp_path: Path) -> None:
    with pytest.raises(LineageNotFoundError, match="dataset 'weather' has no spec"):
        data_lineage(settings, "weather", "v0001")
