"""A small typed client of the Airflow 3 REST API (``/api/v2``), as a stack's admin: unpause,
trigger, wait for a run (answering Human-in-the-loop requests on the way), task instances,
clear, HITL answers, asset events, task logs.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import quote

import requests

from retrainer_dev.waiting import wait_until

T = TypeVar("T")

FINAL_RUN_STATES = frozenset({"success", "failed"})
FINAL_TI_STATES = frozenset({"success", "failed", "skipped", "upstream_failed", "removed"})
#: the simple auth manager's user the stacks sign in as
USER = "admin"

Json = dict[str, Any]
#: picks the options to choose for a pending Human-in-the-loop request
HitlAnswer = Callable[[Json], list[str]]


def default_hitl_answer(detail: Json) -> list[str]:
    """What a reviewer who accepts the proposal answers: "Approve" where offered, else the
    request's defaults, else its first option."""
    options = list(detail["options"])
    if "Approve" in options:
        return ["Approve"]
    return list(detail.get("defaults") or options[:1])


class AirflowAPI:
    """The Airflow 3 REST API (``/api/v2``) as the simple auth manager's admin."""

    def __init__(self, base_url: str, password: str, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.password = password
        self.timeout = timeout
        self.session = requests.Session()
        self.hitl_answers: list[Json] = []  # every HITL answer given by wait_for_run
        self.watchdog: Callable[[], None] = lambda: None  # raises when a component died
        # the components' log lines that hold a text (a failed task's "dag.task run"): why the
        # scheduler failed a task whose own log shows no error
        self.mentions: Callable[[str], str] = lambda _: ""
        self._login()

    def _login(self) -> None:
        resp = requests.post(
            f"{self.base_url}/auth/token",
            json={"username": USER, "password": self.password},
            timeout=self.timeout,
        )
        if resp.status_code != 201:
            raise AssertionError(f"login failed: {resp.status_code} {resp.text}")
        self.session.headers["Authorization"] = f"Bearer {resp.json()['access_token']}"

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        resp = self.session.request(method, f"{self.base_url}{path}", timeout=self.timeout, **kwargs)
        if resp.status_code == 401:  # token expired: log in again once
            self._login()
            resp = self.session.request(method, f"{self.base_url}{path}", timeout=self.timeout, **kwargs)
        if resp.status_code >= 400:
            raise AssertionError(f"{method} {path} -> {resp.status_code}: {resp.text[:2000]}")
        return resp.json() if resp.content else None

    def until(self, what: str, check: Callable[[], T | None], timeout: float = 600.0, interval_s: float = 2.0) -> T:
        """``check()``'s first truthy answer (``wait_until``), with the watchdog before each look:
        a component of the stack that died fails the wait at once."""

        def watched() -> T | None:
            self.watchdog()
            return check()

        return wait_until(watched, timeout, interval_s=interval_s, what=what)

    # ----------------------------------------------------------------- DAGs
    def dag(self, dag_id: str) -> Json:
        return dict(self.request("GET", f"/api/v2/dags/{dag_id}"))

    def wait_for_dag(self, dag_id: str, timeout: float = 120.0) -> Json:
        """Until the DAG processor has parsed and serialized the DAG."""

        def parsed() -> Json | None:
            resp = self.session.get(f"{self.base_url}/api/v2/dags/{dag_id}", timeout=self.timeout)
            return dict(resp.json()) if resp.status_code == 200 else None

        def import_errors() -> str:
            return f"import errors: {self.request('GET', '/api/v2/importErrors')}"

        return wait_until(parsed, timeout, what=f"DAG {dag_id} parsed", details=import_errors)

    def unpause(self, dag_id: str) -> None:
        self.wait_for_dag(dag_id)
        out = self.request("PATCH", f"/api/v2/dags/{dag_id}", json={"is_paused": False})
        if out["is_paused"] is not False:
            raise AssertionError(f"{dag_id} still paused: {out}")

    def tasks(self, dag_id: str) -> list[Json]:
        return list(self.request("GET", f"/api/v2/dags/{dag_id}/tasks")["tasks"])

    def task_ids(self, dag_id: str) -> list[str]:
        """The DAG's task ids, upstream before downstream (ties by name)."""
        downstream = {t["task_id"]: set(t["downstream_task_ids"]) for t in self.tasks(dag_id)}
        indegree = {t: 0 for t in downstream}
        for children in downstream.values():
            for child in children:
                indegree[child] += 1
        ready = sorted(t for t, n in indegree.items() if n == 0)
        order: list[str] = []
        while ready:
            task = ready.pop(0)
            order.append(task)
            for child in sorted(downstream[task]):
                indegree[child] -= 1
                if indegree[child] == 0:
                    ready.append(child)
            ready.sort()
        if len(order) != len(downstream):
            raise AssertionError(f"{dag_id} has a cycle? {downstream}")
        return order

    # ----------------------------------------------------------------- runs
    def trigger(self, dag_id: str, conf: Json, logical_date: datetime, run_id: str | None = None) -> str:
        body: Json = {"logical_date": logical_date.isoformat(), "conf": conf}
        if run_id:
            body["dag_run_id"] = run_id
        return str(self.request("POST", f"/api/v2/dags/{dag_id}/dagRuns", json=body)["dag_run_id"])

    def run(self, dag_id: str, run_id: str) -> Json:
        return dict(self.request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}"))

    def task_instances(self, dag_id: str, run_id: str) -> dict[str, Json]:
        """task_id -> the task instance (state, try_number, start_date, end_date, ...)."""
        out = self.request(
            "GET", f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}/taskInstances", params={"limit": 1000}
        )
        # a mapped task's instances: task_id for the first, task_id[i] for each
        found: dict[str, Json] = {}
        for ti in sorted(out["task_instances"], key=lambda t: (t["task_id"], t.get("map_index", -1))):
            index = int(ti.get("map_index", -1))
            found.setdefault(ti["task_id"], ti)
            if index >= 0:
                found[f"{ti['task_id']}[{index}]"] = ti
        return found

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str | None]:
        return {t: ti["state"] for t, ti in self.task_instances(dag_id, run_id).items()}

    def wait_for_run(
        self,
        dag_id: str,
        run_id: str,
        expect: str | None = "success",
        timeout: float = 300.0,
        not_before: datetime | None = None,
        answer: HitlAnswer | None = default_hitl_answer,
    ) -> str:
        """Wait until the run is final (and, with ``not_before``, ended after that moment: a
        cleared run ran again). Pending Human-in-the-loop requests are answered with
        ``answer``. Returns the state; a state other than ``expect`` fails with the task
        states and the end of each failed task's log."""

        def final() -> Json | None:
            run = self.run(dag_id, run_id)
            ended = run.get("end_date")
            if run["state"] in FINAL_RUN_STATES and (
                not_before is None or (ended and datetime.fromisoformat(ended) >= not_before)
            ):
                return run
            self.watchdog()
            if answer is not None:
                self.answer_pending_hitl(dag_id, run_id, answer)
            return None

        def states() -> str:
            return f"the run is {self.run(dag_id, run_id)['state']}\n" + self.describe(dag_id, run_id)

        run = wait_until(final, timeout, what=f"the end of {dag_id} {run_id}", details=states)
        state = str(run["state"])
        if expect is not None and state != expect:
            raise AssertionError(
                f"{dag_id} {run_id} ended {state}, expected {expect}\n" + self.describe(dag_id, run_id)
            )
        return state

    def describe(self, dag_id: str, run_id: str, log_lines: int = 40) -> str:
        """Each task's state and try, and the end of the log of every failed task."""
        tis = self.task_instances(dag_id, run_id)
        lines = [f"  {t:<20} {ti['state']!s:<16} try {ti['try_number']}" for t, ti in sorted(tis.items())]
        for key, ti in sorted(tis.items()):
            if ti["state"] == "failed" and (key == ti["task_id"]) == (int(ti.get("map_index", -1)) < 0):
                lines.append(f"--- log of {key} (try {ti['try_number']}), last {log_lines} lines:")
                lines.append(
                    self.task_log(
                        dag_id, run_id, ti["task_id"], int(ti["try_number"]), log_lines, int(ti.get("map_index", -1))
                    )
                )
                said = self.mentions(f"{dag_id}.{ti['task_id']} {run_id}")
                if said:
                    lines.append(f"--- what the components logged about {key}:\n{said}")
        return "\n".join(lines)

    def task_log(
        self, dag_id: str, run_id: str, task_id: str, try_number: int, lines: int = 40, map_index: int = -1
    ) -> str:
        path = f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}/taskInstances/{task_id}/logs/{try_number}"
        params = {"full_content": "true", "map_index": str(map_index)}
        try:
            out = self.request("GET", path, params=params, headers={"Accept": "application/json"})
        except AssertionError as exc:
            return f"(no log: {exc})"
        text: list[str] = []
        for entry in out.get("content") or []:
            if isinstance(entry, str):
                text.extend(entry.splitlines())
                continue
            event = str(entry.get("event", ""))
            level = str(entry.get("level", "")).upper()
            text.append(f"{level:<7} {event}".rstrip())
            for err in entry.get("error_detail") or []:
                text.append(f"        {err.get('exc_type')}: {err.get('exc_value')}")
        return "\n".join(text[-lines:])

    # ----------------------------------------------------------------- clear
    def clear(self, dag_id: str, run_id: str, task_ids: list[str], downstream: bool = False) -> list[str]:
        """Clear task instances of one run (and their downstream), as the UI's Clear does:
        the run goes back to queued and the scheduler runs them again. Returns what was cleared."""
        body = {
            "dry_run": False,
            "task_ids": task_ids,
            "dag_run_id": run_id,
            "only_failed": False,
            "reset_dag_runs": True,
            "include_downstream": downstream,
        }
        out = self.request("POST", f"/api/v2/dags/{dag_id}/clearTaskInstances", json=body)
        return sorted(ti["task_id"] for ti in out["task_instances"])

    # ----------------------------------------------------------------- HITL
    def hitl_details(self, dag_id: str, run_id: str, pending_only: bool = False) -> list[Json]:
        params: Json = {"limit": 100}
        if pending_only:
            params["response_received"] = "false"
        out = self.request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}/hitlDetails", params=params)
        return list(out["hitl_details"])

    def respond_hitl(
        self,
        dag_id: str,
        run_id: str,
        task_id: str,
        chosen_options: list[str],
        params_input: Json | None = None,
        map_index: int = -1,
    ) -> Json:
        path = f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}/taskInstances/{task_id}/{map_index}/hitlDetails"
        body = {"chosen_options": chosen_options, "params_input": params_input or {}}
        return dict(self.request("PATCH", path, json=body))

    def answer_pending_hitl(self, dag_id: str, run_id: str, answer: HitlAnswer, after_s: float = 5.0) -> int:
        """Answer the run's open requests that have waited ``after_s`` seconds. A reviewer takes
        a moment; an answer within a second of the request can reach the waiting task before the
        scheduler has seen it defer, and the scheduler then fails the task (a race in Airflow
        3.3 for deferrals that resolve almost at once)."""
        answered = 0
        now = datetime.now(UTC)
        for detail in self.hitl_details(dag_id, run_id, pending_only=True):
            if detail.get("response_received"):
                continue
            if (now - datetime.fromisoformat(detail["created_at"])).total_seconds() < after_s:
                continue
            ti = detail["task_instance"]
            chosen = answer(detail)
            self.respond_hitl(dag_id, run_id, ti["task_id"], chosen, map_index=int(ti.get("map_index", -1)))
            self.hitl_answers.append(
                {
                    "dag_id": dag_id,
                    "run_id": run_id,
                    "task_id": ti["task_id"],
                    "chosen": chosen,
                    "subject": detail.get("subject"),
                }
            )
            answered += 1
        return answered

    # ----------------------------------------------------------------- assets
    def asset_events(self, name: str | None = None, source_dag_id: str | None = None) -> list[Json]:
        params: Json = {"limit": 1000, "order_by": "timestamp"}
        if source_dag_id:
            params["source_dag_id"] = source_dag_id
        events = list(self.request("GET", "/api/v2/assets/events", params=params)["asset_events"])
        return [e for e in events if name is None or e["name"] == name]
