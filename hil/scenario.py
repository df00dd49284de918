"""HIL scenarios (``config/hil/*.yaml``): the world, the flight rules, a scripted operator, faults, expectations.

A scenario names a flight configuration (``flight:``) and the board profile the HIL emulates (``board:``), each
relative to the scenario file (by default the shipped ``config/flight-hil.yaml`` and ``config/boards/hil.yaml``);
the flight configuration's own ``board:`` is replaced by it.  It overrides parameters and mission polygons,
describes the balloon world, and lists what the operator does, what breaks, and what must be true at the end.
Loading checks all of it, the files it names included (:func:`load_scenario`).

Conditions (``when:``) are ``<quantity> <op> <number>`` with quantity one of :data:`QUANTITIES` and op one of
``< <= > >= ==``; ``phase == FLOAT`` compares phase names.  They are evaluated on the world's truth and the
daemon's phase once a simulated second.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Callable, Iterator

import yaml

from flightsw.config.board import BoardConfig
from flightsw.config.flight import MissionConfig, load_flight_config, param_override_issues
from flightsw.config.issues import clip
from flightsw.config.kinds import FileKind
from flightsw.config.loader import ConfigError, ConfigIssue, compose_file, issue_at, load_node
from flightsw.config.spec import spec
from hal.board import device_name
from hal.gpio import OUTPUT_ROLES
from hil.physics.config import WorldConfig

SHIPPED_CONFIG = Path(__file__).resolve().parent.parent / "config"
DEFAULT_FLIGHT = SHIPPED_CONFIG / "flight-hil.yaml"
DEFAULT_BOARD = SHIPPED_CONFIG / "boards" / "hil.yaml"

QUANTITIES = ("time_s", "altitude_m", "vertical_rate_mps", "ballast_kg", "phase")
PHASE_NAMES = ("PREFLIGHT", "ASCENT", "FLOAT", "DESCENT", "LANDED", "TERMINATION")
_CONDITION = re.compile(r"^\s*(\w+)\s*(<=|>=|==|<|>)\s*([-+\w.]+)\s*$")

OPERATOR_COMMANDS = ("terminate", "arm_release", "disarm_release", "arm_cutdown", "fire_release", "go",
                     "change_altitude", "set_param", "pulse_ballast", "pulse_vent", "set_phase",
                     "override_preflight")
EXPECTATION_KINDS = ("phase_reached", "phase_not_reached", "terminated", "not_terminated", "released",
                     "never_released", "released_altitude_m", "max_altitude_m", "landed", "float_hold_fraction",
                     "event", "no_event", "restarts", "ballast_left_kg", "duration_s", "cutdown_fires",
                     "altitude_error_p99_m")


@dataclass(frozen=True)
class FaultKind:
    """A fault kind: what it does (``doc``, for the scenario guide; the behaviour is in ``hil/faults.py``) and
    which fields it uses.  ``magnitude``: what it means ("" when unused), within ``magnitude_range`` (a brown-out's
    restart delay is bounded by the scenario length instead)."""

    doc: str
    target: bool = False        # a barometer named in ``target`` (empty: every barometer)
    line: bool = False          # an output line named in ``line``, ``count`` times
    lasts: bool = True          # ``duration_s`` applies
    magnitude: str = ""
    magnitude_range: tuple[float, float] = (0.0, 0.0)


FAULTS = {
    "i2c_nack": FaultKind("every transaction to the barometer `target` (all barometers when empty) fails with a NACK",
                          target=True),
    "baro_stuck": FaultKind("barometer `target` (or all) freezes at its current raw values and keeps answering",
                            target=True),
    "baro_drift": FaultKind("barometer `target` (or all) drifts by `magnitude` Pa/s (default 5)", target=True,
                            magnitude="drift, Pa/s (0 means 5)", magnitude_range=(-1e4, 1e4)),
    "baro_out_of_range": FaultKind("barometer `target` (or all) reads a pressure outside its rated range",
                                   target=True),
    "gps_loss": FaultKind("the GPS receiver falls silent"),
    "gps_jump": FaultKind("the GPS position jumps by `magnitude` degrees (default 0.5) in latitude and longitude",
                          magnitude="jump in latitude and longitude, deg (0 means 0.5)", magnitude_range=(-5.0, 5.0)),
    "radio_blackout": FaultKind("nothing passes the ground link in either direction"),
    "ballast_jam": FaultKind("the ballast valve opens but no ballast flows"),
    "cutdown_fail_first": FaultKind("the next cutdown burn does not cut (a broken burn wire); later burns work",
                                    lasts=False),
    "brownout": FaultKind("the board loses power: the daemon dies without cleanup and boots again after `magnitude` "
                          "s (a new boot: the daemon can not tell how long it was down until GPS time tells it)",
                          lasts=False, magnitude="restart delay, s (0 means 15)", magnitude_range=(0.0, math.inf)),
    "crash": FaultKind("the daemon's process dies (SIGKILL, a crash under `Restart=always`) without a reboot: the "
                       "output lines stay as it left them until ExecStopPost drives them safe 0.5 s later, and "
                       "systemd starts it again `magnitude` s (default 2) after the crash, in the same boot",
                       lasts=False, magnitude="restart delay, s (0 means 2)", magnitude_range=(0.0, math.inf)),
    "balloon_burst": FaultKind("the balloon bursts now", lasts=False),
    "battery_sag": FaultKind("the battery voltage drops by `magnitude` V (a failed cell)",
                             magnitude="battery voltage drop, V (0 means 4)", magnitude_range=(0.0, 100.0)),
    "disk_full": FaultKind("the file system of the daemon's state and log directories is full: every write that "
                           "needs a new block fails with ENOSPC (writing over a file's existing bytes still works, "
                           "as on ext4)"),
    "line_write_error": FaultKind("the next `count` (default 1) writes of output line `line` (a board role, e.g. "
                                  "`cutdown_fire`) fail with EIO, leaving the line as it was", line=True,
                                  lasts=False),
}
FAULT_KINDS = tuple(FAULTS)


def parse_condition(text: str) -> tuple[str, str, float | str]:
    """``"altitude_m > 24000"`` -> ``("altitude_m", ">", 24000.0)``; raises ValueError when malformed."""
    match = _CONDITION.match(text)
    if not match:
        raise ValueError(f"condition {clip(text)}: expected '<quantity> <op> <number>'")
    quantity, op, value = match.groups()
    if quantity not in QUANTITIES:
        raise ValueError(f"condition {clip(text)}: unknown quantity {clip(quantity)} (one of {', '.join(QUANTITIES)})")
    if quantity == "phase":
        if op != "==" or value not in PHASE_NAMES:
            raise ValueError(f"condition {clip(text)}: use 'phase == <{'|'.join(PHASE_NAMES)}>'")
        return quantity, op, value
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"condition {clip(text)}: {clip(value)} is not a number") from None
    if not math.isfinite(number):
        raise ValueError(f"condition {clip(text)}: {clip(value)} is not a finite number")
    return quantity, op, number


def condition_holds(text: str, quantity: Callable[[str], float | str]) -> bool:
    """Evaluate a condition, reading current values with ``quantity(name)``."""
    name, op, value = parse_condition(text)
    current = quantity(name)
    if op == "==":
        return current == value
    return {"<": current < value, "<=": current <= value, ">": current > value, ">=": current >= value}[op]


Problems = Iterator[tuple[str, str]]


@dataclass(frozen=True)
class Trigger:
    """When something happens: at a simulated time, or when a condition first holds (after ``at_s`` if both)."""

    at_s: float = spec(0.0, min=0.0, unit="s", doc="simulated time since the start")
    when: str = spec("", doc="condition, e.g. 'altitude_m > 24000'; empty: at at_s")

    def problems(self) -> Problems:
        if self.when:
            try:
                parse_condition(self.when)
            except ValueError as error:
                yield "when", str(error)


@dataclass(frozen=True)
class OperatorAction(Trigger):
    command: str = spec("go", choices=OPERATOR_COMMANDS, doc="what the operator sends over MAVLink")
    value: float = spec(0.0, doc="the command's argument (altitude m, pulse s, parameter value, phase number)")
    name: str = spec("", doc="set_param: the parameter name")
    signed: bool = spec(True, doc="sign the command with the ground station's key")

    def problems(self) -> Problems:
        yield from super().problems()
        if self.command == "set_param":
            from flightsw.dictionary import all_param_decls

            if self.name not in {decl.name for decl in all_param_decls()}:
                yield "name", f"set_param: unknown parameter {clip(self.name)} (see docs/parameters.md)"
        elif self.name:
            yield "name", f"name is for set_param, not {self.command}"


@dataclass(frozen=True)
class FaultSpec(Trigger):
    kind: str = spec("i2c_nack", choices=FAULT_KINDS, doc="what breaks")
    target: str = spec("", doc="sensor faults: the barometer (its name in the board profile); empty: every one")
    line: str = spec("", doc="line_write_error: the output line (its role: " + ", ".join(OUTPUT_ROLES) + ")")
    count: int = spec(1, min=1, max=1_000_000, doc="line_write_error: how many writes to the line fail")
    duration_s: float = spec(0.0, min=0.0, unit="s", doc="how long it lasts; 0: until the end")
    magnitude: float = spec(0.0, doc="; ".join(f"{name}: {kind.magnitude}" for name, kind in FAULTS.items()
                                               if kind.magnitude))

    def problems(self) -> Problems:
        yield from super().problems()
        kind = FAULTS[self.kind]
        for key, used, unset in (("target", kind.target, ""), ("line", kind.line, ""), ("count", kind.line, 1),
                                 ("duration_s", kind.lasts, 0.0), ("magnitude", bool(kind.magnitude), 0.0)):
            if not used and getattr(self, key) != unset:
                yield key, f"{key} is not used by a {self.kind} fault: remove it"
        if kind.line and self.line not in OUTPUT_ROLES:
            yield "line", f"expected an output line, one of {', '.join(OUTPUT_ROLES)}; got {clip(self.line)}"
        low, high = kind.magnitude_range
        if kind.magnitude and not low <= self.magnitude <= high:
            yield "magnitude", f"{kind.magnitude}: {clip(self.magnitude)} out of range {low:g} to {high:g}"


@dataclass(frozen=True)
class Expectation:
    kind: str = spec(choices=EXPECTATION_KINDS, doc="what must be true at the end of the run")
    phase: str = spec("", doc="phase name for phase_reached / phase_not_reached")
    reason: str = spec("", doc="terminated: text the termination reason must contain")
    name: str = spec("", doc="event / no_event: the event name")
    min: float = spec(-1e12, doc="lower bound for numeric expectations")
    max: float = spec(1e12, doc="upper bound for numeric expectations")

    def problems(self) -> Problems:
        if self.kind in ("phase_reached", "phase_not_reached") and self.phase not in PHASE_NAMES:
            yield "phase", f"expected a phase, one of {', '.join(PHASE_NAMES)}; got {clip(self.phase)}"
        if self.kind in ("event", "no_event") and not self.name:
            yield "name", f"{self.kind} needs the event's name"
        if self.min > self.max:
            yield "min", f"min {self.min:g} is above max {self.max:g}"


@dataclass(frozen=True)
class Dispersions:
    """Spreads (1 sigma).  ``sensor_noise_pa`` sets every run's per-barometer bias spread; the others are drawn
    per run when ``--runs`` > 1 (Monte Carlo)."""

    lift_fraction: float = spec(0.03, min=0.0, max=0.5, doc="relative spread of the fill (free lift)")
    wind_fraction: float = spec(0.2, min=0.0, max=2.0, doc="relative spread of the wind speeds")
    burst_diameter_fraction: float = spec(0.05, min=0.0, max=0.5, doc="relative spread of the burst diameter")
    sensor_noise_pa: float = spec(2.0, min=0.0, max=1000.0, unit="Pa", doc="barometer bias spread")


@dataclass(frozen=True)
class Scenario:
    name: str = spec(min=1, max=60, doc="short name")
    description: str = spec("", doc="what the scenario shows")
    flight: str = spec("", doc="flight configuration, relative to this file; empty: the shipped "
                               "config/flight-hil.yaml")
    board: str = spec("", doc="board profile emulated by the HIL, relative to this file; empty: the shipped "
                              "config/boards/hil.yaml")
    seed: int = spec(1, min=0, max=2 ** 32 - 1, doc="random seed")
    max_duration_s: float = spec(6 * 3600.0, min=10.0, max=30 * 86400.0, unit="s",
                                 doc="stop the simulation after this long")
    end_after_landing_s: float = spec(120.0, min=0.0, unit="s", doc="keep running this long after landing")
    params: dict[str, float] = field(default_factory=dict)
    mission: MissionConfig | None = spec(None, doc="replaces the flight configuration's mission polygons")
    world: WorldConfig = field(default_factory=WorldConfig)
    operator: tuple[OperatorAction, ...] = spec((), doc="ground commands")
    faults: tuple[FaultSpec, ...] = spec((), doc="injected faults")
    expect: tuple[Expectation, ...] = spec((), doc="what must be true at the end")
    dispersions: Dispersions = field(default_factory=Dispersions)
    float_band_m: float = spec(500.0, min=1.0, max=100000.0, unit="m", doc="float accuracy band for the report")
    path: str = ""  # the file it came from

    def problems(self) -> Problems:
        """Times and durations within the scenario's length; the start time an ISO 8601 UTC time."""
        end_s = self.max_duration_s
        late = f"after the end of the scenario (max_duration_s {end_s:g} s)"
        for group, items in (("operator", self.operator), ("faults", self.faults)):
            for index, item in enumerate(items):
                if item.at_s > end_s:
                    yield f"{group}[{index}].at_s", f"{item.at_s:g} s is {late}"
        for index, fault in enumerate(self.faults):
            if fault.duration_s > end_s:
                yield f"faults[{index}].duration_s", f"{fault.duration_s:g} s is longer than the scenario ({end_s:g} s)"
            if fault.kind == "brownout" and fault.magnitude > end_s:
                yield f"faults[{index}].magnitude", f"restart delay {fault.magnitude:g} s is {late}"
        problem = utc_time_problem(self.world.launch.start_utc)
        if problem:
            yield "world.launch.start_utc", problem


def utc_time_problem(text: str) -> str:
    """"" for an ISO 8601 UTC time such as ``2024-06-21T08:00:00Z`` (no offset is taken as UTC), else why not."""
    iso = text.strip()
    iso = iso[:-1] + "+00:00" if iso.endswith(("Z", "z")) else iso
    try:
        moment = datetime.fromisoformat(iso)
    except ValueError:
        return f"expected an ISO 8601 UTC time such as 2024-06-21T08:00:00Z, got {clip(text)}"
    if moment.utcoffset() not in (None, timedelta(0)):
        return f"{clip(text)} is not UTC: write the time in UTC with a Z"
    if not 1900 <= moment.year <= 2200:
        return f"year {moment.year} out of range: expected 1900 to 2200"
    return ""


def load_scenario(path: Path | str) -> Scenario:
    """Load and check a scenario: its own keys, its parameter overrides, and the flight configuration and board
    profile it names (each relative to the file that names it), which must be valid; fault targets must exist
    on that board.  The result names the flight and board files by absolute paths."""
    path = Path(path)
    document = compose_file(path)
    issues: list[ConfigIssue] = []
    try:
        scenario = load_node(document, Scenario, file=str(path))
    except ConfigError as error:
        issues.extend(error.issues)
        scenario = None
    issues.extend(param_override_issues(document, file=str(path)))
    if scenario is None:
        raise ConfigError(issues)
    flight_file = (path.parent / scenario.flight).resolve() if scenario.flight else DEFAULT_FLIGHT
    board_file = (path.parent / scenario.board).resolve() if scenario.board else DEFAULT_BOARD
    missing = [issue_at(document, str(path), key, f"file not found: {target}")
               for key, target in (("flight", flight_file), ("board", board_file)) if not target.is_file()]
    issues.extend(missing)
    if not missing:
        try:
            config = load_flight_config(flight_file, board_override=board_file)
        except ConfigError as error:
            issues.append(issue_at(document, str(path), "flight", "the flight configuration or its board profile "
                                                                  "is not valid (see the errors in those files)"))
            issues.extend(error.issues)
        else:
            issues.extend(_fault_target_issues(scenario.faults, config.board, document, str(path)))
    if issues:
        raise ConfigError(issues)
    return dataclasses.replace(scenario, flight=str(flight_file), board=str(board_file), path=str(path))


def _fault_target_issues(faults: tuple[FaultSpec, ...], board: BoardConfig, document: yaml.Node | None,
                         file: str) -> list[ConfigIssue]:
    barometers = [device_name(barometer) for barometer in board.barometers]
    lines = [role for role in OUTPUT_ROLES if getattr(board.outputs, role) is not None]
    issues = []
    for index, fault in enumerate(faults):
        if fault.target and fault.target not in barometers:
            issues.append(issue_at(document, file, f"faults[{index}].target",
                                   f"no barometer named {clip(fault.target)} on the board (it has "
                                   f"{', '.join(barometers) or 'none'})"))
        if fault.line in OUTPUT_ROLES and fault.line not in lines:
            issues.append(issue_at(document, file, f"faults[{index}].line",
                                   f"the board has no {fault.line} line"))
    return issues


def _docs_intro() -> str:
    numbers = ", ".join(f"`{q}`" for q in QUANTITIES if q != "phase")
    return ("A HIL scenario (`config/hil/*.yaml`), flown by `flightsw hil --scenario FILE`.  Conditions in `when:` "
            "are `<quantity> <op> <number>` with op one of `<`, `<=`, `>`, `>=`, `==` and quantity one of "
            f"{numbers}, or `phase == <name>` with name one of " + ", ".join(f"`{p}`" for p in PHASE_NAMES) + ".  "
            "Times (`at_s`, `duration_s`, a brown-out's restart delay) must fall within `max_duration_s`.")


#: How ``flightsw check-config`` and ``flightsw docs`` find scenarios (entry point ``flightsw.file_kinds``).
SCENARIO_FILE = FileKind(name="scenario", marker_keys=frozenset({"world", "expect", "flight"}), load=load_scenario,
                         schema=Scenario, title="HIL scenario", intro=_docs_intro)
