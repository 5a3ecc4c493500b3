"""Data validation with Great Expectations: a suite generated from the dataset spec.

``build_suite`` turns a spec into expectations (columns and types, ranges, allowed
categories, null-rate limits, row count, timestamps inside the batch's period and unique);
``validate_frame`` runs them on a batch and returns a ``ValidationReport`` whose
``failures`` say, in words, what was wrong and where (``FrameValidator`` runs them on many
batches of one spec, a window's periods, in one GX context).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from retrainer import periods
from retrainer.data.batchfile import BatchTable, capped, period_problems, read_delivery, sample
from retrainer.outcomes import Refused
from retrainer.spec.dataset import DatasetSpec

if TYPE_CHECKING:
    import great_expectations as gx

    from retrainer.data.batchchecks import Reference


log = logging.getLogger(__name__)


class DataValidationError(Refused, ValueError):
    """Data failed its expectations; the message says what and where."""


NUMERIC_TYPES = ["int8", "int16", "int32", "int64", "Int64", "float16", "float32", "float64", "Float64"]


@dataclass
class ValidationReport:
    dataset: str
    period: str
    source: str
    success: bool
    n_rows: int
    evaluated: int
    failures: list[str] = field(default_factory=list)
    gx_result: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # passed, but worth a look (unseen categories within limits)
    too_large: bool = False  # refused for its size (ingest.max_file_mb): quarantined as a record, not a copy

    def summary(self) -> str:
        head = f"{self.dataset} {self.period} ({self.source}, {self.n_rows} rows)"
        if self.success:
            noted = f" ({'; '.join(capped(self.notes))})" if self.notes else ""
            return f"{head}: passed {self.evaluated} expectations{noted}"
        failed = f"{head}: FAILED {len(self.failures)} of {self.evaluated} expectations: "
        return failed + "; ".join(capped(self.failures))

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, default=str)


def build_suite(spec: DatasetSpec, period: str | None) -> gx.ExpectationSuite:
    """The expectation suite for one batch of ``spec`` (``period`` bounds the timestamps)."""
    import great_expectations as gx

    E = gx.expectations
    suite = _Suite()
    tcol = spec.time_column
    required = [tcol, spec.target.column, *spec.feature_names]
    for col in required:
        suite.add_expectation(E.ExpectColumnToExist(column=col))

    suite.add_expectation(E.ExpectTableRowCountToBeBetween(min_value=spec.min_rows, max_value=spec.max_rows))
    suite.add_expectation(E.ExpectColumnValuesToNotBeNull(column=tcol))
    if len(spec.unique_by) == 1:
        suite.add_expectation(E.ExpectColumnValuesToBeUnique(column=spec.unique_by[0]))
    elif spec.unique_by:  # event data: unique by a key of several columns (or, with none, not at all)
        suite.add_expectation(E.ExpectCompoundColumnsToBeUnique(column_list=list(spec.unique_by)))
    if period is not None:
        start, end = periods.bounds(period, spec.frequency)
        last = end - timedelta(microseconds=1)
        suite.add_expectation(E.ExpectColumnValuesToBeBetween(column=tcol, min_value=start, max_value=last))

    target = spec.target
    suite.add_expectation(E.ExpectColumnValuesToNotBeNull(column=target.column, mostly=1.0 - target.max_null_rate))
    if target.task == "multiclass":  # a class the model has no output for cannot be learned or judged
        suite.add_expectation(E.ExpectColumnValuesToBeInSet(column=target.column, value_set=list(target.classes)))
    if target.task == "regression":
        suite.add_expectation(E.ExpectColumnValuesToBeInTypeList(column=target.column, type_list=NUMERIC_TYPES))
        if target.min is not None or target.max is not None:
            suite.add_expectation(
                E.ExpectColumnValuesToBeBetween(column=target.column, min_value=target.min, max_value=target.max)
            )

    for feat in spec.features:
        mostly = 1.0 - feat.max_null_rate
        if mostly > 0:
            suite.add_expectation(E.ExpectColumnValuesToNotBeNull(column=feat.name, mostly=mostly))
        if feat.type == "numeric":
            suite.add_expectation(E.ExpectColumnValuesToBeInTypeList(column=feat.name, type_list=NUMERIC_TYPES))
            if feat.min is not None or feat.max is not None:
                suite.add_expectation(
                    E.ExpectColumnValuesToBeBetween(column=feat.name, min_value=feat.min, max_value=feat.max)
                )
        elif not feat.learn_categories:  # a learned vocabulary takes whatever the window holds
            suite.add_expectation(
                E.ExpectColumnValuesToBeInSet(
                    column=feat.name, value_set=list(feat.categories), mostly=1.0 - feat.max_unseen_rate
                )
            )
    return gx.ExpectationSuite(name=f"{spec.name}.batch", expectations=suite.expectations)


class _Suite:
    """Expectations collected for a suite made in one step: ``ExpectationSuite.add_expectation``
    compares each new one with every one before it (and needs a data context), which costs
    more than validating a small batch. Set-like, as a suite is: an equal one is added once."""

    def __init__(self) -> None:
        self.expectations: list[Any] = []
        self._seen: set[str] = set()

    def add_expectation(self, expectation: Any) -> None:
        key = json.dumps([expectation.expectation_type, expectation.configuration.kwargs], sort_keys=True, default=str)
        if key not in self._seen:
            self._seen.add(key)
            self.expectations.append(expectation)


def _describe_failure(res: Any) -> str:
    cfg = res.expectation_config
    kind = cfg.type.removeprefix("expect_")
    kw = cfg.kwargs
    col = kw.get("column")
    r = res.result or {}
    where = f"column '{col}'" if col else "table"
    if res.exception_info and res.exception_info.get("raised_exception"):
        msg = (str(res.exception_info.get("exception_message", "")).splitlines() or [""])[0][:160]
        return f"{where}: {kind} could not run ({msg})"
    if kind == "column_to_exist":
        return f"{where} is missing"
    if kind == "table_row_count_to_be_between":
        return f"row count {r.get('observed_value')} is outside [{kw.get('min_value')}, {kw.get('max_value')}]"
    if kind == "column_values_to_be_in_type_list":
        return f"{where} has type {r.get('observed_value')}, expected numeric"
    if not r:
        return f"{where}: {kind} could not be evaluated (is the column missing?)"
    pct = r.get("unexpected_percent") or 0.0
    count = r.get("unexpected_count")
    shown = _examples(r)
    if kind == "column_values_to_not_be_null":
        allowed = (1 - kw.get("mostly", 1.0)) * 100
        return f"{where}: {pct:.1f}% missing ({count} rows), at most {allowed:.1f}% allowed"
    if kind == "column_values_to_be_between":
        return (
            f"{where}: {count} values ({pct:.1f}%) outside [{kw.get('min_value')}, {kw.get('max_value')}], e.g. {shown}"
        )
    if kind == "column_values_to_be_in_set":
        allowed = (1 - kw.get("mostly", 1.0)) * 100
        tolerated = f", at most {allowed:.1f}% allowed" if allowed > 0 else ""
        return f"{where}: {count} values ({pct:.1f}%) not among the allowed categories{tolerated}, e.g. {shown}"
    if kind == "column_values_to_be_unique":
        return f"{where}: {count} rows share a value with another row, e.g. {shown}"
    if kind == "compound_columns_to_be_unique":
        key = ", ".join(kw.get("column_list") or [])
        return f"columns ({key}): {count} rows share their values with another row, e.g. {shown}"
    return f"{where}: {kind} failed ({count} unexpected)"


def _context() -> Any:
    import great_expectations as gx

    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    ctx = gx.get_context(mode="ephemeral")
    try:  # progress bars would flood task logs
        from great_expectations.data_context.types.base import ProgressBarsConfig

        ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
    except Exception as exc:  # pragma: no cover - cosmetic only
        log.debug("GX progress bars stay on: %s", exc)
    return ctx


class FrameValidator:
    """Batches of one spec validated against its suite in one GX context, made on first use:
    the periods of a window share it, and its pandas asset, instead of making one each.

    ``brief``: a batch that passes is kept in GX's BASIC result format, which costs GX about a
    third less per batch than its SUMMARY: the same verdicts, counts and examples of unexpected
    values (so the same failures and notes), without SUMMARY's counts per unexpected value and
    row numbers; a batch that fails is validated again and kept in full."""

    def __init__(self, spec: DatasetSpec, brief: bool = False) -> None:
        self.spec = spec
        self.brief = brief
        self._context: Any = None
        self._batches: Any = None

    def validate(self, df: pd.DataFrame, period: str | None, source: str) -> ValidationReport:
        """Validate one batch (or a window when ``period`` is None) against the spec's suite."""
        if self._batches is None:
            self._context = _context()
            asset = self._context.data_sources.add_pandas("retrainer").add_dataframe_asset(name=self.spec.name)
            self._batches = asset.add_batch_definition_whole_dataframe("batch")
        batch = self._batches.get_batch(batch_parameters={"dataframe": _for_gx(df, self.spec.time_column)})
        suite = build_suite(self.spec, period)
        result = batch.validate(suite, result_format="BASIC" if self.brief else "SUMMARY")
        if self.brief and not result.success:  # kept in full: what failed, where
            result = batch.validate(suite, result_format="SUMMARY")
        failures = [_describe_failure(r) for r in result.results if not r.success]
        notes = [_describe_tolerated(r) for r in result.results if r.success and _tolerated(r)]
        return ValidationReport(
            dataset=self.spec.name,
            period=period or "window",
            source=source,
            success=bool(result.success),
            n_rows=len(df),
            evaluated=len(result.results),
            failures=failures,
            gx_result=json.loads(json.dumps(result.to_json_dict(), default=str)),
            notes=notes,
        )


def validate_frame(df: pd.DataFrame, spec: DatasetSpec, period: str | None, source: str) -> ValidationReport:
    """Validate one batch (or a window when ``period`` is None) against the spec's suite."""
    return FrameValidator(spec).validate(df, period, source)


def _for_gx(df: pd.DataFrame, tcol: str) -> pd.DataFrame:
    """The batch as GX checks it fastest: GX compares a time column with the period's bounds
    in one vectorized step only at nanosecond resolution, and value by value in Python at any
    other (pandas reads timestamps at microseconds). The same instants, in nanoseconds when
    they fit (1677 to 2262); the frame as it is otherwise."""
    col = df.get(tcol)
    if col is None or not pd.api.types.is_datetime64_dtype(col.dtype) or col.dtype == "datetime64[ns]":
        return df
    try:
        return df.assign(**{tcol: col.astype("datetime64[ns]")})
    except (OverflowError, ValueError):  # pandas' OutOfBoundsDatetime is a ValueError
        return df


def _tolerated(res: Any) -> bool:
    """An expectation that passed with values outside the categories, within the spec's share."""
    cfg = res.expectation_config
    return cfg.type == "expect_column_values_to_be_in_set" and bool((res.result or {}).get("unexpected_count"))


def _describe_tolerated(res: Any) -> str:
    r, col = res.result or {}, res.expectation_config.kwargs.get("column")
    allowed = (1 - res.expectation_config.kwargs.get("mostly", 1.0)) * 100
    shown = _examples(r)
    return (
        f"column '{col}': {r.get('unexpected_count')} values ({r.get('unexpected_percent') or 0.0:.1f}%) not among "
        f"the categories, e.g. {shown}: the model reads them as unseen (its out-of-vocabulary slot); at most "
        f"{allowed:.1f}% allowed"
    )


def _examples(result: dict[str, Any]) -> str:
    """A few of the unexpected values GX kept, each once."""
    seen = {repr(v): v for v in result.get("partial_unexpected_list") or []}
    return sample(list(seen.values()))


REFUSED = "refused: "


def check_redelivery(
    path: Path | str, spec: DatasetSpec, period: str, reference: Reference
) -> tuple[pd.DataFrame | None, list[str]]:
    """A delivery of a period that is versioned already, against the versioned rows, by the
    spec's ``ingest.redelivery``: what to say (refusals prefixed ``refused: ``) and, for
    ``append``, the frame of the period with the late rows added (else None)."""
    import io
    import tempfile

    from retrainer.data import batchchecks
    from retrainer.data.batchfile import canonical_frame, write_frame

    text = reference.texts.get(period)
    if text is None:
        return None, []
    other = spec.ingest.other_columns
    try:
        new = canonical_frame(path, spec, other)
        old = canonical_frame(io.StringIO(text), spec, other)
    except (ValueError, KeyError) as exc:  # the delivery's own problems are reported by the suite
        log.warning("could not compare the re-delivery of %s with %s: %s", period, reference.version, exc)
        return None, []
    diff = batchchecks.compare_redelivery(new, old, spec)
    refusals = [REFUSED + p for p in batchchecks.redelivery_problems(diff, spec, period, reference.version)]
    if diff.same:
        return None, [f"{period}: the same rows as versioned in {reference.version} (nothing new to version)"]
    if refusals or spec.ingest.redelivery != "append":
        said = [] if refusals else [f"{period} replaces the rows versioned in {reference.version}: {diff.says()}"]
        return None, refusals + said
    merged = batchchecks.appended(old, new, spec)
    with tempfile.TemporaryDirectory(prefix="retrainer-append-") as tmp:
        merged_file = write_frame(merged, Path(tmp) / f"{period}.csv", spec.ingest.encoding)
        again = read_delivery(merged_file, spec, dataclasses.replace(spec.ingest.limits, format="csv")).frame
    note = f"{period}: {diff.new} late rows appended to the {diff.rows_versioned} versioned in {reference.version}"
    return again, [note]


def file_md5(path: Path | str) -> str:
    h = hashlib.md5(usedforsecurity=False)  # DVC's content hash, not a security measure
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def checks_beyond_the_suite(
    delivery: BatchTable, df: pd.DataFrame, spec: DatasetSpec, period: str, path: Path | str, reference: Reference
) -> list[list[str]]:
    """What a readable batch shows wrong that no per-value expectation says, check by check:
    what the reader found, columns the spec does not name, leaks, the features and the target
    against the versioned data, the kept columns, timestamps outside the period (as written),
    the period's coverage and the relations between columns."""
    from retrainer.data import batchchecks, keptcolumns, rowchecks

    return [
        delivery.problems,
        batchchecks.column_problems(df, spec),
        batchchecks.leak_problems(df, spec),
        batchchecks.reference_problems(df, spec, period, reference),
        batchchecks.target_problems(df, spec, period, reference),
        keptcolumns.problems(df, spec),
        period_problems(delivery, spec, period),
        rowchecks.coverage_problems(df, spec, period, path),
        rowchecks.relation_problems(df, spec, period, reference),
    ]


def validate_file(
    path: Path | str,
    spec: DatasetSpec,
    period: str,
    source: str | None = None,
    reference: Reference | None = None,
) -> ValidationReport:
    """Validate the batch file at ``path``; ``source`` names where it was delivered (default: the
    path). A file that cannot be read as the spec's table fails with the reason and runs no
    expectation; a readable one is judged by the suite and by the checks beyond it (against
    ``reference``, the versioned data, when given)."""
    from retrainer.data import batchchecks, keptcolumns

    source = source or str(path)
    reference = reference or batchchecks.Reference()
    delivery = read_delivery(path, spec)
    if delivery.frame is None:
        report = ValidationReport(
            spec.name, period, source, False, 0, 0, delivery.problems, too_large=delivery.too_large
        )
    else:
        df = delivery.frame
        again, notes = check_redelivery(path, spec, period, reference)
        if again is not None:  # append: the period as it would be versioned is judged
            df = again
        report = validate_frame(df, spec, period, source=source)
        report.notes += notes + keptcolumns.formula_notes(df, spec)
        checks = checks_beyond_the_suite(delivery, df, spec, period, path, reference)
        found = [reason for check in checks for reason in check]
        found += [n.removeprefix(REFUSED) for n in notes if n.startswith(REFUSED)]
        report.notes = [n for n in report.notes if not n.startswith(REFUSED)]
        absent = [c for c in (spec.time_column, spec.target.column, *spec.feature_names) if c not in df]
        # a missing column is said once, not once per expectation on it
        said = [f for f in report.failures if not any(f.startswith(f"column '{c}': ") for c in absent)]
        if period_problems(delivery, spec, period):  # said with the values as written, not as converted
            said = [f for f in said if not (f.startswith(f"column '{spec.time_column}': ") and " outside [" in f)]
        report.failures = found + said
        report.evaluated += len(checks)
        report.success = not report.failures
    if report.success:
        log.info("validation passed: %s", report.summary())
    else:
        log.error("validation failed: %s", report.summary())
    return report
