"""The typed task boundary: a task is declared once, as a function typed with the records it takes
and returns, and ``record_task`` makes it an Airflow task.

Shaped like Airflow's own ``@task`` (it is one underneath, with the function's own signature, so
a DAG wires it by its return values) and like TFX's component specs (the interface declared once,
the framework doing the wiring). When the task runs, the boundary:

1. reads each argument from XCom (or the run's Params, for a parameter named ``params``, which
   Airflow passes by name) as the type the function declares: a record of ``retrainer.records``,
   a list of them, an optional one, or a plain value; a wrong shape fails the task without
   retries, naming the task, the argument and the field;
2. calls the function with the records;
3. maps the domain's outcomes to task states: ``retrainer.outcomes.Refused`` fails the task at
   once (no retry can change it), ``NothingToDo`` skips it, any other error fails the try (and
   Airflow retries it);
4. pushes what the function returned as strict JSON (``Record.to_json``; a list of records as a
   list).

The functions name their records in annotations only (imported under ``TYPE_CHECKING``): they are
resolved from ``retrainer.records`` when the task runs, so importing a task module while a DAG
file is parsed costs its functions alone, never the records or the library.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from airflow.sdk import task
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from retrainer.outcomes import NothingToDo, Refused

log = logging.getLogger(__name__)


def record_task(fn: Callable[..., Any] | None = None, /, *, branch: bool = False, **task_kwargs: Any) -> Any:
    """Declare ``fn`` as an Airflow task whose arguments and result are records.

    :param fn: the task's function, typed with records; its name is the task id.
    :param branch: a branching task (``@task.branch``): it returns the task id to follow.
    :param task_kwargs: ``@task``'s arguments (``retries``, ``pool``, ...); a DAG may change them
        with ``.override(...)``. A task that returns one record also pushes each of its fields as
        an XCom of its own (``multiple_outputs``), so the XCom tab of the Airflow UI lists them
        (the evaluation's ``report_uri`` a link); downstream tasks read the whole record.
    """

    def declare(fn: Callable[..., Any]) -> Any:
        @functools.wraps(fn)
        def run(*args: Any, **kwargs: Any) -> Any:
            return call(fn, *args, **kwargs)

        kwargs = {"multiple_outputs": not branch and returns_one_record(fn), **task_kwargs}
        return (task.branch if branch else task)(run, **kwargs)

    return declare if fn is None else declare(fn)


def returns_one_record(fn: Callable[..., Any]) -> bool:
    """Whether ``fn`` is declared to return one record (a class name, as the task modules write
    it under ``from __future__ import annotations``), read without importing the records: a DAG
    file's parse decides it."""
    returned = fn.__annotations__.get("return")
    if isinstance(returned, str):
        return returned.isidentifier() and returned[0].isupper() and returned != "None"
    return isinstance(returned, type) and hasattr(returned, "to_json")


def call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run ``fn`` as its task: arguments decoded as declared, outcomes mapped, the result encoded."""
    bound = inspect.signature(fn).bind(*args, **kwargs)
    hints = hints_of(fn)
    decoded = {
        name: read(hints.get(name, Any), value, f"{fn.__name__}: argument '{name}'", name)
        for name, value in bound.arguments.items()
    }
    with outcomes_as_task_states():
        out = fn(**decoded)
    return encode(out)


@contextmanager
def outcomes_as_task_states() -> Iterator[None]:
    """The library's outcomes as task states, for a task or an operator that calls the library:
    ``NothingToDo`` skips the task, ``Refused`` fails it at once (no retry can change it)."""
    try:
        yield
    except NothingToDo as exc:
        log.info("skipped: %s", exc)  # the task's log says why, not only that it skipped
        raise AirflowSkipException(str(exc)) from exc
    except Refused as exc:
        log.error("failed, and no retry can change it: %s", exc)
        raise AirflowFailException(str(exc)) from exc


def read(tp: Any, value: Any, where: str, name: str) -> Any:
    """``value`` (from XCom, a conf or the Params) as ``tp``; a wrong shape fails the task at
    once, naming ``where`` it was read and the field (``name.field``)."""
    from retrainer.records import ContractError, decode

    try:
        return decode(tp, value, name)
    except ContractError as exc:
        raise AirflowFailException(f"{where} is not a {_name(tp)}: {exc}") from exc


def encode(out: Any) -> Any:
    """What a task returns, as strict JSON for XCom: records by ``to_json``, lists of them as lists."""
    from retrainer.records import Record, to_strict_json

    if isinstance(out, Record):
        return out.to_json()
    if isinstance(out, (list, tuple)):
        return [encode(item) for item in out]
    if out is None or isinstance(out, (str, int, bool)):
        return out
    value, problems = to_strict_json(out)
    if problems:
        raise AirflowFailException(f"the task returned a value that is not strict JSON: {problems}")
    return value


@functools.cache
def hints_of(fn: Callable[..., Any]) -> dict[str, Any]:
    """``fn``'s parameter types, its annotations resolved in its module and ``retrainer.records``;
    an annotation that names neither (an Airflow object under ``TYPE_CHECKING``) reads as ``Any``."""
    import retrainer.records

    namespace = {**vars(retrainer.records), **fn.__globals__}
    out: dict[str, Any] = {}
    for name, annotation in fn.__annotations__.items():
        try:
            # the annotation's own text, evaluated as typing.get_type_hints would, one name at a time
            out[name] = eval(annotation, namespace) if isinstance(annotation, str) else annotation  # noqa: S307
        except NameError:
            out[name] = Any
    return out


def _name(tp: Any) -> str:
    """A type as a message names it: ``TrainingPlan``, ``LandingScan | None``."""
    return getattr(tp, "__name__", None) or str(tp).replace("retrainer.records.", "")
