from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import boto3
import pytest

from retrainer import storage


def _model_dir(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    (src / "variables").mkdir(parents=True)
    (src / "variables" / "variables.index").write_bytes(b"x" * 100)
    (src / "saved_model.pb").write_bytes(b"pb")
    return src


def test_publish_local_is_all_or_nothing(tmp_path: Path) -> None:
    src = _model_dir(tmp_path)
    dest = tmp_path / "store" / "m" / "1"
    assert storage.publish_dir(src, str(dest), "saved_model.pb")
    assert (dest / "saved_model.pb").read_bytes() == b"pb"
    assert not storage.publish_dir(src, str(dest), "saved_model.pb")  # already there: not written again
    assert storage.list_versions(str(tmp_path / "store"), "m") == [1]
    assert not any((tmp_path / "store" / ".staging").iterdir())


def test_publish_killed_midway_leaves_no_visible_version(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = _model_dir(tmp_path)
    dest = tmp_path / "store" / "m" / "2"

    def dies_after_first_file(s, d, *a, **k):  # type: ignore[no-untyped-def]
        Path(d).mkdir(parents=True)
        shutil.copy2(Path(s) / "saved_model.pb", Path(d) / "saved_model.pb")
        raise KeyboardInterrupt("killed")

    monkeypatch.setattr(shutil, "copytree", dies_after_first_file)
    with pytest.raises(KeyboardInterrupt):
        storage.publish_dir(src, str(dest), "saved_model.pb")
    assert not dest.exists()
    assert storage.list_versions(str(tmp_path / "store"), "m") == []


def test_refuses_incomplete_source(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"saved_model\.pb"):
        storage.publish_dir(tmp_path / "empty", str(tmp_path / "d"), "saved_model.pb")


@pytest.mark.s3
def test_publish_s3_writes_marker_last(tmp_path: Path, s3_env: str) -> None:
    src = _model_dir(tmp_path)
    uploaded: list[str] = []
    client = boto3.client("s3")
    real = client.upload_file

    def spy(path: str, bucket: str, key: str) -> None:
        uploaded.append(key)
        real(path, bucket, key)

    client.upload_file = spy  # type: ignore[method-assign]
    storage_client = storage.s3_client
    try:
        storage.s3_client = lambda endpoint_url=None: client  # type: ignore[assignment]
        uri = f"s3://{s3_env}/models/m/3"
        assert storage.publish_dir(src, uri, "saved_model.pb")
        assert not storage.publish_dir(src, uri, "saved_model.pb")
    finally:
        storage.s3_client = storage_client  # type: ignore[assignment]
    assert uploaded[-1] == "models/m/3/saved_model.pb" and len(uploaded) == 2
    assert storage.list_versions(f"s3://{s3_env}/models", "m") == [3]
    out = storage.download_dir(f"s3://{s3_env}/models/m/3", tmp_path / "back")
    assert (out / "variables" / "variables.index").stat().st_size == 100


def test_an_interrupted_copy_is_set_aside_not_lost(tmp_path: Path) -> None:
    dest = tmp_path / "q" / "abc"
    dest.mkdir(parents=True)
    (dest / "part.csv").write_text("half")
    aside = storage.set_aside_incomplete(str(dest), "validation.json")
    assert aside and Path(aside).is_dir() and (Path(aside) / "part.csv").read_text() == "half"
    src = tmp_path / "src"
    src.mkdir()
    (src / "validation.json").write_text("{}")
    assert storage.publish_dir(src, str(dest), "validation.json")
    assert storage.set_aside_incomplete(str(dest), "validation.json") is None  # complete: left alone


def test_an_s3_write_holds_only_while_the_object_is_the_one_read(s3_env: str) -> None:
    """Compare-and-set on S3: a write conditioned on the ETag read (or on there being no object)
    is refused, writing nothing, once somebody else wrote in between."""
    uri = f"s3://{s3_env}/store/models.config"
    assert storage.write_s3_if(uri, "first", None)
    assert not storage.write_s3_if(uri, "also first", None)  # there is one now
    text, etag = storage.read_s3_versioned(uri)
    assert text == "first" and etag
    assert storage.write_s3_if(uri, "second", etag)
    assert not storage.write_s3_if(uri, "lost update", etag)  # written since that read
    assert storage.read_s3_versioned(uri)[0] == "second"
    assert storage.read_s3_versioned(f"s3://{s3_env}/store/none") == (None, None)


def test_a_store_that_ignores_conditional_writes_is_refused(s3_env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Some S3-compatible servers drop If-Match: such a store is refused at the first conditional
    write, naming it, rather than trusted to keep two writers' changes."""
    real = storage.s3_client

    class Ignoring:
        def __init__(self, client: Any) -> None:
            self.client = client

        def __getattr__(self, name: str) -> Any:
            return getattr(self.client, name)

        def put_object(self, **kwargs: Any) -> Any:
            kwargs.pop("IfMatch", None)
            kwargs.pop("IfNoneMatch", None)
            return self.client.put_object(**kwargs)

    monkeypatch.setattr(storage, "s3_client", lambda endpoint_url=None: Ignoring(real(endpoint_url)))
    uri = f"s3://{s3_env}/other/models.config"
    with pytest.raises(storage.ConditionalWritesIgnoredError, match=f"s3://{s3_env} .* ignores conditional writes"):
        storage.write_s3_if(uri, "x", None)
    assert storage.read_text(uri) is None  # nothing written
