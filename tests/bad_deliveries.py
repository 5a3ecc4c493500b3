"""A catalogue of bad deliveries of one bike sharing month, each with the words its reason must
hold: what broken exports, wrong buttons and hostile callers deliver.

``build(kind, good, home)`` writes the delivery of ``kind`` below ``home/landing`` and returns
the ``batch`` parameter to ingest it with (a path, or a hostile one that must be refused).
``good`` is the month's real rows; ``redelivered`` is a month already versioned (for the
partial re-delivery).
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import random
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

DATASET = "bike_sharing"


@dataclass(frozen=True)
class Bad:
    kind: str
    group: str
    reason: str  # words the quarantine reason (or the refusal) must hold, case-insensitive
    make: Callable[[pd.DataFrame], bytes] | None = None  # the delivered bytes, from the good month
    refused: bool = False  # a hostile path: refused without being read or copied
    kept: bool = True  # its bytes are copied into quarantine (False: a record of it only, too large to copy)
    gx: bool = False  # caught by the expectation suite (not by the checks before it)


def _csv(df: pd.DataFrame, **kw: object) -> bytes:
    out = df.copy()
    if "timestamp" in out and pd.api.types.is_datetime64_any_dtype(out["timestamp"]):
        out["timestamp"] = out["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%S")
    return out.to_csv(index=False, **kw).encode()  # type: ignore[call-overload, no-any-return]


def _with(col: str, fn: Callable[[pd.DataFrame], object]) -> Callable[[pd.DataFrame], bytes]:
    def make(df: pd.DataFrame) -> bytes:
        out = df.copy()
        out[col] = fn(out)
        return _csv(out)

    return make


def _some(col: str, n: int, value: object) -> Callable[[pd.DataFrame], bytes]:
    def make(df: pd.DataFrame) -> bytes:
        out = df.copy()
        s = out[col].astype(object)
        s.iloc[5 : 5 + n] = value
        out[col] = s
        return _csv(out)

    return make


def _drop(col: str) -> Callable[[pd.DataFrame], bytes]:
    return lambda df: _csv(df.drop(columns=[col]))


def _text(fn: Callable[[str], str]) -> Callable[[pd.DataFrame], bytes]:
    return lambda df: fn(_csv(df).decode()).encode()


def _zip(df: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("2011-03.csv", _csv(df))
    return buf.getvalue()


def _parquet(df: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    df.to_parquet(buf)
    return buf.getvalue()


def _garbage(df: pd.DataFrame) -> bytes:
    rng = random.Random(7)  # noqa: S311 - test bytes, not a secret
    return bytes(rng.getrandbits(8) for _ in range(50_000)) + b"\x00"


def _latin1(df: pd.DataFrame) -> bytes:
    out = df.copy()
    out["weathersit"] = out["weathersit"].replace({"Mist": "Brume légère"})
    return _csv(out).decode().encode("latin-1")


def _cut_mid_line(df: pd.DataFrame) -> bytes:
    data = _csv(df)
    cut = data[: int(len(data) * 0.6)]
    if cut.endswith(b"\n"):
        cut = cut[:-3]
    return cut.rsplit(b",", 3)[0]


def _ragged(df: pd.DataFrame) -> bytes:
    lines = _csv(df).decode().splitlines(keepends=True)
    lines[40] = lines[40].rstrip("\n") + ",surplus\n"
    return "".join(lines).encode()


def _unbalanced_quote(df: pd.DataFrame) -> bytes:
    lines = _csv(df).decode().splitlines(keepends=True)
    parts = lines[30].split(",")
    parts[3] = '"' + parts[3]
    lines[30] = ",".join(parts)
    return "".join(lines).encode()


def _dup_header(df: pd.DataFrame) -> bytes:
    text = _csv(df).decode()
    head, rest = text.split("\n", 1)
    return (head.replace(",hum,", ",temp,") + "\n" + rest).encode()


def _times(fmt: Callable[[pd.Series], pd.Series]) -> Callable[[pd.DataFrame], bytes]:
    def make(df: pd.DataFrame) -> bytes:
        out = df.copy()
        out["timestamp"] = fmt(pd.to_datetime(out["timestamp"]))
        return _csv(out)

    return make


def _mixed_zones(ts: pd.Series) -> pd.Series:
    s = ts.dt.strftime("%Y-%m-%dT%H:%M:%S")
    s.iloc[::2] = s.iloc[::2] + "Z"
    return s


def _huge_file(df: pd.DataFrame) -> bytes:
    data = _csv(df)
    row = data.split(b"\n")[1]
    return data + (row + b"\n") * ((65 * 1024 * 1024) // (len(row) + 1))


def _huge_field(df: pd.DataFrame) -> bytes:
    out = df.copy()
    s = out["weathersit"].astype(object)
    s.iloc[3] = "x" * 2_000_000
    out["weathersit"] = s
    return _csv(out)


def _constant(df: pd.DataFrame) -> bytes:
    out = df.copy()
    out["temp"] = 12.5
    return _csv(out)


def _leak(df: pd.DataFrame) -> bytes:
    out = df.copy()
    out["windspeed"] = out["cnt"] / 20
    return _csv(out)


def _copy_target(df: pd.DataFrame) -> bytes:
    out = df.copy()
    out["cnt_copy"] = out["cnt"]
    return _csv(out)


def _unit(df: pd.DataFrame) -> bytes:
    out = df.copy()
    out["hum"] = out["hum"] / 100
    return _csv(out)


def _dup_rows(df: pd.DataFrame) -> bytes:
    return _csv(pd.concat([df, df.iloc[:24]], ignore_index=True))


def _dup_time(df: pd.DataFrame) -> bytes:
    out = df.copy()
    out.loc[10, "timestamp"] = out.loc[11, "timestamp"]
    return _csv(out)


def _two_months(df: pd.DataFrame) -> bytes:
    nxt = df.copy()
    nxt["timestamp"] = pd.to_datetime(nxt["timestamp"]) + pd.DateOffset(months=1)
    return _csv(pd.concat([df, nxt], ignore_index=True))


def _cut_inside_last_field(df: pd.DataFrame) -> bytes:
    """Cut inside the last field of a row near 665: no line end, the count's last digit gone."""
    n = next(i for i in range(665, len(df)) if df["cnt"].iloc[i - 1] >= 10)
    return _csv(df.iloc[:n]).rstrip(b"\n")[:-1]


def _an_hour_late(df: pd.DataFrame) -> bytes:
    out = df.copy()
    ts = pd.to_datetime(out["timestamp"]) + pd.Timedelta(hours=1)
    out["timestamp"] = ts
    return _csv(out[ts.dt.month == ts.iloc[0].month])  # the stray row past the month's end dropped


def _with_offset(ts: pd.Series) -> pd.Series:
    return ts.dt.strftime("%Y-%m-%dT%H:%M:%S") + "+02:00"  # local times, two hours east of UTC


def _wide_header(at_boundary: bool) -> Callable[[pd.DataFrame], bytes]:
    """200,000 more columns in the header (1.7 MB): with ``at_boundary`` the first 64 KiB end
    inside a name."""

    def make(df: pd.DataFrame) -> bytes:
        head, rest = _csv(df).split(b"\n", 1)
        names = b"".join(b",x%07d" % i for i in range(200_000))
        if at_boundary:
            names = b"," + b"y" * ((1 << 16) - len(head) - 1 + 3) + names
        return head + names + b"\n" + rest

    return make


def _trailing_comma(df: pd.DataFrame) -> bytes:
    return b"\n".join(line + b"," if line else line for line in _csv(df).split(b"\n"))


def _repeated_header(df: pd.DataFrame) -> bytes:
    lines = _csv(df).split(b"\n")
    return b"\n".join([*lines[:371], lines[0], *lines[371:]])


def _formula(df: pd.DataFrame) -> bytes:
    out = df.copy()
    s = out["dteday"].astype(object)
    s.iloc[10] = "=cmd|' /C calc'!A0"
    out["dteday"] = s
    return _csv(out)


CATALOGUE: tuple[Bad, ...] = (
    # schema
    Bad("missing feature column", "schema", "column 'temp' is missing", _drop("temp"), gx=True),
    Bad("missing target column", "schema", "column 'cnt' is missing", _drop("cnt"), gx=True),
    Bad("missing time column", "schema", "column 'timestamp' is missing", _drop("timestamp"), gx=True),
    Bad("renamed column", "schema", "unexpected column ['hu']", lambda df: _csv(df.rename(columns={"hum": "hu"}))),
    Bad("extra column", "schema", "unexpected column ['note']", _with("note", lambda df: "ok")),
    Bad("column twice in the header", "schema", "column 'temp' appears 2 times", _dup_header),
    Bad("a trailing comma on every line", "schema", "(a trailing delimiter)", _trailing_comma),
    Bad("the header repeated mid-file", "schema", "line 372 repeats the header", _repeated_header),
    Bad("no header", "schema", "names none of the spec's columns", _text(lambda t: t.split("\n", 1)[1])),
    Bad(
        "another dataset's file",
        "schema",
        "names none of the spec's columns",
        lambda df: b"customer_id,plan,churned\n1,basic,0\n2,pro,1\n",
    ),
    # types
    Bad("text in a numeric column", "types", "column 'temp': 3 values are not numbers", _some("temp", 3, "warm")),
    Bad("numbers in a categorical column", "types", "column 'hr'", _with("hr", lambda df: range(len(df))), gx=True),
    Bad("text in the target", "types", "column 'cnt': 2 values are not numbers", _some("cnt", 2, "many")),
    # ranges
    Bad("below the minimum", "ranges", "column 'windspeed'", _some("windspeed", 4, -5.0), gx=True),
    Bad("above the maximum", "ranges", "column 'hum'", _some("hum", 4, 250.0), gx=True),
    Bad("infinite values", "ranges", "column 'temp': 2 values are infinite", _some("temp", 2, "inf")),
    Bad("negative target", "ranges", "column 'cnt'", _some("cnt", 3, -1), gx=True),
    # nulls
    Bad("missing feature values", "nulls", "column 'temp'", _some("temp", 80, None), gx=True),
    Bad("missing target values", "nulls", "column 'cnt'", _some("cnt", 5, None), gx=True),
    Bad("missing timestamps", "nulls", "column 'timestamp'", _some("timestamp", 5, None), gx=True),
    Bad("a category never filled", "nulls", "column 'weathersit'", _with("weathersit", lambda df: None), gx=True),
    # duplicates
    Bad("duplicated rows", "duplicates", "share a value", _dup_rows, gx=True),
    Bad("duplicated timestamp", "duplicates", "share a value", _dup_time, gx=True),
    # empty, cut off, binary, compressed, encoded
    Bad("empty file", "file", "empty (0 bytes)", lambda df: b""),
    Bad("header only", "file", "row count 0", lambda df: _csv(df.iloc[:0]), gx=True),
    Bad("blank lines only", "file", "no header", lambda df: b"\n\n   \n"),
    Bad("cut off mid-line", "file", "looks cut off", _cut_mid_line),
    Bad("a short month (cut at a line end)", "file", "row count 300", lambda df: _csv(df.iloc[:300]), gx=True),
    Bad("binary garbage", "file", "binary data", _garbage),
    Bad("gzip bytes named .csv", "file", "gzip-compressed", lambda df: gzip.compress(_csv(df))),
    Bad("zip archive named .csv", "file", "zip archive", _zip),
    Bad("bzip2 bytes named .csv", "file", "bzip2-compressed", lambda df: bz2.compress(_csv(df))),
    Bad("xz bytes named .csv", "file", "xz-compressed", lambda df: lzma.compress(_csv(df))),
    Bad("Parquet named .csv", "file", "a parquet file", _parquet),
    Bad("Latin-1 text", "encoding", "not utf-8 text: byte 0xe9", _latin1),
    Bad("UTF-16 text", "encoding", "utf-16", lambda df: _csv(df).decode().encode("utf-16")),
    # delimiters and quoting
    Bad("semicolons", "delimiters", "separated by ';'", lambda df: _csv(df, sep=";")),
    Bad("tabs", "delimiters", "separated by tab", lambda df: _csv(df, sep="\t")),
    Bad("pipes", "delimiters", "separated by '|'", lambda df: _csv(df, sep="|")),
    Bad("a line with a field too many", "delimiters", "line 41 has", _ragged),
    Bad("an unbalanced quote", "delimiters", "not readable as csv", _unbalanced_quote),
    # timestamps
    Bad("day-first dates", "timestamps", "day-first", _times(lambda ts: ts.dt.strftime("%d/%m/%Y %H:%M"))),
    Bad("epoch seconds", "timestamps", "not iso 8601", _times(lambda ts: (ts.astype("int64") // 10**9).astype(str))),
    Bad(
        "another year's month",
        "timestamps",
        "column 'timestamp'",
        _times(lambda ts: (ts + pd.DateOffset(years=1)).dt.strftime("%Y-%m-%dT%H:%M:%S")),
        gx=True,
    ),
    Bad("zoned and naive timestamps mixed", "timestamps", "carry a zone", _times(_mixed_zones)),
    Bad("month-first dates", "timestamps", "(month-first dates?)", _times(lambda ts: ts.dt.strftime("%m/%d/%Y %H:%M"))),
    Bad("local times with their offset", "timestamps", "written with offset +02:00", _times(_with_offset)),
    # complete periods
    Bad("a month cut at a line end (624 rows)", "periods", "incomplete (coverage)", lambda df: _csv(df.iloc[:624])),
    Bad(
        "a month cut inside its last field", "periods", "has no line end: it was cut off there", _cut_inside_last_field
    ),
    # columns that agree
    Bad("every row an hour late", "relations", "column 'hr' disagrees with hour(timestamp)", _an_hour_late),
    Bad(
        "the target filled from one of its parts",
        "relations",
        "relation 'cnt = casual + registered' does not hold",
        _with("cnt", lambda df: df["registered"]),
    ),
    # a plausible target
    Bad("a target of zeros", "target", "target 'cnt' is 0 in 100.0% of rows", _with("cnt", lambda df: 0)),
    # kept columns
    Bad("a spreadsheet formula in a kept column", "kept columns", "a spreadsheet would run as a formula", _formula),
    # sizes
    Bad("a file over the size limit", "sizes", "more than the", _huge_file, kept=False),
    Bad("a 200,000-column header", "sizes", "the header line is longer than", _wide_header(at_boundary=False)),
    Bad(
        "a 200,000-column header, its first 64 KiB ending inside a name",
        "sizes",
        "the header line is longer than",
        _wide_header(at_boundary=True),
    ),
    Bad("a 2 MB field", "sizes", "a value of 2000000 characters", _huge_field),
    Bad("two months in one file", "sizes", "row count", _two_months, gx=True),
    # leaks, unit changes, constant features
    Bad("a feature that is the target", "leaks", "feature 'windspeed' is correlated with the target", _leak),
    Bad("a copy of the target", "leaks", "unexpected column ['cnt_copy']", _copy_target),
    Bad("humidity as a fraction", "units", "column 'hum': its values spread", _unit),
    Bad("a feature constant all month", "units", "column 'temp' holds one value", _constant),
    # re-deliveries (of the month versioned before)
    Bad("a partial re-delivery", "re-deliveries", "differs from it: 25 missing", None),
    Bad("a re-delivery with changed values", "re-deliveries", "differs from it: 3 changed", None),
    # hostile paths: refused, never read or copied
    Bad("a system file", "paths", "outside the landing location", None, refused=True),
    Bad("a link to a system file", "paths", "leads to /etc/passwd", None, refused=True),
    Bad("a path that climbs out", "paths", "outside the landing location", None, refused=True),
    Bad("a folder", "paths", "not a regular file", None, refused=True),
    Bad("a named pipe", "paths", "not a regular file", None, refused=True),
    Bad("a file that is not there", "paths", "does not exist", None, refused=True),
)


def build(bad: Bad, good: pd.DataFrame, redelivered: pd.DataFrame, home: Path, index: int) -> tuple[str, str]:
    """Deliver ``bad`` below ``home/landing/bike_sharing``: the ``batch`` to ingest it with, and
    its period (``good``'s, or ``redelivered``'s for the partial re-delivery)."""
    landing = home / "landing" / DATASET
    landing.mkdir(parents=True, exist_ok=True)
    period = str(pd.to_datetime(good["timestamp"]).iloc[0])[:7]
    name = landing / f"{period}.bad{index:02d}.csv"
    if bad.kind == "a partial re-delivery":
        period = str(pd.to_datetime(redelivered["timestamp"]).iloc[0])[:7]
        name = landing / f"{period}.bad{index:02d}.csv"
        name.write_bytes(_csv(redelivered.iloc[:-25]))  # still enough rows for a month
    elif bad.kind == "a re-delivery with changed values":  # every row there, three counts different
        period = str(pd.to_datetime(redelivered["timestamp"]).iloc[0])[:7]
        name = landing / f"{period}.bad{index:02d}.csv"
        changed = redelivered.copy()
        changed.loc[changed.index[[10, 200, 400]], "cnt"] += 7
        name.write_bytes(_csv(changed))
    elif bad.kind == "a system file":
        return "/etc/hosts", period
    elif bad.kind == "a link to a system file":
        if not name.is_symlink():
            name.symlink_to("/etc/passwd")
    elif bad.kind == "a path that climbs out":
        return str(landing / ".." / ".." / ".." / ".." / ".." / ".." / ".." / "etc" / "hosts"), period
    elif bad.kind == "a folder":
        name.mkdir(exist_ok=True)
    elif bad.kind == "a file that is not there":
        name.unlink(missing_ok=True)
    elif bad.kind == "a named pipe":
        if not name.exists():
            os.mkfifo(name)
    else:
        assert bad.make is not None
        name.write_bytes(bad.make(good))
    return str(name), period
