"""The secrets of docker-compose.yaml: one file per purpose under ``secrets/``.

    python -m retrainer_dev.secrets [--dir secrets]      (make secrets)

Each secret's value comes from the variable of the same name in upper case (the environment,
or ``.env`` next to docker-compose.yaml, see ``.env.example``); a secret without one keeps
the file it has, else a random value is generated. Never printed. The folder is private
(0700); the files are 0644 because Compose (without Swarm) bind-mounts them as they are and
the services run as other users (the folder's mode keeps other host users out).
"""

from __future__ import annotations

import argparse
import base64
import os
import secrets
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]  # stdlib only: runs without the virtualenv


def _token() -> str:
    return secrets.token_urlsafe(32)


def _fernet() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


#: name -> how a new value is made; the names are the compose file's secrets
SECRETS: dict[str, Callable[[], str]] = {
    "postgres_password": _token,
    "airflow_db_password": _token,
    "mlflow_db_password": _token,
    "minio_root_user": lambda: "minio-admin",
    "minio_root_password": _token,
    "s3_access_key": lambda: "retrainer-" + secrets.token_hex(6),
    "s3_secret_key": _token,
    "airflow_fernet_key": _fernet,
    "airflow_api_secret_key": _token,
    "airflow_jwt_secret": _token,
    "airflow_admin_password": _token,
    "mlflow_service_password": _token,
    "mlflow_flask_secret_key": _token,
}


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=value lines of a Compose .env file (comments and blank lines skipped)."""
    out: dict[str, str] = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            key, sep, value = line.strip().partition("=")
            if sep and key and not key.startswith("#"):
                out[key.strip()] = value.strip().strip("'\"")
    return out


def write(folder: Path, env: Mapping[str, str]) -> dict[str, str]:
    """Write every secret's file; returns what happened to each (given, kept, generated)."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    folder.chmod(0o700)
    done = {}
    for name, make in SECRETS.items():
        path = folder / name
        given = env.get(name.upper(), "")
        if given:
            value, done[name] = given, "from " + name.upper()
        elif path.is_file() and path.read_text().strip():
            done[name] = "kept"
            continue
        else:
            value, done[name] = make(), "generated"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(value + "\n")
        tmp.chmod(0o644)
        tmp.replace(path)
    return done


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m retrainer_dev.secrets", description=__doc__.split("\n")[0])
    parser.add_argument("--dir", type=Path, default=REPO_ROOT / "secrets")
    args = parser.parse_args(argv)
    env = {**read_env_file(REPO_ROOT / ".env"), **os.environ}
    for name, what in write(args.dir, env).items():
        print(f"{args.dir / name}: {what}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
