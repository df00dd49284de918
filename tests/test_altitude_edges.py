"""The altitude controller and the ballast book-keeping at their edges: every band and deadband at its boundary, the
pulse interval, the ballast guards (no ballast declared, a zero flow, the reserve, an empty hopper), the ballast
of a valve left open across a restart, why the controller is idle, and a decision's figures in full.
test_rules_altitude.py has the nominal behaviour and the toy float."""

from __future__ import annotations

import math

import pytest

from flightsw.dictionary import all_param_decls
from flightsw.phase import Phase
from flightsw.rules.altitude import (Action, AltitudeDecision, altitude_control, ballast_available_kg,
                                     ballast_credit_after_restart, ballast_remaining_kg)
from flightsw.state import Latches
from test_rules_altitude import NOW, TARGET, float_state, make_params


def decide(state, params=None, **kwargs) -> AltitudeDecision:
    return altitude_control(state, params or make_params(), NOW, **kwargs)


# ----------------------------------------------------------------------------------------------- ballast books

@pytest.mark.parametrize("used_kg, available_kg", [(0.0, 9.0), (8.5, 0.5), (9.0, 0.0), (9.5, 0.0), (12.0, 0.0)])
def test_the_controller_may_spend_the_ballast_above_the_reserve_and_never_less_than_none(used_kg, available_kg):
    state = float_state(used_kg=used_kg)
    assert ballast_available_kg(state, make_params(ALT_BAL_TOTAL=10.0, ALT_BAL_RESERVE=1.0)) == available_kg


@pytest.mark.parametrize("used_kg, remaining_kg", [(0.0, 10.0), (9.5, 0.5), (10.0, 0.0), (11.0, 0.0)])
def test_an_empty_hopper_has_no_ballast_left_not_even_the_reserve(used_kg, remaining_kg):
    """Issue 22's example: an empty hopper reported as 1 kg lengthened the pre-cut dump."""
    state = float_state(used_kg=used_kg)
    assert ballast_remaining_kg(state, make_params(ALT_BAL_TOTAL=10.0, ALT_BAL_RESERVE=1.0)) == remaining_kg


def _latches(open_until_s: float, written_s: float, used_kg: float = 2.0) -> Latches:
    latches = Latches()
    latches.ballast_open_until_s, latches.met_s, latches.ballast_used_kg = open_until_s, written_s, used_kg
    return latches


@pytest.mark.parametrize("open_until_s, written_s, now_s, credit_kg", [
    (130.0, 100.0, 110.0, 0.1),  # open until the restart
    (130.0, 100.0, 200.0, 0.3),  # the backstop closed it before the restart
    (100.5, 100.0, 200.0, 0.005),  # half a second
    (100.0, 100.0, 200.0, 0.0),  # closing as the record was written
    (90.0, 100.0, 200.0, 0.0),  # closed before the record: nothing more
    (math.nan, 100.0, 200.0, 0.0),  # not open
    (130.0, math.nan, 200.0, 0.0),  # no mission time in the record
])
def test_a_valve_open_across_a_restart_is_credited_until_it_closed_at_the_latest(open_until_s, written_s, now_s,
                                                                                  credit_kg):
    latches = _latches(open_until_s, written_s)
    assert ballast_credit_after_restart(latches, now_s, 0.01) == pytest.approx(credit_kg)
    assert latches.ballast_used_kg == pytest.approx(2.0 + credit_kg)
    assert math.isnan(latches.ballast_open_until_s)


# ----------------------------------------------------------------------------------------------- when it is idle

@pytest.mark.parametrize("phase", [Phase.PREFLIGHT, Phase.ASCENT, Phase.DESCENT, Phase.LANDED, Phase.TERMINATION])
def test_outside_float_the_controller_is_idle_and_says_the_phase(phase):
    state = float_state(TARGET - 800.0, -1.0, used_kg=2.0)
    state.latches.phase = int(phase)
    assert decide(state) == AltitudeDecision(ballast_available_kg=7.0, reason=f"not floating ({phase.name})")


@pytest.mark.parametrize("values, reason", [({"FLT_MODE": 0}, "altitude control disabled"),
                                            ({"ALT_CTRL_EN": 0}, "altitude control disabled")])
def test_a_disabled_controller_is_idle(values, reason):
    assert decide(float_state(TARGET - 800.0, -1.0), make_params(**values)) == AltitudeDecision(
        ballast_available_kg=9.0, reason=reason)


def test_after_a_termination_the_controller_is_idle():
    state = float_state(TARGET - 800.0, -1.0)
    state.latches.termination_fired = True
    assert decide(state) == AltitudeDecision(ballast_available_kg=9.0, reason="terminated")


@pytest.mark.parametrize("field, value", [("altitude_valid", False), ("altitude_m", math.nan),
                                          ("vertical_rate_valid", False), ("vertical_rate_mps", math.inf)])
def test_without_a_valid_altitude_and_rate_the_controller_waits(field, value):
    state = float_state(TARGET - 800.0, -1.0)
    setattr(state.estimate, field, value)
    decision = decide(state)
    assert (decision.action, decision.active, decision.target_altitude_m, decision.ballast_available_kg,
            decision.reason) == (Action.NONE, True, TARGET, 9.0, "no valid altitude or rate")


# ----------------------------------------------------------------------------------------------- a decision in full

def test_a_ballast_decision_carries_every_figure_of_both_loops():
    params = make_params(ALT_KP=0.003, ALT_DEADBAND=150.0, ALT_RATE_DB=0.3, ALT_LIFT_GAIN=0.2, ALT_PULSE_MAX=60.0,
                         ALT_RATE_MAX=1.0)
    decision = decide(float_state(TARGET - 450.0, -0.5), params)
    command = 0.003 * 300.0
    lift = 0.2 * (command * abs(command) - (-0.5) * 0.5)
    assert decision == pytest.approx(AltitudeDecision(
        Action.BALLAST, lift / 0.01, True, TARGET, 450.0, command, command + 0.5, lift, lift / 0.01 / 60.0, 9.0,
        f"ballast {lift / 0.01:.1f} s for {lift:.3f} kg of lift"))
    assert decision.reason == "ballast 21.2 s for 0.212 kg of lift"


def test_a_vent_decision_carries_every_figure_of_both_loops():
    params = make_params(ALT_LIFT_GAIN=0.1, ALT_VENT_FLOW=0.01, ALT_RATE_MAX=1.0, ALT_KP=0.003, ALT_DEADBAND=150.0)
    decision = decide(float_state(TARGET + 2000.0, 1.0), params)
    assert decision == pytest.approx(AltitudeDecision(
        Action.VENT, 20.0, True, TARGET, -2000.0, -1.0, -2.0, -0.2, -20.0 / 30.0, 9.0,
        "vent 20.0 s for 0.200 kg of lift"))


@pytest.mark.parametrize("error_m, command_mps", [(150.0, 0.0), (-150.0, 0.0), (150.5, 0.0015), (-150.5, -0.0015),
                                                  (100.0, 0.0)])
def test_the_altitude_error_counts_only_beyond_the_deadband(error_m, command_mps):
    params = make_params(ALT_KP=0.003, ALT_DEADBAND=150.0)
    decision = decide(float_state(TARGET - error_m, 0.0), params)
    assert decision.commanded_rate_mps == pytest.approx(command_mps, abs=1e-12)
    assert decision.error_m == pytest.approx(error_m)


@pytest.mark.parametrize("rate_mps, acts", [(-0.3, False), (-0.31, True), (0.3, False), (0.31, True)])
def test_a_rate_error_acts_only_beyond_the_rate_deadband(rate_mps, acts):
    params = make_params(ALT_RATE_DB=0.3, ALT_VENT_BAND=0.0, ALT_BAL_BAND=0.0)
    decision = decide(float_state(TARGET, rate_mps), params)
    assert (decision.lift_change_kg != 0.0) is acts
    if not acts:
        assert (decision.action, decision.reason) == (Action.NONE, "inside the deadbands")


@pytest.mark.parametrize("ago_s, acts", [(74.9, False), (75.0, True), (math.inf, True)])
def test_pulses_start_at_least_the_pulse_interval_apart(ago_s, acts):
    decision = decide(float_state(TARGET - 800.0, -1.0, last_pulse_ago_s=ago_s), make_params(ALT_PULSE_INT=75.0))
    assert (decision.action == Action.BALLAST) is acts
    if not acts:
        assert decision.reason == "waiting for the balloon to respond"


def test_a_busy_valve_is_said_and_nothing_is_pulsed():
    decision = decide(float_state(TARGET - 800.0, -1.0), valve_busy=True)
    assert (decision.action, decision.pulse_s, decision.effort, decision.reason) == (Action.NONE, 0.0, 0.0,
                                                                                    "valve busy")


@pytest.mark.parametrize("error_m", [0.5, 1.0, 0.001])
def test_without_a_deadband_the_smallest_error_below_the_target_commands_a_climb(error_m):
    decision = decide(float_state(TARGET - error_m, 0.0), make_params(ALT_DEADBAND=0.0, ALT_KP=0.01))
    assert decision.commanded_rate_mps == pytest.approx(0.01 * error_m)


def test_one_kilogram_of_ballast_is_ballast():
    decision = decide(float_state(TARGET - 800.0, -1.0), make_params(ALT_BAL_TOTAL=1.0, ALT_BAL_RESERVE=0.0))
    assert decision.action == Action.BALLAST


@pytest.mark.parametrize("above_m, drops", [(100.0, True), (100.5, False), (0.0, True)])
def test_ballast_drops_only_up_to_the_ballast_band_above_the_target(above_m, drops):
    decision = decide(float_state(TARGET + above_m, -1.0), make_params(ALT_BAL_BAND=100.0))
    assert (decision.action == Action.BALLAST) is drops
    if not drops:
        assert decision.reason == "above the target: letting it sink"


@pytest.mark.parametrize("altitude_m, drops", [(1000.0, True), (999.9, False)])
def test_ballast_is_never_dropped_below_the_lowest_ballast_altitude(altitude_m, drops):
    params = make_params(ALT_TARGET=5000.0, ALT_BAL_MIN_ALT=1000.0)
    decision = decide(float_state(altitude_m, -1.0), params)
    assert (decision.action == Action.BALLAST) is drops
    if not drops:
        assert decision.reason == "below the lowest ballast altitude"


@pytest.mark.parametrize("above_m, vents", [(200.0, True), (199.5, False), (250.0, True)])
def test_gas_is_vented_only_from_the_vent_band_above_the_target(above_m, vents):
    decision = decide(float_state(TARGET + above_m, 0.5), make_params(ALT_VENT_BAND=200.0, ALT_DEADBAND=0.0))
    assert (decision.action == Action.VENT) is vents
    if not vents:
        assert decision.reason == "not far enough above the target to vent"


def _with(params, **values) -> dict:
    """The parameter values as a plain mapping, some of them set past what a parameter set would accept."""
    mapping = {decl.name: params[decl.name] for decl in all_param_decls()}
    mapping.update(values)
    return mapping


@pytest.mark.parametrize("values", [{"ALT_BAL_TOTAL": 0.0}, {"BAL_FLOW_KGPS": 0.0}, {"BAL_FLOW_KGPS": -0.01}])
def test_no_ballast_declared_or_no_flow_drops_nothing_and_never_divides_by_zero(values):
    """Issue 22's example: the zero-flow ballast guard."""
    params = _with(make_params(), **values)
    decision = altitude_control(float_state(TARGET - 800.0, -1.0), params, NOW)
    assert (decision.action, decision.pulse_s) == (Action.NONE, 0.0)
    assert decision.reason == "no ballast declared (ALT_BAL_TOTAL, BAL_FLOW_KGPS)"


@pytest.mark.parametrize("used_kg, action, pulse_s", [(9.0, Action.NONE, 0.0), (8.996, Action.NONE, 0.0),
                                                     (8.995, Action.BALLAST, 0.5), (8.99, Action.BALLAST, 1.0)])
def test_a_pulse_shorter_than_the_shortest_is_not_made_out_of_the_reserve(used_kg, action, pulse_s):
    """ALT_PULSE_MIN 0.5 s at 0.01 kg/s is 5 g: with less than that above the reserve nothing is dropped."""
    params = make_params(ALT_PULSE_MIN=0.5)
    decision = decide(float_state(TARGET - 800.0, -1.0, used_kg=used_kg), params)
    assert decision.action == action
    if action == Action.NONE:
        assert decision.reason == "ballast down to the reserve"
    assert decision.pulse_s == pytest.approx(pulse_s)  # what is left above the reserve, never more


def test_a_vent_pulse_is_at_least_the_shortest_pulse():
    params = make_params(ALT_LIFT_GAIN=0.001, ALT_VENT_FLOW=0.01, ALT_PULSE_MIN=2.0, ALT_DEADBAND=0.0,
                         ALT_RATE_DB=0.0)
    decision = decide(float_state(TARGET + 300.0, 0.6), params)
    assert decision.action == Action.VENT and decision.pulse_s == 2.0


def test_a_ballast_pulse_is_at_least_the_shortest_pulse():
    params = make_params(ALT_LIFT_GAIN=0.001, ALT_PULSE_MIN=2.0, ALT_RATE_DB=0.0)
    decision = decide(float_state(TARGET - 100.0, -0.6), params)
    assert decision.action == Action.BALLAST and decision.pulse_s == 2.0
