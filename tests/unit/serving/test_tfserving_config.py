"""The model store's config, step by step, as TensorFlow Serving applies it (tests/tfserving.py):
a deploy with a canary, the check passing (stable moves), a failed canary, and a rollback.
Every write is also checked by the autouse fixture in tests/conftest.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from retrainer.serving import modelstore
from retrainer.serving.modelstore import CANARY, STABLE
from tests.tfserving import ConfigRejected, TFServing, parse

MODEL = "bike_demand"


@pytest.fixture
def store(tmp_path: Path) -> Path:
    for v in (1, 2, 3):
        (tmp_path / MODEL / str(v)).mkdir(parents=True)
        (tmp_path / MODEL / str(v) / "saved_model.pb").write_bytes(b"")
    return tmp_path


class Server:
    """TF Serving polling the store's config; ``wait`` is what the pipeline calls between the
    two writes of a label move (here: the server picks up the config on disk)."""

    def __init__(self, store: Path) -> None:
        self.store, self.tf, self.waited = store, TFServing(), []

    def poll(self) -> None:
        text = (self.store / modelstore.CONFIG_NAME).read_text()
        if not self.tf.applied or self.tf.applied[-1] != text:
            self.tf.apply(text)

    def wait(self, version: int) -> None:
        self.poll()
        assert version in self.tf.models[MODEL].loaded, f"v{version} not loaded"
        self.waited.append(version)


def test_deploy_canary_promotion_and_rollback_as_tf_serving_sees_them(store: Path) -> None:
    server = Server(store)
    # first deploy: v1 loaded, then labelled canary, then stable once its check passed
    modelstore.set_label(store, MODEL, CANARY, 1, wait=server.wait)
    server.poll()
    assert server.waited == [1] and server.tf.serves(MODEL, CANARY) == 1 and server.tf.serves(MODEL) is None
    modelstore.set_label(store, MODEL, STABLE, 1, wait=server.wait)
    modelstore.clear_label(store, MODEL, CANARY)
    modelstore.unload_unlabelled(store, MODEL)
    server.poll()
    assert server.tf.models[MODEL].labels == {STABLE: 1} and server.tf.models[MODEL].loaded == {1}

    # the next champion: served beside v1 first; stable keeps serving v1 while v2 is the canary
    modelstore.set_label(store, MODEL, CANARY, 2, wait=server.wait)
    server.poll()
    assert server.waited == [1, 2]
    assert server.tf.models[MODEL].labels == {STABLE: 1, CANARY: 2} and server.tf.models[MODEL].loaded == {1, 2}
    modelstore.set_label(store, MODEL, STABLE, 2, wait=server.wait)  # already loaded: one write, no wait
    modelstore.clear_label(store, MODEL, CANARY)
    modelstore.unload_unlabelled(store, MODEL)
    server.poll()
    assert server.waited == [1, 2] and server.tf.serves(MODEL) == 2 and server.tf.models[MODEL].loaded == {2}

    # a canary that fails its check: label dropped, version unloaded, stable untouched
    modelstore.set_label(store, MODEL, CANARY, 3, wait=server.wait)
    modelstore.clear_label(store, MODEL, CANARY)
    modelstore.unload_unlabelled(store, MODEL)
    server.poll()
    assert server.tf.serves(MODEL) == 2 and server.tf.models[MODEL].loaded == {2}

    # rollback to v1: what TF Serving serves changes (load v1, wait, move stable, unload v2)
    modelstore.set_label(store, MODEL, STABLE, 1, wait=server.wait)
    modelstore.unload_unlabelled(store, MODEL)
    server.poll()
    assert server.waited == [1, 2, 3, 1]
    assert server.tf.serves(MODEL) == 1 and server.tf.models[MODEL].loaded == {1}
    for text in server.tf.applied:  # every step parsed by TF Serving's own proto
        assert parse(text).model_config_list.config[0].model_version_policy.HasField("specific")


def test_a_label_moved_onto_a_version_not_loaded_is_refused(store: Path) -> None:
    """The rule the two writes exist for: one write that loads and labels at once is rejected."""
    modelstore.set_label(store, MODEL, STABLE, 1)
    server = TFServing.serving((store / modelstore.CONFIG_NAME).read_text())
    one_step = modelstore.render_config({MODEL: modelstore.ModelEntry(MODEL, str(store / MODEL), {STABLE: 2}, {2})})
    with pytest.raises(ConfigRejected, match="not loaded yet"):
        server.apply(one_step)
    assert server.serves(MODEL) == 1
    latest = 'model_config_list { config { name: "m" base_path: "/x" model_platform: "tensorflow" } }'
    with pytest.raises(ConfigRejected, match="no specific version policy"):
        TFServing().apply(latest)


def test_what_we_write_reads_back(store: Path) -> None:
    modelstore.set_label(store, MODEL, STABLE, 1)
    modelstore.set_label(store, MODEL, CANARY, 2)
    entry = modelstore.read_config(store)[MODEL]
    assert entry.labels == {STABLE: 1, CANARY: 2} and entry.served() == [2, 1]
    proto = parse((store / modelstore.CONFIG_NAME).read_text()).model_config_list.config[0]
    assert dict(proto.version_labels) == entry.labels
    assert sorted(proto.model_version_policy.specific.versions) == [1, 2]
    assert proto.base_path == str(store / MODEL)
    modelstore.clear_label(store, MODEL, CANARY)
    modelstore.clear_label(store, MODEL, STABLE)
    assert modelstore.unload_unlabelled(store, MODEL) == []
    assert parse((store / modelstore.CONFIG_NAME).read_text()).model_config_list.config == []
