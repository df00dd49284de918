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

Two steps: ARM is accepted only when all criteria hold; FIRE only within `REL_ARM_TMO_S` of arming, at least a
frame after it, with the criteria still true.  The criteria are checked every frame while armed: any failing one,
the arm timeout or a termination disarms, and says why.  The release fires at most once (latched before the line
is driven, persisted).  Separation is confirmed by a lift change (`estimate.lift_change_mps2`) of at least
`REL_SEP_LIFT`, or a rise of the vertical rate of at least `REL_SEP_DV` since firing, within `REL_SEP_WIN_S` of
firing, or by the separation switch; otherwise it is reported as not
seen.  With `REL_AUTO` the flight software arms and fires by itself when all criteria hold (a ground GO within its
window is still one of them).
"""

from __future__ import annotations

from dataclasses import dataclass

from flightsw.geo import in_daily_window, point_in_polygon
from flightsw.params import ParamDecl, bool_param
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
)

CRITERIA = ("phase", "altitude", "launch_box", "gps_fix", "vertical_rate", "link", "ground_go", "bus_voltage",
            "temperature", "time_of_day")


class Action:
    NONE = "none"
    ARM = "arm"  # autonomous arming
    FIRE = "fire"  # autonomous firing
    DISARM = "disarm"
    SEPARATED = "separated"
    SEPARATION_TIMEOUT = "separation_timeout"


@dataclass(frozen=True, slots=True)
class CriteriaResult:
    ok: bool
    failures: tuple[Failure, ...] = ()

    @property
    def failing(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.failures)

    def describe(self) -> str:
        return "; ".join(f"{f.name}: {f.reason}" for f in self.failures) or "all criteria hold"


@dataclass(frozen=True, slots=True)
class ReleaseDecision:
    action: str
    reason: str = ""
    criteria: CriteriaResult | None = None


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


_NOTHING_TO_DO = ReleaseDecision(Action.NONE)  # shared: after the release or the termination, frame after frame


def release_decision(state, params, now_s: float, mission) -> ReleaseDecision:
    """What the release logic does this frame (disarm, autonomous arm/fire, separation confirmation)."""
    latches = state.latches
    if latches.release_fired:
        if latches.separation_confirmed or latches.separation_timed_out:
            return _NOTHING_TO_DO
        if state.separation_switch_active:
            return ReleaseDecision(Action.SEPARATED, "separation switch open")
        fired_s = state.release_fired_s
        if not finite(fired_s):
            return ReleaseDecision(Action.SEPARATION_TIMEOUT, "restarted after the release: separation not seen")
        within = now_s - fired_s <= params["REL_SEP_WIN_S"]
        est = state.estimate
        lift = est.lift_change_mps2
        if within and finite(lift) and lift >= params["REL_SEP_LIFT"]:
            return ReleaseDecision(Action.SEPARATED, f"lift change {lift:.2f} m/s^2")
        rise = est.vertical_rate_mps - state.release_fired_rate_mps
        if within and est.vertical_rate_valid and finite(rise) and rise >= params["REL_SEP_DV"]:
            return ReleaseDecision(Action.SEPARATED, f"vertical rate up {rise:.1f} m/s since firing")
        if not within:
            return ReleaseDecision(Action.SEPARATION_TIMEOUT,
                                   f"no separation within {params['REL_SEP_WIN_S']:.0f} s of firing")
        return _NOTHING_TO_DO

    armed = latches.release_armed
    if latches.termination_fired:
        return ReleaseDecision(Action.DISARM, "flight terminated") if armed else _NOTHING_TO_DO

    criteria = release_criteria(state, params, now_s, mission)
    if armed:
        if not criteria.ok:
            return ReleaseDecision(Action.DISARM, criteria.describe(), criteria)
        armed_s = state.release_armed_s
        if finite(armed_s) and now_s - armed_s > params["REL_ARM_TMO_S"]:
            return ReleaseDecision(Action.DISARM, f"not fired within {params['REL_ARM_TMO_S']:.0f} s of arming",
                                   criteria)
        if params["REL_AUTO"] and finite(armed_s) and now_s > armed_s:
            return ReleaseDecision(Action.FIRE, "autonomous release: all criteria hold", criteria)
        return ReleaseDecision(Action.NONE, "armed", criteria)
    if params["REL_AUTO"] and criteria.ok:
        return ReleaseDecision(Action.ARM, "autonomous release: window reached", criteria)
    return ReleaseDecision(Action.NONE, "", criteria)


def _hhmm(seconds: float) -> str:
    seconds = int(seconds) % 86400
    return f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}"
