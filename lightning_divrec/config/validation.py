"""Check a configuration tree against its schema and report every problem at once."""

from __future__ import annotations

import dataclasses
import difflib
import typing
from typing import Any, Literal, Union


class ConfigError(ValueError):
    """Invalid configuration; ``problems`` lists one message per wrong key."""

    def __init__(self, problems: list[str], source: str = "configuration"):
        self.problems = problems
        lines = "\n".join(f"  - {problem}" for problem in problems)
        super().__init__(f"{len(problems)} problem(s) in the {source}:\n{lines}")


def find_problems(node: Any, schema: type, path: str = "") -> list[str]:
    """Return one message per unknown key, wrong type or invalid value under ``node``.

    ``node`` is a plain container (``OmegaConf.to_container``) and ``schema`` a
    dataclass from ``lightning_divrec.config.schema``. Messages name the full
    dotted key so that a user can fix it on the command line.
    """
    if not isinstance(node, dict):
        return [f"'{path or '<root>'}' must be a mapping of keys, got {_describe(node)}"]
    problems = []
    hints = typing.get_type_hints(schema)
    known = [f.name for f in dataclasses.fields(schema)]
    for key, value in node.items():
        key_path = f"{path}.{key}" if path else str(key)
        if key not in hints:
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = f"; did you mean '{_join(path, close[0])}'?" if close else f"; valid keys: {', '.join(known)}"
            problems.append(f"unknown key '{key_path}'{hint}")
            continue
        problems.extend(_check_value(value, hints[key], key_path))
    return problems


def _check_value(value: Any, expected: Any, path: str) -> list[str]:
    origin = typing.get_origin(expected)
    args = typing.get_args(expected)
    if dataclasses.is_dataclass(expected):
        # A group whose keys depend on one of its values (``model.name``)
        # names the dataclass to check against through ``schema_for``.
        if hasattr(expected, "schema_for") and isinstance(value, dict):
            expected, problem = expected.schema_for(value, path)
            if problem is not None:
                return [problem]
        return find_problems(value, expected, path)
    if origin is Union:
        if value is None and type(None) in args:
            return []
        arms = [arm for arm in args if arm is not type(None)]
        if len(arms) == 1:
            return _check_value(value, arms[0], path)
        if any(not _check_value(value, arm, path) for arm in arms):
            return []
        return [f"'{path}' must be {_type_name(expected)}, got {_describe(value)}"]
    if value is None:
        return [f"'{path}' must not be null; expected {_type_name(expected)}"]
    if origin is Literal:
        if value in args:
            return []
        choices = ", ".join(repr(arg) for arg in args)
        return [f"'{path}' has invalid value {value!r}; choose one of {choices}"]
    if origin is list:
        if not isinstance(value, list):
            return [f"'{path}' must be a list, got {_describe(value)}"]
        problems = []
        for index, item in enumerate(value):
            problems.extend(_check_value(item, args[0], f"{path}[{index}]"))
        return problems
    if _matches_scalar(value, expected):
        return []
    return [f"'{path}' must be {_type_name(expected)}, got {_describe(value)}"]


def _matches_scalar(value: Any, expected: Any) -> bool:
    if expected is bool:
        return isinstance(value, bool)
    if expected is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if expected is float:
        # An integer literal such as ``weight_decay=0`` is a valid float.
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if expected is str:
        return isinstance(value, str)
    raise TypeError(f"schema type {expected!r} is not supported by the validator")


def _type_name(expected: Any) -> str:
    origin = typing.get_origin(expected)
    if origin is Union:
        return " or ".join(_type_name(arm) for arm in typing.get_args(expected))
    if origin is list:
        return f"a list of {_type_name(typing.get_args(expected)[0])}"
    if expected is type(None):
        return "null"
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}.get(
        expected, getattr(expected, "__name__", str(expected))
    )


def _describe(value: Any) -> str:
    return f"{value!r} ({type(value).__name__})"


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key
