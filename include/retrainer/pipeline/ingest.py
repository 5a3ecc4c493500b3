"""Ingest: a landed batch is validated, then quarantined with its reason or versioned.

validate_batch -> quarantine_batch | version_batch (the ``ingest_batch`` DAG). A batch may
be delivered to a local folder or to ``s3://``; the validation results and the quarantine
may live on either, so no step relies on a folder another worker wrote.
"""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from retrainer import periods, storage
from retrainer.data.batchchecks import (
    Reference,
    appended,
    compare_redelivery,
    redelivery_problems,
    reference_periods,
)
from retrainer.data.batchfile import BatchMissingError, DataFileError, canonical_frame, capped, write_frame
from retrainer.data.validation import DataValidationError, file_md5, validate_file
from retrainer.data.versioning import DataRegistry, DataVersionError, Decide, Held, period_frame
from retrainer.outcomes import Refused
from retrainer.records import BatchValidation, IngestConf, QuarantinedBatch, StartIngest, VersionedBatch
from retrainer.settings import Settings
from retrainer.spec.dataset import DatasetSpec

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

#: the file a quarantine folder is complete with: the batch's validation result
QUARANTINE_MARKER = "validation.json"
#: what a quarantine folder holds instead of a batch too large to keep: its name, size, MD5 and reason
DELIVERY_RECORD = "delivery.json"


class BatchPathError(Refused, ValueError):
    """A batch named outside the landing location, or not a regular file there: it is not read,
    copied or quarantined (it may be anything on the worker, e.g. ``/etc/passwd``)."""


def checked_batch(settings: Settings, batch: str) -> str:
    """``batch`` if it is a delivery under the landing location, else BatchPathError. A local
    path is resolved (links followed, ``..`` removed) before it is compared; a relative one is
    taken below the landing location."""
    landing = settings.landing
    outside = f"batch {batch!r} is outside the landing location {landing}: only deliveries under it are read"
    if storage.is_s3(batch) or storage.is_s3(landing):
        inside = storage.is_s3(batch) and storage.is_s3(landing) and batch.startswith(landing.rstrip("/") + "/")
        if not inside or ".." in batch.split("/"):
            raise BatchPathError(outside)
        return batch
    root = Path(landing).resolve()
    given = Path(batch) if Path(batch).is_absolute() else root / batch
    real = given.resolve()
    if not real.is_relative_to(root):
        via = f" (it leads to {real})" if real != given.absolute() else ""
        raise BatchPathError(outside.replace(": only", f"{via}: only"))
    if real.exists() and not real.is_file():
        raise BatchPathError(f"batch {batch!r} is not a regular file (a folder, a pipe or a device)")
    return str(given)


def _reference(settings: Settings, spec: DatasetSpec, period: str) -> Reference:
    """The versioned data a batch is compared with: its own period if it was versioned (a
    re-delivery), the periods before it and the same season a year before, from the latest
    data version."""
    registry = DataRegistry(settings)
    try:
        latest = registry.latest(spec.name)
    except DataVersionError:
        return Reference()
    before = reference_periods(latest.periods, period)
    frames = {p: registry.read_periods(spec, latest, [p]) for p in before}
    texts = {period: registry.read_text(spec, latest, period)} if period in latest.periods else {}
    frames.update({p: period_frame(spec, text) for p, text in texts.items()})  # read once, used twice
    last_year = periods.a_year_before(period, spec.frequency)
    season = registry.read_periods(spec, latest, [last_year]) if last_year in latest.periods else None
    return Reference(latest.label, frames, texts, season)


def validate_batch(settings: Settings, dataset: str, batch: str, period: str) -> BatchValidation:
    """Validate a landed batch file: can it be read as the spec's table, does it meet the
    spec's suite, does it fit the data already versioned. The full result is kept on disk."""
    storage.sweep_scratch()  # what ingests killed half way left on this host
    batch = checked_batch(settings, batch)
    spec = settings.load_spec(dataset)
    periods.check(period, spec.frequency)  # PeriodError: refused before anything is read
    with storage.local_copy(batch, settings.s3_endpoint_url) as path:
        if path is None:
            raise BatchMissingError(f"{batch}: batch file for {dataset} {period} does not exist")
        md5 = file_md5(path)
        report = validate_file(path, spec, period, source=batch, reference=_reference(settings, spec, period))
    result_path = storage.join(settings.validation_results, dataset, period, f"{md5}.json")
    storage.write_text(result_path, report.to_json(), settings.s3_endpoint_url)
    return BatchValidation(
        dataset=dataset,
        period=period,
        batch=batch,
        md5=md5,
        success=report.success,
        n_rows=report.n_rows,
        evaluated=report.evaluated,
        failures=capped(report.failures, result_path),  # the result file keeps every one
        summary=report.summary(),
        result_path=result_path,
        notes=capped(report.notes, result_path),
        kept_bytes=not report.too_large,
    )


def quarantine_batch(settings: Settings, validation: BatchValidation) -> QuarantinedBatch:
    """Copy a failed batch and its validation result, side by side, into quarantine; a batch
    refused for its size is not copied: ``delivery.json`` beside the result records its name,
    size, MD5 and reason instead.

    The folder is keyed by the batch's content hash and appears in one step (locally written
    elsewhere, then renamed; on S3 ``validation.json``, what a reader looks for, goes last),
    so a retry finds it complete instead of writing it twice.
    """
    endpoint = settings.s3_endpoint_url
    name = validation.batch.rstrip("/").rsplit("/", 1)[-1]
    dest = storage.join(settings.quarantine, validation.dataset, validation.period, validation.md5[:12])
    if not storage.exists(storage.join(dest, QUARANTINE_MARKER), endpoint):
        storage.set_aside_incomplete(dest, QUARANTINE_MARKER, endpoint)  # an interrupted copy, on a local disk
        staging = storage.temp_dir("retrainer-quarantine-")
        try:
            with storage.local_copy(validation.batch, endpoint) as src:
                if src is None or file_md5(src) != validation.md5:
                    raise DataFileError(f"{validation.batch} changed or vanished after it was validated")
                if validation.kept_bytes:
                    shutil.copy2(src, staging / name)
                else:
                    (staging / DELIVERY_RECORD).write_text(_delivery_record(validation, name, src.stat().st_size))
            result = storage.read_bytes(validation.result_path, endpoint)
            if result is None:
                raise DataFileError(f"{validation.result_path}: the validation result is gone")
            (staging / QUARANTINE_MARKER).write_bytes(result)
            storage.publish_dir(staging, dest, QUARANTINE_MARKER, endpoint)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    log.error(
        "QUARANTINED %s %s -> %s: %s", validation.dataset, validation.period, dest, "; ".join(validation.failures)
    )
    return QuarantinedBatch(
        dataset=validation.dataset,
        period=validation.period,
        batch=validation.batch,
        md5=validation.md5,
        location=dest,
        failures=validation.failures,
    )


def _delivery_record(validation: BatchValidation, name: str, size: int) -> str:
    """What was delivered, for a batch too large to keep: enough to find it again and to tell
    the same bytes delivered twice, without the bytes."""
    record = {
        "file": name,
        "batch": validation.batch,
        "size_bytes": size,
        "md5": validation.md5,
        "reason": "; ".join(validation.failures),
    }
    return json.dumps(record, indent=2)


class RedeliveryRefused(Refused, ValueError):
    """A delivery of a period that another delivery versioned after this one was validated, and
    that the spec's ``ingest.redelivery`` refuses against what that one made."""


def _decision(spec: DatasetSpec, period: str, frame: pd.DataFrame, scratch: Path) -> Decide:
    """What the delivery (``frame``, canonical) makes of ``period`` as the registry holds it
    when the version is made: itself when the period is new; against versioned rows, by
    ``ingest.redelivery`` (nothing new when the rows are the same, the late rows added under
    ``append``, RedeliveryRefused where the policy refuses it)."""

    def decide(held: Held | None) -> Path | None:
        made = frame
        if held is not None:
            versioned = canonical_frame(io.StringIO(held.text), spec, spec.ingest.other_columns)
            diff = compare_redelivery(frame, versioned, spec)
            if diff.same or frame.equals(versioned):
                return None
            refusals = redelivery_problems(diff, spec, period, held.version.label)
            if refusals:
                raise RedeliveryRefused("; ".join(refusals))
            made = appended(versioned, frame, spec) if spec.ingest.redelivery == "append" else frame
            if made.equals(versioned):
                return None
        return write_frame(made, scratch / f"{period}.csv")

    return decide


def version_batch(settings: Settings, validation: BatchValidation) -> VersionedBatch:
    """Add an accepted batch to the DVC data registry as a new immutable data version; the
    same content as the period's versioned rows (in whatever form) is that version, not a new
    one. The re-delivery policy is applied again under the registry's lock (``decide_batch``):
    a delivery of a period that another one versioned since it was validated is judged against
    that, and quarantined with the reason when the policy refuses it."""
    if not validation.success:
        raise DataValidationError(f"refusing to version {validation.batch}: {validation.summary}")
    spec = settings.load_spec(validation.dataset)
    period = validation.period
    with storage.local_copy(validation.batch, settings.s3_endpoint_url) as path:
        md5 = file_md5(path) if path is not None else "(gone)"
        if path is None or md5 != validation.md5:
            raise DataValidationError(
                f"{validation.batch} changed after it was validated (md5 {validation.md5} -> {md5})"
            )
        # one spelling of the same data (encoding, line ends, column and row order, time zone,
        # number spelling), so a re-encoded delivery of versioned data is that version
        frame = canonical_frame(path, spec, spec.ingest.other_columns)
        with storage.scratch("retrainer-canonical-") as scratch:
            try:
                res = DataRegistry(settings).decide_batch(spec, period, _decision(spec, period, frame, scratch))
            except RedeliveryRefused as exc:
                _quarantine_late(settings, validation, str(exc))
                raise
    if not res.created:
        log.info("%s %s: the same rows as versioned in %s; no new version", spec.name, period, res.version.label)
    return VersionedBatch(
        dataset=spec.name,
        period=validation.period,
        data_version=res.version.label,
        data_tag=res.version.tag,
        data_rev=res.version.rev,
        created=res.created,
        pushed_bytes=res.pushed_bytes,
        n_periods=len(res.version.periods),
    )


def _quarantine_late(settings: Settings, validation: BatchValidation, reason: str) -> QuarantinedBatch:
    """Quarantine a batch that passed validation but was refused where its version was to be
    made, with that reason in a validation result of its own (beside the first one)."""
    failure = f"refused where the version is made: {reason}"
    report = json.loads(storage.read_text(validation.result_path, settings.s3_endpoint_url) or "{}")
    report.update(success=False, failures=[failure])
    late_path = validation.result_path.removesuffix(".json") + ".versioning.json"
    storage.write_text(late_path, json.dumps(report, indent=2), settings.s3_endpoint_url)
    late = dataclasses.replace(
        validation, success=False, failures=[failure], summary=f"{validation.summary}; {failure}", result_path=late_path
    )
    return quarantine_batch(settings, late)


#: the name a quarantined delivery is put back under when it is gone from where it landed
REQUEUED = "requeued"


def rerun_id(dataset: str, period: str, md5: str, spec_text: str) -> str:
    """The ingest run of a quarantined delivery judged again: one per delivery (its bytes) and
    spec (its text), so the same spec judges a delivery once, and a changed spec judges it anew."""
    import hashlib

    digest = hashlib.sha256(spec_text.encode()).hexdigest()[:10]
    return f"rerun__{dataset}__{period}__{md5[:16]}__spec_{digest}"


def quarantined_reruns(settings: Settings, dataset: str, period: str | None = None) -> list[StartIngest]:
    """An ``ingest_batch`` run for each quarantined delivery of ``dataset``, to judge it again by
    the spec as it is now (after the spec was changed to allow it): of ``period`` alone when
    given, else of every period no data version holds yet. Each is named by ``rerun_id``; its
    batch is the delivery where it landed, while its bytes are still there, else the quarantined
    copy put back in the landing location as ``<period>.requeued.<ext>`` (the same bytes: the
    landing watch starts nothing for it)."""
    spec_path = settings.spec_path(dataset)
    spec = settings.load_spec(dataset)  # a broken spec refuses here, before anything is started
    if period is not None:
        periods.check(period, spec.frequency)
    try:
        versioned = set(DataRegistry(settings).latest(dataset).periods)
    except DataVersionError:
        versioned = set()
    endpoint = settings.s3_endpoint_url
    found = storage.list_files(storage.join(settings.quarantine, dataset), endpoint)
    out = []
    for marker in sorted((f for f in found if f.relative.endswith("/" + QUARANTINE_MARKER)), key=lambda f: f.relative):
        held_period = marker.relative.split("/")[0]
        if (period is not None and held_period != period) or (period is None and held_period in versioned):
            continue
        folder = marker.relative.rsplit("/", 1)[0]
        copies = [f for f in found if f.relative.startswith(folder + "/") and f is not marker]
        if len(copies) != 1:
            log.warning("quarantine %s/%s holds %d delivered files: left alone", dataset, folder, len(copies))
            continue
        if copies[0].relative.endswith("/" + DELIVERY_RECORD):  # too large to keep: its bytes are not here
            log.warning(
                "quarantine %s/%s holds a record of a delivery, not its bytes: deliver it again", dataset, folder
            )
            continue
        batch, md5 = _batch_to_rerun(settings, dataset, held_period, marker.uri, copies[0])
        run = rerun_id(dataset, held_period, md5, spec_path.read_text())
        out.append(StartIngest(run, IngestConf(dataset, held_period, batch)))
    log.info("%s: %d quarantined deliveries to judge again%s", dataset, len(out), f" ({period})" if period else "")
    return out


def _batch_to_rerun(
    settings: Settings, dataset: str, period: str, marker_uri: str, copy: storage.StoredFile
) -> tuple[str, str]:
    """Where the quarantined delivery is in the landing location (put back if it is gone), and its MD5."""
    import json

    endpoint = settings.s3_endpoint_url
    with storage.local_copy(copy.uri, endpoint) as path:
        if path is None:
            raise DataFileError(f"{copy.uri}: the quarantined delivery vanished")
        md5 = file_md5(path)
        data = path.read_bytes()
    source = json.loads(storage.read_text(marker_uri, endpoint) or "{}").get("source") or ""
    if source:
        try:
            landed = checked_batch(settings, source)
        except BatchPathError:
            landed = ""
        if landed:
            with storage.local_copy(landed, endpoint) as there:
                if there is not None and file_md5(there) == md5:
                    return landed, md5
    suffix = copy.relative.rsplit(".", 1)[-1] if "." in copy.relative.rsplit("/", 1)[-1] else "csv"
    back = storage.join(settings.landing, dataset, f"{period}.{REQUEUED}.{suffix}")
    storage.write_bytes(back, data, endpoint)
    return back, md5
