"""Termination reasons: each alone, with and without its dwell, enabled and disabled, on mission time; when they
count (whenever the flight may be airborne); escalation during a termination.  The cutdown sequence itself is
tested in test_rules_cutdown.py."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest

from flightsw.dictionary import all_param_decls
from flightsw.params import Params
from flightsw.phase import Phase
from flightsw.rules.cutdown import dump_seconds
from flightsw.rules.termination import Reason, flight_duration_s, termination_check
from flightsw.state import FlightState

NOW = 100000.0
LAUNCH_S = NOW - 7200.0
FENCE = ((52.0, -1.0), (53.0, -1.0), (53.0, 1.0), (52.0, 1.0))
MISSION = SimpleNamespace(geofence=FENCE, launch_box=())


def make_params(**values) -> Params:
    params = Params(all_param_decls())
    params.set("FLT_MODE", 1)
    for name, value in values.items():
        ok, reason = params.set(name, value)
        assert ok, reason
    return params


def healthy_state(phase: Phase = Phase.FLOAT) -> FlightState:
    """A floating flight with nothing wrong: no reason holds."""
    state = FlightState(now_s=NOW, wall_time_s=0.0)  # the wall clock says 1970: nothing may notice
    state.latches.phase = int(phase)
    state.latches.launch_s = LAUNCH_S
    est = state.estimate
    est.altitude_m, est.altitude_valid = 27000.0, True
    est.vertical_rate_mps, est.vertical_rate_valid = 0.0, True
    est.latitude_deg, est.longitude_deg, est.position_valid = 52.5, 0.0, True
    est.bus_voltage_v, est.power_valid = 7.4, True
    state.link.gcs_heartbeat_s = NOW - 5.0
    return state


def _no_altitude(s):
    s.estimate.altitude_valid = False


def _ceiling(s):
    s.estimate.altitude_m = 41000.0


def _outside_fence(s):
    s.estimate.latitude_deg = 54.0


def _sinking(s):
    s.estimate.vertical_rate_mps = -8.0


def _battery(s):
    s.estimate.bus_voltage_v = 6.0


def _floor(s):
    s.estimate.altitude_m = 12000.0


# (reason, make the condition hold, dwell parameter, enable parameter, dumps ballast)
DWELL_REASONS = [
    (Reason.NO_ALTITUDE, _no_altitude, "TRM_NOALT_DWELL", "TRM_EN_NOALT", False),
    (Reason.CEILING, _ceiling, "TRM_CEIL_DWELL", "TRM_EN_CEIL", False),
    (Reason.GEOFENCE, _outside_fence, "TRM_FENCE_DWELL", "TRM_EN_FENCE", False),
    (Reason.UNCONTROLLED_DESCENT, _sinking, "TRM_BURST_DWELL", "TRM_EN_BURST", False),
    (Reason.BATTERY, _battery, "TRM_BATT_DWELL", "TRM_EN_BATT", False),
    (Reason.FLOAT_FLOOR, _floor, "TRM_FLOOR_DWELL", "TRM_EN_FLOOR", True),
]


def test_healthy_flight_does_not_terminate():
    decision = termination_check(healthy_state(), make_params(), NOW, MISSION)
    assert decision.reason == ""


@pytest.mark.parametrize("reason, breaks, dwell_name, enable, dumps", DWELL_REASONS)
def test_reason_triggers_after_its_dwell(reason, breaks, dwell_name, enable, dumps):
    params = make_params()
    state = healthy_state()
    breaks(state)
    state.dwell_since_s["trm_" + reason] = NOW - params[dwell_name]
    decision = termination_check(state, params, NOW, MISSION)
    assert decision.reason == reason
    assert decision.dump_ballast is dumps
    assert decision.text


@pytest.mark.parametrize("reason, breaks, dwell_name, enable, dumps", DWELL_REASONS)
def test_reason_waits_for_its_dwell(reason, breaks, dwell_name, enable, dumps):
    params = make_params()
    state = healthy_state()
    breaks(state)
    state.dwell_since_s["trm_" + reason] = NOW - params[dwell_name] + 1.0
    decision = termination_check(state, params, NOW, MISSION)
    assert decision.reason == ""
    started = {u.name: u.since_s for u in decision.dwells}
    assert started["trm_" + reason] == NOW - params[dwell_name] + 1.0


@pytest.mark.parametrize("reason, breaks, dwell_name, enable, dumps", DWELL_REASONS)
def test_reason_disabled_by_its_parameter(reason, breaks, dwell_name, enable, dumps):
    params = make_params(**{enable: 0})
    state = healthy_state()
    breaks(state)
    state.dwell_since_s["trm_" + reason] = NOW - 1e6
    assert termination_check(state, params, NOW, MISSION).reason == ""


def _link_silent(seconds):
    def breaks(s):
        s.link.gcs_heartbeat_s = NOW - seconds
    return breaks


def _flown(seconds):
    def breaks(s):
        s.latches.launch_s = NOW - seconds
    return breaks


@pytest.mark.parametrize("breaks, enable, expected", [
    (_link_silent(3601.0), "TRM_EN_LINK", Reason.LINK_LOST),
    (_link_silent(3599.0), "TRM_EN_LINK", ""),
    (_flown(259201.0), "TRM_EN_MAXDUR", Reason.MAX_DURATION),
    (_flown(259199.0), "TRM_EN_MAXDUR", ""),
])
def test_timeout_reasons(breaks, enable, expected):
    state = healthy_state()
    breaks(state)
    decision = termination_check(state, make_params(), NOW, MISSION)
    assert decision.reason == expected
    if expected:
        assert decision.dump_ballast
        assert termination_check(state, make_params(**{enable: 0}), NOW, MISSION).reason == ""


def test_lost_link_counts_only_from_the_launch():
    state = healthy_state(Phase.ASCENT)
    state.link.gcs_heartbeat_s = NOW - 10000.0  # last heard long before launch
    state.latches.launch_s = NOW - 100.0
    assert termination_check(state, make_params(), NOW, MISSION).reason == ""
    state.link.gcs_heartbeat_s = math.nan
    state.latches.launch_s = NOW - 4000.0
    assert termination_check(state, make_params(), NOW, MISSION).reason == Reason.LINK_LOST


@pytest.mark.parametrize("launch_s, duration_s", [(NOW - 300.0, 300.0), (math.nan, math.nan), (NOW, 0.0)])
def test_flight_duration_is_mission_time_since_the_latched_launch(launch_s, duration_s):
    state = healthy_state()
    state.latches.launch_s = launch_s
    for wall_s in (0.0, 1.7e9, 4e9):  # whatever the wall clock says
        state.wall_time_s = wall_s
        assert flight_duration_s(state, NOW) == pytest.approx(duration_s, nan_ok=True)


@pytest.mark.parametrize("limit_s, flown_s, fires", [(600.0, 599.99, False), (600.0, 600.0, False),
                                                     (600.0, 600.05, True)])
def test_max_duration_boundary(limit_s, flown_s, fires):
    state = healthy_state()
    _flown(flown_s)(state)
    reason = termination_check(state, make_params(TRM_MAX_FLT_S=limit_s), NOW, MISSION).reason
    assert (reason == Reason.MAX_DURATION) is fires


@pytest.mark.parametrize("phase", [Phase.PREFLIGHT, Phase.LANDED])
def test_automatic_reasons_do_not_count_on_the_ground(phase):
    state = healthy_state(phase)
    state.estimate.altitude_m = 500.0
    _link_silent(1e6)(state)
    state.estimate.bus_voltage_v = 5.0
    state.dwell_since_s["trm_battery"] = NOW - 1e6
    assert termination_check(state, make_params(), NOW, MISSION).reason == ""


@pytest.mark.parametrize("phase, setup, active", [
    (Phase.ASCENT, None, True),
    (Phase.FLOAT, None, True),
    (Phase.DESCENT, None, True),
    (Phase.TERMINATION, None, True),
    (Phase.PREFLIGHT, None, False),
    (Phase.PREFLIGHT, "launch_blocked", True),  # a launch detected but held by the self-test: airborne
    (Phase.LANDED, None, False),
    (Phase.LANDED, "high", True),  # LANDED well above PH_LAND_MAX_ALT is not landed
])
def test_no_phase_label_switches_the_automatic_reasons_off_while_airborne(phase, setup, active):
    """The ceiling (41 km here; TRM_CEIL_ALT 40 km) cuts whenever the flight may be airborne, whatever the label;
    on the ground (PREFLIGHT before a launch, LANDED low) nothing automatic counts."""
    state = healthy_state(phase)
    on_the_ground = phase in (Phase.PREFLIGHT, Phase.LANDED) and setup is None
    state.estimate.altitude_m = 500.0 if phase is Phase.LANDED and on_the_ground else 41000.0
    state.estimate.bus_voltage_v = 5.0 if on_the_ground else 7.4  # a reason that could hold on the ground
    state.launch_blocked = setup == "launch_blocked"
    for reason in ("trm_ceiling", "trm_battery"):
        state.dwell_since_s[reason] = NOW - 1e6
    reason = termination_check(state, make_params(), NOW, MISSION).reason
    assert (reason != "") is active


def test_burst_is_expected_in_a_latex_flight():
    state = healthy_state(Phase.ASCENT)
    _sinking(state)
    state.dwell_since_s["trm_" + Reason.UNCONTROLLED_DESCENT] = NOW - 1e3
    assert termination_check(state, make_params(FLT_MODE=0), NOW, MISSION).reason == ""
    assert termination_check(state, make_params(FLT_MODE=1), NOW, MISSION).reason == Reason.UNCONTROLLED_DESCENT


def test_float_floor_only_in_float():
    state = healthy_state(Phase.ASCENT)
    _floor(state)
    state.dwell_since_s["trm_" + Reason.FLOAT_FLOOR] = NOW - 1e6
    assert termination_check(state, make_params(), NOW, MISSION).reason == ""


def test_no_geofence_configured_never_breaches():
    state = healthy_state()
    _outside_fence(state)
    state.dwell_since_s["trm_geofence"] = NOW - 1e6
    empty = SimpleNamespace(geofence=(), launch_box=())
    assert termination_check(state, make_params(), NOW, empty).reason == ""


@pytest.mark.parametrize("gnd_dump", [0, 1])
def test_ground_command_always_terminates(gnd_dump):
    state = healthy_state(Phase.PREFLIGHT)
    state.ground_terminate_s = NOW
    state.ground_terminate_text = "range safety"
    decision = termination_check(state, make_params(TRM_GND_DUMP=gnd_dump), NOW, MISSION)
    assert decision.reason == Reason.GROUND
    assert decision.dump_ballast is bool(gnd_dump)
    assert "range safety" in decision.text


def test_priority_order_when_several_hold():
    state = healthy_state()
    _battery(state)
    _ceiling(state)
    for reason in (Reason.BATTERY, Reason.CEILING):
        state.dwell_since_s["trm_" + reason] = NOW - 1e4
    assert termination_check(state, make_params(), NOW, MISSION).reason == Reason.CEILING


def test_reasons_still_count_after_a_termination_for_escalation():
    state = healthy_state(Phase.TERMINATION)
    state.latches.termination_fired = True
    _ceiling(state)
    state.dwell_since_s["trm_ceiling"] = NOW - 1e6
    assert termination_check(state, make_params(), NOW, MISSION).reason == Reason.CEILING


def test_a_pending_ground_command_keeps_the_other_dwells_up_to_date():
    """A reason that stops holding always resets its dwell, even in a frame where the ground terminates."""
    state = healthy_state()
    state.dwell_since_s["trm_ceiling"] = NOW - 5.0  # the ceiling held until the last frame; not any more
    state.ground_terminate_s = NOW
    decision = termination_check(state, make_params(), NOW, MISSION)
    assert decision.reason == Reason.GROUND
    assert math.isnan({u.name: u.since_s for u in decision.dwells}["trm_ceiling"])


def test_a_reason_that_stops_holding_resets_its_dwell_while_another_holds():
    """Issue 22's surviving mutant: with the battery low, the ceiling's dwell must still restart when the
    balloon drops back below the ceiling, so that one frame back above it does not cut at once."""
    params = make_params(TRM_CEIL_DWELL=10.0, TRM_BATT_DWELL=600.0)
    state = healthy_state()
    _battery(state)
    _ceiling(state)
    state.dwell_since_s["trm_battery"] = NOW - 5.0
    state.dwell_since_s["trm_ceiling"] = NOW - 9.0
    state.estimate.altitude_m = 39000.0  # back below the ceiling
    decision = termination_check(state, params, NOW, MISSION)
    assert math.isnan({u.name: u.since_s for u in decision.dwells}["trm_ceiling"])


def test_dump_time_is_limited():
    params = make_params(BAL_FLOW_KGPS=0.01, TRM_DUMP_MAX_S=120.0)
    assert dump_seconds(params, 0.5) == pytest.approx(50.0)
    assert dump_seconds(params, 5.0) == pytest.approx(120.0)
    assert dump_seconds(params, 0.0) == 0.0
