"""The kinds of configuration file flightsw checks and documents, and how another package adds its own.

flightsw declares two kinds itself, the flight configuration and the board profile (:mod:`flightsw.config.check`).
Another package adds a kind by registering a :class:`FileKind` object in its packaging metadata under the entry
point group :data:`ENTRY_POINT_GROUP`.  The HIL registers its scenarios that way (``pyproject.toml``), so that
``flightsw check-config`` validates scenario files, and ``flightsw docs`` documents them, without any module of
``flightsw`` importing ``hil``: the dependency points from ``hil`` to ``flightsw`` only.
"""

from __future__ import annotations

import importlib.metadata
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

ENTRY_POINT_GROUP = "flightsw.file_kinds"


@dataclass(frozen=True)
class FileKind:
    """One kind of YAML file: how to recognise it, load it and document it."""

    name: str                         # what check-config prints: "ok: FILE (name)"
    marker_keys: frozenset[str]       # top-level keys that only this kind of file has
    load: Callable[[Path], object]    # load and validate the file; raises ConfigError
    schema: type                      # its top-level dataclass, for docs/configuration.md
    title: str                        # the heading of its section in docs/configuration.md
    intro: Callable[[], str]          # the paragraph under that heading


@dataclass(frozen=True)
class PluginKinds:
    kinds: tuple[FileKind, ...]
    broken: tuple[str, ...]           # "name: why" for each registered kind that could not be loaded


def plugin_kinds() -> PluginKinds:
    """The kinds registered by other installed packages, by name; a registration that fails to load is reported
    in ``broken`` instead of raising."""
    kinds, broken = [], []
    for entry in sorted(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        try:
            kind = entry.load()
        except Exception as error:  # noqa: BLE001 - a broken plug-in must not stop the checker
            broken.append(f"{entry.name}: cannot load {entry.value}: {type(error).__name__}: {error}")
            continue
        if isinstance(kind, FileKind):
            kinds.append(kind)
        else:
            broken.append(f"{entry.name}: {entry.value} is not a FileKind")
    return PluginKinds(tuple(kinds), tuple(broken))
