"""Sample deliveries read without a spec: what drafting a spec and checking one against files
start from. A sample is read as text (CSV in UTF-8, else Windows-1252, else Latin-1; Parquet
as a CSV of it would spell it), with the same missing values a delivery has."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from retrainer import periods
from retrainer.data.batchfile import DataFileError, is_parquet, parquet_text, parse_times

#: the encodings a sample CSV is tried in, in order (Latin-1 reads any bytes)
ENCODINGS = ("utf-8", "cp1252", "latin-1")
#: day-first and month-first spellings tried when the timestamps are not ISO 8601
TIME_FORMATS = (
    "%d/%m/%Y %H:%M:%S",
    "%d/%m/%Y %H:%M",
    "%d/%m/%Y",
    "%m/%d/%Y %H:%M:%S",
    "%m/%d/%Y %H:%M",
    "%m/%d/%Y",
    "%d.%m.%Y %H:%M",
    "%d.%m.%Y",
    "%Y%m%d",
    "%Y/%m/%d %H:%M",
    "%Y/%m/%d",
)
_ZONE = re.compile(r"(?:Z|[+-]\d{2}:?\d{2})$")


@dataclass
class Sample:
    """A sample file as text columns, with the encoding it was read in ("" for Parquet)."""

    path: Path
    frame: pd.DataFrame
    encoding: str

    @property
    def period_in_name(self) -> str | None:
        """The period the file's name gives (``2011-06.csv``, ``2011-06.fix.csv``), if any."""
        head = self.path.name.split(".", 1)[0]
        return head if periods.frequency_of(head) else None


def read_sample(path: Path | str) -> Sample:
    """A CSV or Parquet file as text columns; DataFileError if it is neither."""
    path = Path(path)
    if not path.is_file():
        raise DataFileError(f"{path}: no such file")
    if is_parquet(path):
        try:
            text = parquet_text(path).to_csv(index=False)
        except Exception as exc:  # pyarrow's errors are many and untyped: the reason is its message
            raise DataFileError(f"{path}: not readable as Parquet: {str(exc).splitlines()[0][:200]}") from exc
        return Sample(path, pd.read_csv(io.StringIO(text), dtype=str), "")
    for encoding in ENCODINGS:
        try:
            frame = pd.read_csv(path, dtype=str, encoding="utf-8-sig" if encoding == "utf-8" else encoding)
        except UnicodeDecodeError:
            continue
        except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
            raise DataFileError(f"{path}: not readable as CSV: {str(exc).strip().splitlines()[-1][:200]}") from exc
        frame.columns = [str(c).strip() for c in frame.columns]
        return Sample(path, frame, encoding)
    raise DataFileError(f"{path}: not text in {', '.join(ENCODINGS)}")  # latin-1 reads any bytes: not reached


@dataclass(frozen=True)
class Times:
    """A time column read: the instants (naive UTC), the spec's ``time_format`` (None: ISO 8601)
    and whether the spellings carry a zone."""

    values: pd.Series
    time_format: str | None
    zoned: bool


def read_times(raw: pd.Series, column: str) -> Times:
    """The instants of a time column: ISO 8601, else the first of ``TIME_FORMATS`` that reads
    every value (day-first before month-first where both do: say which in the draft)."""
    text = raw.dropna().astype(str).str.strip()
    if text.empty:
        raise DataFileError(f"column '{column}' holds no timestamps")
    zoned = bool(text.str.contains(_ZONE).any())
    for fmt in (None, *TIME_FORMATS):
        # a format must read every value itself (parse_times would fall back to ISO 8601)
        parsed = (
            parse_times(text, None, zoned)
            if fmt is None
            else pd.to_datetime(text, errors="coerce", format=fmt, utc=zoned)
        )
        if parsed.notna().all():
            values = parsed.dt.tz_convert(None) if zoned else parsed
            return Times(values.reindex(raw.index), fmt, zoned)
    bad = text[parse_times(text, None, zoned).isna()]
    raise DataFileError(
        f"column '{column}': timestamps in no known spelling, e.g. {bad.iloc[0]!r}: give --time-format"
        " (strftime codes, e.g. '%d/%m/%Y %H:%M')"
    )
