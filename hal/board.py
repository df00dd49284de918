"""Build the HAL of a board from its profile.

The same function builds the real board (an smbus2 bus, a pyserial port, gpiozero's default pin factory) and the
HIL board (the emulated bus, serial GPS and ``MockFactory`` pins are passed in), so the drivers that fly are the
drivers that are tested.  ``board`` is a board profile (``flightsw.config.board.BoardConfig`` or any object with the
same attributes); this module does not import the flight software.
"""

from __future__ import annotations

from typing import Any, Callable

from hal.gpio import GpioInputLine, build_output_lines
from hal.interfaces import Hal


def device_name(chip_config: Any) -> str:
    """The name a barometer or power monitor goes by in logs and telemetry: its configured ``name``, else
    ``chip@address`` (e.g. ``ms5611@0x77``)."""
    return chip_config.name or f"{chip_config.chip}@{chip_config.address:#04x}"


def _barometer(chip_config: Any, bus: Any) -> Any:
    name = device_name(chip_config)
    if chip_config.chip == "ms5611":
        from hal.ms5611 import MS5611

        return MS5611(bus, address=chip_config.address, name=name, oversampling=chip_config.oversampling)
    if chip_config.chip == "bmp280":
        from hal.bmp280 import BMP280

        return BMP280(bus, address=chip_config.address, name=name)
    if chip_config.chip == "bmp388":
        from hal.bmp388 import BMP388

        return BMP388(bus, address=chip_config.address, name=name)
    raise ValueError(f"unknown barometer chip {chip_config.chip!r}")


def _power_monitor(chip_config: Any, bus: Any) -> Any:
    from hal.ina2xx import INA219, INA226

    name = device_name(chip_config)
    cls = {"ina219": INA219, "ina226": INA226}[chip_config.chip]
    return cls(bus, address=chip_config.address, name=name, shunt_ohm=chip_config.shunt_ohm,
               max_current_a=chip_config.max_current_a)


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

        def fail(*_args: Any, **_kwargs: Any) -> Any:
            raise OSError(self._error.errno, f"I2C bus unavailable: {self._error.strerror}")

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
        barometers = [_barometer(chip, i2c_bus) for chip in board.barometers]
        power_monitors = [_power_monitor(chip, i2c_bus) for chip in board.power_monitors]
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
