"""Invariants of the termination rule for any estimate (hypothesis): a reason that stops holding always resets its
dwell; nothing automatic counts on the ground; NaN inputs never cut before a dwell and never block a ground cut;
a reason is found only once its dwell is over."""

from __future__ import annotations

import math

from hypothesis import given, settings, strategies as st

from flightsw.phase import Phase
from flightsw.rules.termination import Reason, termination_check
from test_rules_termination import MISSION, NOW, healthy_state, make_params

PARAMS = make_params()
DWELL_REASONS = (Reason.NO_ALTITUDE, Reason.CEILING, Reason.GEOFENCE, Reason.UNCONTROLLED_DESCENT, Reason.BATTERY,
                 Reason.FLOAT_FLOOR)
DWELL_PARAM = {Reason.NO_ALTITUDE: "TRM_NOALT_DWELL", Reason.CEILING: "TRM_CEIL_DWELL",
               Reason.GEOFENCE: "TRM_FENCE_DWELL", Reason.UNCONTROLLED_DESCENT: "TRM_BURST_DWELL",
               Reason.BATTERY: "TRM_BATT_DWELL", Reason.FLOAT_FLOOR: "TRM_FLOOR_DWELL"}

numbers = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.floats(-100.0, 50000.0))
flags = st.booleans()


@st.composite
def estimates(draw, phase=None):
    state = healthy_state(draw(st.sampled_from(list(Phase))) if phase is None else phase)
    est = state.estimate
    est.altitude_m, est.altitude_valid = draw(numbers), draw(flags)
    est.vertical_rate_mps, est.vertical_rate_valid = draw(st.one_of(numbers, st.floats(-20.0, 20.0))), draw(flags)
    # the fence is 52..53 N, 1 W..1 E; a point on an edge may count either way
    est.latitude_deg = draw(st.one_of(st.floats(allow_nan=True), st.floats(51.0, 54.0).filter(
        lambda x: x not in (52.0, 53.0))))
    est.longitude_deg = draw(st.one_of(st.floats(allow_nan=True), st.floats(-2.0, 2.0).filter(
        lambda x: x not in (-1.0, 1.0))))
    est.position_valid = draw(flags)
    est.bus_voltage_v, est.power_valid = draw(st.one_of(numbers, st.floats(5.0, 9.0))), draw(flags)
    state.launch_blocked = draw(flags)
    # every dwell began some time ago (or never)
    for reason in DWELL_REASONS:
        started = draw(st.one_of(st.none(), st.floats(0.0, 1e5)))
        if started is not None:
            state.dwell_since_s["trm_" + reason] = NOW - started
    return state


def since(decision, reason: str) -> float:
    return {update.name: update.since_s for update in decision.dwells}.get("trm_" + reason, math.nan)


@settings(max_examples=60, deadline=None)
@given(estimates())
def test_a_reason_that_does_not_hold_always_resets_its_dwell(state):
    decision = termination_check(state, PARAMS, NOW, MISSION)
    for reason in DWELL_REASONS:
        alone = _holds_alone(state, reason)
        if not alone:
            assert math.isnan(since(decision, reason)), reason
        else:
            started = state.dwell_since_s.get("trm_" + reason, NOW)
            assert since(decision, reason) == started


def automatic(state) -> bool:
    """Whether the flight may be airborne: the phases in the air, a held launch, LANDED high up."""
    est = state.estimate
    return (state.phase in (Phase.ASCENT, Phase.FLOAT, Phase.DESCENT, Phase.TERMINATION)
            or (state.phase is Phase.PREFLIGHT and state.launch_blocked)
            or (state.phase is Phase.LANDED and est.altitude_valid and math.isfinite(est.altitude_m)
                and est.altitude_m > PARAMS["PH_LAND_MAX_ALT"]))


def _holds_alone(state, reason: str) -> bool:
    """The reason's condition as the requirement states it (docs/flight-rules.md)."""
    est = state.estimate
    alt_ok = est.altitude_valid and math.isfinite(est.altitude_m)
    if not automatic(state):
        return False
    if reason == Reason.NO_ALTITUDE:
        return not alt_ok
    if reason == Reason.CEILING:
        return alt_ok and est.altitude_m > PARAMS["TRM_CEIL_ALT"]
    if reason == Reason.GEOFENCE:
        lat, lon = est.latitude_deg, est.longitude_deg
        return est.position_valid and math.isfinite(lat) and math.isfinite(lon) and not (52.0 < lat < 53.0
                                                                                         and -1.0 < lon < 1.0)
    if reason == Reason.UNCONTROLLED_DESCENT:
        rate = est.vertical_rate_mps
        return est.vertical_rate_valid and math.isfinite(rate) and rate < -PARAMS["TRM_BURST_RATE"]
    if reason == Reason.BATTERY:
        return est.power_valid and math.isfinite(est.bus_voltage_v) and est.bus_voltage_v < PARAMS["TRM_BATT_V"]
    return state.phase is Phase.FLOAT and alt_ok and est.altitude_m < PARAMS["TRM_FLOOR_ALT"]


@settings(max_examples=60, deadline=None)
@given(estimates())
def test_a_dwell_reason_is_found_only_once_its_dwell_is_over(state):
    decision = termination_check(state, PARAMS, NOW, MISSION)
    if decision.reason in DWELL_REASONS:
        assert _holds_alone(state, decision.reason)
        assert NOW - since(decision, decision.reason) >= PARAMS[DWELL_PARAM[decision.reason]]


@settings(max_examples=40, deadline=None)
@given(estimates(), st.sampled_from([Phase.PREFLIGHT, Phase.LANDED]))
def test_nothing_automatic_counts_on_the_ground(state, phase):
    state.latches.phase = int(phase)
    state.launch_blocked = False
    state.estimate.altitude_m, state.estimate.altitude_valid = 300.0, True
    state.link.gcs_heartbeat_s = NOW - 1e6
    decision = termination_check(state, PARAMS, NOW, MISSION)
    assert decision.reason == ""
    assert all(math.isnan(update.since_s) for update in decision.dwells)


@settings(max_examples=40, deadline=None)
@given(estimates(), st.text(max_size=20))
def test_nothing_blocks_a_ground_termination(state, text):
    """NaN, missing or absurd inputs, any phase, any dwell: a ground command terminates."""
    state.ground_terminate_s, state.ground_terminate_text = NOW, text
    decision = termination_check(state, PARAMS, NOW, MISSION)
    assert decision.reason == Reason.GROUND
    assert decision.text == f"ground command: {text or 'ground command'}"


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(["altitude_m", "vertical_rate_mps", "latitude_deg", "longitude_deg", "bus_voltage_v"]),
       st.sampled_from([math.nan, math.inf, -math.inf]))
def test_one_input_that_is_not_a_number_never_cuts_a_healthy_flight_before_the_no_altitude_dwell(field, value):
    state = healthy_state()
    setattr(state.estimate, field, value)
    decision = termination_check(state, PARAMS, NOW, MISSION)
    assert decision.reason == ""
    held = {update.name for update in decision.dwells if not math.isnan(update.since_s)}
    assert held <= {"trm_" + Reason.NO_ALTITUDE}
