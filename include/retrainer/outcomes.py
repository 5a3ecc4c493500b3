"""How a step ends when it does not return a record, in the domain's words.

Two kinds of error that the orchestrator turns into task states (the Airflow adapters map them
in ``retrainer_airflow.tasks.boundary``), so a step says what happened without knowing who runs it:

- ``Refused``: the input is wrong in a way no retry can change (a bad period, a batch outside
  the landing location, a window that fails validation, a record of the wrong shape): the task
  fails at once, without retries, with this message;
- ``NothingToDo``: the step has nothing to do (no data for the interval): the task is skipped,
  with this message.

Domain errors of those kinds subclass one of them (``periods.PeriodError`` is a ``Refused``);
any other exception is a failure a retry may mend.
"""

from __future__ import annotations


class Refused(Exception):
    """Wrong input that no retry can change: the step fails at once, saying what and where."""


class NothingToDo(Exception):
    """The step has nothing to do: it is skipped, saying why."""
