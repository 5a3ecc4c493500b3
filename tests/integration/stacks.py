"""pytest's side of the stacks of real components (``retrainer_dev.stacks``): start one for a
fixture and stop it after, show its logs when tests failed, and skip (or, where it must run,
fail) when it cannot run on this machine. The fixtures themselves are in conftest.py."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from retrainer_dev.stacks.airflow import AirflowStack
from retrainer_dev.stacks.celery import make_celery_stack
from retrainer_dev.stacks.components import StackUnavailable
from retrainer_dev.stacks.s3 import create_bucket


def stacks_parent() -> Path:
    """Where the stacks of this session live: beside the session's temporary home (tests/conftest.py)."""
    return Path(os.environ["AIRFLOW_HOME"]).parent


def serve(stack: AirflowStack, request: pytest.FixtureRequest, what: str) -> Iterator[AirflowStack]:
    """Start ``stack`` for a fixture, yield it, stop it; on failed tests, show its logs."""
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    try:
        stack.start()
    except BaseException:
        stack.stop(grace=5)
        raise
    if reporter is not None:
        reporter.write_line(
            f"\n{what} up in {stack.started_in:.0f} s at {stack.base_url}; metadata DB: "
            f"{stack.db.backend} ({stack.db.note}); state under {stack.root}"
        )
    failed_before = request.session.testsfailed
    try:
        yield stack
    finally:
        failed = request.session.testsfailed > failed_before
        logs = stack.log_tails() if failed else ""
        stack.stop()
        if failed and reporter is not None:
            reporter.write_line(f"\n{what}: component logs (tests failed):\n{logs}")


def new_celery_stack(moto_endpoint: str) -> AirflowStack:
    """A Celery stack (not started) with a bucket of its own on ``moto_endpoint``. Without
    PostgreSQL or Redis the test is skipped saying which is missing; with
    ``RETRAINER_REQUIRE_CELERY=1`` (CI) it fails instead."""
    bucket = create_bucket(moto_endpoint, f"retrainer-celery-{secrets.token_hex(4)}")
    try:
        return make_celery_stack(stacks_parent(), moto_endpoint, bucket)
    except StackUnavailable as exc:
        if os.environ.get("RETRAINER_REQUIRE_CELERY") == "1":
            pytest.fail(f"the Celery tier cannot run: {exc}")
        pytest.skip(f"the Celery tier cannot run: {exc}")
