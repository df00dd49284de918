"""The cutdown sequence as a pure state machine: every stage x input, in tables (in the style of PX4's failsafe
framework tests), the resume after a restart, and when the termination heartbeat must stop."""

from __future__ import annotations

import math

import pytest

from flightsw.dictionary import all_param_decls
from flightsw.params import Params
from flightsw.rules.cutdown import (FIRE_STALL_S, CutdownState, Inputs, Report, Stage, cutdown_needs_backup,
                                    cutdown_step, resume)

NOW = 1000.0
ARMED_READY = Report(armed=True, ready="")


def params(**values) -> Params:
    result = Params(all_param_decls())
    for name, value in {"TRM_SEP_TMO_S": 60.0, "TRM_DUMP_MAX_S": 120.0, "TRM_DUMP_PULSE_S": 20.0,
                        "BAL_FLOW_KGPS": 0.01, "TRM_MAX_TRIES": 3, **values}.items():
        ok, reason = result.set(name, value)
        assert ok, reason
    return result


def running(stage: str, **fields) -> CutdownState:
    """A latched termination in ``stage`` (begun 10 s ago), one attempt of three made unless said otherwise."""
    values = dict(fired=True, reason="link_lost", stage=stage, stage_s=NOW - 10.0, attempts=0, attempt_limit=3)
    values.update(fields)
    return CutdownState(**values)


def inputs(**fields) -> Inputs:
    values = dict(now_s=NOW, high_enough=True, ballast_remaining_kg=5.0)
    values.update(fields)
    return Inputs(**values)


def kinds(commands) -> list:
    return [(command.kind, command.value) if command.kind in ("fire", "dump_pulse") else command.kind
            for command in commands]


# (case, state, inputs, next stage, commands, events)
CASES = [
    # --- not terminated
    ("nothing holds", CutdownState(), inputs(), Stage.NONE, [], []),
    ("an immediate reason arms at once", CutdownState(), inputs(reason="ceiling", reason_text="above"),
     Stage.FIRE, ["close_valves", "arm"], ["termination"]),
    ("a waiting reason dumps first", CutdownState(), inputs(reason="link_lost"),
     Stage.DUMP, [("dump_pulse", 20.0)], ["termination"]),
    ("a waiting reason below the dump altitude cuts", CutdownState(), inputs(reason="link_lost", high_enough=False),
     Stage.FIRE, ["close_valves", "arm"], ["termination"]),
    ("a waiting reason without ballast cuts", CutdownState(), inputs(reason="max_duration", ballast_remaining_kg=0.0),
     Stage.FIRE, ["close_valves", "arm"], ["termination"]),
    ("the ground cuts without a dump by default", CutdownState(), inputs(ground=True),
     Stage.FIRE, ["close_valves", "arm"], ["termination"]),
    # --- dump
    ("dump: pulse while the valve is closed", running(Stage.DUMP), inputs(ballast_remaining_kg=0.05),
     Stage.DUMP, [("dump_pulse", 5.0)], []),
    ("dump: wait while the valve is open", running(Stage.DUMP), inputs(report=Report(valve_open=True)),
     Stage.DUMP, [], []),
    ("dump: ballast gone", running(Stage.DUMP), inputs(ballast_remaining_kg=0.0),
     Stage.FIRE, ["close_valves", "arm"], ["ballast_dump"]),
    ("dump: time over", running(Stage.DUMP, stage_s=NOW - 120.0), inputs(),
     Stage.FIRE, ["close_valves", "arm"], ["ballast_dump"]),
    ("dump: pulse cut to the time left", running(Stage.DUMP, stage_s=NOW - 110.0), inputs(),
     Stage.DUMP, [("dump_pulse", 10.0)], []),
    ("dump: below the dump altitude", running(Stage.DUMP), inputs(high_enough=False),
     Stage.FIRE, ["close_valves", "arm"], ["ballast_dump"]),
    ("dump: the valve refused", running(Stage.DUMP), inputs(report=Report(dump_result="refused")),
     Stage.FIRE, ["close_valves", "arm"], ["ballast_dump"]),
    ("dump: a valve write failed: again", running(Stage.DUMP), inputs(report=Report(dump_result="write_failed")),
     Stage.DUMP, [("dump_pulse", 20.0)], ["cutdown_problem"]),
    ("dump: the ground cuts it short", running(Stage.DUMP), inputs(ground=True, report=Report(valve_open=True)),
     Stage.FIRE, ["close_valves", "arm"], ["ballast_dump"]),
    ("dump: an immediate reason cuts it short", running(Stage.DUMP), inputs(reason="geofence"),
     Stage.FIRE, ["close_valves", "arm"], ["ballast_dump"]),
    ("dump: another waiting reason does not", running(Stage.DUMP), inputs(reason="max_duration",
                                                                          report=Report(valve_open=True)),
     Stage.DUMP, [], []),
    # --- arm
    ("arm", running(Stage.ARM), inputs(), Stage.FIRE, ["arm"], []),
    # --- fire
    ("fire: not armed", running(Stage.FIRE), inputs(), Stage.FIRE, ["arm"], []),
    ("fire: the arm settles", running(Stage.FIRE), inputs(report=Report(armed=True, ready="armed too recently")),
     Stage.FIRE, [], []),
    ("fire: ready: commit attempt 1", running(Stage.FIRE), inputs(report=ARMED_READY),
     Stage.FIRE, [("fire", 1.0)], []),
    ("fire: ready: commit the next attempt", running(Stage.FIRE, attempts=1), inputs(report=ARMED_READY),
     Stage.FIRE, [("fire", 2.0)], []),
    ("fire: the burn started", running(Stage.FIRE, attempts=1, pending=1),
     inputs(report=Report(firing=True, fire_result="started")), Stage.WAIT, [], ["cutdown_fired"]),
    ("fire: a FIRE write failed: the same attempt again", running(Stage.FIRE, attempts=1, pending=1),
     inputs(report=Report(armed=True, ready="", fire_result="write_failed")), Stage.FIRE, [("fire", 1.0)],
     ["cutdown_problem"]),
    ("fire: refused: failed", running(Stage.FIRE, attempts=4, pending=4),
     inputs(report=Report(armed=True, ready="", fire_result="refused", fire_reason="beyond ACT_CUT_MAX_TRY")),
     Stage.FAILED, [], ["cutdown_failed"]),
    ("fire: an ARM write failed: arm again", running(Stage.FIRE), inputs(report=Report(arm_failed=True)),
     Stage.FIRE, ["arm"], ["cutdown_problem"]),
    ("fire: no attempt left", running(Stage.FIRE, attempts=3), inputs(report=ARMED_READY),
     Stage.FAILED, [], ["cutdown_failed"]),
    # --- wait
    ("wait: separated", running(Stage.WAIT, attempts=1), inputs(separated=True), Stage.DONE, ["disarm"],
     ["cutdown_separated"]),
    ("wait: burning", running(Stage.WAIT, attempts=1, stage_s=NOW - 100.0), inputs(report=Report(firing=True)),
     Stage.WAIT, [], []),
    ("wait: before the timeout", running(Stage.WAIT, attempts=1, stage_s=NOW - 59.9), inputs(),
     Stage.WAIT, [], []),
    ("wait: timeout: retry", running(Stage.WAIT, attempts=1, stage_s=NOW - 60.0), inputs(),
     Stage.FIRE, [], ["cutdown_retry"]),
    ("wait: timeout, attempts used: failed", running(Stage.WAIT, attempts=3, stage_s=NOW - 60.0), inputs(),
     Stage.FAILED, ["disarm"], ["cutdown_failed"]),
    ("wait: timeout on the ground: done", running(Stage.WAIT, attempts=1, stage_s=NOW - 60.0), inputs(landed=True),
     Stage.DONE, ["disarm"], ["cutdown_landed"]),
    ("wait: the ground fires again now", running(Stage.WAIT, attempts=3, stage_s=NOW - 1.0),
     inputs(ground=True, report=ARMED_READY), Stage.FIRE, [("fire", 4.0)], ["cutdown_retry"]),
    ("wait: the ground while burning", running(Stage.WAIT, attempts=1, stage_s=NOW - 1.0),
     inputs(ground=True, report=Report(firing=True)), Stage.WAIT, [], []),
    ("wait: unknown start counts as over", running(Stage.WAIT, attempts=1, stage_s=math.nan), inputs(),
     Stage.FIRE, [], ["cutdown_retry"]),
    # --- done and failed
    ("done: nothing", running(Stage.DONE, attempts=1), inputs(reason="ceiling"), Stage.DONE, [], []),
    ("failed: nothing", running(Stage.FAILED, attempts=3), inputs(), Stage.FAILED, [], []),
    ("done: the ground fires once more", running(Stage.DONE, attempts=1), inputs(ground=True),
     Stage.FIRE, ["arm"], ["cutdown_retry"]),
    ("failed: the ground fires once more", running(Stage.FAILED, attempts=3), inputs(ground=True),
     Stage.FIRE, ["arm"], ["cutdown_retry"]),
]


@pytest.mark.parametrize("case, state, given, stage, commands, events", CASES, ids=[case[0] for case in CASES])
def test_every_stage_and_input(case, state, given, stage, commands, events):
    new, issued, told = cutdown_step(state, given, params())
    assert new.stage == stage
    assert kinds(issued) == commands
    assert [event.name for event in told] == events


def test_a_new_termination_latches_its_reason_limit_and_stage_time():
    new, _, events = cutdown_step(CutdownState(attempts=2), inputs(reason="battery", reason_text="7.0 V"),
                                  params(TRM_MAX_TRIES=3))
    assert new.fired and new.reason == "battery" and new.attempt_limit == 5 and new.stage_s == NOW
    assert "TERMINATION: 7.0 V" in events[0].text and events[0].severity == "critical"


def test_the_ground_dumps_first_only_with_trm_gnd_dump():
    new, commands, _ = cutdown_step(CutdownState(), inputs(ground=True), params(TRM_GND_DUMP=1))
    assert new.stage == Stage.DUMP and new.dump_started and kinds(commands) == [("dump_pulse", 20.0)]


def test_a_commit_records_the_attempt_and_its_time_before_the_fire_command():
    new, commands, _ = cutdown_step(running(Stage.FIRE, attempts=1), inputs(report=ARMED_READY), params())
    assert (new.attempts, new.pending, new.commit_s) == (2, 2, NOW)
    assert kinds(commands) == [("fire", 2.0)]


def test_a_write_failure_is_not_an_attempt_and_is_reported_once():
    state = running(Stage.FIRE, attempts=1, pending=1)
    failed = inputs(report=Report(armed=True, ready="", fire_result="write_failed"))
    events = []
    for _ in range(20):
        state, commands, told = cutdown_step(state, failed, params())
        events += told
        assert kinds(commands) == [("fire", 1.0)]
    assert state.attempts == 1 and state.write_faults == 20 and len(events) == 1


def test_a_ground_request_raises_the_attempt_limit_by_one():
    new, _, _ = cutdown_step(running(Stage.FAILED, attempts=3, attempt_limit=3), inputs(ground=True), params())
    assert new.attempt_limit == 4


@pytest.mark.parametrize("state, stage, stage_s", [
    (running(Stage.DUMP, stage_s=NOW - 5.0), Stage.DUMP, NOW - 5.0),  # the dump's time limit runs on
    (running(Stage.ARM), Stage.ARM, NOW - 10.0),
    (running(Stage.FIRE, attempts=1, commit_s=NOW - 3.0, stage_s=NOW - 4.0), Stage.WAIT, NOW - 3.0),
    (running(Stage.FIRE, attempts=1, commit_s=NOW - 30.0, stage_s=NOW - 4.0), Stage.ARM, NOW - 4.0),
    (running(Stage.FIRE, attempts=0), Stage.ARM, NOW - 10.0),
    (running(Stage.WAIT, attempts=1, stage_s=NOW - 40.0), Stage.WAIT, NOW - 40.0),
    (running(Stage.DONE, attempts=1), Stage.DONE, NOW - 10.0),
    (running(Stage.FAILED, attempts=3), Stage.FAILED, NOW - 10.0),
    (running(Stage.NONE), Stage.ARM, NOW - 10.0),
])
def test_resume_after_a_restart(state, stage, stage_s):
    """An attempt committed in the fire stage may have burned: it is waited for from its commit time, never
    fired again; every timer runs on from the journal's times (a restart never lengthens one)."""
    resumed = resume(state._replace(pending=1, write_faults=5, problem="x"), params())
    assert resumed.stage == stage and resumed.stage_s == stage_s
    assert resumed.attempts == state.attempts and resumed.pending == 0 and resumed.problem == ""


def test_resume_gives_an_attempt_limit_when_the_journal_has_none():
    assert resume(running(Stage.WAIT, attempts=2, attempt_limit=0), params(TRM_MAX_TRIES=3)).attempt_limit == 5
    assert resume(CutdownState(), params()) == CutdownState()


@pytest.mark.parametrize("state, now_s, backup", [
    (CutdownState(), NOW, False),
    (running(Stage.FAILED, attempts=3), NOW, True),
    (running(Stage.FIRE, stage_s=NOW - FIRE_STALL_S + 0.1), NOW, False),
    (running(Stage.FIRE, stage_s=NOW - FIRE_STALL_S - 0.1), NOW, True),
    (running(Stage.WAIT, attempts=1), NOW, False),
    (running(Stage.DUMP, stage_s=NOW - 1000.0), NOW, False),
    (running(Stage.DONE, attempts=1), NOW, False),
])
def test_when_the_heartbeat_stops(state, now_s, backup):
    assert cutdown_needs_backup(state, now_s) is backup
