"""A real S3 API on loopback: ``moto_server``, and buckets on it."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from retrainer_dev.stacks.ports import free_port
from retrainer_dev.waiting import wait_until

#: moto_server takes any credentials; these are the ones the stacks give their clients
MOTO_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing", "region_name": "us-east-1"}
START_TIMEOUT_S = 30.0


def _listens(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=0.5):
        return True


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    """``moto_server`` on a free port on loopback, for as long as the context lasts: its URL."""
    port = free_port()
    exe = Path(sys.executable).parent / "moto_server"
    proc = subprocess.Popen(
        [str(exe), "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        what = f"moto_server listening on 127.0.0.1:{port}"
        wait_until(lambda: _listens(port), START_TIMEOUT_S, interval_s=0.2, what=what, retry_on=(OSError,))
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def create_bucket(endpoint: str, bucket: str) -> str:
    """A new bucket named ``bucket`` on the S3 API at ``endpoint``; returns its name."""
    import boto3

    boto3.client("s3", endpoint_url=endpoint, **MOTO_CREDENTIALS).create_bucket(Bucket=bucket)
    return bucket
