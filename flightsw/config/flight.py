"""The flight configuration (``config/flight.yaml``) and how it is loaded with its board profile."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from flightsw.config.board import BoardConfig
from flightsw.config.loader import (ConfigError, ConfigIssue, compose_file, issue_at, load_file, load_node,
                                    key_text, mapping_items, position, scalar_value)
from flightsw.config.semantic import (MAX_POLYGON_VERTICES, Problems, endpoint_problems, inside_problems,
                                      polygon_problems)
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

    def problems(self) -> Problems:
        return endpoint_problems(self.endpoints)


@dataclass(frozen=True)
class MissionConfig:
    launch_box: tuple[tuple[float, float], ...] = spec(
        (), max=MAX_POLYGON_VERTICES,
        doc="release is allowed only inside this polygon: list of [latitude_deg, longitude_deg]; "
            "empty: no box (release refused)")
    geofence: tuple[tuple[float, float], ...] = spec(
        (), max=MAX_POLYGON_VERTICES, doc="terminate when outside this polygon (with dwell); empty: no geofence")

    def problems(self) -> Problems:
        problems = polygon_problems("launch_box", self.launch_box) + polygon_problems("geofence", self.geofence)
        if problems or not (self.launch_box and self.geofence):
            return problems
        return inside_problems("launch_box", self.launch_box, "geofence", self.geofence)


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


@dataclass(frozen=True)
class _FlightFile:
    """flight.yaml as written: the board profile is a file of its own, named by ``board``."""

    board: str = spec(min=1, doc="the board profile file, relative to this file (keys: see *Board profile* below)")
    executive: ExecutiveConfig = field(default_factory=ExecutiveConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    link: GroundLinkConfig = field(default_factory=GroundLinkConfig)
    mission: MissionConfig = field(default_factory=MissionConfig)
    params: dict[str, float] = field(default_factory=dict)


def load_flight_config(path: Path | str, *, board_override: Path | None = None) -> FlightConfig:
    """Load ``flight.yaml`` and the board profile its ``board:`` key names (relative to ``path``), or
    ``board_override`` instead.  Raises ConfigError with the problems of both files."""
    path = Path(path)
    node = compose_file(path)
    issues: list[ConfigIssue] = []
    try:
        flight = load_node(node, _FlightFile, file=str(path))
    except ConfigError as error:
        issues.extend(error.issues)
        flight = None
    board_file = board_override if board_override is not None else board_path_in(node, path)
    board = None
    if board_file is not None:
        try:
            board = load_file(board_file, BoardConfig)
        except ConfigError as error:
            issues.extend(error.issues)
    issues.extend(param_override_issues(node, file=str(path), board=board))
    if flight is not None and board is not None:
        issues.extend(_shared_device_issues(flight, board, node, str(path)))
    if issues:
        raise ConfigError(issues)
    assert board is not None and flight is not None
    return FlightConfig(board=board, executive=flight.executive, logging=flight.logging, storage=flight.storage,
                        link=flight.link, mission=flight.mission, params=flight.params, source=str(path))


def board_path_in(document: yaml.Node | None, path: Path) -> Path | None:
    """The board profile a flight configuration names, resolved against the configuration's folder; None when
    its ``board`` key is missing or not a string (the loader reports that)."""
    if not isinstance(document, yaml.MappingNode):
        return None
    for key, _, value_node in mapping_items(document):
        if key == "board" and isinstance(value_node, yaml.ScalarNode) and value_node.tag.endswith(":str"):
            return path.parent / value_node.value if value_node.value else None
    return None


def _shared_device_issues(flight: _FlightFile, board: BoardConfig, document: yaml.Node,
                          file: str) -> list[ConfigIssue]:
    """A serial device is either the GPS or a ground link, never both."""
    return [issue_at(document, file, f"link.endpoints[{index}].device",
                     f"{link.device} is the board's GPS device (gps.device): a link needs a serial port of its own")
            for index, link in enumerate(flight.link.endpoints)
            if link.kind == "serial" and board.gps is not None and link.device == board.gps.device]


def param_override_issues(document: yaml.Node | None, *, file: str, board: BoardConfig | None = None
                          ) -> list[ConfigIssue]:
    """Check the ``params:`` mapping of a YAML document against the parameter declarations: unknown names and
    values out of range or not representable (the loader reports values that are not numbers); then the values
    together against the rules between parameters (``flightsw.params.ParamConstraint``), the ``board``'s
    included, each broken rule located at the first of its parameters the file sets."""
    from flightsw.dictionary import all_param_decls

    if not isinstance(document, yaml.MappingNode):
        return []
    params_node = next((value for key, _, value in mapping_items(document) if key == "params"), None)
    if not isinstance(params_node, yaml.MappingNode):
        return []
    declared = {decl.name: decl for decl in all_param_decls()}
    issues, seen, accepted = [], set(), {}
    for name, key_node, value_node in mapping_items(params_node):
        if name in seen:
            continue
        seen.add(name)
        decl = declared.get(name)
        if decl is None:
            issues.append(ConfigIssue(file, *position(key_node), f"params.{key_text(name)}",
                                      "unknown parameter (see docs/parameters.md)"))
            continue
        value, _ = scalar_value(value_node) if isinstance(value_node, yaml.ScalarNode) else (None, "")
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            continue
        coerced, reason = decl.coerce(value)
        if reason:
            issues.append(ConfigIssue(file, *position(value_node), f"params.{name}", reason.removeprefix(f"{name}: ")))
        else:
            accepted[name] = (coerced, value_node)
    return issues + _constraint_issues(accepted, board, file)


def _constraint_issues(accepted: dict, board: BoardConfig | None, file: str) -> list[ConfigIssue]:
    """The rules between parameters the configured values break (each once, at its first configured value)."""
    from flightsw.actuators import board_constraints
    from flightsw.dictionary import all_param_constraints, all_param_decls

    if not accepted:
        return []
    constraints = [*all_param_constraints(), *(board_constraints(board.outputs) if board is not None else ())]
    values = {decl.name: decl.default for decl in all_param_decls()}
    values.update({name: coerced for name, (coerced, _) in accepted.items()})
    issues = []
    for constraint in constraints:
        configured = [name for name in constraint.names if name in accepted]
        problem = constraint.check(values) if configured else ""
        if problem:
            issues.append(ConfigIssue(file, *position(accepted[configured[0]][1]), f"params.{configured[0]}",
                                      problem))
    return issues
