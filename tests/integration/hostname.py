"""The hostname a test worker reports for the task instances it runs (``[core]
hostname_callable``), so a test can tell its two workers apart on one machine."""

from __future__ import annotations

import os
import socket


def from_env() -> str:
    return os.environ.get("RETRAINER_TEST_HOSTNAME") or socket.getfqdn()
