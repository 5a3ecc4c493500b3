"""What a delivered batch file is, before any expectation runs: readable CSV text, or why not.

A landed file may be anything a broken export, a wrong button or an attacker produces: empty,
cut off, compressed, binary, in another encoding, separated by semicolons, with a header
twice or none, with a field of ten megabytes or a header of 200,000 columns. ``read_delivery``
reads it as the table the spec describes or returns, in words, what is wrong and where (line,
column, byte, the value as written), so the batch is quarantined with that reason instead of
failing with a parser's traceback. The file's size, its header line and its number of columns
are checked before anything parses it, so no delivery costs more than the spec's limits allow.

``canonical_csv`` writes an accepted batch in one form (UTF-8 without BOM, ``\\n`` line ends,
the spec's column order, timestamps as naive UTC ISO 8601, every other value as delivered), so
a re-encoding of the same data is the same data version and not a new one.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from retrainer import periods
from retrainer.data.formulas import neutralised
from retrainer.outcomes import Refused
from retrainer.spec.dataset import DatasetSpec
from retrainer.spec.intake import Limits

#: first bytes of formats that are not CSV text
MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x1f\x8b", "gzip-compressed data"),
    (b"PK\x03\x04", "a ZIP archive (or an Excel workbook)"),
    (b"BZh", "bzip2-compressed data"),
    (b"\xfd7zXZ\x00", "xz-compressed data"),
    (b"\x28\xb5\x2f\xfd", "zstd-compressed data"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"\x89HDF", "an HDF5 file"),
    (b"%PDF", "a PDF document"),
    (b"\xd0\xcf\x11\xe0", "an old Excel/Office document"),
)
UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
PARQUET_EXTENSION = ".parquet"
PARQUET_MIN_BYTES = 12  # the magic, a footer length and the magic again
OTHER_DELIMITERS = (";", "\t", "|")
SAMPLE_CHARS = 40  # a value quoted in a reason is cut to this many characters
_ZONE = re.compile(r"(?:Z|[+-]\d{2}(?::?\d{2})?)$")
_OFFSET = re.compile(r"\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?\s*([+-]\d{2}(?::?\d{2})?)$")  # after a time of day
_UTC_OFFSETS = frozenset({"+00", "-00", "+0000", "-0000", "+00:00", "-00:00"})
_NUMERIC_DATE = re.compile(r"^(\d{1,2})[/.](\d{1,2})[/.]\d{4}")
TRAILING_SHARE = 0.99  # the share of rows ending with a ',' that makes it a trailing delimiter
_TOKENIZE = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")
_QUOTE_OR_LINE_END = re.compile(rb'["\r\n]')


class DataFileError(FileNotFoundError):
    """A data file that a step needs does not exist."""


class BatchMissingError(DataFileError, Refused):
    """A batch file that is not where it was said to land: the task fails at once, naming the
    path, as no retry of the same run brings it (a delivery that lands later starts its own run)."""


@dataclass
class BatchTable:
    """A delivered file read as a table (``frame``), or the reasons it cannot be (``problems``).

    Problems found in a readable table (a value that is not a number, an infinite value, a
    timestamp that is not ISO 8601) are listed too; the frame is then still validated, so the
    quarantine reason names everything at once."""

    frame: pd.DataFrame | None
    problems: list[str] = field(default_factory=list)
    too_large: bool = False  # over ingest.max_file_mb: the quarantine keeps a record of it, not its bytes
    written_times: pd.Series | None = None  # the time column's text as in the file, before it was parsed


def sample(values: object) -> str:
    """A few distinct values for a reason, each cut short (a huge field must not be repeated whole)."""
    out: list[str] = []
    for v in values:  # type: ignore[attr-defined]
        s = _cut(str(v))
        if s not in out:
            out.append(s)
        if len(out) == 3:
            break
    return repr(out)


def _cut(s: str) -> str:
    """A value as a reason quotes it: whole when short, else its start and its length."""
    return s if len(s) <= SAMPLE_CHARS else s[:SAMPLE_CHARS] + f"...({len(s)} chars)"


#: the most reasons a message or a task's record lists; the validation result keeps them all
MAX_REASONS = 20


def capped(reasons: list[str], where: str = "") -> list[str]:
    """At most MAX_REASONS reasons: the first ones and how many more (and where they all are)."""
    if len(reasons) <= MAX_REASONS:
        return reasons
    rest = len(reasons) - (MAX_REASONS - 1)
    return [*reasons[: MAX_REASONS - 1], f"and {rest} more" + (f" (all in {where})" if where else "")]


def lines_of(rows: pd.Index | list[int]) -> str:
    """File line numbers of frame rows (the header is line 1)."""
    shown = [str(int(i) + 2) for i in list(rows)[:5]]
    more = f" and {len(rows) - 5} more" if len(rows) > 5 else ""
    return f"line{'s' if len(rows) > 1 else ''} {', '.join(shown)}{more}"


class _Unreadable(Exception):
    """The file is no CSV text; the message says why."""


class _TooLarge(_Unreadable):
    """The file, or a Parquet file's data in memory, is over ``ingest.max_file_mb``."""


@dataclass(frozen=True)
class _Scan:
    """What a CSV delivery's bytes say before anything parses them."""

    header: str  # the header line (its first record: a line end inside quotes is part of a name)
    lines: int  # lines in the file
    cut: bytes  # the last line when it has no line end, else empty
    comma_ended: int  # lines that end with a ',' (the header included)


def _scan_bytes(path: Path, limits: Limits) -> _Scan:
    """The file's header, its number of lines and its last line when that has no line end;
    _Unreadable with the reason when the bytes are no CSV text or the header is over the limits.
    The header is read up to ``ingest.max_header_kb`` and counted before anything parses the file."""
    _check_size(path, limits)
    with open(path, "rb") as fh:
        head = fh.read(max(1 << 16, limits.max_header_bytes + 1))
    _not_text(head, limits.format)
    if head.startswith(UTF16_BOMS) or head.startswith(b"\xef\xbb\xbf\xff\xfe"):
        raise _Unreadable(
            "UTF-16 text (it starts with a UTF-16 byte order mark): deliver UTF-8 (or declare ingest.encoding: utf-16)"
        )
    nul = head.find(b"\x00")
    if nul >= 0:
        raise _Unreadable(f"binary data, not CSV text (a NUL byte at offset {nul})")
    header = _header_line(head, limits)
    if not header.strip():
        raise _Unreadable("the file holds no header: its first line is empty")
    _count_columns(header, limits)
    lines, cut, comma_ended = _scan_lines(path)
    return _Scan(header, lines, cut, comma_ended)


def _header_line(head: bytes, limits: Limits) -> str:
    """The header: the file's first line, up to the first line end outside quotes, read from
    the file's first bytes; _Unreadable when it has no line end within ``ingest.max_header_kb``."""
    limit = limits.max_header_bytes
    quoted, end = False, -1
    for m in _QUOTE_OR_LINE_END.finditer(head, 0, limit + 1):
        if m.group() == b'"':
            quoted = not quoted
        elif not quoted:
            end = m.start()
            break
    if end < 0:
        if len(head) > limit:
            outside = " outside quotes (an unbalanced quote?)" if quoted else ""
            raise _Unreadable(
                f"the header line is longer than {limit} bytes (ingest.max_header_kb {limit // 1024}):"
                f" its first {limit} bytes hold {head[:limit].count(b',')} commas and no line end{outside};"
                " a header of that many columns, or a file without line ends?"
            )
        end = len(head)
    return head[:end].decode("utf-8", errors="replace").removeprefix("\ufeff")


def _count_columns(header: str, limits: Limits) -> None:
    """_Unreadable when the header names more columns than ``ingest.max_columns`` (CSV quoting
    respected: a ',' inside quotes is part of a name)."""
    try:
        n = len(next(csv.reader(io.StringIO(header))))
    except (csv.Error, StopIteration):
        return  # the header checks name it
    if n > limits.max_columns:
        raise _Unreadable(
            f"the header has {n} columns, more than the {limits.max_columns} a batch may have (ingest.max_columns)"
        )


def _scan_lines(path: Path) -> tuple[int, bytes, int]:
    """The file's number of lines, its last line when that has no line end, and how many lines
    end with a ','; _Unreadable when the bytes are not UTF-8 (naming line, column and offset)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    newlines, offset, tail, comma_ended = 0, 0, b"", 0
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                at = offset + exc.start
                line_start = (tail + chunk[: exc.start]).rfind(b"\n")
                line = newlines + chunk[: exc.start].count(b"\n") + 1
                column = len(tail + chunk[: exc.start]) - line_start
                bad = chunk[exc.start]
                raise _Unreadable(
                    f"not UTF-8 text: byte 0x{bad:02x} at line {line}, column {column} (offset {at});"
                    " the file looks like Latin-1 or Windows-1252: deliver UTF-8 (or declare ingest.encoding)"
                ) from None
            joined = tail[-2:] + chunk  # a ',' and its line end may be split across two chunks
            comma_ended += _comma_ends(joined) - _comma_ends(tail[-2:])
            newlines += chunk.count(b"\n")
            offset += len(chunk)
            tail = (tail + chunk)[-(1 << 16) :]
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            raise _Unreadable("not UTF-8 text: the file ends inside a multi-byte character (cut off?)") from None
    ended = tail.endswith(b"\n")
    lines = newlines + (0 if ended else 1)
    last = b"" if ended else tail.rsplit(b"\n", 1)[-1]
    comma_ended += 0 if ended or not last.rstrip(b"\r").endswith(b",") else 1
    return lines, last, comma_ended


def _comma_ends(data: bytes) -> int:
    return data.count(b",\n") + data.count(b",\r\n")


def _trailing_delimiter(scan: _Scan, names: list[str]) -> str | None:
    """The reason when (nearly) every line ends with a ',': the header's last name and (nearly)
    every row's last field are empty, an export that writes a delimiter after each field."""
    rows = scan.lines - 1
    if rows < 1 or names[-1].strip() or not scan.header.endswith(","):
        return None
    ended = scan.comma_ended - 1  # the header's own
    if ended < TRAILING_SHARE * rows:
        return None
    if ended >= rows:
        return (
            "every line ends with a ',' (a trailing delimiter): the header and all"
            f" {rows} rows, read as an unnamed column with no values; deliver the lines without it"
        )
    return (
        f"nearly every line ends with a ',' (a trailing delimiter): the header and {ended} of {rows} rows,"
        " read as an unnamed column nearly without values; deliver the lines without it"
    )


def _header_problems(first: str, spec: DatasetSpec, scan: _Scan | None = None) -> list[str]:
    """What is wrong with the header (``first``): another delimiter, none of the spec's columns,
    unnamed or repeated names; ``scan`` (of a CSV file) tells a trailing delimiter."""
    try:
        header = next(csv.reader(io.StringIO(first)))
    except (csv.Error, StopIteration) as exc:
        return [f"the header line cannot be read as CSV ({exc})"]
    header = [h.strip() for h in header]
    expected = [spec.time_column, spec.target.column, *spec.feature_names]
    if len(header) == 1:
        for d in OTHER_DELIMITERS:
            if sum(c in first.split(d) for c in expected) >= 2:
                shown = "tab" if d == "\t" else repr(d)
                return [f"the columns are separated by {shown}, not ',': deliver comma-separated values"]
    if not set(header) & set(expected):
        return [
            f"the header names none of the spec's columns (first line: {sample([first])[2:-2]!r}):"
            " a file without a header, or another dataset's file?"
        ]
    trailing = _trailing_delimiter(scan, header) if scan is not None else None
    problems = [trailing] if trailing else []
    seen: dict[str, int] = {}
    for name in header[:-1] if trailing else header:
        seen[name] = seen.get(name, 0) + 1
    for name, n in seen.items():
        if name == "":
            problems.append(f"the header has {n} unnamed column{'s' if n > 1 else ''}")
        elif n > 1:
            problems.append(f"column '{name}' appears {n} times in the header")
    return problems


def is_parquet(path: Path | str, declared: str = "auto") -> bool:
    """Whether a batch is read as Parquet: as the spec declares (``ingest.format``), or under
    ``auto`` by its extension (anything else is read as CSV)."""
    if declared != "auto":
        return declared == "parquet"
    return str(path).lower().endswith(PARQUET_EXTENSION)


def read_delivery(path: Path | str, spec: DatasetSpec, limits: Limits | None = None) -> BatchTable:
    """Read a delivered batch (CSV text, or Parquet by the spec's ``ingest.format`` or the file's
    extension) as the spec's table, or say why it cannot be read. The spec's ``ingest`` limits
    apply unless ``limits`` says otherwise. A file that is not there is BatchMissingError."""
    path = Path(path)
    if not path.is_file():
        raise BatchMissingError(f"{path}: batch file does not exist")
    limits = limits or spec.ingest.limits
    if is_parquet(path, limits.format):
        return _read_parquet(path, spec, limits)
    if limits.encoding == "utf-8":
        return _read_csv(path, spec, limits)
    from retrainer import storage

    with storage.scratch("retrainer-delivery-") as tmp:
        try:
            utf8 = _as_utf8(path, limits, tmp / path.name)
        except _Unreadable as exc:
            return _unreadable(exc)
        return _read_csv(utf8, spec, limits)


def _as_utf8(path: Path, limits: Limits, dest: Path) -> Path:
    """A CSV delivery in the spec's declared encoding, written as UTF-8 (what the checks read)."""
    _check_size(path, limits)
    with open(path, "rb") as fh:
        _not_text(fh.read(16), limits.format)
    try:
        with (
            open(path, encoding=limits.encoding, newline="") as src,
            open(dest, "w", encoding="utf-8", newline="") as out,
        ):
            for chunk in iter(lambda: src.read(1 << 20), ""):
                out.write(chunk)
    except UnicodeDecodeError as exc:
        raise _Unreadable(
            f"not {limits.encoding} text (ingest.encoding): {exc.reason}, byte 0x{exc.object[exc.start]:02x}"
        ) from None
    return dest


def _check_size(path: Path, limits: Limits) -> int:
    """The file's size; _Unreadable when it is empty or over the spec's ``ingest.max_file_mb``."""
    size = path.stat().st_size
    if size == 0:
        raise _Unreadable("the file is empty (0 bytes)")
    if size > limits.max_bytes:
        raise _TooLarge(
            f"the file is {size} bytes, more than the {limits.max_bytes} a batch may have (ingest.max_file_mb)"
        )
    return size


def _not_text(head: bytes, declared: str = "auto") -> None:
    """_Unreadable when the first bytes say the file is a compressed, archived or binary format."""
    if head.startswith(b"PAR1"):
        if declared == "csv":
            raise _Unreadable("a Parquet file, but the spec declares CSV deliveries (ingest.format: csv)")
        raise _Unreadable(f"a Parquet file named as CSV: name it {PARQUET_EXTENSION} (or set ingest.format: parquet)")
    for magic, kind in MAGIC:
        if head.startswith(magic):
            raise _Unreadable(f"{kind}, not CSV text: deliver the CSV file itself, uncompressed")


def _read_csv(path: Path, spec: DatasetSpec, limits: Limits) -> BatchTable:
    """A CSV delivery in UTF-8, read as the spec's table, or why it cannot be."""
    try:
        scan = _scan_bytes(path, limits)
    except _Unreadable as exc:
        return _unreadable(exc)
    problems = _header_problems(scan.header, spec, scan)
    if problems:
        return BatchTable(None, problems)
    n_fields = len(next(csv.reader(io.StringIO(scan.header))))
    if scan.cut:
        try:
            last = next(csv.reader([scan.cut.decode("utf-8")]))
        except (csv.Error, StopIteration):
            last = []
        if len(last) < n_fields:
            return BatchTable(
                None,
                [
                    f"the last line (line {scan.lines}) has {len(last)} of {n_fields} fields and no line end:"
                    " the file looks cut off"
                ],
            )
    try:
        df = pd.read_csv(path, dtype=text_columns(spec), encoding="utf-8-sig", skipinitialspace=False)
    except pd.errors.EmptyDataError:
        return BatchTable(None, ["the file holds no columns"])
    except pd.errors.ParserError as exc:
        msg = str(exc).strip().splitlines()[-1]
        m = _TOKENIZE.search(msg)
        if m:
            return BatchTable(None, [f"line {m.group(2)} has {m.group(3)} fields, the header has {m.group(1)}"])
        return BatchTable(None, [f"not readable as CSV: {msg[:200]} (an unbalanced quote?)"])
    except (UnicodeDecodeError, ValueError) as exc:
        return BatchTable(None, [f"not readable as CSV: {str(exc)[:200]}"])
    df.columns = [str(c).strip() for c in df.columns]
    return _table(df, spec, limits)


def _unreadable(exc: _Unreadable) -> BatchTable:
    """No table, and why; a file refused for its size says so (its bytes are not kept)."""
    return BatchTable(None, [str(exc)], too_large=isinstance(exc, _TooLarge))


def _table(df: pd.DataFrame, spec: DatasetSpec, limits: Limits) -> BatchTable:
    """A readable table with what is wrong in it. A header repeated inside the file is named and
    its rows left out (they would read as values that are no numbers); the time column's text is
    kept as written, for reasons that quote it (the checks convert it in place)."""
    problems = []
    repeated = _repeated_headers(df)
    if len(repeated):
        problems.append(
            f"{lines_of(repeated)} repeat{'s' if len(repeated) == 1 else ''} the header (two files joined?)"
        )
        df = df.drop(index=repeated)
    tcol = spec.time_column
    written = df[tcol].astype("string").str.strip() if tcol in df else None
    problems += _value_problems(df, spec, limits)
    return BatchTable(df, problems, written_times=written)


def _repeated_headers(df: pd.DataFrame) -> pd.Index:
    """The rows whose every field is its column's name: the header again, where two files were joined."""
    if df.empty or len(df.columns) == 0:
        return df.index[:0]
    first = df.columns[0]
    found = df.loc[_is_name(df[first], first).to_numpy()]
    for col in df.columns[1:]:
        found = found.loc[_is_name(found[col], col).to_numpy()]
    return found.index


def _is_name(values: pd.Series, name: str) -> pd.Series:
    return values.astype("string").str.strip().eq(name).fillna(False).astype(bool)


def _read_parquet(path: Path, spec: DatasetSpec, limits: Limits) -> BatchTable:
    """A Parquet batch as the same table a CSV delivery gives: every column as text (timestamps
    as ISO 8601, zoned ones in UTC), so the same checks and the same canonical form apply."""
    try:
        size = _check_size(path, limits)
    except _Unreadable as exc:
        return _unreadable(exc)
    with open(path, "rb") as fh:
        head = fh.read(4)
        fh.seek(max(0, size - 4))
        tail = fh.read(4)
    if size < PARQUET_MIN_BYTES or head != b"PAR1" or tail != b"PAR1":
        what = "it does not start with" if head != b"PAR1" else "it does not end with (cut off?)"
        said = (
            "declared Parquet (ingest.format: parquet)" if limits.format == "parquet" else f"named {PARQUET_EXTENSION}"
        )
        return BatchTable(None, [f"{said} but not a Parquet file: {what} the Parquet magic PAR1"])
    try:
        df = parquet_text(path, limits.max_bytes, limits.max_columns)
    except _TooLarge as exc:
        return BatchTable(None, [f"not readable as Parquet: {exc}"], too_large=True)
    except _Unreadable as exc:
        return _unreadable(exc)
    except Exception as exc:  # pyarrow's errors are many and untyped: the reason is its message
        return BatchTable(None, [f"not readable as Parquet: {str(exc).splitlines()[0][:200]}"])
    problems = _header_problems(",".join(f'"{c}"' for c in df.columns), spec)
    if problems:
        return BatchTable(None, problems)
    # typed as a CSV of the same values would be: one path for the checks and the canonical form
    frame = pd.read_csv(io.StringIO(df.to_csv(index=False)), dtype=text_columns(spec))
    return _table(frame, spec, limits)


def parquet_text(path: Path | str, max_bytes: int | None = None, max_columns: int | None = None) -> pd.DataFrame:
    """A Parquet file's columns as text, as a CSV of it would spell them: missing values empty,
    timestamps ISO 8601 (zoned ones converted to naive UTC), numbers as Python writes them (a
    float column of whole numbers as integers: 19, not 19.0). Refused when its schema (the
    footer, read first) has more than ``max_columns`` columns; read in batches, and refused once
    its data in memory passes ``max_bytes`` (a small file may unpack to far more)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    source = pq.ParquetFile(path)
    names = source.schema_arrow.names
    if max_columns is not None and len(names) > max_columns:
        raise _Unreadable(
            f"the Parquet schema has {len(names)} columns, more than the {max_columns} a batch may have"
            " (ingest.max_columns)"
        )
    if len(set(names)) != len(names):
        raise ValueError(f"columns {sorted({c for c in names if names.count(c) > 1})} appear more than once")
    batches, size = [], 0
    for batch in source.iter_batches(batch_size=65_536):
        size += batch.nbytes
        if max_bytes is not None and size > max_bytes:
            raise _TooLarge(f"its data takes more than the {max_bytes} bytes a batch may have (ingest.max_file_mb)")
        batches.append(batch)
    df = pa.Table.from_batches(batches, schema=source.schema_arrow).to_pandas()
    out = {}
    for name in df.columns:
        col = df[name]
        if isinstance(col.dtype, pd.DatetimeTZDtype):
            col = col.dt.tz_convert("UTC").dt.tz_localize(None)
        if pd.api.types.is_datetime64_any_dtype(col.dtype):
            text = col.dt.strftime("%Y-%m-%dT%H:%M:%S")
        elif _whole_floats(col):
            text = col.map(lambda v: str(int(v)), na_action="ignore")
        else:
            text = col.map(lambda v: v if isinstance(v, str) else str(v), na_action="ignore")
        out[str(name)] = text.where(col.notna(), np.nan).astype(object)
    return pd.DataFrame(out)


def _whole_floats(col: pd.Series) -> bool:
    """A float column whose every value is a finite whole number: counts stored as floats."""
    if not pd.api.types.is_float_dtype(col.dtype):
        return False
    values = col.dropna().to_numpy(dtype="float64")
    return bool(np.isfinite(values).all() and (values == np.floor(values)).all())


def text_columns(spec: DatasetSpec) -> dict[str, str]:
    """The columns read as text whatever they look like: the time column and the categories."""
    text = {spec.time_column: "str", **{f.name: "str" for f in spec.categorical_features}}
    if spec.target.task != "regression":  # classes are text: "1" is a class, not a number
        text[spec.target.column] = "str"
    return text


def numeric_columns(spec: DatasetSpec) -> list[str]:
    """The columns that hold numbers: the numeric features and a regression target."""
    return [f.name for f in spec.numeric_features] + ([spec.target.column] if spec.target.task == "regression" else [])


def _value_problems(df: pd.DataFrame, spec: DatasetSpec, limits: Limits) -> list[str]:
    """Values a table can hold that no expectation names well: too long, not numbers, infinite,
    timestamps not ISO 8601. Numbers and timestamps are converted in place (bad ones missing)."""
    problems = []
    for col in df.columns:
        if _is_text(df[col]):
            lengths = df[col].str.len()
            if lengths.max(skipna=True) > limits.max_field_chars:
                long = df.index[lengths > limits.max_field_chars]
                problems.append(
                    f"column '{col}': a value of {int(lengths.max())} characters at {lines_of(long)}"
                    f" (at most {limits.max_field_chars}, ingest.max_field_chars)"
                )
    for col in numeric_columns(spec):
        if col not in df:
            continue
        if _is_text(df[col]):
            converted = pd.to_numeric(df[col].str.strip(), errors="coerce")
            bad = df.index[df[col].notna() & converted.isna()]
            if len(bad):
                problems.append(
                    f"column '{col}': {len(bad)} values are not numbers, e.g. {sample(df[col][bad])} ({lines_of(bad)})"
                )
            df[col] = converted
        if pd.api.types.is_numeric_dtype(df[col]):
            inf = df.index[np.isinf(df[col].to_numpy(dtype="float64", na_value=np.nan))]
            if len(inf):
                problems.append(f"column '{col}': {len(inf)} values are infinite ({lines_of(inf)})")
    tcol = spec.time_column
    if tcol in df:
        problems += _parse_times(df, tcol, spec.time_format)
    return problems


def _is_text(s: pd.Series) -> bool:
    return pd.api.types.is_object_dtype(s) or pd.api.types.is_string_dtype(s)


def parse_times(raw: pd.Series, fmt: str | None, utc: bool) -> pd.Series:
    """Timestamps in the spec's ``time_format`` (ISO 8601 without one, and ISO 8601 too where
    the format does not match: a typed Parquet timestamp is written so); NaT where neither."""
    parsed = pd.to_datetime(raw, errors="coerce", format=fmt or "ISO8601", utc=utc)
    if fmt:
        rest = parsed.isna() & raw.notna()
        if rest.any():
            parsed[rest] = pd.to_datetime(raw[rest], errors="coerce", format="ISO8601", utc=utc)
    return parsed


def _parse_times(df: pd.DataFrame, tcol: str, fmt: str | None = None) -> list[str]:
    raw = df[tcol].astype("string").str.strip()
    present = raw.notna() & (raw != "")
    zoned = raw.str.contains(_ZONE, na=False)
    problems = []
    if zoned.any() and (present & ~zoned).any():
        mixed = df.index[present & ~zoned]
        problems.append(
            f"column '{tcol}': {int(zoned.sum())} timestamps carry a zone and {len(mixed)} do not"
            f" ({lines_of(mixed)}): the naive ones cannot be placed in time"
        )
    parsed = parse_times(raw, fmt, bool(zoned.any()))
    if zoned.any():
        parsed = parsed.dt.tz_convert(None)  # UTC, as the periods are
    bad = df.index[present & parsed.isna()]
    if len(bad):
        hint = _date_order_hint(raw[bad])
        what = f"timestamps in the spec's time_format {fmt!r} (nor ISO 8601)" if fmt else "ISO 8601 timestamps"
        problems.append(
            f"column '{tcol}': {len(bad)} values are not {what}{hint}, e.g. {sample(raw[bad])} ({lines_of(bad)})"
        )
    df[tcol] = parsed
    return problems


def _date_order_hint(values: pd.Series) -> str:
    """A hint for dates written with numbers like 03/14/2011: month-first when a second number
    is over 12, day-first when a first one is, either when no value tells (empty: no such dates)."""
    parts = values.str.extract(_NUMERIC_DATE).dropna().astype(int)
    if parts.empty:
        return ""
    day_first, month_first = bool((parts[0] > 12).any()), bool((parts[1] > 12).any())
    if day_first and month_first:
        return " (day-first and month-first dates mixed?)"
    if day_first or month_first:
        return f" ({'day' if day_first else 'month'}-first dates?)"
    return " (day-first or month-first dates?)"


def period_problems(table: BatchTable, spec: DatasetSpec, period: str) -> list[str]:
    """Timestamps outside the batch's period, quoted as written in the file with their lines.
    The periods are UTC: a value written with another offset is named with it and the UTC
    instant it is (a month delivered in local time reaches into the month before or after)."""
    frame, written, tcol = table.frame, table.written_times, spec.time_column
    if frame is None or written is None or tcol not in frame:
        return []
    times = frame[tcol]
    if not pd.api.types.is_datetime64_any_dtype(times.dtype):
        return []
    start, end = periods.bounds(period, spec.frequency)
    outside = frame.index[(times.notna() & ((times < start) | (times >= end))).to_numpy()]
    if not len(outside):
        return []
    first = outside[0]
    text, offset = str(written[first]), _offset(str(written[first]))
    utc = " in UTC" if offset else ""
    reason = (
        f"column '{tcol}': {len(outside)} timestamps fall outside {period}{utc} ({lines_of(outside)}),"
        f" e.g. {_cut(text)!r} (line {int(first) + 2})"
    )
    if offset:
        instant = times[first].strftime("%Y-%m-%dT%H:%M:%S")
        reason += f": written with offset {offset}, it is {instant} in UTC"
    return [reason]


def _offset(text: str) -> str:
    """The UTC offset a timestamp is written with, when it is not UTC itself; else empty."""
    m = _OFFSET.search(text)
    return m.group(1) if m and m.group(1) not in _UTC_OFFSETS else ""


def canonical_frame(source: Path | str | io.StringIO, spec: DatasetSpec, other: tuple[str, ...] = ()) -> pd.DataFrame:
    """A batch (a delivered file, or a versioned period's CSV text) in the one form a data
    version holds, as text: the time column as naive UTC ISO 8601 (the same instant, one
    spelling), numbers of the spec's numeric columns in their shortest exact spelling
    (``0.240`` and ``0.24`` are one value), the spec's column order, rows in the order of the
    time column and the spec's key (``unique_by``; every column when it has none). Equal
    content gives equal text, whatever the encoding, line ends, column or row order."""
    if not isinstance(source, io.StringIO) and is_parquet(source, spec.ingest.format):
        df = parquet_text(source).fillna("")
    else:
        encoding = "utf-8-sig" if spec.ingest.encoding == "utf-8" else spec.ingest.encoding
        df = pd.read_csv(source, dtype=str, keep_default_na=False, encoding=encoding)
    df.columns = [str(c).strip() for c in df.columns]
    tcol = spec.time_column
    raw = df[tcol].str.strip()
    zoned = bool(raw.str.contains(_ZONE, na=False).any())
    ts = parse_times(raw, spec.time_format, zoned)
    if zoned:
        ts = ts.dt.tz_convert(None)
    df[tcol] = ts.dt.strftime("%Y-%m-%dT%H:%M:%S")
    for col in numeric_columns(spec):
        if col in df:
            df[col] = df[col].map(_number_text)
    first = [spec.time_column, *spec.feature_names, spec.target.column, *other]
    order = [c for c in first if c in df.columns]
    order += sorted(c for c in df.columns if c not in order)
    if spec.ingest.extra_columns == "drop":  # a column the spec does not name is not versioned
        known = {*first, *spec.ingest.other_columns}
        order = [c for c in order if c in known]
    return canonical_order(neutralised(df[order], spec), spec)


def canonical_order(df: pd.DataFrame, spec: DatasetSpec) -> pd.DataFrame:
    """Rows in the order a data version holds them: by the time column and the spec's key
    (every column when it has none), as text."""
    key = [c for c in (spec.time_column, *spec.unique_by) if c in df.columns]
    key += [c for c in df.columns if c not in key] if not spec.unique_by else []
    return df.sort_values(list(dict.fromkeys(key)), kind="stable").reset_index(drop=True)


def _number_text(value: str) -> str:
    """The shortest spelling that reads back as the same float; a value that is no number as it is."""
    stripped = value.strip()
    if not stripped:
        return ""
    try:
        number = float(stripped)
    except ValueError:
        return value
    if not np.isfinite(number):
        return value
    return np.format_float_positional(number, trim="-") if number != 0 else "0"


def write_frame(df: pd.DataFrame, dest: Path, encoding: str = "utf-8") -> Path:
    """A canonical frame as the file a data version holds: UTF-8 without BOM, ``\\n`` line ends."""
    df.to_csv(dest, index=False, lineterminator="\n", encoding=encoding)
    return dest


def write_canonical(path: Path | str, spec: DatasetSpec, dest: Path, other: tuple[str, ...] = ()) -> Path:
    """Write an accepted batch in the one form a data version holds (:func:`canonical_frame`)."""
    return write_frame(canonical_frame(path, spec, other), dest)
