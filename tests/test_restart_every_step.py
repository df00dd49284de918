"""A restart at every step: the release sequence and the termination sequence (dump, arm, fire, wait, retry,
separation) are each killed at every frame -- after the frame, inside its journal write (the latch is on disk, the
line not yet driven), and between the journal's two copies (one copy new, the other old) -- then resumed the way
systemd resumes the service, and flown to the end.  Every run must fire each line exactly as often as a run
without a kill, and complete.

The parts are the real ones (``safety_rig.Bench``: FlightLogic, ActuatorManager, gpiozero lines on mock pins, the
journal on disk and the daemon's persist policy); burns are counted from the pins' rising edges.  The ground
behaves as a ground station does: a command whose answer it heard is never sent again; one killed before its
answer went out is sent again as a retry.
"""

from __future__ import annotations

import pytest

from flightsw.rules.cutdown import Stage
from safety_rig import FRAME_S, Bench


class Killed(BaseException):
    """The process dies here (a BaseException: nothing in the flight software may catch it)."""


AFTER_FRAME, AT_JOURNAL_WRITE, BETWEEN_COPIES = "after the frame", "at the journal write", "between the copies"


class Flight:
    """A bench flight with a scripted ground station and one kill at frame ``kill_frame`` (``how``)."""

    def __init__(self, tmp_path, params: dict, script: list[tuple[float, str]], *, kill_frame: int | None = None,
                 how: str = AFTER_FRAME, cut_fails_first: bool = False) -> None:
        self.bench = Bench(tmp_path, params=params)
        self.script = sorted(script)
        self.heard: set[int] = set()  # script lines whose answer the ground heard
        self.kill_frame, self.how = kill_frame, how
        self.frame = 0
        self.killed = False
        self.journal_writes: list[int] = []  # frames with a journal write (for choosing in-frame kills)
        self.cut_fails_first = cut_fails_first
        self._arm()

    def _arm(self) -> None:
        """Wrap this process's journal so that a kill can come inside a write."""
        journal, store = self.bench.journal, self.bench.journal.store
        save, write_slot = journal.save, store._write_slot

        def saving(latches):
            self.journal_writes.append(self.frame)
            saved = save(latches)
            if self._due(AT_JOURNAL_WRITE):
                raise Killed
            return saved

        def writing(path, payload):
            write_slot(path, payload)
            if path.name.endswith("-a.json") and self._due(BETWEEN_COPIES):
                raise Killed
        journal.save, store._write_slot = saving, writing

    def _due(self, how: str) -> bool:
        return not self.killed and self.how == how and self.frame == self.kill_frame

    def _ground(self) -> None:
        """Send what the script says is due and was not answered yet (a retry after a kill), and again what was
        answered TEMPORARILY_REJECTED.  A crew whose fire is refused because a restart disarmed the release arms it
        again and fires (new commands, not retries)."""
        bench = self.bench
        for index, (at_s, command) in enumerate(self.script):
            if at_s <= bench.t + 1e-9 and index not in self.heard:
                retry = self.killed and index in self.sent
                self.sent.add(index)
                answer = {"go": lambda: bench.logic.ground_go(bench.t),
                          "arm": lambda: bench.logic.arm("release", bench.t),
                          "fire": lambda: bench.logic.fire_release(bench.t),
                          "terminate": lambda: bench.logic.terminate("range safety", bench.t, retry=retry)}[command]()
                if answer.outcome.name != "TEMPORARILY_REJECTED":  # that one is sent again later
                    self.heard.add(index)
                if command == "fire" and answer.message == "release not armed":
                    bench.logic.arm("release", bench.t)
                    self.script.append((bench.t + 0.2, "fire"))

    def fly(self, seconds: float) -> Bench:
        self.sent: set[int] = set()
        bench = self.bench
        while bench.t < seconds:
            self.frame += 1
            try:
                if self.cut_fails_first:
                    bench.world.cut_works = bench.burns("cutdown_fire") >= 2
                self._ground()
                bench.frame()
                if self._due(AFTER_FRAME):
                    raise Killed
            except Killed:
                self.heard = {index for index in self.heard if self.script[index][0] < bench.t - FRAME_S / 2}
                self.killed = True
                bench.kill()
                bench.restart(held_s=0.5, down_s=2.0)
                self._arm()
        return bench


RELEASE_PARAMS = {"REL_BURN_S": 3.0}
RELEASE_SCRIPT = [(1.0, "go"), (1.5, "arm"), (2.5, "fire")]
RELEASE_END_S = 12.0
TERMINATION_PARAMS = {"TRM_GND_DUMP": 1, "TRM_DUMP_MAX_S": 5.0, "TRM_DUMP_PULSE_S": 2.0, "TRM_SEP_TMO_S": 5.0,
                      "TRM_BURN_S": 3.0, "TRM_MAX_TRIES": 3}
TERMINATION_SCRIPT = [(1.0, "terminate")]
TERMINATION_END_S = 30.0


def _reference(tmp_path, params, script, end_s, **kwargs) -> Flight:
    flight = Flight(tmp_path, params, script, **kwargs)
    flight.fly(end_s)
    return flight


def _frames(end_s: float) -> range:
    return range(1, int(end_s / FRAME_S) - int(4.0 / FRAME_S))  # every frame but the last 4 s (nothing left)


def _release_write_frames(tmp_path_factory) -> list[int]:
    return sorted(set(_reference(tmp_path_factory.mktemp("ref"), RELEASE_PARAMS, RELEASE_SCRIPT,
                                 RELEASE_END_S).journal_writes))


@pytest.fixture(scope="module")
def release_reference(tmp_path_factory):
    flight = _reference(tmp_path_factory.mktemp("release"), RELEASE_PARAMS, RELEASE_SCRIPT, RELEASE_END_S)
    assert flight.bench.burns("release_fire") == 1 and flight.bench.world.released
    return flight


@pytest.fixture(scope="module")
def termination_reference(tmp_path_factory):
    flight = _reference(tmp_path_factory.mktemp("termination"), TERMINATION_PARAMS, TERMINATION_SCRIPT,
                        TERMINATION_END_S, cut_fails_first=True)
    bench = flight.bench
    assert bench.burns("cutdown_fire") == 2 and bench.world.separated
    assert bench.world.ballast_open_s > 4.0 and bench.state.latches.termination_stage == Stage.DONE
    return flight


def _kills(end_s: float, reference_writes: list[int]):
    return [(frame, AFTER_FRAME) for frame in _frames(end_s)] + \
        [(frame, how) for frame in reference_writes for how in (AT_JOURNAL_WRITE, BETWEEN_COPIES)]


def test_the_reference_flights_write_the_journal_in_every_stage(release_reference, termination_reference):
    assert len(set(termination_reference.journal_writes)) >= 8 and len(set(release_reference.journal_writes)) >= 4


@pytest.mark.parametrize("how", [AFTER_FRAME, AT_JOURNAL_WRITE, BETWEEN_COPIES])
def test_release_killed_at_every_frame_fires_once(tmp_path, release_reference, how):
    writes = sorted(set(release_reference.journal_writes))
    frames = list(_frames(RELEASE_END_S)) if how == AFTER_FRAME else writes
    outcomes = []
    for frame in frames:
        flight = Flight(tmp_path / f"{frame}", RELEASE_PARAMS, RELEASE_SCRIPT, kill_frame=frame, how=how)
        bench = flight.fly(RELEASE_END_S)
        burns = bench.burns("release_fire")
        committed_not_burned = bench.state.latches.release_fired and not bench.state.latches.release_burn_confirmed
        outcomes.append((frame, burns, committed_not_burned))
        assert flight.killed and bench.restarts == 1, frame
        assert burns <= 1, f"kill {how} at frame {frame}: the release burned {burns} times"
        # the release completes, unless the kill fell between its commit and its burn (then it never fires)
        assert burns == 1 or committed_not_burned, f"kill {how} at frame {frame}: the release never fired"
        assert bench.state.latches.release_fired, frame
    assert sum(burns for _, burns, _ in outcomes) >= len(frames) - 3


@pytest.mark.parametrize("how", [AFTER_FRAME, AT_JOURNAL_WRITE, BETWEEN_COPIES])
def test_termination_killed_at_every_frame_cuts_with_each_attempt_fired_once(tmp_path, termination_reference, how):
    """Dump (5 s), arm, fire, wait (the first burn does not cut), retry, separation: killed at every frame."""
    writes = sorted(set(termination_reference.journal_writes))
    frames = list(_frames(TERMINATION_END_S)) if how == AFTER_FRAME else writes
    for frame in frames:
        flight = Flight(tmp_path / f"{frame}", TERMINATION_PARAMS, TERMINATION_SCRIPT, kill_frame=frame, how=how,
                        cut_fails_first=True)
        bench = flight.fly(TERMINATION_END_S + 10.0)
        latches = bench.state.latches
        burns = bench.burns("cutdown_fire")
        assert flight.killed and bench.restarts == 1, frame
        assert bench.world.separated and latches.termination_stage == Stage.DONE, \
            f"kill {how} at frame {frame}: the cut did not complete ({latches.termination_stage}, {burns} burns)"
        assert burns <= latches.cutdown_attempts <= latches.cutdown_attempt_limit, \
            f"kill {how} at frame {frame}: {burns} burns, {latches.cutdown_attempts} attempts"
        assert 2 <= burns <= 3, f"kill {how} at frame {frame}: {burns} burns"
        assert latches.ballast_used_kg >= bench.world.ballast_open_s * 0.01 - 1e-9, frame
