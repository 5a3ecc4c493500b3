"""DriftTrigger: waits, without holding a worker, until there is new data to check.

It runs in the triggerer, so it does nothing heavy: it lists the data registry's version
tags (one ``git tag`` call) every ``poll_interval`` seconds and fires as soon as the
newest version of the dataset differs from the one last checked. The drift computation
itself then runs on a worker, in the sensor.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent


async def latest_data_version(registry: str, dataset: str) -> str | None:
    """The newest ``<dataset>/vNNNN`` tag of the data registry, or None if there is none."""
    proc = await asyncio.create_subprocess_exec(
        "git", "-C", registry, "tag", "--list", f"{dataset}/v*", "--sort=-v:refname",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"git tag in {registry} failed: {err.decode().strip()}")
    tags = out.decode().split()
    return tags[0].split("/", 1)[1] if tags else None


class DriftTrigger(BaseTrigger):
    """Fire once the data registry holds a version of ``dataset`` other than ``last_checked``.

    Yields ``{"status": "new_data", "data_version": ...}``, or ``{"status": "error", "message":
    ...}`` when the registry cannot be read (the sensor then fails, saying why).

    :param dataset: the dataset whose ``<dataset>/vNNNN`` tags are watched.
    :param registry: the data registry's git repository (a local path the triggerer can read).
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
            self.log.info("no data newer than %s for %s; next look in %ss", self.last_checked, self.dataset,
                          self.poll_interval)  # fmt: skip
            await asyncio.sleep(self.poll_interval)
