"""The kill test: SIGKILL at aimed instants of a HIL flight, restart, nothing fires twice, nothing latched is lost.

Four flights with kills (30 in all): one killed in every window (a commit before its drive, the release armed,
a ballast pulse, the dump, the cutdown burn, inside and between journal slot writes, a restart loop, random
instants); one on the default plan of 13 kills; and the kill test's own test (two flights): a build that drives
the release line before persisting its latch must fail where the same kill plan without the defect passes.  The 100- and
1000-kill figures come from ``python -m hil.killtest`` (benchmarks/kill_test.py).  The rest are the parts:
the flight log, the checks, the operator's ledger, the snapshot file and the restore.
"""

from __future__ import annotations

import dataclasses
import math
import pickle
from pathlib import Path

import pytest

from flightsw import logsetup
from flightsw.journal import Journal
from flightsw.phase import Phase
from flightsw.state import Latches
from flightsw.store import MirroredStore
from hil.killable import KillableRun, OperatorLedger
from hil.killcheck import Facts, JournalWatch, check_latched_facts, regressions
from hil.killflight import RESTART_LOOP_KILLS, RESTART_LOOP_SPAN_S, FlightPlan
from hil.killlog import LOG_NAME, FlightLogWriter, read_flight_log
from hil.killsnap import SNAPSHOT_NAME, SnapshotFile, read_snapshot, record_stop
from hil.killtest import DEFAULT_SCENARIO, run_kill_test
from hil.scenario import OperatorAction, load_scenario

EVERY_WINDOW = FlightPlan(
    aimed=["release_armed", "latch_drive", "ballast_pulse", "dump", "latch_drive", "cutdown_burn"],
    timed=[(60.0, "journal_write"), (120.0, "uniform"), (140.0, "restart_loop"), (320.0, "journal_write"),
           (480.0, "uniform")])


def test_a_flight_killed_in_every_window_fires_nothing_twice_forgets_nothing_and_lands(tmp_path):
    result = run_kill_test(DEFAULT_SCENARIO, kills=1, seed=3, work_dir=tmp_path, plan=EVERY_WINDOW)
    assert result.passed, result.summary()
    assert len(result.flights) == 1 and len(result.kills) == 15, result.summary()
    flight = result.flights[0]
    assert flight.unused == [], result.summary()
    for kind in ("journal_write", "latch_drive", "release_armed", "ballast_pulse", "dump", "cutdown_burn",
                 "restart_loop"):
        assert result.count(kind) >= 1 and result.count(kind, kind) == result.count(kind), (kind, result.summary())
    assert flight.loop_spans_s and max(flight.loop_spans_s) <= RESTART_LOOP_SPAN_S
    assert flight.journal_checks == 15 and flight.restarts == 15
    assert flight.release_activations <= 1 and flight.cutdown_activations >= 1
    outcome = flight.result
    assert outcome["landed"] and outcome["cut_down"]
    assert flight.cutdown_activations <= outcome["latches"]["cutdown_attempts"] <= \
        outcome["latches"]["cutdown_attempt_limit"]


def test_the_default_plan_of_thirteen_kills_passes(tmp_path):
    result = run_kill_test(DEFAULT_SCENARIO, kills=13, seed=2, work_dir=tmp_path, kills_per_flight=13)
    assert result.passed, result.summary()
    assert len(result.kills) >= 13
    assert result.count("restart_loop") >= RESTART_LOOP_KILLS


DEFECT_PLAN = FlightPlan(aimed=["latch_drive"], timed=[])


def test_the_kill_test_reports_a_release_driven_before_its_latch_is_persisted(tmp_path):
    defective = run_kill_test(DEFAULT_SCENARIO, kills=1, seed=5, work_dir=tmp_path / "defect", plan=DEFECT_PLAN,
                              defect="drive-before-latch")
    assert not defective.passed
    problems = "\n".join(defective.flights[0].problems)
    assert ("the release line was activated but the journal does not say release fired" in problems
            or "release line activated 2 times" in problems), defective.summary()

    sound = run_kill_test(DEFAULT_SCENARIO, kills=1, seed=5, work_dir=tmp_path / "sound", plan=DEFECT_PLAN)
    assert sound.passed, sound.summary()
    assert [kill.aimed for kill in sound.kills] == ["latch_drive"] == [kill.aimed for kill in defective.kills]


# ---------------------------------------------------------------------------------------------- the flight log

def test_the_flight_log_reads_back_every_record_and_the_levels_a_process_left(tmp_path):
    log = FlightLogWriter(tmp_path / LOG_NAME)
    log.edge("release_fire", True, 10.0)
    log.sent(2, "fire_release", False, 10.0)
    log.acknowledged(2, "fire_release", "ACCEPTED", 10.05)
    log.planned(6, "go", 40.0, 11.0)
    log.edge("release_fire", False, 15.0)
    log.edge("cutdown_fire", True, 20.0)
    log.close()
    read = read_flight_log(tmp_path)
    assert read.problems == []
    assert [edge.time_s for edge in read.activations("release_fire")] == [10.0]
    assert read.activations("release_fire", after_s=10.0) == []
    assert read.levels_left_by(read.edges[0].pid) == {"release_fire": False, "cutdown_fire": True}
    assert read.levels_left_by(-1) == {}
    assert read.sent[2][0][2] is False and read.acknowledged("fire_release") == [2]
    assert read.planned == {6: ("go", 40.0)}


def test_a_flight_log_line_that_can_not_be_read_is_a_problem_not_skipped(tmp_path):
    (tmp_path / LOG_NAME).write_text("E 1 2.000 release_fire 1\nE 1 garbage\nE 1 3.0")
    problems = read_flight_log(tmp_path).problems
    assert len(problems) == 3 and problems[-1] == "flight.log ends in a partial line"


# ---------------------------------------------------------------------------------------------- the checks

def _restored(**latches):
    from flightsw.journal import Restored

    return Restored(Latches(**latches), sources=["a", "b"])


def test_a_journal_that_holds_what_the_parent_saw_passes():
    facts = Facts(release_activations=1, cutdown_activations=1, termination_acknowledged=True,
                  ballast_dropped_kg=0.2)
    restored = _restored(release_fired=True, termination_fired=True, cutdown_attempts=1, cutdown_attempt_limit=3,
                         ballast_used_kg=0.19)
    assert check_latched_facts(restored, facts, flow_kgps=0.01) == []


@pytest.mark.parametrize("facts, latches, problem", [
    (dict(release_activations=1), dict(), "the journal does not say release fired"),
    (dict(release_activations=2), dict(release_fired=True), "activated 2 times"),
    (dict(cutdown_activations=2), dict(cutdown_attempts=1, cutdown_attempt_limit=3), "cutdown line activated 2"),
    (dict(), dict(cutdown_attempts=4, cutdown_attempt_limit=3), "limit 3"),
    (dict(termination_acknowledged=True), dict(), "does not say terminated"),
    (dict(ballast_dropped_kg=0.2), dict(ballast_used_kg=0.18), "dropped 0.2000 kg"),
])
def test_a_journal_that_forgot_what_the_parent_saw_is_reported(facts, latches, problem):
    facts = Facts(**{**dict(release_activations=0, cutdown_activations=0, termination_acknowledged=False,
                            ballast_dropped_kg=0.0), **facts})
    found = check_latched_facts(_restored(**latches), facts, flow_kgps=0.01)
    assert any(problem in text for text in found), found


@pytest.mark.parametrize("before, after, problem", [
    (dict(phase=Phase.DESCENT), dict(phase=Phase.ASCENT), "phase went back"),
    (dict(phase=Phase.ASCENT), dict(phase=Phase.PREFLIGHT), "phase went back"),
    (dict(release_fired=True), dict(release_fired=False), "release_fired reverted"),
    (dict(termination_fired=True), dict(), "termination_fired reverted"),
    (dict(ballast_used_kg=0.2), dict(ballast_used_kg=0.1), "ballast_used_kg went back"),
    (dict(cutdown_attempts=2), dict(cutdown_attempts=1), "cutdown_attempts went back"),
    (dict(launch_s=100.0), dict(launch_s=200.0), "launch_s changed"),
    (dict(max_altitude_m=1500.0), dict(max_altitude_m=math.nan), "max_altitude_m went back"),
    (dict(termination_fired=True, termination_stage="done", cutdown_attempts=1, cutdown_attempt_limit=3),
     dict(termination_fired=True, termination_stage="wait", cutdown_attempts=2, cutdown_attempt_limit=3),
     "after the separation"),
])
def test_a_latched_fact_going_backwards_between_reads_is_reported(before, after, problem):
    assert any(problem in text for text in regressions(Latches(**before), Latches(**after)))


def test_the_journal_watch_reads_the_mirrored_journal_and_reports_a_rejected_copy(tmp_path):
    journal, watch = Journal(tmp_path, sync=False), JournalWatch(tmp_path)
    assert watch.read().found is False and watch.problems == []  # nothing written yet: a new flight
    watch.read(require_found=True)
    assert "no journal copy found" in watch.problems.pop()
    for latches in (Latches(flight_id="f1", phase=Phase.ASCENT, max_altitude_m=500.0),
                    Latches(flight_id="f1", phase=Phase.ASCENT, max_altitude_m=900.0, release_fired=True)):
        journal.save(latches)
        assert watch.read().latches.max_altitude_m == latches.max_altitude_m
    assert watch.problems == [] and watch.reads == 4
    MirroredStore(tmp_path, "state", schema_version=2, sync=False).save({**Latches().to_dict(), "phase": 99})
    watch.read(label="late: ")
    assert any(text.startswith("late: ") and "rejected" in text for text in watch.problems), watch.problems


# ---------------------------------------------------------------------------------------------- the operator

def _ledger() -> OperatorLedger:
    return OperatorLedger((OperatorAction(command="go", when="altitude_m > 800"),
                           OperatorAction(command="arm_release"), OperatorAction(command="fire_release"),
                           OperatorAction(command="terminate", when="altitude_m > 2500")))


def test_after_a_restart_the_operator_resends_only_what_was_never_answered(tmp_path):
    log = FlightLogWriter(tmp_path / LOG_NAME)
    log.sent(0, "go", False, 1.0)
    log.acknowledged(0, "go", "ACCEPTED", 1.0)
    log.sent(1, "arm_release", False, 5.0)  # killed before its answer
    log.close()
    ledger = _ledger()
    ledger.resume(read_flight_log(tmp_path), now_s=10.0)
    assert [(token, retry) for token, _, retry in ledger.queue] == [(1, True), (2, False), (3, False)]
    assert ledger.queue[0][1].when == "" and ledger.queue[2][1].when == "altitude_m > 2500"
    assert ledger.due(20.0, lambda name: 0.0) is None  # it waits for the daemon's fix after a restart
    assert ledger.due(25.0, lambda name: 0.0)[0] == 1
    assert ledger.due(26.0, lambda name: 0.0) is None  # one action at a time


def test_a_refused_fire_makes_the_operator_fly_the_release_procedure_again_until_a_go_is_denied():
    ledger = _ledger()
    assert ledger.answered(2, "DENIED", 90.0)
    planned = ledger.plan_release_procedure(now_s=100.0)
    assert [action.command for _, action in planned] == ["go", "arm_release", "fire_release"]
    assert [token for token, _ in planned] == [4, 5, 6]
    assert not ledger.answered(6, "ACCEPTED", 130.0)
    assert not ledger.answered(4, "DENIED", 140.0) and not ledger.answered(2, "DENIED", 140.0)  # released or terminated


def test_a_balloon_not_cut_down_long_after_its_termination_was_acknowledged_is_terminated_again():
    ledger = _ledger()
    assert not ledger.cut_overdue(10_000.0)  # nothing terminated yet
    ledger.answered(3, "ACCEPTED", 400.0)
    assert not ledger.cut_overdue(400.0 + 179.0) and ledger.cut_overdue(400.0 + 180.0)
    token, action = ledger.plan_termination(580.0)
    assert action.command == "terminate" and ledger.queue[0][0] == token and not ledger.cut_overdue(700.0)
    for now_s in (760.0, 940.0):
        ledger.plan_termination(now_s)
    assert not ledger.cut_overdue(10_000.0)  # at most MAX_TERMINATIONS_AGAIN


# ---------------------------------------------------------------------------------------------- snapshot, restore

def test_snapshot_file_falls_back_to_the_older_copy_when_the_newer_is_torn(tmp_path):
    path = tmp_path / SNAPSHOT_NAME
    file = SnapshotFile(path)
    file.write(pickle.dumps({"time_s": 1.0}))
    file.write(pickle.dumps({"time_s": 2.0}))
    file.close()
    assert read_snapshot(tmp_path)["time_s"] == 2.0
    with open(path, "r+b") as raw:  # a write cut short in region 1 (the newer copy)
        raw.seek((1 << 20) + 30)
        raw.write(b"\x00" * 8)
    assert read_snapshot(tmp_path)["time_s"] == 1.0
    file = SnapshotFile(path)
    file.write(pickle.dumps({"time_s": 3.0}))  # a new writer takes the damaged region
    file.close()
    assert read_snapshot(tmp_path)["time_s"] == 3.0


def test_record_stop_extends_a_stop_the_next_process_never_consumed(tmp_path):
    assert record_stop(tmp_path, held_s=0.5, restart_delay_s=2.0) is False  # nothing ran yet
    file = SnapshotFile(tmp_path / SNAPSHOT_NAME)
    file.write(pickle.dumps({"time_s": 10.0, "stop": None}))
    file.close()
    assert record_stop(tmp_path, held_s=0.5, restart_delay_s=2.0)
    assert record_stop(tmp_path, held_s=0.9, restart_delay_s=2.5)
    assert read_snapshot(tmp_path)["stop"] == {"held_s": 0.5, "restart_delay_s": 4.5}


def test_a_wire_the_dead_process_drove_in_its_last_frame_burns_until_safe_outputs(tmp_path):
    """The snapshot says the cutdown line is off; the flight log says the dead process drove it: the restore
    believes the log, the world burns the wire until ExecStopPost, and dropping it is not a new edge."""
    logsetup.configure("error")
    scenario = dataclasses.replace(load_scenario(DEFAULT_SCENARIO), max_duration_s=20.0)
    first = KillableRun(scenario, work_dir=tmp_path)
    first.run()
    first.close()
    snapshot = read_snapshot(tmp_path)
    assert snapshot["outputs"]["cutdown_fire"] is False and not first.world.state.cut_down
    edges = (tmp_path / LOG_NAME).read_text()
    with open(tmp_path / LOG_NAME, "a") as log:  # the dead process's last edge, after its last snapshot
        log.write(f"E {snapshot['pid']} {snapshot['time_s']:.3f} cutdown_fire 1\n")
    burn_s = scenario.world.payload.cutdown_burn_time_s
    record_stop(tmp_path, held_s=burn_s + 0.5, restart_delay_s=burn_s + 2.0)

    second = KillableRun(scenario, work_dir=tmp_path)
    try:
        state = second.world.state
        assert state.cut_down  # it kept burning until ExecStopPost dropped it
        assert math.isclose(state.time_s, snapshot["time_s"] + burn_s + 2.0, abs_tol=1e-6)
        assert second.board.cutdown_burns == 1
        assert not any(second.output_levels().values())  # safe outputs ran before the new daemon started
        assert second.record.restarts == 1
        assert read_snapshot(tmp_path)["stop"] is None  # the stop is spent before the daemon starts
        after = (tmp_path / LOG_NAME).read_text()[len(edges):]
        assert after.count("cutdown_fire") == 1  # ExecStopPost's drop is not recorded as an edge
    finally:
        second.daemon.shutdown()
        second.close()


def test_the_defect_hook_exists_only_in_the_child():
    from flightsw.flightlogic import FlightLogic

    assert FlightLogic._apply_release.__module__ == "flightsw.flightlogic"
    assert Path(FlightLogic._persist_now.__code__.co_filename).name == "flightlogic.py"


def test_a_termination_the_daemon_acknowledged_survives_a_kill_right_after_the_answer(tmp_path):
    """What a command changed is on disk before its ACK goes out, so a kill right after a ground station heard
    ACCEPTED for a termination never makes the daemon forget it."""
    config = DEFAULT_SCENARIO.parent.parent
    text = DEFAULT_SCENARIO.read_text()
    text = text.replace("flight: ../flight-hil.yaml",
                        f"flight: {config}/flight-hil.yaml\nboard: {config}/boards/hil.yaml")
    scenario = tmp_path / "kill-test-short.yaml"
    scenario.write_text(text)
    result = run_kill_test(scenario, kills=1, seed=5, work_dir=tmp_path / "flights",
                           plan=FlightPlan(aimed=["terminate_ack"], timed=[]))
    assert [kill.aimed for kill in result.kills] == ["terminate_ack"]
    assert result.passed, result.summary()
