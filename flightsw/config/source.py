"""The front door for every configuration file: bytes, then UTF-8, then YAML with limits, then a node tree.

Flight configurations, board profiles, HIL scenarios and the parameter overrides in them all come in through
:func:`read_yaml`; schema and semantic validation (:mod:`flightsw.config.loader`) work on the node tree it returns,
which keeps every value's line and column.  Whatever the bytes, the result is a node tree or a
:class:`ConfigError` with ``file:line:col`` and a hint, never another exception, and the work done is bounded:

* at most :data:`MAX_FILE_BYTES` bytes are read, and only from a regular file;
* the bytes must be UTF-8 (a UTF-8 byte order mark is allowed) without the control characters YAML forbids;
* a single YAML document, nested at most :data:`MAX_DEPTH` collections deep, with at most :data:`MAX_NODES` nodes
  once every alias is expanded (a 556-byte "billion laughs" alias bomb stops at the limit, in milliseconds), and
  no alias inside the collection it names.

The YAML events come from libyaml when PyYAML has it (fast) and from PyYAML's own parser otherwise; the tree is
composed here, in Python, so the limits hold either way.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import yaml

from flightsw.config.issues import ConfigError, ConfigIssue

MAX_FILE_BYTES = 64 * 1024
MAX_DEPTH = 32
MAX_NODES = 20_000

_UTF8_BOM = b"\xef\xbb\xbf"
_WIDE_BOMS = ((b"\xff\xfe\x00\x00", "UTF-32"), (b"\x00\x00\xfe\xff", "UTF-32"), (b"\xff\xfe", "UTF-16"),
              (b"\xfe\xff", "UTF-16"))
# What YAML 1.1 allows in a stream (yaml.reader.Reader.NON_PRINTABLE, spelt out so the check comes first).
_NOT_ALLOWED = re.compile("[^\x09\x0A\x0D\x20-\x7E\x85\xA0-\uD7FF\uE000-\uFFFD\U00010000-\U0010FFFF]")


class _LimitExceeded(yaml.MarkedYAMLError):
    pass


class _LimitedComposer(yaml.composer.Composer):
    """PyYAML's composer, counting depth and nodes (aliases count as the nodes they stand for)."""

    def __init__(self) -> None:
        super().__init__()
        self._depth = 0
        self._nodes = 0
        self._anchored_sizes: dict[str, int] = {}

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            if event.anchor in self.anchors:
                size = self._anchored_sizes.get(event.anchor)
                if size is None:
                    raise _LimitExceeded(None, None, f"the alias *{_clip_name(event.anchor)} is inside the "
                                         "collection it names (a recursive alias)", event.start_mark)
                self._count(size, event.start_mark)
            return super().compose_node(parent, index)
        event = self.peek_event()
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise _LimitExceeded(None, None, f"nested more than {MAX_DEPTH} levels deep", event.start_mark)
        before = self._nodes
        node = super().compose_node(parent, index)
        self._depth -= 1
        self._count(1, event.start_mark)
        if event.anchor is not None:
            self._anchored_sizes[event.anchor] = self._nodes - before
        return node

    def _count(self, nodes: int, mark) -> None:
        self._nodes += nodes
        if self._nodes > MAX_NODES:
            raise _LimitExceeded(None, None, f"more than {MAX_NODES} values once aliases are expanded "
                                 "(an alias bomb?)", mark)


class _PurePythonLoader(yaml.reader.Reader, yaml.scanner.Scanner, yaml.parser.Parser, _LimitedComposer,
                        yaml.resolver.Resolver):
    def __init__(self, text: str) -> None:
        yaml.reader.Reader.__init__(self, text)
        yaml.scanner.Scanner.__init__(self)
        yaml.parser.Parser.__init__(self)
        _LimitedComposer.__init__(self)
        yaml.resolver.Resolver.__init__(self)


if getattr(yaml, "__with_libyaml__", False):
    class _LibyamlLoader(_LimitedComposer, yaml.resolver.Resolver, yaml.cyaml.CParser):
        """libyaml's event stream under the Python composer (CParser's own composer has no limits)."""

        def __init__(self, text: str) -> None:
            yaml.cyaml.CParser.__init__(self, text)
            _LimitedComposer.__init__(self)
            yaml.resolver.Resolver.__init__(self)

    _Loader: type = _LibyamlLoader
else:  # pragma: no cover - PyYAML built without libyaml
    _Loader = _PurePythonLoader


def read_yaml(path: Path | str) -> yaml.Node | None:
    """The YAML node tree of the file at ``path`` (None for an empty document); ConfigError for anything else."""
    file = str(path)
    return compose_text(decode(read_bytes(file), file), file)


def read_bytes(file: str) -> bytes:
    """At most MAX_FILE_BYTES bytes of a regular file."""
    try:
        with open(file, "rb") as stream:
            if not stat.S_ISREG(os.fstat(stream.fileno()).st_mode):
                raise ConfigError([ConfigIssue(file, 1, 1, "", "not a regular file: give the path of a YAML file")])
            data = stream.read(MAX_FILE_BYTES + 1)
    except OSError as error:
        raise ConfigError([ConfigIssue(file, 1, 1, "", f"cannot read file: {error.strerror or error}")]) from None
    if len(data) > MAX_FILE_BYTES:
        raise ConfigError([ConfigIssue(file, 1, 1, "", f"file larger than {MAX_FILE_BYTES // 1024} KiB: a "
                                                       "configuration file is a few KiB (is this the right file?)")])
    return data


def decode(data: bytes, file: str) -> str:
    """The text of ``data``, which must be UTF-8 without control characters."""
    for bom, name in _WIDE_BOMS:
        if data.startswith(bom):
            raise ConfigError([ConfigIssue(file, 1, 1, "", f"the file is {name}: save it as UTF-8")])
    if data.startswith(_UTF8_BOM):
        data = data[len(_UTF8_BOM):]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line, column = _position(data, error.start)
        raise ConfigError([ConfigIssue(file, line, column, "", f"byte 0x{data[error.start]:02x} is not UTF-8: save "
                                                               "the file as UTF-8 (not Latin-1 or Windows-1252)")])
    bad = _NOT_ALLOWED.search(text)
    if bad is not None:
        line = text.count("\n", 0, bad.start()) + 1
        column = bad.start() - (text.rfind("\n", 0, bad.start()) + 1) + 1
        code = f"U+{ord(bad.group()):04X}"
        hint = " (a UTF-16 file?)" if bad.group() == "\x00" else ""
        raise ConfigError([ConfigIssue(file, line, column, "", f"control character {code} is not allowed in YAML"
                                                               f"{hint}: remove it")])
    return text


def compose_text(text: str, file: str) -> yaml.Node | None:
    """The node tree of one YAML document in ``text``, within the limits."""
    loader = _Loader(text)
    try:
        return loader.get_single_node()
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
        problem = ", ".join(part for part in (error.context, error.problem) if part) or "not valid YAML"
        prefix = "" if isinstance(error, _LimitExceeded) else "invalid YAML: "
        raise ConfigError([ConfigIssue(file, line, column, "", prefix + problem)]) from None
    except yaml.YAMLError as error:  # a reader error: the checks in decode() should have caught it first
        raise ConfigError([ConfigIssue(file, 1, 1, "", f"invalid YAML: {error}")]) from None
    finally:
        loader.dispose()


def _position(data: bytes, offset: int) -> tuple[int, int]:
    """1-based line and column (in characters) of byte ``offset``."""
    line_start = data.rfind(b"\n", 0, offset) + 1
    return data.count(b"\n", 0, offset) + 1, len(data[line_start:offset].decode("utf-8", "replace")) + 1


def _clip_name(name: str, limit: int = 20) -> str:
    return name if len(name) <= limit else name[:limit] + "..."
