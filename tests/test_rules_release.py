"""Release: every launch-commit criterion alone blocks a release; the release sequence (``release_step``) for every
stage x input in tables; the ground's requests (``release_request``)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest

from flightsw.dictionary import all_param_decls
from flightsw.params import Params
from flightsw.phase import Phase
from flightsw.rules.release import (CRITERIA, ReleaseInputs, ReleaseReport, ReleaseState, release_criteria,
                                    release_request, release_step)
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


# ---------------------------------------------------------------- the sequence

ALL_HOLD = release_criteria(good_state(), make_params(), NOW, MISSION)
FAILING = release_criteria(FlightState(now_s=NOW), make_params(), NOW, MISSION)
READY = ReleaseReport(armed=True, ready="")


def armed(armed_for_s: float = 5.0, **fields) -> ReleaseState:
    return ReleaseState(armed=True, armed_s=NOW - armed_for_s, **fields)


def fired(seconds_ago: float, **fields) -> ReleaseState:
    values = dict(fired=True, fired_s=NOW - seconds_ago, burn_confirmed=True, reason="ground command",
                  fired_rate_mps=0.3)
    values.update(fields)
    return ReleaseState(**values)


def given(criteria=ALL_HOLD, **fields) -> ReleaseInputs:
    values = dict(vertical_rate_mps=0.3, vertical_rate_valid=True, lift_change_mps2=0.0)
    values.update(fields)
    return ReleaseInputs(NOW, criteria, **values)


def names(items) -> list[str]:
    return [item.name if hasattr(item, "name") else item.kind for item in items]


STEPS = [
    # (case, state, inputs, params, commands, events, what must be true after)
    ("idle when not armed", ReleaseState(), given(), {}, [], [], lambda s: not s.armed),
    ("armed waits for FIRE", armed(), given(report=READY), {}, [], [], lambda s: s.armed and not s.fired),
    ("a failing criterion disarms", armed(), given(FAILING, report=READY), {}, ["disarm"], ["disarm"],
     lambda s: not s.armed),
    ("the arm timeout disarms", armed(121.0), given(report=READY), {}, ["disarm"], ["disarm"], lambda s: not s.armed),
    ("a failed ARM write is armed again", armed(), given(report=ReleaseReport(arm_failed=True)), {}, ["arm"],
     ["release_problem"], lambda s: s.armed),
    ("auto arms in the window", ReleaseState(), given(), {"REL_AUTO": 1}, ["arm"], ["arm"], lambda s: s.armed),
    ("auto does not arm with a failing criterion", ReleaseState(), given(FAILING), {"REL_AUTO": 1}, [], [],
     lambda s: not s.armed),
    ("auto commits once ready", armed(), given(report=READY), {"REL_AUTO": 1}, ["fire"], [],
     lambda s: s.fired and s.pending and s.fired_s == NOW),
    ("auto waits for the arm to settle", armed(0.0), given(report=ReleaseReport(armed=True, ready="armed too "
                                                                                               "recently")),
     {"REL_AUTO": 1}, [], [], lambda s: not s.fired),
    ("auto blocked after a failure", armed(auto_blocked=True), given(report=READY), {"REL_AUTO": 1}, [], [],
     lambda s: not s.fired),
    ("a termination disarms an armed release", armed(), given(None, terminated=True, report=READY), {},
     ["disarm"], ["disarm"], lambda s: not s.armed),
    ("a termination lets a burn finish", armed(), given(None, terminated=True,
                                                        report=ReleaseReport(armed=True, firing=True)), {}, [], [],
     lambda s: s.armed),
    ("the burn started", fired(0.05, burn_confirmed=False, pending=True, armed=True),
     given(None, report=ReleaseReport(armed=True, firing=True, fire_result="started")), {}, [], ["release_fired"],
     lambda s: s.burn_confirmed and not s.pending),
    ("a FIRE write failed: fired again", fired(0.05, burn_confirmed=False, pending=True, armed=True),
     given(None, report=ReleaseReport(armed=True, ready="", fire_result="write_failed")), {}, ["fire"],
     ["release_problem"], lambda s: s.pending and s.write_faults == 1),
    ("a FIRE write failed, chain dropped: armed again", fired(0.05, burn_confirmed=False, pending=True),
     given(None, report=ReleaseReport(fire_result="write_failed")), {}, ["arm"], ["release_problem"],
     lambda s: s.pending),
    ("too many FIRE failures: given up", fired(0.05, burn_confirmed=False, pending=True, write_faults=5),
     given(None, report=ReleaseReport(armed=True, ready="", fire_result="write_failed")), {"REL_FIRE_RETRIES": 5},
     ["disarm"], ["release_failed"], lambda s: s.fired and not s.pending and not s.burn_confirmed),
    ("fired and burned: disarmed", fired(6.0, armed=True), given(None), {}, ["disarm"], [], lambda s: not s.armed),
    ("separation by the switch", fired(2.0), given(None, switch_active=True), {}, [], ["separation_confirmed"],
     lambda s: s.separation_confirmed),
    ("separation by the lift change", fired(2.0), given(None, lift_change_mps2=1.2), {}, [],
     ["separation_confirmed"], lambda s: s.separation_confirmed),
    ("a small lift change is not separation", fired(2.0), given(None, lift_change_mps2=0.2), {}, [], [],
     lambda s: not s.separation_confirmed),
    ("separation by a faster climb", fired(12.0), given(None, vertical_rate_mps=1.8), {}, [],
     ["separation_confirmed"], lambda s: s.separation_confirmed),
    ("a small rise is not separation", fired(12.0), given(None, vertical_rate_mps=0.8), {}, [], [],
     lambda s: not s.separation_confirmed),
    ("no separation within the window", fired(31.0), given(None, vertical_rate_mps=1.8), {}, [],
     ["separation_not_seen"], lambda s: s.separation_timed_out),
    ("the window is inclusive", fired(30.0), given(None, lift_change_mps2=1.2), {}, [], ["separation_confirmed"],
     lambda s: s.separation_confirmed),
    ("an unknown firing time", fired(math.nan), given(None), {}, [], ["separation_not_seen"],
     lambda s: s.separation_timed_out),
    ("separation reported once", fired(2.0, separation_confirmed=True), given(None, lift_change_mps2=1.2), {}, [],
     [], lambda s: s.separation_confirmed),
]


@pytest.mark.parametrize("case, state, inputs, values, commands, events, after", STEPS, ids=[s[0] for s in STEPS])
def test_every_stage_and_input(case, state, inputs, values, commands, events, after):
    new, issued, told = release_step(state, inputs, make_params(**values))
    assert names(issued) == commands
    assert names(told) == events
    assert after(new)


@pytest.mark.parametrize("criterion, change", ALONE[:1] + ALONE[2:3] + ALONE[11:12] + ALONE[15:16])
def test_failing_criterion_while_armed_disarms_and_names_it(criterion, change):
    state = good_state()
    change(state)
    criteria = release_criteria(state, make_params(), NOW, MISSION)
    _, commands, events = release_step(armed(), given(criteria, report=READY), make_params())
    assert names(commands) == ["disarm"] and criterion in events[0].text


REQUESTS = [
    # (case, state, inputs, request, outcome, commands)
    ("arm", ReleaseState(), given(), "arm", "ACCEPTED", ["arm"]),
    ("arm again", armed(), given(report=READY), "arm", "ACCEPTED", []),
    ("arm with a failing criterion", ReleaseState(), given(FAILING), "arm", "DENIED", []),
    ("arm after firing", fired(5.0), given(None), "arm", "DENIED", []),
    ("arm after a termination", ReleaseState(), given(None, terminated=True), "arm", "DENIED", []),
    ("fire unarmed", ReleaseState(), given(), "fire", "DENIED", []),
    ("fire in the arming frame", armed(0.0), given(report=ReleaseReport(armed=True, ready="armed too recently")),
     "fire", "TEMPORARILY_REJECTED", []),
    ("fire", armed(), given(report=READY), "fire", "ACCEPTED", ["fire"]),
    ("fire after the arm timeout", armed(121.0), given(report=READY), "fire", "DENIED", ["disarm"]),
    ("fire with a failing criterion", armed(), given(FAILING, report=READY), "fire", "DENIED", ["disarm"]),
    ("fire twice", fired(1.0), given(None, report=READY), "fire", "DENIED", []),
    ("fire with the chain dropped", armed(), given(report=ReleaseReport()), "fire", "DENIED", []),
    ("disarm", armed(), given(report=READY), "disarm", "ACCEPTED", ["disarm"]),
    ("something else", ReleaseState(), given(), "grab", "UNSUPPORTED", []),
]


@pytest.mark.parametrize("case, state, inputs, asked, outcome, commands", REQUESTS, ids=[r[0] for r in REQUESTS])
def test_ground_requests(case, state, inputs, asked, outcome, commands):
    result, new, issued, _ = release_request(state, inputs, make_params(), asked, "ground command")
    assert result.result == outcome and result.text
    assert names(issued) == commands
    if asked == "fire" and outcome == "ACCEPTED":
        assert new.fired and new.pending and new.fired_s == NOW and new.reason == "ground command"
    if outcome == "DENIED" and asked == "fire" and commands:
        assert not new.armed
