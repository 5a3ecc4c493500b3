"""The reliability suite (``make reliability``): each scenario records what it tried, how many
times it survived and how much it lost; at the end the table is printed and written to
docs/reliability.md with the machine and the date."""

from __future__ import annotations

import os
import platform
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from retrainer_dev.stacks.mlflow import MlflowServer
from retrainer_dev.stacks.postgres import metadata_db
from retrainer_dev.waiting import WaitTimeout
from tests.helpers import REPO


@dataclass
class Row:
    scenario: str
    tried: int
    survived: int
    lost: int
    how: str


ROWS: list[Row] = []


def record(scenario: str, tried: int, survived: int, lost: int, how: str) -> None:
    ROWS.append(Row(scenario, tried, survived, lost, how))


#: each bad delivery tried (kind, what it breaks, the message it got), for the page's second table
DELIVERIES: list[tuple[str, str, str]] = []


def record_delivery(kind: str, category: str, message: str) -> None:
    DELIVERIES.append((kind, category, message))


def _cell(text: str, limit: int = 300) -> str:
    text = " ".join(text.split()).replace("|", "\\|")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def deliveries_table() -> str:
    if not DELIVERIES:
        return ""
    lines = [
        "## Bad deliveries and what each is told",
        "",
        f"{len(DELIVERIES)} kinds, each run through `ingest_batch` (`tests/integration/test_bad_deliveries.py`);"
        " the message is the reason recorded with the quarantined batch (or, refused unread, the task log's).",
        "",
        "| bad delivery | kind | message |",
        "|---|---|---|",
    ]
    lines += [f"| {_cell(k, 80)} | {c} | {_cell(m)} |" for k, c, m in DELIVERIES]
    return "\n".join(lines)


def _machine() -> str:
    mem = ""
    if Path("/proc/meminfo").is_file():
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kb / 1024 / 1024:.0f} GB"
    return f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores{mem}, Python {platform.python_version()}"


def table() -> str:
    lines = ["| scenario | tried | survived | lost | how |", "|---|---|---|---|---|"]
    lines += [f"| {r.scenario} | {r.tried} | {r.survived} | {r.lost} | {r.how} |" for r in ROWS]
    return "\n".join(lines)


def _whole(config: pytest.Config, marker: str) -> bool:
    """Whether this session ran every scenario of ``marker`` (``make reliability``: the table;
    ``make soak``: the full-size soak's section): only then is it the page's; a run of some
    of them prints theirs and leaves the page alone."""
    return (
        config.getoption("markexpr") == marker
        and not config.getoption("keyword")
        and config.args_source == pytest.Config.ArgsSource.TESTPATHS
        and not config.getoption("maxfail")  # not stopped at the first failure (-x)
    )


def _write_soak(text: str, exitstatus: int) -> None:
    """The full-size soak's rows, between the page's ``<!-- soak -->`` and ``<!-- table -->``."""
    page = (REPO / "docs" / "reliability.md").read_text()
    head, rest = page.split("<!-- soak -->")
    tail = rest[rest.index("<!-- table -->") :]
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    section = (
        f"<!-- soak -->\n## The full-size soak (`make soak`)\n\nMeasured {when} on {_machine()} "
        f"(`make soak`, exit status {exitstatus}).\n\n{text}\n\n"
    )
    (REPO / "docs" / "reliability.md").write_text(head + section + tail)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not ROWS:
        return
    text = table()
    print("\n\nReliability scenarios\n" + text, file=sys.stderr)
    if DELIVERIES:
        print("\n" + deliveries_table(), file=sys.stderr)
    if _whole(session.config, "soak"):
        _write_soak(text, exitstatus)
        return
    if not _whole(session.config, "reliability"):
        print("(some scenarios only: docs/reliability.md left as it is)", file=sys.stderr)
        return
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    head = (REPO / "docs" / "reliability.md").read_text().split("<!-- table -->")[0]
    (REPO / "docs" / "reliability.md").write_text(
        f"{head}<!-- table -->\nMeasured {when} on {_machine()} (`make reliability`, exit status {exitstatus}).\n\n"
        f"{text}\n" + (f"\n{deliveries_table()}\n" if DELIVERIES else "")
    )


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An MLflow tracking server over PostgreSQL on loopback (SQLite when PostgreSQL is not here),
    as several hosts would share it."""
    home = tmp_path_factory.mktemp("mlflow-server")
    db = metadata_db(home)
    server = MlflowServer(db.url, ["--default-artifact-root", str(home / "artifacts")], home / "server.log", workers=2)
    try:
        server.start()
    except (RuntimeError, WaitTimeout) as exc:
        server.stop()
        db.drop()
        pytest.fail(str(exc))
    try:
        yield server.url
    finally:
        server.stop(grace=30)
        db.drop()
        shutil.rmtree(home, ignore_errors=True)
