"""The one place flight software reads time or sleeps.

* :class:`MonotonicClock` — flight: CLOCK_MONOTONIC for scheduling, sleeping to absolute deadlines (Python's
  ``time.sleep`` sleeps on CLOCK_MONOTONIC with an absolute deadline internally, so sleeping ``deadline - now`` has
  no drift of its own), the system's UTC clock for time stamps the ground sees.
* :class:`SimClock` — HIL: time only moves when the harness says so.  ``sleep_until`` advances the clock to the
  deadline and calls the registered ``on_advance`` hooks first, which is how the simulated world steps in lockstep
  with the frame loop.
"""

from __future__ import annotations

import time
from typing import Callable, Protocol


class Clock(Protocol):
    def now_s(self) -> float:
        """Monotonic seconds; only differences mean anything."""

    def wall_time_s(self) -> float:
        """UTC seconds since the Unix epoch (for time stamps sent to the ground and written to logs)."""

    def work_time_s(self) -> float:
        """A fine-grained counter for measuring how long work took (task run time, frame load)."""

    def sleep_until(self, deadline_s: float) -> None:
        """Return at (or just after) ``deadline_s`` on the ``now_s`` time line; return at once if it has passed."""


class MonotonicClock:
    """The flight clock on a real board."""

    def __init__(self) -> None:
        self._monotonic = time.monotonic
        self._sleep = time.sleep
        self.work_time_s = time.perf_counter  # the executive reads it twice per task: no wrapper call

    def now_s(self) -> float:
        return self._monotonic()

    def wall_time_s(self) -> float:
        return time.time()

    def work_time_s(self) -> float:
        return time.perf_counter()

    def sleep_until(self, deadline_s: float) -> None:
        remaining_s = deadline_s - self._monotonic()
        if remaining_s > 0:
            self._sleep(remaining_s)


class SimClock:
    """Simulated time for lockstep runs and tests.

    ``start_wall_time_s`` is the UTC time the simulation starts at (the scenario's launch date).  With
    ``measure_real_work`` (default) ``work_time_s`` reads the host's performance counter, so task statistics show
    real execution cost; without it, it follows simulated time, which lets tests model a task that takes long by
    calling :meth:`advance` from inside it.
    """

    def __init__(self, *, start_s: float = 0.0, start_wall_time_s: float = 1_700_000_000.0,
                 measure_real_work: bool = True) -> None:
        self._now_s = start_s
        self._wall_offset_s = start_wall_time_s - start_s
        self._hooks: list[Callable[[float], None]] = []
        self._measure_real_work = measure_real_work
        if measure_real_work:
            self.work_time_s = time.perf_counter  # the executive reads it twice per task: no wrapper call

    def now_s(self) -> float:
        return self._now_s

    def wall_time_s(self) -> float:
        return self._now_s + self._wall_offset_s

    def work_time_s(self) -> float:
        return time.perf_counter() if self._measure_real_work else self._now_s

    def on_advance(self, hook: Callable[[float], None]) -> None:
        """Call ``hook(new_now_s)`` every time the clock moves forward, before the new time is visible."""
        self._hooks.append(hook)

    def advance(self, dt_s: float) -> None:
        self.sleep_until(self._now_s + dt_s)

    def sleep_until(self, deadline_s: float) -> None:
        if deadline_s <= self._now_s:
            return
        for hook in self._hooks:
            hook(deadline_s)
        self._now_s = deadline_s
