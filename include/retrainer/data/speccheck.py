"""A spec checked against sample deliveries before the stack sees them: each file goes through
the ingest validation (``validate_file``) as if delivered in the order given, each judged
against the files accepted before it as the versioned data, and nothing is versioned,
quarantined or written anywhere but a scratch folder (``python -m retrainer spec check
--against``). A file whose name gives no period and whose rows span several is judged a
period at a time, as the batches it would be delivered as."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from retrainer import periods, storage
from retrainer.data.batchchecks import Reference, reference_periods
from retrainer.data.batchfile import DataFileError, canonical_frame, is_parquet, parse_times, write_frame
from retrainer.data.samples import read_sample
from retrainer.data.validation import validate_file
from retrainer.data.versioning import period_frame
from retrainer.spec.dataset import DatasetSpec

#: what the reference of a check is called in the reasons (where a real ingest names a data version)
EARLIER = "the files accepted before it"


@dataclass
class Verdict:
    """What ingest would do with one delivery (or one period of a file)."""

    source: str
    period: str
    n_rows: int
    accepted: bool
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def render(self) -> str:
        head = f"{self.source} ({self.period}, {self.n_rows} rows): "
        if self.accepted:
            noted = "".join(f"\n    note: {n}" for n in self.notes)
            return head + "would be versioned" + noted
        return head + "would be QUARANTINED:" + "".join(f"\n    - {f}" for f in self.failures)


def check_files(spec: DatasetSpec, files: Sequence[Path | str]) -> list[Verdict]:
    """What ingest would do with each file, delivered in the order given."""
    accepted: dict[str, pd.DataFrame] = {}
    texts: dict[str, str] = {}
    verdicts = []
    with storage.scratch("retrainer-speccheck-") as scratch:
        for path in map(Path, files):
            for part, period, source in _batches(path, spec, scratch):
                if period is None:
                    verdicts.append(Verdict(source, "?", 0, False, [part]))
                    continue
                verdicts.append(_judge(spec, Path(part), period, source, accepted, texts, scratch))
    return verdicts


def _batches(path: Path, spec: DatasetSpec, scratch: Path) -> list[tuple[str, str | None, str]]:
    """(file, period, source) of each batch a file is: itself, with the period its name gives or
    its rows fall in, or one file per period its rows span; (reason, None, source) when no
    period can be told."""
    head = path.name.split(".", 1)[0]
    if periods.frequency_of(head):
        try:
            return [(str(path), periods.check(head, spec.frequency), str(path))]
        except periods.PeriodError as exc:
            return [(f"its name gives the period {head!r}, but {exc}", None, str(path))]
    try:
        sample = read_sample(path)
    except DataFileError as exc:
        return [(str(exc), None, str(path))]
    if spec.time_column not in sample.frame:
        columns = ", ".join(map(str, sample.frame.columns[:20]))
        return [
            (f"no column '{spec.time_column}' (the spec's time_column) to tell its period: {columns}", None, str(path))
        ]
    raw = sample.frame[spec.time_column].astype("string").str.strip()
    zoned = bool(raw.str.contains(r"(?:Z|[+-]\d{2}:?\d{2})$", na=False).any())
    times = parse_times(raw, spec.time_format, zoned)
    if zoned:
        times = times.dt.tz_convert(None)
    labels = periods.labels(times, spec.frequency).where(times.notna())
    found = sorted(labels.dropna().unique())
    if len(found) <= 1:
        return [(str(path), found[0] if found else "?", str(path))]
    out = []
    as_parquet = is_parquet(path, spec.ingest.format)
    for period in found:
        rows = sample.frame[(labels == period).to_numpy()]
        part = scratch / f"{path.stem}.{period}.{'parquet' if as_parquet else 'csv'}"
        if as_parquet:
            rows.to_parquet(part, index=False)
        else:
            rows.to_csv(part, index=False, encoding=sample.encoding or "utf-8")
        out.append((str(part), period, f"{path} rows of {period}"))
    return out


def _judge(
    spec: DatasetSpec,
    path: Path,
    period: str,
    source: str,
    accepted: dict[str, pd.DataFrame],
    texts: dict[str, str],
    scratch: Path,
) -> Verdict:
    if period == "?":
        return Verdict(source, period, 0, False, [f"no row's '{spec.time_column}' is a timestamp: no period to judge"])
    season = accepted.get(periods.a_year_before(period, spec.frequency))
    ref = Reference(
        EARLIER,
        {p: accepted[p] for p in reference_periods(list(accepted), period)},
        {period: texts[period]} if period in texts else {},
        season,
    )
    if period in accepted:
        ref.periods[period] = accepted[period]
    report = validate_file(path, spec, period, source=source, reference=ref)
    if report.success:
        canonical = write_frame(canonical_frame(path, spec, spec.ingest.other_columns), scratch / f"{period}.csv")
        texts[period] = canonical.read_text()
        accepted[period] = period_frame(spec, texts[period])
    return Verdict(source, period, report.n_rows, report.success, report.failures, report.notes)
