"""Deliveries: batch files that land in the landing location start their own ingest.

A delivery is a file at ``<landing>/<dataset>/<period>.csv`` or ``.parquet`` (or ``<period>.<label>.csv``,
e.g. ``2012-06.redelivery.csv``), in a local folder or under an ``s3://`` prefix; names that
start with a dot are not deliveries yet (write there, then rename). Its identity is its bytes:
the MD5 of a local file, the ETag of an S3 object (the MD5 of a single-part upload). The
ingest run of a delivery is named by dataset, period and identity, so the same bytes
delivered again start nothing new and new bytes for a period are a new delivery.

A file whose name says no dataset (with a spec) and period is refused: it is copied, with
the reason, to ``<quarantine>/_unroutable/<key>/`` (one folder per path and bytes) and
nothing else happens to it.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from dataclasses import dataclass

from retrainer import periods, storage
from retrainer.records import Delivery, LandingScan, RefusedDelivery
from retrainer.settings import Settings

#: the folder of the quarantine that holds refused deliveries
UNROUTABLE = "_unroutable"
REASON_FILE = "reason.json"
EXTENSIONS = (".csv", ".parquet")
_NAME = re.compile(rf"^(?P<period>{periods.ANY})(\.(?P<label>[A-Za-z0-9_-]+))?(?P<ext>\.[A-Za-z0-9]+)$")
_DATASET = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")


class DeliveryNameError(ValueError):
    """A landed file's path does not say which dataset and period it is."""


class SpecNotLoadedError(DeliveryNameError):
    """A landed file of a dataset whose spec does not load: the delivery waits for its spec."""


@dataclass(frozen=True)
class Route:
    dataset: str
    period: str


def route(relative: str, settings: Settings, frequencies: dict[str, str] | None = None) -> Route:
    """Dataset and period of a landed file from its path below the landing location;
    ``frequencies`` keeps each dataset's frequency across the files of one listing (its spec
    is read once)."""
    expected = "<dataset>/<period>.csv (or .parquet, or <dataset>/<period>.<label>.csv)"
    parts = relative.split("/")
    if len(parts) != 2:
        raise DeliveryNameError(f"'{relative}' is not a batch path: expected {expected}")
    dataset, name = parts
    if not _DATASET.match(dataset) or not settings.spec_path(dataset).is_file():
        raise DeliveryNameError(f"'{relative}': there is no dataset spec named '{dataset}' ({settings.specs_dir})")
    from retrainer.spec.fields import SpecError

    frequencies = {} if frequencies is None else frequencies
    if dataset not in frequencies:
        try:
            frequencies[dataset] = settings.load_spec(dataset).frequency
        except SpecError as exc:
            raise SpecNotLoadedError(
                f"'{relative}' waits: the spec of '{dataset}' does not load ({exc}); the delivery starts its"
                " ingest once the spec is fixed (python -m retrainer spec check)"
            ) from exc
    frequency = frequencies[dataset]
    form = f"{periods.FORMS[frequency]}, e.g. {periods.EXAMPLES[frequency]}"
    expected = expected.replace("<period>", f"<{periods.FORMS[frequency]}>")
    m = _NAME.match(name)
    if not m:
        raise DeliveryNameError(
            f"'{relative}': the file name does not start with a {frequency} period ({form}): expected {expected}"
        )
    if m.group("ext").lower() not in EXTENSIONS:
        raise DeliveryNameError(f"'{relative}': {m.group('ext')} batches are not read; deliver {', '.join(EXTENSIONS)}")
    try:
        period = periods.check(m.group("period"), frequency)
    except periods.PeriodError as exc:
        raise DeliveryNameError(f"'{relative}': {dataset} is delivered {frequency}: {exc}") from exc
    return Route(dataset, period)


def identity(found: storage.StoredFile) -> str:
    """What identifies a delivered file's bytes: its MD5 (local), its ETag (S3)."""
    if storage.is_s3(found.uri):
        return found.fingerprint.replace("-", "_")
    from retrainer.data.validation import file_md5  # reads the file: on a worker, never in the triggerer

    return file_md5(found.uri)


def run_id(dataset: str, period: str, ident: str) -> str:
    """The ingest run of a delivery: one per dataset, period and bytes."""
    return f"landed__{dataset}__{period}__{ident[:16]}"


def listing_digest(files: list[storage.StoredFile], specs: str = "") -> str:
    """A digest of what is in the landing location, and of the specs (``specs_fingerprint``): it
    changes when a file lands or changes, or a spec does (a delivery held by a broken spec goes
    on once the spec is fixed)."""
    h = hashlib.sha256(specs.encode())
    for f in files:
        h.update(f"{f.relative}\0{f.fingerprint}\n".encode())
    return h.hexdigest()


def specs_fingerprint(specs_dir: str) -> str:
    """The spec files' names, sizes and modification times: light enough for the triggerer."""
    from pathlib import Path

    out = []
    for path in sorted(Path(specs_dir).glob("*.yaml")):
        try:
            st = path.stat()
        except OSError:
            continue
        out.append(f"{path.name}:{st.st_size}:{st.st_mtime_ns}")
    return "|".join(out)


def unroutable_location(settings: Settings, relative: str, ident: str) -> str:
    """Where a refused delivery goes: one folder per path and bytes."""
    key = hashlib.sha256(f"{relative}\0{ident}".encode()).hexdigest()[:16]
    return storage.join(settings.quarantine, UNROUTABLE, key)


def scan(settings: Settings) -> LandingScan:
    """Every delivery in the landing location, routed (with its run id) or refused (with the
    reason); refused ones already quarantined are left out."""
    endpoint = settings.s3_endpoint_url
    files = storage.list_files(settings.landing, endpoint)
    deliveries, refused = [], []
    frequencies: dict[str, str] = {}  # each spec read once per listing
    held = []
    for f in files:
        ident = identity(f)
        try:
            r = route(f.relative, settings, frequencies)
        except SpecNotLoadedError as exc:
            held.append(RefusedDelivery(uri=f.uri, relative=f.relative, identity=ident, reason=str(exc)))
            continue
        except DeliveryNameError as exc:
            if not storage.exists(
                storage.join(unroutable_location(settings, f.relative, ident), REASON_FILE), endpoint
            ):
                refused.append(RefusedDelivery(uri=f.uri, relative=f.relative, identity=ident, reason=str(exc)))
            continue
        deliveries.append(Delivery(f.uri, r.dataset, r.period, ident, run_id(r.dataset, r.period, ident)))
    digest = listing_digest(files, specs_fingerprint(settings.specs_dir))
    return LandingScan(deliveries=deliveries, refused=refused, digest=digest, held=held)


def quarantine_refused(settings: Settings, refused: RefusedDelivery) -> str:
    """Put a refused delivery, with why, in the quarantine (once); returns where."""
    endpoint = settings.s3_endpoint_url
    dest = unroutable_location(settings, refused.relative, refused.identity)
    if storage.exists(storage.join(dest, REASON_FILE), endpoint):
        return dest
    staging = storage.temp_dir("retrainer-refused-")
    try:
        with storage.local_copy(refused.uri, endpoint) as src:
            if src is not None:
                shutil.copy2(src, staging / refused.relative.replace("/", "__"))
        reason = {"delivery": refused.uri, "reason": refused.reason, "identity": refused.identity}
        (staging / REASON_FILE).write_text(json.dumps(reason, indent=2))
        storage.publish_dir(staging, dest, REASON_FILE, endpoint)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return dest
