"""The first hour, in a real browser: Debian's Chromium driven by Playwright over the Airflow
and MLflow web UIs of a running stack (scheduler, triggerer, DAG processor, API server, and an
MLflow UI over the tasks' tracking store), the way the README's "first hour" goes.

It signs in to Airflow, sees every DAG and no import error, opens each grid, triggers
``retrain_model`` from the form (a refused value first: the form says which field and why),
answers the review in Required Actions, reads a task log, and follows the drift check's
*Drift report (MLflow)* button; in MLflow it opens the champion version, follows its
evaluation-report tag and its run and model links; then the retraining the drift started
takes over and a rollback from the form brings v1 back. The README's screenshots are the ones
this test takes (``docs/screenshots/``; ``RETRAINER_SCREENSHOTS`` sets another folder).

Needs Debian's ``chromium`` and the ``playwright`` package (never ``playwright install``):
without them the tier is skipped saying why, and ``RETRAINER_REQUIRE_BROWSER=1`` (CI) makes
that a failure.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import quote

import pytest

from retrainer_dev.stacks.airflow import AirflowStack, make_stack
from retrainer_dev.stacks.airflow_api import AirflowAPI
from retrainer_dev.stacks.components import Component
from retrainer_dev.stacks.ports import free_port
from tests.helpers import REPO
from tests.test_dags import DAG_IDS

from .stacks import serve, stacks_parent

pytestmark = [pytest.mark.integration, pytest.mark.scheduler, pytest.mark.browser]

CHROMIUM = os.environ.get("RETRAINER_CHROMIUM", "/usr/bin/chromium")
SHOTS = Path(os.environ.get("RETRAINER_SCREENSHOTS") or REPO / "docs" / "screenshots")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DATASET, MODEL = "bike_sharing", "bike_demand"
RETRAIN, MONITOR, ROLLBACK = "retrain_model", "monitor_drift", "rollback_model"
ASSISTANT_CLOSED = (
    "try { localStorage.setItem('mlflow.assistant.fab.autoOpenedOnFirstLoad_v1', 'true');"
    " localStorage.setItem('mlflow.assistant.panelOpen_v1', 'false'); } catch (e) {}"
)
UI_WAIT_MS = 30_000  # a page of the UI renders within this, even on a loaded 2-core machine


def playwright_or_skip() -> ModuleType:
    """Playwright's sync API, or a skip that says what is missing (a failure under
    ``RETRAINER_REQUIRE_BROWSER=1``)."""
    missing = []
    try:
        from playwright import sync_api
    except ImportError:
        missing.append("the Python package playwright (make install)")
    if not os.access(CHROMIUM, os.X_OK):
        missing.append(f"Chromium at {CHROMIUM} (Debian: apt-get install chromium; or set RETRAINER_CHROMIUM)")
    if missing:
        why = "the browser tier needs " + " and ".join(missing)
        if os.environ.get("RETRAINER_REQUIRE_BROWSER") == "1":
            pytest.fail(why)
        pytest.skip(why)
    return sync_api


@dataclass
class UIs:
    stack: AirflowStack
    mlflow: str  # the MLflow UI's URL, the one the tasks write into their links
    password: str  # the Airflow user's (admin)

    @property
    def airflow(self) -> str:
        return self.stack.base_url

    @property
    def api(self) -> AirflowAPI:
        return self.stack.client


@pytest.fixture(scope="module")
def uis(request: pytest.FixtureRequest) -> Iterator[UIs]:
    """An Airflow stack whose spec asks for a review, and an MLflow UI over its tracking store
    (as ``make up`` serves it), in the stack's process group."""
    playwright_or_skip()
    stack = make_stack(stacks_parent(), review=True)
    port = free_port()
    mlflow = f"http://127.0.0.1:{port}"
    stack.env["RETRAINER_MLFLOW_UI_URL"] = mlflow  # the links the tasks write point here
    args = [
        sys.executable,
        "-m",
        "mlflow",
        "ui",
        "--backend-store-uri",
        stack.env["MLFLOW_TRACKING_URI"],
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    stack.components.append(
        Component("mlflow-ui", args, {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}, health=f"{mlflow}/health")
    )
    for up in serve(stack, request, "airflow stack + MLflow UI (browser)"):
        passwords = json.loads(Path(stack.env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"]).read_text())
        yield UIs(up, mlflow, passwords["admin"])


def version_data(uis: UIs, periods: list[str]) -> str:
    """Validate and version bike months straight into the data registry (as ``ingest_batch``)."""
    from retrainer.data.demo_data import load_bike_sharing, split_periods, write_batch
    from retrainer.pipeline import ingest

    settings = uis.stack.settings
    spec = settings.load_spec(DATASET)
    months = split_periods(load_bike_sharing(), spec)
    label = ""
    for period in periods:
        batch = write_batch(months[period], spec, Path(settings.landing) / DATASET / f"{period}.csv")
        validation = ingest.validate_batch(settings, DATASET, str(batch), period)
        assert validation.success, validation.failures
        label = ingest.version_batch(settings, validation).data_version
    return label


class Browser:
    """One signed-in Chromium page, and the screenshots it takes."""

    def __init__(self, page: Any, uis: UIs) -> None:
        self.page, self.uis = page, uis
        page.set_default_timeout(UI_WAIT_MS)
        SHOTS.mkdir(parents=True, exist_ok=True)

    def shot(self, name: str, full_page: bool = False) -> None:
        self.page.wait_for_timeout(700)  # the last fetches land and the page settles
        self.page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=full_page)

    def see(self, text: str, where: Any = None) -> Any:
        """Wait until ``text`` shows (in ``where``, else the page); the element."""
        found = (where or self.page).get_by_text(text, exact=False).first
        found.wait_for(state="visible")
        return found

    def sign_in(self) -> None:
        page = self.page
        page.goto(self.uis.airflow)
        page.wait_for_url(re.compile(r".*/auth/login.*"))  # every page is behind the login
        page.get_by_label("Username").fill("admin")
        page.get_by_label("Password").fill(self.uis.password)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"{self.uis.airflow}/")

    def trigger_form(self, dag_id: str) -> Any:
        self.page.goto(f"{self.uis.airflow}/dags/{dag_id}")
        self.page.get_by_role("button", name="Trigger").first.click()
        dialog = self.page.get_by_role("dialog")
        self.see(f"Trigger Dag - {dag_id}", dialog)
        return dialog

    def set_logical_date(self, dialog: Any, when: datetime) -> None:
        """The form's logical date (its date picker's day and time fields)."""
        dialog.locator("p", has_text=re.compile(r"^[A-Z][a-z]{2} \d{2}, \d{4} \d{2}:\d{2}$")).first.click()
        day = self.page.get_by_placeholder("YYYY/MM/DD")
        day.fill(when.strftime("%Y/%m/%d"))
        day.press("Enter")
        hour = self.page.get_by_placeholder("HH:mm")
        hour.fill(when.strftime("%H:%M"))
        hour.press("Enter")
        dialog.get_by_text(re.compile(r"^Trigger Dag - ")).click()  # closes the picker
        self.see(when.strftime("%b %d, %Y %H:%M"), dialog)


def _next_logical(api: AirflowAPI, dag_id: str) -> datetime:
    """The logical date of the DAG's next scheduled run: a run by hand that takes it, started
    before the DAG is unpaused, keeps the scheduler from starting that run beside it."""
    nxt = api.wait_for_dag(dag_id).get("next_dagrun_logical_date")
    assert nxt, f"{dag_id} has no next run"
    return datetime.fromisoformat(nxt)


def test_the_first_hour_in_the_browser(uis: UIs) -> None:
    sync_api = playwright_or_skip()
    api = uis.api
    version_data(uis, ["2011-01", "2011-02", "2011-03"])
    logical = _next_logical(api, RETRAIN)
    with sync_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = chromium.new_context(viewport={"width": 1440, "height": 900})
        # MLflow's assistant panel opens once in a new browser: as after a user closed it
        context.add_init_script(ASSISTANT_CLOSED)
        ui = Browser(context.new_page(), uis)
        try:
            _dags_and_grids(ui)
            run_id = _trigger_from_the_form(ui, logical)
            _review_in_required_actions(ui, run_id)
            _task_log(ui, run_id)
            _drift_report_button(ui)
            _mlflow(ui)
            _roll_back(ui)
        except Exception as exc:  # what the browser showed when it failed
            seen = uis.stack.logs / "browser-failure.png"
            with contextlib.suppress(Exception):
                ui.page.screenshot(path=str(seen))
            text = ui.page.inner_text("body")[-3000:] if not ui.page.is_closed() else "(page closed)"
            raise AssertionError(f"{exc}\nat {ui.page.url}; screenshot {seen}; the page said:\n{text}") from exc
        finally:
            chromium.close()


def _dags_and_grids(ui: Browser) -> None:
    """Sign in; every DAG listed, no import error; each grid opens with its tasks."""
    ui.sign_in()
    assert ui.uis.api.request("GET", "/api/v2/importErrors")["total_entries"] == 0
    ui.page.goto(f"{ui.uis.airflow}/dags")
    ui.see(f"{len(DAG_IDS)} Dags")
    for dag_id in DAG_IDS:
        ui.page.get_by_role("link", name=dag_id, exact=True).first.wait_for()
    assert "Import Errors" not in ui.page.inner_text("body")
    ui.shot("airflow-dags")
    for dag_id in DAG_IDS:
        ui.page.goto(f"{ui.uis.airflow}/dags/{dag_id}")
        first_task = sorted(t["task_id"] for t in ui.uis.api.tasks(dag_id))[0]
        ui.see(first_task)


def _trigger_from_the_form(ui: Browser, logical: datetime) -> str:
    """A refused value: the form says which field and why. Then a run of retrain_model, from
    the form, with the logical date of its next scheduled run."""
    dialog = ui.trigger_form(RETRAIN)
    ui.see("Reason (optional)", dialog)  # optional fields say so (no red asterisk)
    # the form unpauses the DAG before it sends the run, even one it is refused: not this time
    unpause = dialog.get_by_text(f"Unpause {RETRAIN} on trigger")
    unpause.click()
    dialog.locator("input[name=element_data_version]").fill("v7")
    dialog.get_by_role("button", name="Trigger", exact=True).click()
    refused = ui.see("Invalid input for param data_version", dialog)
    assert "does not match" in dialog.inner_text()
    refused.scroll_into_view_if_needed()
    ui.shot("airflow-trigger-refused")

    assert ui.uis.api.dag(RETRAIN)["is_paused"], "the refused trigger unpaused the DAG"
    dialog.locator("input[name=element_data_version]").fill("latest")
    unpause.click()
    ui.set_logical_date(dialog, logical)
    dialog.locator("input[name=element_epochs]").fill("4")
    dialog.locator("input[name=element_reason]").fill("first hour: a run from the form")
    dialog.get_by_text(re.compile(r"^Trigger Dag - ")).click()  # closes the reason's suggestions
    dialog.get_by_role("button", name="Trigger", exact=True).click()

    def made_by_hand() -> list[dict[str, Any]]:
        runs = ui.uis.api.request("GET", f"/api/v2/dags/{RETRAIN}/dagRuns", params={"limit": 50})["dag_runs"]
        return [r for r in runs if r["run_type"] == "manual"]

    (run,) = ui.uis.api.until("the run from the form", made_by_hand, timeout=60)
    assert datetime.fromisoformat(run["logical_date"]) == logical, run
    run_id, conf = str(run["dag_run_id"]), run["conf"]
    assert conf["reason"] == "first hour: a run from the form" and conf["epochs"] == 4, conf
    assert conf.get("window") is None and not conf.get("drift"), conf  # left empty: no value
    return run_id


def _review_in_required_actions(ui: Browser, run_id: str) -> None:
    """The review waits in Required Actions with its evidence; Approve there; the run ends."""
    api = ui.uis.api
    api.until("the review request", lambda: api.hitl_details(RETRAIN, run_id, pending_only=True))
    ui.page.goto(f"{ui.uis.airflow}/required_actions")
    ui.page.get_by_role("link", name=f"Promote {MODEL} v1 to production?").first.click()
    ui.see("passed the gate and waits for a decision")
    ui.see("Evaluation report")
    ui.shot("airflow-review")
    ui.page.get_by_role("button", name="Approve").click()
    ui.see("Response received at")
    api.wait_for_run(RETRAIN, run_id, timeout=600, answer=None)  # answered in the browser only
    tags = _version_tags(ui, "1")
    assert tags["approval.via"] == "airflow" and tags["approval.reviewer"] == "admin", tags
    ui.page.goto(f"{ui.uis.airflow}/dags/{RETRAIN}/runs/{quote(run_id, safe='')}")
    ui.see("Success")
    ui.shot("airflow-retrain-run")


def _task_log(ui: Browser, run_id: str) -> None:
    """A task's log in the UI holds what the task said (the gate's verdict); its XCom shows
    the record it handed on as JSON, the report's URL a link."""
    task = f"{ui.uis.airflow}/dags/{RETRAIN}/runs/{quote(run_id, safe='')}/tasks/evaluate"
    ui.page.goto(task)
    ui.see("gate PASSED")
    ui.shot("airflow-task-log")
    ui.page.goto(f"{task}/xcom")
    ui.see("report_uri")
    ui.page.locator("a[href*='/artifacts/evaluation/evaluation_report.html']").first.wait_for()


def _drift_report_button(ui: Browser) -> None:
    """A new month; monitor_drift checks it; the check's button opens the report in MLflow."""
    api = ui.uis.api
    api.request("PATCH", f"/api/v2/dags/{RETRAIN}", json={"is_paused": True})  # a retraining it starts waits
    label = version_data(ui.uis, ["2011-04"])
    run_id = api.trigger(MONITOR, {"dataset": DATASET, "data_version": label}, _next_logical(api, MONITOR))
    api.unpause(MONITOR)
    api.wait_for_run(MONITOR, run_id, timeout=600, answer=None)
    path = f"/api/v2/dags/{MONITOR}/dagRuns/{quote(run_id, safe='')}/taskInstances/wait_for_drift/listMapped"
    (ti,) = api.request("GET", path)["task_instances"]
    # the check's log says what it decided and where the report is; its Details tab has the button
    run = f"{ui.uis.airflow}/dags/{MONITOR}/runs/{quote(run_id, safe='')}"
    task = f"{run}/tasks/wait_for_drift/mapped/{ti['map_index']}"
    ui.page.goto(task)
    ui.see("drift report: http")
    ui.page.goto(f"{task}/details")
    button = ui.page.get_by_role("link", name="Drift report (MLflow)")
    button.wait_for()
    ui.shot("airflow-drift-button")
    with ui.page.context.expect_page() as opened:  # the button opens the report in a new tab
        button.click()
    report = opened.value
    report.wait_for_url(re.compile(rf"^{re.escape(ui.uis.mlflow)}/#/experiments/.+/artifacts/drift/drift_report\.html"))
    _artifact_frame(report).get_by_text("Drift of bike_sharing 2011-04").wait_for()
    # the training-run view (runs, models), not the GenAI one (traces, evaluation runs)
    report.get_by_role("link", name="Models", exact=True).first.wait_for()
    assert report.get_by_text("Evaluation runs").count() == 0
    report.set_viewport_size({"width": 1440, "height": 1300})
    report.wait_for_timeout(700)
    report.screenshot(path=str(SHOTS / "drift-report.png"))
    report.close()


def _champion_and_stable(ui: Browser) -> tuple[str | None, int | None]:
    """The registry's champion and the store's ``stable`` label of the model."""
    from mlflow import MlflowClient

    from retrainer.serving import modelstore

    client = MlflowClient(tracking_uri=ui.uis.stack.env["MLFLOW_TRACKING_URI"])
    champion = client.get_registered_model(MODEL).aliases.get("champion")
    entry = modelstore.read_config(ui.uis.stack.settings.model_store).get(MODEL)
    return (str(champion) if champion else None), (entry.labels.get("stable") if entry else None)


def _roll_back(ui: Browser) -> None:
    """The retraining the drift started runs (its reviewer approves); v2 serves. Then a
    rollback from the form: the champion and the serving label go back to v1 together."""
    api = ui.uis.api
    runs = api.request("GET", f"/api/v2/dags/{RETRAIN}/dagRuns", params={"limit": 50})["dag_runs"]
    (drifted,) = [r for r in runs if (r.get("conf") or {}).get("drift")]
    api.unpause(RETRAIN)
    api.wait_for_run(RETRAIN, str(drifted["dag_run_id"]), timeout=600)
    assert _champion_and_stable(ui) == ("2", 2), "the retraining the drift started did not take over"

    dialog = ui.trigger_form(ROLLBACK)
    assert dialog.locator("input[name=element_version]").input_value() == "previous"
    dialog.locator("input[name=element_reason]").fill("first hour: rehearsing a rollback")
    dialog.get_by_text(re.compile(r"^Trigger Dag - ")).click()  # closes the reason's suggestions
    dialog.get_by_role("button", name="Trigger", exact=True).click()

    def rollbacks() -> list[dict[str, Any]]:
        return list(api.request("GET", f"/api/v2/dags/{ROLLBACK}/dagRuns", params={"limit": 10})["dag_runs"])

    (run,) = api.until("the rollback run", rollbacks, timeout=60)
    api.wait_for_run(ROLLBACK, str(run["dag_run_id"]), timeout=300, answer=None)
    assert _champion_and_stable(ui) == ("1", 1)
    ui.page.goto(f"{ui.uis.airflow}/dags/{ROLLBACK}/runs/{quote(str(run['dag_run_id']), safe='')}")
    ui.see("Success")
    ui.shot("airflow-rollback")


def _artifact_frame(page: Any) -> Any:
    """The frame in which MLflow's artifact view shows an HTML artifact."""
    page.locator("iframe").first.wait_for()
    return page.frame_locator("iframe").first


def _version_tags(ui: Browser, version: str) -> dict[str, str]:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=ui.uis.stack.env["MLFLOW_TRACKING_URI"])
    return dict(client.get_model_version(MODEL, version).tags)


def _mlflow(ui: Browser) -> None:
    """The champion version links to its run and its LoggedModel; its evaluation-report tag
    opens the report itself; the experiment is an ML one (training runs)."""
    page = ui.page
    page.goto(f"{ui.uis.mlflow}/#/models/{MODEL}/versions/1")
    ui.see("champion")
    run_link = page.locator("a[href*='/runs/']").first
    model_link = page.locator("a[href*='/models/m-']").first
    run_name = run_link.inner_text()
    assert run_name.startswith(f"train {DATASET} v0003 2011-03 · "), run_name
    ui.shot("mlflow-version", full_page=True)

    report = _version_tags(ui, "1")["evaluation.report"]
    assert re.match(rf"^{re.escape(ui.uis.mlflow)}/#/experiments/\d+/runs/\w+/artifacts/evaluation/", report), report
    page.goto(report)
    _artifact_frame(page).get_by_text("gate PASSED").wait_for()
    page.get_by_role("link", name="Models", exact=True).first.wait_for()  # the training-run view
    page.set_viewport_size({"width": 1440, "height": 1300})
    ui.shot("evaluation-report")
    page.set_viewport_size({"width": 1440, "height": 900})

    page.goto(f"{ui.uis.mlflow}/#/models/{MODEL}/versions/1")
    ui.see("champion")
    model_link.click()
    ui.see("Ready")  # the LoggedModel's page
    page.goto(f"{ui.uis.mlflow}/#/models/{MODEL}/versions/1")
    run_link.click()
    ui.see("holdout_rmse")
    ui.shot("mlflow-run")
    # the holdout plot the evaluation logged, in the run's artifacts
    page.goto(re.sub(r"/artifacts/.*$", "/artifacts/plots/holdout.png?workflowType=machine_learning", report))
    ui.see("plots/holdout.png")
    page.wait_for_function("() => [...document.images].some(i => i.complete && i.naturalWidth > 400)")
    ui.shot("holdout")
