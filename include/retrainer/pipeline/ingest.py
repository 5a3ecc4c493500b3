"""Ingest: a landed batch is validated, then quarantined with its reason or versioned.

validate_batch -> quarantine_batch | version_batch (the ``ingest_batch`` DAG). A batch may
be delivered to a local folder or to ``s3://``; the validation results and the quarantine
may live on either, so no step relies on a folder another worker wrote.
"""

from __future__ import annotations

import logging
import shutil

from retrainer import storage
from retrainer.contracts import BatchValidation, QuarantinedBatch, VersionedBatch
from retrainer.settings import Settings
from retrainer.sources import DataFileError
from retrainer.validation import DataValidationError, file_md5, validate_file
from retrainer.versioning import DataRegistry

log = logging.getLogger(__name__)

#: the file a quarantine folder is complete with: the batch's validation result
QUARANTINE_MARKER = "validation.json"


def validate_batch(settings: Settings, dataset: str, batch: str, period: str) -> BatchValidation:
    """Validate a landed batch file against its spec's suite; the full GX result is kept on disk."""
    storage.sweep_scratch()  # what ingests killed half way left on this host
    spec = settings.load_spec(dataset)
    with storage.local_copy(batch, settings.s3_endpoint_url) as path:
        if path is None:
            raise DataFileError(f"{batch}: batch file for {dataset} {period} does not exist")
        md5 = file_md5(path)
        report = validate_file(path, spec, period, source=batch)
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
        failures=report.failures,
        summary=report.summary(),
        result_path=result_path,
    )


def quarantine_batch(settings: Settings, validation: BatchValidation) -> QuarantinedBatch:
    """Copy a failed batch and its validation result, side by side, into quarantine.

    The folder is keyed by the batch's content hash and appears in one step (locally written
    elsewhere, then renamed; on S3 ``validation.json``, what a reader looks for, goes last),
    so a retry finds it complete instead of writing it twice.
    """
    endpoint = settings.s3_endpoint_url
    name = validation.batch.rstrip("/").rsplit("/", 1)[-1]
    dest = storage.join(settings.quarantine, validation.dataset, validation.period, validation.md5[:12])
    if not storage.exists(storage.join(dest, QUARANTINE_MARKER), endpoint):
        staging = storage.temp_dir("retrainer-quarantine-")
        try:
            with storage.local_copy(validation.batch, endpoint) as src:
                if src is None or file_md5(src) != validation.md5:
                    raise DataFileError(f"{validation.batch} changed or vanished after it was validated")
                shutil.copy2(src, staging / name)
            result = storage.read_bytes(validation.result_path, endpoint)
            if result is None:
                raise DataFileError(f"{validation.result_path}: the validation result is gone")
            (staging / QUARANTINE_MARKER).write_bytes(result)
            storage.publish_dir(staging, dest, QUARANTINE_MARKER, endpoint)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    log.error("QUARANTINED %s %s -> %s: %s", validation.dataset, validation.period, dest,
              "; ".join(validation.failures))  # fmt: skip
    return QuarantinedBatch(
        dataset=validation.dataset,
        period=validation.period,
        batch=validation.batch,
        md5=validation.md5,
        location=dest,
        failures=validation.failures,
    )


def version_batch(settings: Settings, validation: BatchValidation) -> VersionedBatch:
    """Add an accepted batch to the DVC data registry as a new immutable data version."""
    if not validation.success:
        raise DataValidationError(f"refusing to version {validation.batch}: {validation.summary}")
    spec = settings.load_spec(validation.dataset)
    with storage.local_copy(validation.batch, settings.s3_endpoint_url) as path:
        md5 = file_md5(path) if path is not None else "(gone)"
        if path is None or md5 != validation.md5:
            raise DataValidationError(
                f"{validation.batch} changed after it was validated (md5 {validation.md5} -> {md5})"
            )
        res = DataRegistry(settings).add_batch(spec, validation.period, path, md5)
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
