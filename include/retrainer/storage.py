"""One small interface over local folders and ``s3://`` locations (boto3).

The operation that matters is ``publish_dir``: a folder appears at its destination
complete or not at all. Locally it is written to a staging folder on the same file
system and renamed into place in one step; on S3 every object is uploaded and the
``marker`` file (the one a reader looks for, e.g. ``saved_model.pb``) goes last.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import socket
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from retrainer import faults
from retrainer.outcomes import Refused

log = logging.getLogger(__name__)


def is_s3(uri: str) -> bool:
    return uri.startswith("s3://")


def split_s3(uri: str) -> tuple[str, str]:
    if not is_s3(uri):
        raise ValueError(f"not an s3:// URI: {uri}")
    bucket, _, key = uri[len("s3://") :].partition("/")
    if not bucket:
        raise ValueError(f"s3 URI without a bucket: {uri}")
    return bucket, key.strip("/")


def join(base: str, *parts: str) -> str:
    if is_s3(base):
        return "/".join([base.rstrip("/"), *[p.strip("/") for p in parts]])
    return str(Path(base, *parts))


def s3_client(endpoint_url: str | None = None) -> Any:
    """A boto3 S3 client; credentials come from boto3's usual chain (env, profile, role)."""
    import boto3

    return boto3.client("s3", endpoint_url=endpoint_url or os.environ.get("AWS_ENDPOINT_URL") or None)


def exists(uri: str, endpoint_url: str | None = None) -> bool:
    if not is_s3(uri):
        return Path(uri).exists()
    bucket, key = split_s3(uri)
    resp = s3_client(endpoint_url).list_objects_v2(Bucket=bucket, Prefix=key, MaxKeys=1)
    return bool(resp.get("KeyCount"))


def set_aside_incomplete(dest: str, marker: str, endpoint_url: str | None = None) -> str | None:
    """A local folder at ``dest`` without its ``marker`` (a copy a killed process left half
    done) is renamed to ``<dest>.incomplete-<id>`` and kept, so publishing at ``dest`` can go
    on; returns the new name. On S3 nothing is needed (objects are overwritten)."""
    if is_s3(dest):
        return None
    final = Path(dest)
    if not final.exists() or (final / marker).exists():
        return None
    aside = final.with_name(f"{final.name}.incomplete-{uuid.uuid4().hex[:8]}")
    os.rename(final, aside)
    log.warning("%s had no %s (an interrupted copy): set aside as %s", final, marker, aside.name)
    return str(aside)


def publish_dir(src: Path, dest: str, marker: str, endpoint_url: str | None = None) -> bool:
    """Publish folder ``src`` at ``dest`` so that no reader sees it half written.

    Returns False (and writes nothing) when ``dest`` already holds a complete copy, i.e. its
    ``marker`` file exists: a retry or a rerun never writes a version twice.
    """
    if not (src / marker).is_file():
        raise FileNotFoundError(f"{src}: has no {marker}; refusing to publish an incomplete folder")
    if is_s3(dest):
        return _publish_s3(src, dest, marker, endpoint_url)
    final = Path(dest)
    if (final / marker).is_file():
        return False
    if final.exists():  # a folder without its marker: a foreign or broken leftover, never ours
        raise FileExistsError(f"{final} exists without {marker}; move it away before publishing")
    staging_root = final.parent.parent / ".staging"
    staging_root.mkdir(parents=True, exist_ok=True)
    sweep(staging_root, "")
    staging = staging_root / f"{final.parent.name}-{final.name}{owner_tag()}{uuid.uuid4().hex[:8]}"
    try:
        shutil.copytree(src, staging)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.rename(staging, final)  # atomic on one file system; fails if final appeared meanwhile
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return True


def _hidden(relative: str) -> bool:
    return any(part.startswith(".") for part in relative.split("/"))


def _publish_s3(src: Path, dest: str, marker: str, endpoint_url: str | None) -> bool:
    bucket, prefix = split_s3(dest)
    client = s3_client(endpoint_url)
    marker_key = f"{prefix}/{marker}"
    try:
        client.head_object(Bucket=bucket, Key=marker_key)
        return False
    except client.exceptions.ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchKey", "NotFound"):
            raise
    files = {p.relative_to(src).as_posix(): p.stat().st_size for p in sorted(src.rglob("*")) if p.is_file()}
    for i, rel in enumerate(r for r in files if r != marker):
        client.upload_file(str(src / rel), bucket, f"{prefix}/{rel}")
        if i == 0:
            faults.point("publish:object")
    # the marker makes the folder a version: only over every other object, as uploaded (a retry
    # re-uploads them all; an object that went missing meanwhile stops it here)
    present = {f.relative: f.size for f in list_files(dest, endpoint_url)}
    missing = sorted(r for r, size in files.items() if r != marker and not _hidden(r) and present.get(r) != size)
    if missing:
        raise OSError(
            f"{dest}: {len(missing)} object(s) missing or of another size after upload "
            f"({', '.join(missing[:3])}); not writing {marker}"
        )
    client.upload_file(str(src / marker), bucket, marker_key)
    return True


def download_dir(uri: str, dest: Path, endpoint_url: str | None = None) -> Path:
    """Copy a folder (local or S3) to ``dest`` and return ``dest``."""
    if not is_s3(uri):
        shutil.copytree(uri, dest, dirs_exist_ok=True)
        return dest
    bucket, prefix = split_s3(uri)
    client = s3_client(endpoint_url)
    paginator = client.get_paginator("list_objects_v2")
    found = False
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix + "/"):
        for obj in page.get("Contents", []):
            found = True
            rel = obj["Key"][len(prefix) + 1 :]
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            client.download_file(bucket, obj["Key"], str(target))
    if not found:
        raise FileNotFoundError(f"{uri}: nothing there")
    return dest


def list_versions(root: str, model: str, endpoint_url: str | None = None) -> list[int]:
    """Numeric version folders of ``model`` under a model store root, ascending."""
    base = join(root, model)
    if not is_s3(base):
        p = Path(base)
        return sorted(int(d.name) for d in p.iterdir() if d.is_dir() and d.name.isdigit()) if p.is_dir() else []
    bucket, prefix = split_s3(base)
    resp = s3_client(endpoint_url).list_objects_v2(Bucket=bucket, Prefix=prefix + "/", Delimiter="/")
    names = [cp["Prefix"][len(prefix) + 1 :].strip("/") for cp in resp.get("CommonPrefixes", [])]
    return sorted(int(n) for n in names if n.isdigit())


def read_text(uri: str, endpoint_url: str | None = None) -> str | None:
    """The text at ``uri`` (local or S3), or None if there is none."""
    if not is_s3(uri):
        path = Path(uri)
        return path.read_text() if path.is_file() else None
    bucket, key = split_s3(uri)
    client = s3_client(endpoint_url)
    try:
        return str(client.get_object(Bucket=bucket, Key=key)["Body"].read().decode())
    except client.exceptions.NoSuchKey:
        return None


class ConditionalWritesIgnoredError(Refused, RuntimeError):
    """The S3 store wrote an object over a condition it should have refused (If-Match): two
    writers of one object there could each overwrite the other's change unnoticed."""


def read_s3_versioned(uri: str, endpoint_url: str | None = None) -> tuple[str | None, str | None]:
    """The text at an ``s3://`` ``uri`` and its ETag (both None when there is no object): what a
    conditional write (``write_s3_if``) compares with."""
    bucket, key = split_s3(uri)
    client = s3_client(endpoint_url)
    try:
        got = client.get_object(Bucket=bucket, Key=key)
    except client.exceptions.NoSuchKey:
        return None, None
    return str(got["Body"].read().decode()), str(got["ETag"])


def write_s3_if(uri: str, text: str, etag: str | None, endpoint_url: str | None = None) -> bool:
    """Write ``text`` at an ``s3://`` ``uri`` only if the object is still the one read with ``etag``
    (None: only if there is none yet), in one request the store checks (S3's conditional writes).
    False, and nothing written, when somebody wrote it in between."""
    from botocore.exceptions import ClientError

    bucket, key = split_s3(uri)
    _check_conditional_writes(bucket, key.rpartition("/")[0], endpoint_url)
    condition = {"IfMatch": etag} if etag is not None else {"IfNoneMatch": "*"}
    try:
        s3_client(endpoint_url).put_object(Bucket=bucket, Key=key, Body=text.encode(), **condition)
    except ClientError as exc:
        if _condition_failed(exc):
            return False
        raise
    return True


def _condition_failed(exc: Any) -> bool:
    """Whether an S3 error is the store refusing a write on its condition (or two at once on one key)."""
    return exc.response.get("Error", {}).get("Code") in ("PreconditionFailed", "ConditionalRequestConflict")


_CONDITIONAL_CHECKED: set[tuple[str | None, str, str]] = set()


def _check_conditional_writes(bucket: str, folder: str, endpoint_url: str | None) -> None:
    """Once per process and folder: a write whose condition cannot hold must be refused. A store
    that ignores the condition (some S3-compatible servers do) is refused here, rather than
    trusted to keep two writers' changes. The check writes one small object in ``folder``
    (where the caller may write; TensorFlow Serving reads no file of that name)."""
    from botocore.exceptions import ClientError

    if (endpoint_url, bucket, folder) in _CONDITIONAL_CHECKED:
        return
    client = s3_client(endpoint_url)
    key = f"{folder}/.conditional-write-check" if folder else ".conditional-write-check"
    client.put_object(Bucket=bucket, Key=key, Body=b"retrainer checks that this store honours If-Match")
    try:
        client.put_object(Bucket=bucket, Key=key, Body=b"must be refused", IfMatch='"0"')
    except ClientError as exc:
        if _condition_failed(exc):
            _CONDITIONAL_CHECKED.add((endpoint_url, bucket, folder))
            return
        raise
    raise ConditionalWritesIgnoredError(
        f"s3://{bucket} ({endpoint_url or 'AWS'}) wrote s3://{bucket}/{key} over an If-Match it should have refused: "
        "the store ignores conditional writes, so two writers of its models.config could lose each other's "
        "labels. Use a store that honours them (AWS S3, MinIO, and moto do)"
    )


def write_text(uri: str, text: str, endpoint_url: str | None = None) -> None:
    """Replace the text at ``uri`` in one step: locally write a sibling and rename it over."""
    write_bytes(uri, text.encode(), endpoint_url)


def write_bytes(uri: str, data: bytes, endpoint_url: str | None = None) -> None:
    """Write ``data`` at ``uri`` in one step (locally: a sibling file renamed over it)."""
    if is_s3(uri):
        bucket, key = split_s3(uri)
        s3_client(endpoint_url).put_object(Bucket=bucket, Key=key, Body=data)
        return
    path = Path(uri)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}{owner_tag()}{uuid.uuid4().hex[:8]}")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    sweep(path.parent, f".{path.name}~")  # what writers killed before their rename left


def temp_dir(prefix: str = "retrainer-") -> Path:
    """A scratch folder whose name says which process made it (see ``sweep``)."""
    return Path(tempfile.mkdtemp(prefix=prefix + owner_tag()))


@contextmanager
def scratch(prefix: str = "retrainer-") -> Iterator[Path]:
    """A scratch folder for the block (``temp_dir``), removed after it; one a kill left behind
    is removed by a later ``sweep_scratch``."""
    path = temp_dir(prefix)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


# ----------------------------------------------------------------- leftovers of killed processes
#: a scratch or staging name's owner: ``~<host>~<pid>~`` (``~`` is never part of a host name)
_OWNER = re.compile(r"~(?P<host>[A-Za-z0-9.-]+)~(?P<pid>\d+)~")
#: how old a leftover of another host must be before it is removed (its owner cannot be asked)
FOREIGN_MAX_AGE_S = 24 * 3600.0


def owner_tag() -> str:
    return f"~{socket.gethostname()}~{os.getpid()}~"


def _owner_gone(path: Path) -> bool:
    """Whether the process that named ``path`` is gone: on this host, its pid no longer runs;
    of another host (a shared folder), the leftover is older than FOREIGN_MAX_AGE_S."""
    m = _OWNER.search(path.name)
    if m is None:
        return False
    if m.group("host") != socket.gethostname():
        try:
            return time.time() - path.lstat().st_mtime > FOREIGN_MAX_AGE_S
        except FileNotFoundError:
            return False
    try:
        os.kill(int(m.group("pid")), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return False


def sweep(folder: Path, prefix: str) -> list[Path]:
    """Remove the entries of ``folder`` named ``prefix...~host~pid~...`` whose process is gone
    (staging folders, temporary files, scratch): what a process killed half way leaves, which
    no ``finally`` of its own will remove. Returns what was removed."""
    removed = []
    try:
        entries = [e for e in folder.iterdir() if e.name.startswith(prefix)]
    except (FileNotFoundError, NotADirectoryError):
        return []
    for entry in entries:
        if not _owner_gone(entry):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed.append(entry)
    if removed:
        log.info(
            "removed %d leftover(s) of processes that are gone: %s",
            len(removed),
            ", ".join(str(r) for r in removed[:5]),
        )
    return removed


def sweep_scratch() -> list[Path]:
    """This host's scratch folders (``temp_dir``) left by processes that are gone."""
    return sweep(Path(tempfile.gettempdir()), "retrainer-")


def read_bytes(uri: str, endpoint_url: str | None = None) -> bytes | None:
    """The bytes at ``uri`` (local or S3), or None if there is nothing there."""
    if not is_s3(uri):
        path = Path(uri)
        return path.read_bytes() if path.is_file() else None
    bucket, key = split_s3(uri)
    client = s3_client(endpoint_url)
    try:
        return bytes(client.get_object(Bucket=bucket, Key=key)["Body"].read())
    except client.exceptions.NoSuchKey:
        return None


@contextmanager
def local_copy(uri: str, endpoint_url: str | None = None) -> Iterator[Path | None]:
    """A local path holding the file at ``uri``: the path itself when it is local, else a
    temporary download removed afterwards. None when there is no such file."""
    if not is_s3(uri):
        path = Path(uri)
        yield path if path.is_file() else None
        return
    scratch = temp_dir("retrainer-fetch-")
    try:
        bucket, key = split_s3(uri)
        client = s3_client(endpoint_url)
        target = scratch / (key.rsplit("/", 1)[-1] or "object")
        try:
            client.download_file(bucket, key, str(target))
        except client.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchKey", "NotFound"):
                raise
            yield None
            return
        yield target
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


@dataclass(frozen=True)
class StoredFile:
    """A file under a prefix: where it is, its size, and what identifies its bytes (the S3
    ETag, or size and modification time of a local file: both change when the bytes do)."""

    uri: str
    relative: str  # its path below the prefix, with forward slashes
    size: int
    fingerprint: str
    modified: float = 0.0  # seconds since the epoch


def list_files(prefix: str, endpoint_url: str | None = None) -> list[StoredFile]:
    """Every file below ``prefix`` (local folder or ``s3://`` prefix), in name order; names
    starting with a dot (staging, temporary parts) are left out."""
    if not is_s3(prefix):
        root = Path(prefix)
        if not root.is_dir():
            return []
        found = []
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            rel = path.relative_to(root).as_posix()
            if _hidden(rel):
                continue
            st = path.stat()
            found.append(StoredFile(str(path), rel, st.st_size, f"{st.st_size}-{st.st_mtime_ns}", st.st_mtime))
        return found
    bucket, key = split_s3(prefix)
    base = f"{key}/" if key else ""
    out = []
    for page in s3_client(endpoint_url).get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=base):
        for obj in page.get("Contents", []):
            rel = obj["Key"][len(base) :]
            if not rel or _hidden(rel):
                continue
            etag = str(obj.get("ETag", "")).strip('"')
            modified = obj["LastModified"].timestamp() if obj.get("LastModified") else 0.0
            uri, size = f"s3://{bucket}/{obj['Key']}", int(obj["Size"])
            out.append(StoredFile(uri, rel, size, etag or str(size), modified))
    return sorted(out, key=lambda f: f.relative)


def remove_prefix(uri: str, endpoint_url: str | None = None) -> int:
    """Delete everything under ``uri`` (a local folder or an S3 prefix). Returns how many files."""
    if not is_s3(uri):
        path = Path(uri)
        count = sum(1 for p in path.rglob("*") if p.is_file()) if path.is_dir() else 0
        shutil.rmtree(path, ignore_errors=True)
        return count
    bucket, key = split_s3(uri)
    client = s3_client(endpoint_url)
    count = 0
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{key}/"):
        keys = [{"Key": obj["Key"]} for obj in page.get("Contents", [])]
        if keys:
            client.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
            count += len(keys)
    return count
