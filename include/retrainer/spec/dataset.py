"""``DatasetSpec``: a whole dataset spec, read from its file, each section by its own reader."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from retrainer.periods import FREQUENCIES, Frequency, retrain_every
from retrainer.spec.columns import Feature, Target, read_features, read_target, read_time_format, read_unique_by
from retrainer.spec.consistency import CoverageConfig, Relation, read_coverage, read_relations
from retrainer.spec.fields import Fields, SpecError
from retrainer.spec.intake import IngestConfig, read_ingest, read_rows
from retrainer.spec.learning import DriftConfig, GateConfig, TrainingConfig, read_drift, read_gate, read_training
from retrainer.spec.rollout import ApprovalConfig, DeployConfig, read_approval, read_deploy
from retrainer.spec.yamlfile import DuplicateKeyError, YAMLError, load_yaml

log = logging.getLogger(__name__)

#: the keys a spec may have at the top level
TOP_LEVEL_KEYS = frozenset(
    {
        "name",
        "description",
        "model_name",
        "time_column",
        "time_format",
        "frequency",
        "target",
        "features",
        "unique_by",
        "rows",
        "training",
        "gate",
        "drift",
        "approval",
        "deploy",
        "ingest",
        "coverage",
        "relations",
    }
)


@dataclass(frozen=True)
class DatasetSpec:
    """What a dataset is: its time column, target, features and how to judge models on it."""

    name: str
    model_name: str
    time_column: str
    frequency: Frequency
    target: Target
    features: tuple[Feature, ...]
    min_rows: int
    max_rows: int | None
    training: TrainingConfig
    gate: GateConfig
    drift: DriftConfig = DriftConfig()
    approval: ApprovalConfig = ApprovalConfig()
    deploy: DeployConfig = DeployConfig()
    ingest: IngestConfig = IngestConfig()
    description: str = ""
    source_path: str = ""
    unique_by: tuple[str, ...] = ()  # the columns no two rows of a batch share; () = rows need not be unique
    time_format: str | None = None  # how deliveries spell a timestamp (strftime codes); None: ISO 8601
    training_every: str = ""  # training.every: hourly, daily, weekly, monthly ("": see retrain_every)
    coverage: CoverageConfig | None = None  # how much of its period a batch must cover; None: not judged
    relations: tuple[Relation, ...] = ()  # what the columns say about each other on every row

    @property
    def retrain_every(self) -> str:
        """How often scheduled runs retrain this dataset (``periods.retrain_every``)."""
        return retrain_every(self.frequency, self.training_every)

    @property
    def numeric_features(self) -> tuple[Feature, ...]:
        return tuple(f for f in self.features if f.type == "numeric")

    @property
    def categorical_features(self) -> tuple[Feature, ...]:
        return tuple(f for f in self.features if f.type == "categorical")

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features)

    @classmethod
    def load(cls, path: Path | str) -> DatasetSpec:
        path = Path(path)
        if not path.is_file():
            raise SpecError(path, "<file>", "spec file does not exist")
        try:
            raw = load_yaml(path.read_text())
        except DuplicateKeyError as exc:
            raise SpecError(
                path, exc.key, f"given twice (lines {exc.first_line} and {exc.line}): give it once"
            ) from exc
        except YAMLError as exc:
            raise SpecError(path, "<file>", f"not valid YAML: {exc}") from exc
        if not isinstance(raw, dict):
            raise SpecError(path, "<file>", "top level must be a mapping")
        return cls.from_dict(raw, path)

    @classmethod
    def from_dict(cls, raw: dict[str, Any], path: Path | str = "<spec>") -> DatasetSpec:
        f = Fields(raw, path)
        f.known("", raw, TOP_LEVEL_KEYS)
        name = f.string("name")
        target = read_target(f, f.mapping("target"))
        features = read_features(f, f.mapping("features"))
        time_column = f.string("time_column")
        _apart(f, raw["features"], time_column, target.column)
        rows = read_rows(f, f.mapping("rows", required=False))
        training_raw = f.mapping("training", required=False)
        training = read_training(f, training_raw)
        frequency, every = _cadence(f, raw, training_raw)
        columns = {time_column, target.column, *raw["features"]}
        ingest = read_ingest(f, f.mapping("ingest", required=False), columns)
        return cls(
            name=name,
            model_name=str(raw.get("model_name") or f"{name}_model"),
            time_column=time_column,
            frequency=frequency,  # type: ignore[arg-type]
            target=target,
            features=features,
            min_rows=rows[0],
            max_rows=rows[1],
            training=training,
            gate=read_gate(f, f.mapping("gate", required=False), target.task, features),
            drift=read_drift(f, f.mapping("drift", required=False), {feature.name for feature in features}),
            approval=read_approval(f, f.mapping("approval", required=False)),
            deploy=read_deploy(f, f.mapping("deploy", required=False)),
            ingest=ingest,
            description=str(raw.get("description", "")),
            source_path=str(path),
            unique_by=read_unique_by(f, raw.get("unique_by", [time_column]), {*columns, *ingest.other_columns}),
            time_format=read_time_format(f, raw.get("time_format")),
            training_every=every,
            coverage=read_coverage(f, f.mapping("coverage", required=False), frequency),
            relations=read_relations(f, raw.get("relations"), time_column, target, features, ingest.other_columns),
        )


def spec_errors(path: Path | str) -> list[SpecError]:
    """Every error of a spec file, not only the first: each section is read on its own (a
    section that needs another, as the gate needs the target and the features, is read once
    those read), and the file's name must be the spec's name (the landing folder, the DAGs'
    dataset choice and run ids go by it). Empty: the spec loads."""
    path = Path(path)
    errors: list[SpecError] = []
    try:
        spec = DatasetSpec.load(path)
    except SpecError as first:
        errors.append(first)
        if first.field == "<file>" or first.problem.startswith("given twice"):
            return errors
        raw = load_yaml(path.read_text())
        errors += _section_errors(raw, path, str(first))
    else:
        if spec.name != path.stem:
            errors.append(
                SpecError(
                    path,
                    "name",
                    f"'{spec.name}' is not the file's name '{path.stem}': the landing folder, the DAGs' dataset"
                    f" choice and run ids go by the file's name (rename the file {spec.name}.yaml, or name it"
                    f" {path.stem})",
                )
            )
    return errors


def _apart(f: Fields, features: dict[str, Any], time_column: str, target: str) -> None:
    if time_column in features or target in features:
        raise f.error("features", "must not contain the time column or the target")


def _section_errors(raw: dict[str, Any], path: Path, said: str) -> list[SpecError]:
    """The errors of each section read on its own, the one already said (``said``) left out."""
    f = Fields(raw, path)
    found: dict[str, SpecError] = {said: SpecError(path, "", "")}
    read: dict[str, Any] = {}

    def attempt(name: str, reader: Any) -> None:
        try:
            read[name] = reader()
        except SpecError as exc:
            found.setdefault(str(exc), exc)

    features_raw: dict[str, Any] = raw["features"] if isinstance(raw.get("features"), dict) else {}
    attempt("top", lambda: f.known("", raw, TOP_LEVEL_KEYS))
    attempt("name", lambda: f.string("name"))
    attempt("time_column", lambda: f.string("time_column"))
    attempt("target", lambda: read_target(f, f.mapping("target")))
    attempt("features", lambda: read_features(f, f.mapping("features")))
    if "target" in read and "time_column" in read:
        attempt("apart", lambda: _apart(f, features_raw, read["time_column"], read["target"].column))
    attempt("rows", lambda: read_rows(f, f.mapping("rows", required=False)))
    attempt("training", lambda: read_training(f, f.mapping("training", required=False)))
    attempt("cadence", lambda: _cadence(f, raw, f.mapping("training", required=False)))
    columns = {str(raw.get("time_column")), str((raw.get("target") or {}).get("column")), *features_raw}
    attempt("ingest", lambda: read_ingest(f, f.mapping("ingest", required=False), columns))
    if "target" in read and "features" in read:
        attempt("gate", lambda: read_gate(f, f.mapping("gate", required=False), read["target"].task, read["features"]))
    if "features" in read:
        names = {feature.name for feature in read["features"]}
        attempt("drift", lambda: read_drift(f, f.mapping("drift", required=False), names))
    attempt("approval", lambda: read_approval(f, f.mapping("approval", required=False)))
    attempt("deploy", lambda: read_deploy(f, f.mapping("deploy", required=False)))
    attempt("time_format", lambda: read_time_format(f, raw.get("time_format")))
    if "ingest" in read:
        known = {*columns, *read["ingest"].other_columns}
        attempt("unique_by", lambda: read_unique_by(f, raw.get("unique_by", [raw.get("time_column")]), known))
    if "cadence" in read:
        attempt("coverage", lambda: read_coverage(f, f.mapping("coverage", required=False), read["cadence"][0]))
    if {"time_column", "target", "features", "ingest"} <= set(read):
        args = (read["time_column"], read["target"], read["features"], read["ingest"].other_columns)
        attempt("relations", lambda: read_relations(f, raw.get("relations"), *args))
    return [exc for key, exc in found.items() if key != said]


def _cadence(f: Fields, raw: dict[str, Any], training_raw: dict[str, Any]) -> tuple[str, str]:
    """The data's ``frequency`` and how often it retrains (``training.every``; "" when not given):
    at most as often as the data arrives."""
    every = f.choice("training.every", training_raw.get("every"), FREQUENCIES) if "every" in training_raw else ""
    frequency = f.choice("frequency", raw.get("frequency", "monthly"), FREQUENCIES)
    if every and FREQUENCIES.index(every) < FREQUENCIES.index(frequency):
        raise f.error(
            "training.every",
            f"{every} retraining of {frequency} data would find no new period most times: at most as often as"
            f" the data arrives ({frequency})",
        )
    return frequency, every


def retraining_periods(folder: Path | str) -> dict[str, str]:
    """How often each spec in ``folder`` retrains on schedule (name -> ``retrain_every``). A
    spec that does not load is logged and left out: it holds up no other dataset, and fails
    with its reason where it is used."""
    out = {}
    for path in sorted(Path(folder).glob("*.yaml")):
        try:
            out[path.stem] = DatasetSpec.load(path).retrain_every
        except (SpecError, OSError) as exc:
            log.error("not retrained on schedule: %s", exc)
    return out
