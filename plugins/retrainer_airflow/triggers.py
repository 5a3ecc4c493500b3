"""DriftTrigger: waits, without holding a worker, until there is new data to check.

It runs in the triggerer, so it does nothing heavy: it lists the data registry's version
tags (one ``git ls-remote`` call, against the registry's remote URL or its local folder)
every ``poll_interval`` seconds and fires as soon as the newest version of the dataset
differs from the one last checked. The drift computation itself then runs on a worker, in
the sensor.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent


async def latest_data_version(registry: str, dataset: str) -> str | None:
    """The newest ``<dataset>/vNNNN`` tag of the data registry (a git URL or a local
    repository), or None if there is none."""
    proc = await asyncio.create_subprocess_exec(
        "git",
        "ls-remote",
        "--tags",
        "--refs",
        registry,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "GIT_TERMINAL_PROMPT": "0"},
    )
    out, err = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"git ls-remote {registry} failed: {err.decode().strip()}")
    numbers = [
        int(m.group(1))
        for line in out.decode().splitlines()
        if (m := re.search(rf"refs/tags/{re.escape(dataset)}/v(\d{{4,}})$", line))
    ]
    return f"v{max(numbers):04d}" if numbers else None


class DriftTrigger(BaseTrigger):
    """Fire once the data registry holds a version of ``dataset`` other than ``last_checked``.

    Yields ``{"status": "new_data", "data_version": ...}``, or ``{"status": "error", "message":
    ...}`` when the registry cannot be read (the sensor then fails, saying why).

    :param dataset: the dataset whose ``<dataset>/vNNNN`` tags are watched.
    :param registry: the data registry's git repository: its remote URL, or a local path the
        triggerer can read.
    :param last_checked: the data version the sensor checked last (None: any version fires).
    :param poll_interval: seconds between looks.
    """

    def __init__(self, dataset: str, registry: str, last_checked: str | None, poll_interval: float = 60.0) -> None:
        super().__init__()
        self.dataset = dataset
        self.registry = registry
        self.last_checked = last_checked
        self.poll_interval = poll_interval

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            "retrainer_airflow.triggers.DriftTrigger",
            {
                "dataset": self.dataset,
                "registry": self.registry,
                "last_checked": self.last_checked,
                "poll_interval": self.poll_interval,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        while True:
            try:
                latest = await latest_data_version(self.registry, self.dataset)
            except Exception as exc:  # report, do not die silently in the triggerer
                yield TriggerEvent({"status": "error", "message": str(exc)})
                return
            if latest is not None and latest != self.last_checked:
                yield TriggerEvent({"status": "new_data", "data_version": latest})
                return
            self.log.info(
                "no data newer than %s for %s; next look in %ss", self.last_checked, self.dataset, self.poll_interval
            )
            await asyncio.sleep(self.poll_interval)


class LandingTrigger(BaseTrigger):
    """Fire once the landing location's listing differs from the one the sensor last saw (a
    file landed, or its bytes changed). It only lists names, sizes and fingerprints (ETags),
    so it stays light in the triggerer; reading files happens on a worker.

    Yields ``{"status": "changed", "digest": ...}``, or ``{"status": "error", "message": ...}``
    when the location cannot be listed.

    :param landing: the landing location, a local folder or an ``s3://`` prefix.
    :param digest: the digest of the listing the sensor last saw (``retrainer.data.landing.listing_digest``).
    :param poll_interval: seconds between looks.
    :param endpoint_url: the S3 API endpoint, when not AWS's (MinIO, moto).
    :param specs_dir: the specs folder: a spec changed fires too (a delivery its broken spec held goes on).
    """

    def __init__(
        self,
        landing: str,
        digest: str,
        poll_interval: float = 60.0,
        endpoint_url: str | None = None,
        specs_dir: str = "",
    ) -> None:
        super().__init__()
        self.landing = landing
        self.digest = digest
        self.poll_interval = poll_interval
        self.endpoint_url = endpoint_url
        self.specs_dir = specs_dir

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            "retrainer_airflow.triggers.LandingTrigger",
            {
                "landing": self.landing,
                "digest": self.digest,
                "poll_interval": self.poll_interval,
                "endpoint_url": self.endpoint_url,
                "specs_dir": self.specs_dir,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from retrainer import storage
        from retrainer.data import landing

        while True:
            try:
                files = await asyncio.to_thread(storage.list_files, self.landing, self.endpoint_url)
            except Exception as exc:  # report, do not die silently in the triggerer
                yield TriggerEvent({"status": "error", "message": f"cannot list {self.landing}: {exc}"})
                return
            specs = landing.specs_fingerprint(self.specs_dir) if self.specs_dir else ""
            digest = landing.listing_digest(files, specs)
            if digest != self.digest:
                yield TriggerEvent({"status": "changed", "digest": digest})
                return
            await asyncio.sleep(self.poll_interval)
