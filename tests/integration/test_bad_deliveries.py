"""The catalogue of bad deliveries (tests/bad_deliveries.py) through ``ingest_batch``: each is
quarantined with a reason that names its cause, or (a hostile path) refused without being
read or copied; none becomes a data version, so none reaches training; the next good batch
is versioned, and a re-encoding of it (BOM, CRLF line ends, other column order, timestamps
with a zone) is that same version, not a new one.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from retrainer.data.demo_data import load_bike_sharing, split_periods, write_batch
from retrainer.data.validation import file_md5
from retrainer.data.versioning import DataRegistry
from retrainer.pipeline.ingest import DELIVERY_RECORD
from retrainer.settings import Settings
from retrainer_dev.stacks.specs import small_bike_spec
from tests.bad_deliveries import CATALOGUE, DATASET, build
from tests.reliability.conftest import record, record_delivery

pytestmark = [pytest.mark.integration, pytest.mark.reliability]


def _quarantined(settings: Settings) -> dict[str, dict[str, Any]]:
    """Every complete quarantine folder: its validation result, by folder."""
    root = Path(settings.quarantine) / DATASET
    return {str(p.parent): json.loads(p.read_text()) for p in root.glob("*/*/validation.json")}


def _reencoded(df: pd.DataFrame) -> bytes:
    """The same month as another producer writes it: UTF-8 with BOM, CRLF, columns reversed,
    timestamps in UTC with a zone written out."""
    out = df[list(reversed(df.columns))].copy()
    out["timestamp"] = pd.to_datetime(out["timestamp"]).dt.strftime("%Y-%m-%dT%H:%M:%S+00:00")
    return b"\xef\xbb\xbf" + out.to_csv(index=False, lineterminator="\r\n").encode()


def test_every_bad_delivery_is_stopped_with_its_reason(
    make_pipeline: Any, home: Path, monkeypatch: Any, caplog: pytest.LogCaptureFixture
) -> None:
    small_bike_spec(home / "specs")
    monkeypatch.setenv("RETRAINER_SPECS_DIR", str(home / "specs"))
    settings = Settings.from_env()
    spec = settings.load_spec(DATASET)
    parts = split_periods(load_bike_sharing(), spec)
    landing = Path(settings.landing) / DATASET
    pipe = make_pipeline(2031)
    for period in ("2011-01", "2011-02"):
        batch = write_batch(parts[period], spec, landing / f"{period}.csv")
        assert pipe.ingest(DATASET, period, batch).state == "success"
    registry = DataRegistry(settings)
    versions = [v.tag for v in registry.versions(DATASET)]
    assert len(versions) == 2

    missed: list[str] = []
    for i, bad in enumerate(CATALOGUE):
        batch, period = build(bad, parts["2011-03"], parts["2011-02"], home, i)
        before = _quarantined(settings)
        caplog.clear()
        run = pipe.ingest(DATASET, period, Path(batch))
        log = caplog.text  # what the run's tasks logged
        new = {k: v for k, v in _quarantined(settings).items() if k not in before}
        if run.state != "failed":
            missed.append(f"{bad.kind}: the run {run.state}")
            continue
        if bad.refused:
            # refused before reading: nothing copied, the reason in the task's log
            if new or run.states.get("validate_batch") != "failed" or bad.reason not in log:
                missed.append(f"{bad.kind}: not refused as expected ({run.states}, {len(new)} quarantined)")
            said = next((line for line in log.splitlines() if bad.reason in line), "(not in the log)")
            record_delivery(bad.kind, bad.group, re.sub(r"^[A-Z]+\s+\S+:\d+\s+", "", said))  # no logger prefix
            kept = [p.read_text(errors="replace") for p in Path(settings.quarantine).rglob("*") if p.is_file()]
            assert not any("root:x:0:0" in text for text in kept), "a system file was copied"
            continue
        if len(new) != 1 or run.states.get("quarantine_batch") != "failed":
            missed.append(f"{bad.kind}: {len(new)} quarantine folders, tasks {run.states}")
            continue
        ((folder, result),) = new.items()
        reasons = "; ".join(result["failures"])
        record_delivery(
            bad.kind, bad.group, next((f for f in result["failures"] if bad.reason.lower() in f.lower()), reasons)
        )
        copied = [p for p in Path(folder).iterdir() if p.name != "validation.json"]
        if bad.reason.lower() not in reasons.lower():
            missed.append(f"{bad.kind}: reason {reasons[:300]!r} lacks {bad.reason!r}")
        if not bad.kept:  # too large to copy: a record of its bytes (name, size, hash, reason) instead
            kept = json.loads((Path(folder) / DELIVERY_RECORD).read_text()) if copied else {}
            if [p.name for p in copied] != [DELIVERY_RECORD] or kept.get("md5") != file_md5(batch):
                missed.append(f"{bad.kind}: not kept as a record only in {folder}: {[p.name for p in copied]}")
        elif len(copied) != 1 or file_md5(copied[0]) != file_md5(batch):
            missed.append(f"{bad.kind}: the delivered bytes are not kept in {folder}")
        if len(reasons) > 4000 or len(log) > 200_000:
            missed.append(f"{bad.kind}: reason of {len(reasons)} chars, log of {len(log)}: a field repeated whole?")
        if bad.reason.lower() not in log.lower():
            missed.append(f"{bad.kind}: the reason is not in the task log")
    assert [v.tag for v in DataRegistry(settings).versions(DATASET)] == versions, "a bad delivery was versioned"

    # the next good batch goes through; the same data re-encoded is that version, announced once
    good = pipe.ingest(DATASET, "2011-03", write_batch(parts["2011-03"], spec, landing / "2011-03.csv"))
    assert good.state == "success" and good.values["version_batch"]["created"]
    again_path = landing / "2011-03.reencoded.csv"
    again_path.write_bytes(_reencoded(parts["2011-03"]))
    again = pipe.ingest(DATASET, "2011-03", again_path)
    assert again.state == "success", again.states
    assert not again.values["version_batch"]["created"] and again.states["publish"] == "skipped"
    counts = ("casual", "registered", "cnt")  # as Parquet, the counts typed as floats (19.0 for 19)
    floats = parts["2011-03"].astype({c: "float64" for c in counts})
    floats.to_parquet(floats_path := landing / "2011-03.floats.parquet")
    as_floats = pipe.ingest(DATASET, "2011-03", floats_path)
    assert as_floats.state == "success" and not as_floats.values["version_batch"]["created"], as_floats.states
    assert len(DataRegistry(settings).versions(DATASET)) == 3
    record(
        f"bad deliveries through ingest_batch ({len(CATALOGUE)} kinds)",
        len(CATALOGUE),
        len(CATALOGUE) - len(missed),
        0,
        "each quarantined with its reason and its bytes (a file too large: a record of them), or (paths"
        " outside the landing, a file not there) refused unread; none versioned; the next good month"
        " versioned, its re-encoding and its Parquet with counts as floats the same version",
    )
    assert not missed, "\n".join(missed)
