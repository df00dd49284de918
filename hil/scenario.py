"""HIL scenarios (``config/hil/*.yaml``): the world, the flight rules, a scripted operator, faults, expectations.

A scenario names a flight configuration (``flight:``, relative to the scenario file; its board profile is replaced
by the HIL board unless the scenario names another), overrides parameters and mission polygons, describes the
balloon world, and lists what the operator does, what breaks, and what must be true at the end.

Conditions (``when:``) are ``<quantity> <op> <number>`` with quantity one of :data:`QUANTITIES` and op one of
``< <= > >= ==``; ``phase == FLOAT`` compares phase names.  They are evaluated on the world's truth and the
daemon's phase once a simulated second.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from flightsw.config.flight import MissionConfig, param_override_issues
from flightsw.config.loader import ConfigError, ConfigIssue, compose_file, load_node
from flightsw.config.spec import spec
from hil.physics.config import WorldConfig

QUANTITIES = ("time_s", "altitude_m", "vertical_rate_mps", "ballast_kg", "phase")
PHASE_NAMES = ("PREFLIGHT", "ASCENT", "FLOAT", "DESCENT", "LANDED", "TERMINATION")
_CONDITION = re.compile(r"^\s*(\w+)\s*(<=|>=|==|<|>)\s*([-+\w.]+)\s*$")

OPERATOR_COMMANDS = ("terminate", "arm_release", "disarm_release", "arm_cutdown", "fire_release", "go",
                     "change_altitude", "set_param", "pulse_ballast", "pulse_vent", "set_phase",
                     "override_preflight")
FAULT_KINDS = ("i2c_nack", "baro_stuck", "baro_drift", "baro_out_of_range", "gps_loss", "gps_jump",
               "radio_blackout", "ballast_jam", "cutdown_fail_first", "brownout", "balloon_burst", "battery_sag",
               "line_write_error", "disk_full", "crash")
EXPECTATION_KINDS = ("phase_reached", "phase_not_reached", "terminated", "not_terminated", "released",
                     "never_released", "released_altitude_m", "max_altitude_m", "landed", "float_hold_fraction",
                     "event", "no_event", "restarts", "ballast_left_kg", "duration_s", "cutdown_fires",
                     "altitude_error_p99_m")


def parse_condition(text: str) -> tuple[str, str, float | str]:
    """``"altitude_m > 24000"`` -> ``("altitude_m", ">", 24000.0)``; raises ValueError when malformed."""
    match = _CONDITION.match(text)
    if not match:
        raise ValueError(f"condition {text!r}: expected '<quantity> <op> <number>'")
    quantity, op, value = match.groups()
    if quantity not in QUANTITIES:
        raise ValueError(f"condition {text!r}: unknown quantity {quantity!r} (one of {', '.join(QUANTITIES)})")
    if quantity == "phase":
        if op != "==" or value not in PHASE_NAMES:
            raise ValueError(f"condition {text!r}: use 'phase == <{'|'.join(PHASE_NAMES)}>'")
        return quantity, op, value
    try:
        return quantity, op, float(value)
    except ValueError:
        raise ValueError(f"condition {text!r}: {value!r} is not a number") from None


def condition_holds(text: str, quantity: Callable[[str], float | str]) -> bool:
    """Evaluate a condition, reading current values with ``quantity(name)``."""
    name, op, value = parse_condition(text)
    current = quantity(name)
    if op == "==":
        return current == value
    return {"<": current < value, "<=": current <= value, ">": current > value, ">=": current >= value}[op]


@dataclass(frozen=True)
class Trigger:
    """When something happens: at a simulated time, or when a condition first holds (after ``at_s`` if both)."""

    at_s: float = spec(0.0, min=0.0, unit="s", doc="simulated time since the start")
    when: str = spec("", doc="condition, e.g. 'altitude_m > 24000'; empty: at at_s")

    def __post_init__(self) -> None:
        if self.when:
            parse_condition(self.when)


@dataclass(frozen=True)
class OperatorAction(Trigger):
    command: str = spec("go", choices=OPERATOR_COMMANDS, doc="what the operator sends over MAVLink")
    value: float = spec(0.0, doc="the command's argument (altitude m, pulse s, parameter value, phase number)")
    name: str = spec("", doc="set_param: the parameter name")
    signed: bool = spec(True, doc="sign the command with the ground station's key")


@dataclass(frozen=True)
class FaultSpec(Trigger):
    kind: str = spec("i2c_nack", choices=FAULT_KINDS, doc="what breaks")
    target: str = spec("", doc="the device (barometer name) for sensor faults")
    duration_s: float = spec(0.0, min=0.0, unit="s", doc="how long it lasts; 0: until the end")
    magnitude: float = spec(0.0, doc="drift Pa/s, jump degrees, restart delay s, ...")
    line: str = spec("", doc="line_write_error: the output line (its board role, e.g. cutdown_fire)")
    count: int = spec(1, min=1, doc="line_write_error: how many of the line's next writes fail")


@dataclass(frozen=True)
class Expectation:
    kind: str = spec(choices=EXPECTATION_KINDS, doc="what must be true at the end of the run")
    phase: str = spec("", doc="phase name for phase_reached / phase_not_reached")
    reason: str = spec("", doc="terminated: text the termination reason must contain")
    name: str = spec("", doc="event / no_event: the event name")
    min: float = spec(-1e12, doc="lower bound for numeric expectations")
    max: float = spec(1e12, doc="upper bound for numeric expectations")


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
    flight: str = spec("../flight-hil.yaml", doc="flight configuration, relative to the scenario")
    board: str = spec("../boards/hil.yaml", doc="board profile emulated by the HIL")
    seed: int = spec(1, min=0, doc="random seed")
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
    float_band_m: float = spec(500.0, min=1.0, unit="m", doc="float accuracy band for the report")
    path: str = ""  # the file it came from


def load_scenario(path: Path | str) -> Scenario:
    path = Path(path)
    node = compose_file(path)
    issues = []
    try:
        scenario = load_node(node, Scenario, file=str(path))
    except ConfigError as error:
        issues.extend(error.issues)
    issues.extend(param_override_issues(node, file=str(path)))
    if issues:
        raise ConfigError(issues)
    flight_path = (path.parent / scenario.flight).resolve()
    board_path = (path.parent / scenario.board).resolve()
    issues = [ConfigIssue(str(path), 1, 1, key, f"file not found: {target}")
              for key, target in (("flight", flight_path), ("board", board_path)) if not target.is_file()]
    if issues:
        raise ConfigError(issues)
    return _with_path(scenario, str(path))


def _with_path(scenario: Scenario, path: str) -> Scenario:
    import dataclasses

    return dataclasses.replace(scenario, path=path)
