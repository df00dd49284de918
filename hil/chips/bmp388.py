"""Emulated Bosch BMP388 (register map of the datasheet, section 4).

Behaviour modelled: chip id 0x50; soft reset (CMD 0x7E <- 0xB6) returns registers to their reset values, sets
EVENT.por_detected and the chip does not acknowledge for 2 ms; ERR_REG and EVENT clear on read; STATUS drdy bits
are set by a finished measurement and cleared by reading the data registers; forced mode measures once and
returns to sleep; normal mode measures every ODR period and is refused with ERR_REG.conf_err when the period is
shorter than the measurement time; writes are register/value pairs, reads auto-increment.  The IIR filter is not
modelled (readings are unfiltered).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from hal.bmp388 import (
    CHIP_ID,
    RATED_PRESSURE_PA,
    Nvm,
    coefficients,
    compensate_pressure,
    compensate_temperature,
)
from hil.chips import ChipModel, nearest_root_code, newton_step_limit, solve_monotone

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
        self._raw_inputs: tuple[float, float] | None = None  # (pressure Pa, temperature degC) of the codes
        self._t_key: int | None = None  # the temperature the codes are for, in whole mdegC
        self._t_lin = 0.0
        self._p_poly = (0.0, 0.0, 0.0, 0.0)  # pressure as a cubic in uncomp_press at the present t_lin
        self._p_step_limit = 0.0  # longest Newton step on it that needs no second one (codes)
        self._p_step_limit_t = -1000.0  # t_lin (degC) the limit was computed at
        self._up = 7_000_000  # also the starting point of the next pressure inversion
        self._ut = 0
        self._busy_until_s: float | None = None
        self.regs = [0] * 128  # register file (a list: a read's slice is then the answer itself)
        self.power_on_reset()

    # ------------------------------------------------------------ simulation side

    def set_environment(self, *, pressure_pa: float, temperature_c: float) -> None:
        """Set the static pressure (Pa) and die temperature (degC) the chip senses."""
        self.pressure_pa = pressure_pa
        self.temperature_c = temperature_c

    def power_on_reset(self) -> None:
        super().power_on_reset()
        regs = self.regs
        regs[:] = [0] * 128
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
        self._first_done_s = 0.0  # normal mode: when the first measurement finishes
        self._sample = 0  # index of the newest finished normal-mode sample
        self._consumed = 0

    def raw_values(self, now_s: float | None = None) -> tuple[int, int]:
        """(uncomp_press, uncomp_temp) for the current environment and faults."""
        faults = self.faults
        if faults.stuck and self._raw_inputs is not None:
            return self._up, self._ut
        pressure_pa = self.out_of_range_pressure_pa if faults.out_of_range else self.pressure_pa
        if faults.bias_pa or faults.drift_pa_per_s:
            pressure_pa += faults.pressure_error_pa(now_s)
        inputs = self._raw_inputs
        if inputs is None or pressure_pa != inputs[0] or self.temperature_c != inputs[1]:
            self._raw_inputs = (pressure_pa, self.temperature_c)
            t_key = math.floor(self.temperature_c * 1000.0 + 0.5)  # solve again only when it moves by 1 mdegC
            if t_key != self._t_key:
                self._t_key = t_key
                self._invert_temperature(t_key / 1000.0)
            # one Newton step from the last code: enough while the step is short of the limit beyond which the
            # curvature could move the result by 0.05 code
            a0, a1, a2, a3 = self._p_poly
            x = self._up
            slope = a1 + x * (2.0 * a2 + 3.0 * a3 * x)
            if slope:
                step = (pressure_pa - (a0 + x * (a1 + x * (a2 + x * a3)))) / slope
                limit = self._p_step_limit
                if -limit < step < limit and 0 <= x + step <= _ADC_MAX:
                    self._up = math.floor(x + step + 0.5)
                    return self._up, self._ut
            up = nearest_root_code(a0, a1, a2, a3, pressure_pa, x, 0, _ADC_MAX)
            self._up = self._solve_pressure(pressure_pa) if up is None else up
        return self._up, self._ut

    def _invert_temperature(self, temperature_c: float) -> None:
        """Set the temperature code whose t_lin is closest to ``temperature_c`` and the pressure polynomial at
        that t_lin (the datasheet's, term by term as the driver evaluates it)."""
        c = self.coefficients
        par_t1, par_t2, par_t3, p1, p2, p3, p4, p5, p6, p7, p8, p9, p10, p11 = c
        t1 = int(par_t1)  # PAR_T1 * 2^8: a whole number
        # t_lin = t2 p + t3 p^2 with p = uncomp_temp - T1: one Newton step from the last code when the curvature
        # keeps it within 0.05 code of the root, as it does for the small moves between frames
        p = self._ut - t1
        slope = par_t2 + 2.0 * par_t3 * p
        ut = None
        if slope:
            step = (temperature_c - p * (par_t2 + p * par_t3)) / slope
            if -0.05 < par_t3 / slope * step * step < 0.05 and 0 <= self._ut + step <= _ADC_MAX:
                ut = t1 + math.floor(p + step + 0.5)
        if ut is None:
            offset = nearest_root_code(0.0, par_t2, par_t3, 0.0, temperature_c, temperature_c / par_t2, -t1,
                                       _ADC_MAX - t1)
            if offset is None:
                ut = solve_monotone(lambda u: compensate_temperature(c, u), temperature_c, 0, _ADC_MAX,
                                    round(par_t1 + temperature_c / par_t2))
            else:
                ut = t1 + offset
        self._ut = ut
        partial1 = ut - par_t1  # t_lin = compensate_temperature(c, ut), evaluated the same way, inline
        t_lin = self._t_lin = partial1 * par_t2 + (partial1 * partial1) * par_t3
        t2 = t_lin * t_lin
        t3 = t2 * t_lin
        a1, a2, a3 = p1 + p2 * t_lin + p3 * t2 + p4 * t3, p9 + p10 * t_lin, p11
        self._p_poly = (p5 + p6 * t_lin + p7 * t2 + p8 * t3, a1, a2, a3)
        if not -1.0 < t_lin - self._p_step_limit_t < 1.0:
            # the limit barely moves with temperature (well under 1 % per degree): recomputed once a degree, halved
            self._p_step_limit = 0.5 * newton_step_limit(a1, a2, a3, _ADC_MAX)
            self._p_step_limit_t = t_lin

    def _solve_pressure(self, pressure_pa: float) -> int:
        """The pressure code closest to ``pressure_pa`` at the present t_lin by bracketing and bisection: for
        targets beyond the ADC's reach, or calibrations whose polynomial defeats Newton's method."""
        c, t_lin = self.coefficients, self._t_lin
        return solve_monotone(lambda u: compensate_pressure(c, u, t_lin), pressure_pa, 0, _ADC_MAX, 7_000_000)

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

    def _advance(self, now_s: float | None) -> None:
        """Finish the measurement due by ``now_s``, if any: its codes go to the data registers, drdy is set."""
        mode = self._mode
        if mode == 3:
            if now_s is None:
                sample = self._consumed + 1
            elif now_s < self._first_done_s:
                return
            else:
                sample = 1 + int((now_s - self._first_done_s) / self._period_s)
            if sample <= self._sample:
                return
            self._sample = sample
        elif mode == 1:
            if now_s is not None and now_s < self._start_s + self._conv_s:
                return
            self._mode = 0
        else:
            return
        up, ut = self.raw_values(now_s)
        regs = self.regs
        pwr = regs[0x1B]
        if pwr & 0x03 == 0x03:
            regs[0x04:0x0A] = up & 0xFF, (up >> 8) & 0xFF, up >> 16, ut & 0xFF, (ut >> 8) & 0xFF, ut >> 16
        elif pwr & 0x01:
            regs[0x04:0x07] = up & 0xFF, (up >> 8) & 0xFF, up >> 16
        elif pwr & 0x02:
            regs[0x07:0x0A] = ut & 0xFF, (ut >> 8) & 0xFF, ut >> 16
        regs[0x03] |= (pwr & 0x03) << 5  # drdy_press (0x20) / drdy_temp (0x40) of what was measured
        if mode == 1:
            regs[0x1B] &= 0x0F  # forced mode: back to sleep

    def _check_busy(self, now_s: float | None) -> None:
        if self._busy_until_s is not None:
            if now_s is None or now_s >= self._busy_until_s:
                self._busy_until_s = None
            else:
                raise OSError(121, "Remote I/O error")

    def i2c_write(self, data: Sequence[int], now_s: float | None) -> None:
        if self._busy_until_s is not None:
            self._check_busy(now_s)
        if self._mode:
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
                self._first_done_s = self._start_s + conv_s
                self._sample = self._consumed = 0
            elif mode in (0x01, 0x02):
                regs[0x1B] = value & 0x33
                self._mode, self._conv_s = 1, self._measurement_s()
                self._start_s = 0.0 if now_s is None else now_s
            else:
                self._mode = 0

    def i2c_read(self, register: int, length: int, now_s: float | None) -> list[int]:
        if self._busy_until_s is not None:
            self._check_busy(now_s)
        if self._mode:
            self._advance(now_s)
        self.pointer = register
        end = register + length
        regs = self.regs
        out = regs[register:end] if end <= 128 else regs[register:] + [0] * (end - 128)
        if register <= 0x45 and end > 0x31 and self.faults.bad_crc:
            for r in range(max(register, 0x31), min(end, 0x46)):
                out[r - register] = 0xFF  # erased NVM
        if register <= 0x10 and end > 0x02:  # flags that clear on read
            if register <= 0x09 and end > 0x04:  # reading data clears the data-ready flags
                regs[0x03] &= 0x9F
                self._consumed = self._sample
            if register <= 0x02:
                regs[0x02] = 0
            if end > 0x10:
                regs[0x10] = 0
        return out
