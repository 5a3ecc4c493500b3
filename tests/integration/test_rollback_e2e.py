"""rollback_model end to end through Airflow: the previous champion serves again, verified,
with the alias, the stable label and the record moved together."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from retrainer.registry.client import Registry
from retrainer.schema import CHAMPION
from retrainer.serving import modelstore
from retrainer.settings import Settings
from retrainer_dev.runner import run_dag

pytestmark = pytest.mark.integration


def test_rollback_to_previous(make_pipeline: Any, home: Path, bike_batches: dict[str, Path]) -> None:
    spec_path = home / "specs" / "bike_sharing.yaml"
    spec = yaml.safe_load(spec_path.read_text())
    spec["gate"]["champion_margin"] = -1.0  # every candidate that beats the baseline becomes champion
    spec_path.write_text(yaml.safe_dump(spec))
    pipe = make_pipeline(2050)
    for period in ("2011-01", "2011-02", "2011-03"):
        pipe.ingest("bike_sharing", period, bike_batches[period])
    assert pipe.retrain("bike_sharing", "latest").values["promote"]["promoted"]
    pipe.ingest("bike_sharing", "2011-04", bike_batches["2011-04"])
    assert pipe.retrain("bike_sharing", "latest").values["promote"]["promoted"]
    settings = Settings.from_env()
    registry = Registry(settings)
    model = settings.load_spec("bike_sharing")
    assert registry.versions.alias(model, CHAMPION) == "2"
    store = home / "model-store"
    assert modelstore.read_config(store)["bike_demand"].labels == {"stable": 2}

    conf = {"dataset": "bike_sharing", "version": "previous", "reason": "v2 misbehaves in production"}
    run = run_dag(pipe.dags["rollback_model"], pipe._next(), conf, pipe.log)
    assert run.state == "success", run.states
    assert run.values["rollback"] | {"max_abs_diff": 0} == {
        "from": "2",
        "to": "1",
        "labels": {"stable": 1},
        "max_abs_diff": 0,
        "by": "dag_test",
        "reason": "v2 misbehaves in production",
    }
    assert registry.versions.alias(model, CHAMPION) == "1"
    assert modelstore.read_config(store)["bike_demand"].labels == {"stable": 1}
    tags = registry.versions.tags(model, "1")
    assert tags["rollback.from"] == "2" and tags["rollback.reason"] == "v2 misbehaves in production"
    assert registry.versions.tags(model, "2")["rolled_back.to"] == "1"

    # v1 replaced no champion: there is no "previous" to go back to, and the run says so
    again = run_dag(pipe.dags["rollback_model"], pipe._next(), conf, pipe.log)
    assert again.state == "failed"
    assert registry.versions.alias(model, CHAMPION) == "1"


def test_a_failed_deploy_check_rolls_back_and_notifies(
    make_pipeline: Any, home: Path, bike_batches: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    received: list[dict[str, Any]] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    hook = HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    monkeypatch.setenv("RETRAINER_ALERT_WEBHOOK", f"http://127.0.0.1:{hook.server_port}/hook")

    spec_path = home / "specs" / "bike_sharing.yaml"
    spec = yaml.safe_load(spec_path.read_text())
    spec["gate"]["champion_margin"] = -1.0
    spec_path.write_text(yaml.safe_dump(spec))
    pipe = make_pipeline(2051)
    for period in ("2011-01", "2011-02", "2011-03"):
        pipe.ingest("bike_sharing", period, bike_batches[period])
    assert pipe.retrain("bike_sharing", "latest").state == "success"
    pipe.ingest("bike_sharing", "2011-04", bike_batches["2011-04"])

    # the next version's deploy check fails for real: no server answers within this latency limit
    spec["deploy"] = {"max_p99_ms": 0.001}
    spec_path.write_text(yaml.safe_dump(spec))
    run = pipe.retrain("bike_sharing", "latest")
    hook.shutdown()
    assert run.state == "failed" and run.states["verify"] == "failed"
    registry = Registry(Settings.from_env())
    model = Settings.from_env().load_spec("bike_sharing")
    assert registry.versions.alias(model, CHAMPION) == "1"  # the bad v2 does not stay champion
    assert modelstore.read_config(home / "model-store")["bike_demand"].labels == {"stable": 1}
    tags = registry.versions.tags(model, "1")
    assert tags["rollback.by"] == "retrainer:auto" and "latency: p99" in tags["rollback.reason"]
    bad = registry.versions.tags(model, "2")
    assert bad["rolled_back.to"] == "1" and bad["deploy.verified"] == "false" and "latency" in bad["deploy.check.error"]
    assert any("retrain_model" in r["text"] and "failed" in r["text"] for r in received), received
