"""Measured test times (``make test-times``): with ``RETRAINER_TEST_TIMES_PAGE`` set to a page,
the session's figures are written between the page's markers at its end.

The figures: when (UTC), the machine, the ``-m`` expression, pytest's wall time, how many tests
passed, failed and were skipped, the time of each tier (setup, call and teardown of the tests
carrying its marker; "unit and static" for the tests with none) and the ten slowest tests.
Only the block between the markers changes; a page without them gets the block at its end.
"""

from __future__ import annotations

import os
import platform
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest

PAGE_VARIABLE = "RETRAINER_TEST_TIMES_PAGE"
BEGIN = "<!-- measured: written by make test-times -->"
END = "<!-- /measured -->"
NOT_MEASURED = "Not measured yet: run `make test-times`."
TIERS = ("integration", "scheduler", "celery", "browser", "s3", "reliability", "soak")
UNMARKED = "unit and static"
SLOWEST = 10


@dataclass(frozen=True)
class Timed:
    nodeid: str
    seconds: float
    outcome: str  # passed, failed or skipped
    tiers: tuple[str, ...]


@dataclass(frozen=True)
class Measured:
    """What one session measured."""

    at: datetime
    machine: str
    markers: str
    wall_s: float
    exitstatus: int
    tests: tuple[Timed, ...] = field(default=())


def tiers_of(markers: set[str]) -> tuple[str, ...]:
    """The tiers a test counts in: each tier marker it carries, or "unit and static" for none."""
    return tuple(t for t in TIERS if t in markers) or (UNMARKED,)


def _duration(seconds: float) -> str:
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def render(m: Measured) -> str:
    """The block's text between the markers: a few lines and two tables of Markdown."""
    counts = {o: sum(t.outcome == o for t in m.tests) for o in ("passed", "failed", "skipped")}
    per_tier: dict[str, list[float]] = defaultdict(list)
    for t in m.tests:
        for tier in t.tiers:
            per_tier[tier].append(t.seconds)
    command = f'pytest -m "{m.markers}"' if m.markers else "pytest"
    lines = [
        f"Measured {m.at:%Y-%m-%d %H:%M} UTC on {m.machine}.",
        "",
        f"`{command}` (exit status {m.exitstatus}): {_duration(m.wall_s)} of wall time; "
        f"{counts['passed']} passed, {counts['failed']} failed, {counts['skipped']} skipped.",
        "",
        "| tier | tests | time |",
        "|---|---|---|",
    ]
    for tier in (UNMARKED, *TIERS):
        if per_tier.get(tier):
            lines.append(f"| {tier} | {len(per_tier[tier])} | {_duration(sum(per_tier[tier]))} |")
    lines += ["", f"The {SLOWEST} slowest tests:", "", "| test | tiers | outcome | time |", "|---|---|---|---|"]
    for t in sorted(m.tests, key=lambda t: -t.seconds)[:SLOWEST]:
        nodeid = t.nodeid.replace("|", "\\|")
        lines.append(f"| `{nodeid}` | {', '.join(t.tiers)} | {t.outcome} | {_duration(t.seconds)} |")
    return "\n".join(lines)


def rewrite(page: str, body: str) -> str:
    """``page`` with the text between its markers replaced by ``body``; a page without the
    markers gets them, around ``body``, at its end. Text outside the markers is kept as it is."""
    block = f"{BEGIN}\n{body.strip()}\n{END}"
    start = page.find(BEGIN)
    if start < 0:
        if END in page:
            raise ValueError(f"the page has {END} without {BEGIN}")
        return (page.rstrip("\n") + "\n\n" if page.strip() else "") + block + "\n"
    end = page.find(END, start)
    if end < 0:
        raise ValueError(f"the page has {BEGIN} without {END} after it")
    return page[:start] + block + page[end + len(END) :]


def machine() -> str:
    cpu = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines() if "model name" in line]
        cpu = f"{names[0]}, " if names else ""
    memory = ""
    meminfo = Path("/proc/meminfo")
    if meminfo.is_file():
        kb = int(meminfo.read_text().split()[1])
        memory = f", {kb / 1024 / 1024:.1f} GB of memory"
    return f"{cpu}{os.cpu_count()} CPUs{memory}, {platform.platform()}, Python {platform.python_version()}"


class _Recorder:
    """Collects each test's markers, durations and outcome over the session."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.markers: dict[str, set[str]] = {}
        self.seconds: dict[str, float] = defaultdict(float)
        self.outcomes: dict[str, str] = {}

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_protocol(self, item: pytest.Item) -> None:
        self.markers[item.nodeid] = {m.name for m in item.iter_markers()}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.seconds[report.nodeid] += report.duration
        before = self.outcomes.get(report.nodeid)
        if report.failed:
            self.outcomes[report.nodeid] = "failed"
        elif report.skipped and before != "failed":
            self.outcomes[report.nodeid] = "skipped"
        elif report.when == "call" and before is None:
            self.outcomes[report.nodeid] = "passed"

    def measured(self, config: pytest.Config, exitstatus: int) -> Measured:
        tests = tuple(
            Timed(nodeid, self.seconds[nodeid], outcome, tiers_of(self.markers.get(nodeid, set())))
            for nodeid, outcome in self.outcomes.items()
        )
        return Measured(
            at=datetime.now(UTC),
            machine=machine(),
            markers=config.getoption("markexpr") or "",
            wall_s=time.monotonic() - self.started,
            exitstatus=int(exitstatus),
            tests=tests,
        )


def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get(PAGE_VARIABLE):
        config.pluginmanager.register(_Recorder(), "retrainer-test-times")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    recorder = session.config.pluginmanager.get_plugin("retrainer-test-times")
    if not isinstance(recorder, _Recorder):
        return
    page = Path(session.config.invocation_params.dir) / os.environ[PAGE_VARIABLE]
    try:
        text = page.read_text() if page.exists() else ""
        page.write_text(rewrite(text, render(recorder.measured(session.config, exitstatus))))
    except (OSError, ValueError) as exc:
        print(f"\ntest times not written to {page}: {exc}", file=sys.stderr)
        return
    print(f"\ntest times written to {page}", file=sys.stderr)
