"""Release: every launch-commit criterion alone blocks a release, and the ARM/FIRE/separation decisions."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest

from flightsw.dictionary import all_param_decls
from flightsw.params import Params
from flightsw.phase import Phase
from flightsw.rules.release import CRITERIA, Action, release_criteria, release_decision
from flightsw.state import FlightState

NOW = 20000.0
BOX = ((40.0, -106.0), (41.0, -106.0), (41.0, -105.0), (40.0, -105.0))
MISSION = SimpleNamespace(launch_box=BOX, geofence=())
NOON_UTC_S = 1718971200.0  # 2024-06-21 12:00:00 UTC


def make_params(**values) -> Params:
    params = Params(all_param_decls())
    for name, value in values.items():
        ok, reason = params.set(name, value)
        assert ok, reason
    return params


def good_state(phase: Phase = Phase.FLOAT) -> FlightState:
    """Every criterion holds."""
    state = FlightState(now_s=NOW)
    state.latches.phase = int(phase)
    est = state.estimate
    est.altitude_m, est.altitude_valid = 28000.0, True
    est.vertical_rate_mps, est.vertical_rate_valid = 0.3, True
    est.latitude_deg, est.longitude_deg, est.position_valid = 40.5, -105.5, True
    est.fix_type, est.satellites = 3, 9
    est.bus_voltage_v, est.power_valid = 7.6, True
    est.temperatures_c, est.temperature_valid = (-20.0, 5.0), True
    est.gps_utc_time_s = NOON_UTC_S
    state.link.gcs_heartbeat_s = NOW - 2.0
    state.link.go_s = NOW - 30.0
    return state


def _set(path: str, value):
    def change(state):
        target = state
        *parents, leaf = path.split(".")
        for name in parents:
            target = getattr(target, name)
        setattr(target, leaf, value)
    return change


# each criterion alone failing: (criterion, mutation)
ALONE = [
    ("phase", _set("latches.phase", int(Phase.DESCENT))),
    ("phase", _set("latches.phase", int(Phase.PREFLIGHT))),
    ("altitude", _set("estimate.altitude_m", 24000.0)),
    ("altitude", _set("estimate.altitude_m", 33000.0)),
    ("altitude", _set("estimate.altitude_valid", False)),
    ("launch_box", _set("estimate.latitude_deg", 41.5)),
    ("gps_fix", _set("estimate.fix_type", 2)),
    ("gps_fix", _set("estimate.satellites", 4)),
    ("vertical_rate", _set("estimate.vertical_rate_mps", -2.0)),
    ("vertical_rate", _set("estimate.vertical_rate_mps", 7.0)),
    ("vertical_rate", _set("estimate.vertical_rate_valid", False)),
    ("link", _set("link.gcs_heartbeat_s", NOW - 11.0)),
    ("link", _set("link.gcs_heartbeat_s", math.nan)),
    ("ground_go", _set("link.go_s", math.nan)),
    ("ground_go", _set("link.go_s", NOW - 301.0)),
    ("bus_voltage", _set("estimate.bus_voltage_v", 6.0)),
    ("bus_voltage", _set("estimate.power_valid", False)),
    ("temperature", _set("estimate.temperatures_c", (-45.0, 5.0))),
    ("temperature", _set("estimate.temperatures_c", (20.0, 65.0))),
    ("temperature", _set("estimate.temperature_valid", False)),
    ("temperature", _set("estimate.temperatures_c", (math.nan, math.nan))),
    ("temperature", _set("estimate.temperatures_c", (math.nan, 65.0))),
]


def test_all_criteria_hold():
    result = release_criteria(good_state(), make_params(), NOW, MISSION)
    assert result.ok and result.failures == ()


@pytest.mark.parametrize("criterion, change", ALONE, ids=[f"{c}-{i}" for i, (c, _) in enumerate(ALONE)])
def test_each_criterion_alone_blocks(criterion, change):
    state = good_state()
    change(state)
    result = release_criteria(state, make_params(), NOW, MISSION)
    assert not result.ok
    assert result.failing == (criterion,)
    assert result.failures[0].reason


def test_every_criterion_is_covered():
    assert {c for c, _ in ALONE} | {"time_of_day"} == set(CRITERIA)


def test_a_sensor_without_a_valid_temperature_is_left_out():
    """A barometer outside its rated pressure range reports no temperature; the others still count."""
    state = good_state()
    state.estimate.temperatures_c = (math.nan, -20.0)
    assert release_criteria(state, make_params(), NOW, MISSION).ok


def test_no_launch_box_blocks():
    result = release_criteria(good_state(), make_params(), NOW, SimpleNamespace(launch_box=(), geofence=()))
    assert result.failing == ("launch_box",)


@pytest.mark.parametrize("start_s, end_s, ok", [
    (11 * 3600, 13 * 3600, True),
    (13 * 3600, 14 * 3600, False),
    (22 * 3600, 13 * 3600, True),  # wraps over midnight, noon inside
    (22 * 3600, 2 * 3600, False),  # wraps over midnight, noon outside
])
def test_time_of_day_window(start_s, end_s, ok):
    params = make_params(REL_TOD_EN=1, REL_TOD_START=start_s, REL_TOD_END=end_s)
    result = release_criteria(good_state(), params, NOW, MISSION)
    assert result.failing == (() if ok else ("time_of_day",))


def test_time_of_day_needs_gps_time_only_when_enabled():
    state = good_state()
    state.estimate.gps_utc_time_s = math.nan
    assert release_criteria(state, make_params(), NOW, MISSION).ok
    assert release_criteria(state, make_params(REL_TOD_EN=1), NOW, MISSION).failing == ("time_of_day",)


def test_all_failures_are_listed_together():
    state = good_state()
    state.estimate.altitude_m = 1000.0
    state.link.go_s = math.nan
    result = release_criteria(state, make_params(), NOW, MISSION)
    assert result.failing == ("altitude", "ground_go")
    assert "altitude" in result.describe() and "ground_go" in result.describe()


# ---------------------------------------------------------------- decisions

def armed_state(armed_for_s: float = 5.0) -> FlightState:
    state = good_state()
    state.latches.release_armed = True
    state.release_armed_s = NOW - armed_for_s
    return state


@pytest.mark.parametrize("criterion, change", ALONE[:1] + ALONE[2:3] + ALONE[11:12] + ALONE[15:16])
def test_failing_criterion_while_armed_disarms(criterion, change):
    state = armed_state()
    change(state)
    decision = release_decision(state, make_params(), NOW, MISSION)
    assert decision.action == Action.DISARM
    assert criterion in decision.reason


DECISIONS = [
    # (id, state factory, params, expected action)
    ("idle when not armed", good_state, {}, Action.NONE),
    ("armed waits for FIRE", armed_state, {}, Action.NONE),
    ("arm timeout disarms", lambda: armed_state(121.0), {}, Action.DISARM),
    ("auto arms in the window", good_state, {"REL_AUTO": 1}, Action.ARM),
    ("auto fires a frame later", armed_state, {"REL_AUTO": 1}, Action.FIRE),
    ("auto does not fire in the arming frame", lambda: armed_state(0.0), {"REL_AUTO": 1}, Action.NONE),
]


@pytest.mark.parametrize("make, values, action", [d[1:] for d in DECISIONS], ids=[d[0] for d in DECISIONS])
def test_release_decisions(make, values, action):
    assert release_decision(make(), make_params(**values), NOW, MISSION).action == action


def test_auto_does_not_arm_with_a_failing_criterion():
    state = good_state()
    state.link.go_s = math.nan
    assert release_decision(state, make_params(REL_AUTO=1), NOW, MISSION).action == Action.NONE


def test_termination_disarms():
    state = armed_state()
    state.latches.termination_fired = True
    assert release_decision(state, make_params(), NOW, MISSION).action == Action.DISARM


def fired_state(seconds_ago: float, lift: float = 0.0, switch: bool = False, rise_mps: float = 0.0) -> FlightState:
    state = good_state()
    state.latches.release_fired = True
    state.release_fired_s = NOW - seconds_ago
    state.release_fired_rate_mps = state.estimate.vertical_rate_mps - rise_mps
    state.estimate.lift_change_mps2 = lift
    state.separation_switch_active = switch
    return state


@pytest.mark.parametrize("state, action", [
    (fired_state(2.0, lift=1.2), Action.SEPARATED),
    (fired_state(2.0, switch=True), Action.SEPARATED),
    (fired_state(2.0, lift=0.2), Action.NONE),
    (fired_state(12.0, rise_mps=1.5), Action.SEPARATED),  # the lighter balloon climbs faster
    (fired_state(12.0, rise_mps=0.5), Action.NONE),
    (fired_state(31.0, rise_mps=1.5), Action.SEPARATION_TIMEOUT),
    (fired_state(31.0, lift=1.2), Action.SEPARATION_TIMEOUT),
    (fired_state(math.nan), Action.SEPARATION_TIMEOUT),
])
def test_separation(state, action):
    assert release_decision(state, make_params(), NOW, MISSION).action == action


def test_separation_reported_once():
    state = fired_state(2.0, lift=1.2)
    state.latches.separation_confirmed = True
    assert release_decision(state, make_params(), NOW, MISSION).action == Action.NONE
