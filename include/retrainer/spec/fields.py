"""Typed values out of a spec's raw mapping, or a ``SpecError`` that names the file and the field."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

from retrainer.outcomes import Refused

#: what YAML 1.1 reads an unquoted yes/no/on/off/true/false as
_YAML_BOOLEAN = (
    "is read as the boolean {value} (YAML takes unquoted yes, no, on, off, true and false as booleans); "
    'quote it, e.g. "No"'
)


class SpecError(Refused, ValueError):
    """A dataset spec is missing, malformed or inconsistent. Names the file and the field. No
    retry mends a spec: the task that meets it fails at once."""

    def __init__(self, path: Path | str, field_name: str, problem: str) -> None:
        self.path = str(path)
        self.field = field_name
        self.problem = problem
        super().__init__(f"{path}: field '{field_name}': {problem}")


class Fields:
    """The readers every section uses: each turns a raw value into a typed one, or raises a
    ``SpecError`` naming the field (``training.epochs``, ``features.temp.min``)."""

    def __init__(self, raw: dict[str, Any], path: Path | str) -> None:
        self.raw = raw
        self.path = path

    def error(self, name: str, problem: str) -> SpecError:
        return SpecError(self.path, name, problem)

    def string(self, name: str, value: Any = None) -> str:
        """``value`` if given (nested fields), else the top-level field ``name``."""
        if value is None and "." not in name:
            value = self.raw.get(name)
        if not isinstance(value, str) or not value:
            raise self.error(name, f"must be a non-empty string, got {value!r}")
        return value

    def mapping(self, name: str, required: bool = True) -> dict[str, Any]:
        value = self.raw.get(name)
        if value is None and not required:
            return {}
        if not isinstance(value, dict):
            raise self.error(name, f"must be a mapping, got {type(value).__name__}")
        return value

    def choice(self, name: str, value: Any, options: tuple[str, ...]) -> str:
        if value not in options:
            raise self.error(name, f"must be one of {list(options)}, got {value!r}")
        return str(value)

    def optional_number(self, name: str, value: Any) -> float | None:
        return None if value is None else self.number(name, value)

    def number(self, name: str, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.error(name, f"must be a number, got {value!r}")
        return float(value)

    def integer(self, name: str, value: Any, least: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise self.error(name, f"must be an integer of at least {least}, got {value!r}")
        return value

    def unit(self, name: str, value: Any, upper: float | None = 1.0) -> float:
        """A non-negative number, at most ``upper`` (a share, by default)."""
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise self.error(name, f"must be a non-negative number, got {value!r}")
        if upper is not None and value > upper:
            raise self.error(name, f"must be at most {upper}, got {value!r}")
        return float(value)

    def flag(self, name: str, value: Any) -> bool:
        if not isinstance(value, bool):
            raise self.error(name, f"must be true or false, got {value!r}")
        return value

    def text_value(self, name: str, value: Any) -> str:
        """A value that names a class or a category: YAML's booleans are refused, not turned into 'True'."""
        if isinstance(value, bool):
            raise self.error(name, _YAML_BOOLEAN.format(value=str(value).lower()))
        if value is None or isinstance(value, (dict, list)):
            raise self.error(name, f"must be a value, got {value!r}")
        return str(value)

    def column_names(self, name: str, value: Any) -> list[str]:
        if not isinstance(value, list) or not all(isinstance(c, str) and c for c in value):
            raise self.error(name, f"must be a list of column names, got {value!r}")
        return value

    def known(self, section: str, raw: dict[str, Any], known: Any) -> None:
        """Refuse a key the section does not have (a typo would otherwise fall back to a default)."""
        for key in raw:
            if key not in known:
                close = difflib.get_close_matches(str(key), [str(k) for k in known], n=1, cutoff=0.75)
                hint = f"did you mean '{close[0]}'? " if close else ""
                where = f"{section}.{key}" if section else str(key)
                raise self.error(where, f"unknown key; {hint}known: {', '.join(sorted(known))}")
