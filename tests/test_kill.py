"""The kill test: SIGKILL at random instants of a HIL flight, restart, nothing fires twice, nothing latched is lost.

The end-to-end case flies config/hil/kill-test.yaml once with four kills, one in each window (a random instant,
between release arm and fire, during the cutdown burn, inside a journal write).  The 100-kill figure comes from
``python -m hil.killtest --kills 100`` (benchmarks/kill_test.py).
"""

from __future__ import annotations

import dataclasses
import math
import pickle
from pathlib import Path

import pytest

from flightsw import logsetup
from flightsw.journal import JOURNAL_SCHEMA_VERSION
from flightsw.phase import Phase
from flightsw.state import Latches
from flightsw.store import AtomicStore
from hil.killable import SNAPSHOT_NAME, KillableRun, SnapshotFile, read_snapshot, record_stop
from hil.killtest import DEFAULT_SCENARIO, JournalWatch, run_kill_test
from hil.scenario import load_scenario


def test_four_kills_one_per_window_nothing_fires_twice_and_the_flight_lands(tmp_path):
    result = run_kill_test(DEFAULT_SCENARIO, kills=4, seed=3, work_dir=tmp_path, kills_per_flight=4)
    assert result.passed, result.summary()
    assert len(result.kills) == 4 and len(result.flights) == 1
    assert sorted(kill.aimed for kill in result.kills) == sorted(
        ["uniform", "release_armed", "cutdown_burn", "journal_write"])
    for kill in result.kills:
        if kill.aimed != "uniform":
            assert kill.aimed in kill.observed, result.summary()
    outcome = result.flights[0].result
    assert outcome["landed"] and outcome["cut_down"]
    assert outcome["released"] or result.flights[0].waived  # a kill may end the one release burn early
    assert outcome["release_burns"] == 1
    assert 1 <= outcome["cutdown_burns"] <= outcome["latches"]["cutdown_attempts"] <= \
        outcome["latches"]["cutdown_attempt_limit"]
    assert outcome["restarts"] == 4
    assert result.journal_reads > 10


def _store(tmp_path: Path) -> AtomicStore:
    return AtomicStore(tmp_path / "state.json", schema_version=JOURNAL_SCHEMA_VERSION)


def test_journal_watch_accepts_a_flight_that_only_moves_forward(tmp_path):
    store, watch = _store(tmp_path), JournalWatch(tmp_path)
    for latches in (Latches(), Latches(phase=Phase.ASCENT, max_altitude_m=500.0),
                    Latches(phase=Phase.ASCENT, max_altitude_m=900.0, release_fired=True),
                    Latches(phase=Phase.TERMINATION, max_altitude_m=900.0, release_fired=True,
                            termination_fired=True, cutdown_attempts=1, cutdown_attempt_limit=3),
                    Latches(phase=Phase.LANDED, max_altitude_m=900.0, release_fired=True, termination_fired=True,
                            cutdown_attempts=1, cutdown_attempt_limit=3, termination_stage="done")):
        store.save(latches.to_dict())
        watch.read()
    assert watch.problems == [] and watch.reads == 5


@pytest.mark.parametrize("before, after, problem", [
    (dict(phase=Phase.DESCENT), dict(phase=Phase.ASCENT), "phase went back"),
    (dict(phase=Phase.ASCENT), dict(phase=Phase.PREFLIGHT), "phase went back"),
    (dict(release_fired=True), dict(release_fired=False), "release_fired reverted"),
    (dict(termination_fired=True), dict(), "termination_fired reverted"),
    (dict(ballast_used_kg=0.2), dict(ballast_used_kg=0.1), "ballast_used_kg went back"),
    (dict(launch_wall_s=100.0), dict(launch_wall_s=200.0), "launch_wall_s changed"),
    (dict(max_altitude_m=1500.0), dict(max_altitude_m=math.nan), "max_altitude_m went back"),
    (dict(termination_fired=True, termination_stage="done", cutdown_attempts=1, cutdown_attempt_limit=3),
     dict(termination_fired=True, termination_stage="wait", cutdown_attempts=2, cutdown_attempt_limit=3),
     "after the separation"),
    (dict(), dict(termination_fired=True, cutdown_attempts=4, cutdown_attempt_limit=3), "above the limit"),
])
def test_journal_watch_reports_a_latched_fact_going_backwards(tmp_path, before, after, problem):
    store, watch = _store(tmp_path), JournalWatch(tmp_path)
    store.save(Latches(**before).to_dict())
    watch.read()
    store.save(Latches(**after).to_dict())
    watch.read()
    assert any(problem in text for text in watch.problems), watch.problems


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


def test_a_burn_wire_left_on_by_the_killed_process_burns_until_safe_outputs(tmp_path):
    logsetup.configure("error")
    scenario = dataclasses.replace(load_scenario(DEFAULT_SCENARIO), max_duration_s=20.0)
    first = KillableRun(scenario, work_dir=tmp_path)
    first.run()
    first.close()
    snapshot = read_snapshot(tmp_path)
    assert snapshot["outputs"]["cutdown_fire"] is False and not first.world.state.cut_down
    snapshot["outputs"]["cutdown_fire"] = True  # the dead process had the cutdown wire powered
    file = SnapshotFile(tmp_path / SNAPSHOT_NAME)
    file.write(pickle.dumps(snapshot))
    file.close()
    burn_s = scenario.world.payload.cutdown_burn_time_s
    record_stop(tmp_path, held_s=burn_s + 0.5, restart_delay_s=burn_s + 2.0)

    second = KillableRun(scenario, work_dir=tmp_path)
    try:
        state = second.world.state
        assert state.cut_down  # it kept burning until ExecStopPost dropped it
        assert math.isclose(state.time_s, snapshot["time_s"] + burn_s + 2.0, abs_tol=1e-6)
        assert second.clock.now_s() == pytest.approx(state.time_s)
        assert second.board.cutdown_burns == 1  # one activation, seen once
        assert not any(second.output_levels().values())  # safe outputs ran before the new daemon started
        assert second.record.restarts == 1
        assert read_snapshot(tmp_path)["stop"] is None  # the stop is spent before the daemon starts
    finally:
        second.daemon.shutdown()
        second.close()


def test_a_cutdown_attempt_taken_back_after_a_refused_fire_is_a_note_not_a_failure(tmp_path):
    store, watch = _store(tmp_path), JournalWatch(tmp_path)
    store.save(Latches(termination_fired=True, termination_stage="wait", cutdown_attempts=1,
                       cutdown_attempt_limit=3).to_dict())
    watch.read()
    store.save(Latches(termination_fired=True, termination_stage="fire", cutdown_attempts=0,
                       cutdown_attempt_limit=3).to_dict())
    watch.read()
    assert watch.problems == []
    assert watch.notes and "went back from 1 to 0" in watch.notes[0]
