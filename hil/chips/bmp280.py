"""Emulated Bosch BMP280 (register map of the datasheet, section 4).

Behaviour modelled: chip id 0x58; soft reset (0xB6 to 0xE0) returns every register to its reset value and the chip
does not acknowledge for the 2 ms start-up time; writes are register/value pairs; reads auto-increment; data
registers read 0x80000 until the first measurement (and for a skipped measurement); forced mode measures once
(mode bits return to sleep when done), normal mode measures continuously; ``config`` writes are ignored in normal
mode; the ADC resolution follows the oversampling (16 bit at x1 .. 20 bit at x16).  The IIR filter is not
modelled (readings are unfiltered) and normal mode refreshes the data on every read once the first measurement
has completed.
"""

from __future__ import annotations

from collections.abc import Sequence

from hal.bmp280 import (
    CHIP_ID,
    RATED_PRESSURE_PA,
    Calibration,
    compensate_pressure_q24_8,
    compensate_temperature,
)
from hil.chips import ChipModel, MonotoneInverse

#: The datasheet's example trimming parameters (its compensation worked example).
DATASHEET_CALIBRATION = Calibration(27504, 26435, -1000, 36477, -10685, 3024, 2855, 140, -7, 15500, -14600, 6000)

_OSRS_FACTOR = (0, 1, 2, 4, 8, 16, 16, 16)
_ADC_MAX = (1 << 20) - 1
_STARTUP_S = 2e-3


def _pack_calibration(cal: Calibration) -> bytes:
    out = bytearray()
    for value in cal:
        out += (value & 0xFFFF).to_bytes(2, "little")
    return bytes(out)


class BMP280Chip(ChipModel):
    """Emulated BMP280.

    Arguments:
        address: 0x76 or 0x77.
        calibration: trimming parameters in its NVM (default: the datasheet example).
        out_of_range_pressure_pa: what the ``out_of_range`` fault makes it report (below the rated 30 kPa).
    """

    rated_pressure_pa = RATED_PRESSURE_PA

    def __init__(self, address: int = 0x76, *, calibration: Calibration = DATASHEET_CALIBRATION,
                 out_of_range_pressure_pa: float = 15000.0) -> None:
        super().__init__(address)
        self.calibration = calibration
        self._calib_bytes = _pack_calibration(calibration)
        self.out_of_range_pressure_pa = out_of_range_pressure_pa
        self.pressure_pa = 101325.0
        self.temperature_c = 20.0
        self._raw_key: tuple[float, float] | None = None
        self._adc_p = 0x80000
        self._adc_t = 0x80000
        self._t_key: int | None = None
        self._t_fine = 0
        self._busy_until_s: float | None = None
        # t_fine within 25.6 of the target is within half the driver's 0.01 degC step
        self._t_inverse = MonotoneInverse(self._t_forward, 0, _ADC_MAX, step=256, tolerance=25.6)
        self._p_inverse = MonotoneInverse(self._p_forward, 0, _ADC_MAX, step=16)
        self.regs = bytearray(256)
        self.power_on_reset()

    # ------------------------------------------------------------ simulation side

    def set_environment(self, *, pressure_pa: float, temperature_c: float) -> None:
        """Set the static pressure (Pa) and die temperature (degC) the chip senses."""
        self.pressure_pa = pressure_pa
        self.temperature_c = temperature_c

    def power_on_reset(self) -> None:
        super().power_on_reset()
        regs = self.regs
        regs[:] = bytes(256)
        regs[0x88:0x88 + 24] = self._calib_bytes
        regs[0xD0] = CHIP_ID
        regs[0xF7:0xFD] = b"\x80\x00\x00\x80\x00\x00"
        self._forced_done_s: float | None = None
        self._forced_pending = False
        self._normal_from_s: float | None = None
        self._normal = False

    def raw_values(self, now_s: float | None = None) -> tuple[int, int]:
        """(adc_P, adc_T) for the current environment and faults (full 20-bit resolution)."""
        faults = self.faults
        if faults.stuck and self._raw_key is not None:
            return self._adc_p, self._adc_t
        pressure_pa = self.out_of_range_pressure_pa if faults.out_of_range else self.pressure_pa
        if faults.bias_pa or faults.drift_pa_per_s:
            pressure_pa += faults.pressure_error_pa(now_s)
        key = (pressure_pa, self.temperature_c)
        if key != self._raw_key:
            self._raw_key = key
            t_key = round(self.temperature_c * 100.0)  # 0.01 degC, the driver's resolution
            if t_key != self._t_key:
                self._t_key = t_key
                cal = self.calibration
                guess = round((self.temperature_c * 5120.0 * 1024.0 / cal.dig_t2 + cal.dig_t1) * 16.0)
                self._adc_t = self._t_inverse.solve(t_key * 51.2, guess)
                self._t_fine = self._t_forward(self._adc_t)
            self._adc_p = self._p_inverse.solve(pressure_pa * 256.0, 415148, self._t_fine)
        return self._adc_p, self._adc_t

    def _t_forward(self, adc_t: int) -> int:
        return compensate_temperature(self.calibration, adc_t)[1]

    def _p_forward(self, adc_p: int, t_fine: int) -> int:
        return compensate_pressure_q24_8(self.calibration, adc_p, t_fine)

    # ------------------------------------------------------------ bus side

    def _measurement_s(self) -> float:
        ctrl = self.regs[0xF4]
        osrs_t = _OSRS_FACTOR[ctrl >> 5]
        osrs_p = _OSRS_FACTOR[(ctrl >> 2) & 7]
        return (1.0 + 2.0 * osrs_t + (2.0 * osrs_p + 0.5 if osrs_p else 0.0)) * 1e-3  # typical

    def _latch(self, now_s: float | None) -> None:
        """Copy a finished measurement into the data registers."""
        ctrl = self.regs[0xF4]
        osrs_t = ctrl >> 5
        osrs_p = (ctrl >> 2) & 7
        adc_p, adc_t = self.raw_values(now_s)
        regs = self.regs
        if osrs_p:
            adc_p &= ~((1 << (5 - min(osrs_p, 5))) - 1)  # 16 bit at x1 ... 20 bit at x16
            regs[0xF7], regs[0xF8], regs[0xF9] = adc_p >> 12, (adc_p >> 4) & 0xFF, (adc_p & 0xF) << 4
        else:
            regs[0xF7], regs[0xF8], regs[0xF9] = 0x80, 0, 0
        if osrs_t:
            adc_t &= ~((1 << (5 - min(osrs_t, 5))) - 1)
            regs[0xFA], regs[0xFB], regs[0xFC] = adc_t >> 12, (adc_t >> 4) & 0xFF, (adc_t & 0xF) << 4
        else:
            regs[0xFA], regs[0xFB], regs[0xFC] = 0x80, 0, 0

    def _advance(self, now_s: float | None) -> None:
        if self._forced_pending and (now_s is None or now_s >= self._forced_done_s):
            self._forced_pending = False
            self._latch(now_s)
            self.regs[0xF4] &= 0xFC
            self.regs[0xF3] = 0
        elif self._normal and (now_s is None or now_s >= self._normal_from_s):
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
        if register == 0xE0:
            if value == 0xB6:
                self.power_on_reset()
                self._busy_until_s = None if now_s is None else now_s + _STARTUP_S
        elif register == 0xF5:
            if not self._normal:
                regs[0xF5] = value & 0xFD  # bit 1 unused
        elif register == 0xF4:
            regs[0xF4] = value
            mode = value & 0x03
            self._normal = mode == 0x03
            self._forced_pending = mode in (0x01, 0x02)
            if self._forced_pending:
                self._forced_done_s = None if now_s is None else now_s + self._measurement_s()
                regs[0xF3] = 0x08  # measuring
            elif self._normal:
                self._normal_from_s = None if now_s is None else now_s + self._measurement_s()

    def i2c_read(self, register: int, length: int, now_s: float | None) -> list[int]:
        self._check_busy(now_s)
        self._advance(now_s)
        self.pointer = register
        if self.faults.bad_crc and register < 0xA0 and register + length > 0x88:
            out = list(self.regs[register:register + length])
            for r in range(max(register, 0x88), min(register + length, 0xA0)):
                out[r - register] = 0xFF  # erased NVM
            return out
        end = register + length
        if end > 256:
            return list(self.regs[register:]) + [0] * (end - 256)
        return list(self.regs[register:end])
