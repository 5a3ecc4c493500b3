"""What the tasks hand each other: small typed records, one module.

Every value that crosses a task boundary (an Airflow XCom, a DAG run's conf, an asset
event's extra) is one of these frozen dataclasses. They hold references (paths, ids,
versions) and numbers, never data frames.

On the wire they are strict JSON (``Record.to_json``): objects, arrays, strings, finite
numbers, booleans and null. A value JSON cannot hold is written as ``null`` and the reason
goes under the key ``unrepresentable`` (``{"slices[2].candidate": "nan is not a JSON
number"}``), so an XCom push never fails on a NaN and the reader sees why a value is
missing. ``Record.from_json`` reads a record back and checks its shape, naming the field
that is wrong; a ``null`` where the type is ``float`` reads back as NaN.

This module imports nothing heavy: DAG files and the Airflow adapters import it at parse time.
"""

from __future__ import annotations

import math
import types
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields
from datetime import date, datetime
from functools import cache
from pathlib import PurePath
from typing import Any, Literal, Self, Union, cast, get_args, get_origin, get_type_hints

from retrainer.outcomes import Refused

#: the key under which ``to_json`` says which values JSON could not hold, and why
UNREPRESENTABLE = "unrepresentable"


class ContractError(Refused, ValueError):
    """A record read back (from XCom, a conf, an asset event) does not have its type's shape."""


# =============================================================================== encoding


def _encode(value: Any, path: str, problems: dict[str, str]) -> Any:
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        problems[path] = f"{value} is not a JSON number"
        return None
    if isinstance(value, Record):
        return {key: _encode(item, f"{path}.{key}", problems) for key, item in value._items()}
    if isinstance(value, Mapping):
        return {str(k): _encode(v, f"{path}.{k}", problems) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_encode(v, f"{path}[{i}]", problems) for i, v in enumerate(value)]
    if hasattr(value, "item") and callable(value.item):  # a numpy scalar
        return _encode(value.item(), path, problems)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, PurePath):
        return str(value)
    problems[path] = f"{type(value).__name__} is not JSON; shown as text"
    return str(value)


def to_strict_json(value: Any) -> tuple[Any, dict[str, str]]:
    """``value`` as strict JSON, and what could not be represented (path -> reason)."""
    problems: dict[str, str] = {}
    return _encode(value, "$", problems), problems


# =============================================================================== decoding


@cache
def _hints(cls: type) -> dict[str, Any]:
    return get_type_hints(cls)


def _decode_union(args: tuple[Any, ...], value: Any, where: str) -> Any:
    if value is None and type(None) in args:
        return None
    errors = []
    for arg in (a for a in args if a is not type(None)):
        try:
            return _decode(arg, value, where)
        except ContractError as exc:
            errors.append(str(exc))
    raise ContractError("; ".join(errors) or f"{where}: unexpected {value!r}")


def _decode_scalar(tp: type, value: Any, where: str) -> Any:
    if tp is float:
        if value is None:
            return math.nan  # written as null because it was not finite
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif isinstance(value, tp):
        return value
    raise ContractError(f"{where}: expected {tp.__name__}, got {type(value).__name__} {value!r:.80}")


def _decode(tp: Any, value: Any, where: str) -> Any:
    origin, args = get_origin(tp), get_args(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        return _decode_union(args, value, where)
    if origin is Literal:
        if value not in args:
            raise ContractError(f"{where}: expected one of {list(args)}, got {value!r}")
        return value
    if isinstance(tp, type) and issubclass(tp, Record):
        return tp.from_json(value, where)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ContractError(f"{where}: expected a list, got {type(value).__name__}")
        items = [_decode(args[0] if args else Any, v, f"{where}[{i}]") for i, v in enumerate(value)]
        return items if origin is list else tuple(items)
    if origin is dict:
        if not isinstance(value, Mapping):
            raise ContractError(f"{where}: expected an object, got {type(value).__name__}")
        return {str(k): _decode(args[1] if args else Any, v, f"{where}.{k}") for k, v in value.items()}
    return _decode_scalar(tp, value, where)


def decode(tp: Any, value: Any, where: str) -> Any:
    """``value`` (strict JSON) read back as type ``tp``: a record, a list or dict of them, an
    optional, or a plain value; a wrong shape raises ``ContractError`` naming the field."""
    return _decode(tp, value, where)


# =============================================================================== records


class Record:
    """Base of the records: strict JSON out (``to_json``), checked JSON in (``from_json``).

    A field's JSON key is its name unless its metadata says ``key`` (for names Python
    cannot use, such as ``from``)."""

    def _items(self) -> list[tuple[str, Any]]:
        return [(f.metadata.get("key", f.name), getattr(self, f.name)) for f in fields(self)]  # type: ignore[arg-type]

    def to_json(self) -> dict[str, Any]:
        problems: dict[str, str] = {}
        out = {key: _encode(value, key, problems) for key, value in self._items()}
        if problems:
            out[UNREPRESENTABLE] = problems
        return out

    @classmethod
    def from_json(cls, data: Any, where: str | None = None) -> Self:
        where = where or cls.__name__
        if isinstance(data, cls):
            return data
        if not isinstance(data, Mapping):
            raise ContractError(f"{where}: expected a JSON object, got {type(data).__name__} {data!r:.80}")
        hints = _hints(cast(type, cls))
        kwargs: dict[str, Any] = {}
        for f in fields(cls):  # type: ignore[arg-type]
            key = f.metadata.get("key", f.name)
            if key in data:
                kwargs[f.name] = _decode(hints[f.name], data[key], f"{where}.{key}")
            elif f.default is MISSING and f.default_factory is MISSING:
                raise ContractError(f"{where}: field '{key}' is missing (the object has {sorted(data)})")
        return cls(**kwargs)


@dataclass(frozen=True)
class RunContext(Record):
    """Who asks: the orchestrator's run, recorded on every MLflow run and model version."""

    dag_id: str
    run_id: str
    try_number: int = 1
    trigger: str = "manual"  # why the run started: a Param reason, "new data version", "scheduled", ...
    run_type: str = "manual"  # manual | scheduled | backfill | asset_triggered


# ------------------------------------------------------------------------------ ingest


@dataclass(frozen=True)
class IngestConf(Record):
    """The conf an ``ingest_batch`` run works on (its Params): a batch of a dataset and period."""

    dataset: str
    period: str
    batch: str | None = None  # the file or s3:// URI under the landing location; None: <landing>/<dataset>/<period>.csv


@dataclass(frozen=True)
class BatchValidation(Record):
    """validate_batch -> route, quarantine_batch, version_batch: a landed batch, validated."""

    dataset: str
    period: str
    batch: str  # the batch file as it landed
    md5: str  # its content hash: what was validated is what gets versioned
    success: bool
    n_rows: int
    evaluated: int  # expectations evaluated
    failures: list[str]  # each failed expectation in words: what was wrong and where
    summary: str
    result_path: str  # the full GX result, kept on disk
    notes: list[str] = field(default_factory=list)  # passed, but worth a look (unseen categories within limits)
    kept_bytes: bool = True  # False: refused for its size (ingest.max_file_mb), quarantined as a record, not a copy


@dataclass(frozen=True)
class QuarantinedBatch(Record):
    """quarantine_batch: where a failed batch and its validation result were put."""

    dataset: str
    period: str
    batch: str
    md5: str
    location: str
    failures: list[str]


@dataclass(frozen=True)
class VersionedBatch(Record):
    """version_batch -> publish: the data version an accepted batch became."""

    dataset: str
    period: str
    data_version: str  # "v0007"
    data_tag: str  # "bike_sharing/v0007", the data registry's git tag
    data_rev: str  # the data registry's commit
    created: bool  # False: these bytes were versioned before (a retry or a rerun)
    pushed_bytes: int
    n_periods: int


@dataclass(frozen=True)
class AnnouncedVersion(Record):
    """publish: a new data version on the asset ``retrainer_data_versions`` (the event's extra)."""

    dataset: str
    data_version: str
    period: str
    data_rev: str


@dataclass(frozen=True)
class Delivery(Record):
    """A batch file in the landing location, routed to its dataset and period."""

    uri: str
    dataset: str
    period: str
    identity: str  # what identifies its bytes (MD5, or the S3 ETag)
    run_id: str  # its ingest_batch run: one per dataset, period and bytes


@dataclass(frozen=True)
class RefusedDelivery(Record):
    """A file in the landing location whose path says no dataset and period."""

    uri: str
    relative: str
    identity: str
    reason: str


@dataclass(frozen=True)
class StartIngest(Record):
    """plan_ingests -> start_ingest: the ``ingest_batch`` run of one new delivery (named by its bytes)."""

    trigger_run_id: str
    conf: IngestConf


@dataclass(frozen=True)
class LandingScan(Record):
    """wait_for_deliveries -> start_ingest, refuse: what is in the landing location now."""

    deliveries: list[Delivery]
    refused: list[RefusedDelivery]
    digest: str  # of the listing and the specs folder: the trigger waits until it changes
    # deliveries of a dataset whose spec does not load: left where they landed, not refused (the
    # delivery is not at fault); they start their ingest once the spec is fixed
    held: list[RefusedDelivery] = field(default_factory=list)


# ------------------------------------------------------------------------------ train


@dataclass(frozen=True)
class TrainingPlan(Record):
    """plan_training -> every later task of retrain_model: the pinned data and the periods."""

    dataset: str
    model_name: str
    data_version: str
    data_tag: str
    data_rev: str
    train_periods: list[str]
    holdout_periods: list[str]
    window: int
    as_of: str | None = None  # the period the run's data interval ends with, when it chose the version
    backfill: bool = False  # a model of the past: registered and evaluated, never promoted


@dataclass(frozen=True)
class WindowValidation(Record):
    """validate_window -> train: every period of the window, validated again as read from the registry."""

    success: bool
    evaluated: int
    failures: list[str]
    result_path: str


@dataclass(frozen=True)
class TrainedRun(Record):
    """train -> evaluate, register, promote: the MLflow run and the model it logged."""

    run_id: str
    model_uri: str
    reused: bool  # a retry found the model already logged on this Airflow run's MLflow run
    epochs_run: int | None = None


# ------------------------------------------------------------------------------ evaluate


@dataclass(frozen=True)
class SliceRow(Record):
    """The gate metric on the holdout rows of one value of a slice feature."""

    feature: str
    value: str
    rows: int
    candidate: float
    champion: float | None
    regression: float | None  # relative worsening vs the champion (positive = worse)
    judged: bool  # enough rows, and a champion to compare with
    failed: bool  # judged, and worse than the champion by more than the spec allows


@dataclass(frozen=True)
class Evaluation(Record):
    """evaluate -> register, review, promote: candidate, champion and baseline on one holdout, and the gate."""

    passed: bool
    metric: str
    candidate: float
    baseline: float
    champion: float | None
    champion_version: str | None  # the champion the gate compared against (promotion's compare-and-set)
    reasons: list[str]
    slices: list[SliceRow]
    delta_vs_champion: float | None
    candidate_metrics: dict[str, float]
    baseline_metrics: dict[str, float]
    champion_metrics: dict[str, float] | None
    n_holdout: int
    report_uri: str = ""  # the HTML evaluation report in MLflow


# ------------------------------------------------------------------------------ release


@dataclass(frozen=True)
class RegisteredVersion(Record):
    """register -> review, promote, deploy: the model version of this run's model."""

    model_name: str
    version: str
    created: bool  # False: a retry found the version registered already


@dataclass(frozen=True)
class ReviewDecision(Record):
    """review -> promote: who decided that the candidate may (not) go to production."""

    decision: str  # approved | rejected | auto | gate failed
    approved: bool
    via: str  # airflow | mlflow | timeout | policy | gate
    reviewer: str
    at: str = ""
    reason: str = ""


@dataclass(frozen=True)
class Promotion(Record):
    """promote -> deploy: whether ``champion`` moved to the candidate."""

    promoted: bool
    version: str
    previous_champion: str | None
    reused: bool = False  # the decision was recorded by an earlier try


# ------------------------------------------------------------------------------ deploy


@dataclass(frozen=True)
class Deployment(Record):
    """deploy -> verify: the version in the model store and the serving labels after it."""

    version: str
    location: str
    created: bool  # False: the version folder was complete already
    labels: dict[str, int]


@dataclass(frozen=True)
class ServerCheck(Record):
    """The check after a deploy, through a model server: correctness and latency."""

    endpoint: str
    route: str
    max_abs_diff: float
    rows: int
    p50_ms: float
    p99_ms: float
    requests: int
    # what the server's own metrics counted of the check's predict calls (-1: it exposes none)
    # and the p99 it measured (a histogram bucket's upper bound, ms)
    server_counted: int = -1
    server_p99_ms: float | None = None


@dataclass(frozen=True)
class Verification(Record):
    """verify: the deployed version passed its check; the labels after it."""

    version: str
    location: str
    labels: dict[str, int]
    check: ServerCheck


@dataclass(frozen=True)
class Rollback(Record):
    """rollback_model: which version serves again, why and by whom."""

    from_version: str = field(metadata={"key": "from"})
    to_version: str = field(metadata={"key": "to"})
    labels: dict[str, int]
    max_abs_diff: float  # the store's copy against the registry model, on holdout rows
    by: str
    reason: str


# ------------------------------------------------------------------------------ monitor


@dataclass(frozen=True)
class DriftSummary(Record):
    """What a drift-triggered retraining carries in its conf (``drift``) and records on its version."""

    reason: str = ""
    report_uri: str | None = None
    mlflow_run_id: str | None = None
    drifted_features: list[str] = field(default_factory=list)
    share_drifted: float | None = None
    performance_drop: float | None = None
    champion_version: str | None = None


@dataclass(frozen=True)
class DriftCheck(Record):
    """wait_for_drift -> start_retraining: new data against the champion's, and the decision."""

    status: str  # checked | no_data | no_champion | no_new_data
    retrain: bool
    reason: str
    data_version: str | None = None
    champion_version: str | None = None
    current_periods: list[str] = field(default_factory=list)
    reference_version: str | None = None
    reference_periods: list[str] = field(default_factory=list)
    signals: dict[str, bool] = field(default_factory=dict)  # features, target, prediction
    performance_drop: float | None = None
    metric: str | None = None
    share_drifted: float | None = None
    drifted_features: list[str] = field(default_factory=list)
    mlflow_run_id: str | None = None
    mlflow_experiment_id: str | None = None
    report_uri: str | None = None
    dataset: str | None = None  # the dataset spec checked

    def summary(self) -> DriftSummary:
        return DriftSummary(
            reason=self.reason,
            report_uri=self.report_uri,
            mlflow_run_id=self.mlflow_run_id,
            drifted_features=list(self.drifted_features),
            share_drifted=self.share_drifted,
            performance_drop=self.performance_drop,
            champion_version=self.champion_version,
        )


@dataclass(frozen=True)
class RetrainConf(Record):
    """The conf a ``retrain_model`` run works on (its Params), as monitor_drift, the retraining of
    other datasets or a person starts it."""

    dataset: str
    data_version: str = "latest"  # "latest" or a data version such as "v0007"
    reason: str | None = None  # why the run was started, recorded in MLflow; None: the kind of run
    drift: DriftSummary | None = None  # set by monitor_drift when drift started the run
    window: int | None = None  # periods to train on; None: the spec's window
    epochs: int | None = None  # most epochs to train; None: the spec's
    force: bool = False  # train even if this data version and window already have a model


@dataclass(frozen=True)
class StartRetraining(Record):
    """plan_other_datasets -> retrain_other_datasets: a ``retrain_model`` run of another dataset."""

    trigger_run_id: str
    conf: RetrainConf


@dataclass(frozen=True)
class DatasetCheck(Record):
    """What a ``monitor_drift`` run checks (its Params), and datasets_to_check -> check_dataset:
    one dataset at one data version."""

    dataset: str
    data_version: str = "latest"  # "latest" or a data version such as "v0007"


@dataclass(frozen=True)
class RerunConf(Record):
    """The conf a ``rerun_quarantined`` run works on (its Params): a dataset's quarantined
    deliveries, of one period or of every period not versioned yet."""

    dataset: str
    period: str | None = None


@dataclass(frozen=True)
class RollbackConf(Record):
    """The conf a ``rollback_model`` run works on (its Params)."""

    dataset: str
    version: str  # "previous" (the version the champion replaced) or a version number
    reason: str


@dataclass(frozen=True)
class RetrainRequest(Record):
    """start_retraining -> trigger_retrain: the run id (one per data version) and its conf."""

    run_id: str
    conf: RetrainConf
