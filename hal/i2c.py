"""Shared machinery for polled I2C sensor drivers.

A driver derives from :class:`PolledI2CDevice` and implements ``_step(now_s)``: one bounded slice of bus work
(start a conversion, read a finished one, or one step of initialisation).  ``_step`` may simply let an
``OSError`` from the bus or a :class:`DeviceDataError` propagate; :meth:`PolledI2CDevice.update` turns either into a
recorded error on the device's :class:`~hal.interfaces.DeviceStats`, marks the current reading unhealthy and, after
``reinit_after_errors`` consecutive failures, drops the chip back to the uninitialised state so the next
``update`` starts the chip over (reset, calibration read, configuration).  ``update`` never raises and never sleeps.
"""

from __future__ import annotations

import abc
import errno
import os
from typing import Any

from hal.interfaces import DeviceStats

#: What the common Linux i2c-dev errors mean on an I2C bus.
_ERRNO_MEANING = {
    errno.EREMOTEIO: "NACK",
    errno.ETIMEDOUT: "bus timeout",
    errno.EIO: "I/O error",
    errno.ENXIO: "no device at address",
    errno.EAGAIN: "bus busy / arbitration lost",
}


def bus_error_text(exc: OSError) -> str:
    """A short, stable description of a bus ``OSError``, e.g. ``"NACK (errno 121)"``."""
    code = exc.errno
    if code is None:
        return f"bus error: {exc}"
    meaning = _ERRNO_MEANING.get(code)
    if meaning is None:
        try:
            meaning = os.strerror(code)
        except ValueError:
            meaning = "bus error"
    return f"{meaning} (errno {code})"


class DeviceDataError(Exception):
    """The chip answered, but what it returned is unusable (wrong chip id, bad CRC, ADC result 0 ...)."""


def check_chip_id(bus: Any, address: int, register: int, expected: int, chip: str) -> str:
    """Read a chip id register and compare it with ``expected``: returns ``"chip id 0xNN"``; raises ``OSError``
    (bus) or :class:`DeviceDataError` (another chip answers)."""
    chip_id = bus.read_byte_data(address, register)
    if chip_id != expected:
        raise DeviceDataError(f"chip id 0x{chip_id:02x} is not a {chip} (0x{expected:02x})")
    return f"chip id 0x{chip_id:02x}"


def s16(value: int) -> int:
    """Interpret a 16-bit unsigned value as two's complement."""
    return value - 0x10000 if value & 0x8000 else value


def s8(value: int) -> int:
    """Interpret an 8-bit unsigned value as two's complement."""
    return value - 0x100 if value & 0x80 else value


def swap16(word: int) -> int:
    """Swap the bytes of a 16-bit word (SMBus words are little-endian on the wire)."""
    return ((word & 0xFF) << 8) | (word >> 8)


class PolledI2CDevice(abc.ABC):
    """Base class for a sensor polled once per minor frame.

    Arguments:
        bus: an ``smbus2.SMBus`` (or a compatible object); only its standard methods are used.
        address: 7-bit I2C address.
        name: the device's name in logs and telemetry.
        reinit_after_errors: after this many consecutive failed updates the chip is initialised again.
        stale_after_s: a reading older than this (seconds, on the ``now_s`` clock) is reported unhealthy.
        initial_reading: the reading presented before the first measurement (unhealthy).
    """

    def __init__(self, bus: Any, *, address: int, name: str, reinit_after_errors: int, stale_after_s: float,
                 initial_reading: Any) -> None:
        if not 0x03 <= address <= 0x77:
            raise ValueError(f"{name}: I2C address 0x{address:02x} outside the 7-bit range 0x03..0x77")
        if reinit_after_errors < 1:
            raise ValueError(f"{name}: reinit_after_errors must be >= 1, got {reinit_after_errors}")
        if not stale_after_s > 0:
            raise ValueError(f"{name}: stale_after_s must be > 0, got {stale_after_s}")
        self.bus = bus
        self.address = address
        self.name = name
        self.stats = DeviceStats()
        self.reinit_after_errors = reinit_after_errors
        self.stale_after_s = stale_after_s
        self.initialised = False
        self._reading = initial_reading

    # ------------------------------------------------------------ public

    def update(self, now_s: float) -> None:
        """Do one bounded slice of bus work.  Never raises, never sleeps."""
        try:
            self._step(now_s)
        except OSError as exc:
            self._fail(bus_error_text(exc))
        except DeviceDataError as exc:
            self._fail(str(exc))
        except Exception as exc:  # noqa: BLE001 - garbage from a chip must not stop the flight loop
            self._fail(f"internal error: {type(exc).__name__}: {exc}")
        reading = self._reading
        if reading.healthy and now_s - reading.time_s > self.stale_after_s:
            self._reading = reading._replace(healthy=False)

    @property
    def reading(self) -> Any:
        """The newest reading (``healthy`` is False when it failed, is stale or is out of range)."""
        return self._reading

    # ------------------------------------------------------------ for subclasses

    @abc.abstractmethod
    def _step(self, now_s: float) -> None:
        """One bounded slice of bus work; may raise ``OSError`` or :class:`DeviceDataError`."""

    def _on_uninitialise(self) -> None:
        """Hook: forget chip state (conversion in progress, calibration) when the chip is started over."""

    def _publish(self, reading: Any) -> None:
        """Store a freshly measured reading and count it."""
        self._reading = reading
        self.stats.record_ok()

    def _fail(self, what: str) -> None:
        """Record a failed update, mark the reading unhealthy, re-initialise after too many in a row."""
        self.stats.record_error(what)
        if self._reading.healthy:
            self._reading = self._reading._replace(healthy=False)
        if self.initialised and self.stats.consecutive_errors >= self.reinit_after_errors:
            self._uninitialise()

    def _lost_configuration(self, what: str) -> None:
        """The chip forgot its configuration (power glitch, spontaneous reset): record it and start over now."""
        self.stats.record_error(what)
        if self._reading.healthy:
            self._reading = self._reading._replace(healthy=False)
        self._uninitialise()

    def _uninitialise(self) -> None:
        if self.initialised:
            self.stats.reinits += 1
        self.initialised = False
        self._on_uninitialise()
