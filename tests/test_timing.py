"""make test-times: the measured block of a page is rewritten and nothing else, a page without
one gets it at its end, and the figures land in the block."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.timing import BEGIN, END, NOT_MEASURED, UNMARKED, Measured, Timed, render, rewrite, tiers_of

REPO = Path(__file__).resolve().parents[1]

PAGE = f"""# Tests

Static text before.

{BEGIN}
old figures
| a | table |
{END}

Static text after.
"""


def _measured() -> Measured:
    def timed(n: int, seconds: float, outcome: str, *markers: str) -> Timed:
        return Timed(f"tests/test_{n}.py::test_{n}", seconds, outcome, tiers_of(set(markers)))

    tests = (
        timed(1, 0.5, "passed"),
        timed(2, 1.5, "passed", "parametrize"),
        timed(3, 300.0, "passed", "integration", "scheduler"),
        timed(4, 60.0, "failed", "integration", "celery", "s3"),
        timed(5, 2.0, "skipped", "integration", "browser", "scheduler"),
        *(timed(10 + i, 0.1 * i, "passed") for i in range(12)),
    )
    return Measured(
        at=datetime(2030, 1, 2, 3, 4, tzinfo=UTC),
        machine="2 CPUs, 8.0 GB of memory, Linux, Python 3.11.7",
        markers="not reliability",
        wall_s=1234.0,
        exitstatus=1,
        tests=tests,
    )


def test_the_block_is_replaced_and_the_rest_kept() -> None:
    new = rewrite(PAGE, "new figures")
    assert new == PAGE.replace("old figures\n| a | table |", "new figures")
    assert rewrite(new, "newer") == PAGE.replace("old figures\n| a | table |", "newer")


def test_a_page_without_the_markers_gets_the_block_at_its_end() -> None:
    page = "# Tests\n\nNothing measured here.\n"
    assert rewrite(page, "figures") == f"{page}\n{BEGIN}\nfigures\n{END}\n"
    assert rewrite("", "figures") == f"{BEGIN}\nfigures\n{END}\n"


def test_a_page_with_half_a_block_is_refused() -> None:
    with pytest.raises(ValueError, match="without"):
        rewrite(f"text\n{BEGIN}\nno end\n", "figures")
    with pytest.raises(ValueError, match="without"):
        rewrite(f"text\n{END}\n", "figures")


def test_tiers() -> None:
    assert tiers_of(set()) == (UNMARKED,)
    assert tiers_of({"parametrize", "timeout"}) == (UNMARKED,)
    assert tiers_of({"s3", "celery", "integration"}) == ("integration", "celery", "s3")


def test_the_figures() -> None:
    text = render(_measured())
    assert "Measured 2030-01-02 03:04 UTC on 2 CPUs, 8.0 GB of memory, Linux, Python 3.11.7." in text
    assert '`pytest -m "not reliability"` (exit status 1): 20.6 min of wall time' in text
    assert "15 passed, 1 failed, 1 skipped." in text
    assert "| unit and static | 14 | 8.6 s |" in text  # 0.5 + 1.5 + 0.1 * (0 + ... + 11)
    assert "| integration | 3 | 6.0 min |" in text
    assert "| scheduler | 2 | 5.0 min |" in text
    assert "| celery | 1 | 60.0 s |" in text and "| browser | 1 | 2.0 s |" in text
    assert "reliability |" not in text  # a tier with no test has no row
    rows = [line for line in text.splitlines() if line.startswith("| `tests/")]
    assert len(rows) == 10
    assert rows[0] == "| `tests/test_3.py::test_3` | integration, scheduler | passed | 5.0 min |"
    assert rows[1].startswith("| `tests/test_4.py::test_4` | integration, celery, s3 | failed |")
    assert BEGIN not in text and END not in text


def test_the_testing_page_has_one_block() -> None:
    page = (REPO / "docs" / "testing.md").read_text()
    assert page.count(BEGIN) == 1 and page.count(END) == 1
    block = page[page.index(BEGIN) + len(BEGIN) : page.index(END)].strip()
    assert block == NOT_MEASURED or block.startswith("Measured ")
