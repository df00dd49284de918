"""Release of the payload (near-space launch): launch-commit criteria and the ARM -> FIRE -> separation logic.

`release_criteria` checks every launch-commit criterion, each a declared parameter, and lists the failing
ones by name with a reason:

* `phase` — ASCENT or FLOAT (never before launch, after termination, in descent or on the ground);
* `altitude` — valid and inside `REL_ALT_MIN` .. `REL_ALT_MAX`;
* `launch_box` — position valid and inside the mission's launch-box polygon (no box: never);
* `gps_fix` — a 3-D fix with at least `REL_MIN_SATS` satellites;
* `vertical_rate` — valid and inside `REL_RATE_MIN` .. `REL_RATE_MAX`;
* `link` — our ground station heard within `REL_LINK_AGE_S`;
* `ground_go` — a ground GO received within `REL_GO_WINDOW_S`;
* `bus_voltage` — inside `REL_VOLT_MIN` .. `REL_VOLT_MAX`;
* `temperature` — every temperature inside `REL_TEMP_MIN` .. `REL_TEMP_MAX`;
* `time_of_day` — only with `REL_TOD_EN`: GPS UTC time of day inside `REL_TOD_START` .. `REL_TOD_END`
  (seconds after midnight; a start after the end wraps over midnight).

Two steps: ARM is accepted only when all criteria hold; FIRE only within `REL_ARM_TMO_S` of arming, once the
chain is ready (armed in an earlier frame, settled, ARM read back), with the criteria still true.  The criteria are
checked every frame while armed: any failing one or the arm timeout disarms, and says why (an ARM write that fails
is tried again every frame until then); a termination disarms
an armed release that is not burning (a burn in progress completes: a half-burned release is worse than either).
The release fires at most once: the fire is committed (written to the journal) before the line is driven, and a
committed release never fires again after a restart.  Within one boot a FIRE write that fails with the line
reading back inactive burned nothing, so the same firing is tried again, up to `REL_FIRE_RETRIES` times.
Separation is confirmed by a lift change (`estimate.lift_change_mps2`) of at least `REL_SEP_LIFT`, or a rise of
the vertical rate of at least `REL_SEP_DV` since firing, within `REL_SEP_WIN_S` of firing, or by the separation
switch; otherwise it is reported as not seen.  With `REL_AUTO` the flight software arms and fires by itself when
all criteria hold (a ground GO within its window is still one of them).

`release_step(state, inputs, params) -> (state', commands, events)` is the per-frame sequence, a pure function of
the state, the criteria, and the actuator manager's report on the previous frame; `release_request` answers the
ground's ARM / FIRE / DISARM the same way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

from flightsw.geo import in_daily_window, point_in_polygon
from flightsw.params import ParamConstraint, ParamDecl, at_most, bool_param
from flightsw.phase import Phase
from flightsw.rules import Failure, finite

GROUP = "release"

RELEASE_PARAMS: tuple[ParamDecl, ...] = (
    ParamDecl("REL_ALT_MIN", float, 25000.0, 0.0, 45000.0, "m", "Release window: lowest altitude (MSL)",
              group=GROUP),
    ParamDecl("REL_ALT_MAX", float, 32000.0, 0.0, 45000.0, "m", "Release window: highest altitude (MSL)",
              group=GROUP),
    ParamDecl("REL_MIN_SATS", int, 6, 3, 40, "", "Release: satellites needed with the 3-D fix", group=GROUP),
    ParamDecl("REL_RATE_MIN", float, -1.0, -20.0, 20.0, "m/s", "Release: lowest vertical rate (up positive)",
              group=GROUP),
    ParamDecl("REL_RATE_MAX", float, 6.0, -20.0, 20.0, "m/s", "Release: highest vertical rate (up positive)",
              group=GROUP),
    ParamDecl("REL_LINK_AGE_S", float, 10.0, 1.0, 86400.0, "s",
              "Release: our ground station heard within this time", group=GROUP),
    ParamDecl("REL_GO_WINDOW_S", float, 300.0, 10.0, 86400.0, "s",
              "Release: a ground GO is valid for this long", group=GROUP),
    ParamDecl("REL_VOLT_MIN", float, 6.6, 0.0, 60.0, "V", "Release: lowest bus voltage", group=GROUP),
    ParamDecl("REL_VOLT_MAX", float, 30.0, 0.0, 60.0, "V", "Release: highest bus voltage", group=GROUP),
    ParamDecl("REL_TEMP_MIN", float, -40.0, -100.0, 100.0, "degC", "Release: lowest temperature of any sensor",
              group=GROUP),
    ParamDecl("REL_TEMP_MAX", float, 60.0, -100.0, 150.0, "degC", "Release: highest temperature of any sensor",
              group=GROUP),
    bool_param("REL_TOD_EN", False, "Release: also require a UTC time-of-day window", group=GROUP),
    ParamDecl("REL_TOD_START", float, 0.0, 0.0, 86399.0, "s", "Release window start, seconds after UTC midnight",
              group=GROUP),
    ParamDecl("REL_TOD_END", float, 86399.0, 0.0, 86399.0, "s", "Release window end, seconds after UTC midnight",
              group=GROUP),
    ParamDecl("REL_ARM_TMO_S", float, 120.0, 5.0, 3600.0, "s", "Release: disarm if not fired within this time",
              group=GROUP),
    ParamDecl("REL_BURN_S", float, 5.0, 0.5, 10.0, "s", "Release burn-wire firing time (ACT_BURN_MAX_S caps it)",
              group=GROUP),
    ParamDecl("REL_SEP_LIFT", float, 0.5, 0.01, 50.0, "m/s^2",
              "Separation confirmed by a lift change at least this large", group=GROUP),
    ParamDecl("REL_SEP_WIN_S", float, 30.0, 1.0, 600.0, "s", "Separation must be seen within this after firing",
              group=GROUP),
    bool_param("REL_AUTO", False, "Autonomous release: arm and fire when all criteria hold", group=GROUP),
    ParamDecl("REL_SEP_DV", float, 1.0, 0.05, 50.0, "m/s",
              "Separation confirmed by the vertical rate rising at least this much above its value at firing "
              "(the lighter balloon climbs faster)", group=GROUP),
    ParamDecl("REL_FIRE_RETRIES", int, 5, 0, 50, "",
              "A release FIRE write that fails with the line reading back inactive is tried again this many times",
              group=GROUP),
)

RELEASE_CONSTRAINTS: tuple[ParamConstraint, ...] = (
    at_most("REL_BURN_S", "ACT_BURN_MAX_S", why="the release burn would be cut short"),
    at_most("REL_ALT_MIN", "REL_ALT_MAX"),
    at_most("REL_RATE_MIN", "REL_RATE_MAX"),
    at_most("REL_VOLT_MIN", "REL_VOLT_MAX"),
    at_most("REL_TEMP_MIN", "REL_TEMP_MAX"),
)

CRITERIA = ("phase", "altitude", "launch_box", "gps_fix", "vertical_rate", "link", "ground_go", "bus_voltage",
            "temperature", "time_of_day")


@dataclass(frozen=True, slots=True)
class CriteriaResult:
    ok: bool
    failures: tuple[Failure, ...] = ()

    @property
    def failing(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.failures)

    def describe(self) -> str:
        return "; ".join(f"{f.name}: {f.reason}" for f in self.failures) or "all criteria hold"


def release_criteria(state, params, now_s: float, mission) -> CriteriaResult:
    """Every launch-commit criterion; the result lists each failing one.

    :param mission: the :class:`~flightsw.config.flight.MissionConfig` (its ``launch_box`` polygon).
    """
    est = state.estimate
    failures: list[Failure] = []

    def fail(name: str, reason: str) -> None:
        failures.append(Failure(name, reason))

    if state.phase not in (Phase.ASCENT, Phase.FLOAT):
        fail("phase", f"not in ASCENT or FLOAT ({state.phase.name})")

    low, high = params["REL_ALT_MIN"], params["REL_ALT_MAX"]
    if not (est.altitude_valid and finite(est.altitude_m)):
        fail("altitude", "no valid altitude")
    elif not low <= est.altitude_m <= high:
        fail("altitude", f"{est.altitude_m:.0f} m outside {low:.0f}..{high:.0f} m")

    box = tuple(getattr(mission, "launch_box", ()) or ())
    if len(box) < 3:
        fail("launch_box", "no launch box configured")
    elif not (est.position_valid and finite(est.latitude_deg, est.longitude_deg)):
        fail("launch_box", "no valid position")
    elif not point_in_polygon(est.latitude_deg, est.longitude_deg, box):
        fail("launch_box", f"{est.latitude_deg:.5f}, {est.longitude_deg:.5f} outside the launch box")

    if est.fix_type < 3 or not est.position_valid:
        fail("gps_fix", f"no 3-D fix (fix type {est.fix_type})")
    elif est.satellites < params["REL_MIN_SATS"]:
        fail("gps_fix", f"{est.satellites} satellites, need {params['REL_MIN_SATS']}")

    low, high = params["REL_RATE_MIN"], params["REL_RATE_MAX"]
    if not (est.vertical_rate_valid and finite(est.vertical_rate_mps)):
        fail("vertical_rate", "no valid vertical rate")
    elif not low <= est.vertical_rate_mps <= high:
        fail("vertical_rate", f"{est.vertical_rate_mps:.1f} m/s outside {low:.1f}..{high:.1f} m/s")

    heard_s = state.link.gcs_heartbeat_s
    if not finite(heard_s):
        fail("link", "ground station never heard")
    elif now_s - heard_s > params["REL_LINK_AGE_S"]:
        fail("link", f"ground station silent for {now_s - heard_s:.0f} s")

    go_s = state.link.go_s
    if not finite(go_s):
        fail("ground_go", "no ground GO")
    elif not 0.0 <= now_s - go_s <= params["REL_GO_WINDOW_S"]:
        fail("ground_go", f"ground GO is {now_s - go_s:.0f} s old (valid {params['REL_GO_WINDOW_S']:.0f} s)")

    low, high = params["REL_VOLT_MIN"], params["REL_VOLT_MAX"]
    if not (est.power_valid and finite(est.bus_voltage_v)):
        fail("bus_voltage", "no valid bus voltage")
    elif not low <= est.bus_voltage_v <= high:
        fail("bus_voltage", f"{est.bus_voltage_v:.2f} V outside {low:.2f}..{high:.2f} V")

    low, high = params["REL_TEMP_MIN"], params["REL_TEMP_MAX"]
    # A sensor with no valid reading (NaN: unhealthy, stale, or a barometer outside its rated pressure range) is
    # left out; at least one valid temperature is needed and every valid one must be in range.
    temps = [t for t in est.temperatures_c if finite(t)] if est.temperature_valid else []
    if not temps:
        fail("temperature", "no valid temperatures")
    else:
        outside = [t for t in temps if not low <= t <= high]
        if outside:
            fail("temperature", f"{', '.join(f'{t:.1f}' for t in outside)} degC outside {low:.0f}..{high:.0f} degC")

    if params["REL_TOD_EN"]:
        start, end = params["REL_TOD_START"], params["REL_TOD_END"]
        if not finite(est.gps_utc_time_s):
            fail("time_of_day", "no GPS UTC time")
        elif not in_daily_window(est.gps_utc_time_s, start, end):
            tod = est.gps_utc_time_s % 86400.0
            fail("time_of_day", f"{_hhmm(tod)} UTC outside {_hhmm(start)}..{_hhmm(end)}")

    return CriteriaResult(not failures, tuple(failures))


NAN = math.nan


class ReleaseState(NamedTuple):
    """The release sequence's state.  ``armed`` .. ``separation_timed_out`` are persisted (the journal's
    ``release_*`` latches; ``armed`` is never restored); the rest live for one boot."""

    armed: bool = False
    armed_s: float = NAN
    fired: bool = False  # committed: never fired again
    fired_s: float = NAN
    burn_confirmed: bool = False
    reason: str = ""
    separation_confirmed: bool = False
    separation_timed_out: bool = False
    pending: bool = False  # committed in this boot, burn not seen to start: fired again
    write_faults: int = 0
    auto_blocked: bool = False  # an autonomous release failed: ground commands only from now on
    fired_rate_mps: float = NAN  # the vertical rate when it fired (this boot)
    problem: str = ""


class ReleaseReport(NamedTuple):
    """The actuator manager's answer to the previous frame's commands, and the release chain now."""

    armed: bool = False
    ready: str = "not armed"  # why a fire would be refused now ("" when it would fire)
    firing: bool = False
    arm_failed: bool = False
    fire_result: str = ""  # "started", "write_failed", "refused", or "" when no fire was commanded
    fire_reason: str = ""


class ReleaseInputs(NamedTuple):
    now_s: float
    criteria: CriteriaResult | None  # None when the release is fired or terminated (not needed)
    terminated: bool = False
    report: ReleaseReport = ReleaseReport()
    switch_active: bool = False  # the separation switch
    lift_change_mps2: float = NAN
    vertical_rate_mps: float = NAN
    vertical_rate_valid: bool = False


class Command(NamedTuple):
    kind: str  # "arm", "fire", "disarm"


class Event(NamedTuple):
    name: str
    severity: str
    text: str


class Outcome(NamedTuple):
    """A ground request's answer: ``result`` is a flight-logic outcome name (``ACCEPTED``, ``DENIED``, ...)."""

    result: str
    text: str


def release_step(state: ReleaseState, inputs: ReleaseInputs, params) -> tuple[ReleaseState, tuple[Command, ...],
                                                                              tuple[Event, ...]]:
    """One frame of the release sequence: a fire that must be tried again, separation, disarming, and the
    autonomous release."""
    commands: list[Command] = []
    events: list[Event] = []
    report, now_s = inputs.report, inputs.now_s
    if state.fired:
        if state.pending:
            state = _retry_fire(state, inputs, params, commands, events)
        elif not (state.separation_confirmed or state.separation_timed_out):
            state = _separation(state, inputs, params, events)
        if state.armed and not state.pending and not report.firing:
            commands.append(Command("disarm"))
            state = state._replace(armed=False, armed_s=NAN)
        return state, tuple(commands), tuple(events)
    if inputs.terminated:
        if state.armed and not report.firing:
            commands.append(Command("disarm"))
            events.append(Event("disarm", "warning", "release disarmed: flight terminated"))
            state = state._replace(armed=False, armed_s=NAN)
        return state, tuple(commands), tuple(events)
    criteria = inputs.criteria
    if state.armed:
        why = ""
        if criteria is not None and not criteria.ok:
            why = criteria.describe()
        elif math.isfinite(state.armed_s) and now_s - state.armed_s > params["REL_ARM_TMO_S"]:
            why = f"not fired within {params['REL_ARM_TMO_S']:.0f} s of arming"
        if why:
            commands.append(Command("disarm"))
            events.append(Event("disarm", "warning", f"release disarmed: {why}"))
            return state._replace(armed=False, armed_s=NAN), tuple(commands), tuple(events)
        if not report.armed:  # the ARM write failed (or the line dropped): armed again, until the arm timeout
            commands.append(Command("arm"))
            if report.arm_failed and state.problem != "release ARM line write failed: arming again":
                events.append(Event("release_problem", "error", "release ARM line write failed: arming again"))
                state = state._replace(problem="release ARM line write failed: arming again")
            return state, tuple(commands), tuple(events)
        if params["REL_AUTO"] and not state.auto_blocked and not report.ready:
            return _commit(state, inputs, "autonomous release: all criteria hold", commands, events)
        return state, tuple(commands), tuple(events)
    if params["REL_AUTO"] and not state.auto_blocked and criteria is not None and criteria.ok:
        commands.append(Command("arm"))
        events.append(Event("arm", "warning", "release ARMED: autonomous release: window reached"))
        state = state._replace(armed=True, armed_s=now_s)
    return state, tuple(commands), tuple(events)


def _commit(state: ReleaseState, inputs: ReleaseInputs, why: str, commands: list, events: list):
    """Commit the release (the glue writes it to the journal before it drives the line) and fire it."""
    commands.append(Command("fire"))
    state = state._replace(fired=True, fired_s=inputs.now_s, reason=why, pending=True,
                           fired_rate_mps=inputs.vertical_rate_mps if inputs.vertical_rate_valid else NAN)
    return state, tuple(commands), tuple(events)


def _retry_fire(state: ReleaseState, inputs: ReleaseInputs, params, commands: list, events: list) -> ReleaseState:
    report = inputs.report
    if report.fire_result == "started":
        events.append(Event("release_fired", "critical", f"RELEASE FIRED: {state.reason}"))
        return state._replace(pending=False, burn_confirmed=True, problem="")
    if report.fire_result in ("write_failed", "refused"):
        faults = state.write_faults + 1
        if faults > params["REL_FIRE_RETRIES"]:
            events.append(Event("release_failed", "error", f"RELEASE NOT FIRED: the FIRE line failed {faults} times "
                                                           f"({report.fire_reason or report.fire_result}); it will "
                                                           "not be tried again"))
            commands.append(Command("disarm"))
            return state._replace(pending=False, write_faults=faults, armed=False, auto_blocked=True)
        state = state._replace(write_faults=faults)
        text = f"release FIRE line failed ({report.fire_reason or report.fire_result}): firing again"
        if state.problem != text:
            events.append(Event("release_problem", "error", text))
            state = state._replace(problem=text)
    if not report.armed:
        commands.append(Command("arm"))
    elif not report.ready:
        commands.append(Command("fire"))
    return state


def _separation(state: ReleaseState, inputs: ReleaseInputs, params, events: list) -> ReleaseState:
    if inputs.switch_active:
        events.append(Event("separation_confirmed", "notice", "release separation confirmed: separation switch open"))
        return state._replace(separation_confirmed=True)
    fired_s = state.fired_s
    if not finite(fired_s):
        events.append(Event("separation_not_seen", "warning",
                            "release separation not confirmed: the firing time is not known"))
        return state._replace(separation_timed_out=True)
    within = inputs.now_s - fired_s <= params["REL_SEP_WIN_S"]
    lift = inputs.lift_change_mps2
    if within and finite(lift) and lift >= params["REL_SEP_LIFT"]:
        events.append(Event("separation_confirmed", "notice",
                            f"release separation confirmed: lift change {lift:.2f} m/s^2"))
        return state._replace(separation_confirmed=True)
    rise = inputs.vertical_rate_mps - state.fired_rate_mps
    if within and inputs.vertical_rate_valid and finite(rise) and rise >= params["REL_SEP_DV"]:
        events.append(Event("separation_confirmed", "notice",
                            f"release separation confirmed: vertical rate up {rise:.1f} m/s since firing"))
        return state._replace(separation_confirmed=True)
    if not within:
        events.append(Event("separation_not_seen", "warning", "release separation not confirmed: none within "
                                                              f"{params['REL_SEP_WIN_S']:.0f} s of firing"))
        return state._replace(separation_timed_out=True)
    return state


def release_request(state: ReleaseState, inputs: ReleaseInputs, params, request: str, why: str):
    """The ground's ``"arm"``, ``"fire"`` or ``"disarm"`` (``why``: for the event log): ``(outcome, state',
    commands, events)``.  The criteria in ``inputs`` must be evaluated now."""
    report, now_s = inputs.report, inputs.now_s
    if request == "disarm":
        events = (Event("disarm", "warning", f"release disarmed: {why}"),) if state.armed else ()
        return Outcome("ACCEPTED", "release disarmed"), state._replace(armed=False, armed_s=NAN), \
            (Command("disarm"),), events
    if state.fired:
        return Outcome("DENIED", "release already fired"), state, (), ()
    if inputs.terminated:
        return Outcome("DENIED", "flight terminated"), state, (), ()
    criteria = inputs.criteria
    if request == "arm":
        if state.armed:
            return Outcome("ACCEPTED", "release already armed"), state, (), ()
        if criteria is None or not criteria.ok:
            return Outcome("DENIED", f"release criteria fail: {criteria.describe() if criteria else '?'}"), \
                state, (), ()
        events = (Event("arm", "warning", f"release ARMED: {why}"),)
        return Outcome("ACCEPTED", f"release armed; fire within {params['REL_ARM_TMO_S']:.0f} s"), \
            state._replace(armed=True, armed_s=now_s), (Command("arm"),), events
    if request != "fire":
        return Outcome("UNSUPPORTED", f"unknown release request {request!r}"), state, (), ()
    if not state.armed or not report.armed:
        return Outcome("DENIED", "release not armed"), state, (), ()
    disarm = state._replace(armed=False, armed_s=NAN)
    if math.isfinite(state.armed_s) and now_s - state.armed_s > params["REL_ARM_TMO_S"]:
        return Outcome("DENIED", "arm timed out: release disarmed"), disarm, (Command("disarm"),), \
            (Event("disarm", "warning", "release disarmed: arm timeout"),)
    if criteria is None or not criteria.ok:
        text = criteria.describe() if criteria else "?"
        return Outcome("DENIED", f"release criteria fail, disarmed: {text}"), disarm, (Command("disarm"),), \
            (Event("disarm", "warning", f"release disarmed: {text}"),)
    if report.ready:
        return Outcome("TEMPORARILY_REJECTED", f"release chain not ready ({report.ready}): fire again"), state, (), ()
    state, commands, events = _commit(state, inputs, why, [], [])
    return Outcome("ACCEPTED", "release fired"), state, commands, events


def _hhmm(seconds: float) -> str:
    seconds = int(seconds) % 86400
    return f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}"
