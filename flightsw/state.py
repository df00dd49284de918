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

    @property
    def phase(self) -> Phase:
        return Phase(self.latches.phase)
