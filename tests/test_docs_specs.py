"""docs/specs.md documents exactly the fields the spec parser knows, and its examples (and the README's) load."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

import yaml

from retrainer import periods
from retrainer.spec import columns, consistency, dataset, intake, learning, rollout
from retrainer.spec.dataset import DatasetSpec

PAGE = Path(__file__).resolve().parents[1] / "docs" / "specs.md"
SECTIONS = {
    "training": learning.TrainingConfig,
    "gate": learning.GateConfig,
    "drift": learning.DriftConfig,
    "approval": rollout.ApprovalConfig,
    "deploy": rollout.DeployConfig,
    "ingest": intake.IngestConfig,
    "coverage": consistency.CoverageConfig,
}


def _known() -> set[str]:
    names = set(dataset.TOP_LEVEL_KEYS)
    names |= {f"target.{k}" for k in columns.TARGET_KEYS}
    names |= {f"features.<column>.{k}" for k in columns.FEATURE_KEYS}
    names |= {f"rows.{k}" for k in intake.ROWS_KEYS}
    names |= {f"training.{k}" for k in learning.TRAINING_SCHEDULE_KEYS}
    names |= {f"{section}.{f.name}" for section, cls in SECTIONS.items() for f in fields(cls) if not f.metadata}
    return names


def _documented() -> set[str]:
    out: set[str] = set()
    for line in PAGE.read_text().splitlines():
        if line.startswith("| `"):
            out |= set(re.findall(r"`([^`]+)`", line.split("|")[1]))
    return out


def test_every_field_has_a_row_and_every_row_a_field() -> None:
    known, documented = _known(), _documented()
    assert known - documented == set(), "fields of the spec without a row in docs/specs.md"
    assert documented - known == set(), "rows in docs/specs.md that the spec parser does not know"


def test_the_examples_load_and_cover_every_task_and_frequency(tmp_path: Path) -> None:
    blocks = re.findall(r"```yaml\n(.*?)```", PAGE.read_text(), flags=re.S)
    examples = [DatasetSpec.from_dict(yaml.safe_load(b), "docs/specs.md") for b in blocks]
    bike = DatasetSpec.load(Path(__file__).resolve().parents[1] / "include" / "specs" / "bike_sharing.yaml")
    assert {s.target.task for s in examples} == set(columns.TASKS)
    assert {s.frequency for s in [*examples, bike]} == set(periods.FREQUENCIES)
    spec = examples[0]
    assert spec.unique_by == ("ts", "customer") and spec.time_format == "%d/%m/%Y %H:%M"
    assert spec.ingest.encoding == "cp1252" and spec.target.max_null_rate == 0.05
    spend = next(f for f in spec.features if f.name == "spend")
    assert (spend.impute, spend.max_null_rate) == ("median", 0.05)


def test_the_readme_example_loads() -> None:
    readme = PAGE.parents[1] / "README.md"
    blocks = re.findall(r"```yaml\n(.*?)```", readme.read_text(), flags=re.S)
    assert blocks, "the README shows a spec of its own dataset"
    for block in blocks:
        DatasetSpec.from_dict(yaml.safe_load(block), "README.md")
