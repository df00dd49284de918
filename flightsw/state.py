"""The flight state: one snapshot the frame's stages fill in and the rules read.

* :class:`Estimate` — what the estimator believes (rebuilt every sense/estimate step).
* :class:`Latches` — what must survive a restart: latched facts (phase, release, termination, ballast used,
  launch) and every timer a decision runs on (dwell starts, the last time our ground station was heard, the
  termination stage's start), all in mission elapsed time (``flightsw.missiontime``).  The journal persists them
  (``flightsw.journal``); :func:`latches_from_dict` validates every field of a stored record and
  :func:`merge_latches` merges the copies found at start-up so that no fact is lost.
* :class:`FlightState` — both, plus link and health facts the rules need.  Its ``now_s`` is mission time.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, replace

from flightsw.phase import Phase
from flightsw.rules.cutdown import Stage
from flightsw.rules.termination import Reason

NAN = math.nan
MAX_TEXT_CHARS = 200  # a stored text field longer than this is not one we wrote
MAX_MAP_ENTRIES = 64  # dwell starts, signing streams
MAX_SIGNING_TIMESTAMP = (1 << 48) - 1


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
    """What the journal persists.  Field names are the journal's keys: rename with a migration, never casually.
    Every time ``*_s`` here is mission elapsed time (s) unless its name says ``utc``."""

    # the mission clock and the record itself (flightsw.missiontime, flightsw.journal)
    flight_id: str = ""  # this flight's journal: set when the journal is first written
    met_s: float = 0.0  # mission elapsed time when the record was written
    boot_id: str = ""  # the machine's boot when it was written ...
    since_boot_s: float = NAN  # ... and its boot clock then: a restart in the same boot knows the time between
    utc_anchor_s: float = NAN  # a trusted UTC (a GPS fix) ...
    utc_anchor_met_s: float = NAN  # ... and the mission time it held at
    starts: int = 0  # starts of the flight software in this flight
    clean_stop: bool = False  # the record was written by a clean shutdown
    # phase and launch
    phase: int = Phase.PREFLIGHT
    phase_since_s: float = NAN
    launch_s: float = NAN
    launch_utc_s: float = NAN  # a label for the ground (the wall clock then)
    launch_latitude_deg: float = NAN
    launch_longitude_deg: float = NAN
    launch_altitude_m: float = NAN
    preflight_override: bool = False
    # release
    release_armed: bool = False  # never restored armed: a restart disarms
    release_fired: bool = False  # committed: written before the FIRE line is driven, never fired again
    release_fired_s: float = NAN
    release_burn_confirmed: bool = False  # the FIRE line was seen driven
    release_reason: str = ""
    separation_confirmed: bool = False
    separation_timed_out: bool = False  # release fired but no separation seen within the window
    # termination
    termination_fired: bool = False
    termination_reason: str = ""
    termination_s: float = NAN
    termination_stage: str = Stage.NONE  # see flightsw.rules.cutdown
    termination_stage_s: float = NAN
    cutdown_attempts: int = 0  # burns committed (written before the FIRE line is driven)
    cutdown_attempt_limit: int = 0  # attempts allowed so far (max tries, +1 per repeated ground command)
    cutdown_commit_s: float = NAN  # when the last attempt was committed
    # ballast and altitude
    ballast_used_kg: float = 0.0
    ballast_open_until_s: float = NAN  # the ballast valve was open when written, and closes by this time at latest
    ballast_dump_started: bool = False
    float_target_altitude_m: float = NAN
    max_altitude_m: float = NAN
    # timers
    gcs_heard_s: float = NAN  # our ground station last heard
    go_s: float = NAN  # the ground's last GO for release (valid REL_GO_WINDOW_S)
    dwell_since_s: dict = field(default_factory=dict)  # condition name -> when it began to hold
    dwell_ref: dict = field(default_factory=dict)  # condition name -> reference value at its start
    # the flight recorder: the first log file of this flight (never deleted to make space)
    tlog_first_id: int = 0
    events_first_id: int = 0
    # signing (flightsw.link.signing)
    signing_timestamp: int = 0  # our newest outgoing timestamp
    signing_streams: dict = field(default_factory=dict)  # "sys/comp/link" -> newest accepted timestamp

    def to_dict(self) -> dict:
        return asdict(self)


# ------------------------------------------------------------------------------------------------ validation

_PHASES = frozenset(int(phase) for phase in Phase)
_CHOICES = {"termination_stage": Stage.ALL, "termination_reason": ("", *Reason.ALL)}


def _check_bool(value) -> str:
    return "" if type(value) is bool else "must be true or false"


def _check_count(value) -> str:
    return "" if type(value) is int and 0 <= value <= 1_000_000 else "must be a whole number >= 0"


def _check_number(value) -> str:
    """A number, or NaN for "not known"; never infinite."""
    if type(value) not in (int, float) or math.isinf(value):
        return "must be a number (NaN when unknown)"
    return ""


def _check_text(value) -> str:
    return "" if type(value) is str and len(value) <= MAX_TEXT_CHARS else f"must be a text of <= {MAX_TEXT_CHARS}"


def _check_times(value) -> str:
    if type(value) is not dict or len(value) > MAX_MAP_ENTRIES:
        return f"must be a mapping of <= {MAX_MAP_ENTRIES} names to numbers"
    for name, number in value.items():
        if not (type(name) is str and len(name) <= 64 and type(number) in (int, float) and math.isfinite(number)):
            return f"must map names to finite numbers ({str(name)[:64]!r} does not)"
    return ""


def _check_streams(value) -> str:
    if type(value) is not dict or len(value) > MAX_MAP_ENTRIES:
        return f"must be a mapping of <= {MAX_MAP_ENTRIES} streams to timestamps"
    for name, stamp in value.items():
        if not (type(name) is str and _stream_key(name) is not None and type(stamp) is int
                and 0 <= stamp <= MAX_SIGNING_TIMESTAMP):
            return f"must map 'system/component/link' to 48-bit timestamps ({str(name)[:64]!r} does not)"
    return ""


def _stream_key(text: str) -> tuple[int, int, int] | None:
    parts = text.split("/")
    if len(parts) != 3 or not all(part.isdigit() and len(part) <= 3 and int(part) <= 255 for part in parts):
        return None
    return int(parts[0]), int(parts[1]), int(parts[2])


_CHECK_BY_TYPE = {"bool": _check_bool, "int": _check_count, "float": _check_number, "str": _check_text}
_FIELD_CHECKS = {f.name: _CHECK_BY_TYPE.get(f.type) for f in fields(Latches)}
_FIELD_CHECKS.update(dwell_since_s=_check_times, dwell_ref=_check_times, signing_streams=_check_streams,
                     signing_timestamp=lambda value: "" if type(value) is int and 0 <= value <= MAX_SIGNING_TIMESTAMP
                     else "must be a 48-bit timestamp")


def latch_problems(data: dict) -> list[str]:
    """Why a stored record is not a valid :class:`Latches` (empty when it is).  Unknown keys are ignored (a newer
    build's additions); a missing key takes its default."""
    problems = []
    for name, check in _FIELD_CHECKS.items():
        if name not in data:
            continue
        value = data[name]
        problem = check(value)
        if not problem and name in _CHOICES and value not in _CHOICES[name]:
            problem = f"must be one of {', '.join(repr(choice) for choice in _CHOICES[name])}"
        if not problem and name == "phase" and value not in _PHASES:
            problem = f"must be a phase number ({min(_PHASES)}..{max(_PHASES)})"
        if problem:
            problems.append(f"{name} {problem} (found {_short(value)})")
    return problems


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def latches_from_dict(data: dict) -> Latches:
    """A validated record as :class:`Latches`; raises ``ValueError`` naming every bad field."""
    problems = latch_problems(data)
    if problems:
        raise ValueError("; ".join(problems))
    known = {name: data[name] for name in _FIELD_CHECKS if name in data}
    for name in ("dwell_since_s", "dwell_ref", "signing_streams"):
        if name in known:
            known[name] = dict(known[name])
    return Latches(**known)


# ------------------------------------------------------------------------------------------------ merging

_EVER_TRUE = ("preflight_override", "release_fired", "release_burn_confirmed", "separation_confirmed",
              "separation_timed_out", "termination_fired", "ballast_dump_started")
_NEVER_LESS = ("cutdown_attempts", "cutdown_attempt_limit", "ballast_used_kg", "max_altitude_m", "starts",
               "signing_timestamp")
_SET_ONCE = (("launch_s", "launch_utc_s", "launch_latitude_deg", "launch_longitude_deg", "launch_altitude_m"),
             ("release_fired_s", "release_reason"), ("flight_id",))
_AFTER_TERMINATION = frozenset((Phase.TERMINATION, Phase.DESCENT, Phase.LANDED))


def _known(value) -> bool:
    return value not in ("", None) and value == value  # NaN != NaN


def merge_latches(records: list[Latches]) -> Latches:
    """One record from the copies found at start-up, newest first: the newest, with every fact any copy holds.

    Flags that only ever become true are OR-ed; counts, ballast used, the maximum altitude and the signing
    timestamps take their maximum; facts set once (launch, release time, flight id) are taken from whichever copy
    has them; a termination any copy knows is kept with its stage; the newest mission-clock record wins; and the
    phase never goes back before a latched fact (a launch leaves PREFLIGHT, a termination leaves only
    TERMINATION, DESCENT or LANDED)."""
    if not records:
        return Latches()
    merged = replace(records[0], dwell_since_s=dict(records[0].dwell_since_s),
                     dwell_ref=dict(records[0].dwell_ref), signing_streams=dict(records[0].signing_streams))
    for other in records[1:]:
        for name in _EVER_TRUE:
            if getattr(other, name):
                setattr(merged, name, True)
        for name in _NEVER_LESS:
            mine, theirs = getattr(merged, name), getattr(other, name)
            if _known(theirs) and not (_known(mine) and mine >= theirs):
                setattr(merged, name, theirs)
        for group in _SET_ONCE:
            if not _known(getattr(merged, group[0])) and _known(getattr(other, group[0])):
                for name in group:
                    setattr(merged, name, getattr(other, name))
        if other.termination_fired and not _known(merged.termination_reason):
            for name in ("termination_reason", "termination_s", "termination_stage", "termination_stage_s",
                         "cutdown_commit_s"):
                setattr(merged, name, getattr(other, name))
        if _known(other.met_s) and other.met_s > merged.met_s:
            for name in ("met_s", "boot_id", "since_boot_s"):
                setattr(merged, name, getattr(other, name))
        if _known(other.utc_anchor_met_s) and not (_known(merged.utc_anchor_met_s)
                                                   and merged.utc_anchor_met_s >= other.utc_anchor_met_s):
            merged.utc_anchor_s, merged.utc_anchor_met_s = other.utc_anchor_s, other.utc_anchor_met_s
        for stream, stamp in other.signing_streams.items():
            if stamp > merged.signing_streams.get(stream, -1):
                merged.signing_streams[stream] = stamp
    if merged.termination_fired and merged.phase not in _AFTER_TERMINATION:
        merged.phase = int(Phase.TERMINATION)
    elif merged.phase == Phase.PREFLIGHT and (_known(merged.launch_s) or merged.release_fired):
        merged.phase = int(Phase.ASCENT)
    if merged.termination_fired and not merged.termination_stage:
        merged.termination_stage = Stage.ARM
    return merged


# ------------------------------------------------------------------------------------------------ the state

@dataclass(slots=True)
class LinkStatus:
    gcs_heartbeat_s: float = NAN  # mission time of the last heartbeat from our (signed) ground station
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
    last_pulse_s: float = NAN  # mission time of the last controller pulse
    last_pulse_duration_s: float = 0.0
    reason: str = ""  # why it is idle or what it did


@dataclass(slots=True)
class FlightState:
    now_s: float = 0.0  # mission elapsed time of this frame
    wall_time_s: float = 0.0  # the system clock (labels only: no decision reads it)
    boot_s: float = 0.0  # mission time this process started
    estimate: Estimate = field(default_factory=Estimate)
    latches: Latches = field(default_factory=Latches)
    link: LinkStatus = field(default_factory=LinkStatus)
    release_armed_s: float = NAN  # when the release was armed (a restart disarms)
    sensors_healthy: bool = False
    outputs_safe: bool = True
    sensor_faults: tuple[str, ...] = ()  # names of configured sensors failing (optional detail for self-test)
    separation_switch_active: bool = False  # the release separation switch input, if fitted
    latches_dirty: bool = False  # a latched fact changed: the journal persists this frame
    timers_dirty: bool = False  # a timer or a running count changed: the journal persists within a second
    launch_blocked: bool = False  # PREFLIGHT: a launch is detected but the self-test holds the phase
    storage_errors: int = 0  # writes lost: journal, parameter store and flight recorder (telemetry STOR_ERR)
    ground_altitude_m: float = NAN  # PREFLIGHT reference altitude for launch detection
    ground_altitude_s: float = NAN  # mission time of its last update
    ground_terminate_s: float = NAN  # mission time of a pending ground termination command
    ground_terminate_text: str = ""
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

    @property
    def dwell_since_s(self) -> dict:
        """Condition name -> mission time it began to hold (persisted with the latches)."""
        return self.latches.dwell_since_s

    @property
    def dwell_ref(self) -> dict:
        return self.latches.dwell_ref


_PHASE_BY_VALUE: dict[int, Phase] = {int(phase): phase for phase in Phase}
