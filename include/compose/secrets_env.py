"""Secrets a compose service is given as files, turned into the environment its programs read.

Prints ``export`` lines for a shell to evaluate (``include/compose/entrypoint.sh``):

* ``NAME_FILE=/run/secrets/x`` exports ``NAME`` with the content of that file (trailing
  newline removed), e.g. ``AWS_SECRET_ACCESS_KEY_FILE``;
* ``NAME_TEMPLATE=scheme://user:{x}@host/db`` exports ``NAME`` with each ``{x}`` replaced by
  the secret ``x``, quoted for a URL, e.g. a database URL whose password is a secret.

Only files under the secrets folder (``RETRAINER_SECRETS_DIR``, default ``/run/secrets``)
are read. A missing or empty secret is an error that names the variable and the file.
"""

from __future__ import annotations

import os
import re
import shlex
import sys
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import quote

PLACEHOLDER = re.compile(r"\{([A-Za-z0-9_.-]+)\}")
NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")


class SecretError(RuntimeError):
    pass


def _read(folder: Path, name: str, variable: str) -> str:
    path = (folder / name).resolve()
    if folder.resolve() not in path.parents:
        raise SecretError(f"{variable}: {name} is not a secret under {folder}")
    try:
        value = path.read_text().rstrip("\r\n")
    except OSError as exc:
        raise SecretError(f"{variable}: cannot read the secret {path}: {exc.strerror}") from None
    if not value:
        raise SecretError(f"{variable}: the secret {path} is empty")
    return value


def _fill(folder: Path, variable: str, template: str) -> str:
    return PLACEHOLDER.sub(lambda m: quote(_read(folder, m.group(1), variable), safe=""), template)


def exports(env: Mapping[str, str]) -> dict[str, str]:
    """The variables to export, from the ``*_FILE`` and ``*_TEMPLATE`` variables of ``env``."""
    folder = Path(env.get("RETRAINER_SECRETS_DIR") or "/run/secrets")
    out: dict[str, str] = {}
    for key, value in sorted(env.items()):
        if key.endswith("_FILE") and NAME.match(key) and value.startswith(f"{folder}/"):
            out[key.removesuffix("_FILE")] = _read(folder, value[len(str(folder)) + 1 :], key)
        elif key.endswith("_TEMPLATE") and NAME.match(key):
            out[key.removesuffix("_TEMPLATE")] = _fill(folder, key, value)
    return out


def main() -> int:
    try:
        pairs = exports(os.environ)
    except SecretError as exc:
        print(f"retrainer: {exc}", file=sys.stderr)
        return 1
    for key, value in pairs.items():
        print(f"export {key}={shlex.quote(value)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
