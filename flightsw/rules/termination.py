"""Flight termination (cutdown): when to terminate.  The cutdown sequence itself is :mod:`flightsw.rules.cutdown`.

`termination_check` names the first reason, in this priority order, whose condition holds:

* `ground` — a ground termination command.  It cannot be disabled: the range must always be able to cut, in
  every phase (before a detected launch too: the flight may be airborne with its launch detection blocked).
  Dumps ballast first only with `TRM_GND_DUMP`.
* `no_altitude` — barometers and GPS both lost: no valid altitude for `TRM_NOALT_DWELL`.  Immediate cut.
* `ceiling` — altitude above `TRM_CEIL_ALT` for `TRM_CEIL_DWELL`.  Immediate cut.
* `geofence` — position outside the mission geofence polygon for `TRM_FENCE_DWELL`.  Immediate cut.
* `uncontrolled` — a floating flight (`FLT_MODE` 1 or 2) sinking faster than `TRM_BURST_RATE` for
  `TRM_BURST_DWELL` (burst or lost balloon).  Immediate cut.
* `battery` — bus voltage below `TRM_BATT_V` for `TRM_BATT_DWELL`.  Immediate cut: keep the energy for the burn.
* `link_lost` — our ground station silent for `TRM_LINK_TMO_S`, counted from the later of its last heartbeat
  and the launch.  Dumps ballast first.
* `max_duration` — mission time since launch above `TRM_MAX_FLT_S`.  Dumps ballast first.
* `float_floor` — in FLOAT below `TRM_FLOOR_ALT` for `TRM_FLOOR_DWELL`.  Dumps ballast first.

Automatic reasons count whenever the flight may be airborne: in ASCENT, FLOAT, DESCENT and TERMINATION (where a
more severe reason cuts a ballast dump short), in PREFLIGHT once a launch is detected but held by the self-test,
and in LANDED while the altitude is above `PH_LAND_MAX_ALT` (no phase label switches the flight termination system
off).  Each is switched by its `TRM_EN_*` parameter (all on by default; the geofence does nothing while the
mission has no geofence polygon).  Every time is mission elapsed time, carried across restarts with every dwell:
a restart never lengthens a timeout.
"""

from __future__ import annotations

from typing import NamedTuple
from math import isfinite

from flightsw.geo import point_in_polygon
from flightsw.params import ParamConstraint, ParamDecl, at_most, bool_param
from flightsw.phase import FLOAT, LANDED, PREFLIGHT, Phase
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
    ParamDecl("TRM_BURN_S", float, 6.0, 0.5, 10.0, "s",
              "Cutdown burn-wire firing time (at most ACT_BURN_MAX_S, and within the FIRE line's backstop)",
              group=GROUP),
    ParamDecl("TRM_SEP_RATE", float, 5.0, 0.5, 100.0, "m/s",
              "Cutdown separation seen: sinking faster than this", group=GROUP),
    ParamDecl("TRM_SEP_DWELL", float, 3.0, 0.0, 60.0, "s", "Cutdown separation: for this long", group=GROUP),
    ParamDecl("TRM_SEP_TMO_S", float, 60.0, 5.0, 600.0, "s",
              "Fire again when no separation is seen this long after firing", group=GROUP),
    ParamDecl("TRM_MAX_TRIES", int, 3, 1, 10, "", "Cutdown fire attempts in all", group=GROUP),
    ParamDecl("TRM_ARM_TMO_S", float, 120.0, 5.0, 3600.0, "s",
              "A cutdown chain armed by ground command (a test) disarms after this long", group=GROUP),
)

TERMINATION_CONSTRAINTS: tuple[ParamConstraint, ...] = (
    at_most("TRM_BURN_S", "ACT_BURN_MAX_S", why="the cutdown burn would be cut short"),
    at_most("TRM_DUMP_PULSE_S", "ACT_MAX_PULSE_S", why="the actuators would refuse the dump's pulses"),
    ParamConstraint(("TRM_DUMP_PULSE_S", "TRM_DUMP_MAX_S"),
                    lambda v: "" if v["TRM_DUMP_MAX_S"] == 0 or v["TRM_DUMP_PULSE_S"] <= v["TRM_DUMP_MAX_S"]
                    else f"TRM_DUMP_PULSE_S {v['TRM_DUMP_PULSE_S']:g} is above TRM_DUMP_MAX_S "
                         f"{v['TRM_DUMP_MAX_S']:g}: a dump pulse must fit the dump",
                    "TRM_DUMP_PULSE_S <= TRM_DUMP_MAX_S unless the dump is off (TRM_DUMP_MAX_S 0)"),
)

_AUTOMATIC_PHASES = frozenset((Phase.ASCENT, Phase.FLOAT, Phase.DESCENT, Phase.TERMINATION))


class TerminationDecision(NamedTuple):  # immutable, and cheaper to build than a frozen dataclass
    """``reason`` is empty when nothing calls for termination."""

    reason: str = ""
    text: str = ""
    dump_ballast: bool = False
    dwells: tuple[DwellUpdate, ...] = ()


def termination_check(state, params, now_s: float, mission) -> TerminationDecision:
    """The first termination reason that holds, or an empty decision.  Evaluated every frame, after a termination
    too (a more severe reason cuts a ballast dump short).

    :param mission: the :class:`~flightsw.config.flight.MissionConfig` (its ``geofence`` polygon).
    """
    ground = finite(state.ground_terminate_s)
    found: tuple[str, str] | None = None
    if state.phase not in _AUTOMATIC_PHASES and not automatic_reasons_active(state, params):
        # no automatic reason counts: every dwell is reset
        decision = _NOTHING_HOLDS
    else:
        holding = _conditions_holding(state.estimate, params, state.phase, mission)
        dwells = _NOTHING_HOLDS.dwells
        if holding:
            dwells, found = _dwell_updates(state, params, now_s, holding)
        if found is None and params["TRM_EN_LINK"]:
            alive_s = _later(state.link.gcs_heartbeat_s, state.latches.launch_s)
            if now_s - alive_s > params["TRM_LINK_TMO_S"] and finite(alive_s):
                found = (Reason.LINK_LOST, f"ground link lost for {now_s - alive_s:.0f} s")
        if found is None and params["TRM_EN_MAXDUR"]:
            flight_s = flight_duration_s(state, now_s)
            if flight_s > params["TRM_MAX_FLT_S"] and finite(flight_s):
                found = (Reason.MAX_DURATION, f"flight time {flight_s:.0f} s above {params['TRM_MAX_FLT_S']:.0f} s")
        if found is None:
            decision = TerminationDecision(dwells=dwells) if holding else _NOTHING_HOLDS
        else:
            decision = TerminationDecision(found[0], found[1], found[0] in Reason.DUMP_FIRST, dwells)
    if ground:  # the most severe reason; the automatic reasons' dwells are kept up to date all the same
        text = state.ground_terminate_text or "ground command"
        return TerminationDecision(Reason.GROUND, f"ground command: {text}", bool(params["TRM_GND_DUMP"]),
                                   decision.dwells)
    return decision


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
    """Mission time since launch (s); NaN before launch.  The launch time is latched in the journal, so a restart
    never starts it again, and the wall clock never enters."""
    launch_s = state.latches.launch_s
    return now_s - launch_s if finite(launch_s) else NAN


def automatic_reasons_active(state, params) -> bool:
    """Whether automatic reasons count now: whenever the flight may be airborne (see the module documentation)."""
    phase = state.phase
    if phase in _AUTOMATIC_PHASES:
        return True
    if phase is PREFLIGHT:
        return state.launch_blocked
    if phase is LANDED:
        est = state.estimate
        return est.altitude_valid and isfinite(est.altitude_m) and est.altitude_m > params["PH_LAND_MAX_ALT"]
    return False
