"""No secret is committed: every tracked file is scanned for what leaked credentials look like,
and the places secrets live (.env, secrets/) are never tracked."""

from __future__ import annotations

import math
import re
import subprocess
from collections import Counter
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

PATTERNS = {
    "private key": re.compile(r"-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----"),
    "AWS access key id": re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    "GitHub token": re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36,}\b"),
    "Slack token": re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}"),
    "JSON web token": re.compile(r"\beyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}"),
    "password in a URL": re.compile(r"[a-z][a-z0-9+.-]*://[^\s/:@'\"]+:(?P<pw>[^\s@/'\"{}$<>]{6,})@[^\s'\"]"),
    "secret assigned a value": re.compile(
        r"(?i)(?:password|passwd|secret|token|fernet_key|api_key|access_key)(?P<key>[\w.]*)[\"']?\s*[:=]\s*[\"']?"
        r"(?P<value>[A-Za-z0-9+_=-][A-Za-z0-9+/_=-]{19,})"
    ),
}
WORDS = re.compile(r"[a-z]+(?:[-_][a-z]+)*")
#: the detect-secrets convention for a line that holds a made-up credential on purpose
ALLOW = "pragma: allowlist secret"


def _entropy(text: str) -> float:
    counts = Counter(text)
    return -sum(n / len(text) * math.log2(n / len(text)) for n in counts.values())


def findings(text: str) -> list[str]:
    """What in ``text`` looks like a real credential (placeholders and low-entropy words do not)."""
    found = []
    for line in text.splitlines():
        if ALLOW in line:
            continue
        for what, pattern in PATTERNS.items():
            for m in pattern.finditer(line):
                groups = m.groupdict()
                if (groups.get("key") or "").lower().endswith(("_file", "_cmd", "_template", "name", "path")):
                    continue  # names where the secret is, not the secret
                value = groups.get("value")
                if value and (_entropy(value) < 3.5 or value.isupper() or WORDS.fullmatch(value)):
                    continue  # a word, words or a variable name, not a generated secret
                if (pw := groups.get("pw")) and _entropy(pw) < 2.5:
                    continue  # a placeholder like xxxxxx
                found.append(f"{what}: {m.group(0)[:60]}")
    return found


def tracked_files() -> list[Path]:
    cmd = ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"]  # what git would commit
    out = subprocess.run(cmd, cwd=REPO, capture_output=True, check=True).stdout
    return [REPO / p for p in out.decode().split("\0") if p]


def test_no_secret_in_any_tracked_file() -> None:
    leaks = {}
    for path in tracked_files():
        if not path.is_file() or path.stat().st_size > 2_000_000:
            continue
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue  # binary (screenshots)
        if hits := findings(text):
            leaks[str(path.relative_to(REPO))] = hits
    assert not leaks, leaks


def test_where_secrets_live_is_never_tracked() -> None:
    tracked = {str(p.relative_to(REPO)) for p in tracked_files()}
    assert ".env" not in tracked and not any(p.startswith("secrets/") for p in tracked)
    ignored = (REPO / ".gitignore").read_text().split()
    assert ".env" in ignored and "secrets/" in ignored


@pytest.mark.parametrize(
    "leak",
    [
        "-----BEGIN OPENSSH PRIVATE KEY-----",  # pragma: allowlist secret
        "aws_access_key_id = AKIAIOSFODNN7EXAMPLE",  # pragma: allowlist secret
        "AIRFLOW__CORE__FERNET_KEY: 8r2bJv0yq1k3mH4sLx9wZt6uN5pQ7cR0dE2fG4hJ6kM=",  # pragma: allowlist secret
        'MLFLOW_TRACKING_PASSWORD="Zq8vR2mK9pX4wL7tN3bF6hJ1"',  # pragma: allowlist secret
        "sql_alchemy_conn = postgresql+psycopg2://airflow:Xk29fLq8Zr@postgres/airflow",  # pragma: allowlist secret
        "token: ghp_aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5",  # pragma: allowlist secret
    ],
)
def test_the_scan_finds_planted_secrets(leak: str) -> None:
    assert findings(leak)


@pytest.mark.parametrize(
    "fine",
    [
        "AIRFLOW__API__SECRET_KEY_FILE: /run/secrets/airflow_api_secret_key",
        "postgresql+psycopg2://airflow:{airflow_db_password}@postgres:5432/airflow",
        'aws_secret_access_key="testing"',
        "MLFLOW_TRACKING_PASSWORD_FILE: /run/secrets/mlflow_service_password",
        "AIRFLOW_FERNET_KEY=",
    ],
)
def test_the_scan_lets_placeholders_be(fine: str) -> None:
    assert not findings(fine)
