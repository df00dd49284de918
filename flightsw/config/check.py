"""``flightsw check-config``: tell a flight config, a board profile and a HIL scenario apart and validate them."""

from __future__ import annotations

from pathlib import Path

import yaml

from flightsw.config.board import BoardConfig
from flightsw.config.loader import ConfigError, ConfigIssue, compose_file, load_file, mapping_items


def file_kind(path: Path) -> str:
    """"flight", "board" or "scenario", judged from the top-level keys."""
    node = compose_file(path)
    keys = {key for key, _, _ in mapping_items(node)} if isinstance(node, yaml.MappingNode) else set()
    if "world" in keys or "expect" in keys or "flight" in keys:
        return "scenario"
    if "outputs" in keys or "barometers" in keys:
        return "board"
    return "flight"


def check_file(path: Path) -> tuple[list[ConfigIssue], str]:
    """Every problem in ``path`` (empty when valid) and what kind of file it is."""
    try:
        kind = file_kind(path)
        if kind == "board":
            load_file(path, BoardConfig)
        elif kind == "scenario":
            from hil.scenario import load_scenario

            load_scenario(path)
        else:
            from flightsw.config.flight import load_flight_config

            load_flight_config(path)
    except ConfigError as error:
        return error.issues, "invalid"
    return [], kind


def load_board_of(path: Path) -> BoardConfig:
    """The board profile of a flight config, or the board profile itself."""
    if file_kind(path) == "board":
        return load_file(path, BoardConfig)
    from flightsw.config.flight import load_flight_config

    return load_flight_config(path).board
