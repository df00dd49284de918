"""The phase machine, the PREFLIGHT self-test, DO_SET_MODE permissions and the dwell helpers."""

from __future__ import annotations

import math

import pytest

from flightsw.dictionary import all_param_decls
from flightsw.params import Params
from flightsw.phase import Phase
from flightsw.rules import DwellUpdate, apply_dwells, dwell, dwell_with_reference, not_holding, nothing_holds
from flightsw.rules.phases import phase_decision, phase_request, selftest
from flightsw.state import FlightState

NOW = 5000.0


def make_params(**values) -> Params:
    params = Params(all_param_decls())
    for name, value in values.items():
        ok, reason = params.set(name, value)
        assert ok, reason
    return params


def make_state(phase: Phase = Phase.PREFLIGHT, *, alt: float = 100.0, rate: float = 0.0) -> FlightState:
    state = FlightState(now_s=NOW, wall_time_s=1.7e9 + NOW)
    state.latches.phase = int(phase)
    est = state.estimate
    est.altitude_m, est.altitude_valid = alt, True
    est.vertical_rate_mps, est.vertical_rate_valid = rate, True
    est.latitude_deg, est.longitude_deg, est.position_valid, est.fix_type = 52.2, 0.1, True, 3
    state.sensors_healthy = True
    state.outputs_safe = True
    state.link.gcs_heartbeat_s = NOW - 1.0
    state.ground_altitude_m = 100.0
    state.ground_altitude_s = NOW - 1.0
    return state


def held_for(state: FlightState, name: str, seconds: float, ref: float = math.nan) -> FlightState:
    state.dwell_since_s[name] = NOW - seconds
    if math.isfinite(ref):
        state.dwell_ref[name] = ref
    return state


# ---------------------------------------------------------------- self-test

def _sensor_fault(s):
    s.sensors_healthy = False
    s.sensor_faults = ("ms5611@0x77",)


def _outputs_active(s):
    s.outputs_safe = False


def _link_never(s):
    s.link.gcs_heartbeat_s = math.nan


def _link_stale(s):
    s.link.gcs_heartbeat_s = NOW - 60.0


@pytest.mark.parametrize("breaks, failing", [
    (lambda s: None, ()),
    (_sensor_fault, ("sensors",)),
    (_outputs_active, ("outputs",)),
    (_link_never, ("link",)),
    (_link_stale, ("link",)),
])
def test_selftest_names_each_failure(breaks, failing):
    state = make_state()
    breaks(state)
    result = selftest(state, make_params(), NOW)
    assert result.ok == (not failing)
    assert tuple(f.name for f in result.failures) == failing


def test_selftest_reason_names_the_failing_sensor():
    state = make_state()
    _sensor_fault(state)
    assert "ms5611@0x77" in selftest(state, make_params(), NOW).describe()


# ---------------------------------------------------------------- transitions

def _preflight_climbing(dwell_s):
    return held_for(make_state(Phase.PREFLIGHT, rate=3.0), "launch_rate", dwell_s)


def _preflight_gain(dwell_s):
    state = make_state(Phase.PREFLIGHT, alt=260.0, rate=0.0)
    state.estimate.vertical_rate_valid = False
    return held_for(state, "launch_gain", dwell_s)


def _ascent_settled(dwell_s, alt=28000.0, rate=0.2):
    return held_for(make_state(Phase.ASCENT, alt=alt, rate=rate), "float", dwell_s)


def _ground_target(alt, rate, target):
    state = _ascent_settled(121.0, alt=alt, rate=rate)
    state.latches.float_target_altitude_m = target
    return state


def _sinking(phase, rate, dwell_s):
    return held_for(make_state(phase, alt=20000.0, rate=rate), "descent", dwell_s)


def _still(phase, dwell_s, alt=120.0, ref=118.0):
    return held_for(make_state(phase, alt=alt, rate=0.1), "landed", dwell_s, ref)


TRANSITIONS = [
    # (id, state factory, params, expected phase)
    ("launch by climb rate", lambda: _preflight_climbing(6.0), {}, Phase.ASCENT),
    ("launch climb rate below dwell", lambda: _preflight_climbing(4.0), {}, Phase.PREFLIGHT),
    ("launch by altitude gain", lambda: _preflight_gain(6.0), {}, Phase.ASCENT),
    ("launch gain below dwell", lambda: _preflight_gain(2.0), {}, Phase.PREFLIGHT),
    ("no launch when still", lambda: make_state(Phase.PREFLIGHT), {}, Phase.PREFLIGHT),
    ("float detected", lambda: _ascent_settled(301.0), {"FLT_MODE": 1}, Phase.FLOAT),
    ("float superpressure", lambda: _ascent_settled(301.0), {"FLT_MODE": 2}, Phase.FLOAT),
    ("float below dwell", lambda: _ascent_settled(100.0), {"FLT_MODE": 1}, Phase.ASCENT),
    ("overshoot then sink is a float", lambda: _ascent_settled(121.0, alt=30300.0, rate=-1.5), {"FLT_MODE": 1},
     Phase.FLOAT),
    ("sunset-speed sink after the climb is a float", lambda: _ascent_settled(121.0, alt=26000.0, rate=-3.0),
     {"FLT_MODE": 1}, Phase.FLOAT),
    ("still climbing above the target", lambda: _ascent_settled(600.0, alt=29500.0, rate=1.0), {"FLT_MODE": 1},
     Phase.ASCENT),
    ("slow climb near the target", lambda: _ascent_settled(121.0, alt=27800.0, rate=1.0), {"FLT_MODE": 1},
     Phase.FLOAT),
    ("fast climb through the target", lambda: _ascent_settled(121.0, alt=28100.0, rate=8.0), {"FLT_MODE": 1},
     Phase.ASCENT),
    ("near-target detection off", lambda: _ascent_settled(121.0, alt=28100.0, rate=1.0),
     {"FLT_MODE": 1, "PH_FLOAT_NEAR": 0.0}, Phase.ASCENT),
    ("near the ground's target", lambda: _ground_target(25100.0, 1.0, 25000.0), {"FLT_MODE": 1}, Phase.FLOAT),
    ("ground's target elsewhere", lambda: _ground_target(28000.0, 1.0, 25000.0), {"FLT_MODE": 1}, Phase.ASCENT),
    ("no float sinking below the floor", lambda: _ascent_settled(121.0, alt=14000.0, rate=-2.0), {"FLT_MODE": 1},
     Phase.ASCENT),
    ("no float for latex flight", lambda: _ascent_settled(301.0), {"FLT_MODE": 0}, Phase.ASCENT),
    ("no float below floor", lambda: _ascent_settled(301.0, alt=9000.0), {"FLT_MODE": 1}, Phase.ASCENT),
    ("burst in ascent", lambda: _sinking(Phase.ASCENT, -20.0, 11.0), {}, Phase.DESCENT),
    ("descent below dwell", lambda: _sinking(Phase.ASCENT, -20.0, 5.0), {}, Phase.ASCENT),
    ("sunset sink stays in float", lambda: _sinking(Phase.FLOAT, -3.0, 600.0), {"FLT_MODE": 1}, Phase.FLOAT),
    ("fast sink from float", lambda: _sinking(Phase.FLOAT, -15.0, 11.0), {"FLT_MODE": 1}, Phase.DESCENT),
    ("termination goes to descent", lambda: _sinking(Phase.TERMINATION, -30.0, 11.0), {}, Phase.DESCENT),
    ("landed from descent", lambda: _still(Phase.DESCENT, 61.0), {}, Phase.LANDED),
    ("landed below dwell", lambda: _still(Phase.DESCENT, 30.0), {}, Phase.DESCENT),
    ("landed from termination", lambda: _still(Phase.TERMINATION, 61.0), {}, Phase.LANDED),
    ("no landing when high", lambda: _still(Phase.DESCENT, 61.0, alt=12000.0, ref=12000.0), {}, Phase.DESCENT),
    ("no landing when drifting", lambda: _still(Phase.DESCENT, 61.0, alt=160.0, ref=118.0), {}, Phase.DESCENT),
    ("landed stays landed", lambda: _sinking(Phase.LANDED, -20.0, 100.0), {}, Phase.LANDED),
    ("ascent does not land", lambda: _still(Phase.ASCENT, 61.0), {}, Phase.ASCENT),
]


@pytest.mark.parametrize("make, values, expected", [t[1:] for t in TRANSITIONS], ids=[t[0] for t in TRANSITIONS])
def test_phase_transitions(make, values, expected):
    state = make()
    decision = phase_decision(state, make_params(**values), NOW)
    assert decision.phase is expected
    assert decision.changed == (expected is not state.phase)
    if decision.changed:
        assert decision.reason


@pytest.mark.parametrize("override, expected", [(False, Phase.PREFLIGHT), (True, Phase.ASCENT)])
def test_launch_with_failing_selftest_needs_the_override(override, expected):
    state = _preflight_climbing(6.0)
    state.sensors_healthy = False
    state.latches.preflight_override = override
    decision = phase_decision(state, make_params(), NOW)
    assert decision.phase is expected
    assert decision.launch_blocked == (not override)
    if not override:
        assert "sensors" in decision.reason


def test_ground_reference_follows_slowly_and_freezes_while_climbing():
    params = make_params(PH_GROUND_TAU=60.0)
    state = make_state(alt=130.0, rate=0.0)
    state.ground_altitude_m, state.ground_altitude_s = 100.0, NOW - 6.0
    moved = phase_decision(state, params, NOW).ground_altitude_m
    assert moved == pytest.approx(100.0 + 30.0 * 6.0 / 60.0)
    state.estimate.vertical_rate_mps = 4.0
    assert phase_decision(state, params, NOW).ground_altitude_m == 100.0


def test_dwells_are_started_and_cleared():
    state = make_state(Phase.ASCENT, rate=-20.0)
    decision = phase_decision(state, make_params(), NOW)
    apply_dwells(state, decision.dwells)
    assert state.dwell_since_s["descent"] == NOW
    state.estimate.vertical_rate_mps = -1.0
    apply_dwells(state, phase_decision(state, make_params(), NOW + 1).dwells)
    assert "descent" not in state.dwell_since_s


def test_decision_to_stay_follows_its_inputs():
    """The decision to stay in a phase is handed out again while nothing changes; a condition that starts to
    hold, a dwell that goes on and a parameter change each give the decision a fresh evaluation gives."""
    state, params = make_state(Phase.ASCENT, alt=12000.0, rate=5.0), make_params()
    quiet = phase_decision(state, params, NOW)
    assert (quiet.phase, quiet.changed, quiet.reason) == (Phase.ASCENT, False, "")
    assert [(u.name, math.isnan(u.since_s)) for u in quiet.dwells] == [("descent", True)]
    assert phase_decision(state, params, NOW + 1) is quiet
    state.estimate.vertical_rate_mps = -20.0
    sinking = phase_decision(state, params, NOW + 2)
    assert not sinking.changed and sinking.dwells == (DwellUpdate("descent", NOW + 2),)
    apply_dwells(state, sinking.dwells)
    assert phase_decision(state, params, NOW + 3).dwells == (DwellUpdate("descent", NOW + 2),)
    assert phase_decision(state, params, NOW + 12).phase is Phase.DESCENT
    state.estimate.vertical_rate_mps = 5.0
    apply_dwells(state, phase_decision(state, params, NOW + 13).dwells)
    assert "descent" not in state.dwell_since_s
    assert [u.name for u in phase_decision(state, params, NOW + 14).dwells] == ["descent"]
    params.set("FLT_MODE", 1)
    floating = phase_decision(state, params, NOW + 15)
    assert [u.name for u in floating.dwells] == ["descent", "float"] and not floating.changed


# ---------------------------------------------------------------- DO_SET_MODE

REQUESTS = [
    # (current, requested, FLT_MODE, terminated, allowed)
    (Phase.PREFLIGHT, Phase.ASCENT, 0, False, True),
    (Phase.PREFLIGHT, Phase.FLOAT, 1, False, False),
    (Phase.PREFLIGHT, Phase.LANDED, 0, False, False),
    (Phase.ASCENT, Phase.FLOAT, 1, False, True),
    (Phase.ASCENT, Phase.FLOAT, 0, False, False),
    (Phase.ASCENT, Phase.DESCENT, 0, False, True),
    (Phase.ASCENT, Phase.PREFLIGHT, 0, False, False),
    (Phase.FLOAT, Phase.ASCENT, 1, False, True),
    (Phase.FLOAT, Phase.DESCENT, 1, False, True),
    (Phase.FLOAT, Phase.LANDED, 1, False, False),
    (Phase.DESCENT, Phase.FLOAT, 1, False, True),
    (Phase.DESCENT, Phase.LANDED, 1, False, True),
    (Phase.LANDED, Phase.DESCENT, 0, False, True),
    (Phase.LANDED, Phase.ASCENT, 0, False, False),
    (Phase.FLOAT, Phase.TERMINATION, 1, False, False),
    (Phase.TERMINATION, Phase.DESCENT, 1, True, True),
    (Phase.TERMINATION, Phase.LANDED, 1, True, True),
    (Phase.TERMINATION, Phase.FLOAT, 1, True, False),
    (Phase.DESCENT, Phase.FLOAT, 1, True, False),
    (Phase.FLOAT, Phase.FLOAT, 1, False, True),
]


@pytest.mark.parametrize("current, requested, mode, terminated, allowed", REQUESTS)
def test_phase_requests(current, requested, mode, terminated, allowed):
    state = make_state(current)
    state.latches.termination_fired = terminated
    decision = phase_request(state, make_params(FLT_MODE=mode), requested, NOW)
    assert decision.allowed is allowed
    assert decision.reason


@pytest.mark.parametrize("override, allowed", [(False, False), (True, True)])
def test_manual_launch_needs_selftest_or_override(override, allowed):
    state = make_state(Phase.PREFLIGHT)
    state.outputs_safe = False
    state.latches.preflight_override = override
    assert phase_request(state, make_params(), Phase.ASCENT, NOW).allowed is allowed


# ---------------------------------------------------------------- dwell helpers

@pytest.mark.parametrize("since, condition, dwell_s, held, new_since", [
    (None, True, 5.0, False, NOW),
    (NOW - 4.9, True, 5.0, False, NOW - 4.9),
    (NOW - 5.0, True, 5.0, True, NOW - 5.0),
    (NOW - 100.0, False, 5.0, False, None),
    (None, True, 0.0, True, NOW),
    (NOW + 10.0, True, 5.0, False, NOW),  # a start in the future (clock reset) restarts the dwell
])
def test_dwell(since, condition, dwell_s, held, new_since):
    state = FlightState()
    if since is not None:
        state.dwell_since_s["x"] = since
    got, update = dwell(state, "x", condition, NOW, dwell_s)
    assert got is held
    apply_dwells(state, [update])
    assert state.dwell_since_s.get("x") == new_since


def test_dwell_with_reference_restarts_when_the_value_leaves_the_band():
    state = FlightState()
    state.dwell_since_s["y"], state.dwell_ref["y"] = NOW - 100.0, 50.0
    held, update = dwell_with_reference(state, "y", True, 55.0, 10.0, NOW, 60.0)
    assert held and update.since_s == NOW - 100.0 and update.ref == 50.0
    held, update = dwell_with_reference(state, "y", True, 65.0, 10.0, NOW, 60.0)
    assert not held and update == DwellUpdate("y", NOW, 65.0)


@pytest.mark.parametrize("shared", [True, False], ids=["nothing_holds", "plain tuple"])
def test_applying_updates_that_nothing_holds(shared):
    """The shared "nothing holds" tuple clears what the state remembers of its names, like the same updates one by
    one, and leaves every other name alone."""
    updates = nothing_holds(["x", "y"]) if shared else (not_holding("x"), not_holding("y"))
    state = FlightState()
    state.dwell_since_s.update(x=NOW - 1.0, z=NOW - 2.0)
    state.dwell_ref.update(y=3.0, z=4.0)
    apply_dwells(state, updates)
    assert state.dwell_since_s == {"z": NOW - 2.0} and state.dwell_ref == {"z": 4.0}
    apply_dwells(state, updates)
    assert state.dwell_since_s == {"z": NOW - 2.0} and state.dwell_ref == {"z": 4.0}
    assert list(updates) == [DwellUpdate("x", updates[0].since_s), DwellUpdate("y", updates[1].since_s)]
    assert all(math.isnan(update.since_s) for update in updates)
