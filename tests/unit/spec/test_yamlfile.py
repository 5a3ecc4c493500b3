"""The one YAML loader of the spec files: safe loading of YAML 1.1, through libyaml when PyYAML
has it, reading the same documents as PyYAML's pure-Python safe loader."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from retrainer.spec import yamlfile
from retrainer.spec.yamlfile import YAMLError, load_yaml
from tests.helpers import REPO


def test_the_spec_files_read_as_the_pure_python_safe_loader_reads_them() -> None:
    for path in sorted((REPO / "include" / "specs").glob("*.yaml")):
        text = path.read_text()
        assert load_yaml(text) == yaml.load(text, Loader=yaml.SafeLoader), path


def test_libyaml_is_used_when_pyyaml_has_it() -> None:
    if not yaml.__with_libyaml__:
        pytest.skip("this PyYAML is built without libyaml")
    assert issubclass(yamlfile._Loader, yaml.CSafeLoader)


def test_yaml_11_booleans_are_booleans() -> None:
    """Why the spec's readers refuse a boolean where a category is named: unquoted, these are not text."""
    assert load_yaml("a: [No, yes, On, off, true]\nb: 'No'\n") == {"a": [False, True, True, False, True], "b": "No"}


def test_no_python_object_is_ever_built() -> None:
    with pytest.raises(YAMLError):
        load_yaml("!!python/object/apply:os.getcwd []\n")
    assert YAMLError is yaml.YAMLError


def test_a_document_that_is_not_yaml_raises_yamls_error() -> None:
    with pytest.raises(YAMLError):
        load_yaml("name: [unclosed")
    assert load_yaml("") is None


def test_a_key_given_twice_is_refused_naming_it_and_its_lines() -> None:
    from retrainer.spec.yamlfile import DuplicateKeyError, load_yaml

    text = "name: a\ngate:\n  metric: rmse\n  metric: mae\ntraining: {epochs: 3}\n"
    with pytest.raises(DuplicateKeyError) as raised:
        load_yaml(text)
    assert (raised.value.key, raised.value.first_line, raised.value.line) == ("metric", 3, 4)
    assert load_yaml("a: 1\nb: {a: 2}\n") == {"a": 1, "b": {"a": 2}}  # one key per mapping, not per document


def test_a_spec_with_a_key_twice_names_it(tmp_path: Path) -> None:
    from retrainer.spec.dataset import DatasetSpec
    from retrainer.spec.fields import SpecError

    text = (REPO / "include" / "specs" / "bike_sharing.yaml").read_text()
    path = tmp_path / "twice.yaml"
    path.write_text(text + "\ngate:\n  metric: mae\n")
    with pytest.raises(SpecError, match=r"field 'gate': given twice \(lines \d+ and \d+\): give it once") as raised:
        DatasetSpec.load(path)
    assert str(path) in str(raised.value)
