"""The two outcomes a step ends with besides a record: which of the library's errors say that no
retry can change them (``Refused``) and which that there is nothing to do (``NothingToDo``)."""

from __future__ import annotations

import pytest

from retrainer.data.validation import DataValidationError
from retrainer.data.versioning import DataVersionError, DataVersionMovedError
from retrainer.outcomes import NothingToDo, Refused
from retrainer.periods import PeriodError, check
from retrainer.pipeline.ingest import BatchPathError
from retrainer.pipeline.release import ReviewPendingError
from retrainer.pipeline.train import NotEnoughDataError
from retrainer.records import ContractError, TrainingPlan


@pytest.mark.parametrize(
    "error",
    [PeriodError, BatchPathError, DataValidationError, DataVersionMovedError, ReviewPendingError, ContractError],
)
def test_errors_no_retry_can_change_are_refusals(error: type[Exception]) -> None:
    assert issubclass(error, Refused) and not issubclass(error, NothingToDo)


def test_not_enough_data_is_nothing_to_do_and_keeps_its_old_kind() -> None:
    assert issubclass(NotEnoughDataError, NothingToDo) and issubclass(NotEnoughDataError, LookupError)
    assert not issubclass(NotEnoughDataError, Refused)


def test_an_error_a_retry_may_mend_is_neither() -> None:
    """A data version not found may be found once the registry is pulled again: the try fails and retries."""
    assert not issubclass(DataVersionError, (Refused, NothingToDo))


def test_the_library_raises_them_with_what_was_wrong() -> None:
    with pytest.raises(Refused, match="period '2011-13' is not monthly"):
        check("2011-13", "monthly")
    with pytest.raises(Refused, match=r"TrainingPlan: field 'dataset' is missing"):
        TrainingPlan.from_json({})
