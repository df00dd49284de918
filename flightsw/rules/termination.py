"""Flight termination (cutdown): when to terminate, and the cutdown sequence.

`termination_check` names the first reason, in this priority order, whose condition holds:

* `ground` — a ground termination command.  It cannot be disabled: the range must always be able to cut.
  Dumps ballast first only with `TRM_GND_DUMP`.
* `no_altitude` — barometers and GPS both lost: no valid altitude for `TRM_NOALT_DWELL`.  Immediate cut.
* `ceiling` — altitude above `TRM_CEIL_ALT` for `TRM_CEIL_DWELL`.  Immediate cut.
* `geofence` — position outside the mission geofence polygon for `TRM_FENCE_DWELL`.  Immediate cut.
* `uncontrolled` — a floating flight (`FLT_MODE` 1 or 2) sinking faster than `TRM_BURST_RATE` for
  `TRM_BURST_DWELL` in ASCENT, FLOAT or DESCENT (burst or lost balloon).  Immediate cut.
* `battery` — bus voltage below `TRM_BATT_V` for `TRM_BATT_DWELL`.  Immediate cut: keep the energy for the burn.
* `link_lost` — our ground station silent for `TRM_LINK_TMO_S`, counted from the later of its last heartbeat
  and the start of flight.  Dumps ballast first.
* `max_duration` — flight time since launch above `TRM_MAX_FLT_S`.  Dumps ballast first.
* `float_floor` — in FLOAT below `TRM_FLOOR_ALT` for `TRM_FLOOR_DWELL`.  Dumps ballast first.

Automatic reasons count only in ASCENT, FLOAT and DESCENT.  Each is switched by its `TRM_EN_*` parameter (all
on by default; the geofence does nothing while the mission has no geofence polygon).

The sequence (`termination_step`, stages in `latches.termination_stage`):

1. `dump` — only for reasons that allow it, with ballast left, above `TRM_DUMP_MIN_ALT`: open the ballast
   valve in pulses of at most `TRM_DUMP_PULSE_S` until the remaining ballast is gone or `TRM_DUMP_MAX_S`
   has passed;
2. `arm` — arm the cutdown chain;
3. `fire` — in a later frame than the arm and at least `ACT_ARM_SETTLE_S` after it (so an attempt is never
   latched in a frame where the actuators' interlock must refuse it), fire the burn wire for `TRM_BURN_S`;
4. `wait` — separation is confirmed when sinking faster than `TRM_SEP_RATE` for `TRM_SEP_DWELL`; without it
   after `TRM_SEP_TMO_S` the wire is fired again, up to `TRM_MAX_TRIES` attempts in all;
5. `done` (separated) or `failed` (attempts exhausted; a new ground command allows one more attempt).
"""

from __future__ import annotations

from typing import NamedTuple
from math import isfinite

from flightsw.geo import point_in_polygon
from flightsw.params import ParamDecl, bool_param
from flightsw.phase import FLOAT, Phase
from flightsw.rules import NAN, DwellUpdate, dwell, finite, not_holding, nothing_holds
from flightsw.rules.phases import FLOAT_NONE

GROUP = "termination"


class Reason:
    GROUND = "ground"
    NO_ALTITUDE = "no_altitude"
    CEILING = "ceiling"
    GEOFENCE = "geofence"
    UNCONTROLLED_DESCENT = "uncontrolled"
    BATTERY = "battery"
    LINK_LOST = "link_lost"
    MAX_DURATION = "max_duration"
    FLOAT_FLOOR = "float_floor"

    ALL = (GROUND, NO_ALTITUDE, CEILING, GEOFENCE, UNCONTROLLED_DESCENT, BATTERY, LINK_LOST, MAX_DURATION,
           FLOAT_FLOOR)
    #: reasons that dump ballast first (ground: only with TRM_GND_DUMP)
    DUMP_FIRST = (LINK_LOST, MAX_DURATION, FLOAT_FLOOR)


class Stage:
    DUMP = "dump"
    ARM = "arm"
    FIRE = "fire"
    WAIT = "wait"
    DONE = "done"
    FAILED = "failed"


#: the stages in which the sequence is over and :func:`termination_step` does nothing (a new ground termination
#: command moves a finished or failed sequence back to ARM)
FINAL_STAGES = frozenset((Stage.DONE, Stage.FAILED))


class Action:
    NONE = "none"
    DUMP_PULSE = "dump_pulse"  # pulse the ballast valve for pulse_s
    END_DUMP = "end_dump"  # close the valves, the dump is over
    ARM = "arm"  # arm the cutdown chain
    FIRE = "fire"  # fire the cutdown burn wire (attempt number in the decision)
    SEPARATED = "separated"  # separation seen: disarm, done
    RETRY = "retry"  # no separation: go back to fire again
    GIVE_UP = "give_up"  # attempts exhausted: disarm, failed


TERMINATION_PARAMS: tuple[ParamDecl, ...] = (
    bool_param("TRM_EN_NOALT", True, "Terminate when no valid altitude (baro and GPS lost)", group=GROUP),
    ParamDecl("TRM_NOALT_DWELL", float, 120.0, 5.0, 3600.0, "s",
              "How long without a valid altitude before terminating", group=GROUP),
    bool_param("TRM_EN_CEIL", True, "Terminate above the altitude ceiling", group=GROUP),
    ParamDecl("TRM_CEIL_ALT", float, 40000.0, 1000.0, 60000.0, "m", "Altitude ceiling (MSL)", group=GROUP),
    ParamDecl("TRM_CEIL_DWELL", float, 10.0, 0.0, 600.0, "s", "How long above the ceiling", group=GROUP),
    bool_param("TRM_EN_FENCE", True, "Terminate outside the mission geofence (no effect without a geofence)",
               group=GROUP),
    ParamDecl("TRM_FENCE_DWELL", float, 30.0, 0.0, 600.0, "s", "How long outside the geofence", group=GROUP),
    bool_param("TRM_EN_BURST", True, "Terminate a floating flight on a burst or uncontrolled descent",
               group=GROUP),
    ParamDecl("TRM_BURST_RATE", float, 5.0, 0.5, 100.0, "m/s",
              "Uncontrolled descent: sinking faster than this", group=GROUP),
    ParamDecl("TRM_BURST_DWELL", float, 30.0, 0.0, 600.0, "s", "Uncontrolled descent: for this long",
              group=GROUP),
    bool_param("TRM_EN_BATT", True, "Terminate on a low battery", group=GROUP),
    ParamDecl("TRM_BATT_V", float, 6.6, 0.0, 60.0, "V",
              "Battery limit: bus voltage below this (set for the pack: 6.6 V suits 2S Li-ion)", group=GROUP),
    ParamDecl("TRM_BATT_DWELL", float, 60.0, 0.0, 3600.0, "s", "How long below the battery limit",
              group=GROUP),
    bool_param("TRM_EN_LINK", True, "Terminate when the ground link is lost for too long", group=GROUP),
    ParamDecl("TRM_LINK_TMO_S", float, 3600.0, 60.0, 604800.0, "s",
              "Lost-link timeout (counted once airborne)", group=GROUP),
    bool_param("TRM_EN_MAXDUR", True, "Terminate at the maximum flight duration", group=GROUP),
    ParamDecl("TRM_MAX_FLT_S", float, 259200.0, 600.0, 2592000.0, "s",
              "Maximum flight duration since launch", group=GROUP),
    bool_param("TRM_EN_FLOOR", True, "Terminate when floating below the floor altitude for too long",
               group=GROUP),
    ParamDecl("TRM_FLOOR_ALT", float, 15000.0, 0.0, 45000.0, "m", "Float floor altitude (MSL)", group=GROUP),
    ParamDecl("TRM_FLOOR_DWELL", float, 1800.0, 0.0, 86400.0, "s", "How long below the float floor",
              group=GROUP),
    bool_param("TRM_GND_DUMP", False, "A ground termination command dumps ballast before the cut", group=GROUP),
    ParamDecl("TRM_DUMP_MIN_ALT", float, 3000.0, 0.0, 45000.0, "m",
              "Dump ballast before the cut only above this altitude (MSL)", group=GROUP),
    ParamDecl("TRM_DUMP_MAX_S", float, 120.0, 0.0, 3600.0, "s", "Longest ballast dump before the cut",
              group=GROUP),
    ParamDecl("TRM_DUMP_PULSE_S", float, 20.0, 1.0, 600.0, "s",
              "Longest single ballast-valve pulse during the dump (below the valve's backstop)", group=GROUP),
    ParamDecl("TRM_BURN_S", float, 6.0, 0.5, 10.0, "s", "Cutdown burn-wire firing time (ACT_BURN_MAX_S caps it)",
              group=GROUP),
    ParamDecl("TRM_SEP_RATE", float, 5.0, 0.5, 100.0, "m/s",
              "Cutdown separation seen: sinking faster than this", group=GROUP),
    ParamDecl("TRM_SEP_DWELL", float, 3.0, 0.0, 60.0, "s", "Cutdown separation: for this long", group=GROUP),
    ParamDecl("TRM_SEP_TMO_S", float, 60.0, 5.0, 600.0, "s",
              "Fire again when no separation is seen this long after firing", group=GROUP),
    ParamDecl("TRM_MAX_TRIES", int, 3, 1, 10, "", "Cutdown fire attempts in all", group=GROUP),
)

_AUTOMATIC_PHASES = frozenset((Phase.ASCENT, Phase.FLOAT, Phase.DESCENT))


class TerminationDecision(NamedTuple):  # immutable, and cheaper to build than a frozen dataclass
    """``reason`` is empty when nothing calls for termination."""

    reason: str = ""
    text: str = ""
    dump_ballast: bool = False
    dwells: tuple[DwellUpdate, ...] = ()


class TerminationStep(NamedTuple):  # immutable, and cheaper to build than a frozen dataclass
    action: str
    next_stage: str
    text: str = ""
    pulse_s: float = 0.0
    attempt: int = 0  # the attempt number for FIRE
    dwells: tuple[DwellUpdate, ...] = ()


def termination_check(state, params, now_s: float, mission) -> TerminationDecision:
    """The first termination reason that holds, or an empty decision.

    :param mission: the :class:`~flightsw.config.flight.MissionConfig` (its ``geofence`` polygon).
    """
    latches = state.latches
    if latches.termination_fired:
        return _NO_TERMINATION
    if finite(state.ground_terminate_s):
        text = state.ground_terminate_text or "ground command"
        return TerminationDecision(Reason.GROUND, f"ground command: {text}", bool(params["TRM_GND_DUMP"]))

    phase = state.phase
    if phase not in _AUTOMATIC_PHASES:  # no automatic reason counts: every dwell is reset
        return _NOTHING_HOLDS
    holding = _conditions_holding(state.estimate, params, phase, mission)
    found: tuple[str, str] | None = None
    dwells = _NOTHING_HOLDS.dwells
    if holding:
        dwells, found = _dwell_updates(state, params, now_s, holding)

    if found is None and params["TRM_EN_LINK"]:
        alive_s = _later(state.link.gcs_heartbeat_s, state.airborne_since_s)
        if now_s - alive_s > params["TRM_LINK_TMO_S"] and finite(alive_s):
            found = (Reason.LINK_LOST, f"ground link lost for {now_s - alive_s:.0f} s")

    if found is None and params["TRM_EN_MAXDUR"]:
        flight_s = flight_duration_s(state, now_s)
        if flight_s > params["TRM_MAX_FLT_S"] and finite(flight_s):
            found = (Reason.MAX_DURATION, f"flight time {flight_s:.0f} s above {params['TRM_MAX_FLT_S']:.0f} s")

    if found is None:
        return TerminationDecision(dwells=dwells) if holding else _NOTHING_HOLDS
    reason, text = found
    return TerminationDecision(reason, text, reason in Reason.DUMP_FIRST, dwells)


#: the reasons that must hold for a while, in priority order, with the parameter that says how long
_DWELL_PARAMS = {
    Reason.NO_ALTITUDE: "TRM_NOALT_DWELL",
    Reason.CEILING: "TRM_CEIL_DWELL",
    Reason.GEOFENCE: "TRM_FENCE_DWELL",
    Reason.UNCONTROLLED_DESCENT: "TRM_BURST_DWELL",
    Reason.BATTERY: "TRM_BATT_DWELL",
    Reason.FLOAT_FLOOR: "TRM_FLOOR_DWELL",
}
_DWELL_NAMES = {reason: "trm_" + reason for reason in Reason.ALL}
_NOT_HOLDING = {reason: not_holding(name) for reason, name in _DWELL_NAMES.items()}
_NO_TERMINATION = TerminationDecision()
#: outside the automatic phases, and in most frames inside them: nothing holds and every dwell-based reason starts
#: over
_NOTHING_HOLDS = TerminationDecision(dwells=nothing_holds(_DWELL_NAMES[reason] for reason in _DWELL_PARAMS))


def _conditions_holding(est, params, phase: Phase, mission) -> list[str]:
    """The dwell-based reasons whose condition holds this frame, in priority order.  A condition is evaluated only
    when its ``TRM_EN_*`` parameter enables it."""
    alt_ok = est.altitude_valid and isfinite(est.altitude_m)
    holding = []
    if params["TRM_EN_NOALT"] and not alt_ok:
        holding.append(Reason.NO_ALTITUDE)
    if params["TRM_EN_CEIL"] and alt_ok and est.altitude_m > params["TRM_CEIL_ALT"]:
        holding.append(Reason.CEILING)
    if params["TRM_EN_FENCE"] and est.position_valid and mission is not None and len(mission.geofence) >= 3 \
            and _outside(est.latitude_deg, est.longitude_deg, mission.geofence):
        holding.append(Reason.GEOFENCE)
    if params["FLT_MODE"] != FLOAT_NONE and params["TRM_EN_BURST"] and est.vertical_rate_valid \
            and isfinite(est.vertical_rate_mps) and est.vertical_rate_mps < -params["TRM_BURST_RATE"]:
        holding.append(Reason.UNCONTROLLED_DESCENT)
    if params["TRM_EN_BATT"] and est.power_valid and isfinite(est.bus_voltage_v) \
            and est.bus_voltage_v < params["TRM_BATT_V"]:
        holding.append(Reason.BATTERY)
    if phase is FLOAT and params["TRM_EN_FLOOR"] and alt_ok and est.altitude_m < params["TRM_FLOOR_ALT"]:
        holding.append(Reason.FLOAT_FLOOR)
    return holding


def _dwell_updates(state, params, now_s: float,
                   holding: list[str]) -> tuple[tuple[DwellUpdate, ...], tuple[str, str] | None]:
    """The dwell update of every dwell-based reason, and ``(reason, text)`` of the first holding one whose dwell
    is over (None if there is none)."""
    dwells = []
    found = None
    for reason in _DWELL_PARAMS:
        if reason not in holding:
            dwells.append(_NOT_HOLDING[reason])
            continue
        held, update = dwell(state, _DWELL_NAMES[reason], True, now_s, params[_DWELL_PARAMS[reason]])
        dwells.append(update)
        if held and found is None:
            found = (reason, _condition_text(reason, state.estimate, params))
    return tuple(dwells), found


_last_outside: list = [None, None]  # [(latitude_deg, longitude_deg, polygon), outside] of the last call


def _outside(latitude_deg: float, longitude_deg: float, polygon) -> bool:
    """A finite position outside ``polygon`` (:func:`point_in_polygon`), remembering the last answer: the position
    changes only with a new GPS fix."""
    key = (latitude_deg, longitude_deg, polygon)
    if _last_outside[0] != key:
        _last_outside[0] = key
        _last_outside[1] = finite(latitude_deg, longitude_deg) and not point_in_polygon(latitude_deg, longitude_deg,
                                                                                         polygon)
    return _last_outside[1]


def _later(first_s: float, second_s: float) -> float:
    """The later of two times, leaving out one that is not finite; NaN if neither is."""
    if not finite(first_s):
        return second_s if finite(second_s) else NAN
    if finite(second_s) and second_s > first_s:
        return second_s
    return first_s


def _condition_text(reason: str, est, params) -> str:
    """The operator-facing text of a dwell-based termination reason that fired."""
    if reason == Reason.NO_ALTITUDE:
        return "no valid altitude (barometers and GPS lost)"
    if reason == Reason.CEILING:
        return f"altitude {est.altitude_m:.0f} m above ceiling {params['TRM_CEIL_ALT']:.0f} m"
    if reason == Reason.GEOFENCE:
        return f"outside the geofence at {est.latitude_deg:.5f}, {est.longitude_deg:.5f}"
    if reason == Reason.UNCONTROLLED_DESCENT:
        return f"uncontrolled descent at {-est.vertical_rate_mps:.1f} m/s"
    if reason == Reason.BATTERY:
        return f"battery {est.bus_voltage_v:.2f} V below {params['TRM_BATT_V']:.2f} V"
    # Reason.FLOAT_FLOOR
    return f"floating at {est.altitude_m:.0f} m, below the floor {params['TRM_FLOOR_ALT']:.0f} m"


def flight_duration_s(state, now_s: float) -> float:
    """Time since launch: wall clock against the latched launch time (survives restarts), else this boot's
    airborne time; NaN before launch."""
    launch_wall_s = state.latches.launch_wall_s
    if finite(launch_wall_s, state.wall_time_s) and launch_wall_s > 0:
        return state.wall_time_s - launch_wall_s
    if finite(state.airborne_since_s):
        return now_s - state.airborne_since_s
    return float("nan")


def dump_seconds(params, ballast_remaining_kg: float) -> float:
    """How long the pre-cut dump may run: the remaining ballast at the valve's flow, at most TRM_DUMP_MAX_S."""
    flow_kgps = params["BAL_FLOW_KGPS"]
    if ballast_remaining_kg <= 0.0 or flow_kgps <= 0.0:
        return 0.0
    return min(params["TRM_DUMP_MAX_S"], ballast_remaining_kg / flow_kgps)


def should_dump(state, params, dump_requested: bool, ballast_remaining_kg: float) -> bool:
    """Dump before the cut only if the reason allows it, there is ballast and time, and we are high enough."""
    est = state.estimate
    return (dump_requested and dump_seconds(params, ballast_remaining_kg) > 0.0 and est.altitude_valid
            and isfinite(est.altitude_m) and est.altitude_m > params["TRM_DUMP_MIN_ALT"])


def termination_step(state, params, now_s: float, *, ballast_remaining_kg: float, valve_open: bool,
                     cutdown_armed: bool, cutdown_firing: bool, cutdown_armed_s: float = NAN) -> TerminationStep:
    """One frame of the cutdown sequence.

    :param ballast_remaining_kg: ballast still on board (all of it: the reserve is for exactly this).
    :param valve_open: the ballast valve is open now.
    :param cutdown_armed: the cutdown chain is armed.
    :param cutdown_firing: the cutdown burn wire is powered now.
    :param cutdown_armed_s: flight-clock time (s) the chain was armed, NaN if unknown.  FIRE waits until a later
        frame and at least ``ACT_ARM_SETTLE_S`` after it, so the attempt is never latched and counted in a frame
        where the actuators' interlock must refuse it.
    """
    latches = state.latches
    stage = latches.termination_stage
    since_s = state.termination_stage_s if finite(state.termination_stage_s) else now_s
    elapsed_s = max(0.0, now_s - since_s)
    est = state.estimate

    if stage == Stage.DUMP:
        max_s = params["TRM_DUMP_MAX_S"]
        low = not (est.altitude_valid and isfinite(est.altitude_m) and est.altitude_m > params["TRM_DUMP_MIN_ALT"])
        if ballast_remaining_kg <= 0.0 or elapsed_s >= max_s or low:
            why = "below the dump altitude" if low else "ballast dumped"
            return TerminationStep(Action.END_DUMP, Stage.ARM, why)
        if valve_open:
            return TerminationStep(Action.NONE, Stage.DUMP)
        pulse_s = min(params["TRM_DUMP_PULSE_S"], max_s - elapsed_s, ballast_remaining_kg / params["BAL_FLOW_KGPS"])
        return TerminationStep(Action.DUMP_PULSE, Stage.DUMP, "dumping ballast", pulse_s=pulse_s)

    if stage == Stage.ARM:
        return TerminationStep(Action.ARM, Stage.FIRE, "arming cutdown")

    if stage == Stage.FIRE:
        if not cutdown_armed:
            return TerminationStep(Action.ARM, Stage.FIRE, "re-arming cutdown")
        if finite(cutdown_armed_s) and not (now_s > cutdown_armed_s
                                            and now_s - cutdown_armed_s >= params["ACT_ARM_SETTLE_S"]):
            return TerminationStep(Action.NONE, Stage.FIRE, "cutdown armed: letting the arm settle")
        attempt = latches.cutdown_attempts + 1
        return TerminationStep(Action.FIRE, Stage.WAIT, f"firing cutdown, attempt {attempt}", attempt=attempt)

    if stage == Stage.WAIT:
        sinking = est.vertical_rate_valid and isfinite(est.vertical_rate_mps) \
            and est.vertical_rate_mps < -params["TRM_SEP_RATE"]
        held, update = dwell(state, "trm_separation", sinking, now_s, params["TRM_SEP_DWELL"])
        if held:
            return TerminationStep(Action.SEPARATED, Stage.DONE,
                                   f"separation confirmed: sinking at {-est.vertical_rate_mps:.1f} m/s",
                                   dwells=(update,))
        if cutdown_firing or elapsed_s < params["TRM_SEP_TMO_S"]:
            return TerminationStep(Action.NONE, Stage.WAIT, dwells=(update,))
        limit = latches.cutdown_attempt_limit or params["TRM_MAX_TRIES"]
        if latches.cutdown_attempts < limit:
            return TerminationStep(Action.RETRY, Stage.FIRE,
                                   f"no separation {elapsed_s:.0f} s after attempt {latches.cutdown_attempts}: "
                                   "firing again", dwells=(update,))
        return TerminationStep(Action.GIVE_UP, Stage.FAILED,
                               f"no separation after {latches.cutdown_attempts} attempts", dwells=(update,))

    return TerminationStep(Action.NONE, stage)

