"""The phase machine.

`PREFLIGHT -> ASCENT -> [FLOAT ->] DESCENT -> LANDED`, and `TERMINATION` from any phase when termination
fires (the glue sets it), which then goes on to DESCENT or LANDED by the same detection as the other phases.

* PREFLIGHT: the self-test (`selftest`) must pass — every configured sensor healthy, every actuator line in
  its safe state, the ground link up — or the ground must have sent the preflight override; otherwise a detected
  launch is reported but the phase does not change.  Launch is detected from climb: the vertical rate above
  `PH_LAUNCH_RATE` for `PH_LAUNCH_DWELL`, or the altitude more than `PH_LAUNCH_GAIN` above the ground
  reference (a slow average of the altitude while not climbing) for the same dwell.
* ASCENT -> FLOAT (only when `FLT_MODE` says the flight floats), above `PH_FLOAT_MIN_ALT`, when the climb has
  stopped: the rate below `PH_FLOAT_RATE` (sinking included) for `PH_FLOAT_DWELL`; or when the balloon is near
  the float target: within `PH_FLOAT_NEAR` of it climbing slower than `PH_FLOAT_NEAR_RT` for the same
  dwell.  A zero-pressure balloon overshoots its float altitude, loses gas through its duct and then sinks
  slowly: that is a float that needs the controller, not an ascent.  Altitude control runs only in FLOAT.
* ASCENT, FLOAT, TERMINATION -> DESCENT: sinking faster than `PH_DESC_RATE` for `PH_DESC_DWELL` (burst, cutdown,
  loss of the balloon).  The rate is set well above what a zero-pressure balloon sinks at sunset so that the float
  controller keeps working through the night.
* DESCENT, TERMINATION -> LANDED: the rate within `PH_LAND_RATE` of zero and the altitude within
  `PH_LAND_ALT_CHG` of where it was, below `PH_LAND_MAX_ALT`, for `PH_LAND_DWELL`.

`phase_request` is the ground's DO_SET_MODE table: which requested transitions are permitted from which
phase.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple
from math import isfinite

from flightsw.params import ParamDecl
from flightsw.phase import ASCENT, DESCENT, FLOAT, LANDED, PREFLIGHT, TERMINATION, Phase
from flightsw.rules import DwellUpdate, Failure, dwell, dwell_with_reference, finite

GROUP = "phases"

FLOAT_NONE = 0
FLOAT_ZERO_PRESSURE = 1
FLOAT_SUPERPRESSURE = 2

PHASE_PARAMS: tuple[ParamDecl, ...] = (
    ParamDecl("FLT_MODE", int, FLOAT_NONE, 0, 2, "",
              "Does the flight float: 0 no (latex sounding flight, descent after burst is expected), "
              "1 zero-pressure balloon, 2 superpressure balloon.  FLOAT phase and altitude control need 1 or 2",
              group=GROUP),
    ParamDecl("PF_LINK_AGE_S", float, 10.0, 1.0, 600.0, "s",
              "Self-test: the ground link counts as up when our ground station was heard within this time",
              group=GROUP),
    ParamDecl("PH_LAUNCH_RATE", float, 1.5, 0.2, 20.0, "m/s",
              "Launch detection: climbing faster than this (for PH_LAUNCH_DWELL)", group=GROUP),
    ParamDecl("PH_LAUNCH_GAIN", float, 100.0, 10.0, 2000.0, "m",
              "Launch detection: altitude this far above the ground reference (for PH_LAUNCH_DWELL)", group=GROUP),
    ParamDecl("PH_LAUNCH_DWELL", float, 5.0, 0.0, 120.0, "s",
              "Launch detection: how long the climb must last", group=GROUP),
    ParamDecl("PH_GROUND_TAU", float, 60.0, 1.0, 3600.0, "s",
              "Time constant of the ground reference altitude average in PREFLIGHT (frozen while climbing)",
              group=GROUP),
    ParamDecl("PH_FLOAT_RATE", float, 0.5, 0.05, 5.0, "m/s",
              "Float detection: climbing slower than this, sinking included (for PH_FLOAT_DWELL)", group=GROUP),
    ParamDecl("PH_FLOAT_MIN_ALT", float, 15000.0, 0.0, 45000.0, "m",
              "Float detection: only above this altitude (MSL)", group=GROUP),
    ParamDecl("PH_FLOAT_DWELL", float, 120.0, 10.0, 7200.0, "s",
              "Float detection: how long the climb must have stopped (or the balloon stayed near the target)",
              group=GROUP),
    ParamDecl("PH_DESC_RATE", float, 8.0, 0.5, 100.0, "m/s",
              "Descent detection: sinking faster than this (for PH_DESC_DWELL); well above a balloon's "
              "sunset sink rate", group=GROUP),
    ParamDecl("PH_DESC_DWELL", float, 10.0, 0.0, 600.0, "s",
              "Descent detection: how long the sink must last", group=GROUP),
    ParamDecl("PH_LAND_RATE", float, 0.5, 0.05, 5.0, "m/s",
              "Landing detection: vertical rate within this of zero", group=GROUP),
    ParamDecl("PH_LAND_ALT_CHG", float, 20.0, 1.0, 500.0, "m",
              "Landing detection: altitude stays within this of its value when the calm began", group=GROUP),
    ParamDecl("PH_LAND_DWELL", float, 60.0, 5.0, 3600.0, "s",
              "Landing detection: how long the vehicle must be still", group=GROUP),
    ParamDecl("PH_LAND_MAX_ALT", float, 9000.0, -500.0, 20000.0, "m",
              "Landing detection: only below this altitude (MSL)", group=GROUP),
    ParamDecl("PH_FLOAT_NEAR", float, 300.0, 0.0, 5000.0, "m",
              "Float detection: near the float target means within this of it (0: only a stopped climb counts)",
              group=GROUP),
    ParamDecl("PH_FLOAT_NEAR_RT", float, 2.0, 0.05, 20.0, "m/s",
              "Float detection: near the float target, climbing slower than this (a fast ascent passes by)",
              group=GROUP),
)


@dataclass(frozen=True, slots=True)
class SelfTestResult:
    ok: bool
    failures: tuple[Failure, ...] = ()

    def describe(self) -> str:
        return "; ".join(f"{f.name}: {f.reason}" for f in self.failures) or "all checks pass"


class PhaseDecision(NamedTuple):  # immutable, and cheaper to build than a frozen dataclass
    """``phase`` is the phase for the next frame (``changed`` when it differs from the current one)."""

    phase: Phase
    changed: bool
    reason: str = ""
    selftest: SelfTestResult | None = None  # evaluated in PREFLIGHT only
    launch_blocked: bool = False  # launch detected in PREFLIGHT but the self-test fails without override
    ground_altitude_m: float = float("nan")
    dwells: tuple[DwellUpdate, ...] = ()


@dataclass(frozen=True, slots=True)
class PhaseRequestDecision:
    allowed: bool
    reason: str


def selftest(state, params, now_s: float) -> SelfTestResult:
    """PREFLIGHT self-test: configured sensors healthy, outputs safe, ground link up."""
    failures = []
    if not state.sensors_healthy:
        names = ", ".join(state.sensor_faults) if state.sensor_faults else "a configured sensor"
        failures.append(Failure("sensors", f"unhealthy: {names}"))
    if not state.outputs_safe:
        failures.append(Failure("outputs", "an actuator line is not in its safe state"))
    heard_s = state.link.gcs_heartbeat_s
    if not finite(heard_s):
        failures.append(Failure("link", "ground station never heard"))
    elif now_s - heard_s > params["PF_LINK_AGE_S"]:
        failures.append(Failure("link", f"ground station silent for {now_s - heard_s:.0f} s"))
    return SelfTestResult(not failures, tuple(failures))


def _ground_reference(state, params, now_s: float, climbing: bool) -> float:
    est = state.estimate
    ref = state.ground_altitude_m
    if not est.altitude_valid or not isfinite(est.altitude_m):
        return ref
    if not finite(ref):
        return est.altitude_m
    if climbing:
        return ref
    last_s = state.ground_altitude_s
    dt_s = max(0.0, now_s - last_s) if finite(last_s) else 0.0
    return ref + (est.altitude_m - ref) * min(1.0, dt_s / params["PH_GROUND_TAU"])


def float_target_m(state, params) -> float:
    """The float target altitude (MSL, m): the latched one (DO_CHANGE_ALTITUDE, or ALT_TARGET latched when the
    float began) or else the ``ALT_TARGET`` parameter."""
    target = state.latches.float_target_altitude_m
    return target if finite(target) else params["ALT_TARGET"]


def phase_decision(state, params, now_s: float) -> PhaseDecision:
    """The phase for the next frame from the current phase and the estimate."""
    phase = state.phase
    est = state.estimate
    rate_ok = est.vertical_rate_valid and isfinite(est.vertical_rate_mps)
    rate = est.vertical_rate_mps if rate_ok else 0.0
    alt_ok = est.altitude_valid and isfinite(est.altitude_m)

    if phase is PREFLIGHT:
        check = selftest(state, params, now_s)
        climbing = rate_ok and rate > params["PH_LAUNCH_RATE"]
        ground = _ground_reference(state, params, now_s, climbing)
        gained = alt_ok and finite(ground) and est.altitude_m - ground > params["PH_LAUNCH_GAIN"]
        by_rate, update_rate = dwell(state, "launch_rate", climbing, now_s, params["PH_LAUNCH_DWELL"])
        by_gain, update_gain = dwell(state, "launch_gain", gained, now_s, params["PH_LAUNCH_DWELL"])
        dwells = (update_rate, update_gain)
        if by_rate or by_gain:
            how = f"climbing at {rate:.1f} m/s" if by_rate else f"{est.altitude_m - ground:.0f} m above ground"
            if check.ok or state.latches.preflight_override:
                note = "" if check.ok else " (self-test overridden)"
                return PhaseDecision(ASCENT, True, f"launch detected: {how}{note}", check,
                                     ground_altitude_m=ground, dwells=dwells)
            return PhaseDecision(phase, False, f"launch detected ({how}) but self-test fails: {check.describe()}",
                                 check, launch_blocked=True, ground_altitude_m=ground, dwells=dwells)
        return PhaseDecision(phase, False, "", check, ground_altitude_m=ground, dwells=dwells)

    dwells: tuple[DwellUpdate, ...] = ()
    if phase in _DESCENT_DETECTED_IN:
        sinking = rate_ok and rate < -params["PH_DESC_RATE"]
        held, update = dwell(state, "descent", sinking, now_s, params["PH_DESC_DWELL"])
        dwells = (update,)
        if held:
            return PhaseDecision(DESCENT, True, f"descent detected: sinking at {-rate:.1f} m/s", dwells=dwells)

    if phase is ASCENT and params["FLT_MODE"] != FLOAT_NONE:
        high = rate_ok and alt_ok and est.altitude_m > params["PH_FLOAT_MIN_ALT"]
        stopped = high and rate < params["PH_FLOAT_RATE"]
        band = params["PH_FLOAT_NEAR"]
        near = high and band > 0.0 and abs(est.altitude_m - float_target_m(state, params)) <= band \
            and rate < params["PH_FLOAT_NEAR_RT"]
        held, update = dwell(state, "float", stopped or near, now_s, params["PH_FLOAT_DWELL"])
        dwells += (update,)
        if held:
            how = "climb stopped" if stopped else "near the target"
            return PhaseDecision(FLOAT, True, f"float detected at {est.altitude_m:.0f} m ({how}, {rate:+.1f} m/s)",
                                 dwells=dwells)

    if phase in _LANDING_DETECTED_IN:
        still = rate_ok and alt_ok and abs(rate) < params["PH_LAND_RATE"] \
            and est.altitude_m < params["PH_LAND_MAX_ALT"]
        held, update = dwell_with_reference(state, "landed", still, est.altitude_m if alt_ok else float("nan"),
                                            params["PH_LAND_ALT_CHG"], now_s, params["PH_LAND_DWELL"])
        dwells += (update,)
        if held:
            return PhaseDecision(LANDED, True, f"landed at {est.altitude_m:.0f} m", dwells=dwells)

    return _unchanged(phase, dwells)


_DESCENT_DETECTED_IN = frozenset((ASCENT, FLOAT, TERMINATION))
_LANDING_DETECTED_IN = frozenset((DESCENT, TERMINATION))
_last_unchanged: dict[Phase, PhaseDecision] = {}  # phase -> the last decision to stay in it


def _unchanged(phase: Phase, dwells: tuple[DwellUpdate, ...]) -> PhaseDecision:
    """The decision to stay in ``phase`` with these dwell updates.  The last such decision is handed out again
    while its updates are equal to these (most frames: the shared updates of conditions that do not hold)."""
    last = _last_unchanged.get(phase)
    if last is not None and last.dwells == dwells:
        return last
    decision = _last_unchanged[phase] = PhaseDecision(phase, False, "", dwells=dwells)
    return decision


#: DO_SET_MODE: the phases the ground may move the flight to from each phase.  TERMINATION is never entered by
#: a mode change (it has its own command), and PREFLIGHT is only the boot phase of a new flight.
ALLOWED_REQUESTS: dict[Phase, frozenset[Phase]] = {
    Phase.PREFLIGHT: frozenset({Phase.ASCENT}),
    Phase.ASCENT: frozenset({Phase.FLOAT, Phase.DESCENT}),
    Phase.FLOAT: frozenset({Phase.ASCENT, Phase.DESCENT}),
    Phase.DESCENT: frozenset({Phase.FLOAT, Phase.LANDED}),
    Phase.LANDED: frozenset({Phase.DESCENT}),
    Phase.TERMINATION: frozenset({Phase.DESCENT, Phase.LANDED}),
}


def phase_request(state, params, requested: Phase, now_s: float) -> PhaseRequestDecision:
    """May the ground move the flight from its current phase to ``requested``?

    Beyond the table: FLOAT needs ``FLT_MODE`` to say the flight floats; after termination only DESCENT and
    LANDED are reachable; leaving PREFLIGHT needs the self-test to pass or the preflight override; LANDED needs
    the estimate to agree -- a valid altitude below ``PH_LAND_MAX_ALT`` and a valid vertical rate within
    ``PH_LAND_RATE`` of zero -- so that no label can take a flight in the air out of the automatic termination
    reasons.
    """
    current = state.phase
    if requested == current:
        return PhaseRequestDecision(True, f"already in {current.name}")
    if requested is Phase.TERMINATION:
        return PhaseRequestDecision(False, "TERMINATION is entered with the flight termination command only")
    if state.latches.termination_fired and requested not in (Phase.DESCENT, Phase.LANDED):
        return PhaseRequestDecision(False, f"terminated: only DESCENT or LANDED, not {requested.name}")
    if requested not in ALLOWED_REQUESTS[current]:
        allowed = ", ".join(p.name for p in sorted(ALLOWED_REQUESTS[current])) or "nothing"
        return PhaseRequestDecision(False, f"{current.name} -> {requested.name} not permitted (allowed: {allowed})")
    if requested is Phase.LANDED:
        est = state.estimate
        if not (est.altitude_valid and isfinite(est.altitude_m) and est.altitude_m < params["PH_LAND_MAX_ALT"]):
            return PhaseRequestDecision(False, "LANDED needs a valid altitude below PH_LAND_MAX_ALT "
                                               f"({params['PH_LAND_MAX_ALT']:.0f} m)")
        if not (est.vertical_rate_valid and isfinite(est.vertical_rate_mps)
                and abs(est.vertical_rate_mps) < params["PH_LAND_RATE"]):
            return PhaseRequestDecision(False, "LANDED needs a valid vertical rate within PH_LAND_RATE "
                                               f"({params['PH_LAND_RATE']:g} m/s) of zero")
    if requested is Phase.FLOAT and params["FLT_MODE"] == FLOAT_NONE:
        return PhaseRequestDecision(False, "FLOAT needs FLT_MODE 1 or 2 (this flight does not float)")
    if current is Phase.PREFLIGHT and not state.latches.preflight_override:
        check = selftest(state, params, now_s)
        if not check.ok:
            return PhaseRequestDecision(False, f"self-test fails ({check.describe()}); override it first")
    return PhaseRequestDecision(True, f"{current.name} -> {requested.name} by ground command")
