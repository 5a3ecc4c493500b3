"""The model store: TensorFlow Serving's folder layout, and ``models.config`` (which versions are
served, which ``stable`` and ``canary`` name), each change one atomic rewrite. The sequence a
deploy, its check and a rollback write, as TensorFlow Serving applies it, is in
tests/unit/serving/test_tfserving_config.py; an S3 store's partial uploads in
tests/unit/test_leftovers.py."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from retrainer.serving import modelstore
from retrainer.serving.modelstore import CANARY, CONFIG_NAME, STABLE, ModelEntry

MODEL = "bike_demand"


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """A store holding complete versions 1 to 3 of MODEL, and version 4 without its SavedModel."""
    for v in (1, 2, 3):
        (tmp_path / MODEL / str(v)).mkdir(parents=True)
        (tmp_path / MODEL / str(v) / modelstore.SAVED_MODEL).write_bytes(b"")
    (tmp_path / MODEL / "4" / "variables").mkdir(parents=True)
    return tmp_path


def test_label_needs_a_complete_version(store: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no complete version"):
        modelstore.set_label(store, "bike_demand", modelstore.STABLE, 7)


def test_where_versions_and_their_tflite_models_live(store: Path) -> None:
    assert modelstore.version_location(str(store), MODEL, "003") == str(store / MODEL / "3")
    assert modelstore.tflite_location(str(store), MODEL, 3) == str(store / MODEL / "tflite" / "3.tflite")
    assert modelstore.version_location("s3://b/models", MODEL, 2) == "s3://b/models/bike_demand/2"
    assert modelstore.has_version(str(store), MODEL, 1)
    assert not modelstore.has_version(str(store), MODEL, 4)  # a folder without its SavedModel
    assert not modelstore.has_version(str(store), MODEL, 5)


def test_a_store_without_a_config_serves_nothing(store: Path) -> None:
    assert modelstore.read_config(store) == {}
    assert modelstore.unload_unlabelled(store, MODEL) == []
    assert modelstore.clear_label(store, MODEL, CANARY) == {}
    assert not (store / CONFIG_NAME).exists()  # nothing to change: nothing written


def test_loading_a_version_serves_it_beside_the_others_and_keeps_the_labels(store: Path) -> None:
    modelstore.set_label(store, MODEL, STABLE, 1)
    assert modelstore.load_version(store, MODEL, 3) == [3, 1]  # newest first
    entry = modelstore.read_config(store)[MODEL]
    assert entry.labels == {STABLE: 1} and entry.versions == {1, 3}
    assert entry.base_path == str(store / MODEL)
    with pytest.raises(FileNotFoundError, match=r"bike_demand/4: no complete version to serve"):
        modelstore.load_version(store, MODEL, 4)
    assert modelstore.read_config(store)[MODEL].versions == {1, 3}


def test_a_label_moves_in_two_writes_only_onto_a_version_not_served_yet(store: Path) -> None:
    waited: list[int] = []
    modelstore.set_label(store, MODEL, STABLE, 1, wait=waited.append)
    assert waited == [1]  # served first, then labelled
    modelstore.load_version(store, MODEL, 2)
    assert modelstore.set_label(store, MODEL, CANARY, 2, wait=waited.append) == {STABLE: 1, CANARY: 2}
    assert waited == [1]  # served already: one write, no wait
    written = (store / CONFIG_NAME).stat().st_mtime_ns
    assert modelstore.set_label(store, MODEL, CANARY, 2, wait=waited.append) == {STABLE: 1, CANARY: 2}
    assert (store / CONFIG_NAME).stat().st_mtime_ns == written  # nothing changed: the file is not rewritten


def test_a_cleared_label_leaves_its_version_served_until_unloaded(store: Path) -> None:
    modelstore.set_label(store, MODEL, STABLE, 1)
    modelstore.set_label(store, MODEL, CANARY, 2)
    assert modelstore.clear_label(store, MODEL, CANARY) == {STABLE: 1}
    assert modelstore.read_config(store)[MODEL].served() == [2, 1]
    assert modelstore.clear_label(store, MODEL, CANARY) == {STABLE: 1}  # gone already: no change
    assert modelstore.unload_unlabelled(store, MODEL) == [1]


def test_models_of_one_store_are_changed_apart(store: Path) -> None:
    (store / "other" / "5").mkdir(parents=True)
    (store / "other" / "5" / modelstore.SAVED_MODEL).write_bytes(b"")
    modelstore.set_label(store, MODEL, STABLE, 2)
    modelstore.set_label(store, "other", STABLE, 5)
    modelstore.clear_label(store, MODEL, STABLE)
    config = modelstore.read_config(store)
    assert config["other"].labels == {STABLE: 5} and config[MODEL].labels == {}
    modelstore.unload_unlabelled(store, MODEL)
    assert list(modelstore.read_config(store)) == ["other"]  # a model with nothing to serve is left out


def test_the_config_text_reads_back_what_was_rendered() -> None:
    models = {
        "b": ModelEntry("b", "/store/b", {STABLE: 3, CANARY: 4}, {2, 3, 4}),
        "a": ModelEntry("a", "s3://bucket/store/a", {}, {7}),
        "empty": ModelEntry("empty", "/store/empty"),
    }
    text = modelstore.render_config(models)
    assert text.index('name: "a"') < text.index('name: "b"') and '"empty"' not in text
    assert "model_version_policy { specific { versions: 4 versions: 3 versions: 2 } }" in text
    back = modelstore.parse_config(text)
    assert back == {"a": models["a"], "b": models["b"]}
    assert modelstore.render_config({}) == "model_config_list {\n}\n"


def test_a_config_written_by_hand_is_read_as_tf_serving_reads_it() -> None:
    text = """
model_config_list {
  config {
    name: 'nameless'
  }
  config {
    name: "bikes"
    base_path: "/models/bikes"
    model_platform: "tensorflow"
    model_version_policy { specific { versions: 5 } }
    version_labels { key: "stable"
                     value: 6 }
  }
}
"""
    (entry,) = modelstore.parse_config(text).values()
    assert entry.name == "bikes" and entry.labels == {STABLE: 6}
    assert entry.versions == {5, 6} and entry.served() == [6, 5]  # a labelled version is served


def test_writers_at_once_lose_no_change(store: Path) -> None:
    """Each change is a read-modify-write of the one file: under the store's lock, none is lost."""
    for v in range(10, 18):
        (store / MODEL / str(v)).mkdir()
        (store / MODEL / str(v) / modelstore.SAVED_MODEL).write_bytes(b"")
    threads = [threading.Thread(target=modelstore.load_version, args=(store, MODEL, v)) for v in range(10, 18)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert modelstore.read_config(store)[MODEL].served() == list(range(17, 9, -1))


def test_a_local_store_has_no_partial_uploads_to_sweep(store: Path) -> None:
    assert modelstore.sweep_partial(store, MODEL, max_age_s=0) == []
    assert (store / MODEL / "4").is_dir()  # not ours to judge: a local version appears by a rename
