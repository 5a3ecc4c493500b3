"""docker-compose.yaml as Compose and the images would run it, without a Docker engine.

* ``load``: the file interpolated the way Compose does it (``${VAR}``, ``${VAR:-default}``,
  ``${VAR:?error}``, ``$$``) from a given environment (the defaults when empty);
* ``argv``: what a service's container runs: the service's ``entrypoint`` or the image's
  (``Dockerfile`` ``ENTRYPOINT``), then its ``command``;
* ``airflow_entrypoint``: the dispatch of the Airflow image's ``/entrypoint``
  (``scripts/docker/entrypoint_prod.sh`` of apache/airflow 3.3.2): ``bash`` and ``python``
  run as they are, a leading ``airflow`` is dropped, and anything else becomes
  ``airflow <command>``;
* ``environment``: a service's environment as its programs see it after
  ``include/compose/entrypoint.sh`` (``NAME_FILE`` and ``NAME_TEMPLATE`` give ``NAME``).
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
VAR = re.compile(r"\$\{(?P<name>[A-Za-z0-9_]+)(?:(?P<op>:-|:\?|-|\?)(?P<arg>[^}]*))?\}")
DUMB_INIT = ["/usr/bin/dumb-init", "--"]
IMAGE_ENTRYPOINT = "/opt/retrainer/include/compose/entrypoint.sh"
RETRAINER_IMAGE = "retrainer-airflow:latest"


class MissingVariable(KeyError):
    pass


def interpolate(text: str, env: dict[str, str]) -> str:
    def sub(m: re.Match[str]) -> str:
        name, op, arg = m.group("name"), m.group("op"), m.group("arg")
        value = env.get(name)
        if op in (":-", "-"):
            return value if value else arg
        if op in (":?", "?") and not value:
            raise MissingVariable(f"{name}: {arg}")
        return value or ""

    return VAR.sub(sub, text.replace("$$", "\0")).replace("\0", "$")


def raw() -> str:
    return (REPO / "docker-compose.yaml").read_text()


def load(env: dict[str, str] | None = None) -> dict[str, Any]:
    return yaml.safe_load(interpolate(raw(), env or {}))


def dockerfile_entrypoint() -> list[str]:
    """The ``ENTRYPOINT`` of the Dockerfile (exec form)."""
    lines = [ln for ln in (REPO / "Dockerfile").read_text().splitlines() if ln.startswith("ENTRYPOINT ")]
    assert len(lines) == 1, "the Dockerfile sets one ENTRYPOINT"
    return list(json.loads(lines[0].removeprefix("ENTRYPOINT ")))


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    return shlex.split(value) if isinstance(value, str) else [str(v) for v in value]


def argv(service: dict[str, Any]) -> list[str]:
    """What the container runs: entrypoint (the service's, else the image's) + command."""
    if "entrypoint" in service:
        entry = _as_list(service["entrypoint"])
    elif service.get("image") == RETRAINER_IMAGE:
        entry = dockerfile_entrypoint()
    else:
        entry = []  # another image: its own entrypoint, not ours to emulate
    return entry + _as_list(service.get("command"))


def airflow_entrypoint(args: list[str]) -> list[str]:
    """The Airflow image's ``/entrypoint`` dispatch (after its connection checks)."""
    if args and args[0] in ("bash", "python"):
        return ["/bin/bash" if args[0] == "bash" else "python", *args[1:]]
    if args and args[0] == "airflow":
        args = args[1:]
    return ["airflow", *args]


def resolve(service: dict[str, Any]) -> list[str]:
    """The program a retrainer-image container ends up running, through dumb-init, our
    entrypoint and the Airflow image's; other scripts of ours are returned as they are."""
    args = argv(service)
    if args[:2] == DUMB_INIT:
        args = args[2:]
    if args and args[0] == IMAGE_ENTRYPOINT:
        return airflow_entrypoint(args[1:])
    return args


def environment(service: dict[str, Any], secrets: dict[str, str] | None = None) -> dict[str, str]:
    """The service's environment after our entrypoint: ``NAME_FILE`` gives ``NAME`` (the value of
    the secret file, from ``secrets`` or a placeholder), ``NAME_TEMPLATE`` gives ``NAME``."""
    env = {str(k): str(v) for k, v in (service.get("environment") or {}).items()}
    secrets = secrets or {}
    out = dict(env)
    for key, value in env.items():
        if key.endswith("_FILE") and value.startswith("/run/secrets/"):
            name = value.removeprefix("/run/secrets/")
            out[key.removesuffix("_FILE")] = secrets.get(name, f"<secret {name}>")
        elif key.endswith("_TEMPLATE"):
            out[key.removesuffix("_TEMPLATE")] = re.sub(
                r"\{([a-z0-9_]+)\}", lambda m: secrets.get(m.group(1), f"secret-{m.group(1)}"), value
            )
    return out


def secrets_used(service: dict[str, Any]) -> set[str]:
    """The secret names a service's environment refers to (``/run/secrets/x`` and ``{x}``)."""
    used = set()
    for key, value in (service.get("environment") or {}).items():
        value = str(value)
        used |= set(re.findall(r"/run/secrets/([a-z0-9_]+)", value))
        if str(key).endswith("_TEMPLATE"):
            used |= set(re.findall(r"\{([a-z0-9_]+)\}", value))
    return used
