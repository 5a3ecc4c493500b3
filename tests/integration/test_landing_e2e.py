"""Batches start their own ingest (embedded default): watch_landing routes each landed file by
its path and starts one ingest_batch run per delivered bytes; a file that names no dataset
and period is refused, quarantined with the reason, and stops nothing else."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from retrainer.data.demo_data import load_bike_sharing, split_periods, write_batch
from retrainer.data.versioning import DataRegistry
from retrainer.settings import Settings
from retrainer_dev.runner import RunOutcome, run_triggered

pytestmark = pytest.mark.integration


def _landed_runs(prefix: str = "landed__") -> list[str]:
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        ids = session.scalars(select(DagRun.run_id).where(DagRun.dag_id == "ingest_batch")).all()
    return sorted(i for i in ids if i.startswith(prefix))


def test_deliveries_start_their_own_ingest(
    make_pipeline: Any, home: Path, bike_batches: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    incoming = home / "incoming"
    monkeypatch.setenv("RETRAINER_LANDING", str(incoming))
    settings = Settings.from_env()
    spec = settings.load_spec("bike_sharing")
    parts = split_periods(load_bike_sharing(), spec)
    for period in ("2011-01", "2011-02"):
        write_batch(parts[period], spec, incoming / "bike_sharing" / f"{period}.csv")
    write_batch(parts["2011-03"], spec, incoming / "bike_sharing" / "2011-13.csv")  # no such month
    write_batch(parts["2011-03"], spec, incoming / "no_such_dataset" / "2011-03.csv")
    pipe = make_pipeline(2081)
    before = set(_landed_runs())

    def watch() -> RunOutcome:
        return pipe.run("watch_landing")

    first = watch()
    assert first.states["wait_for_deliveries"] == "success"
    scan = first.values["wait_for_deliveries"]
    assert sorted((d["dataset"], d["period"]) for d in scan["deliveries"]) == [
        ("bike_sharing", "2011-01"),
        ("bike_sharing", "2011-02"),
    ]
    # the refused files stop nothing else, and say why
    assert first.states["refuse_unroutable"] == "failed" and first.state == "failed"
    refused = sorted((incoming.parent / "quarantine" / "_unroutable").glob("*/reason.json"))
    reasons = sorted(json.loads(p.read_text())["reason"] for p in refused)
    assert len(reasons) == 2
    assert "'bike_sharing/2011-13.csv': the file name does not start with a monthly period (YYYY-MM" in reasons[0]
    assert "no dataset spec named 'no_such_dataset'" in reasons[1]
    started = sorted(set(_landed_runs()) - before)
    assert len(started) == 2 and all(r.startswith("landed__bike_sharing__2011-0") for r in started)
    for run_id in started:  # what the scheduler does with the runs start_ingest queued
        assert run_triggered(pipe.dags["ingest_batch"], run_id, pipe.log).state == "success"
    labels = [v.label for v in DataRegistry(settings).versions("bike_sharing")]
    assert labels == ["v0001", "v0002"]

    # nothing new: the same bytes (even rewritten) start nothing, refused files are not refused twice
    path = incoming / "bike_sharing" / "2011-02.csv"
    path.write_bytes(path.read_bytes())
    again = watch()
    assert again.states["wait_for_deliveries"] == "skipped", again.states
    assert set(_landed_runs()) - before == set(started)

    # new bytes for a period are a new delivery: one more run. A versioned month that comes
    # back changed is refused by default (ingest.redelivery: reject), saying what changed; once
    # the spec lets corrections replace a month, the same run makes a new data version
    changed = pd.read_csv(path)
    changed.loc[0, "cnt"] = int(changed.loc[0, "cnt"]) + 1  # one more casual rider: the parts still add up
    changed.loc[0, "casual"] = int(changed.loc[0, "casual"]) + 1
    changed.to_csv(path, index=False)
    third = watch()
    new = sorted(set(_landed_runs()) - before - set(started))
    assert len(new) == 1 and new[0].startswith("landed__bike_sharing__2011-02__"), third.states
    refused = run_triggered(pipe.dags["ingest_batch"], new[0], pipe.log)
    assert refused.states["quarantine_batch"] == "failed"
    (reason,) = refused.values["validate_batch"]["failures"]
    assert "2011-02 is versioned already (v0002" in reason
    assert "1 changed (e.g. timestamp=2011-02-01T00:00:00: cnt" in reason
    spec_file = settings.spec_path("bike_sharing")
    raw = yaml.safe_load(spec_file.read_text())
    raw["ingest"]["redelivery"] = "replace"
    spec_file.write_text(yaml.safe_dump(raw))
    assert run_triggered(pipe.dags["ingest_batch"], new[0], pipe.log).state == "success"
    assert [v.label for v in DataRegistry(settings).versions("bike_sharing")] == ["v0001", "v0002", "v0003"]


def test_quarantined_deliveries_are_judged_again_once_the_spec_allows_them(
    make_pipeline: Any, home: Path, bike_batches: dict[str, Path]
) -> None:
    """A calm month (windspeed 0 throughout) is quarantined as a feature gone constant; once the
    spec switches that check off for windspeed, one rerun_quarantined run judges it again and it
    is versioned; run again, with the same spec, it starts nothing."""
    settings = Settings.from_env()
    spec = settings.load_spec("bike_sharing")
    pipe = make_pipeline(2095)
    for period in ("2011-01", "2011-02"):
        assert pipe.ingest("bike_sharing", period, bike_batches[period]).state == "success"
    calm = split_periods(load_bike_sharing(), spec)["2011-03"].assign(windspeed=0.0)
    landed = write_batch(calm, spec, home / "landing" / "bike_sharing" / "2011-03.csv")
    refused = pipe.ingest("bike_sharing", "2011-03", landed)
    assert refused.states["quarantine_batch"] == "failed"
    assert any("column 'windspeed' holds one value" in f for f in refused.values["validate_batch"]["failures"])

    spec_file = Path(spec.source_path)
    data = yaml.safe_load(spec_file.read_text())
    data["features"]["windspeed"]["checks"] = {"constant_feature": False}  # a calm month happens
    spec_file.write_text(yaml.safe_dump(data))
    planned = pipe.run("rerun_quarantined", {"dataset": "bike_sharing"})
    assert planned.state == "success", planned.states
    (run_id,) = _landed_runs("rerun__")
    assert run_id.startswith("rerun__bike_sharing__2011-03__") and planned.values["plan_reruns"][0]["conf"] == {
        "dataset": "bike_sharing",
        "period": "2011-03",
        "batch": str(landed),  # the delivery where it landed, its bytes unchanged
    }
    judged = run_triggered(pipe.dags["ingest_batch"], run_id, pipe.log)
    assert judged.state == "success" and judged.values["version_batch"]["data_version"] == "v0003"

    again = pipe.run("rerun_quarantined", {"dataset": "bike_sharing"})  # 2011-03 is versioned now
    assert again.states["plan_reruns"] == "skipped"
    named = pipe.run("rerun_quarantined", {"dataset": "bike_sharing", "period": "2011-03"})
    assert named.states["plan_reruns"] == "success" and _landed_runs("rerun__") == [run_id]  # the same spec: no new run
