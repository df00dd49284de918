"""Load YAML into frozen dataclasses, reporting every problem with ``file:line:col`` and the key path.

The schema *is* the dataclasses: field types, defaults and the :func:`flightsw.config.spec.spec` metadata (ranges,
choices, units).  Supported field types: ``bool``, ``int``, ``float``, ``str``, nested dataclasses, ``X | None``,
``list[X]``, ``tuple[X, ...]``, fixed tuples such as ``tuple[float, float]``, and ``dict[str, X]``.

Unknown keys, wrong types, out-of-range values and missing required keys are all errors; the loader collects them
all before raising :class:`ConfigError`, so ``flightsw check-config`` can print every one.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")


@dataclass(frozen=True)
class ConfigIssue:
    file: str
    line: int
    column: int
    key_path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}"
        return f"{where}: {self.key_path or '<document>'}: {self.message}"


class ConfigError(Exception):
    """One or more problems in configuration files."""

    def __init__(self, issues: list[ConfigIssue]) -> None:
        self.issues = issues
        super().__init__("\n".join(str(issue) for issue in issues))


class _Issues:
    def __init__(self, file: str) -> None:
        self.file = file
        self.items: list[ConfigIssue] = []

    def add(self, node: yaml.Node | None, key_path: str, message: str) -> None:
        line = node.start_mark.line + 1 if node is not None else 1
        column = node.start_mark.column + 1 if node is not None else 1
        self.items.append(ConfigIssue(self.file, line, column, key_path, message))


_INVALID = object()


def compose_file(path: Path) -> yaml.Node | None:
    """Parse ``path`` into a YAML node tree (keeps positions).  Raises ConfigError for unreadable or bad YAML."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError([ConfigIssue(str(path), 1, 1, "", f"cannot read file: {error.strerror}")]) from None
    try:
        return yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark else 1
        column = mark.column + 1 if mark else 1
        raise ConfigError([ConfigIssue(str(path), line, column, "", f"invalid YAML: {error.problem}")]) from None


def load_file(path: Path | str, cls: type[T]) -> T:
    """Load a YAML file whose top level is the dataclass ``cls``."""
    path = Path(path)
    node = compose_file(path)
    return load_node(node, cls, file=str(path))


def load_node(node: yaml.Node | None, cls: type[T], *, file: str, key_path: str = "") -> T:
    issues = _Issues(file)
    if node is None:
        node = yaml.MappingNode("tag:yaml.org,2002:map", [])
    value = _convert(node, cls, key_path, {}, issues)
    if issues.items:
        raise ConfigError(issues.items)
    return value


def mapping_items(node: yaml.Node) -> list[tuple[str, yaml.Node, yaml.Node]]:
    """(key, key node, value node) for a mapping node."""
    return [(key_node.value, key_node, value_node) for key_node, value_node in node.value]


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _join(key_path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{key_path}[{key}]"
    return f"{key_path}.{key}" if key_path else key


def _describe(tp: Any) -> str:
    if isinstance(tp, type):
        if dataclasses.is_dataclass(tp):
            return "a mapping"
        return {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(tp, tp.__name__)
    return str(tp).replace("typing.", "")


def _convert(node: yaml.Node, tp: Any, key_path: str, meta: dict, issues: _Issues) -> Any:
    origin = typing.get_origin(tp)
    if origin in (types.UnionType, typing.Union):
        options = [arg for arg in typing.get_args(tp) if arg is not type(None)]
        if isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null":
            return None
        return _convert(node, options[0], key_path, meta, issues)
    if dataclasses.is_dataclass(tp):
        return _convert_dataclass(node, tp, key_path, issues)
    if origin in (list, tuple):
        return _convert_sequence(node, tp, origin, key_path, meta, issues)
    if origin is dict:
        return _convert_dict(node, tp, key_path, meta, issues)
    return _convert_scalar(node, tp, key_path, meta, issues)


def _convert_dataclass(node: yaml.Node, cls: type, key_path: str, issues: _Issues) -> Any:
    if not isinstance(node, yaml.MappingNode):
        issues.add(node, key_path, "expected a mapping of keys to values")
        return _INVALID
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    hints = _hints(cls)
    values: dict[str, Any] = {}
    for key, key_node, value_node in mapping_items(node):
        path = _join(key_path, key)
        if key not in fields:
            known = ", ".join(sorted(fields))
            issues.add(key_node, path, f"unknown key (expected one of: {known})")
            continue
        if key in values:
            issues.add(key_node, path, "key given twice")
            continue
        values[key] = _convert(value_node, hints[key], path, dict(fields[key].metadata), issues)
    for name, f in fields.items():
        if name not in values and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            issues.add(node, _join(key_path, name), "required key is missing")
            values[name] = _INVALID
    if any(value is _INVALID for value in values.values()):
        return _INVALID
    try:
        return cls(**values)
    except (ValueError, TypeError) as error:
        issues.add(node, key_path, str(error))
        return _INVALID


def _convert_sequence(node: yaml.Node, tp: Any, origin: type, key_path: str, meta: dict,
                      issues: _Issues) -> Any:
    if not isinstance(node, yaml.SequenceNode):
        issues.add(node, key_path, f"expected a list ({_describe(tp)})")
        return _INVALID
    args = typing.get_args(tp)
    fixed = origin is tuple and not (len(args) == 2 and args[1] is Ellipsis)
    if fixed and len(node.value) != len(args):
        issues.add(node, key_path, f"expected a list of exactly {len(args)} items")
        return _INVALID
    length_meta = {"min": meta.get("min"), "max": meta.get("max")}
    if not _check_bounds(node, len(node.value), length_meta, key_path, issues, what="number of items"):
        return _INVALID
    item_meta = {} if fixed else {k: v for k, v in meta.items() if k not in ("min", "max")}
    items = []
    for index, item_node in enumerate(node.value):
        item_type = args[index] if fixed else args[0]
        items.append(_convert(item_node, item_type, _join(key_path, index), item_meta, issues))
    if any(item is _INVALID for item in items):
        return _INVALID
    return tuple(items) if origin is tuple else items


def _convert_dict(node: yaml.Node, tp: Any, key_path: str, meta: dict, issues: _Issues) -> Any:
    if not isinstance(node, yaml.MappingNode):
        issues.add(node, key_path, "expected a mapping")
        return _INVALID
    _, value_type = typing.get_args(tp)
    result = {}
    for key, _key_node, value_node in mapping_items(node):
        result[key] = _convert(value_node, value_type, _join(key_path, key), meta, issues)
    if any(value is _INVALID for value in result.values()):
        return _INVALID
    return result


def _convert_scalar(node: yaml.Node, tp: Any, key_path: str, meta: dict, issues: _Issues) -> Any:
    if not isinstance(node, yaml.ScalarNode):
        issues.add(node, key_path, f"expected {_describe(tp)}, got a {'list' if isinstance(node, yaml.SequenceNode) else 'mapping'}")
        return _INVALID
    loader = yaml.SafeLoader("")
    try:
        raw = loader.construct_object(node, deep=True)
    except yaml.YAMLError as error:
        issues.add(node, key_path, f"cannot read value: {error}")
        return _INVALID
    finally:
        loader.dispose()
    value = _coerce(raw, tp)
    if value is _INVALID:
        issues.add(node, key_path, f"expected {_describe(tp)}, got {raw!r}")
        return _INVALID
    choices = meta.get("choices")
    if choices is not None and value not in choices:
        issues.add(node, key_path, f"expected one of {', '.join(map(str, choices))}; got {value!r}")
        return _INVALID
    size = len(value) if isinstance(value, str) else value
    what = "length" if isinstance(value, str) else "value"
    if not isinstance(value, bool) and not _check_bounds(node, size, meta, key_path, issues, what=what):
        return _INVALID
    return value


def _coerce(raw: Any, tp: Any) -> Any:
    if tp is Any:
        return raw
    if tp is bool:
        return raw if isinstance(raw, bool) else _INVALID
    if tp is int:
        return raw if isinstance(raw, int) and not isinstance(raw, bool) else _INVALID
    if tp is float:
        if isinstance(raw, (int, float)) and not isinstance(raw, bool):
            value = float(raw)
            return value if math.isfinite(value) else _INVALID
        return _INVALID
    if tp is str:
        return raw if isinstance(raw, str) else _INVALID
    return _INVALID


def _check_bounds(node: yaml.Node, value: float, meta: dict, key_path: str, issues: _Issues, *,
                  what: str) -> bool:
    low, high = meta.get("min"), meta.get("max")
    unit = f" {meta['unit']}" if meta.get("unit") else ""
    if low is not None and value < low or high is not None and value > high:
        bounds = f"between {low} and {high}" if low is not None and high is not None else (
            f">= {low}" if low is not None else f"<= {high}")
        issues.add(node, key_path, f"{what} {value} out of range: expected {bounds}{unit}")
        return False
    return True


def replace_path(config: T, key_path: str, value: Any) -> T:
    """A copy of the frozen dataclass ``config`` with the field at dotted ``key_path`` replaced."""
    head, _, rest = key_path.partition(".")
    if not rest:
        return dataclasses.replace(config, **{head: value})
    return dataclasses.replace(config, **{head: replace_path(getattr(config, head), rest, value)})
