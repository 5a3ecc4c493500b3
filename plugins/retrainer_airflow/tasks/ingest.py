"""ingest_batch's tasks: validate_batch -> route -> quarantine_batch | version_batch -> publish;
and rerun_quarantined's plan_reruns (quarantined deliveries judged again by a changed spec)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from retrainer.outcomes import NothingToDo, Refused
from retrainer_airflow.assets import DATA_VERSIONS
from retrainer_airflow.tasks.boundary import record_task
from retrainer_airflow.tasks.runtime import context, settings

if TYPE_CHECKING:
    from retrainer.records import AnnouncedVersion, BatchValidation, IngestConf, RerunConf, StartIngest, VersionedBatch

log = logging.getLogger(__name__)

#: the asset events publish looks through to tell whether a version was announced already
ANNOUNCEMENTS_SEEN = 500


@record_task
def validate_batch(params: IngestConf) -> BatchValidation:
    """Read the batch the run's conf names (``<landing>/<dataset>/<period>.csv`` by default) and
    validate it; a batch outside the landing location or a period that is not one of the
    dataset's is refused unread (no retry can change it)."""
    from retrainer import storage
    from retrainer.periods import PeriodError
    from retrainer.pipeline import ingest

    s = settings()
    batch = params.batch or storage.join(s.landing, params.dataset, f"{params.period}.csv")
    try:
        result = ingest.validate_batch(s, params.dataset, batch, params.period)
    except (ingest.BatchPathError, PeriodError) as exc:  # not read, not copied
        log.error("REFUSED %s %s: %s", params.dataset, params.period, exc)
        raise Refused(f"refused: {exc}") from exc
    log.info("%s", result.summary)
    for note in result.notes:  # accepted, but an operator should know
        log.warning("%s %s: %s", params.dataset, params.period, note)
    return result


@record_task(branch=True)
def route(validation: BatchValidation) -> str:
    return "version_batch" if validation.success else "quarantine_batch"


@record_task(retries=0)  # it fails its run on purpose: nothing to retry
def quarantine_batch(validation: BatchValidation) -> None:
    """Copy the failed batch and its validation result side by side into quarantine, and fail
    the run naming every failed expectation."""
    from retrainer.pipeline import ingest

    out = ingest.quarantine_batch(settings(), validation)
    raise Refused(
        f"batch {out.dataset} {out.period} failed validation and was quarantined at {out.location}: "
        + "; ".join(out.failures)
    )


@record_task
def version_batch(validation: BatchValidation) -> VersionedBatch:
    from retrainer.pipeline import ingest

    return ingest.version_batch(settings(), validation)


@record_task
def publish(versioned: VersionedBatch) -> AnnouncedVersion:
    """Announce a new data version on the asset; a rerun that made no new version announces
    nothing (the task is skipped), so it cannot start a second retraining."""
    from retrainer.records import AnnouncedVersion

    if not versioned.created:
        raise NothingToDo(f"{versioned.data_tag} already existed and was announced when it was made")
    announced = AnnouncedVersion(versioned.dataset, versioned.data_version, versioned.period, versioned.data_rev)
    # a cleared publish in the run that made the version: it was announced already (the data
    # registry's commit makes the version's identity exact, not only its label)
    mine = (announced.dataset, announced.data_version, announced.data_rev)
    for event in context()["inlet_events"][DATA_VERSIONS].ascending(False).limit(ANNOUNCEMENTS_SEEN):
        seen = event.extra or {}
        if (seen.get("dataset"), seen.get("data_version"), seen.get("data_rev")) == mine:
            raise NothingToDo(f"{versioned.data_tag} was announced already (asset event {event.timestamp})")
    context()["outlet_events"][DATA_VERSIONS].extra = announced.to_json()
    return announced


@record_task
def plan_reruns(params: RerunConf) -> list[StartIngest]:
    """An ``ingest_batch`` run for each quarantined delivery of the dataset (of the period, if
    given; else of every period not versioned yet), named by the delivery and the spec's text:
    run again with the same spec, it starts nothing; after another spec change, it judges them
    anew."""
    from retrainer.pipeline import ingest

    planned = ingest.quarantined_reruns(settings(), params.dataset, params.period)
    if not planned:
        raise NothingToDo(
            f"{params.dataset} has no quarantined delivery"
            + (f" of {params.period}" if params.period else " of a period not versioned yet")
        )
    for start in planned:
        log.info(
            "judging again: %s %s (%s) as run %s",
            params.dataset,
            start.conf.period,
            start.conf.batch,
            start.trigger_run_id,
        )
    return planned
