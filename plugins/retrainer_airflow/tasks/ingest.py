"""ingest_batch's tasks: validate_batch -> route -> quarantine_batch | version_batch -> publish."""

from __future__ import annotations

import logging

from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from retrainer import storage
from retrainer.records import AnnouncedVersion, BatchValidation, VersionedBatch
from retrainer_airflow.assets import DATA_VERSIONS
from retrainer_airflow.tasks.runtime import Json, context, params, read, settings

log = logging.getLogger(__name__)

#: the asset events publish looks through to tell whether a version was announced already
ANNOUNCEMENTS_SEEN = 500


def validate_batch() -> Json:
    from retrainer.periods import PeriodError
    from retrainer.pipeline import ingest

    p = params()
    s = settings()
    batch = p.get("batch") or storage.join(s.landing, p["dataset"], f"{p['period']}.csv")
    try:
        result = ingest.validate_batch(s, p["dataset"], batch, p["period"])
    except (ingest.BatchPathError, PeriodError) as exc:  # not read, not copied: no retry can change it
        log.error("REFUSED %s %s: %s", p["dataset"], p["period"], exc)
        raise AirflowFailException(f"refused: {exc}") from exc
    log.info("%s", result.summary)
    for note in result.notes:  # accepted, but an operator should know
        log.warning("%s %s: %s", p["dataset"], p["period"], note)
    return result.to_json()


def route(validation: Json) -> str:
    return "version_batch" if read(BatchValidation, validation, "validate_batch").success else "quarantine_batch"


def quarantine_batch(validation: Json) -> None:
    from retrainer.pipeline import ingest

    checked = read(BatchValidation, validation, "validate_batch")
    out = ingest.quarantine_batch(settings(), checked)
    raise AirflowFailException(
        f"batch {out.dataset} {out.period} failed validation and was quarantined at {out.location}: "
        + "; ".join(out.failures)
    )


def version_batch(validation: Json) -> Json:
    from retrainer.pipeline import ingest

    return ingest.version_batch(settings(), read(BatchValidation, validation, "validate_batch")).to_json()


def publish(versioned: Json) -> Json:
    """Announce a new data version on the asset; a rerun that made no new version announces
    nothing (the task is skipped), so it cannot start a second retraining."""
    made = read(VersionedBatch, versioned, "version_batch")
    if not made.created:
        raise AirflowSkipException(f"{made.data_tag} already existed and was announced when it was made")
    announced = AnnouncedVersion(made.dataset, made.data_version, made.period, made.data_rev)
    # a cleared publish in the run that made the version: it was announced already (the data
    # registry's commit makes the version's identity exact, not only its label)
    for event in context()["inlet_events"][DATA_VERSIONS].ascending(False).limit(ANNOUNCEMENTS_SEEN):
        seen = event.extra or {}
        if (seen.get("dataset"), seen.get("data_version"), seen.get("data_rev")) == (
            announced.dataset,
            announced.data_version,
            announced.data_rev,
        ):
            raise AirflowSkipException(f"{made.data_tag} was announced already (asset event {event.timestamp})")
    extra = announced.to_json()
    context()["outlet_events"][DATA_VERSIONS].extra = extra
    return extra
