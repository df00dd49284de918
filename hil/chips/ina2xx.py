"""Emulated TI INA219 and INA226 power monitors (register maps of their datasheets).

The simulation sets the bus voltage and the load current (``set_power``); the shunt voltage follows from the
model's physical shunt resistance.  Registers are 16 bit, sent most-significant byte first; a write is the
pointer byte followed by two data bytes, a read returns the register the pointer selects.  Current and power are
computed as the chips do: ``current = shunt x CAL / 4096`` and ``power = current x bus / 5000`` (INA219),
``current = shunt x CAL / 2048`` and ``power = current x bus / 20000`` (INA226); both read 0 until the
calibration register is programmed.  Conversions are treated as always complete.
"""

from __future__ import annotations

from collections.abc import Sequence

from hal.ina2xx import INA219_POR_CONFIG, INA226_MANUFACTURER_ID
from hil.chips import ChipModel


def _trunc_div(numerator: int, denominator: int) -> int:
    quotient = abs(numerator) // denominator
    return quotient if numerator >= 0 else -quotient


class _InaChip(ChipModel):
    """Shared register file and fault handling of the INA models."""

    _por_config = 0
    _shunt_lsb_v = 1.0
    _bus_lsb_v = 1.0
    _current_divisor = 1
    _power_divisor = 1
    _cal_mask = 0xFFFF

    def __init__(self, address: int, shunt_ohm: float) -> None:
        super().__init__(address)
        if not shunt_ohm > 0:
            raise ValueError("shunt_ohm must be > 0")
        self.shunt_ohm = shunt_ohm
        self.bus_voltage_v = 0.0
        self.current_a = 0.0
        self._frozen: tuple[int, int] | None = None
        self.power_on_reset()

    def set_power(self, *, bus_voltage_v: float, current_a: float) -> None:
        """Set the bus voltage (V, load side of the shunt) and the current through the shunt (A)."""
        self.bus_voltage_v = bus_voltage_v
        self.current_a = current_a

    def power_on_reset(self) -> None:
        super().power_on_reset()
        self.config = self._por_config
        self.calibration = 0
        self.extra_regs: dict[int, int] = {}
        self._cached: tuple[int, int, int, int, bool] | None = None
        self._cached_until_s = 0.0

    # ------------------------------------------------------------ conversion

    def _shunt_limit(self) -> int:
        return 32767

    def _raw(self) -> tuple[int, int, bool]:
        """(shunt register, bus code, saturated) for the present inputs and faults."""
        faults = self.faults
        if faults.stuck and self._frozen is not None:
            shunt, bus = self._frozen
            return shunt, bus, abs(shunt) >= self._shunt_limit()
        limit = self._shunt_limit()
        if faults.out_of_range:
            shunt_v = 2.0 * limit * self._shunt_lsb_v
        else:
            shunt_v = (self.current_a + faults.bias_current_a) * self.shunt_ohm
        shunt = round(shunt_v / self._shunt_lsb_v)
        saturated = abs(shunt) >= limit
        shunt = limit if shunt > limit else -limit if shunt < -limit else shunt  # clamped to the register
        bus = round((self.bus_voltage_v + faults.bias_voltage_v) / self._bus_lsb_v)
        bus_max = self._bus_max()
        bus = bus_max if bus > bus_max else 0 if bus < 0 else bus
        self._frozen = (shunt, bus)
        return shunt, bus, saturated

    def _bus_max(self) -> int:
        return 0x7FFF

    def _conversion_s(self) -> float:
        """Time for one shunt + bus conversion cycle at the configured settings (s)."""
        return 1.06e-3

    def _measure(self, now_s: float | None) -> tuple[int, int, int, int, bool]:
        """(shunt, bus code, current register, power register, overflow) of the newest conversion.

        With a clock, results refresh once per conversion cycle (the registers hold the last result between).
        """
        cached = self._cached
        if cached is not None and now_s is not None and now_s < self._cached_until_s:
            return cached
        shunt, bus, overflow = self._raw()
        current = _trunc_div(shunt * self.calibration, self._current_divisor)
        if not -32768 <= current <= 32767:
            overflow = True
            current = max(-32768, min(32767, current))
        power = abs(current) * bus // self._power_divisor
        if power > 0xFFFF:
            overflow = True
            power = 0xFFFF
        self._cached = result = (shunt, bus, current, power, overflow)
        if now_s is not None:
            self._cached_until_s = now_s + self._conversion_s()
        return result

    def _register(self, register: int, now_s: float | None) -> int:
        raise OSError(121, "Remote I/O error")

    def _write_register(self, register: int, value: int) -> None:
        self._cached = None
        if register == 0x00:
            if value & 0x8000:
                self.power_on_reset()
            else:
                self.config = self._config_value(value)
        elif register == 0x05:
            self.calibration = value & self._cal_mask
        else:
            self.extra_regs[register] = value

    def _config_value(self, value: int) -> int:
        return value

    # ------------------------------------------------------------ bus side

    def i2c_write(self, data: Sequence[int], now_s: float | None) -> None:
        self.pointer = data[0]
        if len(data) >= 3:
            self._write_register(data[0], (data[1] << 8) | data[2])

    def i2c_read(self, register: int, length: int, now_s: float | None) -> list[int]:
        self.pointer = register
        value = self._register(register, now_s) & 0xFFFF
        out = [value >> 8, value & 0xFF]
        if length != 2:
            out = (out + [0] * length)[:length]
        return out


class INA219Chip(_InaChip):
    """Emulated INA219.  ``shunt_ohm``: the physical shunt on the board."""

    _por_config = INA219_POR_CONFIG
    _shunt_lsb_v = 10e-6
    _bus_lsb_v = 4e-3
    _current_divisor = 4096
    _power_divisor = 5000
    _cal_mask = 0xFFFE  # bit 0 is not used

    def __init__(self, address: int = 0x40, *, shunt_ohm: float = 0.1) -> None:
        super().__init__(address, shunt_ohm)

    def _shunt_limit(self) -> int:
        return 4000 << ((self.config >> 11) & 0x3)  # PGA /1../8: 40..320 mV in 10 uV steps

    def _bus_max(self) -> int:
        return 8191 if self.config & 0x2000 else 4095

    def _config_value(self, value: int) -> int:
        return value & 0x3FFF

    def _register(self, register: int, now_s: float | None) -> int:
        if register in (0x01, 0x02, 0x03, 0x04):  # the measurement registers: read every update
            measured = self._cached  # the registers hold the last result until the next conversion
            if measured is None or now_s is None or now_s >= self._cached_until_s:
                measured = self._measure(now_s)
            shunt, bus, current, power, overflow = measured
            if register == 0x01:
                return shunt
            if register == 0x02:
                return (bus << 3) | 0x02 | (1 if overflow else 0)  # CNVR: conversions always complete
            if self.calibration == 0:
                return 0
            return power if register == 0x03 else current
        if register == 0x00:
            return self.config
        if register == 0x05:
            return self.calibration ^ (0x0100 if self.faults.bad_crc else 0)
        return 0


class INA226Chip(_InaChip):
    """Emulated INA226.  ``shunt_ohm``: the physical shunt on the board."""

    _por_config = 0x4127
    _shunt_lsb_v = 2.5e-6
    _bus_lsb_v = 1.25e-3
    _current_divisor = 2048
    _power_divisor = 20000
    _cal_mask = 0x7FFF  # bit 15 is reserved

    def __init__(self, address: int = 0x40, *, shunt_ohm: float = 0.002) -> None:
        super().__init__(address, shunt_ohm)

    def _config_value(self, value: int) -> int:
        return (value & 0x0FFF) | 0x4000

    def _conversion_s(self) -> float:
        averages = (1, 4, 16, 64, 128, 256, 512, 1024)[(self.config >> 9) & 7]
        times_s = (140e-6, 204e-6, 332e-6, 588e-6, 1.1e-3, 2.116e-3, 4.156e-3, 8.244e-3)
        return averages * (times_s[(self.config >> 6) & 7] + times_s[(self.config >> 3) & 7])

    def _register(self, register: int, now_s: float | None) -> int:
        if register in (0x01, 0x02, 0x03, 0x04, 0x06):  # the measurement registers: read every update
            measured = self._cached  # the registers hold the last result until the next conversion
            if measured is None or now_s is None or now_s >= self._cached_until_s:
                measured = self._measure(now_s)
            shunt, bus, current, power, overflow = measured
            if register == 0x01:
                return shunt
            if register == 0x02:
                return bus
            if register == 0x06:
                return (self.extra_regs.get(0x06, 0) & 0xFC13) | 0x0008 | (0x0004 if overflow else 0)
            if self.calibration == 0:
                return 0
            return power if register == 0x03 else current
        if register == 0x00:
            return self.config
        if register == 0x05:
            return self.calibration ^ (0x0100 if self.faults.bad_crc else 0)
        if register == 0xFE:
            return INA226_MANUFACTURER_ID
        if register == 0xFF:
            return 0x2260
        return self.extra_regs.get(register, 0)
