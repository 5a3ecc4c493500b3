"""What a delivered batch may be: the spec's ``ingest`` section and its row counts (``rows``).

``IngestConfig.limits`` gives the batch reader (``retrainer.data.batchfile``) the spec's limits
on size, field length, encoding and format; a delivery read with a spec uses them.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass, field, fields
from typing import Any

from retrainer.spec.columns import INGEST_CHECKS, Feature
from retrainer.spec.fields import Fields

ROWS_KEYS = frozenset({"min", "max"})
#: what a column the spec does not name does to a delivery (``ingest.extra_columns``)
EXTRA_COLUMNS = ("reject", "keep", "drop")
#: the older name of ``ingest.extra_columns`` (values refuse|keep|drop), still read
OLD_EXTRA_COLUMNS_KEY = "unexpected_columns"
#: what a delivery of a period that is versioned already may do to it
REDELIVERY = ("reject", "replace", "append")
#: how deliveries are read: by the file's extension (.parquet is Parquet, anything else CSV), or all as one
FORMATS = ("auto", "csv", "parquet")
#: what a value a spreadsheet would run as a formula does to a delivery (``ingest.formulas``)
FORMULAS = ("reject", "neutralise", "allow")
#: what a column kept in the data versions holds (``ingest.other_columns.<column>.type``)
OTHER_TYPES = ("text", "numeric")
OTHER_COLUMN_KEYS = frozenset({"type", "max_chars", "min", "max", "max_null_rate"})
#: the metadata of a field read from another key, so no key of its own in the spec file
NOT_A_KEY = {"spec_key": False}


@dataclass(frozen=True)
class OtherColumn:
    """A column kept in the data versions and never learned (``ingest.other_columns``), and what
    its values may be. The list form makes each a text column with the spec's defaults."""

    name: str
    type: str = "text"  # text or numeric
    max_chars: int | None = None  # text: the longest value (None: ingest.max_field_chars)
    min: float | None = None  # numeric: the range values must lie in
    max: float | None = None
    max_null_rate: float = 1.0  # never learned, so a missing value harms no model unless the spec says


@dataclass(frozen=True)
class Limits:
    """What a batch file may be at most, as the batch reader checks it (from ``ingest``)."""

    max_bytes: int = 512 * 1024 * 1024
    max_field_chars: int = 10_000
    max_columns: int = 1000  # in the header (or the Parquet schema), counted before anything is parsed
    max_header_bytes: int = 64 * 1024  # the header line, read before anything is parsed
    encoding: str = "utf-8"  # of CSV text (Python's codec name); anything else is read as UTF-8 first
    format: str = "auto"  # csv, parquet, or auto: by the file's extension (ingest.format)


@dataclass(frozen=True)
class IngestConfig:
    """What a delivered batch may be (spec section ``ingest``); the checks in
    ``retrainer.data.batchfile`` and ``retrainer.data.batchchecks``."""

    other_columns: tuple[str, ...] = ()  # delivered and kept, never used as features
    extra_columns: str = "reject"  # a column the spec does not name: reject (quarantine), keep or drop it
    redelivery: str = "reject"  # a versioned period delivered again with other content: reject, replace or append
    max_file_mb: float = 512.0
    max_field_chars: int = 10_000
    max_columns: int = 1000  # a header (or Parquet schema) of more columns is refused before it is parsed
    max_header_kb: int = 64  # a longer header line is refused before it is parsed
    redelivery_max_row_loss: float = 0.0  # a re-delivery may replace a versioned period losing at most this share
    max_scale_change: float = 10.0  # a numeric feature's spread this many times off the versioned data's: a unit change
    leak_correlation: float = 0.999  # a feature this correlated with (or equal to) the target is a leak
    encoding: str = "utf-8"  # of CSV deliveries (a Python codec: latin-1, cp1252, utf-16, ...)
    format: str = "auto"  # csv, parquet, or auto: by the file's extension
    checks: tuple[str, ...] = INGEST_CHECKS  # the checks against the versioned data that are on
    formulas: str = "reject"  # a kept text value a spreadsheet would run: reject, neutralise (a leading ') or allow
    other_column_rules: tuple[OtherColumn, ...] = field(default=(), metadata=NOT_A_KEY)  # from other_columns

    @property
    def limits(self) -> Limits:
        return Limits(
            max_bytes=int(self.max_file_mb * 1024 * 1024),
            max_field_chars=self.max_field_chars,
            max_columns=self.max_columns,
            max_header_bytes=self.max_header_kb * 1024,
            encoding=self.encoding,
            format=self.format,
        )

    def checks_on(self, check: str, feature: Feature | None = None) -> bool:
        """Whether ``check`` runs (on ``feature``: its own ``checks`` first, then ``ingest.checks``)."""
        own = dict(feature.checks) if feature is not None else {}
        return own.get(check, check in self.checks)

    def scale_limit(self, feature: Feature) -> float:
        """How many times off the versioned spread ``feature`` may be before it is a unit change."""
        return feature.max_scale_change or self.max_scale_change


def read_rows(f: Fields, raw: dict[str, Any]) -> tuple[int, int | None]:
    """``rows``: the fewest and most rows a batch may have (no most: None)."""
    f.known("rows", raw, ROWS_KEYS)
    least = f.integer("rows.min", raw.get("min", 1), 1)
    most = None if raw.get("max") is None else f.integer("rows.max", raw["max"], least)
    return least, most


def read_ingest(f: Fields, raw: dict[str, Any], spec_columns: set[str]) -> IngestConfig:
    keys = {c.name for c in fields(IngestConfig) if c.metadata.get("spec_key", True)}
    f.known("ingest", raw, {*keys, OLD_EXTRA_COLUMNS_KEY})
    rules = _other_columns(f, raw.get("other_columns") or [])
    other = [c.name for c in rules]
    if set(other) & spec_columns:
        raise f.error("ingest.other_columns", f"{sorted(set(other) & spec_columns)} are used already")
    field_chars = raw.get("max_field_chars", IngestConfig.max_field_chars)
    if isinstance(field_chars, bool) or not isinstance(field_chars, int) or field_chars < 1:
        raise f.error("ingest.max_field_chars", f"must be a positive integer, got {field_chars!r}")
    size = f.unit("ingest.max_file_mb", raw.get("max_file_mb", IngestConfig.max_file_mb), None)
    scale = f.unit("ingest.max_scale_change", raw.get("max_scale_change", IngestConfig.max_scale_change), None)
    if size <= 0 or scale <= 1:
        raise f.error("ingest", "max_file_mb must be above 0 and max_scale_change above 1")
    return IngestConfig(
        other_columns=tuple(other),
        extra_columns=_extra_columns(f, raw),
        max_file_mb=size,
        max_field_chars=field_chars,
        max_columns=_max_columns(f, raw, len(spec_columns) + len(other)),
        max_header_kb=f.integer("ingest.max_header_kb", raw.get("max_header_kb", IngestConfig.max_header_kb), 1),
        redelivery=f.choice("ingest.redelivery", raw.get("redelivery", "reject"), REDELIVERY),
        redelivery_max_row_loss=f.unit("ingest.redelivery_max_row_loss", raw.get("redelivery_max_row_loss", 0.0)),
        max_scale_change=scale,
        leak_correlation=f.unit("ingest.leak_correlation", raw.get("leak_correlation", 0.999)),
        encoding=_encoding(f, raw.get("encoding", "utf-8")),
        format=f.choice("ingest.format", raw.get("format", "auto"), FORMATS),
        checks=_checks(f, raw.get("checks")),
        formulas=f.choice("ingest.formulas", raw.get("formulas", "reject"), FORMULAS),
        other_column_rules=rules,
    )


def _other_columns(f: Fields, raw: Any) -> tuple[OtherColumn, ...]:
    """``ingest.other_columns``: a list of names (each a text column), or a mapping of each name
    to what its values may be."""
    if not isinstance(raw, dict):
        return tuple(OtherColumn(name) for name in f.column_names("ingest.other_columns", raw))
    return tuple(_other_column(f, name, rules) for name, rules in raw.items())


def _other_column(f: Fields, name: Any, rules: Any) -> OtherColumn:
    """One column of the mapping form: ``{type, max_chars, min, max, max_null_rate}``, all optional."""
    where = f"ingest.other_columns.{name}"
    if not isinstance(name, str) or not name:
        raise f.error("ingest.other_columns", f"must be a mapping of column names, got the key {name!r}")
    rules = {} if rules is None else rules
    if not isinstance(rules, dict):
        raise f.error(where, f"must be a mapping of {', '.join(sorted(OTHER_COLUMN_KEYS))}, got {rules!r}")
    f.known(where, rules, OTHER_COLUMN_KEYS)
    kind = f.choice(f"{where}.type", rules.get("type", "text"), OTHER_TYPES)
    lo = f.optional_number(f"{where}.min", rules.get("min"))
    hi = f.optional_number(f"{where}.max", rules.get("max"))
    for key, given in (("min", lo), ("max", hi)):
        if kind == "text" and given is not None:
            raise f.error(f"{where}.{key}", "is for type: numeric (a text column has no range)")
    if lo is not None and hi is not None and lo > hi:
        raise f.error(f"{where}.min", f"min {lo} is above max {hi}")
    chars = rules.get("max_chars")
    if chars is not None and kind != "text":
        raise f.error(f"{where}.max_chars", "is for type: text (a numeric column holds numbers)")
    return OtherColumn(
        name=name,
        type=kind,
        max_chars=None if chars is None else f.integer(f"{where}.max_chars", chars, 1),
        min=lo,
        max=hi,
        max_null_rate=f.unit(f"{where}.max_null_rate", rules.get("max_null_rate", 1.0)),
    )


def _max_columns(f: Fields, raw: dict[str, Any], named: int) -> int:
    """``ingest.max_columns``: at least the columns the spec names, or no delivery could pass."""
    value = raw.get("max_columns", IngestConfig.max_columns)
    if isinstance(value, bool) or not isinstance(value, int) or value < named:
        raise f.error(
            "ingest.max_columns", f"must be an integer of at least {named} (the columns named), got {value!r}"
        )
    return value


def _extra_columns(f: Fields, raw: dict[str, Any]) -> str:
    """``ingest.extra_columns``, or its older name ``unexpected_columns`` (``refuse`` for ``reject``)."""
    if OLD_EXTRA_COLUMNS_KEY not in raw:
        return f.choice("ingest.extra_columns", raw.get("extra_columns", "reject"), EXTRA_COLUMNS)
    if "extra_columns" in raw:
        raise f.error("ingest.unexpected_columns", "is the older name of ingest.extra_columns: give one of them")
    old = raw[OLD_EXTRA_COLUMNS_KEY]
    old = "reject" if old == "refuse" else old
    return f.choice("ingest.unexpected_columns", old, EXTRA_COLUMNS)


def _checks(f: Fields, raw: Any) -> tuple[str, ...]:
    """``ingest.checks``: a mapping of check name to true/false; a check not named stays on."""
    if raw is None:
        return INGEST_CHECKS
    if not isinstance(raw, dict):
        raise f.error("ingest.checks", f"must be a mapping of {', '.join(INGEST_CHECKS)} to true or false, got {raw!r}")
    f.known("ingest.checks", raw, INGEST_CHECKS)
    for name, on in raw.items():
        f.flag(f"ingest.checks.{name}", on)
    return tuple(c for c in INGEST_CHECKS if raw.get(c, True))


def _encoding(f: Fields, value: Any) -> str:
    """A codec Python knows, by its canonical name (``UTF8`` and ``utf_8`` are ``utf-8``)."""
    try:
        name = codecs.lookup(str(value)).name
    except LookupError:
        raise f.error("ingest.encoding", f"unknown encoding {value!r} (e.g. utf-8, latin-1, cp1252, utf-16)") from None
    return name
