"""Output and input lines on GPIO through gpiozero.

:class:`GpioOutputLine` is always constructed inactive (gpiozero ``initial_value=False`` honours ``active_high``,
so an active-low line is driven high).  ``activate(max_on_s)`` drives the line at once and, for a finite
``max_on_s``, hands a deadline to the process's backstop: one shared thread (:class:`Backstop`) that keeps every
line's deadline in a heap and drops a line when its deadline passes, even if the frame loop that owns the pulse
stalls.  A later ``activate`` or ``deactivate`` supersedes the pending deadline.  The actuator manager still ends
every pulse on its deadline; the backstop is the second line of defence.  Deadlines run on ``time.monotonic``.

On Raspberry Pi kernels an output stays driven after its process dies: the board needs external pull-downs on
firing lines, and systemd's ``ExecStopPost`` runs ``flightsw safe-outputs`` (see docs/hardware.md).
"""

from __future__ import annotations

import heapq
import itertools
import math
import threading
import time
from typing import Any

import gpiozero

from hal.interfaces import OutputLines

DEFAULT_MAX_ON_S = 30.0


class Backstop:
    """Drops output lines at their deadlines from one background thread (started with the first deadline).

    :meth:`schedule` is called by :class:`GpioOutputLine`; at the deadline the thread calls the line's
    ``_expire(generation)``, which drops it only if no later activation or deactivation superseded that deadline.
    Superseded deadlines stay in the heap until they come due and are then skipped.
    """

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._heap: list[tuple[float, int, GpioOutputLine, int]] = []  # (deadline_s, order, line, generation)
        self._order = itertools.count()  # ties on a deadline never compare lines
        self._thread: threading.Thread | None = None
        self.errors = 0  # drops that raised (the line could not be written)

    def schedule(self, line: GpioOutputLine, generation: int, deadline_s: float) -> None:
        """Drop ``line`` at ``deadline_s`` (``time.monotonic`` seconds) unless its generation has moved on."""
        entry = (deadline_s, next(self._order), line, generation)
        with self._condition:
            heapq.heappush(self._heap, entry)
            if self._thread is None:
                thread = threading.Thread(target=self._run, name="gpio-backstop", daemon=True)
                thread.start()
                self._thread = thread
            elif self._heap[0] is entry:
                self._condition.notify()  # the new deadline is the earliest: wake the thread to wait less

    @property
    def pending(self) -> int:
        """Deadlines in the heap, superseded ones included."""
        return len(self._heap)

    def _run(self) -> None:
        while True:
            due = self._wait_for_due()
            for line, generation in due:
                try:
                    line._expire(generation)
                except Exception:  # noqa: BLE001 - the backstop thread must survive a failing line
                    self.errors += 1

    def _wait_for_due(self) -> list[tuple[GpioOutputLine, int]]:
        """Block until at least one deadline has passed; pop and return every deadline that has."""
        with self._condition:
            while True:
                heap = self._heap
                if not heap:
                    self._condition.wait()
                    continue
                delay_s = heap[0][0] - time.monotonic()
                if delay_s > 0.0:
                    self._condition.wait(delay_s)
                    continue
                now_s = time.monotonic()
                due = []
                while heap and heap[0][0] <= now_s:
                    _, _, line, generation = heapq.heappop(heap)
                    due.append((line, generation))
                return due


#: The process's backstop, shared by every output line.
BACKSTOP = Backstop()


class GpioOutputLine:
    """One output line.

    :param name: the line's role, for logs (``cutdown_fire``).
    :param pin: BCM GPIO number.
    :param active_high: True when the load is powered with the pin high.
    :param max_on_s: the longest this line may ever stay on in one activation (backstop ceiling), seconds;
        ``math.inf`` for level outputs such as an arming relay.
    :param pin_factory: gpiozero pin factory (``MockFactory`` in tests and HIL); None for the default.
    :param backstop: the :class:`Backstop` that enforces deadlines (default: the process's :data:`BACKSTOP`).
    """

    def __init__(self, name: str, pin: int, *, active_high: bool = True, max_on_s: float = DEFAULT_MAX_ON_S,
                 pin_factory: Any = None, backstop: Backstop | None = None) -> None:
        self.name = name
        self.pin = pin
        self.max_on_s = max_on_s
        self._device = gpiozero.DigitalOutputDevice(pin, active_high=active_high, initial_value=False,
                                                    pin_factory=pin_factory)
        self._active_level = bool(active_high)  # the pin level that powers the load
        # The pin's level as gpiozero reads it (``Pin.state`` is this getter behind a property), read back every
        # frame: kept at hand; None once closed.
        self._read_level = self._device.pin._get_state
        self._backstop = BACKSTOP if backstop is None else backstop
        self._lock = threading.Lock()  # orders the frame loop's writes against the backstop's
        self._generation = 0  # bumped by every activate / deactivate: older deadlines no longer apply
        self.activations = 0
        self.backstop_drops = 0  # times the backstop dropped the line (its owner missed the deadline)

    def activate(self, max_on_s: float) -> None:
        """Drive the line active; it drops by itself after ``max_on_s`` seconds (capped by the line's own
        ``max_on_s``; ``math.inf`` on both: a level that stays until :meth:`deactivate`)."""
        on_s = min(max_on_s, self.max_on_s)
        if not on_s > 0.0:
            raise ValueError(f"{self.name}: max_on_s must be > 0 (math.inf for a level), got {max_on_s!r}")
        with self._lock:
            self._generation += 1
            self.activations += 1
            if not math.isinf(on_s):  # the deadline first: the line is never driven without one
                self._backstop.schedule(self, self._generation, time.monotonic() + on_s)
            self._device.on()

    def deactivate(self) -> None:
        with self._lock:
            self._generation += 1
            self._device.off()

    @property
    def is_active(self) -> bool:
        """The line read back from the pin (its level, not what was last written)."""
        read_level = self._read_level
        if read_level is None:
            raise gpiozero.GPIODeviceClosed(f"{self.name}: output line is closed")
        return bool(read_level()) == self._active_level

    def close(self) -> None:
        with self._lock:
            self._generation += 1
            self._read_level = None
            try:
                self._device.off()
            finally:
                self._device.close()

    def _expire(self, generation: int) -> None:
        """The backstop's call at a deadline: drop the line if that activation is still the current one."""
        with self._lock:
            if generation != self._generation:
                return
            self._generation += 1
            self.backstop_drops += 1
            self._device.off()


class GpioInputLine:
    """A digital input (separation switch).  ``pull_up`` selects the internal pull; ``active_high`` says which
    level means *active*."""

    def __init__(self, name: str, pin: int, *, active_high: bool = True, pull_up: bool = False,
                 pin_factory: Any = None) -> None:
        self.name = name
        # gpiozero reports value 1 for a low pin when pulled up; we want "active" to mean the level the board
        # profile names, so invert when the pull and the active level agree.
        self._device = gpiozero.DigitalInputDevice(pin, pull_up=pull_up, pin_factory=pin_factory)
        self._invert = pull_up == active_high

    @property
    def is_active(self) -> bool:
        value = bool(self._device.value)
        return not value if self._invert else value

    def close(self) -> None:
        self._device.close()


OUTPUT_ROLES = ("ballast_valve", "vent_valve", "release_arm", "release_fire", "cutdown_arm", "cutdown_fire",
                "termination_heartbeat")
ARM_ROLES = ("release_arm", "cutdown_arm")


def build_output_lines(outputs_config: Any, *, pin_factory: Any = None) -> OutputLines:
    """Build every output line of a board profile's ``outputs`` section (a ``flightsw`` OutputsConfig or any
    object with attributes ``pin``, ``active_high`` and ``max_on_s`` per role), all inactive."""
    lines: dict[str, GpioOutputLine | None] = {}
    try:
        for role in OUTPUT_ROLES:
            line_config = getattr(outputs_config, role, None)
            if line_config is None:
                lines[role] = None
                continue
            max_on_s = math.inf if role in ARM_ROLES or role == "termination_heartbeat" else line_config.max_on_s
            lines[role] = GpioOutputLine(role, line_config.pin, active_high=line_config.active_high,
                                         max_on_s=max_on_s, pin_factory=pin_factory)
    except Exception:
        for line in lines.values():
            if line is not None:
                line.close()
        raise
    return OutputLines(**lines)  # type: ignore[arg-type]
