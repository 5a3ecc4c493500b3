"""Every model version traceable and rebuildable: lineage both ways and reproduction, on a
version the real pipeline (Airflow DAG runs) trained, registered and deployed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from retrainer import schema
from retrainer.registry import lineage
from retrainer.registry.client import Registry
from retrainer.registry.reproduce import DEFAULT_TOLERANCE, reproduce
from retrainer.schema import CHAMPION
from retrainer.settings import Settings

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]


def _git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True, check=True).stdout.strip()


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "retrainer", *args], capture_output=True, text=True, env=dict(os.environ), timeout=600
    )


def _registry_state(registry: Registry, model: str) -> tuple[list[str], dict[str, str]]:
    versions = sorted(v.version for v in registry.client.search_model_versions(f"name = '{model}'"))
    return versions, dict(registry.client.get_registered_model(model).aliases)


def test_lineage_and_reproduction(make_pipeline: Any, home: Path, bike_batches: dict[str, Path]) -> None:
    pipe = make_pipeline(2070)
    for period in ("2011-01", "2011-02", "2011-03"):
        assert pipe.ingest("bike_sharing", period, bike_batches[period]).state == "success"
    run = pipe.retrain("bike_sharing", "v0003")
    assert run.state == "success", run.states
    settings = Settings.from_env()
    registry = Registry(settings)
    spec = settings.load_spec("bike_sharing")
    assert registry.versions.alias(spec, CHAMPION) == "1"
    mlflow_run = registry.client.get_run(run.values["train"]["run_id"])

    # the training run recorded its code version, seed and spec
    head = _git("rev-parse", "HEAD")
    assert mlflow_run.data.tags["code.commit"] == head
    assert mlflow_run.data.tags["code.dirty"] in ("true", "false")
    assert mlflow_run.data.tags["training.seed"] == str(spec.training.seed)
    spec_artifacts = [a.path for a in registry.client.list_artifacts(mlflow_run.info.run_id, "spec")]
    assert spec_artifacts == ["spec/bike_sharing.yaml"]

    # lineage of the model version
    lin = lineage.model_lineage(settings, "bike_demand", "1")
    assert (lin.data.dataset, lin.data.version) == ("bike_sharing", "v0003")
    assert lin.data.rev == run.values["plan_training"]["data_rev"]
    assert lin.data.train_periods == ("2011-01", "2011-02") and lin.data.holdout_periods == ("2011-03",)
    assert lin.mlflow_run_id == mlflow_run.info.run_id
    assert (lin.airflow_dag_id, lin.airflow_run_id) == ("retrain_model", run.run_id)
    assert lin.code is not None and lin.code.commit == head
    assert lin.seed == str(spec.training.seed)
    assert lin.gx_success is True
    assert [Path(a).name for a in lin.validation_artifacts] == ["v0003.json"]
    assert lin.promotion["promotion.decision"] == "promoted"
    assert lin.deploy["deploy.location"].endswith("bike_demand/1")
    assert "deploy.label" in lin.deploy
    assert lin.evaluation_report and "/artifacts/evaluation/evaluation_report.html" in lin.evaluation_report
    assert CHAMPION in lin.aliases and lin.reproductions == ()
    assert lineage.model_lineage(settings, "bike_demand", "champion").version == "1"
    assert "bike_sharing v0003" in lin.render()

    # lineage of the data versions: v0003 made v1, v0002 made nothing
    data = lineage.data_lineage(settings, "bike_sharing", "v0003")
    assert [(v.model, v.version) for v in data.model_versions] == [("bike_demand", "1")]
    assert data.model_versions[0].mlflow_run_id == lin.mlflow_run_id and data.model_versions[0].rev_matches
    assert [r.run_id for r in data.runs] == [lin.mlflow_run_id] and data.runs[0].model_version == "1"
    assert data.periods == ("2011-01", "2011-02", "2011-03")
    assert lineage.data_lineage(settings, "bike_sharing", "v0002").model_versions == ()
    with pytest.raises(lineage.LineageNotFoundError, match=r"bike_demand.*'7'"):
        lineage.model_lineage(settings, "bike_demand", "7")

    # reproduce in this process: the same metric, no new version, no alias moved, its own run
    before = _registry_state(registry, "bike_demand")
    rep = reproduce(settings, "bike_demand", "1")
    assert rep.original == mlflow_run.data.metrics["holdout_rmse"]
    assert rep.within_tolerance, rep.render()
    assert rep.relative_difference is not None and rep.relative_difference <= DEFAULT_TOLERANCE
    assert rep.max_abs_prediction_diff is not None and rep.max_abs_prediction_diff < 1e-3
    assert (rep.data_version, rep.seed) == ("v0003", spec.training.seed)
    assert _registry_state(registry, "bike_demand") == before
    repro_run = registry.client.get_run(rep.reproduction_run_id)
    assert repro_run.data.tags[schema.REPRODUCES] == "bike_demand/1"
    assert repro_run.data.tags["reproduce.within_tolerance"] == "true"
    assert repro_run.info.experiment_id != mlflow_run.info.experiment_id
    assert repro_run.info.status == "FINISHED"
    assert [r.run_id for r in lineage.model_lineage(settings, "bike_demand", "1").reproductions] == [
        rep.reproduction_run_id
    ]

    # a version recorded at another (clean) commit is rebuilt from that commit's code, exported
    parent = _git("rev-parse", "HEAD~1")
    registry.client.set_tag(mlflow_run.info.run_id, "code.commit", parent)
    registry.client.set_tag(mlflow_run.info.run_id, "code.dirty", "false")
    old = reproduce(settings, "bike_demand", "1")
    assert old.code_where == "commit" and old.code_exact is True
    assert parent[:10] in old.render() and "exported" in old.rebuilt_code
    assert "retrainer-rebuild-" in old.rebuilt_code  # retrainer was imported from the export
    assert old.within_tolerance, old.render()
    assert _registry_state(registry, "bike_demand") == before
    assert len(lineage.reproductions_of(settings, "bike_demand", "1")) == 2  # each reproduction is its own run

    # the command line, with this test's environment
    shown = _cli("lineage", "model", "bike_demand", "1")
    assert shown.returncode == 0, shown.stderr
    assert "bike_sharing v0003" in shown.stdout and mlflow_run.info.run_id in shown.stdout
    assert run.run_id in shown.stdout
    by_data = _cli("lineage", "data", "bike_sharing", "v0003")
    assert by_data.returncode == 0, by_data.stderr
    assert "bike_demand v1" in by_data.stdout
    unknown = _cli("lineage", "model", "bike_demand", "42")
    assert unknown.returncode == 2 and "bike_demand" in unknown.stderr and "'42'" in unknown.stderr
    no_model = _cli("reproduce", "no_such_model", "1")
    assert no_model.returncode == 2 and "no_such_model" in no_model.stderr
    no_data = _cli("lineage", "data", "bike_sharing", "v0099")
    assert no_data.returncode == 2 and "v0099" in no_data.stderr
