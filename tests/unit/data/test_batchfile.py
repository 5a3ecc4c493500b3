"""What a delivered file is before any expectation runs (retrainer.data.batchfile), the checks against
the versioned data (retrainer.data.batchchecks) on the catalogue of bad deliveries, and the one form
a data version holds. The whole catalogue runs through ``ingest_batch`` in
tests/integration/test_bad_deliveries.py; here, every kind the checks before the suite catch,
without Great Expectations."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from retrainer.data.batchchecks import Reference
from retrainer.data.batchfile import canonical_frame, read_delivery, write_canonical
from retrainer.data.demo_data import load_bike_sharing, split_periods, write_batch
from retrainer.data.validation import REFUSED, check_redelivery, checks_beyond_the_suite, file_md5
from retrainer.settings import Settings
from retrainer.spec.dataset import DatasetSpec
from tests.bad_deliveries import CATALOGUE, Bad, build


@pytest.fixture(scope="module")
def months(bike_spec: DatasetSpec) -> dict[str, pd.DataFrame]:
    return split_periods(load_bike_sharing(), bike_spec)


def _problems(path: Path, spec: DatasetSpec, period: str, ref: Reference) -> list[str]:
    found = read_delivery(path, spec, spec.ingest.limits)
    if found.frame is None:
        return found.problems
    checks = checks_beyond_the_suite(found, found.frame, spec, period, path, ref)
    _, notes = check_redelivery(path, spec, period, ref)
    return [p for check in checks for p in check] + [n.removeprefix(REFUSED) for n in notes if n.startswith(REFUSED)]


def _versioned(frame: pd.DataFrame, spec: DatasetSpec, tmp_path: Path) -> str:
    """A period as a data version holds it (canonical text)."""
    path = write_batch(frame, spec, tmp_path / "versioned" / "period.csv")
    return canonical_frame(path, spec, spec.ingest.other_columns).to_csv(index=False, lineterminator="\n")


BEFORE_THE_SUITE = [b for b in CATALOGUE if not b.gx and not b.refused]


@pytest.mark.parametrize("bad", BEFORE_THE_SUITE, ids=[b.kind for b in BEFORE_THE_SUITE])
def test_a_bad_delivery_is_named_before_the_suite_runs(
    bad: Bad, months: dict[str, pd.DataFrame], bike_spec: DatasetSpec, tmp_path: Path
) -> None:
    batch, period = build(bad, months["2011-03"], months["2011-02"], tmp_path, CATALOGUE.index(bad))
    texts = {"2011-02": _versioned(months["2011-02"], bike_spec, tmp_path)}
    ref = Reference("v0002", {"2011-01": months["2011-01"], "2011-02": months["2011-02"]}, texts)
    problems = _problems(Path(batch), bike_spec, period, ref)
    assert any(bad.reason.lower() in p.lower() for p in problems), problems
    assert all(len(p) < 1000 for p in problems), "a reason repeats a field whole"


def test_good_months_raise_nothing(months: dict[str, pd.DataFrame], bike_spec: DatasetSpec, tmp_path: Path) -> None:
    """Every real month against the three before it: no false alarm from the checks."""
    names = list(months)
    for i, period in enumerate(names):
        path = write_batch(months[period], bike_spec, tmp_path / f"{period}.csv")
        ref = Reference("v", {p: months[p] for p in names[max(0, i - 3) : i]})
        assert _problems(path, bike_spec, period, ref) == [], period


def test_one_form_of_the_same_data(months: dict[str, pd.DataFrame], bike_spec: DatasetSpec, tmp_path: Path) -> None:
    """BOM, CRLF, another column order and zoned UTC timestamps: the same bytes once written
    in the form a data version holds; the form of a plain delivery is the delivery itself."""
    df = months["2011-03"]
    plain = write_batch(df, bike_spec, tmp_path / "plain.csv")
    other = df[list(reversed(df.columns))].copy()
    other["timestamp"] = pd.to_datetime(other["timestamp"]).dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    odd = tmp_path / "odd.csv"
    odd.write_bytes(b"\xef\xbb\xbf" + other.to_csv(index=False, lineterminator="\r\n").encode())
    a = write_canonical(plain, bike_spec, tmp_path / "a.csv", bike_spec.ingest.other_columns)
    b = write_canonical(odd, bike_spec, tmp_path / "b.csv", bike_spec.ingest.other_columns)
    assert file_md5(a) == file_md5(b)
    assert pd.read_csv(a).columns[0] == "timestamp"
    assert read_delivery(odd, bike_spec).problems == []


def test_a_parquet_delivery_is_the_same_data_as_its_csv(
    months: dict[str, pd.DataFrame], bike_spec: DatasetSpec, tmp_path: Path
) -> None:
    """Parquet, chosen by the extension: read as the same table, with the same checks, and
    versioned in the same one form, zoned timestamps included; a Parquet file cut off, or CSV
    named .parquet, is named for what it is."""
    from dataclasses import replace

    from retrainer.data.landing import route

    df = months["2011-03"].copy()
    plain = write_batch(df, bike_spec, tmp_path / "2011-03.csv")
    df["timestamp"] = pd.to_datetime(df["timestamp"]).dt.tz_localize("UTC").dt.tz_convert("Europe/Paris")
    parquet = tmp_path / "2011-03.parquet"
    df.to_parquet(parquet)
    found = read_delivery(parquet, bike_spec, bike_spec.ingest.limits)
    assert found.problems == [] and found.frame is not None
    assert found.frame["timestamp"].iloc[0] == pd.Timestamp("2011-03-01T00:00:00")  # the same instant, in UTC
    assert _problems(parquet, bike_spec, "2011-03", Reference("v", {})) == []
    a = write_canonical(plain, bike_spec, tmp_path / "a.csv", bike_spec.ingest.other_columns)
    b = write_canonical(parquet, bike_spec, tmp_path / "b.csv", bike_spec.ingest.other_columns)
    assert file_md5(a) == file_md5(b)
    # a value that is no number is named as in a CSV delivery
    df["hum"] = df["hum"].astype(str)  # a text column in the Parquet schema
    df.loc[df.index[3], "hum"] = "high"
    df.to_parquet(bad := tmp_path / "bad.parquet")
    assert read_delivery(bad, bike_spec).problems == ["column 'hum': 1 values are not numbers, e.g. ['high'] (line 5)"]
    cut = tmp_path / "cut.parquet"
    cut.write_bytes(parquet.read_bytes()[:-100])
    assert "it does not end with (cut off?) the Parquet magic" in read_delivery(cut, bike_spec).problems[0]
    tiny = tmp_path / "tiny.parquet"
    tiny.write_bytes(b"PAR1")
    assert "not a Parquet file" in read_delivery(tiny, bike_spec).problems[0]
    small = replace(bike_spec.ingest.limits, max_bytes=parquet.stat().st_size)  # the file fits, its data not
    assert read_delivery(parquet, bike_spec, small).problems == [
        f"not readable as Parquet: its data takes more than the {small.max_bytes} bytes a batch may have"
        " (ingest.max_file_mb)"
    ]
    fake = tmp_path / "fake.parquet"
    fake.write_bytes(plain.read_bytes())
    assert read_delivery(fake, bike_spec).problems == [
        "named .parquet but not a Parquet file: it does not start with the Parquet magic PAR1"
    ]
    specs = str(Path(bike_spec.source_path).parent)
    settings = Settings.from_env({"RETRAINER_HOME": str(tmp_path), "RETRAINER_SPECS_DIR": specs})
    assert route("bike_sharing/2011-03.parquet", settings).period == "2011-03"


def test_a_declared_format_is_read_whatever_the_name(
    months: dict[str, pd.DataFrame], bike_spec: DatasetSpec, tmp_path: Path
) -> None:
    """``ingest.format: parquet`` reads a ``.csv``-named Parquet file as Parquet (and versions it
    in the one form); ``csv`` names a Parquet file as not what the spec declares; ``auto``
    names a Parquet file delivered as .csv and says how to deliver it."""
    from dataclasses import replace

    df = months["2011-03"]
    plain = write_batch(df, bike_spec, tmp_path / "plain.csv")
    pq_as_csv = tmp_path / "2011-03.csv"
    df.to_parquet(pq_as_csv)
    as_parquet = replace(bike_spec, ingest=replace(bike_spec.ingest, format="parquet"))
    found = read_delivery(pq_as_csv, as_parquet, as_parquet.ingest.limits)
    assert found.problems == [] and found.frame is not None and len(found.frame) == len(df)
    a = write_canonical(plain, bike_spec, tmp_path / "a.csv", bike_spec.ingest.other_columns)
    b = write_canonical(pq_as_csv, as_parquet, tmp_path / "b.csv", bike_spec.ingest.other_columns)
    assert file_md5(a) == file_md5(b)
    assert read_delivery(plain, as_parquet, as_parquet.ingest.limits).problems == [
        "declared Parquet (ingest.format: parquet) but not a Parquet file: it does not start with the Parquet magic"
        " PAR1"
    ]
    assert read_delivery(pq_as_csv, bike_spec, bike_spec.ingest.limits).problems == [
        "a Parquet file named as CSV: name it .parquet (or set ingest.format: parquet)"
    ]
    as_csv = replace(bike_spec, ingest=replace(bike_spec.ingest, format="csv"))
    pq = tmp_path / "2011-03.parquet"
    df.to_parquet(pq)
    assert read_delivery(pq, as_csv, as_csv.ingest.limits).problems == [
        "a Parquet file, but the spec declares CSV deliveries (ingest.format: csv)"
    ]


@pytest.mark.parametrize(
    ("check", "bad"),
    [
        ("constant_feature", "a feature constant all month"),
        ("target_leak", "a feature that is the target"),
        ("unit_change", "humidity as a fraction"),
    ],
)
def test_each_check_against_the_versioned_data_can_be_turned_off(
    check: str, bad: str, months: dict[str, pd.DataFrame], bike_spec: DatasetSpec, tmp_path: Path
) -> None:
    from dataclasses import replace

    from retrainer.spec.intake import INGEST_CHECKS

    kind = next(b for b in CATALOGUE if b.kind == bad)
    batch, period = build(kind, months["2011-03"], months["2011-02"], tmp_path, CATALOGUE.index(kind))
    ref = Reference("v0002", {"2011-01": months["2011-01"], "2011-02": months["2011-02"]})
    assert any(kind.reason.lower() in p.lower() for p in _problems(Path(batch), bike_spec, period, ref))
    off = replace(bike_spec, ingest=replace(bike_spec.ingest, checks=tuple(c for c in INGEST_CHECKS if c != check)))
    assert not any(kind.reason.lower() in p.lower() for p in _problems(Path(batch), off, period, ref))


def test_a_declared_encoding_is_read_and_versioned_as_utf8(
    months: dict[str, pd.DataFrame], bike_spec: DatasetSpec, tmp_path: Path
) -> None:
    """ingest.encoding: a Latin-1 or UTF-16 delivery is read in that encoding and versioned as
    the same UTF-8 form; bytes the declared encoding has no character for are named."""
    from dataclasses import replace

    df = months["2011-03"]
    plain = write_batch(df, bike_spec, tmp_path / "plain.csv")
    want = file_md5(write_canonical(plain, bike_spec, tmp_path / "want.csv", bike_spec.ingest.other_columns))
    text = plain.read_text()
    for encoding in ("latin-1", "utf-16", "cp1252"):
        spec = replace(bike_spec, ingest=replace(bike_spec.ingest, encoding=encoding))
        delivered = tmp_path / f"{encoding}.csv"
        delivered.write_bytes(text.encode(encoding))
        found = read_delivery(delivered, spec, spec.ingest.limits)
        assert found.problems == [] and found.frame is not None and len(found.frame) == len(df), encoding
        got = write_canonical(delivered, spec, tmp_path / f"{encoding}.out.csv", spec.ingest.other_columns)
        assert file_md5(got) == want, encoding
    assert (
        "deliver UTF-8 (or declare ingest.encoding: utf-16)"
        in read_delivery(tmp_path / "utf-16.csv", bike_spec).problems[0]
    )
    broken = tmp_path / "broken.csv"
    broken.write_bytes(text.encode("cp1252").replace(b"Clear", b"Cl\x81ar", 1))
    cp1252 = replace(bike_spec, ingest=replace(bike_spec.ingest, encoding="cp1252"))
    problems = read_delivery(broken, cp1252, cp1252.ingest.limits).problems
    assert problems == ["not cp1252 text (ingest.encoding): character maps to <undefined>, byte 0x81"]


def test_a_declared_time_format_is_honoured(
    months: dict[str, pd.DataFrame], bike_spec: DatasetSpec, tmp_path: Path
) -> None:
    """time_format: day-first timestamps are read as the spec says, versioned as ISO 8601 (the
    same data version as an ISO delivery); a value in neither form is named with the format."""
    from dataclasses import replace

    df = months["2011-03"].copy()
    plain = write_batch(df, bike_spec, tmp_path / "plain.csv")
    want = file_md5(write_canonical(plain, bike_spec, tmp_path / "want.csv", bike_spec.ingest.other_columns))
    spec = replace(bike_spec, time_format="%d/%m/%Y %H:%M")
    df["timestamp"] = pd.to_datetime(df["timestamp"]).dt.strftime("%d/%m/%Y %H:%M")
    dayfirst = tmp_path / "dayfirst.csv"
    df.to_csv(dayfirst, index=False)
    assert "(day-first dates?)" in read_delivery(dayfirst, bike_spec).problems[0]
    found = read_delivery(dayfirst, spec)
    assert found.problems == [] and found.frame is not None
    assert found.frame["timestamp"].iloc[13] == pd.Timestamp("2011-03-01T13:00:00")
    assert file_md5(write_canonical(dayfirst, spec, tmp_path / "got.csv", spec.ingest.other_columns)) == want
    df.loc[df.index[2], "timestamp"] = "March 1st"
    df.to_csv(bad := tmp_path / "bad.csv", index=False)
    assert read_delivery(bad, spec).problems == [
        "column 'timestamp': 1 values are not timestamps in the spec's time_format '%d/%m/%Y %H:%M' (nor ISO 8601),"
        " e.g. ['March 1st'] (line 4)"
    ]


def test_zoned_timestamps_are_read_as_utc(
    months: dict[str, pd.DataFrame], bike_spec: DatasetSpec, tmp_path: Path
) -> None:
    df = months["2011-03"].copy()
    df["timestamp"] = (pd.to_datetime(df["timestamp"]) + pd.Timedelta(hours=1)).dt.strftime("%Y-%m-%dT%H:%M:%S+01:00")
    path = tmp_path / "zoned.csv"
    path.write_bytes(df.to_csv(index=False).encode())
    found = read_delivery(path, bike_spec)
    assert found.problems == [] and found.frame is not None
    assert found.frame["timestamp"].iloc[0] == pd.Timestamp(months["2011-03"]["timestamp"].iloc[0])


def test_messages_are_capped_in_values_and_items() -> None:
    from retrainer.data.batchfile import MAX_REASONS, capped, sample

    assert sample(["x" * 5000, "x" * 5000, "y"]) == repr(["x" * 40 + "...(5000 chars)", "y"])  # each value once
    many = [f"column 'c{i}': missing" for i in range(45)]
    shown = capped(many, "s3://bucket/validation/x.json")
    assert len(shown) == MAX_REASONS == 20 and shown[:19] == many[:19]
    assert shown[-1] == "and 26 more (all in s3://bucket/validation/x.json)"
    assert capped(many[:20]) == many[:20]


def test_a_header_over_the_limits_is_refused_before_anything_parses_it(
    months: dict[str, pd.DataFrame], bike_spec: DatasetSpec, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """200,000 column names (1.7 MB of header), with the limit's end between names or inside
    one: refused naming the limit before the table reader sees the file; a header within it but
    of too many columns is refused naming the count (a ',' inside quotes is part of a name)."""
    from dataclasses import replace

    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("the file was parsed")

    header, rows = write_batch(months["2011-03"], bike_spec, tmp_path / "good.csv").read_text().split("\n", 1)
    names = ",".join(f"extra_column_{i}" for i in range(200_000))
    with monkeypatch.context() as patched:
        patched.setattr(pd, "read_csv", never)
        for shift in ("", "x"):  # the 64 KiB window ends at another place in the names
            wide = tmp_path / f"wide{shift}.csv"
            wide.write_text(f"{shift}{header},{names}\n{rows}")
            (problem,) = read_delivery(wide, bike_spec).problems
            assert problem.startswith(
                "the header line is longer than 65536 bytes (ingest.max_header_kb 64): its first 65536 bytes hold"
            )
            assert problem.endswith(
                " commas and no line end; a header of that many columns, or a file without line ends?"
            )
        many = tmp_path / "many.csv"
        many.write_text(f"{header},{','.join(f'c{i}' for i in range(1200))}\n{rows}")
        assert read_delivery(many, bike_spec).problems == [
            "the header has 1215 columns, more than the 1000 a batch may have (ingest.max_columns)"
        ]
    quoted = tmp_path / "quoted.csv"
    quoted.write_text(f'{header},"a, b, c"\n{rows}')
    tight = replace(bike_spec.ingest.limits, max_columns=16)  # 15 columns and one quoted name
    assert not any("ingest.max_columns" in p for p in read_delivery(quoted, bike_spec, tight).problems)
    assert read_delivery(quoted, bike_spec, replace(tight, max_columns=15)).problems == [
        "the header has 16 columns, more than the 15 a batch may have (ingest.max_columns)"
    ]


def test_a_parquet_schema_of_too_many_columns_is_refused_before_a_row_is_read(
    months: dict[str, pd.DataFrame], bike_spec: DatasetSpec, tmp_path: Path
) -> None:
    df = months["2011-03"].iloc[:10].copy()
    wide = pd.concat([df, pd.DataFrame({f"c{i}": range(10) for i in range(1000)}, index=df.index)], axis=1)
    wide.to_parquet(path := tmp_path / "wide.parquet")
    assert read_delivery(path, bike_spec).problems == [
        "the Parquet schema has 1015 columns, more than the 1000 a batch may have (ingest.max_columns)"
    ]


def test_a_file_refused_for_its_size_says_so(
    months: dict[str, pd.DataFrame], bike_spec: DatasetSpec, tmp_path: Path
) -> None:
    """Over ingest.max_file_mb, as a file or as Parquet data in memory: flagged, so the quarantine
    keeps a record of it instead of its bytes; any other refusal keeps them."""
    from dataclasses import replace

    plain = write_batch(months["2011-03"], bike_spec, tmp_path / "2011-03.csv")
    small = replace(bike_spec.ingest.limits, max_bytes=1000)
    found = read_delivery(plain, bike_spec, small)
    assert found.too_large and found.problems == [
        f"the file is {plain.stat().st_size} bytes, more than the 1000 a batch may have (ingest.max_file_mb)"
    ]
    months["2011-03"].to_parquet(parquet := tmp_path / "2011-03.parquet")
    assert read_delivery(parquet, bike_spec, replace(small, max_bytes=parquet.stat().st_size)).too_large
    (tmp_path / "empty.csv").write_bytes(b"")
    assert not read_delivery(tmp_path / "empty.csv", bike_spec).too_large


def test_a_missing_batch_is_refused_naming_its_path(bike_spec: DatasetSpec, tmp_path: Path) -> None:
    from retrainer.data.batchfile import BatchMissingError, DataFileError
    from retrainer.outcomes import Refused

    with pytest.raises(BatchMissingError, match=r"nope\.csv: batch file does not exist") as err:
        read_delivery(tmp_path / "nope.csv", bike_spec)
    assert isinstance(err.value, Refused) and isinstance(err.value, DataFileError)


def test_a_trailing_delimiter_is_named_as_the_cause(
    months: dict[str, pd.DataFrame], bike_spec: DatasetSpec, tmp_path: Path
) -> None:
    """Every line ends with ',': named as such, not as an unnamed column and its effects; a
    column without a name that holds values stays an unnamed column."""
    text = write_batch(months["2011-03"], bike_spec, tmp_path / "good.csv").read_text()
    rows = len(months["2011-03"])
    trailing = tmp_path / "trailing.csv"
    trailing.write_text(text.replace("\n", ",\n"))
    assert read_delivery(trailing, bike_spec).problems == [
        f"every line ends with a ',' (a trailing delimiter): the header and all {rows} rows, read as an unnamed"
        " column with no values; deliver the lines without it"
    ]
    crlf = tmp_path / "crlf.csv"
    crlf.write_bytes(text.replace("\n", ",\r\n").encode())
    assert read_delivery(crlf, bike_spec).problems[0].startswith("every line ends with a ',' (a trailing delimiter)")
    header, body = text.split("\n", 1)
    unnamed = tmp_path / "unnamed.csv"
    unnamed.write_text(header + ",\n" + body.replace("\n", ",x\n"))
    assert read_delivery(unnamed, bike_spec).problems == ["the header has 1 unnamed column"]


def test_a_header_repeated_inside_the_file_is_named_with_its_line(
    months: dict[str, pd.DataFrame], bike_spec: DatasetSpec, tmp_path: Path
) -> None:
    lines = write_batch(months["2011-03"], bike_spec, tmp_path / "good.csv").read_text().splitlines(keepends=True)
    joined = [*lines[:371], lines[0], *lines[371:], lines[0]]  # two files joined, and a third
    path = tmp_path / "joined.csv"
    path.write_text("".join(joined))
    found = read_delivery(path, bike_spec)
    assert found.problems == ["lines 372, 733 repeat the header (two files joined?)"]
    assert found.frame is not None and len(found.frame) == len(months["2011-03"])
    path.write_text("".join([*lines[:371], lines[0], *lines[371:]]))
    assert read_delivery(path, bike_spec).problems == ["line 372 repeats the header (two files joined?)"]


@pytest.mark.parametrize(
    ("spelling", "rows", "hint"),
    [
        ("%m/%d/%Y %H:%M", None, "(month-first dates?)"),  # 03/14/2011: the second number is over 12
        ("%d/%m/%Y %H:%M", None, "(day-first dates?)"),  # 14/03/2011: the first one is
        ("%m/%d/%Y %H:%M", 200, "(day-first or month-first dates?)"),  # up to 03/09/2011: nothing tells
    ],
)
def test_dates_that_are_not_iso_8601_are_named_by_the_order_they_show(
    spelling: str,
    rows: int | None,
    hint: str,
    months: dict[str, pd.DataFrame],
    bike_spec: DatasetSpec,
    tmp_path: Path,
) -> None:
    df = months["2011-03"].iloc[:rows].copy()
    df["timestamp"] = pd.to_datetime(df["timestamp"]).dt.strftime(spelling)
    df.to_csv(path := tmp_path / "dates.csv", index=False)
    (problem,) = read_delivery(path, bike_spec).problems
    assert problem.startswith(f"column 'timestamp': {len(df)} values are not ISO 8601 timestamps {hint}, e.g. [")


def test_timestamps_outside_the_period_are_quoted_as_written(
    months: dict[str, pd.DataFrame], bike_spec: DatasetSpec, tmp_path: Path
) -> None:
    """A month written in local time (+02:00) reaches into the month before in UTC: the reason
    quotes the value as written, its line, the offset and the instant in UTC."""
    from retrainer.data.batchfile import period_problems

    df = months["2011-04"].copy()
    df["timestamp"] = pd.to_datetime(df["timestamp"]).dt.strftime("%Y-%m-%dT%H:%M:%S+02:00")
    df.to_csv(zoned := tmp_path / "zoned.csv", index=False)
    found = read_delivery(zoned, bike_spec)
    assert found.problems == []
    assert period_problems(found, bike_spec, "2011-04") == [
        "column 'timestamp': 2 timestamps fall outside 2011-04 in UTC (lines 2, 3), e.g."
        " '2011-04-01T00:00:00+02:00' (line 2): written with offset +02:00, it is 2011-03-31T22:00:00 in UTC"
    ]
    naive = write_batch(months["2011-04"], bike_spec, tmp_path / "naive.csv")
    found = read_delivery(naive, bike_spec)
    assert period_problems(found, bike_spec, "2011-04") == []
    assert period_problems(found, bike_spec, "2011-05")[0].startswith(
        f"column 'timestamp': {len(df)} timestamps fall outside 2011-05 (lines 2, 3, 4, 5, 6 and"
    )
    assert period_problems(found, bike_spec, "2011-05")[0].endswith(", e.g. '2011-04-01T00:00:00' (line 2)")


def test_whole_numbers_stored_as_floats_in_parquet_are_the_same_data_as_the_csv(
    months: dict[str, pd.DataFrame], bike_spec: DatasetSpec, tmp_path: Path
) -> None:
    """Counts as floats (19.0 for 19) read as the CSV spells them; a float column with a
    fraction keeps its decimals."""
    from retrainer.data.batchfile import parquet_text

    df = months["2011-03"]
    plain = write_batch(df, bike_spec, tmp_path / "2011-03.csv")
    floats = df.copy()
    for col in ("cnt", "casual", "registered"):
        floats[col] = floats[col].astype("float64")
    floats.loc[floats.index[4], "casual"] = None
    floats.to_parquet(parquet := tmp_path / "2011-03.parquet")
    text = parquet_text(parquet)
    assert text["cnt"].iloc[0] == str(int(df["cnt"].iloc[0])) and pd.isna(text["casual"].iloc[4])
    assert text["temp"].iloc[0] == str(df["temp"].iloc[0])  # not whole: as Python writes it
    floats.loc[floats.index[4], "casual"] = df["casual"].iloc[4]
    floats.to_parquet(parquet)
    a = write_canonical(plain, bike_spec, tmp_path / "a.csv", bike_spec.ingest.other_columns)
    b = write_canonical(parquet, bike_spec, tmp_path / "b.csv", bike_spec.ingest.other_columns)
    assert file_md5(a) == file_md5(b)
