"""Clearing any task of a finished run, under the real scheduler, duplicates nothing.

An operator who clears a task in the Airflow UI (or with ``airflow tasks clear``) makes the
scheduler run it, and with it its downstream, again inside the same DAG run. Each rerun
must find what the first run made: no second data version, quarantine folder or asset
event from ``ingest_batch``; no second MLflow run, registered model version or model store
folder, no changed decision and no move of ``champion`` from ``retrain_model``; and no
second question to a reviewer.

The task ids come from the DAGs as the scheduler has them, so a new task is covered too.
Tasks are cleared downstream first: each one then reruns against what its upstream tasks
returned the first time (``publish`` against the ``version_batch`` that made the version,
``promote`` against the evaluation made before there was a champion), the case where a
task is most tempted to do its work again.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from retrainer.data.demo_data import corrupt_copy, load_bike_sharing, split_periods, write_batch
from retrainer.data.versioning import DataRegistry
from retrainer.settings import Settings
from retrainer_dev.stacks.airflow import AirflowStack
from retrainer_dev.stacks.airflow_api import AirflowAPI

pytestmark = [pytest.mark.integration, pytest.mark.scheduler]

DATASET = "bike_sharing"
INGEST = "ingest_batch"
RETRAIN = "retrain_model"
ASSET = "retrainer_data_versions"


@functools.cache
def _bike_periods() -> dict[str, pd.DataFrame]:
    spec = Settings.from_env().load_spec(DATASET)
    return split_periods(load_bike_sharing(), spec)


def land(settings: Settings, period: str, corrupted: bool = False) -> Path:
    """Land a month of the bike data (or a corrupted re-delivery of it) in the landing folder."""
    spec = settings.load_spec(DATASET)
    df = _bike_periods()[period]
    name = f"{period}.redelivery.csv" if corrupted else f"{period}.csv"
    return write_batch(corrupt_copy(df, spec) if corrupted else df, spec, Path(settings.landing) / DATASET / name)


def not_rerun(api: AirflowAPI, dag_id: str, run_id: str, task_ids: list[str], since: datetime) -> list[str]:
    """Which of the cleared ``task_ids`` did not run again after ``since`` (a task that is
    skipped again, like the branch not taken, counts as rerun)."""
    tis = api.task_instances(dag_id, run_id)
    return [
        t
        for t in task_ids
        if tis[t]["state"] != "skipped"
        and (not tis[t]["end_date"] or datetime.fromisoformat(tis[t]["end_date"]) < since)
    ]


# ------------------------------------------------------------------------------ ingest_batch


@dataclass(frozen=True)
class IngestState:
    data_versions: dict[str, str]  # tag -> commit
    commits: int  # commits in the data registry
    quarantined: list[str]  # <period>/<folder> under the dataset's quarantine
    events: list[tuple[str, str, str]]  # asset events: (source run, data version, period)


def ingest_state(stack: AirflowStack) -> IngestState:
    settings = stack.settings
    registry = DataRegistry(settings)
    versions = {v.tag: v.rev for v in registry.versions(DATASET)}
    commits = int(registry._git("rev-list", "--count", "HEAD", check=False) or 0)
    qdir = Path(settings.quarantine) / DATASET
    quarantined = sorted(str(p.relative_to(qdir)) for p in qdir.glob("*/*")) if qdir.is_dir() else []
    events = [
        (str(e["source_run_id"]), str((e["extra"] or {}).get("data_version")), str((e["extra"] or {}).get("period")))
        for e in stack.client.asset_events(name=ASSET)
    ]
    return IngestState(versions, commits, quarantined, events)


def ingest(stack: AirflowStack, period: str, batch: Path, logical_date: datetime, expect: str = "success") -> str:
    api = stack.client
    api.unpause(INGEST)
    run_id = api.trigger(INGEST, {"dataset": DATASET, "period": period, "batch": str(batch)}, logical_date)
    api.wait_for_run(INGEST, run_id, expect=expect)
    return run_id


def test_clearing_any_ingest_task_makes_nothing_twice(airflow_stack: AirflowStack) -> None:
    stack, api = airflow_stack, airflow_stack.client
    good, bad = "2011-05", "2011-06"
    before = ingest_state(stack)
    run_id = ingest(stack, good, land(stack.settings, good), datetime(2021, 1, 1, tzinfo=UTC))
    first = ingest_state(stack)
    made = sorted(set(first.data_versions) - set(before.data_versions))
    assert len(made) == 1, f"one accepted batch, one data version: {made}"
    label = made[0].split("/", 1)[1]
    assert first.commits == before.commits + 1 + (before.commits == 0)  # + the registry's set-up commit
    assert first.events == [*before.events, (run_id, label, good)]
    assert first.quarantined == before.quarantined

    order = api.task_ids(INGEST)
    problems: list[str] = []
    prev = first
    for task_id in reversed(order):
        since = datetime.now(UTC)
        cleared = api.clear(INGEST, run_id, [task_id], downstream=True)
        assert task_id in cleared, cleared
        state = api.wait_for_run(INGEST, run_id, expect=None, not_before=since)
        after = ingest_state(stack)
        where = f"clear {task_id} (+ downstream {sorted(set(cleared) - {task_id})})"
        if state != "success":
            problems.append(f"{where}: the run ended {state}\n{api.describe(INGEST, run_id)}")
        if after != prev:
            problems.append(f"{where}: state changed\n  before {prev}\n  after  {after}")
        if stale := not_rerun(api, INGEST, run_id, cleared, since):
            problems.append(f"{where}: not run again: {stale}")
        prev = after
    assert not problems, "\n".join(problems)
    assert prev == first

    # a corrupted re-delivery: quarantined once, however often its run is cleared
    bad_batch = land(stack.settings, bad, corrupted=True)
    logical = datetime(2021, 1, 2, tzinfo=UTC)
    bad_run = ingest(stack, bad, bad_batch, logical, expect="failed")
    states = api.task_states(INGEST, bad_run)
    assert states["quarantine_batch"] == "failed", states
    assert states["version_batch"] == "skipped" and states["publish"] == "skipped", states
    quarantined = ingest_state(stack)
    new = sorted(set(quarantined.quarantined) - set(prev.quarantined))
    assert len(new) == 1 and new[0].startswith(f"{bad}/"), new
    folder = Path(stack.settings.quarantine) / DATASET / new[0]
    assert sorted(p.name for p in folder.iterdir()) == sorted([bad_batch.name, "validation.json"])
    assert (quarantined.data_versions, quarantined.events) == (prev.data_versions, prev.events)

    since = datetime.now(UTC)
    api.clear(INGEST, bad_run, [order[0]], downstream=True)  # the whole run again
    api.wait_for_run(INGEST, bad_run, expect="failed", not_before=since)
    assert ingest_state(stack) == quarantined
    assert not not_rerun(api, INGEST, bad_run, order, since)

    since = datetime.now(UTC)
    day = logical.isoformat()
    # -t is matched as a substring of the task id in Airflow 3.3 (not as a regex: "^...$" clears nothing)
    stack.airflow("tasks", "clear", INGEST, "-t", "quarantine_batch", "-s", day, "-e", day, "-y")
    # cleared: running again, or (on a quick scheduler) already failed again since
    run = api.run(INGEST, bad_run)
    again = run["state"] in ("queued", "running") or (
        run["end_date"] is not None and datetime.fromisoformat(run["end_date"]) >= since
    )
    assert again, f"the CLI cleared nothing: the run is {run['state']}, ended {run['end_date']}"
    api.wait_for_run(INGEST, bad_run, expect="failed", not_before=since)
    assert ingest_state(stack) == quarantined
    assert not not_rerun(api, INGEST, bad_run, ["quarantine_batch"], since)
    assert api.run(INGEST, run_id)["state"] == "success"  # the CLI cleared the bad run only


def test_clearing_publish_announces_a_new_data_version_once(airflow_stack: AirflowStack) -> None:
    stack, api = airflow_stack, airflow_stack.client
    period = "2011-08"
    run_id = ingest(stack, period, land(stack.settings, period), datetime(2021, 1, 3, tzinfo=UTC))
    announced = [e for e in ingest_state(stack).events if e[0] == run_id]
    assert len(announced) == 1, announced

    since = datetime.now(UTC)
    assert api.clear(INGEST, run_id, ["publish"]) == ["publish"]
    api.wait_for_run(INGEST, run_id, not_before=since)
    again = [e for e in ingest_state(stack).events if e[2] == period]
    assert again == announced, f"{announced[0][1]} of {period} announced {len(again)} times"


# ------------------------------------------------------------------------------ retrain_model


#: tags that record the latest check or the try that last touched a version, not a decision
VOLATILE_TAGS = ("deploy.check.", "airflow.try_number")


@dataclass(frozen=True)
class ModelState:
    mlflow_runs: list[str]  # run ids in the model's experiment, deleted ones included
    model_versions: list[str]
    aliases: dict[str, str]  # alias -> version (champion, challenger)
    data_versions: list[str]
    store: list[str]  # paths in the model store, two levels deep
    labels: dict[str, int]  # serving labels (stable, canary) -> version
    version_tags: dict[str, dict[str, str]]  # version -> its tags (evidence, decisions, deployment)
    run_tags: dict[str, dict[str, str]]  # MLflow run -> its retrainer/gate tags
    run_metrics: dict[str, list[str]]  # MLflow run -> names of its metrics


def model_state(stack: AirflowStack, model: str) -> ModelState:
    from mlflow import MlflowClient
    from mlflow.entities import ViewType

    from retrainer.serving import modelstore

    settings = stack.settings
    client = MlflowClient(tracking_uri=settings.mlflow_tracking_uri, registry_uri=settings.mlflow_tracking_uri)
    exp = client.get_experiment_by_name(model)
    runs = client.search_runs([exp.experiment_id], run_view_type=ViewType.ALL) if exp else []
    run_tags = {
        r.info.run_id: {k: v for k, v in r.data.tags.items() if k.startswith(("gate.", "retrainer."))} for r in runs
    }
    run_metrics = {r.info.run_id: sorted(r.data.metrics) for r in runs}
    found = client.search_model_versions(f"name = '{model}'")
    versions = sorted((str(v.version) for v in found), key=int)
    tags = {str(v.version): dict(v.tags) for v in found}
    aliases = {str(k): str(v) for k, v in client.get_registered_model(model).aliases.items()} if found else {}
    store = Path(settings.model_store)
    paths = sorted(str(p.relative_to(store)) for p in [*store.glob("*"), *store.glob("*/*")]) if store.is_dir() else []
    entry = modelstore.read_config(store).get(model) if (store / "models.config").is_file() else None
    data = [v.tag for v in DataRegistry(settings).versions(DATASET)]
    return ModelState(
        sorted(run_tags),
        versions,
        aliases,
        data,
        paths,
        dict(entry.labels) if entry else {},
        tags,
        run_tags,
        run_metrics,
    )


COUNTED = ("mlflow_runs", "model_versions", "aliases", "data_versions", "store")


def changes(before: ModelState, after: ModelState) -> list[tuple[str, str, Any, Any]]:
    """What differs, as (where, what, before, after); tags of the latest check are left out."""
    out: list[tuple[str, str, Any, Any]] = []
    for name in (*COUNTED, "labels"):
        if getattr(before, name) != getattr(after, name):
            out.append((name, "", getattr(before, name), getattr(after, name)))
    for where, old_all, new_all in (
        ("version", before.version_tags, after.version_tags),
        ("run", before.run_tags, after.run_tags),
        (
            "run metrics",
            {k: dict.fromkeys(v, "") for k, v in before.run_metrics.items()},
            {k: dict.fromkeys(v, "") for k, v in after.run_metrics.items()},
        ),
    ):
        for owner in sorted(set(old_all) | set(new_all)):
            old, new = old_all.get(owner, {}), new_all.get(owner, {})
            for key in sorted(set(old) | set(new)):
                if old.get(key) != new.get(key) and not key.startswith(VOLATILE_TAGS):
                    out.append((f"{where} {owner}", key, old.get(key), new.get(key)))
    return out


def version_data(settings: Settings, periods: list[str]) -> str:
    """Version accepted batches straight into the data registry (as ``ingest_batch`` would)."""
    from retrainer.pipeline import ingest

    label = ""
    for period in periods:
        validation = ingest.validate_batch(settings, DATASET, str(land(settings, period)), period)
        assert validation.success, validation.failures
        label = ingest.version_batch(settings, validation).data_version
    return label


def test_clearing_any_retrain_task_makes_nothing_twice(airflow_stack: AirflowStack) -> None:
    stack, api = airflow_stack, airflow_stack.client
    settings = stack.settings
    model = settings.load_spec(DATASET).model_name
    data_version = version_data(settings, ["2011-01", "2011-02", "2011-03"])

    # the run takes the logical date of the DAG's next scheduled run, and is triggered before
    # the DAG is unpaused: so the scheduler starts no monthly run of its own beside it
    nxt = api.wait_for_dag(RETRAIN).get("next_dagrun_logical_date")
    logical = datetime.fromisoformat(nxt) if nxt else datetime(2021, 2, 1, tzinfo=UTC)
    before = model_state(stack, model)
    conf: dict[str, Any] = {"dataset": DATASET, "data_version": data_version, "reason": "clear test", "epochs": 6}
    run_id = api.trigger(RETRAIN, conf, logical)
    api.unpause(RETRAIN)
    api.wait_for_run(RETRAIN, run_id, timeout=600)
    first = model_state(stack, model)
    first_states = api.task_states(RETRAIN, run_id)
    # a run by hand covers its own dataset only: the mapped fan-out to other datasets is empty (skipped)
    others = first_states["retrain_other_datasets"]
    assert others == "skipped" and {v for t, v in first_states.items() if t != "retrain_other_datasets"} == {
        "success"
    }, first_states
    assert len(first.mlflow_runs) == len(before.mlflow_runs) + 1
    new_versions = sorted(set(first.model_versions) - set(before.model_versions))
    assert len(new_versions) == 1, new_versions
    assert first.aliases.get("champion") == new_versions[0], first.aliases  # the first model passes the gate
    assert f"{model}/{new_versions[0]}" in first.store, first.store
    assert first.labels.get("stable") == int(new_versions[0]), first.labels  # verified, so it serves
    assert first.data_versions == before.data_versions
    asked = len(api.hitl_answers)  # a reviewer's decision, where the spec asks for one

    problems: list[str] = []
    last = [first]

    def rerun(task_ids: list[str], downstream: bool) -> None:
        since = datetime.now(UTC)
        cleared = api.clear(RETRAIN, run_id, task_ids, downstream=downstream)
        state = api.wait_for_run(RETRAIN, run_id, expect=None, not_before=since, timeout=600)
        after = model_state(stack, model)
        where = f"clear {task_ids}" + (" + downstream" if downstream else "")
        if state != "success":
            problems.append(f"{where}: the run ended {state}\n{api.describe(RETRAIN, run_id)}")
        elif (states := api.task_states(RETRAIN, run_id)) != first_states:
            problems.append(f"{where}: task states changed: {states}")
        diverged = {(where_, what) for where_, what, _, _ in changes(first, after)}
        for change in changes(last[0], after):  # what this rerun changed, unless back to the first run's
            if (change[0], change[1]) not in diverged:
                continue
            problems.append(f"{where}: {change[0]} {change[1]}: {change[2]!r} -> {change[3]!r}")
        if stale := not_rerun(api, RETRAIN, run_id, cleared, since):
            problems.append(f"{where}: not run again: {stale}")
        if len(api.hitl_answers) != asked:
            problems.append(f"{where}: a reviewer was asked again: {api.hitl_answers[asked:]}")
        last[0] = after

    # each task once on its own, downstream first; then the whole run again from its first task
    order = api.task_ids(RETRAIN)
    for task_id in reversed(order):
        rerun([task_id], downstream=False)
    rerun([order[0]], downstream=True)
    assert not problems, "\n".join(problems)
