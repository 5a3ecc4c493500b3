"""The hostname a stack's worker reports for the task instances it runs (``[core]
hostname_callable``), so the workers of one machine can be told apart, as hosts are."""

from __future__ import annotations

import os
import socket

#: the variable that names the worker's host (set in each worker's environment)
HOSTNAME_VAR = "RETRAINER_TEST_HOSTNAME"
#: what ``[core] hostname_callable`` names
CALLABLE = "retrainer_dev.stacks.hostname.from_env"


def from_env() -> str:
    """The worker's host name from its environment, else this machine's."""
    return os.environ.get(HOSTNAME_VAR) or socket.getfqdn()
