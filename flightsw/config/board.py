"""Board profiles (``config/boards/*.yaml``): which chips sit where, which pins drive what."""

from __future__ import annotations

from dataclasses import dataclass

from flightsw.config.spec import spec
from hal.board import device_name

BAROMETER_CHIPS = ("ms5611", "bmp280", "bmp388")
POWER_CHIPS = ("ina219", "ina226")


@dataclass(frozen=True)
class BarometerConfig:
    chip: str = spec(choices=BAROMETER_CHIPS, doc="chip type")
    address: int = spec(min=0x03, max=0x77, doc="7-bit I2C address")
    name: str = spec("", max=16, doc="name in logs and telemetry (default: chip@address)")
    oversampling: int = spec(4096, choices=(256, 512, 1024, 2048, 4096), doc="MS5611 oversampling ratio")


@dataclass(frozen=True)
class PowerMonitorConfig:
    chip: str = spec(choices=POWER_CHIPS, doc="chip type")
    address: int = spec(min=0x03, max=0x77, doc="7-bit I2C address")
    name: str = spec("", max=16, doc="name in logs and telemetry")
    shunt_ohm: float = spec(0.1, min=0.0001, max=10.0, unit="ohm", doc="shunt resistance")
    max_current_a: float = spec(3.2, min=0.01, max=100.0, unit="A", doc="largest expected current")


@dataclass(frozen=True)
class GpsConfig:
    device: str = spec("/dev/serial0", min=1, doc="serial device of the u-blox receiver")
    baud: int = spec(9600, choices=(4800, 9600, 19200, 38400, 57600, 115200, 230400), doc="baud rate")


@dataclass(frozen=True)
class OutputConfig:
    pin: int = spec(min=0, max=53, doc="BCM GPIO number")
    active_high: bool = spec(True, doc="true: the load is on when the pin is high")
    max_on_s: float = spec(30.0, min=0.01, max=3600.0, unit="s",
                           doc="backstop: the line drops after this long even if the frame loop stalls")


@dataclass(frozen=True)
class InputConfig:
    pin: int = spec(min=0, max=53, doc="BCM GPIO number")
    active_high: bool = spec(True, doc="true: the input is active when the pin reads high")
    pull_up: bool = spec(False, doc="enable the internal pull-up (otherwise pull-down)")


@dataclass(frozen=True)
class OutputsConfig:
    ballast_valve: OutputConfig
    vent_valve: OutputConfig
    release_arm: OutputConfig
    release_fire: OutputConfig
    cutdown_arm: OutputConfig
    cutdown_fire: OutputConfig
    termination_heartbeat: OutputConfig | None = spec(None, doc="optional heartbeat line to an external "
                                                              "termination board")


@dataclass(frozen=True)
class BoardConfig:
    name: str = spec(min=1, max=40, doc="board name")
    outputs: OutputsConfig = spec(doc="output lines")
    i2c_bus: int = spec(1, min=0, max=20, doc="I2C bus number (/dev/i2c-N)")
    barometers: tuple[BarometerConfig, ...] = spec((), max=3, doc="barometers (up to 3, voted)")
    power_monitors: tuple[PowerMonitorConfig, ...] = spec((), max=4, doc="power monitors; the first is the "
                                                                         "battery")
    gps: GpsConfig | None = spec(None, doc="the GNSS receiver")
    separation_switch: InputConfig | None = spec(None, doc="optional separation-switch input")

    def __post_init__(self) -> None:
        pins = [getattr(self.outputs, name).pin for name in _OUTPUT_NAMES if getattr(self.outputs, name)]
        if self.separation_switch is not None:
            pins.append(self.separation_switch.pin)
        dupes = sorted({pin for pin in pins if pins.count(pin) > 1})
        if dupes:
            raise ValueError(f"GPIO pins used twice: {dupes}")
        addresses = [b.address for b in self.barometers] + [p.address for p in self.power_monitors]
        dupes = sorted({a for a in addresses if addresses.count(a) > 1})
        if dupes:
            raise ValueError(f"I2C addresses used twice: {[hex(a) for a in dupes]}")
        names = [device_name(device) for device in (*self.barometers, *self.power_monitors)]
        dupes = sorted({name for name in names if names.count(name) > 1})
        if dupes:  # the estimator and the telemetry tell sensors apart by name
            raise ValueError(f"device names used twice: {dupes}")


_OUTPUT_NAMES = ("ballast_valve", "vent_valve", "release_arm", "release_fire", "cutdown_arm", "cutdown_fire",
                 "termination_heartbeat")
