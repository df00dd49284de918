"""Texas Instruments INA219 and INA226 current / power monitors on I2C.

Both chips have 16-bit registers sent most-significant byte first.  SMBus word transfers put the least-significant
byte first, so every word read or written through ``read_word_data`` / ``write_word_data`` is byte-swapped here.

Calibration (each datasheet's "Programming" section): ``Current_LSB`` defaults to the smallest allowed,
``max_current_a / 2**15`` (or pass a rounder ``current_lsb_a``), and

* INA219: ``CAL = trunc(0.04096 / (Current_LSB * R_shunt))``, power LSB = 20 x Current_LSB;
* INA226: ``CAL = trunc(0.00512 / (Current_LSB * R_shunt))``, power LSB = 25 x Current_LSB.

Readings are scaled with the LSB the truncated register value really gives (``0.04096 / (CAL * R)`` and
``0.00512 / (CAL * R)``), which equals the chosen LSB whenever CAL comes out whole.

Each update reads bus voltage, current, power and the calibration register; a calibration register that no longer
holds what was written (power glitch) is recorded as an error and the chip is configured again at once.  A
reading is unhealthy and counted out of range when the chip flags a math overflow (INA219 OVF), the current
register is saturated, the shunt voltage is at full scale, or the bus voltage exceeds the chip's rated input range.
"""

from __future__ import annotations

import abc
from typing import Any

from hal.i2c import DeviceDataError, PolledI2CDevice, s16, swap16
from hal.interfaces import PowerReading

REG_CONFIG = 0x00
REG_SHUNT = 0x01
REG_BUS = 0x02
REG_POWER = 0x03
REG_CURRENT = 0x04
REG_CALIBRATION = 0x05
REG_MANUFACTURER_ID = 0xFE
REG_DIE_ID = 0xFF
CONFIG_RESET = 0x8000

INA219_POR_CONFIG = 0x399F
INA219_PGA_RANGES_V = (0.04, 0.08, 0.16, 0.32)
INA219_RATED_BUS_V = 26.0
INA226_MANUFACTURER_ID = 0x5449
INA226_DIE_ID = 0x226  # bits 15..4 of register 0xFF
INA226_SHUNT_FULL_SCALE_V = 0.08192
INA226_RATED_BUS_V = 36.0
INA226_AVERAGES = {1: 0, 4: 1, 16: 2, 64: 3, 128: 4, 256: 5, 512: 6, 1024: 7}


def _whole(value: float) -> int:
    """Truncate, forgiving float noise just below a whole number (2559.9999999999995 -> 2560)."""
    nearest = round(value)
    return nearest if abs(value - nearest) < 1e-9 * max(1.0, abs(value)) else int(value)


def minimum_current_lsb_a(max_current_a: float) -> float:
    """The smallest Current_LSB (A/bit) that still represents ``max_current_a``: max / 2**15."""
    return max_current_a / 32768.0


def ina219_calibration(shunt_ohm: float, current_lsb_a: float) -> int:
    """INA219 calibration register: trunc(0.04096 / (Current_LSB * R_shunt)); bit 0 is not stored."""
    return _whole(0.04096 / (current_lsb_a * shunt_ohm))


def ina226_calibration(shunt_ohm: float, current_lsb_a: float) -> int:
    """INA226 calibration register: 0.00512 / (Current_LSB * R_shunt), truncated."""
    return _whole(0.00512 / (current_lsb_a * shunt_ohm))


class _Ina2xx(PolledI2CDevice):
    """What the INA219 and INA226 drivers share: register access and the measurement update."""

    rated_bus_v = 0.0
    _power_lsb_factor = 0.0
    _cal_mask = 0xFFFF

    def __init__(self, bus: Any, *, address: int, name: str, shunt_ohm: float, max_current_a: float,
                 current_lsb_a: float | None, cal_numerator: float, reinit_after_errors: int,
                 stale_after_s: float) -> None:
        if not shunt_ohm > 0:
            raise ValueError(f"{name}: shunt_ohm must be > 0, got {shunt_ohm}")
        if not max_current_a > 0:
            raise ValueError(f"{name}: max_current_a must be > 0, got {max_current_a}")
        super().__init__(bus, address=address, name=name, reinit_after_errors=reinit_after_errors,
                         stale_after_s=stale_after_s, initial_reading=PowerReading())
        self.shunt_ohm = shunt_ohm
        self.max_current_a = max_current_a
        lsb = current_lsb_a if current_lsb_a is not None else minimum_current_lsb_a(max_current_a)
        if lsb < minimum_current_lsb_a(max_current_a) * (1 - 1e-9):
            raise ValueError(f"{name}: current_lsb_a {lsb} A cannot represent {max_current_a} A in 15 bits")
        self.current_lsb_a = lsb
        calibration = _whole(cal_numerator / (lsb * shunt_ohm)) & self._cal_mask
        if calibration == 0:
            raise ValueError(f"{name}: calibration register would be 0 (shunt {shunt_ohm} ohm, LSB {lsb} A)")
        if _whole(cal_numerator / (lsb * shunt_ohm)) > self._cal_mask:
            raise ValueError(f"{name}: calibration {cal_numerator / (lsb * shunt_ohm):.0f} exceeds the register; "
                             f"choose a larger current_lsb_a or shunt")
        self.calibration = calibration
        self.effective_current_lsb_a = cal_numerator / (calibration * shunt_ohm)
        self.config = 0

    def _read(self, register: int) -> int:
        return swap16(self.bus.read_word_data(self.address, register))

    def _write(self, register: int, value: int) -> None:
        self.bus.write_word_data(self.address, register, swap16(value & 0xFFFF))

    def _configure(self, now_s: float) -> None:
        self._write(REG_CONFIG, self.config)
        self._write(REG_CALIBRATION, self.calibration)
        self.initialised = True

    def _step(self, now_s: float) -> None:
        if not self.initialised:
            self._identify()
            self._configure(now_s)
            return
        bus_raw = self._read(REG_BUS)
        current_raw = s16(self._read(REG_CURRENT))
        power_raw = self._read(REG_POWER)
        calibration = self._read(REG_CALIBRATION)
        if calibration != self.calibration:
            self._lost_configuration(f"calibration register reads 0x{calibration:04x}, "
                                     f"wrote 0x{self.calibration:04x} (chip reset?)")
            return
        bus_voltage_v, overflow = self._bus_voltage(bus_raw)
        lsb = self.effective_current_lsb_a
        current_a = current_raw * lsb
        power_w = power_raw * self._power_lsb_factor * lsb
        overflow = overflow or not -32768 < current_raw < 32767  # current register saturated
        in_range = (not overflow and bus_voltage_v <= self.rated_bus_v
                    and abs(current_a) < 0.999 * self._full_scale_current_a())
        if not in_range:
            self.stats.out_of_range += 1
        self._publish(PowerReading(bus_voltage_v, current_a, power_w, now_s, in_range))

    def _identify(self) -> None:
        """Check the chip is what it should be and reset it."""
        self.identify()
        self._write(REG_CONFIG, CONFIG_RESET)

    @abc.abstractmethod
    def identify(self) -> str:
        """Check that the chip answers at ``address`` and is what it should be.  Returns what was checked; raises
        ``OSError`` (bus) or :class:`~hal.i2c.DeviceDataError` (another chip answers)."""

    @abc.abstractmethod
    def _bus_voltage(self, raw: int) -> tuple[float, bool]:
        """(bus voltage in V, overflow flag) from the bus-voltage register."""

    @abc.abstractmethod
    def _full_scale_current_a(self) -> float:
        """The current (A) at which the shunt-voltage input saturates."""


class INA219(_Ina2xx):
    """INA219 driver satisfying :class:`hal.interfaces.PowerMonitor`.

    Arguments:
        bus: an ``smbus2.SMBus`` or compatible object.
        address: 0x40..0x4F (A0/A1 straps).
        name: device name for logs and telemetry.
        shunt_ohm: shunt resistance (ohm).
        max_current_a: largest current expected (A); sets the default Current_LSB and the PGA range.
        current_lsb_a: Current_LSB (A/bit) to use instead of the minimum, e.g. a round number.
        bus_voltage_range_v: 16 or 32 (the BRNG setting; the chip is rated to 26 V).
        reinit_after_errors: consecutive failed updates after which the chip is reset and configured again.
        stale_after_s: a reading older than this (s) is presented unhealthy.
    """

    rated_bus_v = INA219_RATED_BUS_V
    _power_lsb_factor = 20.0
    _cal_mask = 0xFFFE

    def __init__(self, bus: Any, *, address: int = 0x40, name: str = "power0", shunt_ohm: float = 0.1,
                 max_current_a: float = 3.2, current_lsb_a: float | None = None, bus_voltage_range_v: int = 32,
                 reinit_after_errors: int = 5, stale_after_s: float = 0.5) -> None:
        if bus_voltage_range_v not in (16, 32):
            raise ValueError(f"{name}: bus_voltage_range_v must be 16 or 32")
        super().__init__(bus, address=address, name=name, shunt_ohm=shunt_ohm, max_current_a=max_current_a,
                         current_lsb_a=current_lsb_a, cal_numerator=0.04096,
                         reinit_after_errors=reinit_after_errors, stale_after_s=stale_after_s)
        shunt_v = max_current_a * shunt_ohm * (1 - 1e-9)
        if shunt_v > INA219_PGA_RANGES_V[-1]:
            raise ValueError(f"{name}: {max_current_a} A through {shunt_ohm} ohm exceeds the 320 mV shunt range")
        pga = next(i for i, r in enumerate(INA219_PGA_RANGES_V) if r >= shunt_v)
        self.shunt_range_v = INA219_PGA_RANGES_V[pga]
        brng = 1 if bus_voltage_range_v == 32 else 0
        # BADC = SADC = 0011 (12 bit, 532 us), MODE = 111 (shunt and bus, continuous)
        self.config = (brng << 13) | (pga << 11) | (0b0011 << 7) | (0b0011 << 3) | 0b111

    def identify(self) -> str:
        """The INA219 has no id register: reset it and check that its configuration reads the power-on value.
        (The driver resets and configures the chip anyway when it starts.)"""
        self._write(REG_CONFIG, CONFIG_RESET)
        config = self._read(REG_CONFIG)
        if config != INA219_POR_CONFIG:
            raise DeviceDataError(f"configuration after reset reads 0x{config:04x}, not the INA219's "
                                  f"0x{INA219_POR_CONFIG:04x}")
        return f"power-on configuration 0x{config:04x}"

    def _bus_voltage(self, raw: int) -> tuple[float, bool]:
        return (raw >> 3) * 0.004, bool(raw & 0x01)

    def _full_scale_current_a(self) -> float:
        return self.shunt_range_v / self.shunt_ohm


class INA226(_Ina2xx):
    """INA226 driver satisfying :class:`hal.interfaces.PowerMonitor`.

    Arguments:
        bus: an ``smbus2.SMBus`` or compatible object.
        address: 0x40..0x4F (A0/A1 straps).
        name: device name for logs and telemetry.
        shunt_ohm: shunt resistance (ohm).
        max_current_a: largest current expected (A); sets the default Current_LSB.
        current_lsb_a: Current_LSB (A/bit) to use instead of the minimum, e.g. a round number.
        averages: samples averaged per result: 1, 4, 16, 64, 128, 256, 512 or 1024 (1.1 ms conversions).
        reinit_after_errors: consecutive failed updates after which the chip is reset and configured again.
        stale_after_s: a reading older than this (s) is presented unhealthy.
    """

    rated_bus_v = INA226_RATED_BUS_V
    _power_lsb_factor = 25.0
    _cal_mask = 0x7FFF

    def __init__(self, bus: Any, *, address: int = 0x40, name: str = "power0", shunt_ohm: float = 0.002,
                 max_current_a: float = 10.0, current_lsb_a: float | None = None, averages: int = 16,
                 reinit_after_errors: int = 5, stale_after_s: float = 0.5) -> None:
        if averages not in INA226_AVERAGES:
            raise ValueError(f"{name}: averages must be one of {sorted(INA226_AVERAGES)}")
        if max_current_a * shunt_ohm * (1 - 1e-9) > INA226_SHUNT_FULL_SCALE_V:
            raise ValueError(f"{name}: {max_current_a} A through {shunt_ohm} ohm exceeds the 81.92 mV shunt range")
        super().__init__(bus, address=address, name=name, shunt_ohm=shunt_ohm, max_current_a=max_current_a,
                         current_lsb_a=current_lsb_a, cal_numerator=0.00512,
                         reinit_after_errors=reinit_after_errors, stale_after_s=stale_after_s)
        # bit 14 reads 1; VBUSCT = VSHCT = 100 (1.1 ms); MODE = 111 (shunt and bus, continuous)
        self.config = 0x4000 | (INA226_AVERAGES[averages] << 9) | (0b100 << 6) | (0b100 << 3) | 0b111

    def identify(self) -> str:
        """Read the manufacturer and die id registers (0xFE, 0xFF).  Changes nothing on the chip."""
        manufacturer = self._read(REG_MANUFACTURER_ID)
        die = self._read(REG_DIE_ID) >> 4
        if manufacturer != INA226_MANUFACTURER_ID or die != INA226_DIE_ID:
            raise DeviceDataError(f"ids 0x{manufacturer:04x}/0x{die:03x} are not an INA226 "
                                  f"(0x{INA226_MANUFACTURER_ID:04x}/0x{INA226_DIE_ID:03x})")
        return f"ids 0x{manufacturer:04x}/0x{die:03x}"

    def _bus_voltage(self, raw: int) -> tuple[float, bool]:
        return (raw & 0x7FFF) * 1.25e-3, False

    def _full_scale_current_a(self) -> float:
        return INA226_SHUNT_FULL_SCALE_V / self.shunt_ohm
