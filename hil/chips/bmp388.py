"""Emulated Bosch BMP388 (register map of the datasheet, section 4).

Behaviour modelled: chip id 0x50; soft reset (CMD 0x7E <- 0xB6) returns registers to their reset values, sets
EVENT.por_detected and the chip does not acknowledge for 2 ms; ERR_REG and EVENT clear on read; STATUS drdy bits
are set by a finished measurement and cleared by reading the data registers; forced mode measures once and
returns to sleep; normal mode measures every ODR period and is refused with ERR_REG.conf_err when the period is
shorter than the measurement time; writes are register/value pairs, reads auto-increment.  The IIR filter is not
modelled (readings are unfiltered).
"""

from __future__ import annotations

from collections.abc import Sequence

from hal.bmp388 import (
    CHIP_ID,
    RATED_PRESSURE_PA,
    Nvm,
    coefficients,
    compensate_pressure,
    compensate_temperature,
)
from hil.chips import ChipModel, MonotoneInverse

#: Calibration words of a production BMP388 (published in an open-source driver's test suite).
TYPICAL_NVM = Nvm(27427, 18776, -10, -164, -2866, 35, 0, 25578, 31086, -13, -10, 17322, 18, -60)

_ADC_MAX = (1 << 24) - 1
_STARTUP_S = 2e-3
_OSR_FACTOR = (1, 2, 4, 8, 16, 32, 32, 32)


def pack_nvm(nvm: Nvm) -> bytes:
    """The 21 NVM bytes (0x31..0x45) holding ``nvm``."""
    sizes = (2, 2, 1, 2, 2, 1, 1, 2, 2, 1, 1, 2, 1, 1)
    out = bytearray()
    for value, size in zip(nvm, sizes, strict=True):
        out += (value & ((1 << (8 * size)) - 1)).to_bytes(size, "little")
    return bytes(out)


class BMP388Chip(ChipModel):
    """Emulated BMP388.

    Arguments:
        address: 0x76 or 0x77.
        nvm: calibration words in its NVM (default: a production part's).
        out_of_range_pressure_pa: what the ``out_of_range`` fault makes it report (below the rated 30 kPa).
    """

    rated_pressure_pa = RATED_PRESSURE_PA

    def __init__(self, address: int = 0x77, *, nvm: Nvm = TYPICAL_NVM,
                 out_of_range_pressure_pa: float = 15000.0) -> None:
        super().__init__(address)
        self.nvm = nvm
        self.coefficients = coefficients(nvm)
        self._nvm_bytes = pack_nvm(nvm)
        self.out_of_range_pressure_pa = out_of_range_pressure_pa
        self.pressure_pa = 101325.0
        self.temperature_c = 20.0
        self._raw_key: tuple[float, float] | None = None
        self._t_key: int | None = None
        self._t_lin = 0.0
        self._up = 0
        self._ut = 0
        self._busy_until_s: float | None = None
        c = self.coefficients
        self._t_inverse = MonotoneInverse(lambda u: compensate_temperature(c, u), 0, _ADC_MAX)
        self._p_inverse = MonotoneInverse(lambda u, t_lin: compensate_pressure(c, u, t_lin), 0, _ADC_MAX)
        self.regs = bytearray(128)
        self.power_on_reset()

    # ------------------------------------------------------------ simulation side

    def set_environment(self, *, pressure_pa: float, temperature_c: float) -> None:
        """Set the static pressure (Pa) and die temperature (degC) the chip senses."""
        self.pressure_pa = pressure_pa
        self.temperature_c = temperature_c

    def power_on_reset(self) -> None:
        super().power_on_reset()
        regs = self.regs
        regs[:] = bytes(128)
        regs[0x00] = CHIP_ID
        regs[0x01] = 0x01
        regs[0x03] = 0x10  # cmd_rdy
        regs[0x10] = 0x01  # por_detected
        regs[0x1C] = 0x02
        regs[0x31:0x31 + 21] = self._nvm_bytes
        self._mode = 0  # 0 sleep, 1 forced, 3 normal
        self._start_s: float | None = 0.0
        self._conv_s = 0.0
        self._period_s = 0.0
        self._sample = 0  # index of the newest finished normal-mode sample
        self._consumed = 0

    def raw_values(self, now_s: float | None = None) -> tuple[int, int]:
        """(uncomp_press, uncomp_temp) for the current environment and faults."""
        faults = self.faults
        if faults.stuck and self._raw_key is not None:
            return self._up, self._ut
        pressure_pa = self.out_of_range_pressure_pa if faults.out_of_range else self.pressure_pa
        if faults.bias_pa or faults.drift_pa_per_s:
            pressure_pa += faults.pressure_error_pa(now_s)
        key = (pressure_pa, self.temperature_c)
        if key != self._raw_key:
            self._raw_key = key
            t_key = round(self.temperature_c * 1000.0)  # solve again only when it moves by 1 mdegC
            if t_key != self._t_key:
                self._t_key = t_key
                c = self.coefficients
                self._ut = self._t_inverse.solve(t_key / 1000.0, round(c.t1 + self.temperature_c / c.t2))
                self._t_lin = compensate_temperature(c, self._ut)
            self._up = self._p_inverse.solve(pressure_pa, 7_000_000, self._t_lin)
        return self._up, self._ut

    # ------------------------------------------------------------ bus side

    def _measurement_s(self) -> float:
        osr = self.regs[0x1C]
        pwr = self.regs[0x1B]
        time_us = 234.0
        if pwr & 0x01:
            time_us += 392.0 + _OSR_FACTOR[osr & 7] * 2020.0
        if pwr & 0x02:
            time_us += 163.0 + _OSR_FACTOR[(osr >> 3) & 7] * 2020.0
        return time_us * 1e-6

    def _latch(self, now_s: float | None) -> None:
        up, ut = self.raw_values(now_s)
        regs = self.regs
        pwr = regs[0x1B]
        if pwr & 0x01:
            regs[0x04], regs[0x05], regs[0x06] = up & 0xFF, (up >> 8) & 0xFF, up >> 16
        if pwr & 0x02:
            regs[0x07], regs[0x08], regs[0x09] = ut & 0xFF, (ut >> 8) & 0xFF, ut >> 16
        regs[0x03] |= ((0x20 if pwr & 0x01 else 0) | (0x40 if pwr & 0x02 else 0))

    def _advance(self, now_s: float | None) -> None:
        if self._mode == 1:
            if now_s is None or now_s >= self._start_s + self._conv_s:
                self._latch(now_s)
                self._mode = 0
                self.regs[0x1B] &= 0x0F
        elif self._mode == 3:
            if now_s is None:
                sample = self._consumed + 1
            elif now_s < self._start_s + self._conv_s:
                sample = 0
            else:
                sample = 1 + int((now_s - self._start_s - self._conv_s) / self._period_s)
            if sample > self._sample:
                self._sample = sample
                self._latch(now_s)

    def _check_busy(self, now_s: float | None) -> None:
        if self._busy_until_s is not None:
            if now_s is None or now_s >= self._busy_until_s:
                self._busy_until_s = None
            else:
                raise OSError(121, "Remote I/O error")

    def i2c_write(self, data: Sequence[int], now_s: float | None) -> None:
        self._check_busy(now_s)
        self._advance(now_s)
        self.pointer = data[0]
        for i in range(0, len(data) - 1, 2):  # register/value pairs
            self._write_register(data[i], data[i + 1], now_s)

    def _write_register(self, register: int, value: int, now_s: float | None) -> None:
        regs = self.regs
        if register == 0x7E:
            if value == 0xB6:
                self.power_on_reset()
                self._busy_until_s = None if now_s is None else now_s + _STARTUP_S
            elif value != 0xB0:  # 0xB0 flushes the FIFO, which is not modelled
                regs[0x02] |= 0x02  # cmd_err
        elif register in (0x1C, 0x1D, 0x1F):
            regs[register] = value & (0x3F if register == 0x1C else 0x1F if register == 0x1D else 0x0E)
        elif register == 0x1B:
            mode = (value >> 4) & 0x03
            regs[0x1B] = value & 0x03
            if mode == 0x03:
                conv_s = self._measurement_s()
                period_s = 5e-3 * (1 << min(regs[0x1D], 17))
                if period_s < conv_s:
                    regs[0x02] |= 0x04  # conf_err: stays in sleep mode
                    self._mode = 0
                    return
                regs[0x1B] = value & 0x33
                self._mode, self._conv_s, self._period_s = 3, conv_s, period_s
                self._start_s = 0.0 if now_s is None else now_s
                self._sample = self._consumed = 0
            elif mode in (0x01, 0x02):
                regs[0x1B] = value & 0x33
                self._mode, self._conv_s = 1, self._measurement_s()
                self._start_s = 0.0 if now_s is None else now_s
            else:
                self._mode = 0

    def i2c_read(self, register: int, length: int, now_s: float | None) -> list[int]:
        self._check_busy(now_s)
        self._advance(now_s)
        self.pointer = register
        end = register + length
        regs = self.regs
        out = list(regs[register:end]) if end <= 128 else list(regs[register:]) + [0] * (end - 128)
        if register <= 0x45 and end > 0x31 and self.faults.bad_crc:
            for r in range(max(register, 0x31), min(end, 0x46)):
                out[r - register] = 0xFF  # erased NVM
        if register <= 0x09 and end > 0x04:  # reading data clears the data-ready flags
            regs[0x03] &= 0x9F
            self._consumed = self._sample
        if register <= 0x02 < end:
            regs[0x02] = 0
        if register <= 0x10 < end:
            regs[0x10] = 0
        return out
