"""The kill test: SIGKILL the daemon at random instants of HIL flights, restart it, check nothing fires twice.

Each flight runs ``python -m hil.killable`` in its own work directory.  The parent kills it with SIGKILL, then
does what systemd does: ``ExecStopPost`` makes the outputs safe after ``held_s`` (until then they stay as the dead
process left them) and the service starts again ``RESTART_SEC_S`` + ``START_S`` after the kill
(:func:`hil.killable.record_stop`); the new process resumes from the daemon's own journal.  Kills are aimed at:
``uniform`` (a random simulated time, a random instant inside the frame), ``release_armed`` (after the release is
armed, before it fires), ``cutdown_burn`` (the cutdown wire powered), ``journal_write`` (inside a journal write,
between the temporary file and a rename: the child pauses there and says so on a pipe); each kill is also
classified by what the dead process left behind.  Checked over all kills: at most one release burn-wire activation
and none after the release; cutdown activations within the journal's attempts and attempt limit, none after the
separation; the journal, read (never written) throughout, never loses a latched fact; every flight lands and
passes its scenario's expectations.  ``python -m hil.killtest --kills 100`` prints the figures.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import select
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from flightsw.journal import JOURNAL_SCHEMA_VERSION
from flightsw.phase import Phase
from flightsw.state import Latches
from flightsw.store import AtomicStore
from hil.killable import RESULT_NAME, STATE_DIR_NAME, read_progress, read_snapshot, record_stop
from hil.scenario import load_scenario

KINDS = ("uniform", "release_armed", "cutdown_burn", "journal_write")
RESTART_SEC_S = 1.0  # systemd RestartSec of flightsw.service
START_S = 0.6  # a new process's start-up before its first frame
HELD_S = (0.2, 1.0)  # ExecStopPost's own start-up: the outputs stay as they were meanwhile
AIM_SPAN_S = 1.5  # aimed kills land within this much simulated time of their window opening (and poll latency)
FRAME_S = 0.05
SLOW_SAVE_MS = (3.0, 15.0)
POLL_S = 0.003
JOURNAL_READ_INTERVAL_S = 0.05
STALL_TIMEOUT_S = 120.0
DEFAULT_SCENARIO = Path(__file__).resolve().parent.parent / "config" / "hil" / "kill-test.yaml"
RELEASE_EXPECTATIONS = ("released exactly once", "released at altitude")
_LATE_PHASES = (Phase.DESCENT, Phase.LANDED, Phase.TERMINATION)
_NEVER_REVERT = ("release_fired", "termination_fired", "separation_confirmed", "preflight_override")
_NEVER_DECREASE = ("ballast_used_kg", "max_altitude_m")
_SET_ONCE = ("launch_wall_s", "release_fired_wall_s", "termination_wall_s", "termination_reason")


class JournalWatch:
    """Reads the daemon's journal (never writes it) and checks each read against the previous one: the sequence
    and the latched facts never go backwards, and no cutdown attempt follows a confirmed separation.

    ``notes`` lists a cutdown attempt count that went back: the flight logic writes the attempt before firing
    and takes it back when the actuators refuse the fire, so that is reported but not a failure (the world's
    activations are checked against the final count instead)."""

    def __init__(self, state_dir: Path) -> None:
        self.store = AtomicStore(Path(state_dir) / "state.json", schema_version=JOURNAL_SCHEMA_VERSION)
        self.last: Latches | None = None
        self.sequence = 0
        self.reads = 0
        self.max_attempt_limit = 0
        self.problems: list[str] = []
        self.notes: list[str] = []

    def read(self) -> Latches | None:
        """The journal now (the last good read if there is none now)."""
        loaded = self.store.load()
        if loaded.data is None:
            if self.last is not None:
                self.problems.append(f"journal unreadable after it was written: {'; '.join(loaded.problems)}")
            return self.last
        latches = Latches.from_dict(loaded.data)
        self.reads += 1
        if loaded.sequence < self.sequence:
            self.problems.append(f"journal generation went back from {self.sequence} to {loaded.sequence}")
        if self.last is not None:
            self.problems.extend(_regressions(self.last, latches))
            if latches.cutdown_attempts < self.last.cutdown_attempts:
                self.notes.append(f"cutdown_attempts went back from {self.last.cutdown_attempts} to "
                                  f"{latches.cutdown_attempts} (stage {latches.termination_stage!r})")
        if latches.termination_fired and latches.cutdown_attempts > latches.cutdown_attempt_limit > 0:
            self.problems.append(f"cutdown attempts {latches.cutdown_attempts} above the limit "
                                 f"{latches.cutdown_attempt_limit}")
        self.sequence = max(self.sequence, loaded.sequence)
        self.max_attempt_limit = max(self.max_attempt_limit, latches.cutdown_attempt_limit)
        self.last = latches
        return latches


def _regressions(before: Latches, after: Latches) -> list[str]:
    """Latched facts that went backwards from one journal read to the next."""
    found = []
    if before.phase != Phase.PREFLIGHT and after.phase == Phase.PREFLIGHT or (
            before.phase in _LATE_PHASES and after.phase not in _LATE_PHASES):
        found.append(f"phase went back from {Phase(before.phase).name} to {Phase(after.phase).name}")
    found += [f"{name} reverted" for name in _NEVER_REVERT if getattr(before, name) and not getattr(after, name)]
    for name in _NEVER_DECREASE:
        old, new = getattr(before, name), getattr(after, name)
        if old == old and not new >= old:  # NaN before: anything goes
            found.append(f"{name} went back from {old} to {new}")
    for name in _SET_ONCE:
        old, new = getattr(before, name), getattr(after, name)
        if old == old and old not in ("", new):
            found.append(f"{name} changed from {old} to {new}")
    if before.termination_stage == "done" and after.cutdown_attempts > before.cutdown_attempts:
        found.append("a cutdown attempt after the separation was confirmed")
    return found


@dataclass
class Kill:
    flight: int
    aimed: str  # one of KINDS
    observed: tuple[str, ...]  # windows it landed in: journal_write, release_armed, release_burn, cutdown_burn;
    # ("other",) for none
    time_s: float  # simulated time of the snapshot the kill left
    detail: str = ""  # journal kills: the temporary files left, and whether the primary was moved aside


@dataclass
class FlightOutcome:
    index: int
    seed: int
    kills: int
    result: dict
    waived: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    wall_s: float = 0.0


@dataclass
class KillTestResult:
    scenario: str
    seed: int
    kills: list[Kill] = field(default_factory=list)
    flights: list[FlightOutcome] = field(default_factory=list)
    journal_reads: int = 0
    problems: list[str] = field(default_factory=list)
    wall_s: float = 0.0

    @property
    def passed(self) -> bool:
        return not self.problems and all(not flight.problems for flight in self.flights)

    def count(self, aimed: str | None = None, observed: str | None = None) -> int:
        """Kills aimed at ``aimed`` (any if None) that landed in window ``observed`` (any if None)."""
        return sum(1 for kill in self.kills
                   if aimed in (None, kill.aimed) and (observed is None or observed in kill.observed))

    def summary(self, max_problems: int = 8) -> str:
        lines = [f"Kill test, scenario {self.scenario!r}, seed {self.seed}: {len(self.kills)} kills over "
                 f"{len(self.flights)} flights in {self.wall_s:.0f} s; {self.journal_reads} journal reads",
                 f"  {'aimed at':<15}{'kills':>7}{'in window':>11}"]
        lines += [f"  {kind:<15}{self.count(kind):>7}{'' if kind == 'uniform' else self.count(kind, kind):>11}"
                  for kind in KINDS]
        observed = ("journal_write", "release_armed", "release_burn", "cutdown_burn", "other")
        lines.append("  landed in (a kill may be in several windows): " + ", ".join(f"{name} {self.count(observed=name)}" for name in observed)
                     + f"; journal kills with the primary moved aside: "
                       f"{sum('primary moved aside' in kill.detail for kill in self.kills)}")
        for flight in self.flights:
            result, latches = flight.result, flight.result.get("latches", {})
            lines.append(f"  flight {flight.index} (seed {flight.seed}): {flight.kills} kills, "
                         f"{result.get('restarts')} restarts, {'landed' if result.get('landed') else 'NOT LANDED'}"
                         f" after {result.get('duration_s', math.nan):.0f} s; release burns "
                         f"{result.get('release_burns')}; cutdown burns {result.get('cutdown_burns')} (attempts "
                         f"{latches.get('cutdown_attempts')}, limit {latches.get('cutdown_attempt_limit')})")
            for label, items in (("PROBLEM", flight.problems), ("waived", flight.waived), ("note", flight.notes)):
                lines += [f"    {label}: {item}" for item in items[:max_problems]]
                lines += [f"    ... {len(items) - max_problems} more"] if len(items) > max_problems else []
        lines += [f"  PROBLEM: {problem}" for problem in self.problems]
        lines.append(f"RESULT: {'PASS' if self.passed else 'FAIL'}")
        return "\n".join(lines)


def _plan(kills: int, rng: random.Random, flight_s: float) -> tuple[list[str], list[tuple[float, str]]]:
    """Aimed kills (in the order their windows open) and timed ``(simulated time, kind)`` kills of one flight."""
    aimed = ["release_armed", "cutdown_burn"][:kills]
    if kills >= 10:
        aimed = ["release_armed", "release_armed", "cutdown_burn", "cutdown_burn"]
    rest = kills - len(aimed)
    journal = max(1 if rest >= 2 else 0, round(rest * 0.3))
    kinds = ["journal_write"] * journal + ["uniform"] * (rest - journal)
    return aimed, sorted((rng.uniform(1.0, flight_s), kind) for kind in kinds)


class _Flight:
    """One flight: the child process started, killed and restarted until it lands."""

    def __init__(self, scenario_path: Path, work_dir: Path, index: int, seed: int, rng: random.Random,
                 aimed: list[str], timed: list[tuple[float, str]]) -> None:
        self.scenario_path, self.work_dir, self.index, self.seed, self.rng = scenario_path, work_dir, index, seed, rng
        self.aimed, self.timed = aimed, timed
        self.kills: list[Kill] = []
        self.journal = JournalWatch(work_dir / STATE_DIR_NAME)
        self.release_interrupted = False  # a kill came between the release latch and the world's release
        self.progress: dict = {}

    def fly(self) -> FlightOutcome:
        began = time.perf_counter()
        while not self._segment():
            pass
        self.journal.read()
        result = json.loads((self.work_dir / RESULT_NAME).read_text())
        outcome = FlightOutcome(self.index, self.seed, len(self.kills), result, wall_s=time.perf_counter() - began)
        outcome.problems = self.journal.problems + self._check(result, outcome.waived)
        outcome.notes = list(self.journal.notes)
        return outcome

    def _start(self, notify_w: int | None) -> subprocess.Popen:
        (self.work_dir / RESULT_NAME).unlink(missing_ok=True)
        command = [sys.executable, "-m", "hil.killable", "--work-dir", str(self.work_dir),
                   "--scenario", str(self.scenario_path), "--seed", str(self.seed)]
        if notify_w is not None:
            command += ["--slow-save-ms", *map(str, SLOW_SAVE_MS), "--notify-fd", str(notify_w)]
        with open(self.work_dir / "child.log", "ab") as log:
            return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    pass_fds=(notify_w,) if notify_w is not None else (),
                                    cwd=Path(__file__).resolve().parent.parent)

    def _segment(self) -> bool:
        """Run the child until it is killed (False) or the flight is over (True)."""
        slow = any(kind == "journal_write" for _, kind in self.timed)
        notify_r, notify_w = os.pipe() if slow else (None, None)
        child = self._start(notify_w)
        if notify_w is not None:
            os.close(notify_w)
            os.set_blocking(notify_r, False)
        try:
            aim = self._watch(child, notify_r)
        finally:
            if notify_r is not None:
                os.close(notify_r)
        if aim is None:
            if child.returncode != 0:
                raise RuntimeError(f"flight {self.index}: child exited with {child.returncode}:\n{self._log_tail()}")
            return True
        self._after_kill(child.pid, aim)
        return False

    def _watch(self, child: subprocess.Popen, notify_r: int | None) -> str | None:
        """Poll the child; kill it when a planned window comes.  Returns the kind aimed at, None if it finished."""
        rng, progress, speed, window = self.rng, None, 100.0, None  # window: (kind, simulated time to kill at)
        pace = None  # (wall, simulated time) at the start of the current speed measurement
        journal_armed, journal_skip, last_change, next_journal_read = False, 0, time.monotonic(), 0.0
        while True:
            notes = b""
            if notify_r is not None:
                select.select([notify_r], [], [], POLL_S)
                try:
                    notes = os.read(notify_r, 4096)
                except BlockingIOError:
                    pass
            else:
                time.sleep(POLL_S)
            if child.poll() is not None:
                return None
            now = time.monotonic()
            current = read_progress(self.work_dir)
            if current is not None and current.get("pid") == child.pid and current != progress:
                progress = self.progress = current
                last_change = now
                pace = pace or (now, progress["time_s"])
                if now - pace[0] > 0.3:
                    speed = max(1.0, (progress["time_s"] - pace[1]) / (now - pace[0]))
                    pace = (now, progress["time_s"])
            if now - last_change > STALL_TIMEOUT_S:
                child.kill()
                child.wait()
                raise RuntimeError(f"flight {self.index}: child stalled\n{self._log_tail()}")
            if now >= next_journal_read:
                self.journal.read()
                next_journal_read = now + JOURNAL_READ_INTERVAL_S
            if progress is None:
                continue
            if window is None and self._window_open(progress):
                window = (self.aimed.pop(0), progress["time_s"] + rng.uniform(0.0, AIM_SPAN_S))
            if window is not None and progress["time_s"] >= window[1]:
                return self._kill(child, window[0])
            count = notes.count(b"J")
            if journal_armed and count > journal_skip:
                return self._kill(child, "journal_write")
            journal_skip -= count if journal_armed else 0
            if self.timed and progress["time_s"] >= self.timed[0][0] and not journal_armed:
                _, kind = self.timed.pop(0)
                if kind == "uniform":
                    time.sleep(rng.uniform(0.0, FRAME_S / speed))  # a random instant inside the frame
                    return self._kill(child, "uniform")
                journal_armed, journal_skip = True, rng.randint(0, 1)  # the first or the second rename

    def _window_open(self, progress: dict) -> bool:
        """Has the next aimed kill's window opened?  A window that can no longer open is dropped."""
        while self.aimed:
            if self.aimed[0] == "release_armed":
                if progress["release_fired"] or progress["termination_fired"]:
                    self.aimed.pop(0)
                    continue
                return progress["release_armed"]
            if progress["cut_down"] or progress["landed"]:
                self.aimed.pop(0)
                continue
            return progress["cutdown_line"]
        return False

    @staticmethod
    def _kill(child: subprocess.Popen, aim: str) -> str | None:
        child.send_signal(signal.SIGKILL)  # a no-op if it has just exited (then the flight is over)
        child.wait()
        return aim if child.returncode == -signal.SIGKILL else None

    def _after_kill(self, pid: int, aim: str) -> None:
        """Classify the kill by what the dead process left behind; then ExecStopPost and the restart delay."""
        snapshot = read_snapshot(self.work_dir)
        self.journal.read()
        progress = next((p for p in (read_progress(self.work_dir), self.progress) if p and p.get("pid") == pid), {})
        state_dir = self.work_dir / STATE_DIR_NAME
        temps = sorted(p.name for p in state_dir.glob(f".*.{pid}.tmp")) if state_dir.is_dir() else []
        outputs = snapshot["outputs"] if snapshot else {}
        windows = {"journal_write": bool(temps), "cutdown_burn": outputs.get("cutdown_fire", False),
                   "release_burn": outputs.get("release_fire", False),
                   "release_armed": progress.get("release_armed", False) and not progress.get("release_fired")}
        observed = tuple(name for name, inside in windows.items() if inside) or ("other",)
        detail = ", ".join(temps) + ("; primary moved aside" if temps and not (state_dir / "state.json").exists()
                                     else "")
        self.release_interrupted |= bool(progress.get("release_fired") and not progress.get("released"))
        self.kills.append(Kill(self.index, aim, observed, snapshot["time_s"] if snapshot else 0.0, detail))
        held_s = self.rng.uniform(*HELD_S)
        record_stop(self.work_dir, held_s=held_s, restart_delay_s=held_s + RESTART_SEC_S + START_S)

    def _check(self, result: dict, waived: list[str]) -> list[str]:
        problems = []
        latches, watch = result["latches"], result["watch"]
        if result["release_burns"] > 1:
            problems.append(f"release burn wire activated {result['release_burns']} times")
        if watch["release_burns_at_release"] not in (None, result["release_burns"]):
            problems.append("release burn wire activated again after the release")
        if result["cutdown_burns"] > latches["cutdown_attempts"]:
            problems.append(f"{result['cutdown_burns']} cutdown activations, journal counts "
                            f"{latches['cutdown_attempts']} attempts")
        if latches["cutdown_attempts"] > max(latches["cutdown_attempt_limit"], self.journal.max_attempt_limit):
            problems.append(f"{latches['cutdown_attempts']} cutdown attempts above the limit "
                            f"{latches['cutdown_attempt_limit']}")
        if watch["cutdown_burns_at_cut"] not in (None, result["cutdown_burns"]):
            problems.append("cutdown burn wire activated again after separation")
        if not result["landed"]:
            problems.append(f"the flight did not land ({result['ended_by']})")
        for name, passed, detail in result["expectations"]:
            if passed:
                continue
            if (name.startswith(RELEASE_EXPECTATIONS) and self.release_interrupted and latches["release_fired"]
                    and not result["released"] and result["release_burns"] <= 1):
                waived.append(f"{name}: a kill interrupted the release burn, which never fires twice")
                continue
            problems.append(f"expectation failed: {name} ({detail})")
        return problems

    def _log_tail(self) -> str:
        try:
            return (self.work_dir / "child.log").read_text(errors="replace")[-3000:]
        except OSError:
            return ""


def run_kill_test(scenario_path: Path | str = DEFAULT_SCENARIO, *, kills: int = 100, seed: int = 1,
                  work_dir: Path | str, kills_per_flight: int = 20) -> KillTestResult:
    """Fly ``scenario_path`` as often as needed for ``kills`` SIGKILLs (``kills_per_flight`` planned per flight)
    in ``work_dir``; ``seed`` fixes the kill plan, delays and the flights' world seeds."""
    scenario_path = Path(scenario_path).resolve()
    scenario = load_scenario(scenario_path)
    rng = random.Random(seed)
    result = KillTestResult(scenario.name, seed)
    began = time.perf_counter()
    # timed kills are spread over the shortest flight the scenario expects, then over the last flight's length
    flight_s = next((expectation.min for expectation in scenario.expect
                     if expectation.kind == "duration_s" and expectation.min > 0), scenario.max_duration_s)
    index = 0
    while len(result.kills) < kills:
        wanted = min(kills_per_flight, kills - len(result.kills))
        aimed, timed = _plan(wanted, rng, flight_s)
        flight = _Flight(scenario_path, Path(work_dir) / f"flight-{index:03d}", index, seed * 1000 + index, rng,
                         aimed, timed)
        flight.work_dir.mkdir(parents=True, exist_ok=True)
        outcome = flight.fly()
        result.flights.append(outcome)
        result.kills.extend(flight.kills)
        result.journal_reads += flight.journal.reads
        flight_s = 0.95 * outcome.result.get("duration_s", flight_s)
        if not flight.kills:
            result.problems.append(f"flight {index} ended before any planned kill; stopping")
            break
        index += 1
    result.wall_s = time.perf_counter() - began
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hil.killtest", description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--per-flight", type=int, default=20, help="kills planned per flight")
    parser.add_argument("--scenario", type=Path, default=DEFAULT_SCENARIO)
    parser.add_argument("--work-dir", type=Path, default=None, help="keep the flights here (default: temporary)")
    args = parser.parse_args(argv)
    if args.work_dir is not None:
        result = run_kill_test(args.scenario, kills=args.kills, seed=args.seed, work_dir=args.work_dir,
                               kills_per_flight=args.per_flight)
    else:
        with tempfile.TemporaryDirectory(prefix="killtest-") as work_dir:
            result = run_kill_test(args.scenario, kills=args.kills, seed=args.seed, work_dir=work_dir,
                                   kills_per_flight=args.per_flight)
    print(result.summary())
    return 0 if result.passed else 1


if __name__ == "__main__":
    sys.exit(main())
