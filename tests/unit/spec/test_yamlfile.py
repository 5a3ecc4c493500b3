"""The one YAML loader of the spec files: safe loading of YAML 1.1, through libyaml when PyYAML
has it, reading the same documents as PyYAML's pure-Python safe loader."""

from __future__ import annotations

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
    assert yamlfile._LOADER is yaml.CSafeLoader


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
