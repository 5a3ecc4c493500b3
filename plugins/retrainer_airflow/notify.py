"""Failure notifications: a notifier that a user points at Slack (or any JSON webhook).

``FailureWebhook`` is an Airflow notifier used as ``on_failure_callback`` of the retrainer
DAGs. It logs the failure and, when the webhook URL is configured (environment variable
``RETRAINER_ALERT_WEBHOOK``, read when it fires, never at parse time), posts
``{"text": ...}``, which is the body a Slack incoming webhook takes. Email or any other
Airflow notifier can be set in its place.
"""

from __future__ import annotations

import json
import logging
import os
import urllib.request
from typing import TYPE_CHECKING, Any

from airflow.sdk.bases.notifier import BaseNotifier

if TYPE_CHECKING:
    from airflow.sdk import Context

log = logging.getLogger(__name__)


class FailureWebhook(BaseNotifier):
    """Log a failed task or run and post ``{"text": ...}`` to ``RETRAINER_ALERT_WEBHOOK`` if set.

    It takes no arguments: the URL is read from the worker's environment when it fires, so a
    DAG file never reads it while parsing. A post that fails is logged, never raised.
    """

    template_fields = ()

    def render_template_fields(self, context: Context, jinja_env: Any = None) -> None:
        """Nothing to render; skipping it also works where the DAG is only a serialized copy."""

    def notify(self, context: Context) -> None:
        ti = context.get("ti") or context.get("task_instance")
        dag_run = context.get("dag_run")
        dag_id = getattr(ti, "dag_id", None) or getattr(dag_run, "dag_id", "?")
        run_id = getattr(ti, "run_id", None) or getattr(dag_run, "run_id", "?")
        what = f"{dag_id}.{ti.task_id}" if ti is not None and getattr(ti, "task_id", None) else str(dag_id)
        error = context.get("exception") or context.get("reason") or "failed"
        text = f"retrainer: {what} failed in run {run_id}: {error}"
        log.error("%s", text)
        url = os.environ.get("RETRAINER_ALERT_WEBHOOK")
        if not url:
            return
        if not url.startswith(("https://", "http://")):
            log.error("RETRAINER_ALERT_WEBHOOK must be an http(s) URL, not %r: no notification sent", url[:40])
            return
        req = urllib.request.Request(  # noqa: S310 - http(s) only, checked above
            url, data=json.dumps({"text": text}).encode(), headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(req, timeout=10):  # noqa: S310 - http(s) only, checked above
                pass
        except OSError as exc:  # a notification must never hide the failure it reports
            log.warning("could not post the failure notification to the webhook: %s", exc)
