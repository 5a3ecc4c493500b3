"""The MLflow schema is one interface with one home: every name is a constant of
``retrainer.schema``, documented in ``docs/mlflow-tags.md``, and spelled nowhere else."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

from retrainer import schema
from retrainer.records import Evaluation, RunContext, SliceRow

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "mlflow-tags.md"

#: spec.py names the spec's fields by path (``gate.metric``), which some tags share
#: where dotted names are spec fields (``gate.metric``) or the schema itself, not tags spelled twice
NOT_TAGS = {"schema.py"}
NOT_TAG_FOLDERS = {"spec"}


def _documented() -> set[str]:
    names: set[str] = set()
    for line in DOC.read_text().splitlines():
        if line.startswith("| `"):
            names.update(re.findall(r"`([^`]+)`", line.split(" | ")[0]))
    return names


def test_the_page_documents_exactly_the_schema() -> None:
    documented, defined = _documented(), schema.names()
    assert defined - documented == set(), "names without a row in docs/mlflow-tags.md"
    assert documented - defined == set(), "rows in docs/mlflow-tags.md without a constant in schema.py"


def _literals(path: Path, names: set[str]) -> list[tuple[int, str]]:
    """String literals in ``path`` that spell a name of the schema (a dotted tag name)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in names:
            found.append((node.lineno, node.value))
    return found


def test_no_tag_name_is_spelled_outside_the_schema() -> None:
    dotted = {name for name in schema.names() if ("." in name or "/" in name) and "<" not in name}
    places = [
        f"{path.relative_to(REPO)}:{line} {value!r}"
        for root in ("include", "plugins", "tools")
        for path in sorted((REPO / root).rglob("*.py"))
        if path.name not in NOT_TAGS and not NOT_TAG_FOLDERS & set(path.relative_to(REPO).parts)
        for line, value in _literals(path, dotted)
    ]
    assert places == []


def test_the_gate_evidence_on_a_version() -> None:
    ev = Evaluation(
        passed=False,
        metric="rmse",
        candidate=70.0,
        baseline=150.0,
        champion=60.0,
        champion_version="4",
        reasons=["does not beat champion v4"],
        slices=[SliceRow("season", "fall", 300, 70.0, 60.0, 0.1667, True, True)],
        delta_vs_champion=10.0,
        candidate_metrics={"rmse": 70.0},
        baseline_metrics={"rmse": 150.0},
        champion_metrics={"rmse": 60.0},
        n_holdout=744,
        report_uri="s3://m/1/evaluation/evaluation_report.html",
    )
    assert schema.gate_tags(ev) == {
        "gate.passed": "false",
        "gate.metric": "rmse",
        "gate.champion_version": "4",
        "gate.reasons": "does not beat champion v4",
        "gate.rmse": "70",
        "gate.baseline_rmse": "150",
        "gate.delta_rmse_vs_champion": "+10",
        "gate.slices_failed": "season=fall",
        "evaluation.report": "s3://m/1/evaluation/evaluation_report.html",
    }
    assert schema.context_tags(RunContext("retrain_model", "r1", 2, "drift: x", "manual")) == {
        "airflow.dag_id": "retrain_model",
        "airflow.run_id": "r1",
        "airflow.try_number": "2",
        "airflow.run_type": "manual",
        "retrainer.trigger": "drift: x",
    }


def test_read_back_what_a_version_recorded() -> None:
    data = schema.read_data(
        {
            "data.version": "v0003",
            "data.rev": "abc",
            "data.train_periods": "2011-01,2011-02",
            "data.holdout_periods": "2011-03",
        }
    )
    assert (data.version, data.rev, data.train_periods, data.holdout_periods) == (
        "v0003",
        "abc",
        ["2011-01", "2011-02"],
        ["2011-03"],
    )
    older = schema.read_data(
        {}, {"data_version": "v0001", "data_rev": "r", "train_periods": "a", "holdout_periods": "b"}
    )
    assert older.version == "v0001" and older.holdout_periods == ["b"]
    assert schema.read_previous_champion({"promotion.previous_champion": "none"}) is None
    assert schema.read_previous_champion({"promotion.previous_champion": "3"}) == "3"


def test_filters_quote_what_they_compare() -> None:
    assert schema.tag_filter({"data.version": "v1"}, name="m") == "name = 'm' and tags.`data.version` = 'v1'"
    assert schema.tag_filter({"airflow.run_id": "it's\\x"}) == "tags.`airflow.run_id` = 'it\\'s\\\\x'"


def test_run_names_tell_runs_apart_what_first() -> None:
    """The MLflow UI cuts long names: what the run did comes first, then the run type and the
    Airflow run."""
    ctx = RunContext("monitor_drift", "manual__2026-12-04T21:16:40+00:00", run_type="manual")
    assert schema.run_name(ctx, "drift check bike_sharing v0004") == (
        "drift check bike_sharing v0004 · manual · monitor_drift:manual__2026-12-04T21:16:40+00:00"
    )
    assert schema.run_name(ctx) == "monitor_drift:manual__2026-12-04T21:16:40+00:00"


def test_experiments_are_created_as_training_experiments(settings: Any) -> None:
    """Not GenAI ones: the MLflow UI reads the kind to choose its view."""
    from retrainer.registry.client import Registry

    registry = Registry(settings)
    experiment_id = registry.runs.experiment_id_named("kind_check")
    assert registry.runs.experiment_id_named("kind_check") == experiment_id  # found, not made twice
    tags = registry.client.get_experiment(experiment_id).tags
    assert tags[schema.EXPERIMENT_KIND] == schema.EXPERIMENT_KIND_ML == "custom_model_development"
