"""The float altitude controller: when it acts, pulse sizing and limits, reserve and altitude guards, and a toy
sunset where it must spend ballast progressively and hold the band."""

from __future__ import annotations

import math

import pytest

from flightsw.dictionary import all_param_decls
from flightsw.params import Params
from flightsw.phase import Phase
from flightsw.rules.altitude import Action, altitude_control, ballast_available_kg
from flightsw.state import FlightState

NOW = 50000.0
TARGET = 28000.0


def make_params(**values) -> Params:
    params = Params(all_param_decls())
    defaults = {"FLT_MODE": 1, "ALT_BAL_TOTAL": 10.0, "ALT_BAL_RESERVE": 1.0, "BAL_FLOW_KGPS": 0.01}
    for name, value in {**defaults, **values}.items():
        ok, reason = params.set(name, value)
        assert ok, reason
    return params


def float_state(alt: float = TARGET, rate: float = 0.0, *, used_kg: float = 0.0,
                last_pulse_ago_s: float = math.inf) -> FlightState:
    state = FlightState(now_s=NOW)
    state.latches.phase = int(Phase.FLOAT)
    state.latches.ballast_used_kg = used_kg
    est = state.estimate
    est.altitude_m, est.altitude_valid = alt, True
    est.vertical_rate_mps, est.vertical_rate_valid = rate, True
    if math.isfinite(last_pulse_ago_s):
        state.control.last_pulse_s = NOW - last_pulse_ago_s
    return state


CASES = [
    # (id, state, params, action)
    ("holds at target", float_state(), {}, Action.NONE),
    ("small drift inside deadbands", float_state(TARGET - 100.0, -0.2), {}, Action.NONE),
    ("sinking drops ballast", float_state(TARGET - 100.0, -1.0), {}, Action.BALLAST),
    ("far below drops ballast", float_state(TARGET - 800.0, 0.0), {}, Action.BALLAST),
    ("below but climbing: wait", float_state(TARGET - 400.0, 0.6), {}, Action.NONE),
    ("above and rising vents", float_state(TARGET + 800.0, 0.5), {}, Action.VENT),
    ("slightly above: no vent", float_state(TARGET + 180.0, 0.5), {}, Action.NONE),
    ("vent band reached", float_state(TARGET + 250.0, 0.5), {}, Action.VENT),
    ("sinking above the target: no ballast", float_state(TARGET + 100.0, -1.0), {}, Action.NONE),
    ("sinking above the target within the ballast band", float_state(TARGET + 100.0, -1.0),
     {"ALT_BAL_BAND": 150.0}, Action.BALLAST),
    ("sinking through the target drops ballast", float_state(TARGET - 10.0, -1.0), {}, Action.BALLAST),
    ("above and sinking: let it", float_state(TARGET + 800.0, -1.5), {}, Action.NONE),
    ("interval not over", float_state(TARGET - 800.0, -1.0, last_pulse_ago_s=30.0), {}, Action.NONE),
    ("interval over", float_state(TARGET - 800.0, -1.0, last_pulse_ago_s=91.0), {}, Action.BALLAST),
    ("reserve reached", float_state(TARGET - 800.0, -1.0, used_kg=9.0), {}, Action.NONE),
    ("no ballast declared", float_state(TARGET - 800.0, -1.0), {"ALT_BAL_TOTAL": 0.0}, Action.NONE),
    ("disabled", float_state(TARGET - 800.0, -1.0), {"ALT_CTRL_EN": 0}, Action.NONE),
    ("latex flight", float_state(TARGET - 800.0, -1.0), {"FLT_MODE": 0}, Action.NONE),
    ("never below min altitude", float_state(900.0, -1.0), {"ALT_TARGET": 5000.0, "ALT_BAL_MIN_ALT": 1000.0},
     Action.NONE),
]


@pytest.mark.parametrize("state, values, action", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_controller_actions(state, values, action):
    decision = altitude_control(state, make_params(**values), NOW)
    assert decision.action == action
    assert decision.reason
    if action == Action.NONE:
        assert decision.pulse_s == 0.0 and decision.effort == 0.0


@pytest.mark.parametrize("phase", [Phase.ASCENT, Phase.DESCENT, Phase.TERMINATION, Phase.PREFLIGHT])
def test_inactive_outside_float(phase):
    state = float_state(TARGET - 800.0, -1.0)
    state.latches.phase = int(phase)
    decision = altitude_control(state, make_params(), NOW)
    assert decision.action == Action.NONE and not decision.active


def test_inactive_after_termination_and_without_valid_data():
    state = float_state(TARGET - 800.0, -1.0)
    state.latches.termination_fired = True
    assert altitude_control(state, make_params(), NOW).action == Action.NONE
    state = float_state(TARGET - 800.0, -1.0)
    state.estimate.vertical_rate_valid = False
    assert altitude_control(state, make_params(), NOW).action == Action.NONE


def test_busy_valve_defers():
    assert altitude_control(float_state(TARGET - 800.0, -1.0), make_params(), NOW, valve_busy=True).action \
        == Action.NONE


def test_pulse_sizing_follows_the_loops():
    # drag grows with the rate squared: the lift change is the gain times the change of rate * |rate|
    params = make_params(ALT_KP=0.003, ALT_DEADBAND=150.0, ALT_RATE_DB=0.3, ALT_LIFT_GAIN=0.2, ALT_PULSE_MAX=60.0)
    decision = altitude_control(float_state(TARGET - 150.0, -0.8), params, NOW)
    assert decision.commanded_rate_mps == 0.0
    assert decision.rate_error_mps == pytest.approx(0.8)
    assert decision.lift_change_kg == pytest.approx(0.2 * 0.64)
    assert decision.pulse_s == pytest.approx(0.128 / 0.01)
    assert decision.effort == pytest.approx(12.8 / 60.0)
    decision = altitude_control(float_state(TARGET - 450.0, 0.2), params, NOW)
    assert decision.commanded_rate_mps == pytest.approx(0.9)
    assert decision.lift_change_kg == pytest.approx(0.2 * (0.81 - 0.04))


def test_vent_pulse_uses_the_vent_flow():
    params = make_params(ALT_LIFT_GAIN=0.1, ALT_VENT_FLOW=0.01, ALT_RATE_MAX=1.0)
    decision = altitude_control(float_state(TARGET + 2000.0, 1.0), params, NOW)
    assert decision.action == Action.VENT
    assert decision.lift_change_kg == pytest.approx(-0.2)
    assert decision.pulse_s == pytest.approx(20.0)


def test_rate_argument_replaces_the_estimate():
    # a noisy estimate says sinking fast; the smoothed rate the caller hands over says settled
    params = make_params()
    state = float_state(TARGET - 100.0, -1.5)
    assert altitude_control(state, params, NOW).action == Action.BALLAST
    decision = altitude_control(state, params, NOW, rate_mps=-0.1)
    assert decision.action == Action.NONE and decision.rate_error_mps == pytest.approx(0.1)
    assert altitude_control(state, params, NOW, rate_mps=math.nan).action == Action.BALLAST


def test_commanded_rate_is_limited():
    decision = altitude_control(float_state(TARGET - 5000.0, 0.0), make_params(ALT_RATE_MAX=1.0), NOW)
    assert decision.commanded_rate_mps == 1.0
    decision = altitude_control(float_state(TARGET + 5000.0, 0.0), make_params(ALT_RATE_MAX=1.0), NOW)
    assert decision.commanded_rate_mps == -1.0


@pytest.mark.parametrize("rate, pulse", [(-0.7, 1.0), (-30.0, 20.0)])
def test_pulse_limits(rate, pulse):
    # tiny lift change lengthened to ALT_PULSE_MIN; a huge one capped at ALT_PULSE_MAX
    params = make_params(ALT_LIFT_GAIN=0.01, ALT_PULSE_MIN=1.0, ALT_PULSE_MAX=20.0)
    assert altitude_control(float_state(TARGET, rate), params, NOW).pulse_s == pytest.approx(pulse)


def test_pulse_never_spends_the_reserve():
    params = make_params(ALT_BAL_TOTAL=10.0, ALT_BAL_RESERVE=1.0)
    state = float_state(TARGET - 800.0, -2.0, used_kg=8.95)
    assert ballast_available_kg(state, params) == pytest.approx(0.05)
    decision = altitude_control(state, params, NOW)
    assert decision.action == Action.BALLAST
    assert decision.pulse_s * 0.01 <= 0.05 + 1e-9


def test_vent_effort_is_negative():
    decision = altitude_control(float_state(TARGET + 900.0, 0.5), make_params(), NOW)
    assert decision.action == Action.VENT and decision.effort < 0.0


def test_ground_target_overrides_the_parameter():
    state = float_state(25000.0, 0.0)
    state.latches.float_target_altitude_m = 25000.0
    decision = altitude_control(state, make_params(), NOW)
    assert decision.target_altitude_m == 25000.0 and decision.action == Action.NONE


def _toy_float(params: Params, lift_kg_at, hours: float = 6.0, gain: float = 0.12,
               restoring: float = 0.001):
    """A toy slack zero-pressure balloon at the target: ``lift_kg_at(seconds)`` is the lift the sun adds (or
    takes).  Net lift falls by ``restoring`` kg per metre above the target; the rate follows the drag balance
    (``gain`` kg of lift per (m/s)^2) with a 60 s lag.  Returns (worst |error| m, ballast pulses s, ballast kg,
    vent pulses s, vented kg)."""
    dt = 5.0
    state = float_state(TARGET, 0.0)
    alt, rate, worst, vented_kg = TARGET, 0.0, 0.0, 0.0
    ballast_pulses, vent_pulses = [], []
    valve_until = -math.inf
    for i in range(int(hours * 3600 / dt)):
        t = NOW + i * dt
        net_kg = state.latches.ballast_used_kg - vented_kg + lift_kg_at(t - NOW) - (alt - TARGET) * restoring
        terminal = math.copysign(math.sqrt(abs(net_kg) / gain), net_kg)
        rate += (terminal - rate) * dt / 60.0
        alt += rate * dt
        worst = max(worst, abs(alt - TARGET))
        state.estimate.altitude_m, state.estimate.vertical_rate_mps = alt, rate
        decision = altitude_control(state, params, t, valve_busy=t < valve_until)
        if decision.action != Action.NONE:
            state.control.last_pulse_s = t
            valve_until = t + decision.pulse_s
        if decision.action == Action.BALLAST:
            ballast_pulses.append(decision.pulse_s)
            state.latches.ballast_used_kg += decision.pulse_s * params["BAL_FLOW_KGPS"]
        elif decision.action == Action.VENT:
            vent_pulses.append(decision.pulse_s)
            vented_kg += decision.pulse_s * params["ALT_VENT_FLOW"]
    return worst, ballast_pulses, state.latches.ballast_used_kg, vent_pulses, vented_kg


def _sunset(params: Params, hours: float = 6.0, loss_kg: float = 5.0):
    """The sunset takes ``loss_kg`` of lift over two hours, starting an hour in."""
    worst, pulses, used, _vents, _vented = _toy_float(
        params, lambda s: -loss_kg * min(1.0, max(0.0, (s - 3600.0) / 7200.0)), hours)
    return worst, pulses, used


def test_sunrise_vents_progressively_and_spends_no_ballast():
    params = make_params()
    worst, ballast, used, vents, vented = _toy_float(
        params, lambda s: 5.0 * min(1.0, max(0.0, (s - 3600.0) / 7200.0)))
    assert worst < 500.0
    assert not ballast and used == 0.0
    assert 4.5 <= vented <= 6.0 and len(vents) >= 20


def test_quiet_float_costs_almost_nothing():
    # a slack balloon nearly in trim, drifting up at 0.1 m/s: it may cross the vent band, and the corrections
    # cost a few tens of grams at most, not a vent-and-drop cycle every few minutes
    params = make_params()
    worst, ballast, used, vents, vented = _toy_float(params, lambda s: 0.12 * 0.01, hours=4.0, restoring=0.0)
    assert used <= 0.05 and vented <= 0.05 and worst < 500.0
    assert len(ballast) + len(vents) <= 6


def test_sunset_spends_ballast_progressively_and_holds_the_band():
    params = make_params()
    worst, pulses, used = _sunset(params)
    assert worst < 500.0
    assert 4.5 <= used <= 6.0  # about the lift lost, not a panic dump
    assert max(pulses) <= params["ALT_PULSE_MAX"]
    assert len(pulses) >= 20  # many small pulses, not a few big ones


def test_sunset_with_too_little_ballast_stops_at_the_reserve():
    params = make_params(ALT_BAL_TOTAL=3.0, ALT_BAL_RESERVE=1.0)
    _worst, _pulses, used = _sunset(params)
    assert used <= 2.0 + 1e-9
