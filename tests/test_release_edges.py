"""Release at its edges: every launch-commit window at, just inside and just beyond each end (the windows are
inclusive), every guard (no valid position, a three-vertex launch box, a GO from the future, NaN readings), the
reason the operator reads for each failing criterion; the sequence and the ground's requests in full (next state,
commands, events with severity and text); the arm timeout and separation thresholds at their boundaries.
test_rules_release.py has the nominal tables."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest

from flightsw.phase import Phase
from flightsw.rules.release import (CriteriaResult, Command, Event, Outcome, ReleaseInputs, ReleaseReport,
                                    ReleaseState, release_criteria, release_request, release_step)
from flightsw.rules import Failure
from test_rules_release import ALL_HOLD, BOX, FAILING, MISSION, NOON_UTC_S, NOW, READY, armed, fired, given, \
    good_state, make_params

PARAMS = make_params()
TRIANGLE = ((40.0, -106.0), (41.0, -105.5), (40.0, -105.0))


def failures(change=None, params=PARAMS, mission=MISSION) -> list[tuple[str, str]]:
    state = good_state()
    if change:
        change(state)
    return [(f.name, f.reason) for f in release_criteria(state, params, NOW, mission).failures]


def est(**values):
    def change(state):
        for name, value in values.items():
            setattr(state.estimate, name, value)
    return change


def link(**values):
    def change(state):
        for name, value in values.items():
            setattr(state.link, name, value)
    return change


# ----------------------------------------------------------------------------------------------- the windows

# (criterion, change, failure or None): defaults REL_ALT 25000..32000 m, REL_RATE -1..6 m/s, REL_VOLT 6.6..30 V,
# REL_TEMP -40..60 degC, REL_MIN_SATS 6, REL_LINK_AGE_S 10 s, REL_GO_WINDOW_S 300 s
WINDOWS = [
    ("altitude", est(altitude_m=25000.0), None),
    ("altitude", est(altitude_m=32000.0), None),
    ("altitude", est(altitude_m=24999.0), "24999 m outside 25000..32000 m"),
    ("altitude", est(altitude_m=32001.0), "32001 m outside 25000..32000 m"),
    ("altitude", est(altitude_m=math.nan), "no valid altitude"),
    ("altitude", est(altitude_valid=False), "no valid altitude"),
    ("vertical_rate", est(vertical_rate_mps=-1.0), None),
    ("vertical_rate", est(vertical_rate_mps=6.0), None),
    ("vertical_rate", est(vertical_rate_mps=-1.01), "-1.0 m/s outside -1.0..6.0 m/s"),
    ("vertical_rate", est(vertical_rate_mps=6.04), "6.0 m/s outside -1.0..6.0 m/s"),
    ("vertical_rate", est(vertical_rate_mps=math.inf), "no valid vertical rate"),
    ("vertical_rate", est(vertical_rate_valid=False), "no valid vertical rate"),
    ("bus_voltage", est(bus_voltage_v=6.6), None),
    ("bus_voltage", est(bus_voltage_v=30.0), None),
    ("bus_voltage", est(bus_voltage_v=6.59), "6.59 V outside 6.60..30.00 V"),
    ("bus_voltage", est(bus_voltage_v=30.01), "30.01 V outside 6.60..30.00 V"),
    ("bus_voltage", est(bus_voltage_v=math.nan), "no valid bus voltage"),
    ("bus_voltage", est(power_valid=False), "no valid bus voltage"),
    ("temperature", est(temperatures_c=(-40.0, 60.0)), None),
    ("temperature", est(temperatures_c=(-40.1, 0.0)), "-40.1 degC outside -40..60 degC"),
    ("temperature", est(temperatures_c=(60.1, -40.2)), "60.1, -40.2 degC outside -40..60 degC"),
    ("temperature", est(temperatures_c=()), "no valid temperatures"),
    ("temperature", est(temperature_valid=False), "no valid temperatures"),
    ("gps_fix", est(fix_type=3, satellites=6), None),
    ("gps_fix", est(fix_type=4), None),
    ("gps_fix", est(satellites=5), "5 satellites, need 6"),
    ("gps_fix", est(fix_type=2), "no 3-D fix (fix type 2)"),
    ("link", link(gcs_heartbeat_s=NOW - 10.0), None),
    ("link", link(gcs_heartbeat_s=NOW - 10.5), "ground station silent for 10 s"),
    ("link", link(gcs_heartbeat_s=math.nan), "ground station never heard"),
    ("ground_go", link(go_s=NOW), None),
    ("ground_go", link(go_s=NOW - 300.0), None),
    ("ground_go", link(go_s=NOW - 300.4), "ground GO is 300 s old (valid 300 s)"),
    ("ground_go", link(go_s=NOW + 0.4), "ground GO is -0 s old (valid 300 s)"),  # a GO from the future
    ("ground_go", link(go_s=math.nan), "no ground GO"),
    ("phase", lambda s: setattr(s.latches, "phase", int(Phase.ASCENT)), None),
    ("phase", lambda s: setattr(s.latches, "phase", int(Phase.TERMINATION)), "not in ASCENT or FLOAT (TERMINATION)"),
]


@pytest.mark.parametrize("criterion, change, failure", WINDOWS,
                         ids=[f"{row[0]}-{row[2] or 'holds'}" for row in WINDOWS])
def test_each_window_is_inclusive_and_its_failure_names_the_figures(criterion, change, failure):
    assert failures(change) == ([] if failure is None else [(criterion, failure)])


def test_a_gps_fix_needs_a_valid_position():
    assert failures(est(position_valid=False)) == [("launch_box", "no valid position"),
                                                   ("gps_fix", "no 3-D fix (fix type 3)")]


@pytest.mark.parametrize("latitude_deg, longitude_deg", [(math.nan, -105.5), (40.5, math.nan), (math.inf, -105.5)])
def test_the_launch_box_is_never_passed_without_a_position_that_is_a_number(latitude_deg, longitude_deg):
    """Issue 22's example: the launch-box check with no valid position must not be skipped."""
    assert failures(est(latitude_deg=latitude_deg, longitude_deg=longitude_deg)) == [
        ("launch_box", "no valid position")]


def test_a_position_outside_the_launch_box_is_named():
    assert failures(est(latitude_deg=41.5)) == [("launch_box", "41.50000, -105.50000 outside the launch box")]


def test_a_three_vertex_launch_box_is_a_launch_box():
    """Issue 22's example: a three-vertex launch box must not be treated as missing."""
    mission = SimpleNamespace(launch_box=TRIANGLE, geofence=())
    assert failures(est(latitude_deg=40.2, longitude_deg=-105.5), mission=mission) == []
    assert failures(est(latitude_deg=40.9, longitude_deg=-105.1), mission=mission) == [
        ("launch_box", "40.90000, -105.10000 outside the launch box")]


@pytest.mark.parametrize("box", [(), BOX[:2], None])
def test_fewer_than_three_vertices_is_no_launch_box(box):
    assert failures(mission=SimpleNamespace(launch_box=box, geofence=())) == [
        ("launch_box", "no launch box configured")]


@pytest.mark.parametrize("start_s, end_s, failure", [
    (12 * 3600, 13 * 3600, None),  # noon is the start: inside
    (11 * 3600, 12 * 3600, None),  # noon is the end: inside
    (12 * 3600 + 60, 13 * 3600, "12:00 UTC outside 12:01..13:00"),
    (22 * 3600, 2 * 3600, "12:00 UTC outside 22:00..02:00"),
])
def test_the_time_of_day_window_is_inclusive_and_told_in_hours_and_minutes(start_s, end_s, failure):
    params = make_params(REL_TOD_EN=1, REL_TOD_START=start_s, REL_TOD_END=end_s)
    assert failures(params=params) == ([] if failure is None else [("time_of_day", failure)])


def test_no_gps_time_fails_the_time_of_day_window():
    params = make_params(REL_TOD_EN=1)
    assert failures(est(gps_utc_time_s=math.nan), params=params) == [("time_of_day", "no GPS UTC time")]
    assert failures(est(gps_utc_time_s=NOON_UTC_S), params=params) == []


def test_the_criteria_are_described_in_order_or_as_all_holding():
    assert ALL_HOLD.describe() == "all criteria hold" and ALL_HOLD.failing == ()
    result = CriteriaResult(False, (Failure("altitude", "low"), Failure("link", "silent")))
    assert result.describe() == "altitude: low; link: silent"
    assert result.failing == ("altitude", "link")


# ----------------------------------------------------------------------------------------------- the sequence

def _same(a, b) -> bool:
    return all(x == y or (isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y))
               for x, y in zip(a, b))


DISARMED = dict(armed=False, armed_s=math.nan)
# (case, state, inputs, parameters, what changes, commands, events)
STEPS = [
    ("a failing criterion disarms and says which", armed(),
     given(CriteriaResult(False, (Failure("link", "silent"),)), report=READY), {}, DISARMED, ["disarm"],
     [("disarm", "warning", "release disarmed: link: silent")]),
    ("the arm timeout disarms", armed(120.01), given(report=READY), {}, DISARMED, ["disarm"],
     [("disarm", "warning", "release disarmed: not fired within 120 s of arming")]),
    ("armed exactly the arm timeout: still armed", armed(120.0), given(report=READY), {}, {}, [], []),
    ("an arm time not known never times out", armed(math.nan), given(report=READY), {}, {}, [], []),
    ("a failed ARM write is armed again and told once", armed(), given(report=ReleaseReport(arm_failed=True)), {},
     dict(problem="release ARM line write failed: arming again"), ["arm"],
     [("release_problem", "error", "release ARM line write failed: arming again")]),
    ("a failed ARM write told before is not told again",
     armed(problem="release ARM line write failed: arming again"), given(report=ReleaseReport(arm_failed=True)), {},
     {}, ["arm"], []),
    ("an ARM line that dropped without a write error is armed again quietly", armed(),
     given(report=ReleaseReport()), {}, {}, ["arm"], []),
    ("auto arms in the window", ReleaseState(), given(), {"REL_AUTO": 1}, dict(armed=True, armed_s=NOW), ["arm"],
     [("arm", "warning", "release ARMED: autonomous release: window reached")]),
    ("auto blocked does not arm", ReleaseState(auto_blocked=True), given(), {"REL_AUTO": 1}, {}, [], []),
    ("auto without criteria does not arm", ReleaseState(), given(None), {"REL_AUTO": 1}, {}, [], []),
    ("auto commits once ready", armed(), given(report=READY, vertical_rate_mps=2.5), {"REL_AUTO": 1},
     dict(fired=True, fired_s=NOW, reason="autonomous release: all criteria hold", pending=True, fired_rate_mps=2.5),
     ["fire"], []),
    ("auto commits without a valid rate", armed(), given(report=READY, vertical_rate_valid=False), {"REL_AUTO": 1},
     dict(fired=True, fired_s=NOW, reason="autonomous release: all criteria hold", pending=True), ["fire"], []),
    ("a manual release armed and ready waits for the ground", armed(), given(report=READY), {}, {}, [], []),
    ("a termination disarms an armed release", armed(), given(None, terminated=True, report=READY), {}, DISARMED,
     ["disarm"], [("disarm", "warning", "release disarmed: flight terminated")]),
    ("a termination leaves a release that is not armed alone", ReleaseState(), given(None, terminated=True), {},
     {}, [], []),
    ("the burn started", fired(0.05, burn_confirmed=False, pending=True, armed=True, problem="an earlier problem"),
     given(None, report=ReleaseReport(armed=True, firing=True, fire_result="started")), {},
     dict(burn_confirmed=True, pending=False, problem=""), [],
     [("release_fired", "critical", "RELEASE FIRED: ground command")]),
    ("a FIRE write failed: fired again", fired(0.05, burn_confirmed=False, pending=True, armed=True, write_faults=2),
     given(None, report=ReleaseReport(armed=True, ready="", fire_result="write_failed", fire_reason="")), {},
     dict(write_faults=3, problem="release FIRE line failed (write_failed): firing again"), ["fire"],
     [("release_problem", "error", "release FIRE line failed (write_failed): firing again")]),
    ("a refused fire is told with its reason", fired(0.05, burn_confirmed=False, pending=True, armed=True),
     given(None, report=ReleaseReport(armed=True, ready="armed too recently", fire_result="refused",
                                      fire_reason="armed too recently")), {},
     dict(write_faults=1, problem="release FIRE line failed (armed too recently): firing again"), [],
     [("release_problem", "error", "release FIRE line failed (armed too recently): firing again")]),
    ("a FIRE failure told before is not told again",
     fired(0.05, burn_confirmed=False, pending=True, armed=True,
           problem="release FIRE line failed (write_failed): firing again"),
     given(None, report=ReleaseReport(armed=True, ready="", fire_result="write_failed")), {},
     dict(write_faults=1), ["fire"], []),
    ("the last retry is still tried", fired(0.05, burn_confirmed=False, pending=True, armed=True, write_faults=4),
     given(None, report=ReleaseReport(armed=True, ready="", fire_result="write_failed")), {"REL_FIRE_RETRIES": 5},
     dict(write_faults=5, problem="release FIRE line failed (write_failed): firing again"), ["fire"],
     [("release_problem", "error", "release FIRE line failed (write_failed): firing again")]),
    ("one failure more than the retries: given up",
     fired(0.05, burn_confirmed=False, pending=True, armed=True, write_faults=5),
     given(None, report=ReleaseReport(armed=True, ready="", fire_result="refused", fire_reason="line fault")),
     {"REL_FIRE_RETRIES": 5}, dict(pending=False, write_faults=6, armed=False, auto_blocked=True), ["disarm"],
     [("release_failed", "error", "RELEASE NOT FIRED: the FIRE line failed 6 times (line fault); it will not be "
                                  "tried again")]),
    ("a pending fire waits while the chain is not ready", fired(0.05, burn_confirmed=False, pending=True, armed=True),
     given(None, report=ReleaseReport(armed=True, ready="armed too recently")), {}, {}, [], []),
    ("fired and burned: disarmed when the burn is over", fired(6.0, armed=True, armed_s=NOW - 7.0), given(None), {},
     DISARMED, ["disarm"], []),
    ("fired and burning: not disarmed", fired(1.0, armed=True, armed_s=NOW - 2.0),
     given(None, report=ReleaseReport(armed=True, firing=True)), {}, {}, [], []),
]


@pytest.mark.parametrize("case, state, inputs, values, changes, commands, events", STEPS,
                         ids=[row[0] for row in STEPS])
def test_each_release_step_latches_commands_and_tells_exactly_this(case, state, inputs, values, changes, commands,
                                                                   events):
    new, issued, told = release_step(state, inputs, make_params(**values))
    expected = state._replace(**changes)
    assert _same(new, expected), f"{new} != {expected}"
    assert [command.kind for command in issued] == commands
    assert [tuple(event) for event in told] == events


# (case, fired this long ago, rate at firing, inputs, confirmed, timed out, event text or None)
SEPARATION = [
    ("the switch", 2.0, 0.3, dict(switch_active=True), True, False,
     "release separation confirmed: separation switch open"),
    ("a lift change exactly REL_SEP_LIFT", 2.0, 0.3, dict(lift_change_mps2=0.5), True, False,
     "release separation confirmed: lift change 0.50 m/s^2"),
    ("a lift change just under REL_SEP_LIFT", 2.0, 0.3, dict(lift_change_mps2=0.49), False, False, None),
    ("a NaN lift change", 2.0, 0.3, dict(lift_change_mps2=math.nan), False, False, None),
    ("a rise exactly REL_SEP_DV", 2.0, 0.5, dict(vertical_rate_mps=1.5), True, False,
     "release separation confirmed: vertical rate up 1.0 m/s since firing"),
    ("a rise just under REL_SEP_DV", 2.0, 0.5, dict(vertical_rate_mps=1.49), False, False, None),
    ("a rise of an invalid rate", 2.0, 0.5, dict(vertical_rate_mps=5.0, vertical_rate_valid=False), False, False,
     None),
    ("a rise with no rate at firing", 2.0, math.nan, dict(vertical_rate_mps=5.0), False, False, None),
    ("a lift change at the end of the window", 30.0, 0.3, dict(lift_change_mps2=1.0), True, False,
     "release separation confirmed: lift change 1.00 m/s^2"),
    ("a rise at the end of the window", 30.0, 0.3, dict(vertical_rate_mps=2.0), True, False,
     "release separation confirmed: vertical rate up 1.7 m/s since firing"),
    ("a lift change after the window", 30.01, 0.3, dict(lift_change_mps2=1.0), False, True,
     "release separation not confirmed: none within 30 s of firing"),
    ("a rise after the window", 30.01, 0.3, dict(vertical_rate_mps=2.0), False, True,
     "release separation not confirmed: none within 30 s of firing"),
]


@pytest.mark.parametrize("case, ago_s, rate_at_fire, values, confirmed, timed_out, text", SEPARATION,
                         ids=[row[0] for row in SEPARATION])
def test_separation_is_seen_at_its_thresholds_within_its_window(case, ago_s, rate_at_fire, values, confirmed,
                                                               timed_out, text):
    inputs = given(None, **{"lift_change_mps2": math.nan, "vertical_rate_mps": rate_at_fire, **values})
    new, _, told = release_step(fired(ago_s, fired_rate_mps=rate_at_fire), inputs, PARAMS)
    assert (new.separation_confirmed, new.separation_timed_out) == (confirmed, timed_out)
    assert [event.text for event in told] == ([] if text is None else [text])
    assert all(event.severity == ("notice" if confirmed else "warning") for event in told)


def test_separation_is_not_looked_for_once_timed_out():
    new, _, told = release_step(fired(2.0, separation_timed_out=True), given(None, switch_active=True), PARAMS)
    assert not new.separation_confirmed and told == ()


def test_a_pending_release_is_not_looked_at_for_separation():
    state = fired(0.05, burn_confirmed=False, pending=True, armed=True)
    new, _, told = release_step(state, given(None, switch_active=True, report=ReleaseReport(armed=True, ready="x")),
                                PARAMS)
    assert not new.separation_confirmed and told == ()


# ----------------------------------------------------------------------------------------------- requests

REQUESTS = [
    ("arm", ReleaseState(), given(), "arm", ("ACCEPTED", "release armed; fire within 120 s"),
     dict(armed=True, armed_s=NOW), ["arm"], [("arm", "warning", "release ARMED: from the ground")]),
    ("arm again", armed(), given(report=READY), "arm", ("ACCEPTED", "release already armed"), {}, [], []),
    ("arm with a failing criterion", ReleaseState(), given(CriteriaResult(False, (Failure("link", "silent"),))),
     "arm", ("DENIED", "release criteria fail: link: silent"), {}, [], []),
    ("arm without criteria", ReleaseState(), given(None), "arm", ("DENIED", "release criteria fail: ?"), {}, [], []),
    ("arm after a termination", ReleaseState(), given(None, terminated=True), "arm",
     ("DENIED", "flight terminated"), {}, [], []),
    ("fire after firing", fired(1.0), given(None, report=READY), "fire", ("DENIED", "release already fired"), {},
     [], []),
    ("fire unarmed", ReleaseState(), given(report=READY), "fire", ("DENIED", "release not armed"), {}, [], []),
    ("fire with the chain dropped", armed(), given(report=ReleaseReport()), "fire",
     ("DENIED", "release not armed"), {}, [], []),
    ("fire armed exactly the arm timeout", armed(120.0), given(report=READY, vertical_rate_mps=1.5), "fire",
     ("ACCEPTED", "release fired"),
     dict(fired=True, fired_s=NOW, reason="from the ground", pending=True, fired_rate_mps=1.5), ["fire"], []),
    ("fire with an arm time not known", armed(math.nan), given(report=READY), "fire",
     ("ACCEPTED", "release fired"),
     dict(fired=True, fired_s=NOW, reason="from the ground", pending=True, fired_rate_mps=0.3), ["fire"], []),
    ("fire after the arm timeout", armed(120.01), given(report=READY), "fire",
     ("DENIED", "arm timed out: release disarmed"), DISARMED, ["disarm"],
     [("disarm", "warning", "release disarmed: arm timeout")]),
    ("fire with a failing criterion", armed(), given(CriteriaResult(False, (Failure("link", "silent"),)),
                                                     report=READY), "fire",
     ("DENIED", "release criteria fail, disarmed: link: silent"), DISARMED, ["disarm"],
     [("disarm", "warning", "release disarmed: link: silent")]),
    ("fire without criteria", armed(), given(None, report=READY), "fire",
     ("DENIED", "release criteria fail, disarmed: ?"), DISARMED, ["disarm"],
     [("disarm", "warning", "release disarmed: ?")]),
    ("fire before the chain is ready", armed(), given(report=ReleaseReport(armed=True, ready="armed too recently")),
     "fire", ("TEMPORARILY_REJECTED", "release chain not ready (armed too recently): fire again"), {}, [], []),
    ("disarm an armed release", armed(), given(report=READY), "disarm", ("ACCEPTED", "release disarmed"), DISARMED,
     ["disarm"], [("disarm", "warning", "release disarmed: from the ground")]),
    ("disarm a release that is not armed", ReleaseState(), given(), "disarm", ("ACCEPTED", "release disarmed"),
     DISARMED, ["disarm"], []),
    ("something else", ReleaseState(), given(), "grab", ("UNSUPPORTED", "unknown release request 'grab'"), {}, [],
     []),
]


@pytest.mark.parametrize("case, state, inputs, asked, outcome, changes, commands, events", REQUESTS,
                         ids=[row[0] for row in REQUESTS])
def test_each_ground_request_answers_latches_and_tells_exactly_this(case, state, inputs, asked, outcome, changes,
                                                                    commands, events):
    result, new, issued, told = release_request(state, inputs, PARAMS, asked, "from the ground")
    assert result == Outcome(*outcome)
    assert _same(new, state._replace(**changes)), new
    assert [command.kind for command in issued] == commands
    assert [tuple(event) for event in told] == events


def test_a_fire_request_is_a_fire_command_and_the_commit_comes_with_it():
    _, new, issued, told = release_request(armed(), given(report=READY), PARAMS, "fire", "why")
    assert issued == (Command("fire"),) and told == ()
    assert isinstance(told, tuple) and isinstance(issued, tuple)
    assert (new.fired, new.pending, new.reason) == (True, True, "why")


def test_inputs_default_to_nothing_known():
    inputs = ReleaseInputs(NOW, None)
    assert (inputs.terminated, inputs.switch_active, inputs.vertical_rate_valid) == (False, False, False)
    assert math.isnan(inputs.lift_change_mps2) and math.isnan(inputs.vertical_rate_mps)
    assert inputs.report == ReleaseReport() and ReleaseReport().ready == "not armed"
    assert Event("a", "b", "c").text == "c"


def test_a_release_whose_firing_time_is_not_known_is_told_separation_was_not_seen():
    new, _, told = release_step(fired(math.nan), given(None), PARAMS)
    assert new.separation_timed_out and not new.separation_confirmed
    assert [tuple(event) for event in told] == [
        ("separation_not_seen", "warning", "release separation not confirmed: the firing time is not known")]


def test_a_mission_without_a_launch_box_has_none():
    assert failures(mission=SimpleNamespace(geofence=())) == [("launch_box", "no launch box configured")]
