"""Float altitude control: hold a target altitude with ballast (up) and the vent valve (down).

Active only in FLOAT, for floating flights (`FLT_MODE` 1 or 2), with `ALT_CTRL_EN`, before termination, with
a valid altitude and vertical rate.  The target is `latches.float_target_altitude_m` (latched from `ALT_TARGET`
when the float begins, or set by the ground's DO_CHANGE_ALTITUDE) or else `ALT_TARGET`.

* Outer loop: the altitude error beyond the deadband `ALT_DEADBAND` times `ALT_KP` is the commanded vertical
  rate, limited to +/- `ALT_RATE_MAX`.
* Inner loop, on the vertical rate smoothed over `ALT_RATE_TAU` (the caller smooths it): when the rate error
  (commanded minus measured) is beyond `ALT_RATE_DB`, the lift change wanted is
  `ALT_LIFT_GAIN * (command * |command| - rate * |rate|)` kg.  A slack balloon's drag grows with the square of
  its rate, so this is the lift that takes it from the rate it has to the rate commanded: it stops a 1 m/s sink
  with `ALT_LIFT_GAIN` kg, a 0.3 m/s sink with a tenth of that.  Positive: drop that much ballast (pulse = kg /
  `BAL_FLOW_KGPS`, the actuators' ballast flow); negative: vent (pulse = kg / `ALT_VENT_FLOW`).  A pulse lasts
  at least `ALT_PULSE_MIN` and at most `ALT_PULSE_MAX`, and pulses start at least `ALT_PULSE_INT` apart so the
  balloon can respond.
* Ballast is dropped only when the balloon is at most `ALT_BAL_BAND` above the target (never to fight a sink
  from above it), never below `ALT_BAL_MIN_ALT`, and never out of the reserve: the controller may spend only
  `ALT_BAL_TOTAL - ALT_BAL_RESERVE - used`.  The reserve is for the termination dump and a safe landing.
* Gas is vented only when the balloon is more than `ALT_VENT_BAND` above the target: on a zero-pressure balloon
  vented gas is lost for good and every kg of lift vented by day costs ballast at night.  The gap between
  `ALT_BAL_BAND` and `ALT_VENT_BAND` keeps a vent and a drop from chasing each other.

Sizing for a zero-pressure balloon at 25-30 km: a slack envelope has no restoring force, so any lift left over
is a steady rate (about 1 m/s for `ALT_LIFT_GAIN` = 0.12 kg on a 4000 m3 balloon).  The sunset takes some 8 %
of the gross lift over an hour or two as the gas cools, the sunrise gives it back: the rate loop drops ballast
through the dusk and vents through the dawn in many small pulses as the rate appears, before the altitude error
grows.  The pulse limits cap the drop rate at `ALT_PULSE_MAX / ALT_PULSE_INT * BAL_FLOW_KGPS`, so the ballast
goes progressively instead of in one panicked dump.  `ALT_VENT_FLOW` is the valve's lift loss at float (measure
it: too high a value under-vents, too low over-vents and costs ballast).  `ALT_BAL_TOTAL` defaults to 0 (no
ballast declared): set it to the ballast actually carried or the controller will not drop any.
"""

from __future__ import annotations

from typing import NamedTuple
from functools import lru_cache
from math import isfinite

from flightsw.params import ParamConstraint, ParamDecl, at_most, bool_param
from flightsw.phase import FLOAT, Phase
from flightsw.rules import NAN, clamp, finite
from flightsw.rules.phases import FLOAT_NONE, float_target_m

GROUP = "altitude"

ALTITUDE_PARAMS: tuple[ParamDecl, ...] = (
    bool_param("ALT_CTRL_EN", True, "Altitude control in FLOAT", group=GROUP),
    ParamDecl("ALT_TARGET", float, 28000.0, 5000.0, 45000.0, "m",
              "Float target altitude (MSL) unless the ground sets one", group=GROUP),
    ParamDecl("ALT_DEADBAND", float, 150.0, 0.0, 5000.0, "m", "Altitude error ignored by the outer loop",
              group=GROUP),
    ParamDecl("ALT_KP", float, 0.003, 0.0001, 0.1, "1/s",
              "Outer loop: commanded rate per metre of altitude error beyond the deadband", group=GROUP),
    ParamDecl("ALT_RATE_MAX", float, 1.0, 0.05, 10.0, "m/s", "Outer loop: commanded rate limit", group=GROUP),
    ParamDecl("ALT_RATE_DB", float, 0.3, 0.0, 5.0, "m/s", "Inner loop: rate error ignored", group=GROUP),
    ParamDecl("ALT_LIFT_GAIN", float, 0.12, 0.001, 100.0, "kg/(m/s)^2",
              "Inner loop: free lift that keeps the floating balloon moving at 1 m/s (drag grows with the rate "
              "squared; about rho Cd A / 2 g at float)", group=GROUP),
    ParamDecl("ALT_VENT_FLOW", float, 0.01, 0.0001, 10.0, "kg/s", "Lift lost per second of open vent valve",
              group=GROUP),
    ParamDecl("ALT_PULSE_MIN", float, 0.5, 0.1, 60.0, "s", "Shortest controller valve pulse", group=GROUP),
    ParamDecl("ALT_PULSE_MAX", float, 30.0, 1.0, 600.0, "s", "Longest controller valve pulse", group=GROUP),
    ParamDecl("ALT_PULSE_INT", float, 75.0, 5.0, 3600.0, "s", "Least time between controller pulse starts",
              group=GROUP),
    ParamDecl("ALT_VENT_BAND", float, 200.0, 0.0, 5000.0, "m", "Vent only when this far above the target",
              group=GROUP),
    ParamDecl("ALT_BAL_TOTAL", float, 0.0, 0.0, 5000.0, "kg", "Ballast carried at launch (0: none declared)",
              group=GROUP),
    ParamDecl("ALT_BAL_RESERVE", float, 1.0, 0.0, 5000.0, "kg",
              "Ballast the controller never spends (termination and landing)", group=GROUP),
    ParamDecl("ALT_BAL_MIN_ALT", float, 1000.0, 0.0, 45000.0, "m", "Never drop ballast below this altitude (MSL)",
              group=GROUP),
    ParamDecl("GND_PULSE_MAX_S", float, 60.0, 0.1, 600.0, "s", "Longest valve pulse the ground may command",
              group=GROUP),
    ParamDecl("ALT_RATE_TAU", float, 20.0, 0.0, 600.0, "s",
              "Time constant of the vertical-rate smoothing the inner loop works on (0: the estimate as it is)",
              group=GROUP),
    ParamDecl("ALT_BAL_BAND", float, 0.0, 0.0, 5000.0, "m",
              "Drop ballast only when at most this far above the target (0: at or below it); keep it well "
              "below ALT_VENT_BAND so a vent and a drop never chase each other", group=GROUP),
)

ALTITUDE_CONSTRAINTS: tuple[ParamConstraint, ...] = (
    at_most("ALT_PULSE_MIN", "ALT_PULSE_MAX"),
    at_most("ALT_PULSE_MAX", "ACT_MAX_PULSE_S", why="the actuators would refuse the controller's longer pulses"),
    at_most("GND_PULSE_MAX_S", "ACT_MAX_PULSE_S", why="the actuators would refuse a longer ground pulse"),
)


class Action:
    NONE = "none"
    BALLAST = "ballast"
    VENT = "vent"


class AltitudeDecision(NamedTuple):  # immutable, and cheaper to build than a frozen dataclass
    """What the controller does this frame plus its internals for telemetry."""

    action: str = Action.NONE
    pulse_s: float = 0.0
    active: bool = False
    target_altitude_m: float = float("nan")
    error_m: float = float("nan")
    commanded_rate_mps: float = float("nan")
    rate_error_mps: float = float("nan")
    lift_change_kg: float = 0.0
    effort: float = 0.0  # -1 .. +1: signed pulse as a fraction of ALT_PULSE_MAX
    ballast_available_kg: float = 0.0
    reason: str = ""


_NOT_FLOATING = {phase: f"not floating ({phase.name})" for phase in Phase}


@lru_cache(maxsize=32)
def _idle(reason: str, ballast_available_kg: float) -> AltitudeDecision:
    """The decision of a controller that is not working (one shared instance: the same one frame after frame)."""
    return AltitudeDecision(ballast_available_kg=ballast_available_kg, reason=reason)


def ballast_available_kg(state, params) -> float:
    """Ballast the controller may still spend: total minus reserve minus used, not below zero."""
    available_kg = params["ALT_BAL_TOTAL"] - params["ALT_BAL_RESERVE"] - state.latches.ballast_used_kg
    return available_kg if available_kg > 0.0 else 0.0


def ballast_remaining_kg(state, params) -> float:
    """Ballast still on board (reserve included), not below zero."""
    return max(0.0, params["ALT_BAL_TOTAL"] - state.latches.ballast_used_kg)


def ballast_credit_after_restart(latches, now_s: float, flow_kgps: float) -> float:
    """Count, at a start, the ballast of a valve the journal saw open when it was last written, and return it
    (kg): the valve may have stayed open until now (the process died with it open) but not past its backstop, so
    the flow from the record's time until the earlier of the two is added to ``latches.ballast_used_kg`` -- never
    less than what was dropped.  Call it before the actuator manager is built from the latches."""
    open_until_s, since_s = latches.ballast_open_until_s, latches.met_s
    latches.ballast_open_until_s = NAN
    if not (finite(open_until_s) and finite(since_s)):
        return 0.0
    open_s = min(now_s, open_until_s) - since_s
    credit_kg = open_s * flow_kgps if open_s > 0.0 else 0.0
    latches.ballast_used_kg += credit_kg
    return credit_kg


def altitude_control(state, params, now_s: float, *, valve_busy: bool = False,
                     rate_mps: float | None = None) -> AltitudeDecision:
    """One step of the float altitude controller.

    :param valve_busy: a valve is open now (no new pulse is started).
    :param rate_mps: the vertical rate (m/s, up positive) the inner loop works on, normally the estimate's rate
        smoothed over ``ALT_RATE_TAU`` by the caller; None or NaN: the estimate's rate as it is.
    """
    available = ballast_available_kg(state, params)
    phase = state.phase
    if phase is not FLOAT:
        return _idle(_NOT_FLOATING[phase], available)
    if params["FLT_MODE"] == FLOAT_NONE or not params["ALT_CTRL_EN"]:
        return _idle("altitude control disabled", available)
    if state.latches.termination_fired:
        return _idle("terminated", available)
    est = state.estimate
    target = float_target_m(state, params)
    if not (est.altitude_valid and isfinite(est.altitude_m) and est.vertical_rate_valid
            and isfinite(est.vertical_rate_mps)):
        return AltitudeDecision(active=True, target_altitude_m=target, ballast_available_kg=available,
                                reason="no valid altitude or rate")

    rate = est.vertical_rate_mps if rate_mps is None or not finite(rate_mps) else rate_mps
    error = target - est.altitude_m
    band = params["ALT_DEADBAND"]
    excess = abs(error) - band
    beyond = (excess if excess > 0.0 else 0.0) * (1.0 if error > 0 else -1.0)
    command = clamp(params["ALT_KP"] * beyond, -params["ALT_RATE_MAX"], params["ALT_RATE_MAX"])
    rate_error = command - rate
    lift_kg = 0.0
    if abs(rate_error) > params["ALT_RATE_DB"]:
        lift_kg = params["ALT_LIFT_GAIN"] * (command * abs(command) - rate * abs(rate))
    action, pulse_s, effort, reason = _pulse(state, params, now_s, valve_busy, est.altitude_m, error, lift_kg,
                                             available)
    # positional, in the order of the fields: a decision is built every frame of the float
    return AltitudeDecision(action, pulse_s, True, target, error, command, rate_error, lift_kg, effort, available,
                            reason)


def _pulse(state, params, now_s: float, valve_busy: bool, altitude_m: float, error_m: float, lift_kg: float,
           available_kg: float) -> tuple[str, float, float, str]:
    """The valve pulse for the lift change the inner loop wants: ``(action, pulse_s, effort, reason)``."""
    if lift_kg == 0.0:
        return Action.NONE, 0.0, 0.0, "inside the deadbands"
    last_s = state.control.last_pulse_s
    if finite(last_s) and now_s - last_s < params["ALT_PULSE_INT"]:
        return Action.NONE, 0.0, 0.0, "waiting for the balloon to respond"
    if valve_busy:
        return Action.NONE, 0.0, 0.0, "valve busy"
    pulse_max = params["ALT_PULSE_MAX"]

    if lift_kg > 0.0:
        if error_m < -params["ALT_BAL_BAND"]:
            return Action.NONE, 0.0, 0.0, "above the target: letting it sink"
        if altitude_m < params["ALT_BAL_MIN_ALT"]:
            return Action.NONE, 0.0, 0.0, "below the lowest ballast altitude"
        flow = params["BAL_FLOW_KGPS"]
        if params["ALT_BAL_TOTAL"] <= 0.0 or flow <= 0.0:
            return Action.NONE, 0.0, 0.0, "no ballast declared (ALT_BAL_TOTAL, BAL_FLOW_KGPS)"
        pulse = min(max(lift_kg / flow, params["ALT_PULSE_MIN"]), pulse_max, available_kg / flow)
        if pulse < params["ALT_PULSE_MIN"]:
            return Action.NONE, 0.0, 0.0, "ballast down to the reserve"
        return Action.BALLAST, pulse, pulse / pulse_max, f"ballast {pulse:.1f} s for {lift_kg:.3f} kg of lift"

    if error_m > -params["ALT_VENT_BAND"]:
        return Action.NONE, 0.0, 0.0, "not far enough above the target to vent"
    pulse = min(max(-lift_kg / params["ALT_VENT_FLOW"], params["ALT_PULSE_MIN"]), pulse_max)
    return Action.VENT, pulse, -pulse / pulse_max, f"vent {pulse:.1f} s for {-lift_kg:.3f} kg of lift"
