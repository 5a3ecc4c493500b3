"""The one YAML loader of the spec files: YAML 1.1 safe loading, through libyaml when PyYAML
has it (the same documents, several times faster: the DAG files read the specs as they are
parsed, through ``retrainer.spec.cadence``), and a key given twice in one mapping refused (YAML
would keep the second silently)."""

from __future__ import annotations

from typing import Any

import yaml

#: what a document that is not YAML raises
YAMLError = yaml.YAMLError


class DuplicateKeyError(yaml.YAMLError):
    """A mapping of the document gives one key twice."""

    def __init__(self, key: str, first_line: int, line: int) -> None:
        self.key, self.first_line, self.line = key, first_line, line
        super().__init__(f"'{key}' is given twice (lines {first_line} and {line}): the second would replace the first")


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            line = key_node.start_mark.line + 1
            if isinstance(key, str | int | float | bool) and key in seen:
                raise DuplicateKeyError(str(key), seen[key], line)
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


def load_yaml(text: str) -> Any:
    """A spec's YAML as data (safe loading); a key given twice raises ``DuplicateKeyError``."""
    return yaml.load(text, Loader=_Loader)  # noqa: S506 (a safe loader)
