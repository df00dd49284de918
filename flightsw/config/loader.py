"""Load YAML into frozen dataclasses, reporting every problem with ``file:line:col`` and the key path.

The schema *is* the dataclasses: field types, defaults and the :func:`flightsw.config.spec.spec` metadata (ranges,
choices, units).  Supported field types: ``bool``, ``int``, ``float``, ``str``, nested dataclasses, ``X | None``,
``list[X]``, ``tuple[X, ...]``, fixed tuples such as ``tuple[float, float]``, and ``dict[str, X]``.

Files come in through :mod:`flightsw.config.source` (UTF-8, YAML limits).  Unknown keys, keys given twice, keys
that are not plain words, wrong types, YAML tags other than the plain scalar ones, out-of-range values and
missing required keys are all errors.  A dataclass may also declare semantic checks: a ``problems()`` method
yielding ``(relative key path, message)`` for a value that is well-typed but wrong (a self-intersecting polygon,
a pin used twice); each is reported at the line and column of that key.  The loader collects every problem
before raising :class:`ConfigError`, so ``flightsw check-config`` can print every one.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import re
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from flightsw.config.issues import ConfigError, ConfigIssue, clip
from flightsw.config.source import read_yaml

__all__ = ["ConfigError", "ConfigIssue", "compose_file", "issue_at", "load_file", "load_node", "mapping_items",
           "key_text", "node_at", "position", "replace_path", "scalar_value"]

T = TypeVar("T")

_YAML_TAG = "tag:yaml.org,2002:"
_SCALAR_KINDS = {"null": "null", "bool": "true or false", "int": "integer", "float": "number", "str": "string",
                 "timestamp": "date and time"}
_CONSTRUCTOR = yaml.constructor.SafeConstructor()
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_<>-]{1,40}")
_PATH_TOKEN = re.compile(r"\[(\d+)\]|\.?([^.\[\]]+)")


class _Issues:
    def __init__(self, file: str) -> None:
        self.file = file
        self.items: list[ConfigIssue] = []

    def add(self, node: yaml.Node | None, key_path: str, message: str) -> None:
        self.items.append(ConfigIssue(self.file, *position(node), key_path, message))


_INVALID = object()


def compose_file(path: Path | str) -> yaml.Node | None:
    """Read ``path`` through the front door (:func:`flightsw.config.source.read_yaml`)."""
    return read_yaml(path)


def load_file(path: Path | str, cls: type[T]) -> T:
    """Load a YAML file whose top level is the dataclass ``cls``."""
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
    """(key, key node, value node) for each plain-scalar key of a mapping node (the loader reports other keys)."""
    return [(key_node.value, key_node, value_node) for key_node, value_node in node.value
            if isinstance(key_node, yaml.ScalarNode)]


def node_at(node: yaml.Node, key_path: str) -> yaml.Node:
    """The node at ``key_path`` (``"geofence[2]"``, ``"outputs.vent_valve.pin"``) below ``node``, or the deepest
    node on the way to it that exists."""
    for match in _PATH_TOKEN.finditer(key_path):
        index, key = match.groups()
        child = None
        if index is not None and isinstance(node, yaml.SequenceNode) and int(index) < len(node.value):
            child = node.value[int(index)]
        elif key is not None and isinstance(node, yaml.MappingNode):
            child = next((value for k, _, value in mapping_items(node) if k == key), None)
        if child is None:
            break
        node = child
    return node


def issue_at(document: yaml.Node | None, file: str, key_path: str, message: str) -> ConfigIssue:
    """A problem found after loading, placed at the line and column of ``key_path`` in ``document``."""
    node = node_at(document, key_path) if document is not None else None
    return ConfigIssue(file, *position(node), key_path, message)


def position(node: yaml.Node | None) -> tuple[int, int]:
    """1-based line and column of a node (1, 1 for none, e.g. the empty document)."""
    mark = node.start_mark if node is not None else None
    return (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)


def scalar_value(node: yaml.ScalarNode) -> tuple[Any, str]:
    """``(value, "")`` for a scalar node under a plain YAML scalar tag, else ``(_INVALID, why)``; never raises."""
    kind = _SCALAR_KINDS.get(node.tag[len(_YAML_TAG):]) if node.tag.startswith(_YAML_TAG) else None
    if kind is None:
        return _INVALID, f"the YAML tag {clip(_short_tag(node.tag))} is not allowed: write a plain value"
    try:
        return _CONSTRUCTOR.yaml_constructors[node.tag](_CONSTRUCTOR, node), ""
    except Exception:  # noqa: BLE001 - what explicit tags can hold: !!float abc, !!timestamp x, !!bool maybe
        return _INVALID, f"{clip(node.value)} is not a valid {kind}"


def is_invalid(value: Any) -> bool:
    return value is _INVALID


def _short_tag(tag: str) -> str:
    return "!!" + tag[len(_YAML_TAG):] if tag.startswith(_YAML_TAG) else tag


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def key_text(key: str) -> str:
    """A key as it appears in a key path: itself when it is a plain word, else quoted, clipped, without spaces."""
    if _PLAIN_KEY.fullmatch(key):
        return key
    return clip(key, 30).replace(" ", "\\x20")


def _join(key_path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{key_path}[{key}]"
    key = key_text(key)
    return f"{key_path}.{key}" if key_path else key


def _join_relative(key_path: str, relative: str) -> str:
    if not relative or not key_path:
        return key_path or relative
    return key_path + relative if relative.startswith("[") else f"{key_path}.{relative}"


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


def _checked_items(node: yaml.MappingNode, key_path: str, issues: _Issues) -> list[tuple[str, yaml.Node,
                                                                                          yaml.Node]]:
    """The mapping's items with plain keys, each key once; reports the others."""
    items, seen = [], set()
    for key_node, value_node in node.value:
        if not isinstance(key_node, yaml.ScalarNode):
            issues.add(key_node, key_path, "a key must be a plain word, not a list or a mapping")
            continue
        key = key_node.value
        if key in seen:
            issues.add(key_node, _join(key_path, key), "key given twice: keep one")
            continue
        seen.add(key)
        items.append((key, key_node, value_node))
    return items


def _convert_dataclass(node: yaml.Node, cls: type, key_path: str, issues: _Issues) -> Any:
    if not isinstance(node, yaml.MappingNode):
        issues.add(node, key_path, "expected a mapping of keys to values")
        return _INVALID
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    hints = _hints(cls)
    values: dict[str, Any] = {}
    for key, key_node, value_node in _checked_items(node, key_path, issues):
        path = _join(key_path, key)
        if key not in fields:
            known = ", ".join(sorted(fields))
            merge = "merge keys (<<) are not supported; " if key == "<<" else ""
            issues.add(key_node, path, f"unknown key ({merge}expected one of: {known})")
            continue
        values[key] = _convert(value_node, hints[key], path, dict(fields[key].metadata), issues)
    for name, f in fields.items():
        if name not in values and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            issues.add(node, _join(key_path, name), "required key is missing")
            values[name] = _INVALID
    if any(value is _INVALID for value in values.values()):
        return _INVALID
    try:
        value = cls(**values)
    except (ValueError, TypeError) as error:
        issues.add(node, key_path, str(error))
        return _INVALID
    check = getattr(value, "problems", None)
    found = list(check()) if check is not None else []
    for relative, message in found:
        issues.add(node_at(node, relative), _join_relative(key_path, relative), message)
    return _INVALID if found else value


def _convert_sequence(node: yaml.Node, tp: Any, origin: type, key_path: str, meta: dict,
                      issues: _Issues) -> Any:
    if not isinstance(node, yaml.SequenceNode):
        issues.add(node, key_path, f"expected a list ({_describe(tp)})")
        return _INVALID
    args = typing.get_args(tp)
    fixed = origin is tuple and not (len(args) == 2 and args[1] is Ellipsis)
    if fixed and len(node.value) != len(args):
        issues.add(node, key_path, f"expected a list of exactly {len(args)} items, got {len(node.value)}")
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
    for key, _key_node, value_node in _checked_items(node, key_path, issues):
        result[key] = _convert(value_node, value_type, _join(key_path, key), meta, issues)
    if any(value is _INVALID for value in result.values()):
        return _INVALID
    return result


def _convert_scalar(node: yaml.Node, tp: Any, key_path: str, meta: dict, issues: _Issues) -> Any:
    if not isinstance(node, yaml.ScalarNode):
        got = "a list" if isinstance(node, yaml.SequenceNode) else "a mapping"
        issues.add(node, key_path, f"expected {_describe(tp)}, got {got}")
        return _INVALID
    if tp is str and node.tag == _YAML_TAG + "timestamp":
        raw, problem = node.value, ""  # an unquoted ISO 8601 time for a string field: keep the text
    else:
        raw, problem = scalar_value(node)
    if raw is _INVALID:
        issues.add(node, key_path, problem)
        return _INVALID
    value = _coerce(raw, tp)
    if value is _INVALID:
        issues.add(node, key_path, _mismatch(raw, tp))
        return _INVALID
    choices = meta.get("choices")
    if choices is not None and value not in choices:
        issues.add(node, key_path, f"expected one of {', '.join(map(str, choices))}; got {clip(value)}")
        return _INVALID
    size = len(value) if isinstance(value, str) else value
    what = "length" if isinstance(value, str) else "value"
    if not isinstance(value, bool) and not _check_bounds(node, size, meta, key_path, issues, what=what):
        return _INVALID
    return value


def _mismatch(raw: Any, tp: Any) -> str:
    """Why ``raw`` is not a ``tp``, with a hint where one helps."""
    if tp is float and isinstance(raw, (int, float)) and not isinstance(raw, bool):
        return f"expected a finite number, got {clip(raw)}"
    if raw is None:
        return f"expected {_describe(tp)}, got no value"
    hint = ""
    if tp is str and not isinstance(raw, str):
        hint = " (put it in quotes)"
    elif tp in (int, float) and isinstance(raw, str) and _as_number(raw) is not None:
        hint = f" (YAML reads this exponent form as text: write {_as_number(raw):.1e})"
    return f"expected {_describe(tp)}, got {clip(raw)}{hint}"


def _as_number(text: str) -> float | None:
    try:
        number = float(text)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _coerce(raw: Any, tp: Any) -> Any:
    if tp is Any:
        return raw
    if tp is bool:
        return raw if isinstance(raw, bool) else _INVALID
    if tp is int:
        return raw if isinstance(raw, int) and not isinstance(raw, bool) else _INVALID
    if tp is float:
        if isinstance(raw, (int, float)) and not isinstance(raw, bool):
            try:
                value = float(raw)
            except OverflowError:
                return _INVALID
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
        issues.add(node, key_path, f"{what} {clip(value)} out of range: expected {bounds}{unit}")
        return False
    return True


def replace_path(config: T, key_path: str, value: Any) -> T:
    """A copy of the frozen dataclass ``config`` with the field at dotted ``key_path`` replaced."""
    head, _, rest = key_path.partition(".")
    if not rest:
        return dataclasses.replace(config, **{head: value})
    return dataclasses.replace(config, **{head: replace_path(getattr(config, head), rest, value)})
