"""docker-compose.yaml is checked without a Docker engine: interpolated the way Compose
does it, validated against the Compose Specification's JSON schema, and cross-checked
(dependencies, volumes, no literal secrets, the settings the library reads)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
VAR = re.compile(r"\$\{(?P<name>[A-Z0-9_]+)(?::\?(?P<err>[^}]*))?\}")
SECRETS = {
    "POSTGRES_PASSWORD",
    "MINIO_ROOT_USER",
    "MINIO_ROOT_PASSWORD",
    "AIRFLOW_FERNET_KEY",
    "AIRFLOW_API_SECRET_KEY",
}


def _interpolate(text: str, env: dict[str, str]) -> str:
    def sub(m: re.Match[str]) -> str:
        if m.group("name") not in env:
            raise KeyError(f"{m.group('name')}: {m.group('err')}")
        return env[m.group("name")]

    return VAR.sub(sub, text.replace("$$", "\0")).replace("\0", "$")


@pytest.fixture(scope="module")
def raw() -> str:
    return (REPO / "docker-compose.yaml").read_text()


@pytest.fixture(scope="module")
def compose(raw: str) -> dict[str, Any]:
    return yaml.safe_load(_interpolate(raw, {k: "x" for k in SECRETS}))


def test_valid_against_the_compose_schema(compose: dict[str, Any]) -> None:
    schema = json.loads((REPO / "tests" / "schemas" / "compose_spec.json").read_text())
    jsonschema.Draft201909Validator(schema).validate(compose)


def test_secrets_only_from_the_environment(raw: str) -> None:
    assert {m.group("name") for m in VAR.finditer(raw)} == SECRETS
    with pytest.raises(KeyError, match=r": set [A-Z_]+"):  # Compose refuses to start without them
        _interpolate(raw, {})
    example = (REPO / ".env.example").read_text()
    assert all(re.search(rf"^{k}=$", example, re.M) for k in SECRETS)


def test_services_and_wiring(compose: dict[str, Any]) -> None:
    services = compose["services"]
    expected = {
        "postgres", "redis", "minio", "minio-init", "mlflow", "tensorflow-serving", "airflow-init",
        "airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer", "airflow-worker",
    }  # fmt: skip
    assert set(services) == expected
    for name, svc in services.items():
        for dep in svc.get("depends_on", {}):
            assert dep in services, f"{name} depends on unknown {dep}"
        for vol in svc.get("volumes", []):
            source = vol.split(":")[0]
            assert source.startswith(".") or source in compose["volumes"], f"{name}: volume {source}"
    worker = services["airflow-worker"]["environment"]
    assert worker["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert worker["RETRAINER_DVC_REMOTE"].startswith("s3://")
    assert worker["RETRAINER_MLFLOW_ARTIFACTS"].startswith("s3://")
    # TF Serving reads the same model store volume the workers publish into
    store = worker["RETRAINER_MODEL_STORE"]
    assert f"model-store:{store}" in services["airflow-worker"]["volumes"]
    assert f"model-store:{store}:ro" in services["tensorflow-serving"]["volumes"]


def test_settings_named_in_compose_are_the_ones_the_library_reads(compose: dict[str, Any]) -> None:
    from retrainer.settings import ENV_VARS

    env = compose["services"]["airflow-worker"]["environment"]
    for key in (k for k in env if k.startswith("RETRAINER_")):
        assert key in ENV_VARS.values(), key


def test_workers_share_nothing_but_s3_and_urls(compose: dict[str, Any]) -> None:
    """Several hosts: what workers share is on S3 or behind a URL; the result backend names its
    driver; the setup creates the pool the registry's writers run in."""
    env = compose["services"]["airflow-worker"]["environment"]
    for key in ("RETRAINER_LANDING", "RETRAINER_QUARANTINE", "RETRAINER_VALIDATION_RESULTS", "RETRAINER_DVC_REMOTE"):
        assert env[key].startswith("s3://"), key
    assert env["RETRAINER_DATA_REGISTRY_URL"]
    assert env["AIRFLOW__CELERY__RESULT_BACKEND"].startswith("db+postgresql+psycopg2://")
    init = " ".join(compose["services"]["airflow-init"]["command"])
    assert "airflow pools set retrainer_data_registry 1" in init and "git init -q --bare" in init
    from retrainer_airflow.defaults import REGISTRY_POOL

    assert REGISTRY_POOL == "retrainer_data_registry"
