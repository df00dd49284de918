"""The flight state: one snapshot the frame's stages fill in and the rules read.

* :class:`Estimate` — what the estimator believes (rebuilt every sense/estimate step).
* :class:`Latches` — facts that, once true, stay true for the flight and are persisted by the journal the frame
  they change (phase, release, termination, ballast used, launch).  A restart reloads them.
* :class:`FlightState` — both, plus link and health facts the rules need.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields

from flightsw.phase import Phase

NAN = math.nan


class AltitudeSource:
    NONE = "none"
    BARO = "baro"
    GPS = "gps"


@dataclass(slots=True)
class Estimate:
    altitude_m: float = NAN  # MSL
    altitude_source: str = AltitudeSource.NONE
    altitude_valid: bool = False
    vertical_rate_mps: float = NAN
    vertical_rate_valid: bool = False
    pressure_pa: float = NAN
    pressure_valid: bool = False
    barometers_used: int = 0
    latitude_deg: float = NAN
    longitude_deg: float = NAN
    gps_altitude_m: float = NAN
    ground_speed_mps: float = NAN
    course_deg: float = NAN
    position_valid: bool = False
    fix_type: int = 0
    satellites: int = 0
    hdop: float = NAN
    gps_utc_time_s: float = NAN
    bus_voltage_v: float = NAN
    current_a: float = NAN
    power_valid: bool = False
    temperatures_c: tuple[float, ...] = ()
    temperature_valid: bool = False
    lift_change_mps2: float = 0.0  # recent change of vertical acceleration (separation detection)


@dataclass(slots=True)
class Latches:
    """Persisted facts.  Field names are the journal's keys: rename with a migration, never casually."""

    phase: int = Phase.PREFLIGHT
    phase_since_wall_s: float = NAN
    launch_wall_s: float = NAN
    launch_latitude_deg: float = NAN
    launch_longitude_deg: float = NAN
    launch_altitude_m: float = NAN
    preflight_override: bool = False
    release_armed: bool = False
    release_fired: bool = False
    release_fired_wall_s: float = NAN
    release_reason: str = ""
    separation_confirmed: bool = False
    termination_fired: bool = False
    termination_reason: str = ""
    termination_wall_s: float = NAN
    cutdown_attempts: int = 0
    ballast_used_kg: float = 0.0
    ballast_dump_started: bool = False
    float_target_altitude_m: float = NAN
    max_altitude_m: float = NAN
    signing_timestamp: int = 0
    termination_stage: str = ""  # see flightsw.rules.termination.Stage
    cutdown_attempt_limit: int = 0  # fire attempts allowed so far (max tries, +1 per repeated ground command)
    separation_timed_out: bool = False  # release fired but no separation seen within the window

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Latches":
        known = {f.name for f in fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in known})


@dataclass(slots=True)
class LinkStatus:
    gcs_heartbeat_s: float = NAN  # flight-clock time of the last heartbeat from our (signed) ground station
    go_s: float = NAN  # last ground GO for release
    connected: bool = False


@dataclass(slots=True)
class ControlStatus:
    """What the float altitude controller decided last frame (telemetry)."""

    active: bool = False
    target_altitude_m: float = NAN
    error_m: float = NAN  # target minus altitude: positive means the balloon is too low
    commanded_rate_mps: float = NAN  # outer loop output
    rate_error_mps: float = NAN  # commanded minus measured vertical rate
    lift_change_kg: float = 0.0  # inner loop output: + drop ballast, - vent
    effort: float = 0.0  # -1 (full vent pulse) .. +1 (full ballast pulse), 0 idle
    ballast_available_kg: float = 0.0  # what the controller may still spend above the reserve
    last_action: str = ""  # "ballast" / "vent" / ""
    last_pulse_s: float = NAN  # flight-clock time of the last controller pulse
    last_pulse_duration_s: float = 0.0
    reason: str = ""  # why it is idle or what it did


@dataclass(slots=True)
class FlightState:
    now_s: float = 0.0
    wall_time_s: float = 0.0
    boot_s: float = 0.0
    estimate: Estimate = field(default_factory=Estimate)
    latches: Latches = field(default_factory=Latches)
    link: LinkStatus = field(default_factory=LinkStatus)
    phase_since_s: float = 0.0  # flight-clock time the current phase began (this boot)
    release_armed_s: float = NAN
    sensors_healthy: bool = False
    outputs_safe: bool = True
    sensor_faults: tuple[str, ...] = ()  # names of configured sensors failing (optional detail for self-test)
    separation_switch_active: bool = False  # the release separation switch input, if fitted
    latches_dirty: bool = False  # a latched fact changed: the journal persists this frame
    airborne_since_s: float = NAN  # flight clock: when this boot first saw an airborne phase
    ground_altitude_m: float = NAN  # PREFLIGHT reference altitude for launch detection
    ground_altitude_s: float = NAN  # flight clock of its last update
    dwell_since_s: dict[str, float] = field(default_factory=dict)  # condition name -> flight clock it began
    dwell_ref: dict[str, float] = field(default_factory=dict)  # condition name -> reference value at its start
    ground_terminate_s: float = NAN  # flight clock of a pending ground termination command
    ground_terminate_text: str = ""
    termination_stage_s: float = NAN  # flight clock the current termination stage began (this boot)
    release_fired_s: float = NAN  # flight clock the release fired (this boot)
    release_fired_rate_mps: float = NAN  # estimated vertical rate when the release fired
    selftest_failures: tuple[str, ...] = ()  # PREFLIGHT self-test items failing (telemetry)
    release_failures: tuple[str, ...] = ()  # release criteria failing (telemetry)
    control: ControlStatus = field(default_factory=ControlStatus)

    @property
    def phase(self) -> Phase:
        value = self.latches.phase
        try:
            return _PHASE_BY_VALUE[value]
        except (KeyError, TypeError):
            return Phase(value)  # raises ValueError for a value that is not a phase


_PHASE_BY_VALUE: dict[int, Phase] = {int(phase): phase for phase in Phase}
