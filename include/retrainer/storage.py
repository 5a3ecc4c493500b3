"""One small interface over local folders and ``s3://`` locations (boto3).

The operation that matters is ``publish_dir``: a folder appears at its destination
complete or not at all. Locally it is written to a staging folder on the same file
system and renamed into place in one step; on S3 every object is uploaded and the
``marker`` file (the one a reader looks for, e.g. ``saved_model.pb``) goes last.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any


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
    staging = staging_root / f"{final.parent.name}-{final.name}-{uuid.uuid4().hex[:8]}"
    try:
        shutil.copytree(src, staging)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.rename(staging, final)  # atomic on one file system; fails if final appeared meanwhile
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return True


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
    files = sorted(p for p in src.rglob("*") if p.is_file())
    for path in [p for p in files if p.relative_to(src).as_posix() != marker] + [src / marker]:
        client.upload_file(str(path), bucket, f"{prefix}/{path.relative_to(src).as_posix()}")
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
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def temp_dir(prefix: str = "retrainer-") -> Path:
    return Path(tempfile.mkdtemp(prefix=prefix))


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
            if any(part.startswith(".") for part in rel.split("/")):
                continue
            st = path.stat()
            found.append(StoredFile(str(path), rel, st.st_size, f"{st.st_size}-{st.st_mtime_ns}"))
        return found
    bucket, key = split_s3(prefix)
    base = f"{key}/" if key else ""
    out = []
    for page in s3_client(endpoint_url).get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=base):
        for obj in page.get("Contents", []):
            rel = obj["Key"][len(base) :]
            if not rel or any(part.startswith(".") for part in rel.split("/")):
                continue
            etag = str(obj.get("ETag", "")).strip('"')
            out.append(StoredFile(f"s3://{bucket}/{obj['Key']}", rel, int(obj["Size"]), etag or str(obj["Size"])))
    return sorted(out, key=lambda f: f.relative)
