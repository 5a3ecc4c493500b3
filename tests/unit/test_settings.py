"""Settings: locations from the environment, and back to it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from retrainer.settings import REPO_ROOT, Settings, specs_dir


def test_settings_default_under_home(home: Path) -> None:
    s = Settings.from_env()
    for loc in (s.landing, s.quarantine, s.data_registry, s.dvc_remote, s.model_store, s.mlflow_artifacts):
        assert Path(loc).is_relative_to(home)
    assert s.specs_dir == str(REPO_ROOT / "include" / "specs") == str(specs_dir({}))


def test_settings_refuse_registry_on_s3(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RETRAINER_DATA_REGISTRY", "s3://bucket/registry")
    with pytest.raises(ValueError, match="RETRAINER_DATA_REGISTRY"):
        Settings.from_env()


def test_settings_write_themselves_back_to_the_environment(tmp_path: Path) -> None:
    env = {
        "RETRAINER_HOME": str(tmp_path),
        "RETRAINER_MODEL_STORE": "s3://models/store",
        "RETRAINER_DVC_REMOTE": "s3://data/dvc",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9000",
        "RETRAINER_SERVING_URL": "http://serving:8501/",
        "RETRAINER_MLFLOW_UI_URL": "https://mlflow.example/",
        "RETRAINER_SPECS_DIR": str(tmp_path / "specs"),
    }
    s = Settings.from_env(env)
    assert Settings.from_env(s.to_env()) == s
    assert s.to_env()["RETRAINER_MODEL_STORE"] == "s3://models/store"
    assert "AWS_ENDPOINT_URL" not in Settings.from_env({"RETRAINER_HOME": str(tmp_path)}).to_env()
    # a subprocess given that environment sees the same settings
    code = "from retrainer.settings import Settings; import json; print(json.dumps(Settings.from_env().to_env()))"
    out = subprocess.run([sys.executable, "-c", code], env=s.to_env(), capture_output=True, text=True, check=True)
    assert Settings.from_env(json.loads(out.stdout)) == s
