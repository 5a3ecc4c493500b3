"""Sample files read without a spec: text columns, the encoding tried in turn, Parquet as CSV
spells it, and timestamps in ISO 8601 or a day-first or month-first spelling."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from retrainer.data.batchfile import DataFileError
from retrainer.data.samples import read_sample, read_times


def test_a_csv_in_windows_1252_is_read_as_text(tmp_path: Path) -> None:
    path = tmp_path / "2024-03.csv"
    pd.DataFrame({"store": ["Zürich", "Genève"], "n": ["01", "2"]}).to_csv(path, index=False, encoding="cp1252")
    sample = read_sample(path)
    assert sample.encoding == "cp1252" and sample.period_in_name == "2024-03"
    assert sample.frame["store"].tolist() == ["Zürich", "Genève"] and sample.frame["n"].tolist() == ["01", "2"]


def test_parquet_is_read_as_its_csv_would_be(tmp_path: Path) -> None:
    path = tmp_path / "export.parquet"
    pd.DataFrame({"at": pd.to_datetime(["2024-01-01 10:00"]), "x": [1.5]}).to_parquet(path)
    sample = read_sample(path)
    assert sample.encoding == "" and sample.period_in_name is None
    assert sample.frame.to_dict("records") == [{"at": "2024-01-01T10:00:00", "x": "1.5"}]


def test_what_is_no_sample_says_why(tmp_path: Path) -> None:
    with pytest.raises(DataFileError, match="no such file"):
        read_sample(tmp_path / "missing.csv")
    (tmp_path / "bad.parquet").write_bytes(b"not parquet")
    with pytest.raises(DataFileError, match="not readable as Parquet"):
        read_sample(tmp_path / "bad.parquet")


@pytest.mark.parametrize(
    ("values", "fmt", "zoned", "first"),
    [
        (["2024-03-05T14:00:00", "2024-03-05T15:30:00"], None, False, "2024-03-05 14:00"),
        (["2024-03-05T14:00:00Z", "2024-03-05T16:30:00+01:00"], None, True, "2024-03-05 14:00"),
        (["25/03/2024 14:00", "05/04/2024 09:30"], "%d/%m/%Y %H:%M", False, "2024-03-25 14:00"),
        (["03/25/2024", "04/05/2024"], "%m/%d/%Y", False, "2024-03-25 00:00"),
    ],
)
def test_timestamps_are_read_in_the_first_spelling_that_reads_them_all(
    values: list[str], fmt: str | None, zoned: bool, first: str
) -> None:
    times = read_times(pd.Series(values), "at")
    assert times.time_format == fmt and times.zoned == zoned
    assert times.values.iloc[0].strftime("%Y-%m-%d %H:%M") == first


def test_timestamps_in_no_known_spelling_say_which(tmp_path: Path) -> None:
    with pytest.raises(DataFileError, match=r"column 'at': timestamps in no known spelling, e\.g\. 'soon'"):
        read_times(pd.Series(["2024-01-01", "soon"]), "at")
