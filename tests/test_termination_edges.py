"""Termination reasons at their edges: every limit at, just inside and just beyond it; the guards (a NaN or
missing coordinate, a three-vertex geofence, no launch time); what the operator is told for each reason; the dwell
updates a decision carries; and rules that have memory flown over many frames.  test_rules_termination.py has
each reason's nominal behaviour."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest

from flightsw.phase import Phase
from flightsw.rules import apply_dwells
from flightsw.rules.termination import Reason, _later, automatic_reasons_active, flight_duration_s, \
    termination_check
from test_rules_termination import FENCE, MISSION, NOW, healthy_state, make_params

FRAME_S = 0.05
TRIANGLE = ((52.0, -1.0), (53.0, 0.0), (52.0, 1.0))  # the smallest geofence there is


def since(decision, reason: str) -> float:
    return {update.name: update.since_s for update in decision.dwells}["trm_" + reason]


def fly(state, params, seconds: float, mission=MISSION, start_s: float = NOW):
    """Run the rule every frame for ``seconds``, writing its dwells back as the flight logic does; the first
    reason found (and when), or ("", nan)."""
    frames = int(round(seconds / FRAME_S))
    for frame in range(frames + 1):
        now_s = start_s + frame * FRAME_S
        decision = termination_check(state, params, now_s, mission)
        apply_dwells(state, decision.dwells)
        if decision.reason:
            return decision.reason, now_s - start_s
    return "", math.nan


# ----------------------------------------------------------------------------------------------- limits

def _altitude(value):
    def set_(state):
        state.estimate.altitude_m = value
    return set_


def _rate(value):
    def set_(state):
        state.estimate.vertical_rate_mps = value
    return set_


def _voltage(value):
    def set_(state):
        state.estimate.bus_voltage_v = value
    return set_


# (reason, the state at the limit, just inside, just beyond); limits: TRM_CEIL_ALT 40000 m, TRM_BURST_RATE 5 m/s,
# TRM_BATT_V 6.6 V, TRM_FLOOR_ALT 15000 m
LIMITS = [
    (Reason.CEILING, _altitude(40000.0), _altitude(39999.9), _altitude(40000.1)),
    (Reason.UNCONTROLLED_DESCENT, _rate(-5.0), _rate(-4.99), _rate(-5.01)),
    (Reason.BATTERY, _voltage(6.6), _voltage(6.61), _voltage(6.59)),
    (Reason.FLOAT_FLOOR, _altitude(15000.0), _altitude(15000.1), _altitude(14999.9)),
]


@pytest.mark.parametrize("reason, at, inside, beyond", LIMITS, ids=[row[0] for row in LIMITS])
def test_a_reason_holds_only_strictly_beyond_its_limit(reason, at, inside, beyond):
    params = make_params()
    for set_state, holds in ((at, False), (inside, False), (beyond, True)):
        state = healthy_state()
        set_state(state)
        state.dwell_since_s["trm_" + reason] = NOW - 1e5
        decision = termination_check(state, params, NOW, MISSION)
        assert (decision.reason == reason) is holds
        assert math.isnan(since(decision, reason)) is not holds


@pytest.mark.parametrize("rate_mps", [0.0, 0.5, 3.0, -4.0])
def test_a_floating_balloon_that_rises_or_sinks_slowly_is_never_an_uncontrolled_descent(rate_mps):
    state = healthy_state()
    state.estimate.vertical_rate_mps = rate_mps
    assert fly(state, make_params(TRM_BURST_DWELL=1.0), 3.0) == ("", pytest.approx(math.nan, nan_ok=True))
    assert "trm_" + Reason.UNCONTROLLED_DESCENT not in state.dwell_since_s


@pytest.mark.parametrize("silent_s, lost", [(3599.99, False), (3600.0, False), (3600.01, True)])
def test_the_link_is_lost_only_after_more_than_its_timeout(silent_s, lost):
    state = healthy_state()
    state.link.gcs_heartbeat_s = NOW - silent_s
    decision = termination_check(state, make_params(TRM_LINK_TMO_S=3600.0), NOW, MISSION)
    assert (decision.reason == Reason.LINK_LOST) is lost


@pytest.mark.parametrize("altitude_m, active", [(1000.0, False), (1000.1, True), (999.9, False)])
def test_landed_counts_as_airborne_only_above_the_landed_altitude(altitude_m, active):
    state = healthy_state(Phase.LANDED)
    state.estimate.altitude_m = altitude_m
    assert automatic_reasons_active(state, make_params(PH_LAND_MAX_ALT=1000.0)) is active


@pytest.mark.parametrize("phase", [Phase.ASCENT, Phase.FLOAT, Phase.DESCENT, Phase.TERMINATION])
def test_automatic_reasons_are_active_in_every_phase_in_the_air(phase):
    state = healthy_state(phase)
    state.estimate.altitude_m, state.estimate.altitude_valid = 0.0, False  # whatever the estimate says
    assert automatic_reasons_active(state, make_params()) is True


def test_automatic_reasons_are_off_before_a_launch_and_low_on_the_ground():
    params = make_params()
    assert automatic_reasons_active(healthy_state(Phase.PREFLIGHT), params) is False
    landed = healthy_state(Phase.LANDED)
    landed.estimate.altitude_m = 200.0
    assert automatic_reasons_active(landed, params) is False


# ----------------------------------------------------------------------------------------------- the geofence

def test_a_flight_inside_the_geofence_is_never_cut_by_it():
    """Issue 22's example: `finite(...) and not point_in_polygon(...)` turned into `or` cut a healthy flight
    inside the fence after the dwell."""
    state = healthy_state()
    params = make_params(TRM_FENCE_DWELL=1.0)
    assert fly(state, params, 3.0)[0] == ""
    assert "trm_" + Reason.GEOFENCE not in state.dwell_since_s


def test_a_flight_outside_the_geofence_is_cut_after_the_dwell():
    state = healthy_state()
    state.estimate.latitude_deg = 54.0
    reason, after_s = fly(state, make_params(TRM_FENCE_DWELL=1.0), 3.0)
    assert reason == Reason.GEOFENCE
    assert after_s == pytest.approx(1.0)


def test_a_three_vertex_geofence_is_a_geofence():
    """Issue 22's example: a three-vertex geofence must not be treated as missing."""
    mission = SimpleNamespace(geofence=TRIANGLE, launch_box=())
    params = make_params(TRM_FENCE_DWELL=0.0)
    inside = healthy_state()
    inside.estimate.latitude_deg, inside.estimate.longitude_deg = 52.2, 0.0
    assert termination_check(inside, params, NOW, mission).reason == ""
    outside = healthy_state()
    outside.estimate.latitude_deg, outside.estimate.longitude_deg = 52.9, 0.9
    assert termination_check(outside, params, NOW, mission).reason == Reason.GEOFENCE


def test_a_two_vertex_geofence_is_no_geofence():
    mission = SimpleNamespace(geofence=FENCE[:2], launch_box=())
    state = healthy_state()
    state.estimate.latitude_deg = 54.0
    assert termination_check(state, make_params(TRM_FENCE_DWELL=0.0), NOW, mission).reason == ""


@pytest.mark.parametrize("latitude_deg, longitude_deg", [(math.nan, 0.0), (52.5, math.nan), (math.inf, 0.0),
                                                         (52.5, -math.inf)])
def test_a_position_that_is_not_a_number_is_never_outside_the_geofence(latitude_deg, longitude_deg):
    state = healthy_state()
    state.estimate.latitude_deg, state.estimate.longitude_deg = latitude_deg, longitude_deg
    decision = termination_check(state, make_params(TRM_FENCE_DWELL=0.0), NOW, MISSION)
    assert decision.reason == ""
    assert math.isnan(since(decision, Reason.GEOFENCE))


def test_the_geofence_answer_follows_each_new_position():
    params = make_params(TRM_FENCE_DWELL=0.0)
    state = healthy_state()
    for latitude_deg, outside in ((54.0, True), (52.5, False), (54.0, True), (54.0, True), (52.6, False)):
        state.estimate.latitude_deg = latitude_deg
        assert (termination_check(state, params, NOW, MISSION).reason == Reason.GEOFENCE) is outside


# ----------------------------------------------------------------------------------------------- what is told

TEXTS = [
    (Reason.NO_ALTITUDE, lambda s: setattr(s.estimate, "altitude_valid", False),
     "no valid altitude (barometers and GPS lost)"),
    (Reason.CEILING, _altitude(41234.0), "altitude 41234 m above ceiling 40000 m"),
    (Reason.GEOFENCE, lambda s: setattr(s.estimate, "latitude_deg", 54.123456),
     "outside the geofence at 54.12346, 0.00000"),
    (Reason.UNCONTROLLED_DESCENT, _rate(-8.25), "uncontrolled descent at 8.2 m/s"),
    (Reason.BATTERY, _voltage(6.123), "battery 6.12 V below 6.60 V"),
    (Reason.FLOAT_FLOOR, _altitude(12345.0), "floating at 12345 m, below the floor 15000 m"),
]


@pytest.mark.parametrize("reason, breaks, text", TEXTS, ids=[row[0] for row in TEXTS])
def test_the_operator_is_told_each_reason_with_its_figures(reason, breaks, text):
    state = healthy_state()
    breaks(state)
    state.dwell_since_s["trm_" + reason] = NOW - 1e5
    decision = termination_check(state, make_params(), NOW, MISSION)
    assert (decision.reason, decision.text) == (reason, text)


def test_the_operator_is_told_how_long_the_link_was_lost():
    state = healthy_state()
    state.link.gcs_heartbeat_s = NOW - 3700.4
    decision = termination_check(state, make_params(), NOW, MISSION)
    assert decision.text == "ground link lost for 3700 s"


def test_the_operator_is_told_the_flight_time_that_ended_the_flight():
    state = healthy_state()
    state.latches.launch_s = NOW - 700.0
    decision = termination_check(state, make_params(TRM_MAX_FLT_S=600.0), NOW, MISSION)
    assert decision.text == "flight time 700 s above 600 s"


@pytest.mark.parametrize("text, told", [("", "ground command: ground command"),
                                        ("range safety", "ground command: range safety")])
def test_a_ground_command_is_told_with_its_text_or_as_a_ground_command(text, told):
    state = healthy_state()
    state.ground_terminate_s, state.ground_terminate_text = NOW, text
    assert termination_check(state, make_params(), NOW, MISSION).text == told


# ----------------------------------------------------------------------------------------------- dwells carried

def test_a_timeout_reason_carries_the_dwells_of_the_reasons_still_counting():
    """The link is lost while the battery is low but its dwell is not over: the battery's dwell start must reach
    the journal all the same."""
    state = healthy_state()
    state.link.gcs_heartbeat_s = NOW - 1e5
    state.estimate.bus_voltage_v = 6.0
    state.dwell_since_s["trm_battery"] = NOW - 5.0
    decision = termination_check(state, make_params(), NOW, MISSION)
    assert decision.reason == Reason.LINK_LOST
    assert since(decision, Reason.BATTERY) == NOW - 5.0
    assert math.isnan(since(decision, Reason.CEILING))


def test_a_timeout_reason_with_nothing_else_holding_resets_every_dwell():
    state = healthy_state()
    state.link.gcs_heartbeat_s = NOW - 1e5
    state.dwell_since_s["trm_ceiling"] = NOW - 5.0  # held until the last frame
    decision = termination_check(state, make_params(), NOW, MISSION)
    assert decision.reason == Reason.LINK_LOST
    assert len(decision.dwells) == 6
    assert all(math.isnan(update.since_s) for update in decision.dwells)
    assert apply_dwells(state, decision.dwells) is True
    assert state.dwell_since_s == {}


def test_a_dwell_reason_that_fires_carries_every_dwell():
    state = healthy_state()
    state.estimate.altitude_m = 41000.0
    state.dwell_since_s["trm_ceiling"] = NOW - 100.0
    decision = termination_check(state, make_params(), NOW, MISSION)
    assert decision.reason == Reason.CEILING
    assert since(decision, Reason.CEILING) == NOW - 100.0
    assert len(decision.dwells) == 6


# ----------------------------------------------------------------------------------------------- no launch time

@pytest.mark.parametrize("launch_s", [math.nan, None, math.inf])
def test_no_launch_time_means_no_flight_duration_and_no_max_duration_cut(launch_s):
    state = healthy_state()
    state.latches.launch_s = launch_s
    assert math.isnan(flight_duration_s(state, NOW))
    state.link.gcs_heartbeat_s = NOW
    assert termination_check(state, make_params(TRM_MAX_FLT_S=600.0), NOW, MISSION).reason == ""


@pytest.mark.parametrize("first_s, second_s, later_s", [
    (1.0, 2.0, 2.0), (2.0, 1.0, 2.0), (math.nan, 2.0, 2.0), (2.0, math.nan, 2.0), (None, 3.0, 3.0),
    (3.0, None, 3.0), (math.nan, math.nan, math.nan), (math.nan, None, math.nan), (None, math.inf, math.nan),
])
def test_the_later_of_two_times_leaves_out_one_that_is_not_a_time(first_s, second_s, later_s):
    assert _later(first_s, second_s) == pytest.approx(later_s, nan_ok=True)


def test_the_lost_link_timer_counts_from_the_launch_when_the_ground_was_never_heard():
    state = healthy_state()
    state.link.gcs_heartbeat_s = math.nan
    state.latches.launch_s = NOW - 3600.01
    assert termination_check(state, make_params(), NOW, MISSION).reason == Reason.LINK_LOST
    state.latches.launch_s = math.nan  # neither known: no timer at all
    assert termination_check(state, make_params(), NOW, MISSION).reason == ""
