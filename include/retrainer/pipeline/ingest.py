"""Ingest: a landed batch is validated, then quarantined with its reason or versioned.

validate_batch -> quarantine_batch | version_batch (the ``ingest_batch`` DAG).
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path

from retrainer import storage
from retrainer.contracts import BatchValidation, QuarantinedBatch, VersionedBatch
from retrainer.settings import Settings
from retrainer.sources import DataFileError
from retrainer.validation import DataValidationError, file_md5, validate_file
from retrainer.versioning import DataRegistry

log = logging.getLogger(__name__)


def validate_batch(settings: Settings, dataset: str, batch: str, period: str) -> BatchValidation:
    """Validate a landed batch file against its spec's suite; the full GX result is kept on disk."""
    spec = settings.load_spec(dataset)
    path = Path(batch)
    if not path.is_file():
        raise DataFileError(f"{path}: batch file for {dataset} {period} does not exist")
    md5 = file_md5(path)
    report = validate_file(path, spec, period)
    result_path = storage.join(settings.validation_results, dataset, period, f"{md5}.json")
    storage.write_text(result_path, report.to_json())
    return BatchValidation(
        dataset=dataset,
        period=period,
        batch=str(path),
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

    The folder is keyed by the batch's content hash and appears in one step (written
    elsewhere, then renamed), so a retry finds it complete instead of writing it twice.
    """
    src = Path(validation.batch)
    dest = Path(settings.quarantine) / validation.dataset / validation.period / validation.md5[:12]
    if not (dest / "validation.json").is_file():
        dest.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".incoming-", dir=dest.parent))
        try:
            shutil.copy2(src, staging / src.name)
            shutil.copy2(validation.result_path, staging / "validation.json")
            if file_md5(staging / src.name) != validation.md5:
                raise RuntimeError(f"{src} changed while it was being quarantined")
            os.rename(staging, dest)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    log.error("QUARANTINED %s %s -> %s: %s", validation.dataset, validation.period, dest,
              "; ".join(validation.failures))  # fmt: skip
    return QuarantinedBatch(
        dataset=validation.dataset,
        period=validation.period,
        batch=validation.batch,
        md5=validation.md5,
        location=str(dest),
        failures=validation.failures,
    )


def version_batch(settings: Settings, validation: BatchValidation) -> VersionedBatch:
    """Add an accepted batch to the DVC data registry as a new immutable data version."""
    if not validation.success:
        raise DataValidationError(f"refusing to version {validation.batch}: {validation.summary}")
    spec = settings.load_spec(validation.dataset)
    path = Path(validation.batch)
    md5 = file_md5(path)
    if md5 != validation.md5:
        raise DataValidationError(f"{path} changed after it was validated (md5 {validation.md5} -> {md5})")
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
