"""``make demo``: the bike sharing months through real Airflow DAG runs, then a table.

The UCI Bike Sharing data lands as monthly batches. The first ``--history`` months are the
initial history (validated and versioned; no model yet); the first model is trained
when the history is in, and from then on every accepted month starts ``retrain_model``. A
corrupted re-delivery of a real month (temperatures in Fahrenheit, duplicated hours,
missing weather) lands before the good copy and must be quarantined; 2011-07, whose
weather column is 10.6% missing in the source data, fails the spec's 10% limit.

Each batch is one ``ingest_batch`` run and each retraining one ``retrain_model`` run,
executed by Airflow (``dag.test``) against the embedded default under ``RETRAINER_HOME``.
Run ids are fixed by the batch's period, so running the demo again re-runs the same DAG
runs and every task finds what it made the first time: no duplicate anything.
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from retrainer.records import (
    BatchValidation,
    DriftCheck,
    Evaluation,
    Promotion,
    RegisteredVersion,
    RetrainRequest,
    TrainedRun,
    VersionedBatch,
)
from retrainer_dev import localenv
from retrainer_dev.runner import RunOutcome, load_dags, outcome_of, quiet, run_dag, run_triggered

DATASET = "bike_sharing"
CORRUPT_PERIOD = "2012-06"


@dataclass
class Row:
    period: str
    note: str
    validation: str = ""
    data_version: str = "-"
    retrained: str = "no"
    model_version: str = "-"
    metric: str = "-"
    promoted: str = "-"
    drift: str = "-"
    times: dict[str, float] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)


def _ensure_airflow_db() -> None:
    db = Path(localenv.local_env()["AIRFLOW_HOME"]) / "airflow.db"
    if db.exists():
        return
    print("Creating the Airflow metadata database (SQLite, once) ...", flush=True)
    localenv.setup_airflow()


def _deliveries(history: int, months: int | None) -> list[tuple[str, Path, str]]:
    from retrainer.data.demo_data import corrupt_copy, load_bike_sharing, split_periods, write_batch
    from retrainer.settings import Settings

    settings = Settings.from_env()
    spec = settings.load_spec(DATASET)
    parts = split_periods(load_bike_sharing(), spec)
    periods = list(parts)[: months or None]
    landing = Path(settings.landing) / DATASET
    out: list[tuple[str, Path, str]] = []
    for i, period in enumerate(periods):
        if period == CORRUPT_PERIOD:
            bad = write_batch(corrupt_copy(parts[period], spec), spec, landing / f"{period}.redelivery.csv")
            out.append((period, bad, "corrupted re-delivery"))
        note = "history" if i < history else ""
        out.append((period, write_batch(parts[period], spec, landing / f"{period}.csv"), note))
    return out


def _fmt_metric(ev: Evaluation | None) -> str:
    if ev is None:
        return "-"
    vs = f"champion {ev.champion:.1f}" if ev.champion is not None else f"baseline {ev.baseline:.1f}"
    return f"{ev.metric} {ev.candidate:.1f} vs {vs}"


def _fmt_drift(check: DriftCheck | None) -> str:
    from retrainer.model.evaluation import worse_by

    if check is None or check.status != "checked":
        return check.status if check else "-"
    fired = [k for k, v in check.signals.items() if v]
    drop = check.performance_drop or 0.0
    what = "+".join(fired) if fired else "none"
    return f"{what}; {check.metric or 'score'} {worse_by(drop)}"


def _print_table(rows: list[Row]) -> None:
    headers = [
        "batch",
        "validation",
        "data ver",
        "drift check",
        "retrained",
        "model",
        "metric vs champion",
        "promoted",
        "time per stage (s)",
    ]
    table = [
        [
            f"{r.period} {r.note}".strip(),
            r.validation,
            r.data_version,
            r.drift,
            r.retrained,
            r.model_version,
            r.metric,
            r.promoted,
            " ".join(f"{k} {v:.1f}" for k, v in r.times.items()),
        ]
        for r in rows
    ]
    widths = [max(len(h), *(len(row[i]) for row in table)) for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    print(line)
    print("-" * len(line))
    for row in table:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))


STAGE_NAMES = {
    "validate_batch": "validate",
    "version_batch": "version",
    "publish": "publish",
    "wait_for_drift": "drift",
    "quarantine_batch": "quarantine",
    "validate_window": "gx",
    "train": "train",
    "evaluate": "eval",
    "register": "register",
    "promote": "promote",
    "deploy": "deploy",
    "verify": "verify",
}


def _stage_times(run: RunOutcome) -> dict[str, float]:
    """Seconds per stage that ran (tasks skipped before they started are left out), in DAG order."""
    return {name: run.durations[task] for task, name in STAGE_NAMES.items() if run.durations.get(task)}


class Demo:
    """Drives the DAGs over the deliveries, one table row per batch."""

    def __init__(self, dags: dict[str, Any], log_file: Path, history_end: str | None) -> None:
        from retrainer.settings import Settings

        self.dags = dags
        self.log_file = log_file
        self.history_end = history_end
        self.settings = Settings.from_env()
        self.t_start = time.monotonic()
        self.seen: dict[str, int] = {}
        self.frequency = self.settings.load_spec(DATASET).frequency
        self.step = timedelta(0)

    def say(self, what: str) -> None:
        print(f"[{time.monotonic() - self.t_start:6.1f}s] {what}".rstrip(), flush=True)

    def batch(self, period: str, path: Path, note: str) -> Row:
        """Ingest one delivery; then the first training, or a drift check (and a retraining)."""
        from retrainer import periods

        row = Row(period, note)
        self.say(f"ingest_batch  {period} {note}")
        # the run is dated at the end of the batch's period; a second delivery of it a sixteenth of
        # a period later, its drift check and retraining later still, all before the next period's
        start, end = periods.bounds(period, self.frequency)
        self.step = (end - start) / 16
        logical = end.replace(tzinfo=UTC) + self.step * self.seen.get(period, 0)
        self.seen[period] = self.seen.get(period, 0) + 1
        run = run_dag(
            self.dags["ingest_batch"],
            logical,
            {"dataset": DATASET, "period": period, "batch": str(path)},
            self.log_file,
        )
        row.times.update(_stage_times(run))
        validation = BatchValidation.from_json(run.values["validate_batch"]) if "validate_batch" in run.values else None
        if validation is None or not validation.success:
            row.failures = validation.failures if validation else [f"ingest run {run.state}"]
            row.validation = f"QUARANTINED ({len(row.failures)} failed)"
            return row
        row.validation = "passed"
        row.data_version = VersionedBatch.from_json(run.values["version_batch"]).data_version
        if note == "history" and period != self.history_end:
            row.retrained = "no (history)"
            return row
        retrain = self.first_model(row, logical) if period == self.history_end else self.monitor(row, logical)
        if retrain is not None:
            _fill_retraining(row, retrain)
        return row

    def first_model(self, row: Row, logical: datetime) -> RunOutcome:
        """The first model: nothing serves yet, so no drift to measure."""
        row.drift = "(first model)"
        self.say(f"retrain_model {row.period} data {row.data_version}")
        conf = {"dataset": DATASET, "data_version": row.data_version, "reason": "first model after the history"}
        return run_dag(self.dags["retrain_model"], logical + 8 * self.step, conf, self.log_file)

    def monitor(self, row: Row, logical: datetime) -> RunOutcome | None:
        """monitor_drift on the new data version, and the retraining it starts, if any."""
        from retrainer.pipeline.monitor import recorded_check

        self.say(f"monitor_drift {row.period} data {row.data_version}")
        conf = {"dataset": DATASET, "data_version": row.data_version}
        monitor = run_dag(self.dags["monitor_drift"], logical + 4 * self.step, conf, self.log_file)
        row.times.update(_stage_times(monitor))
        check = recorded_check(self.settings, DATASET, monitor.dag_id, monitor.run_id)
        row.drift = _fmt_drift(check)
        started = monitor.values.get("start_retraining")
        if not started:
            fired = check is not None and any(check.signals.values())
            row.retrained = "no (drift, no drop)" if fired else "no (no drift)"
            return None
        run_id = RetrainRequest.from_json(started).run_id
        if monitor.states.get("trigger_retrain") == "success":
            self.say(f"retrain_model {run_id}")
            return run_triggered(self.dags["retrain_model"], run_id, self.log_file)
        return outcome_of("retrain_model", run_id)  # this data version's retraining exists already (a rerun)


def _fill_retraining(row: Row, run: RunOutcome) -> None:
    """The retraining's columns of a row, from what its tasks returned."""
    values = run.values
    row.times.update(_stage_times(run))
    if "train" not in values:
        row.retrained = f"failed ({run.state})" if run.state != "success" else "skipped"
        return
    row.retrained = "yes (rerun: reused)" if TrainedRun.from_json(values["train"]).reused else "yes"
    if "register" in values:
        row.model_version = f"v{RegisteredVersion.from_json(values['register']).version}"
    row.metric = _fmt_metric(Evaluation.from_json(values["evaluate"]) if "evaluate" in values else None)
    promoted = Promotion.from_json(values["promote"]) if "promote" in values else None
    if promoted is not None and promoted.promoted:
        row.promoted = f"yes, {'deployed+verified' if 'verify' in values else 'NOT deployed'}"
    else:
        row.promoted = "no (lost the gate)"
    if run.state != "success":
        row.promoted += f"; run {run.state}"


def _summary(rows: list[Row], elapsed: float, log_file: Path) -> None:
    from retrainer.settings import Settings

    settings = Settings.from_env()
    print()
    _print_table(rows)
    quarantined = [r for r in rows if r.validation.startswith("QUARANTINED")]
    print()
    print(
        f"{len(rows)} batches, {len(quarantined)} quarantined, "
        f"{sum(r.retrained.startswith('yes') for r in rows)} retrainings, pipeline time {elapsed:.0f} s."
    )
    for r in quarantined:
        print(f"  quarantined {r.period} {r.note}".rstrip() + ":")
        for failure in r.failures:
            print(f"    - {failure}")
    env = localenv.local_env()
    print()
    print("Where to look next:")
    for what, where in [
        ("web UIs", "make up  (Airflow on :8080 and MLflow on :5000; it prints the URLs and the login)"),
        ("MLflow store", env["MLFLOW_TRACKING_URI"]),
        ("model store", settings.model_store),
        ("quarantine", settings.quarantine),
        ("validation results", settings.validation_results),
        ("data versions", f"git -C {settings.data_registry} log --oneline --decorate"),
        ("task logs", f"in the Airflow UI (make up: a run's grid, a task, Logs); {env['AIRFLOW_HOME']}/logs"),
        ("demo output", str(log_file)),
    ]:
        print(f"  {what:<20} {where}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--history", type=int, default=12, help="months of initial history (default 12)")
    parser.add_argument("--months", type=int, default=None, help="stop after this many months (default: all 24)")
    args = parser.parse_args(argv)

    localenv.apply()
    # no triggerer here: the drift sensor looks once at each month instead of waiting
    os.environ.update(RETRAINER_DRIFT_DEFERRABLE="false", RETRAINER_DRIFT_WAIT_S="0", RETRAINER_DRIFT_POKE_S="1")
    log_file = Path(os.environ["RETRAINER_HOME"]) / "demo.log"
    _ensure_airflow_db()
    logging.basicConfig(filename=log_file, level=logging.INFO, force=True)
    print(f"State: {os.environ['RETRAINER_HOME']}  (Airflow log of this demo: {log_file})")
    deliveries = _deliveries(args.history, args.months)
    with quiet(log_file):
        dags = load_dags()
    history = [p for p, _, n in deliveries if n == "history"]
    demo = Demo(dags, log_file, history[-1] if history else None)
    rows = [demo.batch(period, path, note) for period, path, note in deliveries]
    _summary(rows, time.monotonic() - demo.t_start, log_file)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
