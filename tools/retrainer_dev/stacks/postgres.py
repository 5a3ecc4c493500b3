"""Fresh databases for a stack: a new PostgreSQL database on the local server when a driver and
the server are there (``RETRAINER_TEST_POSTGRES``, default ``postgresql://postgres@127.0.0.1:5432``;
``off`` for SQLite), else an SQLite file."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432"


@dataclass
class MetadataDB:
    """A database made for one stack (Airflow's metadata, an MLflow store) and how to drop it."""

    url: str  # SQLAlchemy URL
    backend: str  # "postgresql" or "sqlite"
    note: str  # why this backend
    drop: Callable[[], None] = lambda: None


def _dropper(server: str, name: str) -> Callable[[], None]:
    def drop() -> None:
        import psycopg2

        conn = psycopg2.connect(f"{server}/postgres", connect_timeout=5)
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.close()

    return drop


def metadata_db(home: Path) -> MetadataDB:
    """A fresh PostgreSQL database ``retrainer_test_<random>`` if possible, else SQLite in ``home``."""
    sqlite = f"sqlite:///{home / 'airflow.db'}"
    server = os.environ.get("RETRAINER_TEST_POSTGRES", DEFAULT_POSTGRES).rstrip("/")
    if server.lower() in ("", "off", "0", "false", "sqlite"):
        return MetadataDB(sqlite, "sqlite", "RETRAINER_TEST_POSTGRES is off")
    try:
        # Airflow needs two drivers: psycopg2 (sync engine) and asyncpg (its async engine)
        import asyncpg  # noqa: F401
        import psycopg2
    except ImportError as exc:
        return MetadataDB(sqlite, "sqlite", f"no PostgreSQL driver for Airflow here ({exc.name} is not installed)")
    name = f"retrainer_test_{secrets.token_hex(4)}"
    try:
        admin = psycopg2.connect(f"{server}/postgres", connect_timeout=5)
    except psycopg2.Error as exc:
        return MetadataDB(sqlite, "sqlite", f"PostgreSQL at {server} not reachable: {str(exc).strip()}")
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    admin.close()
    url = server.replace("postgresql://", "postgresql+psycopg2://", 1) + f"/{name}"
    return MetadataDB(url, "postgresql", f"database {name} on {server}", _dropper(server, name))
