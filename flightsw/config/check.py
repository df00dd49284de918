"""``flightsw check-config`` and ``flightsw safe-outputs``: tell the kinds of file apart, validate them, and find
the board profile a flight configuration names even when the rest of it is broken.

A file is judged by its top-level keys: a key that marks a registered kind (:mod:`flightsw.config.kinds`; the
HIL's scenarios have ``world``, ``expect`` and ``flight``), else ``outputs`` or ``barometers`` for a board profile,
else a flight configuration.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from flightsw.config.board import BoardConfig
from flightsw.config.flight import _FlightFile, board_path_in, load_flight_config
from flightsw.config.kinds import FileKind, plugin_kinds
from flightsw.config.loader import ConfigError, ConfigIssue, compose_file, load_file, mapping_items
from flightsw.config.source import MAX_FILE_BYTES

FLIGHT = FileKind(name="flight", marker_keys=frozenset(), load=load_flight_config, schema=_FlightFile,
                  title="Flight configuration", intro=lambda: "The top level of `flight.yaml`.")
BOARD = FileKind(name="board", marker_keys=frozenset({"outputs", "barometers"}),
                 load=lambda path: load_file(path, BoardConfig), schema=BoardConfig, title="Board profile",
                 intro=lambda: "")

# A top-level ``board: FILE`` line, for a flight configuration that is not even valid YAML.
_BOARD_LINE = re.compile(r"^board:[ \t]*(?P<quote>[\"']?)(?P<path>[^\"'#\r\n]+?)(?P=quote)[ \t]*(?:#.*)?$",
                         re.MULTILINE)


def kind_of(document: yaml.Node | None, kinds: tuple[FileKind, ...]) -> FileKind:
    """The kind a parsed file is, judged from its top-level keys."""
    keys = {key for key, _, _ in mapping_items(document)} if isinstance(document, yaml.MappingNode) else set()
    for kind in (*kinds, BOARD):
        if keys & kind.marker_keys:
            return kind
    return FLIGHT


def check_file(path: Path) -> tuple[list[ConfigIssue], str]:
    """Every problem in ``path`` (empty when valid) and what kind of file it is."""
    plugins = plugin_kinds()
    kind = FLIGHT
    try:
        kind = kind_of(compose_file(path), plugins.kinds)
        kind.load(path)
    except ConfigError as error:
        issues = list(error.issues)
        if kind is FLIGHT and plugins.broken:  # it may be a file of a kind we could not load the checker for
            issues += [ConfigIssue(str(path), 1, 1, "", f"if this is not a flight configuration: {why}")
                       for why in plugins.broken]
        return issues, "invalid"
    return [], kind.name


def load_board_of(path: Path) -> BoardConfig:
    """The board profile ``path`` is or names (see :func:`board_for_safe_outputs`)."""
    return board_for_safe_outputs(path)[0]


def board_for_safe_outputs(path: Path) -> tuple[BoardConfig, Path, list[ConfigIssue]]:
    """The board profile ``path`` is or names, its file, and why the flight configuration could not be read
    normally (empty when it could).  Only the board profile has to be valid: the rest of a flight configuration
    is not checked, and one that is not even YAML still gives its board by its ``board:`` line."""
    path = Path(path)
    try:
        document = compose_file(path)
        unreadable: list[ConfigIssue] = []
    except ConfigError as error:
        document, unreadable = None, error.issues
    if unreadable:
        board_file = _board_by_line(path)
        if board_file is None:
            raise ConfigError(unreadable)
    elif kind_of(document, ()) is BOARD:
        return load_file(path, BoardConfig), path, []
    else:
        board_file = board_path_in(document, path)
        if board_file is None:
            raise ConfigError([ConfigIssue(str(path), 1, 1, "board", "required: the board profile file, "
                                                                      "relative to this file")])
    return load_file(board_file, BoardConfig), board_file, unreadable


def _board_by_line(path: Path) -> Path | None:
    try:
        with open(path, "rb") as stream:
            text = stream.read(MAX_FILE_BYTES).decode("utf-8", errors="replace")
    except OSError:
        return None
    found = {match.group("path") for match in _BOARD_LINE.finditer(text)}
    return path.parent / found.pop() if len(found) == 1 else None
