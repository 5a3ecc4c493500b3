"""The TensorFlow Serving-compatible server over a real model store (real SavedModels)."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import pandas as pd
import pytest

from retrainer import storage
from retrainer.data.demo_data import load_bike_sharing, split_periods
from retrainer.model import training
from retrainer.serving import modelstore, rest
from retrainer.serving.export import export_saved_model
from retrainer.spec.dataset import DatasetSpec
from retrainer_dev.waiting import wait_until


@pytest.fixture(scope="module")
def rows(bike_spec: DatasetSpec) -> pd.DataFrame:
    return split_periods(load_bike_sharing(), bike_spec)["2011-03"]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, bike_spec: DatasetSpec, rows: pd.DataFrame) -> Path:
    root = tmp_path_factory.mktemp("store")
    for version, seed in ((1, 1), (2, 2)):
        model = training.train(rows, bike_spec, replace(bike_spec.training, epochs=1, seed=seed)).model
        out = tmp_path_factory.mktemp(f"export{version}") / "m"
        export_saved_model(model, out, bike_spec if version == 1 else None)  # v2: deployed before contracts
        storage.publish_dir(out, str(root / "bike_demand" / str(version)), "saved_model.pb")
    modelstore.set_label(root, "bike_demand", modelstore.STABLE, 1)
    modelstore.load_version(root, "bike_demand", 2)  # served, unlabelled
    return root


@pytest.fixture(scope="module")
def url(store: Path) -> Iterator[str]:
    httpd = rest.serve(store, port=0)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}/v1/models"
    httpd.shutdown()


def _call(url: str, body: Any = None, raw: bytes | None = None) -> tuple[int, dict[str, Any]]:
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def _instances(rows: pd.DataFrame, spec: DatasetSpec, n: int = 3) -> list[dict[str, Any]]:
    return json.loads(rows[list(spec.feature_names)].iloc[:n].to_json(orient="records"))


def test_config_is_tf_serving_text_format(store: Path) -> None:
    text = (store / "models.config").read_text()
    assert 'name: "bike_demand"' in text and 'version_labels { key: "stable" value: 1 }' in text
    assert modelstore.read_config(store)["bike_demand"].labels == {"stable": 1}


def test_status_and_predict_both_formats(url: str, rows: pd.DataFrame, bike_spec: DatasetSpec) -> None:
    assert _call(f"{url}/bike_demand") == (
        200,
        {
            "model_version_status": [
                {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
            ]
        },
    )
    instances = _instances(rows, bike_spec)
    status, rows_out = _call(f"{url}/bike_demand:predict", {"instances": instances})
    assert status == 200 and len(rows_out["predictions"]) == 3
    columnar = {k: [r[k] for r in instances] for k in instances[0]}
    status, cols_out = _call(f"{url}/bike_demand:predict", {"inputs": columnar})
    assert status == 200
    np.testing.assert_allclose(cols_out["outputs"], rows_out["predictions"], rtol=1e-6)
    status, v2 = _call(f"{url}/bike_demand/versions/2:predict", {"instances": instances})
    assert status == 200 and not np.allclose(v2["predictions"], rows_out["predictions"])


def test_only_the_versions_the_config_serves_are_served(url: str, store: Path) -> None:
    """As TensorFlow Serving with a specific version policy: a version folder alone serves nothing."""
    assert _call(f"{url}/bike_demand/versions/2")[0] == 200
    modelstore.unload_unlabelled(store, "bike_demand")
    try:
        status, body = _call(f"{url}/bike_demand/versions/2")
        assert status == 404 and "not served" in body["error"]
    finally:
        modelstore.load_version(store, "bike_demand", 2)


def test_relabel_is_picked_up_without_restart(
    url: str, store: Path, rows: pd.DataFrame, bike_spec: DatasetSpec
) -> None:
    instances = _instances(rows, bike_spec)
    _, before = _call(f"{url}/bike_demand:predict", {"instances": instances})
    _, v2 = _call(f"{url}/bike_demand/versions/2:predict", {"instances": instances})
    modelstore.set_label(store, "bike_demand", modelstore.STABLE, 2)
    try:
        assert _call(f"{url}/bike_demand")[1]["model_version_status"][0]["version"] == "2"
        _, after = _call(f"{url}/bike_demand:predict", {"instances": instances})
        assert after["predictions"] == v2["predictions"] != before["predictions"]
    finally:
        modelstore.set_label(store, "bike_demand", modelstore.STABLE, 1)


@pytest.mark.parametrize(
    ("path", "body", "raw", "status", "message"),
    [
        ("/bike_demand:predict", None, b"{not json", 400, "not valid JSON"),
        ("/bike_demand:predict", {"rows": []}, None, 400, "'instances' or 'inputs'"),
        ("/bike_demand:predict", {"instances": []}, None, 400, "non-empty list"),
        ("/bike_demand:predict", {"instances": [{"temp": 1.0}]}, None, 400, "instance 0 misses inputs"),
        ("/bike_demand:predict", {"inputs": {"temp": [1.0]}}, None, 400, "'inputs' misses"),
        ("/nope:predict", {"instances": [{}]}, None, 404, "model 'nope' is not served"),
        ("/bike_demand/versions/9:predict", {"instances": [{}]}, None, 404, "no version 9"),
        ("/bike_demand/labels/canary:predict", {"instances": [{}]}, None, 404, "no version labelled 'canary'"),
    ],
)
def test_clear_4xx_errors(url: str, path: str, body: Any, raw: bytes | None, status: int, message: str) -> None:
    code, payload = _call(f"{url}{path}", body, raw)
    assert code == status and message in payload["error"]


def test_wrong_type_is_a_400_without_a_contract(url: str, rows: pd.DataFrame, bike_spec: DatasetSpec) -> None:
    instance = _instances(rows, bike_spec, 1)[0] | {"temp": "warm"}
    code, payload = _call(f"{url}/bike_demand/versions/2:predict", {"instances": [instance]})
    assert code == 400 and "input 'temp' must be float32" in payload["error"]


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"season": "monsoon"}, "instance 1, field 'season': \"monsoon\" is not a category of season (winter, spring"),
        ({"hr": 8}, "instance 1, field 'hr': 8 is an integer, the model takes text (one of 12am, 1am"),
        ({"temp": None}, "instance 1, field 'temp': null, and the spec allows no missing temp"),
        ({"temp": "warm"}, "instance 1, field 'temp': \"warm\" is text, not a number"),
        ({"temp": 9999}, "instance 1, field 'temp': 9999 is above the spec's max 45"),
        ({"holiday": True}, "instance 1, field 'holiday': true is true/false, the model takes text"),
        ({"colour": "red"}, "field 'colour' is not an input of this model"),
    ],
)
def test_the_contract_refuses_naming_row_field_and_rule(
    url: str, rows: pd.DataFrame, bike_spec: DatasetSpec, change: dict[str, Any], says: str
) -> None:
    """The version deployed with its spec's request contract: what the model would answer
    wrongly (an int for "8am", 9999 degrees) is refused, not predicted."""
    instances = _instances(rows, bike_spec, 3)
    instances[1] = instances[1] | change
    code, payload = _call(f"{url}/bike_demand:predict", {"instances": instances})
    assert code == 400 and says in payload["error"], payload
    columnar = {k: [r.get(k) for r in instances] for k in instances[1]}
    code, payload = _call(f"{url}/bike_demand:predict", {"inputs": columnar})
    assert code == 400 and says.replace("instance 1", "inputs[1]") in payload["error"], payload


def test_the_contract_lets_through_what_the_spec_allows(url: str, rows: pd.DataFrame, bike_spec: DatasetSpec) -> None:
    """A missing weekday (max_null_rate > 0) is served; a category sent as a number that names
    it would be too; many problems are listed at most 20 times."""
    instances = _instances(rows, bike_spec, 3)
    instances[0] = instances[0] | {"weekday": None}
    assert _call(f"{url}/bike_demand:predict", {"instances": instances})[0] == 200
    many = [r | {"season": "monsoon"} for r in _instances(rows, bike_spec, 30)]
    code, payload = _call(f"{url}/bike_demand:predict", {"instances": many})
    assert code == 400 and payload["error"].endswith("and 10 more")


def test_out_of_range_may_be_only_logged(
    store: Path, rows: pd.DataFrame, bike_spec: DatasetSpec, caplog: pytest.LogCaptureFixture
) -> None:
    server = rest.ModelServer(store, out_of_range="warn")
    instance = _instances(rows, bike_spec, 1)[0] | {"temp": 9999}
    assert len(server.predict("bike_demand", {"instances": [instance]})["predictions"]) == 1
    assert "9999 is above the spec's max 45" in caplog.text
    with pytest.raises(ValueError, match="RETRAINER_SERVING_OUT_OF_RANGE"):
        rest.ModelServer(store, out_of_range="ignore")


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("GET", "/v1/models/bike_demand:predict", "POST"),
        ("POST", "/v1/models/bike_demand", "GET"),
        ("PUT", "/v1/models/bike_demand:predict", "POST"),
        ("DELETE", "/v1/models/bike_demand", "GET"),
        ("POST", "/readyz", "GET"),
        ("POST", "/monitoring/prometheus/metrics", "GET"),
    ],
)
def test_a_wrong_method_is_a_405(url: str, method: str, path: str, allow: str) -> None:
    base = url.removesuffix("/v1/models")
    req = urllib.request.Request(f"{base}{path}", data=b"{}" if method != "GET" else None, method=method)
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=30)
    assert err.value.code == 405 and err.value.headers["Allow"] == allow
    assert method in json.loads(err.value.read())["error"]


def test_liveness_at_once_readiness_once_every_served_version_is_warm(url: str) -> None:
    base = url.removesuffix("/v1/models")
    with urllib.request.urlopen(f"{base}/healthz", timeout=30) as resp:
        assert resp.status == 200 and json.loads(resp.read()) == {"status": "alive"}

    def ready() -> bool:
        try:
            with urllib.request.urlopen(f"{base}/readyz", timeout=30) as resp:
                assert json.loads(resp.read()) == {"status": "ready"}
                return True
        except urllib.error.HTTPError as err:
            assert err.code == 503 and json.loads(err.read())["status"] == "loading"
            return False

    wait_until(ready, 120, interval_s=0.2, what="the server ready (/readyz)")


def test_concurrent_clients_are_batched_and_answered_as_alone(
    store: Path, rows: pd.DataFrame, bike_spec: DatasetSpec
) -> None:
    """8 clients at once through the server: model calls are shared (adaptive batching), and
    each client gets what the version answers for its rows alone."""
    httpd = rest.serve(store, port=0, warm=False)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_port}/v1/models/bike_demand:predict"
    server = httpd.RequestHandlerClass.model_server  # type: ignore[attr-defined]
    instances = _instances(rows, bike_spec, 40)
    alone = [_call(url, {"instances": [row]})[1]["predictions"] for row in instances]  # one at a time
    calls_alone = server._batchers[("bike_demand", 1)].calls
    got: dict[int, Any] = {}

    def client(c: int) -> None:
        for k in range(c, len(instances), 8):
            got[k] = _call(url, {"instances": [instances[k]]})[1]["predictions"]

    threads = [threading.Thread(target=client, args=(c,)) for c in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    # each request came on its own connection, closed after it: ...
    wait_until(
        lambda: not server._batchers[("bike_demand", 1)]._seen,
        10,
        interval_s=0.01,
        what="every connection forgotten by the batcher",
    )
    assert not server._batchers[("bike_demand", 1)]._seen  # ... so no batch waits for any of them
    httpd.shutdown()
    assert calls_alone == len(instances)  # sequential requests were never held for others
    np.testing.assert_allclose([got[k] for k in range(len(instances))], alone, rtol=1e-5)
    batcher = server._batchers[("bike_demand", 1)]
    assert batcher.rows - len(instances) == len(instances)
    assert batcher.calls - calls_alone < len(instances)  # calls were shared (13-15 of 40 measured here)


def _metrics(url: str) -> list[Any]:
    from retrainer.serving import prometheus

    base = url.removesuffix("/v1/models")
    with urllib.request.urlopen(f"{base}{prometheus.PATH}", timeout=30) as resp:
        assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        return prometheus.parse(resp.read().decode())


def test_prometheus_metrics_count_and_time_calls_per_model_version_and_label(
    url: str, rows: pd.DataFrame, bike_spec: DatasetSpec
) -> None:
    """TensorFlow Serving's path and names; counts by status, latency of good predict calls,
    each by model, version and the label the request named."""
    from retrainer.serving import prometheus as m

    before = _metrics(url)
    body = {"instances": _instances(rows, bike_spec, 2)}
    for _ in range(3):
        assert _call(f"{url}/bike_demand:predict", body)[0] == 200  # stable: v1
    assert _call(f"{url}/bike_demand/versions/2:predict", body)[0] == 200
    assert _call(f"{url}/bike_demand:predict", {"instances": []})[0] == 400
    assert _call(f"{url}/nope:predict", body)[0] == 404
    after = _metrics(url)

    def delta(name: str, **labels: str) -> float:
        return m.total(m.select(after, name, **labels)) - m.total(m.select(before, name, **labels))

    stable = {"model_name": "bike_demand", "API": "predict", "version": "1", "label": "stable"}
    assert delta(m.COUNT, **stable, status="OK") == 3
    assert delta(m.COUNT, model_name="bike_demand", API="predict", version="2", label="", status="OK") == 1
    assert delta(m.COUNT, model_name="bike_demand", label="stable", status="BAD_REQUEST") == 1
    assert delta(m.COUNT, model_name="(not served)", status="NOT_FOUND") == 1  # no series per unknown name
    assert delta(f"{m.LATENCY}_count", **stable) == 3
    histogram = m.buckets(m.select(after, f"{m.LATENCY}_bucket", **stable))
    assert histogram[float("inf")] == m.total(m.select(after, f"{m.LATENCY}_count", **stable))
    assert list(histogram.values()) == sorted(histogram.values())  # cumulative
    p99 = m.quantile(m.buckets(m.select(before, f"{m.LATENCY}_bucket", **stable)), histogram, 0.99)
    assert p99 is not None and p99 in m.BUCKETS_US


def test_canary_label_status_and_the_deploy_check(
    url: str, store: Path, rows: pd.DataFrame, bike_spec: DatasetSpec
) -> None:
    """A new version is served under ``canary`` while ``stable`` stays; the deploy check goes
    through the server (health, predictions equal to the model's, latency) and says what failed."""
    from retrainer.serving import postdeploy

    base = url.removesuffix("/v1/models")
    modelstore.set_label(store, "bike_demand", modelstore.CANARY, 2)
    try:
        status, body = _call(f"{url}/bike_demand/labels/canary")
        assert status == 200 and body["model_version_status"][0] == {
            "version": "2",
            "state": "AVAILABLE",
            "status": {"error_code": "OK", "error_message": ""},
        }
        assert _call(f"{url}/bike_demand")[1]["model_version_status"][0]["version"] == "1"  # stable stays
        sample = rows.iloc[:16]
        _, v2 = _call(f"{url}/bike_demand/versions/2:predict", {"instances": _instances(rows, bike_spec, 16)})
        expected = np.asarray(v2["predictions"], dtype=float)
        result = postdeploy.check(base, bike_spec, "2", sample, expected, label=modelstore.CANARY)
        assert result.max_abs_diff == 0 and result.rows == 16 and result.requests == bike_spec.deploy.latency_requests
        assert result.route == "/v1/models/bike_demand/labels/canary" and 0 < result.p50_ms <= result.p99_ms
        # the server's own metrics counted the check's calls (the latency requests and a warm-up)
        assert result.server_counted == bike_spec.deploy.latency_requests + 1
        assert result.server_p99_ms is not None and result.server_p99_ms > 0
        from retrainer.serving import prometheus

        stopped = mock.patch.object(prometheus.Metrics, "observe")  # a server that stopped counting
        with stopped, pytest.raises(postdeploy.DeployCheckError, match=r"telemetry: the server's metrics counted 0"):
            postdeploy.check(base, bike_spec, "2", sample, expected, label=modelstore.CANARY)
        with pytest.raises(postdeploy.DeployCheckError, match="predict: served predictions differ"):
            postdeploy.check(base, bike_spec, "2", sample, expected + 50, label=modelstore.CANARY)
        strict = replace(bike_spec, deploy=replace(bike_spec.deploy, max_p99_ms=0.0001, latency_requests=5))
        with pytest.raises(postdeploy.DeployCheckError, match="latency: p99"):
            postdeploy.check(base, strict, "2", sample, expected, label=modelstore.CANARY)
        with pytest.raises(postdeploy.DeployCheckError, match=r"health: .* did not report v3 AVAILABLE"):
            postdeploy.check(base, bike_spec, "3", sample, expected, wait_s=0)
    finally:
        assert modelstore.clear_label(store, "bike_demand", modelstore.CANARY) == {"stable": 1}
    assert modelstore.read_config(store)["bike_demand"].labels == {"stable": 1}


def test_a_label_moves_only_once_the_server_clients_use_has_the_version(
    url: str, store: Path, bike_spec: DatasetSpec
) -> None:
    """With ``RETRAINER_SERVING_URL`` set, the pipeline waits between the two writes of a label
    move until that server reports the version AVAILABLE (postdeploy.waiter), and says so
    when it does not in time."""
    from retrainer.serving import postdeploy
    from retrainer.settings import Settings

    base = url.removesuffix("/v1/models")
    settings = replace(Settings.from_env({}), serving_url=base)
    modelstore.unload_unlabelled(store, "bike_demand")  # v2 not served: the move takes two writes
    seen: list[list[int]] = []
    wait = postdeploy.waiter(settings, bike_spec, wait_s=30)
    assert wait is not None and postdeploy.waiter(replace(settings, serving_url=None), bike_spec) is None

    def waiting(version: int) -> None:
        seen.append(modelstore.read_config(store)["bike_demand"].served())
        wait(version)
        assert modelstore.read_config(store)["bike_demand"].labels == {"stable": 1}  # not moved yet

    try:
        assert modelstore.set_label(store, "bike_demand", modelstore.CANARY, 2, wait=waiting) == {
            "stable": 1,
            "canary": 2,
        }
        assert seen == [[2, 1]]
        gone = postdeploy.waiter(replace(settings, serving_url="http://127.0.0.1:9"), bike_spec, wait_s=0)
        assert gone is not None
        with pytest.raises(postdeploy.DeployCheckError, match=r"health: http://127.0.0.1:9/v1/models/bike_demand"):
            gone(2)
    finally:
        modelstore.clear_label(store, "bike_demand", modelstore.CANARY)
        modelstore.load_version(store, "bike_demand", 2)


def test_a_version_with_a_tflite_model_is_served_from_it(
    tmp_path: Path, rows: pd.DataFrame, bike_spec: DatasetSpec
) -> None:
    """A version folder holding ``model.tflite`` (TensorFlow Serving's --prefer_tflite_model
    layout) answers with the TFLite model: its answers, not the SavedModel's, alone and batched."""
    from retrainer.serving import export

    model = training.train(rows, bike_spec, replace(bike_spec.training, epochs=1, seed=3)).model
    out = tmp_path / "export"
    export_saved_model(model, out, bike_spec)
    blob, _ = export.convert_tflite(model)
    (out / modelstore.TFLITE_MODEL).write_bytes(blob)
    storage.publish_dir(out, str(tmp_path / "store" / "bike_demand" / "1"), "saved_model.pb")
    modelstore.set_label(tmp_path / "store", "bike_demand", modelstore.STABLE, 1)
    httpd = rest.serve(tmp_path / "store", port=0)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_port}/v1/models/bike_demand:predict"
    server = httpd.RequestHandlerClass.model_server  # type: ignore[attr-defined]
    try:
        assert server.ready.wait(60) and not server.warm_error
        assert server.served_version("bike_demand", 1).artifact == "tflite"
        code, payload = _call(url, {"instances": _instances(rows, bike_spec, 16)})
        assert code == 200
        lite = export.tflite_predictions(blob, rows.iloc[:16], bike_spec)
        full = training.predict(model, rows.iloc[:16], bike_spec)
        np.testing.assert_allclose(payload["predictions"], lite, rtol=1e-5, atol=1e-4)
        assert not np.allclose(lite, full, rtol=0, atol=1e-6)  # quantized: the answers tell the artifacts apart
        got: dict[int, Any] = {}

        def client(k: int) -> None:
            got[k] = _call(url, {"instances": _instances(rows.iloc[k:], bike_spec, 1)})[1]["predictions"]

        threads = [threading.Thread(target=client, args=(k,)) for k in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        np.testing.assert_allclose([got[k][0] for k in range(8)], lite[:8], rtol=1e-5, atol=1e-4)
    finally:
        httpd.shutdown()


def test_a_failing_model_call_is_a_500_naming_model_and_version(
    store: Path, rows: pd.DataFrame, bike_spec: DatasetSpec
) -> None:
    """A model call that raises (a broken artifact, out of memory) answers 500 with the model and
    version named, counted in the metrics; the connection is not dropped and the next call works."""
    httpd = rest.serve(store, port=0, warm=False)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_port}/v1/models/bike_demand:predict"
    server = httpd.RequestHandlerClass.model_server  # type: ignore[attr-defined]
    body = {"instances": _instances(rows, bike_spec, 2)}
    try:
        assert _call(url, body)[0] == 200
        served = server.served_version("bike_demand", 1)
        with mock.patch.object(served, "call", side_effect=RuntimeError("tensor allocation failed")):
            server._batchers.clear()  # a batching thread made from the patched call
            code, payload = _call(url, body)
        assert code == 500
        assert (
            "model 'bike_demand' version 1 failed on this request: RuntimeError: tensor allocation failed"
            in (payload["error"])
        )
        server._batchers.clear()
        assert _call(url, body)[0] == 200
        assert "INTERNAL_SERVER_ERROR" in server.metrics.render()  # counted, with its status
    finally:
        httpd.shutdown()
