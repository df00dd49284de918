"""The cyclic executive: a fixed-rate minor frame running a table of tasks.

Each task runs on the frames where ``frame_index % divisor == offset`` — so a task with divisor 20 at 20 Hz runs once
a second, and offsets spread slow tasks over different frames.  The frame index counts *slots of time*, not frames
run: when a frame runs long, the executive skips the slots it missed (counting each as a slip) and resumes on the
next slot boundary.  It never runs frames back to back to catch up.

A task that raises is caught and counted; the first failure of a burst is logged, and so is the recovery.  The frame
goes on with the next task.

Garbage collection: after the first frame (start-up done) the heap is frozen (``gc.freeze``) and automatic
collection is switched off; once enough new objects have accumulated, the executive collects the young generation
in the slack at the end of a frame (the middle generation every tenth time) and never runs a full collection
inside the loop.
"""

from __future__ import annotations

import gc
import math
from dataclasses import dataclass, field
from typing import Callable

import structlog

from flightsw.clock import Clock

log = structlog.get_logger("executive")

SLACK_FOR_GC_FRACTION = 0.5  # collect only when at least this much of the frame is left
YOUNG_GENERATION_THRESHOLD = 700  # net allocations before a young collection (CPython's own default)
MIDDLE_GENERATION_EVERY = 10  # young collections per middle-generation collection


@dataclass(frozen=True)
class TaskSpec:
    """One row of the task table.  ``run(now_s)`` gets the frame's start time on the flight clock."""

    name: str
    run: Callable[[float], None]
    divisor: int = 1
    offset: int = 0
    budget_s: float = 0.002

    def __post_init__(self) -> None:
        if self.divisor < 1:
            raise ValueError(f"task {self.name}: divisor must be >= 1")
        if not 0 <= self.offset < self.divisor:
            raise ValueError(f"task {self.name}: offset must be in [0, divisor)")


@dataclass(slots=True)
class TaskStats:
    runs: int = 0
    last_s: float = 0.0
    max_s: float = 0.0
    total_s: float = 0.0
    overruns: int = 0
    errors: int = 0
    failing: bool = False
    last_error: str = ""

    @property
    def mean_s(self) -> float:
        return self.total_s / self.runs if self.runs else 0.0


@dataclass(slots=True)
class ExecutiveStats:
    frames: int = 0
    slips: int = 0
    load: float = 0.0  # fraction of the last frame's period spent working
    load_max: float = 0.0
    load_mean: float = 0.0
    lateness_s: float = 0.0  # how late the last frame started after its slot
    lateness_max_s: float = 0.0
    last_frame_on_time: bool = True
    gc_young: int = 0
    gc_middle: int = 0
    lateness_log: list[float] | None = field(default=None)  # benchmarks: every frame's lateness, s
    work_log: list[float] | None = field(default=None)  # benchmarks: every frame's work time, s


class Executive:
    """Run ``tasks`` at ``rate_hz`` on ``clock`` until :meth:`request_stop` (or ``run``'s ``max_frames``)."""

    def __init__(self, clock: Clock, tasks: list[TaskSpec], *, rate_hz: float = 20.0,
                 manage_gc: bool = True) -> None:
        names = [task.name for task in tasks]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate task names in {names}")
        self.clock = clock
        self.tasks = tasks
        self.period_s = 1.0 / rate_hz
        self.task_stats = {task.name: TaskStats() for task in tasks}
        # the schedule repeats every lcm(divisors) slots: slot -> the (run, budget_s, stats, task) rows that run in
        # it, in order (the task's callable and budget at hand: no attribute lookups per task per frame)
        self._cycle = math.lcm(*(task.divisor for task in tasks)) if tasks else 1
        self._schedule = tuple(tuple((task.run, task.budget_s, self.task_stats[task.name], task) for task in tasks
                                     if slot % task.divisor == task.offset) for slot in range(self._cycle))
        self.stats = ExecutiveStats()
        self.frame_index = 0
        self._manage_gc = manage_gc
        self._gc_frozen = False
        self._stop = False
        self._next_slot_s: float | None = None
        self._load_sum = 0.0
        self._failing_tasks = 0

    # ------------------------------------------------------------------ control

    def request_stop(self) -> None:
        """Ask the loop to end after the current frame (safe to call from a signal handler)."""
        self._stop = True

    @property
    def stopping(self) -> bool:
        return self._stop

    def tasks_healthy(self) -> bool:
        return self._failing_tasks == 0

    # ------------------------------------------------------------------ the loop

    def run(self, *, max_frames: int | None = None) -> None:
        """Run frames on their slots until stopped.  ``max_frames`` bounds the number of frames *run*."""
        self._stop = False
        frames_run = 0
        try:
            while not self._stop and (max_frames is None or frames_run < max_frames):
                self.step()
                frames_run += 1
        finally:
            if self._manage_gc and self._gc_frozen:
                gc.enable()

    def step(self) -> None:
        """Wait for the next slot, run its frame, account for overruns."""
        clock = self.clock
        if self._next_slot_s is None:
            self._next_slot_s = clock.now_s()
        clock.sleep_until(self._next_slot_s)
        start_s = clock.now_s()
        stats = self.stats
        stats.lateness_s = start_s - self._next_slot_s
        if stats.lateness_s > stats.lateness_max_s:
            stats.lateness_max_s = stats.lateness_s
        if stats.lateness_log is not None:
            stats.lateness_log.append(stats.lateness_s)

        self._account(self._run_tasks(start_s))
        self._advance_slot()
        self._collect_garbage()

    def _run_tasks(self, now_s: float) -> float:
        """Run this slot's tasks; returns the work time they took (s)."""
        index = self.frame_index
        work_time_s = self.clock.work_time_s
        began_s = start_s = work_time_s()
        for run, budget_s, stats, task in self._schedule[index % self._cycle]:
            try:
                run(now_s)
            except Exception as error:  # noqa: BLE001 - a task failure must never stop the frame
                self._task_failed(task, stats, error, index)
            else:
                if stats.failing:
                    self._task_recovered(task, stats, index)
            ended_s = work_time_s()
            elapsed_s = ended_s - began_s
            began_s = ended_s  # the next task starts where this one ended: one clock read per task
            stats.runs += 1
            stats.last_s = elapsed_s
            stats.total_s += elapsed_s
            if elapsed_s > stats.max_s:
                stats.max_s = elapsed_s
            if elapsed_s > budget_s:
                stats.overruns += 1
        return began_s - start_s

    def _task_failed(self, task: TaskSpec, stats: TaskStats, error: Exception, index: int) -> None:
        stats.errors += 1
        stats.last_error = f"{type(error).__name__}: {error}"
        if not stats.failing:
            stats.failing = True
            self._failing_tasks += 1
            log.error("task_failed", task=task.name, frame=index, error=stats.last_error, exc_info=error)

    def _task_recovered(self, task: TaskSpec, stats: TaskStats, index: int) -> None:
        stats.failing = False
        self._failing_tasks -= 1
        log.warning("task_recovered", task=task.name, frame=index, errors=stats.errors)

    def _account(self, work_s: float) -> None:
        stats = self.stats
        stats.frames += 1
        stats.load = work_s / self.period_s
        if stats.work_log is not None:
            stats.work_log.append(work_s)
        if stats.load > stats.load_max:
            stats.load_max = stats.load
        self._load_sum += stats.load
        stats.load_mean = self._load_sum / stats.frames

    def _advance_slot(self) -> None:
        """Move to the next slot; if the frame ran past it, skip the slots it covered and count them."""
        assert self._next_slot_s is not None
        period_s = self.period_s
        next_slot_s = self._next_slot_s + period_s
        now_s = self.clock.now_s()
        missed = 0
        if now_s > next_slot_s:
            missed = int((now_s - next_slot_s) // period_s) + 1
            next_slot_s += missed * period_s
            self.stats.slips += missed
        self.stats.last_frame_on_time = missed == 0
        self.frame_index += 1 + missed
        self._next_slot_s = next_slot_s

    def _collect_garbage(self) -> None:
        if not self._manage_gc:
            return
        if not self._gc_frozen:
            gc.collect()
            gc.freeze()
            gc.disable()
            self._gc_frozen = True
            return
        if gc.get_count()[0] < YOUNG_GENERATION_THRESHOLD:
            return
        assert self._next_slot_s is not None
        slack_s = self._next_slot_s - self.clock.now_s()
        if slack_s < self.period_s * SLACK_FOR_GC_FRACTION:
            return
        if self.stats.gc_young % MIDDLE_GENERATION_EVERY == MIDDLE_GENERATION_EVERY - 1:
            gc.collect(1)
            self.stats.gc_middle += 1
        else:
            gc.collect(0)
        self.stats.gc_young += 1
