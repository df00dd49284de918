"""Termination reasons (each alone, with and without its dwell, enabled and disabled) and the cutdown sequence."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest

from flightsw.dictionary import all_param_decls
from flightsw.params import Params
from flightsw.phase import Phase
from flightsw.rules.termination import (FINAL_STAGES, Action, Reason, Stage, dump_seconds, should_dump, termination_check,
                                        termination_step)
from flightsw.state import FlightState

NOW = 100000.0
LAUNCH_WALL_S = 1.7e9
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
    state = FlightState(now_s=NOW, wall_time_s=LAUNCH_WALL_S + 3600.0)
    state.latches.phase = int(phase)
    state.latches.launch_wall_s = LAUNCH_WALL_S
    state.airborne_since_s = NOW - 7200.0
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
        s.wall_time_s = LAUNCH_WALL_S + seconds
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


def test_lost_link_counts_only_from_the_start_of_flight():
    state = healthy_state(Phase.ASCENT)
    state.link.gcs_heartbeat_s = NOW - 10000.0  # last heard long before launch
    state.airborne_since_s = NOW - 100.0
    assert termination_check(state, make_params(), NOW, MISSION).reason == ""
    state.link.gcs_heartbeat_s = math.nan
    state.airborne_since_s = NOW - 4000.0
    assert termination_check(state, make_params(), NOW, MISSION).reason == Reason.LINK_LOST


def test_max_duration_without_launch_time_uses_this_boots_airborne_time():
    state = healthy_state()
    state.latches.launch_wall_s = math.nan
    state.airborne_since_s = NOW - 300000.0
    assert termination_check(state, make_params(), NOW, MISSION).reason == Reason.MAX_DURATION


@pytest.mark.parametrize("phase", [Phase.PREFLIGHT, Phase.LANDED])
def test_automatic_reasons_only_count_airborne(phase):
    state = healthy_state(phase)
    _ceiling(state)
    _link_silent(1e6)(state)
    state.dwell_since_s["trm_ceiling"] = NOW - 1e6
    assert termination_check(state, make_params(), NOW, MISSION).reason == ""


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


def test_nothing_once_terminated():
    state = healthy_state()
    state.latches.termination_fired = True
    state.ground_terminate_s = NOW
    assert termination_check(state, make_params(), NOW, MISSION).reason == ""


# ---------------------------------------------------------------- dump decision

@pytest.mark.parametrize("requested, remaining_kg, alt_m, dump", [
    (True, 5.0, 27000.0, True),
    (False, 5.0, 27000.0, False),
    (True, 0.0, 27000.0, False),
    (True, 5.0, 2000.0, False),
])
def test_should_dump(requested, remaining_kg, alt_m, dump):
    state = healthy_state()
    state.estimate.altitude_m = alt_m
    assert should_dump(state, make_params(), requested, remaining_kg) is dump


def test_dump_time_is_limited():
    params = make_params(BAL_FLOW_KGPS=0.01, TRM_DUMP_MAX_S=120.0)
    assert dump_seconds(params, 0.5) == pytest.approx(50.0)
    assert dump_seconds(params, 10.0) == 120.0


# ---------------------------------------------------------------- sequence

def step_state(stage: str, elapsed_s: float = 0.0, attempts: int = 0, limit: int = 3, rate: float = 0.0):
    state = healthy_state(Phase.TERMINATION)
    state.latches.termination_fired = True
    state.latches.termination_stage = stage
    state.latches.cutdown_attempts = attempts
    state.latches.cutdown_attempt_limit = limit
    state.termination_stage_s = NOW - elapsed_s
    state.estimate.vertical_rate_mps = rate
    return state


SEQUENCE = [
    # (id, state, step kwargs, action, next stage)
    ("dump pulses", step_state(Stage.DUMP, 10.0), dict(ballast_remaining_kg=3.0), Action.DUMP_PULSE, Stage.DUMP),
    ("dump waits for valve", step_state(Stage.DUMP, 10.0), dict(ballast_remaining_kg=3.0, valve_open=True),
     Action.NONE, Stage.DUMP),
    ("dump ends when empty", step_state(Stage.DUMP, 10.0), dict(ballast_remaining_kg=0.0), Action.END_DUMP,
     Stage.ARM),
    ("dump ends at max time", step_state(Stage.DUMP, 121.0), dict(ballast_remaining_kg=3.0), Action.END_DUMP,
     Stage.ARM),
    ("arm", step_state(Stage.ARM), {}, Action.ARM, Stage.FIRE),
    ("fire when armed", step_state(Stage.FIRE), dict(cutdown_armed=True), Action.FIRE, Stage.WAIT),
    ("re-arm before fire", step_state(Stage.FIRE), dict(cutdown_armed=False), Action.ARM, Stage.FIRE),
    ("wait while burning", step_state(Stage.WAIT, 70.0, 1), dict(cutdown_firing=True), Action.NONE, Stage.WAIT),
    ("wait before timeout", step_state(Stage.WAIT, 30.0, 1), {}, Action.NONE, Stage.WAIT),
    ("retry after timeout", step_state(Stage.WAIT, 61.0, 1), {}, Action.RETRY, Stage.FIRE),
    ("give up after max tries", step_state(Stage.WAIT, 61.0, 3), {}, Action.GIVE_UP, Stage.FAILED),
    ("done stays done", step_state(Stage.DONE, 1000.0, 1), {}, Action.NONE, Stage.DONE),
]


@pytest.mark.parametrize("state, kwargs, action, next_stage", [s[1:] for s in SEQUENCE], ids=[s[0] for s in SEQUENCE])
def test_sequence_steps(state, kwargs, action, next_stage):
    args = dict(ballast_remaining_kg=0.0, valve_open=False, cutdown_armed=False, cutdown_firing=False)
    args.update(kwargs)
    step = termination_step(state, make_params(), NOW, **args)
    assert step.action == action
    assert step.next_stage == next_stage


@pytest.mark.parametrize("armed, firing, valve_open", [(False, False, False), (True, True, True)])
@pytest.mark.parametrize("stage", sorted(FINAL_STAGES))
def test_final_stages_do_nothing(stage, armed, firing, valve_open):
    """The glue does not step a sequence in a final stage: whatever the actuators say, the step there is nothing."""
    for elapsed_s, rate in ((0.0, 0.0), (1e5, -30.0)):
        step = termination_step(step_state(stage, elapsed_s, 3, rate=rate), make_params(), NOW,
                                ballast_remaining_kg=5.0, valve_open=valve_open, cutdown_armed=armed,
                                cutdown_firing=firing, cutdown_armed_s=NOW - 100.0)
        assert (step.action, step.next_stage, step.dwells) == (Action.NONE, stage, ())


def test_dump_pulse_length_is_bounded():
    params = make_params(BAL_FLOW_KGPS=0.01, TRM_DUMP_PULSE_S=20.0)
    args = dict(valve_open=False, cutdown_armed=False, cutdown_firing=False)
    assert termination_step(step_state(Stage.DUMP, 10.0), params, NOW, ballast_remaining_kg=3.0,
                            **args).pulse_s == 20.0
    assert termination_step(step_state(Stage.DUMP, 10.0), params, NOW, ballast_remaining_kg=0.05,
                            **args).pulse_s == pytest.approx(5.0)
    assert termination_step(step_state(Stage.DUMP, 110.0), params, NOW, ballast_remaining_kg=3.0,
                            **args).pulse_s == pytest.approx(10.0)


@pytest.mark.parametrize("held_s, action", [(3.0, Action.SEPARATED), (1.0, Action.NONE)])
def test_separation_needs_a_sustained_sink(held_s, action):
    state = step_state(Stage.WAIT, 10.0, 1, rate=-25.0)
    state.dwell_since_s["trm_separation"] = NOW - held_s
    step = termination_step(state, make_params(), NOW, ballast_remaining_kg=0.0, valve_open=False,
                            cutdown_armed=False, cutdown_firing=False)
    assert step.action == action


def test_fire_names_the_attempt():
    step = termination_step(step_state(Stage.FIRE, attempts=1), make_params(), NOW, ballast_remaining_kg=0.0,
                            valve_open=False, cutdown_armed=True, cutdown_firing=False)
    assert step.attempt == 2
