"""``wait_until``: the first truthy answer, a timeout that says what it waited for, how long and
what it saw last, exceptions passed through unless named as "not yet"."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from retrainer_dev.waiting import WaitTimeout, wait_until


def answers(*values: object) -> tuple[Callable[[], object], list[int]]:
    """A condition that answers ``values`` one after the other (the last one from then on), and its call count."""
    calls = [0]

    def condition() -> object:
        calls[0] += 1
        return values[min(calls[0], len(values)) - 1]

    return condition, calls


def test_returns_the_first_truthy_answer() -> None:
    condition, calls = answers(None, [], 0, {"state": "success"}, "later")
    assert wait_until(condition, 5, interval_s=0.001) == {"state": "success"}
    assert calls == [4]


def test_a_true_condition_returns_at_once_without_sleeping() -> None:
    t0 = time.monotonic()
    assert wait_until(lambda: "up", 5, interval_s=10) == "up"
    assert time.monotonic() - t0 < 1


def test_the_timeout_says_what_for_how_long_and_the_last_answer() -> None:
    condition, calls = answers(None, [], 0)
    with pytest.raises(WaitTimeout) as err:
        wait_until(condition, 0.3, interval_s=0.05, what="the run to end")
    message = str(err.value)
    assert message.startswith("the run to end: not within 0.3 s")
    assert message.count("last answer: 0") == 1
    assert f"({calls[0]} looks in " in message and calls[0] >= 3
    assert isinstance(err.value, TimeoutError)


def test_it_looks_a_last_time_at_the_deadline() -> None:
    """A long interval is cut short by the deadline: the condition is asked once more then."""
    t0 = time.monotonic()
    condition, calls = answers(False)
    with pytest.raises(WaitTimeout):
        wait_until(condition, 0.2, interval_s=30)
    assert calls == [2] and time.monotonic() - t0 < 5


def test_no_time_at_all_is_one_look() -> None:
    condition, calls = answers(None)
    with pytest.raises(WaitTimeout):
        wait_until(condition, 0, interval_s=1)
    assert calls == [1]


def test_details_end_the_timeout_message() -> None:
    with pytest.raises(WaitTimeout, match=r"(?s)not within.*\nscheduler log: nothing to do$"):
        wait_until(lambda: None, 0.05, interval_s=0.01, details=lambda: "scheduler log: nothing to do")


def test_an_exception_ends_the_wait_at_once_unchanged() -> None:
    calls = [0]

    def dead() -> bool:
        calls[0] += 1
        raise RuntimeError("the scheduler exited")

    with pytest.raises(RuntimeError, match="the scheduler exited"):
        wait_until(dead, 5, interval_s=0.001)
    assert calls == [1]


def test_exceptions_named_retry_on_mean_not_yet() -> None:
    calls = [0]

    def listening() -> bool:
        calls[0] += 1
        if calls[0] < 3:
            raise ConnectionRefusedError("not listening yet")
        return True

    assert wait_until(listening, 5, interval_s=0.001, retry_on=(OSError,)) is True
    assert calls == [3]


def test_a_timeout_after_retried_errors_names_and_chains_the_last() -> None:
    def refused() -> bool:
        raise ConnectionRefusedError("connection refused on 127.0.0.1:9")

    with pytest.raises(WaitTimeout) as err:
        wait_until(refused, 0.05, interval_s=0.01, what="the server", retry_on=(OSError,))
    assert "last error: ConnectionRefusedError: connection refused on 127.0.0.1:9" in str(err.value)
    assert isinstance(err.value.__cause__, ConnectionRefusedError)


class Pending:
    """A falsy answer with a long text."""

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return "pending " + "x" * 5000


def test_a_long_last_answer_is_cut_short() -> None:
    with pytest.raises(WaitTimeout) as err:
        wait_until(Pending, 0, what="a long answer")
    assert "last answer: pending xxx" in str(err.value) and len(str(err.value)) < 1200
