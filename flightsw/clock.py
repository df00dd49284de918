"""The one place flight software reads time or sleeps.

* :class:`MonotonicClock` — flight: CLOCK_MONOTONIC for scheduling, sleeping to absolute deadlines (Python's
  ``time.sleep`` sleeps on CLOCK_MONOTONIC with an absolute deadline internally, so sleeping ``deadline - now`` has
  no drift of its own), the system's UTC clock for time stamps the ground sees, and the kernel's boot id and
  CLOCK_BOOTTIME, which tell a restart of the process (same boot: the time between is known exactly) from a
  reboot of the board.
* :class:`SimClock` — HIL: time only moves when the harness says so.  ``sleep_until`` advances the clock to the
  deadline and calls the registered ``on_advance`` hooks first, which is how the simulated world steps in lockstep
  with the frame loop.  Its wall clock and its boot can be changed by the harness (a board without a real-time
  clock boots in 1970; a brown-out is a new boot).
* :class:`MissionClock` — what the daemon runs on: a clock whose ``now_s`` is the mission elapsed time, the base
  clock's time plus a fixed offset worked out at start from the journal (see :mod:`flightsw.missiontime`).  Every
  decision, deadline and frame slot of the flight software is on this one time line; the wall clock only labels.
"""

from __future__ import annotations

import time
import uuid
from typing import Callable, Protocol

BOOT_ID_PATH = "/proc/sys/kernel/random/boot_id"


class Clock(Protocol):
    def now_s(self) -> float:
        """Monotonic seconds; only differences mean anything."""

    def wall_time_s(self) -> float:
        """UTC seconds since the Unix epoch (for time stamps sent to the ground and written to logs)."""

    def work_time_s(self) -> float:
        """A fine-grained counter for measuring how long work took (task run time, frame load)."""

    def sleep_until(self, deadline_s: float) -> None:
        """Return at (or just after) ``deadline_s`` on the ``now_s`` time line; return at once if it has passed."""

    def boot_id(self) -> str:
        """An identifier of the current boot of the machine: equal in every process until the next reboot."""

    def since_boot_s(self) -> float:
        """Seconds since the current boot began (comparable between processes of one boot)."""


def _read_boot_id() -> str:
    """The kernel's boot id; a fresh random one where the kernel gives none (every start then counts as a
    reboot, which only makes the mission clock count less down time, never more)."""
    try:
        with open(BOOT_ID_PATH, encoding="ascii") as file:
            text = file.read().strip()
    except OSError:
        text = ""
    return text or f"unknown-{uuid.uuid4()}"


class MonotonicClock:
    """The flight clock on a real board."""

    def __init__(self) -> None:
        self._monotonic = time.monotonic
        self._sleep = time.sleep
        self.work_time_s = time.perf_counter  # the executive reads it twice per task: no wrapper call
        self._boot_id = _read_boot_id()
        self._boottime = getattr(time, "CLOCK_BOOTTIME", time.CLOCK_MONOTONIC)

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

    def boot_id(self) -> str:
        return self._boot_id

    def since_boot_s(self) -> float:
        return time.clock_gettime(self._boottime)


class SimClock:
    """Simulated time for lockstep runs and tests.

    ``start_wall_time_s`` is the UTC time the simulation starts at (the scenario's launch date).  With
    ``measure_real_work`` (default) ``work_time_s`` reads the host's performance counter, so task statistics show
    real execution cost; without it, it follows simulated time, which lets tests model a task that takes long by
    calling :meth:`advance` from inside it.  The simulated machine boots at ``start_s`` (boot id ``sim-0``);
    :meth:`reboot` starts a new boot, :meth:`set_wall_time` steps the system clock.
    """

    def __init__(self, *, start_s: float = 0.0, start_wall_time_s: float = 1_700_000_000.0,
                 measure_real_work: bool = True) -> None:
        self._now_s = start_s
        self._wall_offset_s = start_wall_time_s - start_s
        self._hooks: list[Callable[[float], None]] = []
        self._measure_real_work = measure_real_work
        self._boot = 0
        self._boot_s = start_s
        if measure_real_work:
            self.work_time_s = time.perf_counter  # the executive reads it twice per task: no wrapper call

    def now_s(self) -> float:
        return self._now_s

    def wall_time_s(self) -> float:
        return self._now_s + self._wall_offset_s

    def work_time_s(self) -> float:
        return time.perf_counter() if self._measure_real_work else self._now_s

    def boot_id(self) -> str:
        return f"sim-{self._boot}"

    def since_boot_s(self) -> float:
        return self._now_s - self._boot_s

    def set_wall_time(self, wall_time_s: float) -> None:
        """Step the simulated system clock to ``wall_time_s`` now (NTP or GPS setting it, or an operator)."""
        self._wall_offset_s = wall_time_s - self._now_s

    def reboot(self, *, wall_time_s: float | None = None) -> None:
        """The simulated machine boots again now (after a power cut); ``wall_time_s``: what its clock reads (a
        board without a real-time clock starts near 1970), default: unchanged."""
        self._boot += 1
        self._boot_s = self._now_s
        if wall_time_s is not None:
            self.set_wall_time(wall_time_s)

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


class MissionClock:
    """``base`` shifted so that ``now_s`` reads mission elapsed time: ``base.now_s() + offset_s``.

    Everything else (the wall clock, the work counter, the boot) is the base clock's."""

    def __init__(self, base: Clock, offset_s: float) -> None:
        self.base = base
        self.offset_s = float(offset_s)
        base_now = base.now_s
        self.now_s = lambda: base_now() + self.offset_s  # read every frame by several tasks: one call
        self.wall_time_s = base.wall_time_s
        self.work_time_s = base.work_time_s
        self.boot_id = base.boot_id
        self.since_boot_s = base.since_boot_s

    def sleep_until(self, deadline_s: float) -> None:
        self.base.sleep_until(deadline_s - self.offset_s)
