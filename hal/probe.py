"""Probe the devices of a HAL: is each configured device there, and is it the chip the board profile names?

A probe speaks the driver's own protocol: :func:`probe_i2c` calls the driver's ``identify()`` (the MS5611's PROM
CRC, the Bosch parts' chip id register, the INA226's manufacturer and die ids, the INA219's power-on
configuration), and :func:`probe_gps` asks whether the receiver's serial port is open.  Probes run once, at start,
before the drivers' own initialisation; they never raise and never sleep: whatever goes wrong is the result.

Statuses:

* ``found``: the chip answered and identified itself;
* ``not responding``: nothing acknowledges at the address (NACK, timeout, I/O error);
* ``wrong device``: something answers, but it is not the chip the profile names (or its calibration memory is
  corrupt);
* ``bus missing``: the I2C bus or the serial device does not exist or cannot be opened (``/dev/i2c-N`` absent,
  I2C not enabled, or no permission);
* ``unchecked``: the device cannot be judged yet (a GPS whose port is open but that has not been heard, or a
  driver without ``identify()``).
"""

from __future__ import annotations

import errno
from dataclasses import dataclass
from typing import Any

from hal.i2c import DeviceDataError, bus_error_text
from hal.interfaces import Hal

FOUND = "found"
NOT_RESPONDING = "not responding"
WRONG_DEVICE = "wrong device"
BUS_MISSING = "bus missing"
UNCHECKED = "unchecked"
STATUSES = (FOUND, NOT_RESPONDING, WRONG_DEVICE, BUS_MISSING, UNCHECKED)

#: errnos that mean the bus itself cannot be used (no /dev/i2c-N, no adapter, no permission), not the chip
_BUS_ERRNOS = frozenset({errno.ENOENT, errno.ENODEV, errno.EACCES, errno.EPERM, errno.EBADF})


@dataclass(frozen=True)
class ProbeResult:
    """What one probe found: the device's ``name``, one of :data:`STATUSES` and a short ``detail``."""

    name: str
    status: str
    detail: str

    @property
    def failed(self) -> bool:
        """The device is missing or is not what the profile says (``unchecked`` is not a failure)."""
        return self.status not in (FOUND, UNCHECKED)


def _bus_error(name: str, error: OSError) -> ProbeResult:
    if error.errno in _BUS_ERRNOS:
        hint = " (is the user in group i2c?)" if error.errno in (errno.EACCES, errno.EPERM) else ""
        text = f"{error.strerror} (errno {error.errno})" if error.strerror else bus_error_text(error)
        return ProbeResult(name, BUS_MISSING, text + hint)
    return ProbeResult(name, NOT_RESPONDING, bus_error_text(error))


def probe_i2c(device: Any) -> ProbeResult:
    """Ask an I2C driver to identify its chip (``device.identify()``, which raises ``OSError`` or
    :class:`~hal.i2c.DeviceDataError`).  Never raises."""
    name = str(getattr(device, "name", "?"))
    identify = getattr(device, "identify", None)
    if identify is None:
        return ProbeResult(name, UNCHECKED, f"{type(device).__name__} cannot identify its chip")
    try:
        return ProbeResult(name, FOUND, str(identify()))
    except OSError as error:
        return _bus_error(name, error)
    except DeviceDataError as error:
        return ProbeResult(name, WRONG_DEVICE, str(error))
    except Exception as error:  # noqa: BLE001 - a probe reports, it never stops the start
        return ProbeResult(name, NOT_RESPONDING, f"probe failed: {type(error).__name__}: {error}")


def probe_gps(gps: Any) -> ProbeResult:
    """A GPS receiver: its serial port is open (``unchecked``: the receiver itself is judged once it has had time
    to talk) or could not be opened (``bus missing``, with the open error).  Never raises."""
    name = str(getattr(gps, "name", "gps"))
    try:
        port_open = getattr(gps, "port_open", True)
        if port_open:
            return ProbeResult(name, UNCHECKED, "serial port open, receiver not heard yet")
        stats = getattr(gps, "stats", None)
        return ProbeResult(name, BUS_MISSING, getattr(stats, "last_error", "") or "serial port not open")
    except Exception as error:  # noqa: BLE001
        return ProbeResult(name, NOT_RESPONDING, f"probe failed: {type(error).__name__}: {error}")


def probe_hal(hal: Hal) -> list[ProbeResult]:
    """Probe every sensor of ``hal``: barometers, power monitors, thermometers, then the GPS.  Never raises."""
    results = [probe_i2c(device) for device in (*hal.barometers, *hal.power_monitors, *hal.thermometers)]
    if hal.gps is not None:
        results.append(probe_gps(hal.gps))
    return results
