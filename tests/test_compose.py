"""docker-compose.yaml, checked without a Docker engine (tests/compose.py says how).

Each defect the production shape once had is guarded here or in
tests/integration/test_mlflow_server.py (the MLflow server started with the compose's own
script and flags) and tests/unit/serving/test_tfserving_config.py (TF Serving's config sequence):
the docstring of each test names the defect it guards.
"""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from tests import compose
from tests.compose import REPO

AIRFLOW_SERVICES = (
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-worker",
)
AIRFLOW_UID = 50000


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return compose.load()


@pytest.fixture(scope="module")
def services(spec: dict[str, Any]) -> dict[str, Any]:
    return dict(spec["services"])


def test_valid_against_the_compose_schema(spec: dict[str, Any]) -> None:
    schema = json.loads((REPO / "tests" / "schemas" / "compose_spec.json").read_text())
    jsonschema.Draft201909Validator(schema).validate(spec)


def test_services_and_wiring(spec: dict[str, Any], services: dict[str, Any]) -> None:
    expected = {
        "postgres",
        "redis",
        "minio",
        "minio-init",
        "mlflow",
        "tensorflow-serving",
        "airflow-init",
        *AIRFLOW_SERVICES,
    }
    assert set(services) == expected
    for name, svc in services.items():
        for dep in svc.get("depends_on", {}):
            assert dep in services and dep != name, f"{name} depends on {dep}"
        for vol in svc.get("volumes", []):
            source = vol.split(":")[0]
            assert source.startswith(".") or source in spec["volumes"], f"{name}: volume {source}"
            if source.startswith("."):
                assert (REPO / source).exists(), f"{name} mounts {source}, which is not in the repository"
    for name in AIRFLOW_SERVICES:
        assert services[name]["depends_on"]["airflow-init"]["condition"] == "service_completed_successfully"


# ------------------------------------------------------------------ commands and images


def _parse_airflow_commands(commands: list[list[str]], env: dict[str, str]) -> dict[str, str]:
    """Each ``airflow ...`` argv parsed by Airflow's own CLI parser under the compose's
    executor and auth manager (their commands are registered by them): "" or the error."""
    code = """
import contextlib, io, json, sys
from airflow.cli.cli_parser import get_parser
out = {}
for argv in json.loads(sys.argv[1]):
    buf = io.StringIO()
    try:
        with contextlib.redirect_stderr(buf), contextlib.redirect_stdout(buf):
            get_parser().parse_args(argv[1:])
        out[" ".join(argv)] = ""
    except SystemExit:
        out[" ".join(argv)] = buf.getvalue().strip().splitlines()[-1]
print(json.dumps(out))
"""
    keep = {k: os.environ[k] for k in ("PATH", "HOME", "AIRFLOW_HOME") if k in os.environ}
    proc = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", code, json.dumps(commands)],
        env={**keep, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def test_each_command_runs_through_its_images_entrypoint(services: dict[str, Any]) -> None:
    """Guards: the mlflow service ran `mlflow server` through the Airflow image's entrypoint,
    which made it `airflow mlflow server` ("invalid choice: 'mlflow'", restarting forever)."""
    airflow_env = services["airflow-worker"]["environment"]
    env = {k: airflow_env[k] for k in ("AIRFLOW__CORE__EXECUTOR", "AIRFLOW__CORE__AUTH_MANAGER")}
    commands, scripts = [], {}
    for name, svc in services.items():
        if svc.get("image") != compose.RETRAINER_IMAGE:
            continue
        program = compose.resolve(svc)
        if program[0] == "airflow":
            commands.append(program)
        else:  # one of our scripts, run by the image as it is
            scripts[name] = program
    for healthcheck in ("airflow-dag-processor", "airflow-triggerer"):
        test = services[healthcheck]["healthcheck"]["test"]
        commands.append(compose.shlex.split(test[1].replace('"${HOSTNAME}"', "host")))
    results = _parse_airflow_commands(commands, env)
    assert all(error == "" for error in results.values()), results
    assert len(commands) == len(AIRFLOW_SERVICES) + 2
    for name, program in scripts.items():
        path = REPO / program[0].removeprefix("/opt/retrainer/")
        assert program[0].startswith("/opt/retrainer/include/compose/") and path.is_file(), (name, program)
        assert os.access(path, os.X_OK), f"{path} is not executable"
    assert set(scripts) == {"mlflow", "airflow-init"}
    # the defect itself: any command through the Airflow image's entrypoint becomes airflow's
    bad = compose.airflow_entrypoint(["mlflow", "server", "--host", "0.0.0.0"])
    assert "invalid choice: 'mlflow'" in _parse_airflow_commands([bad], env)[" ".join(bad)]


def test_the_image(services: dict[str, Any]) -> None:
    """Guards: no .dockerignore (the build context carried .git, .venv, local state and any
    secrets); .dvc/config not copied into the image."""
    dockerfile = (REPO / "Dockerfile").read_text()
    assert compose.dockerfile_entrypoint() == [*compose.DUMB_INIT, compose.IMAGE_ENTRYPOINT]
    for source in (".dvc/config", "include", "plugins", "tools", "pyproject.toml"):
        assert re.search(rf"^COPY .*\s{re.escape(source)}\s", dockerfile, re.M), f"{source} is not copied"
    ignored = {ln.strip() for ln in (REPO / ".dockerignore").read_text().splitlines() if not ln.startswith("#")}
    assert {".git", ".env", "secrets", ".venv", ".local"} <= ignored
    for path in ("include", "plugins", "tools", ".dvc", "pyproject.toml", "README.md", "requirements.txt"):
        assert path not in ignored


def test_healthchecks_and_workers(services: dict[str, Any]) -> None:
    """Guards: no healthchecks for scheduler, dag-processor, triggerer and worker; no worker
    concurrency limit (16 TensorFlow trainings per container); no warm shutdown; each task
    process imported TensorFlow and MLflow again (no worker preload); MinIO's
    healthcheck used curl, which recent MinIO images do not have; no logs volume; review
    links pointed to 127.0.0.1:8080 (no API base URL)."""
    for name, svc in services.items():
        if svc.get("restart") == "always":
            assert "healthcheck" in svc, f"{name} runs for good but has no healthcheck"
    assert "curl" not in json.dumps(services["minio"]["healthcheck"])
    assert services["minio"]["healthcheck"]["test"][:2] == ["CMD", "mc"]
    scheduler = services["airflow-scheduler"]
    assert "8974/health" in " ".join(scheduler["healthcheck"]["test"])
    assert scheduler["environment"]["AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK"] == "True"
    worker = services["airflow-worker"]
    assert worker["environment"]["DUMB_INIT_SETSID"] == "0"
    assert 1 <= int(worker["environment"]["AIRFLOW__CELERY__WORKER_CONCURRENCY"]) <= 4
    assert "celery_executor.app inspect ping" in " ".join(worker["healthcheck"]["test"])
    # heavy imports once per worker, not once per task (retrainer_airflow.preload)
    config = worker["environment"]["AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS"]
    assert config == "retrainer_airflow.celery_config.CELERY_CONFIG"
    for name in AIRFLOW_SERVICES:
        env = services[name]["environment"]
        assert env["AIRFLOW__API__BASE_URL"].startswith("http") and "127.0.0.1" not in env["AIRFLOW__API__BASE_URL"]
        assert "airflow-logs:/opt/airflow/logs" in services[name]["volumes"]


# ------------------------------------------------------------------ TensorFlow Serving


def _requirement(name: str, *files: str) -> str:
    for file in files:
        m = re.search(rf"^{re.escape(name)}==(\S+)", (REPO / file).read_text(), re.M)
        if m:
            return m.group(1)
    raise AssertionError(f"{name} is not pinned")


def test_tf_serving_reads_the_model_config_and_matches_the_exporter(services: dict[str, Any]) -> None:
    """Guards: TF Serving got only MODEL_NAME/MODEL_BASE_PATH (served the newest folder the
    moment it appeared: no labels, a canary took all traffic, a rollback changed nothing);
    verify checked the worker's embedded server, not TF Serving; its image tag was not the
    exporter's TensorFlow release."""
    tfs = services["tensorflow-serving"]
    flags = dict(f.removeprefix("--").split("=", 1) for f in compose.argv(tfs)[1:])
    assert compose.argv(tfs)[0] == "tensorflow_model_server"
    assert "environment" not in tfs or not {"MODEL_NAME", "MODEL_BASE_PATH"} & set(tfs["environment"])
    mount = next(v for v in tfs["volumes"] if v.startswith("model-store:"))
    assert mount.endswith(":ro")
    store = mount.split(":")[1]
    worker = services["airflow-worker"]["environment"]
    assert worker["RETRAINER_MODEL_STORE"] == store, "workers and TF Serving see the store at one path"
    assert flags["model_config_file"] == f"{store}/models.config"  # where modelstore writes it
    assert 0 < int(flags["model_config_file_poll_wait_seconds"]) <= 60
    assert "allow_version_labels_for_unavailable_models" not in flags  # labels move in two steps
    assert worker["RETRAINER_SERVING_URL"] == f"http://tensorflow-serving:{flags['rest_api_port']}"
    tag = tfs["image"].split(":")[1]
    assert tag == _requirement("tensorflow-cpu", "requirements.txt")
    assert tag == _requirement("tensorflow-serving-api", "requirements-dev-nodeps.txt")
    assert services["tensorflow-serving"]["depends_on"]["airflow-init"]  # it writes the first config


def _monitoring_config_class() -> Any:
    """TF Serving's MonitoringConfig message (tensorflow_serving/config/monitoring_config.proto,
    not shipped in the tensorflow-serving-api wheel), built from its definition."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    f = descriptor_pb2.FileDescriptorProto(
        name="monitoring_config.proto", package="tensorflow.serving", syntax="proto3"
    )
    prom = f.message_type.add(name="PrometheusConfig")
    prom.field.add(name="enable", number=1, type=8, label=1)  # bool
    prom.field.add(name="path", number=2, type=9, label=1)  # string
    mon = f.message_type.add(name="MonitoringConfig")
    mon.field.add(
        name="prometheus_config", number=1, type=11, label=1, type_name=".tensorflow.serving.PrometheusConfig"
    )
    pool = descriptor_pool.DescriptorPool()
    pool.Add(f)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("tensorflow.serving.MonitoringConfig"))


def _batching_parameters_class() -> Any:
    """TF Serving's BatchingParameters (session_bundle_config.proto, not in the wheel either)."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, wrappers_pb2

    pool = descriptor_pool.DescriptorPool()
    pool.Add(descriptor_pb2.FileDescriptorProto.FromString(wrappers_pb2.DESCRIPTOR.serialized_pb))
    f = descriptor_pb2.FileDescriptorProto(
        name="session_bundle_config.proto",
        package="tensorflow.serving",
        syntax="proto3",
        dependency=["google/protobuf/wrappers.proto"],
    )
    msg = f.message_type.add(name="BatchingParameters")
    for number, name in enumerate(
        ("max_batch_size", "batch_timeout_micros", "max_enqueued_batches", "num_batch_threads"), start=1
    ):
        msg.field.add(name=name, number=number, type=11, label=1, type_name=".google.protobuf.Int64Value")
    msg.field.add(name="allowed_batch_sizes", number=6, type=3, label=3)
    pool.Add(f)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("tensorflow.serving.BatchingParameters"))


def test_tf_serving_batches_with_the_model_servers_limits(services: dict[str, Any]) -> None:
    from google.protobuf import text_format

    from retrainer.serving.batching import BatchLimits

    tfs = services["tensorflow-serving"]
    flags = dict(f.removeprefix("--").split("=", 1) for f in compose.argv(tfs)[1:])
    assert flags["enable_batching"] == "true"
    assert flags["prefer_tflite_model"] == "true"  # model.tflite, where the deploy wrote one, as the embedded server
    mount = next(v for v in tfs["volumes"] if v.endswith(f"{flags['batching_parameters_file']}:ro"))
    params = text_format.Parse((REPO / mount.split(":")[0]).read_text(), _batching_parameters_class()())
    limits = BatchLimits()  # the embedded server's defaults
    assert params.max_batch_size.value == limits.max_rows
    assert params.batch_timeout_micros.value == round(limits.timeout_s * 1e6)
    assert params.num_batch_threads.value >= 1 and params.max_enqueued_batches.value >= 1


def test_tf_serving_exposes_the_metrics_the_deploy_check_reads(services: dict[str, Any]) -> None:
    from google.protobuf import text_format

    from retrainer.serving import prometheus

    tfs = services["tensorflow-serving"]
    flags = dict(f.removeprefix("--").split("=", 1) for f in compose.argv(tfs)[1:])
    mount = next(v for v in tfs["volumes"] if v.endswith(f"{flags['monitoring_config_file']}:ro"))
    config = text_format.Parse((REPO / mount.split(":")[0]).read_text(), _monitoring_config_class()())
    assert config.prometheus_config.enable and config.prometheus_config.path == prometheus.PATH


# ------------------------------------------------------------------ environment and secrets

#: environment variables read by the code (include/, plugins/) and by the libraries it drives,
#: that the compose must set for every Airflow service (all of them import the code: the API
#: server its plugins, the DAG processor the DAGs, the triggerer the triggers, workers the tasks)
REQUIRED = {
    "RETRAINER_HOME",
    "RETRAINER_LANDING",
    "RETRAINER_QUARANTINE",
    "RETRAINER_VALIDATION_RESULTS",
    "RETRAINER_DATA_REGISTRY_URL",
    "RETRAINER_DVC_REMOTE",
    "RETRAINER_MLFLOW_ARTIFACTS",
    "RETRAINER_MODEL_STORE",
    "RETRAINER_SERVING_URL",
    "RETRAINER_MLFLOW_UI_URL",
    "MLFLOW_TRACKING_URI",
    "MLFLOW_TRACKING_USERNAME",
    "MLFLOW_TRACKING_PASSWORD",
    "AWS_ENDPOINT_URL",
    "MLFLOW_S3_ENDPOINT_URL",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_DEFAULT_REGION",
    "AIRFLOW__API__BASE_URL",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
    "AIRFLOW__CELERY__RESULT_BACKEND",
    "AIRFLOW__CORE__FERNET_KEY",
    "AIRFLOW__API__SECRET_KEY",
    "AIRFLOW__API_AUTH__JWT_SECRET",
}
#: read by the code, with a default that fits the compose (or set by the code itself)
OPTIONAL = {
    "RETRAINER_SPECS_DIR": "the specs in the image (include/specs)",
    "RETRAINER_DATA_REGISTRY": "the worker's clone under RETRAINER_HOME",
    "RETRAINER_DEFAULT_DATASET": "bike_sharing",
    "RETRAINER_TASK_RETRIES": "2",
    "RETRAINER_RETRY_DELAY_S": "30",
    "RETRAINER_REVIEW_POKE_S": "the review trigger's default",
    "RETRAINER_SERVING_OUT_OF_RANGE": "refuse (the embedded model server; the compose serves with TF Serving)",
    "RETRAINER_SERVING_BATCH_TIMEOUT_US": "1000 (the embedded model server; TF Serving has its batching config)",
    "RETRAINER_SERVING_MAX_BATCH_ROWS": "256 (the embedded model server; TF Serving has its batching config)",
    "RETRAINER_RETRAIN_SCHEDULE": "as each period of the most frequent training.every among the specs starts",
    "RETRAINER_ALERT_WEBHOOK": "no webhook: failures are in the task log and the Airflow UI",
    "RETRAINER_REVIEWER_PASSWORD": "only for `python -m retrainer reviewers add`",
    "DVC_NO_ANALYTICS": "set in the compose; the code sets it too",
    "GIT_OPTIONAL_LOCKS": "set by the code for its git calls",
    "GIT_TERMINAL_PROMPT": "set by the code for its git calls",
    "TF_CPP_MIN_LOG_LEVEL": "set by the code",
    "PYTHONPATH": "the image installs the package",
    "RETRAINER_LOCK_DEAD_AFTER_S": "30: when a lock ticket that stopped beating is taken as its owner's death",
    "RETRAINER_FAULT": "fault points for the reliability suite only",
    "RETRAINER_FAULT_ONCE": "fault points for the reliability suite only",
    "RETRAINER_FAULT_ACTION": "fault points for the reliability suite only",
    "RETRAINER_FAULT_STALL_S": "fault points for the reliability suite only",
}


def _variables_the_code_reads() -> set[str]:
    pattern = re.compile(r"(?:environ(?:\.get)?\(|environ\[|getenv\(|env\.get\()\s*f?\"([A-Z][A-Z0-9_]+)\"")
    found: set[str] = set()
    for folder in ("include/retrainer", "plugins/retrainer_airflow"):
        for path in (REPO / folder).rglob("*.py"):
            found |= set(pattern.findall(path.read_text()))
    from retrainer.settings import ENV_VARS

    return found | set(ENV_VARS.values())


def test_every_variable_the_code_reads_is_set_for_each_service_that_runs_it(services: dict[str, Any]) -> None:
    """Guards: settings the code reads missing from a service (e.g. RETRAINER_SERVING_URL
    unset, so the deploy check did not go through TF Serving); secrets given as plain env."""
    read = _variables_the_code_reads() - {"RETRAINER_S3_ENDPOINT_URL"}
    unclassified = read - REQUIRED - set(OPTIONAL)
    assert not unclassified, f"the code reads {sorted(unclassified)}: add them to REQUIRED or OPTIONAL"
    for name in (*AIRFLOW_SERVICES, "airflow-init"):
        env = compose.environment(services[name])
        missing = REQUIRED - {k for k, v in env.items() if v}
        assert not missing, f"{name} lacks {sorted(missing)}"
        from retrainer.settings import Settings

        settings = Settings.from_env(env)
        assert settings.s3_endpoint_url and settings.data_registry_url and settings.serving_url
    mlflow = compose.environment(services["mlflow"])
    for key in (
        "MLFLOW_S3_ENDPOINT_URL",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "MLFLOW_BACKEND_STORE_URI",
        "MLFLOW_AUTH_DATABASE_URI",
        "MLFLOW_ADMIN_USERNAME",
        "MLFLOW_ADMIN_PASSWORD",
        "MLFLOW_FLASK_SERVER_SECRET_KEY",
        "MLFLOW_ARTIFACTS_DESTINATION",
        "MLFLOW_ALLOWED_HOSTS",
    ):
        assert mlflow.get(key), f"mlflow lacks {key}"
    assert "mlflow:5000" in mlflow["MLFLOW_ALLOWED_HOSTS"].split(",")
    assert mlflow["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "false"  # no GenAI job runner (eight more processes)
    assert (
        mlflow["MLFLOW_ADMIN_USERNAME"] == compose.environment(services["airflow-worker"])["MLFLOW_TRACKING_USERNAME"]
    )


SECRET_WORDS = re.compile(
    r"(PASSWORD|SECRET|_KEY$|_KEY_ID$|TOKEN|FERNET|CONN$|RESULT_BACKEND$|STORE_URI$|DATABASE_URI$)"
)


def test_secrets_are_files_one_per_purpose(spec: dict[str, Any], services: dict[str, Any]) -> None:
    """Guards: one value as API secret key and JWT secret; MinIO's root user as the
    applications' S3 user; the database password on MLflow's command line; no compose
    secrets (passwords in the environment from an .env file)."""
    from retrainer_dev.secrets import SECRETS

    declared = spec["secrets"]
    assert set(declared) == set(SECRETS)
    assert all(v == {"file": f"./secrets/{k}"} for k, v in declared.items())
    for name, svc in services.items():
        env = {str(k): str(v) for k, v in (svc.get("environment") or {}).items()}
        for key, value in env.items():
            if SECRET_WORDS.search(key.removesuffix("_FILE").removesuffix("_TEMPLATE").removesuffix("_CMD")):
                ok = value.startswith("/run/secrets/") or "{" in value or "cat /run/secrets/" in value
                assert ok or key == "AWS_DEFAULT_REGION", f"{name}: {key} is not read from a secret"
        mounted = set(svc.get("secrets", []))
        assert compose.secrets_used(svc) <= mounted, f"{name} reads secrets it is not given"
        assert not re.search(r"password|secret", " ".join(compose.argv(svc)), re.I) or name == "minio", name
    worker, apiserver = services["airflow-worker"]["environment"], services["airflow-apiserver"]["environment"]
    assert worker["AIRFLOW__API__SECRET_KEY_FILE"] != worker["AIRFLOW__API_AUTH__JWT_SECRET_FILE"]
    assert worker["AWS_ACCESS_KEY_ID_FILE"] != "/run/secrets/minio_root_user"
    assert "minio_root_user" not in services["airflow-worker"]["secrets"]
    assert "minio_root_user" not in services["mlflow"]["secrets"]
    assert apiserver["AIRFLOW__CORE__AUTH_MANAGER"].endswith("FabAuthManager")
    example = (REPO / ".env.example").read_text()
    for name in SECRETS:
        assert re.search(rf"^{name.upper()}=$", example, re.M), f".env.example lacks {name.upper()}="
    assert "secrets/" in (REPO / ".gitignore").read_text().split()


def test_the_secret_files_are_written_once_per_purpose(tmp_path: Path) -> None:
    from retrainer_dev import secrets

    folder = tmp_path / "secrets"
    done = secrets.write(folder, {"AIRFLOW_ADMIN_PASSWORD": "chosen-by-the-team"})
    assert done["airflow_admin_password"] == "from AIRFLOW_ADMIN_PASSWORD"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    values = {p.name: p.read_text().strip() for p in folder.iterdir()}
    assert set(values) == set(secrets.SECRETS) and values["airflow_admin_password"] == "chosen-by-the-team"
    assert len({v for k, v in values.items() if k != "minio_root_user"}) == len(values) - 1  # all different
    from cryptography.fernet import Fernet

    Fernet(values["airflow_fernet_key"].encode())  # a valid key
    assert set(secrets.write(folder, {}).values()) == {"kept"}
    assert {p.name: p.read_text().strip() for p in folder.iterdir()} == values


# ------------------------------------------------------------------ the scripts the services run


def _stub(path: Path, record: Path) -> Path:
    """An executable that records its arguments and environment (one JSON line per call)."""
    path.write_text(
        f"#!{sys.executable}\nimport json, os, sys\n"
        f"open({str(record)!r}, 'a').write(json.dumps({{'argv': sys.argv[1:], 'env': dict(os.environ)}}) + '\\n')\n"
    )
    path.chmod(0o755)
    return path


def _secrets_dir(tmp_path: Path, values: dict[str, str]) -> Path:
    folder = tmp_path / "run-secrets"
    folder.mkdir()
    for k, v in values.items():
        (folder / k).write_text(v + "\n")
    return folder


def test_the_entrypoint_turns_secret_files_into_variables(tmp_path: Path) -> None:
    record = tmp_path / "calls.jsonl"
    folder = _secrets_dir(tmp_path, {"db": "p@ss/word:1", "key": "k1"})
    env = {
        "PATH": os.environ["PATH"],
        "RETRAINER_SECRETS_DIR": str(folder),
        "AIRFLOW_IMAGE_ENTRYPOINT": str(_stub(tmp_path / "entrypoint", record)),
        "AWS_SECRET_ACCESS_KEY_FILE": f"{folder}/key",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_TEMPLATE": "postgresql+psycopg2://airflow:{db}@postgres:5432/airflow",
    }
    script = REPO / "include" / "compose" / "entrypoint.sh"
    subprocess.run([str(script), "celery", "worker"], env=env, check=True, timeout=30)
    call = json.loads(record.read_text())
    assert call["argv"] == ["celery", "worker"]
    assert call["env"]["AWS_SECRET_ACCESS_KEY"] == "k1"
    assert call["env"]["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == (
        "postgresql+psycopg2://airflow:p%40ss%2Fword%3A1@postgres:5432/airflow"  # pragma: allowlist secret
    )
    env["AWS_SECRET_ACCESS_KEY_FILE"] = f"{folder}/missing"
    proc = subprocess.run([str(script), "version"], env=env, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert f"AWS_SECRET_ACCESS_KEY_FILE: cannot read the secret {folder}/missing" in proc.stderr


def test_init_hands_every_written_volume_to_the_services_user(tmp_path: Path, services: dict[str, Any]) -> None:
    """Guards: named volumes are created root-owned while the services run as `airflow`:
    every write to state, registry remote, model store and logs would have failed."""
    init = services["airflow-init"]
    assert init["user"] == "0:0" and compose.argv(init) == ["/opt/retrainer/include/compose/init.sh"]
    # every named volume an Airflow service writes is one init hands over (mapped into tmp_path)
    written = {
        v.split(":")[1]
        for n in AIRFLOW_SERVICES
        for v in services[n]["volumes"]
        if not v.startswith(".") and not v.endswith(":ro")
    }
    env = compose.environment(init)
    where = {
        env["RETRAINER_HOME"],
        str(Path(env["RETRAINER_DATA_REGISTRY_URL"]).parent),
        env["RETRAINER_MODEL_STORE"],
        "/opt/airflow/logs",
    }
    assert written == where
    root = tmp_path / "fs"
    record = tmp_path / "calls.jsonl"
    run_env = {
        **{k: str(v) for k, v in init["environment"].items() if not k.endswith(("_FILE", "_TEMPLATE"))},
        "PATH": os.environ["PATH"],
        "AIRFLOW_UID": str(AIRFLOW_UID),
        "AIRFLOW_IMAGE_ENTRYPOINT": str(_stub(tmp_path / "entrypoint", record)),
        "RETRAINER_HOME": f"{root}{env['RETRAINER_HOME']}",
        "RETRAINER_DATA_REGISTRY_URL": f"{root}{env['RETRAINER_DATA_REGISTRY_URL']}",
        "RETRAINER_MODEL_STORE": f"{root}{env['RETRAINER_MODEL_STORE']}",
        "AIRFLOW_LOGS": f"{root}/opt/airflow/logs",
        "RETRAINER_SECRETS_DIR": str(_secrets_dir(tmp_path, {})),
    }
    script = str(REPO / "include" / "compose" / "init.sh")
    for _ in range(2):  # a second run (compose up again) changes nothing and does not fail
        subprocess.run([script], env=run_env, check=True, timeout=60, capture_output=True)
    for path in where:
        st = (root / path.lstrip("/")).stat()
        assert (st.st_uid, st.st_gid) == (AIRFLOW_UID, 0) and st.st_mode & stat.S_IWGRP, path
    remote = Path(run_env["RETRAINER_DATA_REGISTRY_URL"])
    assert (remote / "HEAD").is_file() and remote.stat().st_uid == AIRFLOW_UID
    from tests.tfserving import TFServing

    TFServing().apply((Path(run_env["RETRAINER_MODEL_STORE"]) / "models.config").read_text())
    calls = [json.loads(line) for line in record.read_text().splitlines()]
    assert [c["argv"][:3] for c in calls[:2]] == [["airflow", "version"], ["airflow", "pools", "set"]]
    assert calls[0]["env"]["_AIRFLOW_DB_MIGRATE"] == "true" and calls[0]["env"]["_AIRFLOW_WWW_USER_CREATE"] == "true"
    assert "_AIRFLOW_DB_MIGRATE" not in calls[1]["env"]
    assert calls[0]["env"]["_AIRFLOW_WWW_USER_PASSWORD_CMD"] == "cat /run/secrets/airflow_admin_password"
    from retrainer_airflow.defaults import REGISTRY_POOL

    assert calls[1]["argv"][3:5] == [REGISTRY_POOL, "1"]


def test_postgres_gives_each_application_its_role_and_database(services: dict[str, Any]) -> None:
    script = (REPO / "include" / "compose" / "postgres-init.sh").read_text()
    pg = services["postgres"]
    assert pg["environment"] == {"POSTGRES_PASSWORD_FILE": "/run/secrets/postgres_password"}
    for secret in re.findall(r"secret ([a-z_]+)", script):
        assert secret in pg["secrets"]
    created = dict(re.findall(r"CREATE DATABASE (\w+) OWNER (\w+);", script))
    urls = [
        compose.environment(services["airflow-worker"])["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"],
        *(compose.environment(services["mlflow"])[k] for k in ("MLFLOW_BACKEND_STORE_URI", "MLFLOW_AUTH_DATABASE_URI")),
    ]
    for url in urls:
        m = re.match(r"postgresql\+psycopg2://(\w+):[^@]+@postgres:5432/(\w+)$", url)
        assert m and created.get(m.group(2)) == m.group(1), url
