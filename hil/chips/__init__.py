"""Emulated I2C chips for hardware-in-the-loop runs.

Each chip model implements its datasheet's register map / command set so that the real driver in ``hal`` runs
unchanged on a :class:`hil.fakebus.FakeSMBus`.  The simulation sets the physical values (``set_environment`` for
barometers, ``set_power`` for power monitors); the model turns them into raw ADC codes by inverting the
datasheet compensation with its own calibration constants.

Faults are requested through ``chip.faults`` (:class:`ChipFaults`).

The physical inputs are plain attributes (``pressure_pa`` / ``temperature_c`` of a barometer, ``bus_voltage_v`` /
``current_a`` of a power monitor) that the models read when a conversion finishes; a simulation feeding them every
frame may assign them directly instead of calling the setters.

Models live in ``hil.chips.ms5611``, ``hil.chips.bmp280``, ``hil.chips.bmp388`` and ``hil.chips.ina2xx``.  A model
receives every transaction with the bus time ``now_s`` (``None`` when the bus has no time: conversions then
complete instantly and drift is not applied).
"""

from __future__ import annotations

import errno
import math
import os
from collections.abc import Callable, Sequence


class ChipFaults:
    """Faults a simulation can inject into one chip.

    Attributes (set them directly):
        nack: every transaction to the chip fails with ``OSError(EREMOTEIO)`` (errno 121), as a dead chip.
        stuck: the raw values freeze at their current codes (the chip keeps answering).
        bias_pa: added to the pressure a barometer reports (Pa).
        drift_pa_per_s: pressure error growing linearly from ``drift_start_s`` on the bus clock (Pa/s).
        bias_current_a / bias_voltage_v: added to what a power monitor reports (A / V).
        out_of_range: a barometer reports ``out_of_range_pressure_pa`` of its model (outside the rated range);
            a power monitor reports a shunt voltage beyond its full scale.
        bad_crc: the calibration memory reads back corrupted (MS5611: PROM CRC fails; Bosch parts, which have no
            CRC, read an erased NVM; INA2xx: the calibration register reads back with bits flipped).

    Methods: :meth:`nack_next` (fail the next ``n`` transactions), :meth:`reset` (power glitch: the chip loses its
    configuration and any conversion in progress), :meth:`clear` (remove every fault).
    """

    __slots__ = ("nack", "stuck", "bias_pa", "drift_pa_per_s", "drift_start_s", "bias_current_a",
                 "bias_voltage_v", "out_of_range", "bad_crc", "nack_pending", "_power_glitch")

    def __init__(self, power_glitch: Callable[[], None]) -> None:
        self._power_glitch = power_glitch
        self.clear()

    def clear(self) -> None:
        """Remove every injected fault."""
        self.nack = False
        self.stuck = False
        self.bias_pa = 0.0
        self.drift_pa_per_s = 0.0
        self.drift_start_s = 0.0
        self.bias_current_a = 0.0
        self.bias_voltage_v = 0.0
        self.out_of_range = False
        self.bad_crc = False
        self.nack_pending = 0

    def nack_next(self, n: int = 1) -> None:
        """Make the next ``n`` transactions fail with NACK (errno 121)."""
        self.nack_pending = max(0, int(n))

    def reset(self) -> None:
        """Power glitch: the chip returns to its power-on state (configuration lost)."""
        self._power_glitch()

    def check_nack(self) -> None:
        """Raise the NACK ``OSError`` if a NACK fault applies to this transaction."""
        if self.nack:
            raise OSError(errno.EREMOTEIO, os.strerror(errno.EREMOTEIO))
        if self.nack_pending:
            self.nack_pending -= 1
            raise OSError(errno.EREMOTEIO, os.strerror(errno.EREMOTEIO))

    def pressure_error_pa(self, now_s: float | None) -> float:
        """Bias plus drift (Pa) at bus time ``now_s``."""
        error = self.bias_pa
        if self.drift_pa_per_s and now_s is not None and now_s > self.drift_start_s:
            error += self.drift_pa_per_s * (now_s - self.drift_start_s)
        return error


class ChipModel:
    """Base of every emulated chip.  Subclasses implement :meth:`i2c_write` and :meth:`i2c_read`.

    ``i2c_write(data, now_s)`` is one write transaction (``data[0]`` is the register or command byte);
    ``i2c_read(register, length, now_s)`` is a write of ``register`` followed by a repeated-start read of
    ``length`` bytes, answered as a new list of ``length`` ints (the bus hands it to the driver as it is);
    ``i2c_read_current(length, now_s)`` is a plain read from the current register pointer.
    """

    def __init__(self, address: int) -> None:
        self.address = address
        self.faults = ChipFaults(self.power_on_reset)
        self.pointer = 0

    def power_on_reset(self) -> None:
        """Return to the power-on state (override to clear registers)."""
        self.pointer = 0

    def i2c_write(self, data: Sequence[int], now_s: float | None) -> None:
        raise OSError(errno.EREMOTEIO, os.strerror(errno.EREMOTEIO))

    def i2c_read(self, register: int, length: int, now_s: float | None) -> list[int]:
        raise OSError(errno.EREMOTEIO, os.strerror(errno.EREMOTEIO))

    def i2c_read_current(self, length: int, now_s: float | None) -> list[int]:
        return self.i2c_read(self.pointer, length, now_s)


def solve_monotone(forward: Callable[[int], float], target: float, low: int, high: int, guess: int,
                   step: int = 64) -> int:
    """The integer ``x`` in ``[low, high]`` whose ``forward(x)`` is closest to ``target``.

    ``forward`` must be monotone (either direction) over the interval; it may be a step function (integer
    outputs).  A few secant steps from ``guess`` (first probe ``guess + step``) get close for the smooth
    compensation polynomials; the points seen on both sides of the target then bracket it and bisection finishes.
    """
    x0 = min(max(guess, low), high)
    y0 = forward(x0)
    x1 = x0 + step if x0 + step <= high else x0 - step
    x1 = min(max(x1, low), high)
    y1 = forward(x1)
    while y1 == y0 and step < high - low:  # flat: widen the probe to learn the direction
        step *= 8
        x1 = min(max(x0 + step, low), high) if x0 + step <= high else max(x0 - step, low)
        y1 = forward(x1)
    sign = 1.0 if (y1 - y0) * (x1 - x0) >= 0 else -1.0
    # g(x) = sign * (forward(x) - target) increases with x
    below: tuple[int, float] | None = None  # the largest x seen with g <= 0
    above: tuple[int, float] | None = None  # the smallest x seen with g >= 0

    def note(x: int, y: float) -> None:
        nonlocal below, above
        g = sign * (y - target)
        if g <= 0 and (below is None or x > below[0]):
            below = (x, y)
        if g >= 0 and (above is None or x < above[0]):
            above = (x, y)

    note(x0, y0)
    note(x1, y1)
    for _ in range(6):  # secant
        if y1 == y0 or y1 == target:
            break
        x2 = min(max(x1 + round((target - y1) * (x1 - x0) / (y1 - y0)), low), high)
        if x2 == x1:
            break
        x0, y0, x1, y1 = x1, y1, x2, forward(x2)
        note(x1, y1)
    span = 1
    while below is None or above is None:  # expand until the target is bracketed (or a bound is hit)
        edge = above[0] - span if below is None else below[0] + span
        edge = min(max(edge, low), high)
        y = forward(edge)
        note(edge, y)
        if edge in (low, high) and (below is None or above is None):
            return edge
        span *= 4
    (xb, yb), (xa, ya) = below, above
    while abs(xa - xb) > 1:  # bisection
        mid = (xa + xb) // 2
        y = forward(mid)
        if sign * (y - target) <= 0:
            xb, yb = mid, y
        else:
            xa, ya = mid, y
    return xb if abs(yb - target) <= abs(ya - target) else xa


def nearest_root_code(a0: float, a1: float, a2: float, a3: float, target: float, guess: float, low: int,
                      high: int) -> int | None:
    """The integer in ``[low, high]`` nearest the root of ``a0 + a1 x + a2 x^2 + a3 x^3 = target``, by Newton's
    method from ``guess``; None when Newton does not settle within a few steps or the root lies outside
    ``[low, high]`` (callers then fall back on :func:`solve_monotone`).

    Meant for compensation polynomials that are monotone and nearly linear over one code, where the nearest
    integer to the root is the code whose output is closest to the target.  From a previous solution a few hundred
    codes away it takes two steps.
    """
    x = float(guess)
    for _ in range(8):
        slope = a1 + x * (2.0 * a2 + 3.0 * a3 * x)
        if not slope:
            return None
        step = (a0 + x * (a1 + x * (a2 + x * a3)) - target) / slope
        x -= step
        if -0.01 < step < 0.01:
            code = math.floor(x + 0.5)
            return code if low <= code <= high else None
    return None


def newton_step_limit(a1: float, a2: float, a3: float, high: int, tolerance: float = 0.05) -> float:
    """The longest Newton step (codes) on ``a0 + a1 x + a2 x^2 + a3 x^3`` over ``[0, high]`` whose result is
    within ``tolerance`` codes of the root (the error of one step is at most ``|f''| / (2 |f'|)`` times its
    square); 0 when the polynomial is not monotone there."""
    slopes = [a1, a1 + high * (2.0 * a2 + 3.0 * a3 * high)]
    if a3 and 0.0 < -a2 / (3.0 * a3) < high:  # the extremum of the slope
        vertex = -a2 / (3.0 * a3)
        slopes.append(a1 + vertex * (2.0 * a2 + 3.0 * a3 * vertex))
    lowest, highest = min(slopes), max(slopes)
    if not (lowest > 0.0 or highest < 0.0):
        return 0.0
    curvature = max(abs(a2), abs(a2 + 3.0 * a3 * high)) / (lowest if lowest > 0.0 else -highest)
    return math.sqrt(tolerance / curvature) if curvature else math.inf


class MonotoneInverse:
    """Inverts one monotone compensation function repeatedly, cheaply when the target moves a little.

    It remembers the last solution and the local slope (measured over ``step`` codes, so step functions get a
    sensible average); a new target is first tried with one linear prediction from there (one evaluation of
    ``forward``), accepted when within ``tolerance`` of the target (default: half a code's worth), and only
    otherwise solved afresh with :func:`solve_monotone`.
    """

    __slots__ = ("forward", "low", "high", "step", "tolerance", "_x", "_y", "_slope", "_args")

    def __init__(self, forward: Callable[..., float], low: int, high: int, step: int = 64,
                 tolerance: float | None = None) -> None:
        self.forward = forward
        self.low = low
        self.high = high
        self.step = step
        self.tolerance = tolerance
        self._x: int | None = None
        self._y = 0.0
        self._slope = 0.0
        self._args: tuple = ()

    def solve(self, target: float, guess: int, *args: float) -> int:
        """The code whose ``forward(code, *args)`` is closest to ``target``; ``guess`` seeds a fresh solve."""
        forward = self.forward
        if self._x is not None and self._slope:
            if args != self._args:  # the function moved (e.g. a new temperature): re-anchor on it
                self._y = forward(self._x, *args)
                self._args = args
            x = min(max(self._x + round((target - self._y) / self._slope), self.low), self.high)
            y = forward(x, *args)
            tolerance = 0.5 * abs(self._slope) if self.tolerance is None else self.tolerance
            if abs(y - target) <= tolerance:
                self._x, self._y = x, y
                return x
            guess = x
        x = solve_monotone(lambda code: forward(code, *args), target, self.low, self.high, guess, self.step)
        y = forward(x, *args)
        other = x + self.step if x + self.step <= self.high else x - self.step
        slope = (forward(other, *args) - y) / (other - x)
        if slope:
            self._slope = slope
        self._x, self._y, self._args = x, y, args
        return x
