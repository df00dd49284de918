"""The cutdown sequence, every transition in full: the whole next state (each time, count and problem latched),
every command with its value, and every event with its severity and the exact text the operator reads; the
boundaries of the dump, the separation wait and the heartbeat; the resume after a restart field by field.
test_rules_cutdown.py has the stage x input table in brief."""

from __future__ import annotations

import math

import pytest

from flightsw.rules.cutdown import (FIRE_STALL_S, Command, CutdownState, Event, Report, Stage, cutdown_needs_backup,
                                    cutdown_step, dump_seconds, resume)
from test_rules_cutdown import ARMED_READY, NOW, inputs, params, running

CLOSE, ARM, DISARM = Command("close_valves"), Command("arm"), Command("disarm")


def fire(attempt: int) -> Command:
    return Command("fire", attempt)


def pulse(seconds: float) -> Command:
    return Command("dump_pulse", seconds)


def told(name: str, severity: str, text: str) -> Event:
    return Event(name, severity, text)


# (case, state, inputs, what changes in the state, commands, events)
TRANSITIONS = [
    # --- a termination begins
    ("an immediate reason arms at once", CutdownState(attempts=2), inputs(reason="ceiling", reason_text="too high"),
     dict(fired=True, reason="ceiling", stage=Stage.FIRE, stage_s=NOW, attempt_limit=5),
     [CLOSE, ARM], [told("termination", "critical", "TERMINATION: too high")]),
    ("a waiting reason dumps first", CutdownState(), inputs(reason="link_lost", reason_text="link lost for 3601 s"),
     dict(fired=True, reason="link_lost", stage=Stage.DUMP, stage_s=NOW, attempt_limit=3, dump_started=True),
     [pulse(20.0)], [told("termination", "critical", "TERMINATION: link lost for 3601 s, dumping ballast first")]),
    ("a ground command with its text", CutdownState(), inputs(ground=True, ground_text="range safety"),
     dict(fired=True, reason="ground", stage=Stage.FIRE, stage_s=NOW, attempt_limit=3),
     [CLOSE, ARM], [told("termination", "critical", "TERMINATION: ground command: range safety")]),
    ("a ground command without a text", CutdownState(), inputs(ground=True, reason="battery", reason_text="low"),
     dict(fired=True, reason="ground", stage=Stage.FIRE, stage_s=NOW, attempt_limit=3),
     [CLOSE, ARM], [told("termination", "critical", "TERMINATION: ground command")]),
    ("a dump already begun before a restart stays begun", CutdownState(dump_started=True),
     inputs(reason="ceiling", reason_text="high"),
     dict(fired=True, reason="ceiling", stage=Stage.FIRE, stage_s=NOW, attempt_limit=3),
     [CLOSE, ARM], [told("termination", "critical", "TERMINATION: high")]),
    # --- the dump
    ("dump: the ballast is gone", running(Stage.DUMP), inputs(ballast_remaining_kg=0.0),
     dict(stage=Stage.FIRE, stage_s=NOW), [CLOSE, ARM],
     [told("ballast_dump", "notice", "ballast dump over (ballast dumped): arming cutdown")]),
    ("dump: its time is over", running(Stage.DUMP, stage_s=NOW - 120.0), inputs(),
     dict(stage=Stage.FIRE, stage_s=NOW), [CLOSE, ARM],
     [told("ballast_dump", "notice", "ballast dump over (dump time 120 s over): arming cutdown")]),
    ("dump: its start is not known: over", running(Stage.DUMP, stage_s=math.nan), inputs(),
     dict(stage=Stage.FIRE, stage_s=NOW), [CLOSE, ARM],
     [told("ballast_dump", "notice", "ballast dump over (dump time 120 s over): arming cutdown")]),
    ("dump: below the dump altitude", running(Stage.DUMP), inputs(high_enough=False),
     dict(stage=Stage.FIRE, stage_s=NOW), [CLOSE, ARM],
     [told("ballast_dump", "notice", "ballast dump over (below the dump altitude): arming cutdown")]),
    ("dump: the valve refused the pulse", running(Stage.DUMP), inputs(report=Report(dump_result="refused")),
     dict(stage=Stage.FIRE, stage_s=NOW), [CLOSE, ARM],
     [told("ballast_dump", "warning", "ballast dump over (the ballast valve refused the pulse): arming cutdown")]),
    ("dump: a valve write failed: the pulse again", running(Stage.DUMP, valve_faults=2),
     inputs(report=Report(dump_result="write_failed")),
     dict(valve_faults=3, problem="ballast valve line write failed during the dump: trying again"), [pulse(20.0)],
     [told("cutdown_problem", "error", "ballast valve line write failed during the dump: trying again")]),
    ("dump: the pulse is cut to the ballast left", running(Stage.DUMP), inputs(ballast_remaining_kg=0.05),
     dict(), [pulse(5.0)], []),
    ("dump: the pulse is cut to the time left", running(Stage.DUMP, stage_s=NOW - 112.5), inputs(),
     dict(), [pulse(7.5)], []),
    ("dump: the ground cuts it short", running(Stage.DUMP), inputs(ground=True, report=Report(valve_open=True)),
     dict(stage=Stage.FIRE, stage_s=NOW), [CLOSE, ARM],
     [told("ballast_dump", "critical", "ballast dump cut short (ground command): cutting now")]),
    ("dump: an immediate reason cuts it short", running(Stage.DUMP),
     inputs(reason="geofence", reason_text="outside the geofence"),
     dict(stage=Stage.FIRE, stage_s=NOW), [CLOSE, ARM],
     [told("ballast_dump", "critical", "ballast dump cut short (outside the geofence): cutting now")]),
    # --- arm and fire
    ("arm", running(Stage.ARM), inputs(), dict(stage=Stage.FIRE, stage_s=NOW), [ARM], []),
    ("fire: commit the next attempt", running(Stage.FIRE, attempts=1), inputs(report=ARMED_READY),
     dict(attempts=2, pending=2, commit_s=NOW), [fire(2)], []),
    ("fire: the burn started", running(Stage.FIRE, attempts=2, pending=2, problem="an earlier problem"),
     inputs(report=Report(firing=True, fire_result="started")),
     dict(stage=Stage.WAIT, stage_s=NOW, pending=0, problem=""), [],
     [told("cutdown_fired", "critical", "cutdown fired (attempt 2)")]),
    ("fire: a FIRE write failed: the same attempt again", running(Stage.FIRE, attempts=2, pending=2, write_faults=4),
     inputs(report=Report(armed=True, ready="", fire_result="write_failed")),
     dict(write_faults=5, commit_s=NOW, problem="cutdown FIRE line write failed (attempt 2): firing again"),
     [fire(2)], [told("cutdown_problem", "error", "cutdown FIRE line write failed (attempt 2): firing again")]),
    ("fire: refused: failed", running(Stage.FIRE, attempts=4, pending=4, refusals=1),
     inputs(report=Report(armed=True, ready="", fire_result="refused", fire_reason="beyond ACT_CUT_MAX_TRY")),
     dict(stage=Stage.FAILED, stage_s=NOW, pending=0, refusals=2), [],
     [told("cutdown_failed", "emergency", "CUTDOWN FAILED: fire refused (beyond ACT_CUT_MAX_TRY)")]),
    ("fire: an ARM write failed: arm again", running(Stage.FIRE, arm_faults=3), inputs(report=Report(arm_failed=True)),
     dict(arm_faults=4, problem="cutdown ARM line write failed: arming again"), [ARM],
     [told("cutdown_problem", "error", "cutdown ARM line write failed: arming again")]),
    ("fire: no attempt left", running(Stage.FIRE, attempts=3), inputs(report=ARMED_READY),
     dict(stage=Stage.FAILED, stage_s=NOW), [],
     [told("cutdown_failed", "emergency", "CUTDOWN FAILED: 3 attempts used")]),
    # --- the wait for separation
    ("wait: separated", running(Stage.WAIT, attempts=2), inputs(separated=True),
     dict(stage=Stage.DONE, stage_s=NOW), [DISARM],
     [told("cutdown_separated", "notice", "cutdown separation confirmed after attempt 2")]),
    ("wait: timeout: fire again", running(Stage.WAIT, attempts=1, stage_s=NOW - 61.0), inputs(),
     dict(stage=Stage.FIRE, stage_s=NOW), [],
     [told("cutdown_retry", "critical", "no separation 61 s after attempt 1: firing again")]),
    ("wait: its start is not known: fire again", running(Stage.WAIT, attempts=1, stage_s=math.nan), inputs(),
     dict(stage=Stage.FIRE, stage_s=NOW), [],
     [told("cutdown_retry", "critical", "no separation inf s after attempt 1: firing again")]),
    ("wait: timeout with the attempts used: failed", running(Stage.WAIT, attempts=3, stage_s=NOW - 60.0), inputs(),
     dict(stage=Stage.FAILED, stage_s=NOW), [DISARM],
     [told("cutdown_failed", "emergency", "CUTDOWN FAILED: no separation after 3 attempts")]),
    ("wait: timeout on the ground: done", running(Stage.WAIT, attempts=2, stage_s=NOW - 60.0), inputs(landed=True),
     dict(stage=Stage.DONE, stage_s=NOW), [DISARM],
     [told("cutdown_landed", "notice", "landed after cutdown attempt 2: no further attempt")]),
    ("wait: the ground fires again now", running(Stage.WAIT, attempts=3, stage_s=NOW - 1.0),
     inputs(ground=True, report=ARMED_READY),
     dict(stage=Stage.FIRE, stage_s=NOW, attempts=4, attempt_limit=4, pending=4, commit_s=NOW), [fire(4)],
     [told("cutdown_retry", "critical", "ground command: firing the cutdown again now")]),
    ("wait: the ground, with attempts left, fires the next one", running(Stage.WAIT, attempts=1, stage_s=NOW - 1.0),
     inputs(ground=True, report=Report(armed=True, ready="armed too recently")),
     dict(stage=Stage.FIRE, stage_s=NOW), [],
     [told("cutdown_retry", "critical", "ground command: firing the cutdown again now")]),
    # --- over
    ("failed: the ground fires once more", running(Stage.FAILED, attempts=3, problem="an earlier problem"),
     inputs(ground=True), dict(stage=Stage.FIRE, stage_s=NOW, attempt_limit=4, problem=""), [ARM],
     [told("cutdown_retry", "critical", "cutdown fired again by ground command")]),
    ("done: the ground fires once more", running(Stage.DONE, attempts=1, attempt_limit=3), inputs(ground=True),
     dict(stage=Stage.FIRE, stage_s=NOW, attempt_limit=2), [ARM],
     [told("cutdown_retry", "critical", "cutdown fired again by ground command")]),
]


@pytest.mark.parametrize("case, state, given, changes, commands, events", TRANSITIONS,
                         ids=[row[0] for row in TRANSITIONS])
def test_each_transition_latches_commands_and_tells_exactly_this(case, state, given, changes, commands, events):
    new, issued, said = cutdown_step(state, given, params())
    expected = state._replace(**changes)
    assert _same(new, expected), f"{new} != {expected}"
    assert list(issued) == commands
    assert list(said) == events


def _same(a: CutdownState, b: CutdownState) -> bool:
    return all(x == y or (isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y))
               for x, y in zip(a, b))


# ----------------------------------------------------------------------------------------------- boundaries

@pytest.mark.parametrize("remaining_kg, dumps", [(0.0, False), (-1.0, False), (math.nan, False), (0.001, True),
                                                 (0.5, True)])
def test_any_ballast_left_is_dumped_before_a_waiting_cut(remaining_kg, dumps):
    new, commands, _ = cutdown_step(CutdownState(), inputs(reason="max_duration", ballast_remaining_kg=remaining_kg),
                                    params())
    assert (new.stage == Stage.DUMP) is dumps
    assert (commands[0].kind == "dump_pulse") is dumps


@pytest.mark.parametrize("remaining_kg, seconds", [(0.0, 0.0), (-0.5, 0.0), (math.nan, 0.0), (0.005, 0.5),
                                                   (0.5, 50.0), (1.2, 120.0), (5.0, 120.0)])
def test_the_dump_lasts_the_ballast_left_at_the_valve_flow_up_to_its_limit(remaining_kg, seconds):
    assert dump_seconds(params(BAL_FLOW_KGPS=0.01, TRM_DUMP_MAX_S=120.0), remaining_kg) == pytest.approx(seconds)


@pytest.mark.parametrize("waited_s, stage", [(59.99, Stage.WAIT), (60.0, Stage.FIRE), (60.01, Stage.FIRE)])
def test_the_next_attempt_fires_once_the_separation_timeout_is_reached(waited_s, stage):
    state = running(Stage.WAIT, attempts=1, stage_s=NOW - waited_s)
    assert cutdown_step(state, inputs(), params(TRM_SEP_TMO_S=60.0))[0].stage == stage


@pytest.mark.parametrize("elapsed_s, stage", [(119.99, Stage.DUMP), (120.0, Stage.FIRE)])
def test_the_dump_ends_when_its_time_is_reached(elapsed_s, stage):
    state = running(Stage.DUMP, stage_s=NOW - elapsed_s)
    assert cutdown_step(state, inputs(), params(TRM_DUMP_MAX_S=120.0))[0].stage == stage


@pytest.mark.parametrize("trying_s, backup", [(FIRE_STALL_S - 0.01, False), (FIRE_STALL_S, False),
                                              (FIRE_STALL_S + 0.01, True)])
def test_the_heartbeat_stops_only_after_more_than_the_stall_time_without_a_burn(trying_s, backup):
    assert cutdown_needs_backup(running(Stage.FIRE, stage_s=NOW - trying_s), NOW) is backup


def test_the_stall_time_of_a_ground_retry_counts_from_the_ground_command():
    state = running(Stage.WAIT, attempts=1, stage_s=NOW - 50.0)
    new, _, _ = cutdown_step(state, inputs(ground=True, report=Report(armed=True, ready="armed too recently")),
                             params())
    assert new.stage == Stage.FIRE and not cutdown_needs_backup(new, NOW + FIRE_STALL_S)


# ----------------------------------------------------------------------------------------------- resume

def test_resume_keeps_every_persisted_fact_and_forgets_the_rest():
    persisted = CutdownState(fired=True, reason="geofence", stage=Stage.WAIT, stage_s=NOW - 7.0, attempts=2,
                             attempt_limit=4, commit_s=NOW - 8.0, dump_started=True)
    boot_only = dict(pending=2, write_faults=3, arm_faults=4, valve_faults=5, refusals=6, problem="a problem")
    assert resume(persisted._replace(**boot_only), params()) == persisted


@pytest.mark.parametrize("limit, resumed_limit", [(1, 1), (2, 2), (0, 5)])
def test_resume_keeps_the_journal_attempt_limit_and_makes_one_only_when_there_is_none(limit, resumed_limit):
    state = running(Stage.WAIT, attempts=2, attempt_limit=limit)
    assert resume(state, params(TRM_MAX_TRIES=3)).attempt_limit == resumed_limit


@pytest.mark.parametrize("commit_s, stage, stage_s", [
    (NOW - 4.0, Stage.WAIT, NOW - 4.0),  # committed at the moment the fire stage began: waited for
    (NOW - 4.01, Stage.ARM, NOW - 4.0),  # committed before this fire stage: an earlier attempt's
    (math.nan, Stage.ARM, NOW - 4.0),
])
def test_resume_waits_for_an_attempt_committed_in_its_fire_stage(commit_s, stage, stage_s):
    state = running(Stage.FIRE, attempts=1, stage_s=NOW - 4.0, commit_s=commit_s)
    resumed = resume(state, params())
    assert (resumed.stage, resumed.stage_s) == (stage, stage_s)
