"""The flight configuration (``config/flight.yaml``) and how it is loaded with its board profile."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from flightsw.config.board import BoardConfig
from flightsw.config.loader import ConfigError, ConfigIssue, compose_file, load_file, load_node, mapping_items
from flightsw.config.spec import spec
from flightsw.link.transport import LinkConfig

LOG_LEVELS = ("debug", "info", "warning", "error")


@dataclass(frozen=True)
class RealtimeConfig:
    enabled: bool = spec(False, doc="request SCHED_FIFO scheduling and lock memory")
    priority: int = spec(50, min=1, max=99, doc="SCHED_FIFO priority")
    lock_memory: bool = spec(True, doc="mlockall(MCL_CURRENT | MCL_FUTURE)")


@dataclass(frozen=True)
class ExecutiveConfig:
    rate_hz: float = spec(20.0, min=1.0, max=200.0, unit="Hz", doc="minor frame rate")
    realtime: RealtimeConfig = field(default_factory=RealtimeConfig)


@dataclass(frozen=True)
class LoggingConfig:
    level: str = spec("info", choices=LOG_LEVELS, doc="lowest level written")


@dataclass(frozen=True)
class StorageConfig:
    state_dir: str = spec("/var/lib/flightsw", min=1, doc="flight-state journal and parameter store")
    log_dir: str = spec("/var/log/flightsw", min=1, doc="flight recorder (.tlog and event logs)")
    max_log_file_mb: float = spec(16.0, min=0.01, max=4096.0, unit="MiB", doc="rotate a log file at this size")
    max_log_file_age_s: float = spec(3600.0, min=10.0, max=86400.0 * 7, unit="s", doc="rotate after this age")
    min_free_mb: float = spec(200.0, min=0.0, max=1e6, unit="MiB",
                              doc="delete the oldest logs to keep this much disk free")


@dataclass(frozen=True)
class SigningConfig:
    key_file: str = spec("", doc="file holding the 32-byte secret key; empty: signing off (HIL and bench only)")
    require_signed_commands: bool = spec(True, doc="refuse commands and writes that are not signed with our key")


@dataclass(frozen=True)
class GroundLinkConfig:
    system_id: int = spec(1, min=1, max=254, doc="our MAVLink system id")
    component_id: int = spec(1, min=1, max=255, doc="our MAVLink component id (1 = autopilot)")
    gcs_system_id: int = spec(255, min=1, max=255, doc="system id of our ground station")
    signing: SigningConfig = field(default_factory=SigningConfig)
    endpoints: tuple[LinkConfig, ...] = spec((), max=4, doc="radio and network links")


@dataclass(frozen=True)
class MissionConfig:
    launch_box: tuple[tuple[float, float], ...] = spec(
        (), doc="release is allowed only inside this polygon: list of [latitude_deg, longitude_deg]; "
                "empty: no box (release refused)")
    geofence: tuple[tuple[float, float], ...] = spec(
        (), doc="terminate when outside this polygon (with dwell); empty: no geofence")


@dataclass(frozen=True)
class FlightConfig:
    board: BoardConfig
    executive: ExecutiveConfig = field(default_factory=ExecutiveConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    link: GroundLinkConfig = field(default_factory=GroundLinkConfig)
    mission: MissionConfig = field(default_factory=MissionConfig)
    params: dict[str, float] = field(default_factory=dict)
    source: str = ""  # the file it came from


def load_flight_config(path: Path | str, *, board_override: Path | None = None) -> FlightConfig:
    """Load ``flight.yaml``; its ``board:`` key names a board profile file relative to it."""
    path = Path(path)
    node = compose_file(path)
    issues: list[ConfigIssue] = []
    board: BoardConfig | None = None
    board_node = None
    if node is not None and hasattr(node, "value") and isinstance(node.value, list):
        for key, _key_node, value_node in mapping_items(node):
            if key == "board":
                board_node = value_node
    board_file = board_override
    if board_file is None and board_node is not None and isinstance(board_node.value, str):
        board_file = path.parent / board_node.value
    if board_file is None:
        line = board_node.start_mark.line + 1 if board_node is not None else 1
        column = board_node.start_mark.column + 1 if board_node is not None else 1
        issues.append(ConfigIssue(str(path), line, column, "board",
                                  "required: the path of a board profile, relative to this file"))
    else:
        try:
            board = load_file(board_file, BoardConfig)
        except ConfigError as error:
            issues.extend(error.issues)
    try:
        config = load_node(_without_board(node), _FlightFile, file=str(path))
    except ConfigError as error:
        issues.extend(error.issues)
        config = None
    issues.extend(param_override_issues(node, file=str(path)))
    if issues:
        raise ConfigError(issues)
    assert board is not None and config is not None
    return FlightConfig(board=board, executive=config.executive, logging=config.logging, storage=config.storage,
                        link=config.link, mission=config.mission, params=config.params, source=str(path))


def param_override_issues(document, *, file: str) -> list[ConfigIssue]:
    """Check the ``params:`` mapping of a YAML document against the parameter declarations: unknown names,
    values of the wrong type or out of range, each with its position."""
    import yaml

    from flightsw.dictionary import all_param_decls

    if not isinstance(document, yaml.MappingNode):
        return []
    params_node = next((value for key, _, value in mapping_items(document) if key == "params"), None)
    if not isinstance(params_node, yaml.MappingNode):
        return []
    declared = {decl.name: decl for decl in all_param_decls()}
    issues = []
    for name, key_node, value_node in mapping_items(params_node):
        where = (file, value_node.start_mark.line + 1, value_node.start_mark.column + 1, f"params.{name}")
        decl = declared.get(name)
        if decl is None:
            where = (file, key_node.start_mark.line + 1, key_node.start_mark.column + 1, f"params.{name}")
            issues.append(ConfigIssue(*where, "unknown parameter (see docs/parameters.md)"))
            continue
        try:
            value = yaml.safe_load(yaml.serialize(value_node))
        except yaml.YAMLError:
            value = None
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            issues.append(ConfigIssue(*where, f"expected a number, got {value!r}"))
            continue
        _, reason = decl.coerce(value)
        if reason:
            issues.append(ConfigIssue(*where, reason))
    return issues


@dataclass(frozen=True)
class _FlightFile:
    """flight.yaml without its ``board`` key (the board is a file of its own)."""

    executive: ExecutiveConfig = field(default_factory=ExecutiveConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    link: GroundLinkConfig = field(default_factory=GroundLinkConfig)
    mission: MissionConfig = field(default_factory=MissionConfig)
    params: dict[str, float] = field(default_factory=dict)


def _without_board(node):
    import yaml

    if not isinstance(node, yaml.MappingNode):
        return node
    kept = [(k, v) for k, v in node.value if k.value != "board"]
    return yaml.MappingNode(node.tag, kept, node.start_mark, node.end_mark)
