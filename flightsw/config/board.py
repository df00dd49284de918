"""Board profiles (``config/boards/*.yaml``): which chips sit where, which pins drive what."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

from flightsw.config.spec import spec
from hal.board import device_name
from hal.gpio import OUTPUT_ROLES

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

    def problems(self) -> Iterator[tuple[str, str]]:
        """A GPIO pin, an I2C address or a device name used twice, reported where it is used the second time."""
        pins = [(f"outputs.{role}.pin", line.pin) for role in OUTPUT_ROLES
                if (line := getattr(self.outputs, role)) is not None]
        if self.separation_switch is not None:
            pins.append(("separation_switch.pin", self.separation_switch.pin))
        devices = [(f"barometers[{i}]", d) for i, d in enumerate(self.barometers)] + \
            [(f"power_monitors[{i}]", d) for i, d in enumerate(self.power_monitors)]
        for what, used in (("GPIO pin", pins),
                           ("I2C address", [(f"{at}.address", hex(d.address)) for at, d in devices]),
                           ("device name", [(f"{at}.name", device_name(d)) for at, d in devices])):
            first: dict = {}
            for key_path, value in used:
                if value in first:
                    yield key_path, f"{what} {value} is also used by {first[value]}"
                first.setdefault(value, key_path)

