"""Output and input lines on GPIO through gpiozero.

:class:`GpioOutputLine` is always constructed inactive (gpiozero ``initial_value=False`` honours ``active_high``,
so an active-low line is driven high).  ``activate(max_on_s)`` uses gpiozero's background ``blink(n=1)`` as a
backstop: gpiozero's own thread drops the line after ``max_on_s`` even if the frame loop that owns the pulse
stalls.  The actuator manager still ends every pulse on its deadline; the backstop is the second line of defence.

On Raspberry Pi kernels an output stays driven after its process dies: the board needs external pull-downs on
firing lines, and systemd's ``ExecStopPost`` runs ``flightsw safe-outputs`` (see docs/hardware.md).
"""

from __future__ import annotations

import math
from typing import Any

import gpiozero

from hal.interfaces import OutputLines

DEFAULT_MAX_ON_S = 30.0


class GpioOutputLine:
    """One output line.

    :param name: the line's role, for logs (``cutdown_fire``).
    :param pin: BCM GPIO number.
    :param active_high: True when the load is powered with the pin high.
    :param max_on_s: the longest this line may ever stay on in one activation (backstop ceiling), seconds;
        ``math.inf`` for level outputs such as an arming relay.
    :param pin_factory: gpiozero pin factory (``MockFactory`` in tests and HIL); None for the default.
    """

    def __init__(self, name: str, pin: int, *, active_high: bool = True, max_on_s: float = DEFAULT_MAX_ON_S,
                 pin_factory: Any = None) -> None:
        self.name = name
        self.pin = pin
        self.max_on_s = max_on_s
        self._device = gpiozero.DigitalOutputDevice(pin, active_high=active_high, initial_value=False,
                                                    pin_factory=pin_factory)
        self.activations = 0

    def activate(self, max_on_s: float) -> None:
        on_s = min(max_on_s, self.max_on_s)
        self.activations += 1
        if math.isinf(on_s):
            self._device.on()
        else:
            self._device.blink(on_time=on_s, off_time=0.0, n=1, background=True)

    def deactivate(self) -> None:
        self._device.off()

    @property
    def is_active(self) -> bool:
        return bool(self._device.value)

    def close(self) -> None:
        try:
            self._device.off()
        finally:
            self._device.close()


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
