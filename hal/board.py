"""Build the HAL of a board from its profile.

The same function builds the real board (an smbus2 bus, a pyserial port, gpiozero's default pin factory) and the
HIL board (the emulated bus, serial GPS and ``MockFactory`` pins are passed in), so the drivers that fly are the
drivers that are tested.  ``board`` is a board profile (``flightsw.config.board.BoardConfig`` or any object with the
same attributes); this module does not import the flight software.

Chip types are looked up in a registry: :func:`register_chip` names a chip, its role (barometer or power monitor)
and a function that builds its driver.  The shipped drivers are registered below; a new driver joins with one
``register_chip`` call (docs/guides/sensor-driver.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from hal.gpio import GpioInputLine, build_output_lines
from hal.interfaces import Hal


def device_name(chip_config: Any) -> str:
    """The name a barometer or power monitor goes by in logs and telemetry: its configured ``name``, else
    ``chip@address`` (e.g. ``ms5611@0x77``)."""
    return chip_config.name or f"{chip_config.chip}@{chip_config.address:#04x}"


BAROMETER = "barometer"
POWER_MONITOR = "power_monitor"
ROLES = (BAROMETER, POWER_MONITOR)


@dataclass(frozen=True)
class ChipDriver:
    """How to build the driver of one chip type named in board profiles.

    ``chip`` is the name a profile uses (``barometers[].chip`` / ``power_monitors[].chip``), ``role`` one of
    :data:`ROLES`, and ``build(chip_config, bus, name)`` returns the driver: ``chip_config`` is the profile's entry
    (``address``, ``name`` and the role's settings such as ``oversampling`` or ``shunt_ohm``), ``bus`` the I2C bus
    (an ``smbus2.SMBus`` or the HIL's ``FakeSMBus``), ``name`` the device's name (:func:`device_name`).
    """

    chip: str
    role: str
    build: Callable[[Any, Any, str], Any]


_DRIVERS: dict[str, ChipDriver] = {}


def register_chip(chip: str, role: str, build: Callable[[Any, Any, str], Any]) -> ChipDriver:
    """Make ``chip`` buildable from board profiles.  A chip name may be registered once."""
    if role not in ROLES:
        raise ValueError(f"chip {chip!r}: role must be one of {', '.join(ROLES)}, not {role!r}")
    if chip in _DRIVERS:
        raise ValueError(f"chip {chip!r} is already registered")
    driver = ChipDriver(chip, role, build)
    _DRIVERS[chip] = driver
    return driver


def unregister_chip(chip: str) -> None:
    """Forget ``chip`` (for tests that register a driver of their own)."""
    _DRIVERS.pop(chip, None)


def registered_chips(role: str) -> tuple[str, ...]:
    """The chip names registered for ``role``, in registration order."""
    return tuple(driver.chip for driver in _DRIVERS.values() if driver.role == role)


def build_chip(chip_config: Any, bus: Any, role: str) -> Any:
    """The driver of one board-profile entry (a barometer or a power monitor) on ``bus``."""
    driver = _DRIVERS.get(chip_config.chip)
    if driver is None:
        known = ", ".join(registered_chips(role))
        raise ValueError(f"unknown {role.replace('_', ' ')} chip {chip_config.chip!r} (registered: {known})")
    if driver.role != role:
        raise ValueError(f"chip {chip_config.chip!r} is a {driver.role.replace('_', ' ')}, "
                         f"not a {role.replace('_', ' ')}")
    return driver.build(chip_config, bus, device_name(chip_config))


# The drivers that ship with flightsw.  Each module is imported only when a profile names its chip.

def _ms5611(config: Any, bus: Any, name: str) -> Any:
    from hal.ms5611 import MS5611

    return MS5611(bus, address=config.address, name=name, oversampling=config.oversampling)


def _bmp280(config: Any, bus: Any, name: str) -> Any:
    from hal.bmp280 import BMP280

    return BMP280(bus, address=config.address, name=name)


def _bmp388(config: Any, bus: Any, name: str) -> Any:
    from hal.bmp388 import BMP388

    return BMP388(bus, address=config.address, name=name)


def _ina219(config: Any, bus: Any, name: str) -> Any:
    from hal.ina2xx import INA219

    return INA219(bus, address=config.address, name=name, shunt_ohm=config.shunt_ohm,
                  max_current_a=config.max_current_a)


def _ina226(config: Any, bus: Any, name: str) -> Any:
    from hal.ina2xx import INA226

    return INA226(bus, address=config.address, name=name, shunt_ohm=config.shunt_ohm,
                  max_current_a=config.max_current_a)


register_chip("ms5611", BAROMETER, _ms5611)
register_chip("bmp280", BAROMETER, _bmp280)
register_chip("bmp388", BAROMETER, _bmp388)
register_chip("ina219", POWER_MONITOR, _ina219)
register_chip("ina226", POWER_MONITOR, _ina226)


def open_i2c_bus(bus_number: int) -> Any:
    """The real I2C bus.  A missing bus (no /dev/i2c-N) still returns an object whose every transaction fails
    with OSError, so the drivers report unhealthy readings instead of the daemon refusing to start."""
    import smbus2

    try:
        return smbus2.SMBus(bus_number)
    except OSError as error:
        return _AbsentBus(error)


class _AbsentBus:
    def __init__(self, error: OSError) -> None:
        self._error = error

    def __getattr__(self, name: str) -> Callable[..., Any]:
        if name == "close":
            return lambda: None

        where = f"{self._error.filename}: " if self._error.filename else ""

        def fail(*_args: Any, **_kwargs: Any) -> Any:
            raise OSError(self._error.errno, f"I2C bus unavailable: {where}{self._error.strerror}")

        return fail


def build_hal(board: Any, *, bus: Any = None, gps_port: Any = None, pin_factory: Any = None,
              simulated: bool = False) -> Hal:
    """Construct every device of ``board``.  Without ``bus``/``gps_port``/``pin_factory`` the real hardware is
    opened.  Output lines are constructed inactive before anything else."""
    outputs = build_output_lines(board.outputs, pin_factory=pin_factory)
    separation = None
    try:
        if board.separation_switch is not None:
            switch = board.separation_switch
            separation = GpioInputLine("separation_switch", switch.pin, active_high=switch.active_high,
                                       pull_up=switch.pull_up, pin_factory=pin_factory)
        i2c_bus = bus if bus is not None else open_i2c_bus(board.i2c_bus)
        barometers = [build_chip(chip, i2c_bus, BAROMETER) for chip in board.barometers]
        power_monitors = [build_chip(chip, i2c_bus, POWER_MONITOR) for chip in board.power_monitors]
        gps = None
        if board.gps is not None:
            from hal.ublox import UbloxGps, open_serial_gps

            gps = (UbloxGps(gps_port, name="gps") if gps_port is not None
                   else open_serial_gps(board.gps.device, board.gps.baud))
    except Exception:
        outputs.force_safe()
        for line in outputs.all():
            line.close()
        raise
    closers = [] if bus is not None else [i2c_bus.close]
    return Hal(barometers=barometers, power_monitors=power_monitors, thermometers=[], gps=gps, outputs=outputs,
               separation_switch=separation, simulated=simulated, extra_closers=closers)


def safe_outputs(board: Any, *, pin_factory: Any = None) -> list[str]:
    """Drive every output line of ``board`` inactive and release it.  Returns the roles made safe."""
    outputs = build_output_lines(board.outputs, pin_factory=pin_factory)
    outputs.force_safe()
    names = [line.name for line in outputs.all()]
    for line in outputs.all():
        line.close()
    return names
