"""What a delivered file is before any expectation runs (retrainer.data.batchfile), the checks against
the versioned data (retrainer.data.batchchecks) on the catalogue of bad deliveries, and the one form
a data version holds. The whole catalogue runs through ``ingest_batch`` in
tests/integration/test_bad_deliveries.py; here, every kind the checks before the suite catch,
without Great Expectations."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from retrainer.data.batchchecks import Reference, column_problems, leak_problems, reference_problems
from retrainer.data.batchfile import canonical_frame, read_delivery, write_canonical
from retrainer.data.demo_data import load_bike_sharing, split_periods, write_batch
from retrainer.data.validation import REFUSED, check_redelivery, file_md5
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
    df = found.frame
    checks = column_problems(df, spec) + leak_problems(df, spec) + reference_problems(df, spec, period, ref)
    _, notes = check_redelivery(path, spec, period, ref)
    return found.problems + checks + [n.removeprefix(REFUSED) for n in notes if n.startswith(REFUSED)]


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
