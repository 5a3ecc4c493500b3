"""The check after a deploy, through a model server as clients see it: health, predictions equal
to the registry model's, latency and the server's own count of the check's requests; and the
server it goes through. (A canary's check and each failure through the server with two versions:
tests/unit/serving/test_rest.py.)"""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from retrainer import storage
from retrainer.model import training
from retrainer.serving import modelstore, postdeploy, prometheus, rest
from retrainer.settings import Settings
from retrainer.spec.dataset import DatasetSpec


@pytest.fixture(scope="module")
def spec(bike_spec: DatasetSpec) -> DatasetSpec:
    """The bike spec with a short latency check."""
    return replace(bike_spec, deploy=replace(bike_spec.deploy, latency_requests=5))


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, bike_saved_model: Path) -> Path:
    root = tmp_path_factory.mktemp("store")
    storage.publish_dir(bike_saved_model, str(root / "bike_demand" / "1"), modelstore.SAVED_MODEL)
    modelstore.set_label(root, "bike_demand", modelstore.STABLE, 1)
    return root


@pytest.fixture(scope="module")
def base(store: Path) -> Iterator[str]:
    httpd = rest.serve(store, port=0, warm=False)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def sample(bike_window: tuple[pd.DataFrame, pd.DataFrame]) -> pd.DataFrame:
    return bike_window[1].iloc[:12]


@pytest.fixture(scope="module")
def expected(bike_trained: training.TrainResult, sample: pd.DataFrame, bike_spec: DatasetSpec) -> np.ndarray:
    return training.predict(bike_trained.model, sample, bike_spec)


def test_a_version_that_answers_as_the_model_passes_its_check(
    base: str, spec: DatasetSpec, sample: pd.DataFrame, expected: np.ndarray
) -> None:
    result = postdeploy.check(base, spec, "1", sample, expected)
    assert (result.endpoint, result.route, result.rows, result.requests) == (
        base,
        "/v1/models/bike_demand/versions/1",
        12,
        5,
    )
    assert result.max_abs_diff < 1e-3 and 0 < result.p50_ms <= result.p99_ms
    assert result.server_counted >= 6  # the latency requests and their warm-up, counted by the server
    assert result.server_p99_ms is not None and result.server_p99_ms * 1000 in prometheus.BUCKETS_US
    by_label = postdeploy.check(base, spec, "1", sample, expected, label=modelstore.STABLE)
    assert by_label.route == "/v1/models/bike_demand/labels/stable"


def test_predictions_of_another_shape_or_value_fail_the_check_saying_so(
    base: str, spec: DatasetSpec, sample: pd.DataFrame, expected: np.ndarray
) -> None:
    with pytest.raises(postdeploy.DeployCheckError, match=r"^predict: 12 predicted values for 11 \(11 rows\)"):
        postdeploy.check(base, spec, "1", sample, expected[:11])
    with pytest.raises(postdeploy.DeployCheckError, match=r"predict: served predictions differ .* by 5 on 12 sample"):
        postdeploy.check(base, spec, "1", sample, expected + 5)


def test_a_version_the_server_does_not_serve_fails_health(
    base: str, spec: DatasetSpec, sample: pd.DataFrame, expected: np.ndarray
) -> None:
    with pytest.raises(postdeploy.DeployCheckError, match=r"^health: .*/versions/2 did not report v2 AVAILABLE"):
        postdeploy.check(base, spec, "2", sample, expected, wait_s=0)
    with pytest.raises(postdeploy.DeployCheckError, match=r"last answer: HTTP 0 .*(refused|Connection)"):
        postdeploy.check("http://127.0.0.1:9", spec, "1", sample, expected, wait_s=0)


def test_the_check_goes_through_the_server_clients_use_when_one_is_set(settings: Settings, spec: DatasetSpec) -> None:
    elsewhere = replace(settings, serving_url="http://serving.example:8501")
    with postdeploy.endpoint(elsewhere, spec, "1", {}) as url:
        assert url == "http://serving.example:8501"


def test_without_one_an_embedded_server_over_the_store_serves_the_check(
    settings: Settings, spec: DatasetSpec, store: Path
) -> None:
    local = replace(settings, model_store=str(store))
    with postdeploy.endpoint(local, spec, "1", {modelstore.STABLE: 1}) as url:
        assert url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(f"{url}/v1/models/bike_demand/versions/1", timeout=30) as resp:
            assert resp.status == 200
    with pytest.raises(urllib.error.URLError):  # stopped after the check
        urllib.request.urlopen(f"{url}/healthz", timeout=5)


def test_a_label_move_waits_only_for_a_server_clients_use(settings: Settings, spec: DatasetSpec, base: str) -> None:
    assert postdeploy.waiter(settings, spec) is None  # the embedded server loads versions on demand
    wait = postdeploy.waiter(replace(settings, serving_url=base), spec, wait_s=0)
    assert wait is not None
    wait(1)  # served: returns at once
    with pytest.raises(postdeploy.DeployCheckError, match=r"health: .*/versions/3 did not report v3 AVAILABLE"):
        wait(3)


def test_rows_are_sent_as_a_client_would_send_them(bike_spec: DatasetSpec, sample: pd.DataFrame) -> None:
    rows = sample.iloc[:2].copy()
    rows.loc[rows.index[0], "weekday"] = None
    sent = postdeploy._rows(rows, bike_spec)
    assert list(sent[0]) == list(bike_spec.feature_names)  # features only, in the spec's order
    assert sent[0]["weekday"] is None and isinstance(sent[1]["weekday"], str)
    assert type(sent[0]["temp"]) is float and type(sent[0]["hum"]) in (int, float)  # JSON's types, not numpy's


def _samples(count: float, label: str = "stable") -> list[prometheus.Sample]:
    labels = {"model_name": "bike_demand", "API": "predict", "version": "1", "label": label, "status": "OK"}
    return [prometheus.Sample(prometheus.COUNT, labels, count)]


def test_the_servers_count_must_cover_the_checks_requests() -> None:
    assert postdeploy._check_metrics(_samples(10), _samples(16), "bike_demand", "1", None, 6) == (6, None)
    assert postdeploy._check_metrics(_samples(0), _samples(9), "bike_demand", "1", "stable", 6)[0] == 9
    assert postdeploy._check_metrics(None, _samples(9), "bike_demand", "1", None, 6) == (-1, None)  # no metrics
    with pytest.raises(postdeploy.DeployCheckError, match=r"telemetry: the server's metrics counted 0 .* \(canary\)"):
        postdeploy._check_metrics(_samples(4, "canary"), _samples(4, "canary"), "bike_demand", "1", "canary", 6)
