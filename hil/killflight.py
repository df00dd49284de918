"""One flight of the kill test: the killable child started, killed at the planned windows, restarted as systemd
would, and checked after every kill and at the end (see :mod:`hil.killtest` for the whole picture)."""

from __future__ import annotations

import json
import math
import os
import select
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from flightsw.config.flight import load_flight_config
from hil import killhooks
from hil.killable import RESULT_NAME, STATE_DIR_NAME
from hil.killcheck import Facts, JournalWatch, check_latched_facts
from hil.killlog import FlightLog, read_flight_log
from hil.killsnap import read_progress, read_snapshot, record_stop
from hil.scenario import load_scenario

KINDS = ("uniform", "journal_write", "latch_drive", "release_armed", "ballast_pulse", "dump", "cutdown_burn",
         "restart_loop", "terminate_ack")
#: windows not in the default plans: aimed only when asked for (``--aim``)
OPT_IN_KINDS = ("terminate_ack",)
#: aimed windows of a full plan, in the order they open in the kill-test flight
AIMED_ORDER = ("release_armed", "latch_drive", "ballast_pulse", "dump", "latch_drive", "cutdown_burn",
               "release_armed", "ballast_pulse", "cutdown_burn")
RESTART_LOOP_KILLS = 5
RESTART_LOOP_SPAN_S = 10.0  # a restart loop's kills all fall within this much simulated time
RESTART_SEC_S = 1.0  # systemd RestartSec of flightsw.service
START_S = 0.6  # a new process's start-up before its first frame
HELD_S = (0.2, 1.0)  # ExecStopPost's own start-up: the outputs stay as they were meanwhile
LOOP_HELD_S = (0.2, 0.5)  # ... in a crash loop, where it is in the page cache
LOOP_AFTER_START_S = (0.0, 0.2)  # a restart loop kills again this soon after each restart (simulated)
AIM_SPAN_S = 1.5  # polled windows: the kill lands within this much simulated time of the window opening
FRAME_S = 0.05
POLL_S = 0.003
JOURNAL_READ_INTERVAL_S = 0.05
STALL_TIMEOUT_S = 120.0
RELEASE_EXPECTATIONS = ("released exactly once", "released at altitude")
_LATCH_MARKS = (killhooks.MARK_LATCH, killhooks.MARK_DEFECT)
_JOURNAL_MARKS = (killhooks.MARK_TORN, killhooks.MARK_BETWEEN_SLOTS)


@dataclass
class FlightPlan:
    """A flight's kills: windows to aim at (any order: each is taken when it opens) and ``(simulated time, kind)``
    kills in time order (``uniform``, ``journal_write`` from that time, ``restart_loop`` starting then).
    ``latch_skips``: commits to let through before the first ``latch_drive`` kill (1: the release's commit, so
    that the release fires and the cutdown's commit is the one killed)."""

    aimed: list[str]
    timed: list[tuple[float, str]]
    latch_skips: int = 0

    def copy(self) -> "FlightPlan":
        return FlightPlan(list(self.aimed), list(self.timed), self.latch_skips)


@dataclass
class Kill:
    flight: int
    aimed: str  # one of KINDS
    observed: tuple[str, ...]  # windows it hit (hil.killtest.OBSERVED); ("other",) for none
    time_s: float  # simulated time of the snapshot the dead process left


@dataclass
class FlightOutcome:
    index: int
    seed: int
    kills: list[Kill]
    result: dict
    restarts: int = 0
    journal_checks: int = 0
    journal_reads: int = 0
    release_activations: int = 0
    cutdown_activations: int = 0
    loop_spans_s: list[float] = field(default_factory=list)
    unused: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    waived: list[str] = field(default_factory=list)
    wall_s: float = 0.0


class KilledFlight:
    """One flight in ``work_dir``: fly, kill, restart until it lands; then the outcome."""

    def __init__(self, scenario_path: Path, work_dir: Path, index: int, seed: int, rng, plan: FlightPlan, *,
                 defect: str | None = None) -> None:
        self.scenario_path, self.work_dir, self.index, self.seed, self.rng = scenario_path, work_dir, index, seed, rng
        self.plan, self.defect = plan, defect
        work_dir.mkdir(parents=True, exist_ok=True)
        scenario = load_scenario(scenario_path)
        params = {**load_flight_config(scenario_path.parent / scenario.flight).params, **scenario.params}
        self.flow_kgps = float(params.get("BAL_FLOW_KGPS", 0.01))
        self.ballast_start_kg = scenario.world.payload.ballast_mass_kg
        self.watch = JournalWatch(work_dir / STATE_DIR_NAME)
        self.kills: list[Kill] = []
        self.problems: list[str] = []
        self.journal_checks = 0
        self.progress: dict = {}
        self.started = False  # a child made progress: the journal exists from then on
        self.loop_left = 0  # kills still to come in the restart loop under way
        self.loop_halt_s = math.inf
        self.loop_times: list[float] = []
        self.loop_spans_s: list[float] = []
        self.undriven_commits = 0  # commits (release, cutdown attempts) without a line activation so far
        self.release_interrupted = False  # a kill ended the release burn before the world released
        self.commit_expected = False  # the kill came after the journal write that commits a fire
        self.journal_skip = 0  # journal pauses to let go before a journal_write kill

    def fly(self) -> FlightOutcome:
        began = time.perf_counter()
        while not self._segment():
            pass
        final = self.watch.read(label="at the end: ", require_found=True)
        result = json.loads((self.work_dir / RESULT_NAME).read_text())
        log = read_flight_log(self.work_dir)
        facts = Facts.observe(log, ballast_dropped_kg=self.ballast_start_kg - result["ballast_kg"])
        self.problems += ["at the end: " + problem for problem in check_latched_facts(final, facts,
                                                                                      flow_kgps=self.flow_kgps)]
        outcome = FlightOutcome(self.index, self.seed, self.kills, result, restarts=result["restarts"],
                                journal_checks=self.journal_checks, journal_reads=self.watch.reads,
                                release_activations=len(log.activations("release_fire")),
                                cutdown_activations=len(log.activations("cutdown_fire")),
                                loop_spans_s=self.loop_spans_s, wall_s=time.perf_counter() - began)
        outcome.unused = list(self.plan.aimed) + [kind for _, kind in self.plan.timed]
        self._mark_restart_loops()
        outcome.problems = self.problems + self.watch.problems + self._final_checks(result, log, outcome.waived)
        return outcome

    # ------------------------------------------------------------ the child

    def _child_options(self) -> list[str]:
        options = ["--defect", self.defect] if self.defect else []
        head = self.plan.timed[0] if self.plan.timed else (math.inf, "")
        if self.loop_left:
            return options + ["--halt-at-s", repr(self.loop_halt_s)]  # nothing else until the loop is over
        if "latch_drive" in self.plan.aimed:
            options.append("--pause-latch")
        if "terminate_ack" in self.plan.aimed:
            options.append("--pause-ack")
        if head[1] == "restart_loop":
            options += ["--halt-at-s", repr(head[0])]
        if head[1] == "journal_write":
            options += ["--pause-journal-from-s", repr(head[0])]
        return options

    def _start(self, notify_w: int, resume_r: int) -> subprocess.Popen:
        (self.work_dir / RESULT_NAME).unlink(missing_ok=True)
        command = [sys.executable, "-m", "hil.killable", "--work-dir", str(self.work_dir),
                   "--scenario", str(self.scenario_path), "--seed", str(self.seed), "--notify-fd", str(notify_w),
                   "--resume-fd", str(resume_r), *self._child_options()]
        with open(self.work_dir / "child.log", "ab") as log:
            return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    pass_fds=(notify_w, resume_r), cwd=Path(__file__).resolve().parent.parent)

    def _segment(self) -> bool:
        """Run the child until it is killed (False) or the flight is over (True)."""
        notify_r, notify_w = os.pipe()
        resume_r, resume_w = os.pipe()
        try:
            child = self._start(notify_w, resume_r)
            os.close(notify_w)
            os.close(resume_r)
            os.set_blocking(notify_r, False)
            aim = self._watch(child, notify_r, resume_w)
        finally:
            os.close(notify_r)
            os.close(resume_w)
        if aim is None:
            if child.returncode != 0:
                raise RuntimeError(f"flight {self.index}: child exited with {child.returncode}:\n{self._log_tail()}")
            return True
        self._after_kill(child.pid, aim)
        return False

    def _watch(self, child: subprocess.Popen, notify_r: int, resume_w: int) -> str | None:
        """Poll the child; kill it when a planned window comes.  Returns the kind aimed at, None if it finished."""
        rng, plan, progress, speed, window = self.rng, self.plan, None, 100.0, None  # window: (kind, kill at s)
        pace = None  # (wall, simulated time) at the start of the current speed measurement
        self.journal_skip, last_change, next_journal_read = rng.randint(0, 2), time.monotonic(), 0.0
        while True:
            select.select([notify_r], [], [], POLL_S)
            try:
                marks = os.read(notify_r, 4096)
            except BlockingIOError:
                marks = b""
            if child.poll() is not None:
                return None
            for mark in marks:  # the child waits at each mark (one at a time) until it is killed or let go
                aim = self._aim_at_mark(bytes((mark,)))
                if aim is not None:
                    return self._kill(child, aim)
                try:
                    os.write(resume_w, b"c")
                except BrokenPipeError:
                    pass
            now = time.monotonic()
            current = read_progress(self.work_dir)
            if current is not None and current.get("pid") == child.pid and current != progress:
                progress = self.progress = current
                self.started = True
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
                self.watch.read(label="while flying: ")
                next_journal_read = now + JOURNAL_READ_INTERVAL_S
            if progress is None or self.loop_left:
                continue
            if window is None and (kind := self._open_window(progress)):
                window = (kind, progress["time_s"] + rng.uniform(0.0, AIM_SPAN_S))
            if window is not None and progress["time_s"] >= window[1]:
                plan.aimed.remove(window[0])
                return self._kill(child, window[0])
            if plan.timed and plan.timed[0][1] == "uniform" and progress["time_s"] >= plan.timed[0][0]:
                plan.timed.pop(0)
                time.sleep(rng.uniform(0.0, FRAME_S / speed))  # a random instant inside the frame
                return self._kill(child, "uniform")

    def _aim_at_mark(self, mark: bytes) -> str | None:
        """The window to kill in at this pause of the child, or None to let it go on."""
        plan = self.plan
        if mark == killhooks.MARK_HALT:
            return "restart_loop"
        if self.loop_left:
            return None
        if mark in _LATCH_MARKS and "latch_drive" in plan.aimed:
            if plan.latch_skips:
                plan.latch_skips -= 1
                return None
            plan.aimed.remove("latch_drive")
            self.commit_expected = mark == killhooks.MARK_LATCH  # not the defect's order
            return "latch_drive"
        if mark in _JOURNAL_MARKS and plan.timed and plan.timed[0][1] == "journal_write":
            if self.journal_skip:
                self.journal_skip -= 1
                return None
            plan.timed.pop(0)
            return "journal_write"
        if mark == killhooks.MARK_ACK and "terminate_ack" in plan.aimed:
            plan.aimed.remove("terminate_ack")
            return "terminate_ack"
        return None

    def _open_window(self, progress: dict) -> str | None:
        """The first aimed window (other than latch_drive, which the child marks) open now."""
        is_open = {"release_armed": progress["release_armed"] and not progress["release_fired"],
                   "ballast_pulse": progress["ballast_line"], "dump": progress["termination_stage"] == "dump",
                   "cutdown_burn": progress["cutdown_line"]}
        return next((kind for kind in self.plan.aimed if is_open.get(kind)), None)

    @staticmethod
    def _kill(child: subprocess.Popen, aim: str) -> str | None:
        child.send_signal(signal.SIGKILL)  # a no-op if it has just exited (then the flight is over)
        child.wait()
        return aim if child.returncode == -signal.SIGKILL else None

    # ------------------------------------------------------------ after a kill

    def _after_kill(self, pid: int, aim: str) -> None:
        """Check the journal the restart will resume from; classify the kill; ExecStopPost and the restart delay."""
        snapshot = read_snapshot(self.work_dir) or {}
        log = read_flight_log(self.work_dir)
        progress = next((p for p in (read_progress(self.work_dir), self.progress) if p and p.get("pid") == pid), {})
        time_s = snapshot.get("time_s", 0.0)
        label = f"kill {len(self.kills) + 1} ({aim}) at {time_s:.2f} s: "
        restored = self.watch.read(label=label, require_found=self.started)
        self.journal_checks += 1
        dropped_kg = self.ballast_start_kg - snapshot["ballast_kg"] if snapshot else 0.0
        facts = Facts.observe(log, ballast_dropped_kg=dropped_kg)
        self.problems += [label + problem for problem in check_latched_facts(restored, facts,
                                                                              flow_kgps=self.flow_kgps)]
        self.problems += [label + problem for problem in log.problems]
        observed = self._observed(pid, time_s, log, restored, facts, progress)
        if self.commit_expected and "latch_drive" not in observed:
            self.problems.append(label + "killed after the journal write that commits a fire, before its line was "
                                 "driven, but the journal holds no commit (release_fired "
                                 f"{restored.latches.release_fired}, {restored.latches.cutdown_attempts} cutdown "
                                 f"attempts for {facts.cutdown_activations} activations)")
        self.commit_expected = False
        self.kills.append(Kill(self.index, aim, observed, time_s))
        left = log.levels_left_by(pid)
        released = (snapshot.get("watch") or {}).get("released_s") is not None
        self.release_interrupted |= left.get("release_fire", False) and not released
        held_s = self.rng.uniform(*(LOOP_HELD_S if aim == "restart_loop" else HELD_S))
        restart_delay_s = held_s + RESTART_SEC_S + START_S
        record_stop(self.work_dir, held_s=held_s, restart_delay_s=restart_delay_s)
        if aim == "restart_loop":
            self._loop_step(time_s, time_s + restart_delay_s)

    def _loop_step(self, kill_s: float, restart_s: float) -> None:
        if not self.loop_left:  # the loop's first kill
            self.plan.timed.pop(0)
            self.loop_left, self.loop_times = RESTART_LOOP_KILLS, []
        self.loop_left -= 1
        self.loop_times.append(kill_s)
        if self.loop_left:
            self.loop_halt_s = restart_s + self.rng.uniform(*LOOP_AFTER_START_S)
        else:
            self.loop_spans_s.append(self.loop_times[-1] - self.loop_times[0])

    def _observed(self, pid: int, time_s: float, log: FlightLog, restored, facts: Facts,
                  progress: dict) -> tuple[str, ...]:
        """The windows a kill hit, from what the dead process left behind.  ``latch_drive``: the journal holds a
        commit (release fired, a cutdown attempt) no line activation followed yet, or the other way round."""
        latches, left = restored.latches, log.levels_left_by(pid)
        slots = self.watch.journal.store.load()  # read only
        torn = any(not problem.endswith(": missing") for problem in slots.problems)
        undriven = latches.cutdown_attempts - facts.cutdown_activations + int(
            latches.release_fired and not facts.release_activations)
        windows = {
            "journal_write": torn or len({generation.sequence for generation in slots.generations}) > 1,
            "latch_drive": undriven > self.undriven_commits or bool(facts.release_activations
                                                                    and not latches.release_fired),
            "release_armed": progress.get("release_armed", False) and not progress.get("release_fired", False),
            "release_burn": left.get("release_fire", False),
            "ballast_pulse": left.get("ballast_valve", False),
            "dump": latches.termination_stage == "dump",
            "cutdown_burn": left.get("cutdown_fire", False),
            "terminate_ack": any(answer[0] == pid and abs(answer[1] - time_s) < 0.01 and answer[2] == "terminate"
                                 for answers in log.answers.values() for answer in answers),
        }
        self.undriven_commits = max(self.undriven_commits, undriven)
        return tuple(name for name, hit in windows.items() if hit) or ("other",)

    # ------------------------------------------------------------ at the end

    def _mark_restart_loops(self) -> None:
        """Every kill of a run of RESTART_LOOP_KILLS or more within RESTART_LOOP_SPAN_S hit a restart loop."""
        kills, size = self.kills, RESTART_LOOP_KILLS
        in_loop = set()
        for first in range(len(kills) - size + 1):
            if kills[first + size - 1].time_s - kills[first].time_s <= RESTART_LOOP_SPAN_S:
                in_loop.update(range(first, first + size))
        for index in sorted(in_loop):
            kill = kills[index]
            kill.observed = tuple(name for name in kill.observed if name != "other") + ("restart_loop",)

    def _final_checks(self, result: dict, log: FlightLog, waived: list[str]) -> list[str]:
        problems = list(log.problems)
        latches, watch = result["latches"], result["watch"]
        releases, cuts = log.activations("release_fire"), log.activations("cutdown_fire")
        if len(releases) > 1:
            problems.append(f"release line activated {len(releases)} times (at "
                            f"{', '.join(f'{edge.time_s:.2f}' for edge in releases)} s)")
        if watch["released_s"] is not None and log.activations("release_fire", after_s=watch["released_s"]):
            problems.append("release line activated again after the release")
        if not len(cuts) <= latches["cutdown_attempts"] <= latches["cutdown_attempt_limit"]:
            problems.append(f"{len(cuts)} cutdown activations; journal: {latches['cutdown_attempts']} attempts, "
                            f"limit {latches['cutdown_attempt_limit']}")
        if watch["cut_down_s"] is not None and log.activations("cutdown_fire", after_s=watch["cut_down_s"]):
            problems.append("cutdown line activated again after the separation")
        if releases and not latches["release_fired"] or log.acknowledged("terminate") and \
                not latches["termination_fired"]:
            problems.append("the journal forgot a release or a termination at the end of the flight")
        for token, sends in log.sent.items():
            answered_s = min((answer[1] for answer in log.answers.get(token, ())), default=math.inf)
            if any(sent_s > answered_s for _, sent_s, _ in sends):
                problems.append(f"the operator sent action {token} again after it was answered")
        if not result["landed"]:
            problems.append(f"the flight did not land ({result['ended_by']})")
        for name, passed, detail in result["expectations"]:
            if passed:
                continue
            if (name.startswith(RELEASE_EXPECTATIONS) and latches["release_fired"] and not result["released"]
                    and (self.release_interrupted or not releases) and len(releases) <= 1):
                why = "interrupted the release burn" if releases else "came between the release's commit and its burn"
                waived.append(f"{name}: a kill {why}, and a release never fires twice")
                continue
            problems.append(f"expectation failed: {name} ({detail})")
        return problems

    def _log_tail(self) -> str:
        try:
            return (self.work_dir / "child.log").read_text(errors="replace")[-3000:]
        except OSError:
            return ""
