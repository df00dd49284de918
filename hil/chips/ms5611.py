"""Emulated MS5611-01BA03 (command set of the datasheet, timing from its conversion-time table).

Behaviour modelled: RESET (0x1E) aborts any conversion, the chip does not acknowledge for 2.8 ms afterwards;
PROM READ 0xA0..0xAE returns the 16-bit words big-endian; CONVERT D1/D2 (0x40..0x48 / 0x50..0x58) starts a
conversion that finishes after the typical conversion time of its oversampling ratio; ADC READ (0x00) returns the
24-bit result once, and 0 if no conversion has finished since the last read (or one is still running).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from hal.ms5611 import RATED_PRESSURE_PA, prom_crc4, temperature_terms
from hil.chips import ChipModel, solve_monotone

#: The datasheet's example coefficients C1..C6.
DATASHEET_COEFFICIENTS = (40127, 36924, 23317, 23282, 33464, 28312)

#: Typical conversion time (s) per command offset (OSR 256..4096).
_TYPICAL_CONVERSION_S = {0x00: 0.54e-3, 0x02: 1.06e-3, 0x04: 2.08e-3, 0x06: 4.13e-3, 0x08: 8.22e-3}
_RESET_TIME_S = 2.8e-3
_ADC_MAX = (1 << 24) - 1


class MS5611Chip(ChipModel):
    """Emulated MS5611.

    Arguments:
        address: 0x77 or 0x76.
        coefficients: C1..C6 programmed in its PROM (default: the datasheet example).
        factory_word: PROM word 0.
        serial_code: the upper 12 bits of PROM word 7.
        out_of_range_pressure_pa: what the ``out_of_range`` fault makes it report (below the rated 1000 Pa).
    """

    rated_pressure_pa = RATED_PRESSURE_PA

    def __init__(self, address: int = 0x77, *, coefficients: Sequence[int] = DATASHEET_COEFFICIENTS,
                 factory_word: int = 0x0032, serial_code: int = 0x5A3, out_of_range_pressure_pa: float = 500.0) -> None:
        super().__init__(address)
        if len(coefficients) != 6:
            raise ValueError("MS5611Chip needs six coefficients C1..C6")
        self.coefficients = tuple(int(c) for c in coefficients)
        prom = [factory_word & 0xFFFF, *self.coefficients, (serial_code & 0xFFF) << 4]
        prom[7] |= prom_crc4(prom)
        self.prom = prom
        self.out_of_range_pressure_pa = out_of_range_pressure_pa
        self.pressure_pa = 101325.0
        self.temperature_c = 20.0
        self._raw_inputs: tuple[float, float] | None = None  # (pressure Pa, temperature degC) of the codes
        self._temp_key: int | None = None
        self._off = 0
        self._sens = 1
        self._d1: int | None = 0  # None: not yet worked out for the newest sample
        self._d2 = 0
        self.power_on_reset()

    # ------------------------------------------------------------ simulation side

    def set_environment(self, *, pressure_pa: float, temperature_c: float) -> None:
        """Set the static pressure (Pa) and die temperature (degC) the chip senses."""
        self.pressure_pa = pressure_pa
        self.temperature_c = temperature_c

    def power_on_reset(self) -> None:
        super().power_on_reset()
        self._converting = 0  # 0: idle, 1: D1, 2: D2
        self._done_s: float | None = 0.0
        self._result = 0
        self._busy_until_s: float | None = None
        self._reset_pending = False

    def raw_values(self, now_s: float | None = None) -> tuple[int, int]:
        """(D1, D2) for the current environment and faults."""
        self._sample(now_s)
        return self._pressure_code(), self._d2

    def _sample(self, now_s: float | None) -> None:
        """Take the environment and faults of ``now_s`` as what the codes stand for (unless the chip is stuck)
        and bring D2 and its temperature terms up to date.  D1 is worked out only when a pressure conversion
        asks for it (:meth:`_pressure_code`), from the same sample."""
        faults = self.faults
        if faults.stuck and self._raw_inputs is not None:
            return
        pressure_pa = self.out_of_range_pressure_pa if faults.out_of_range else self.pressure_pa
        if faults.bias_pa or faults.drift_pa_per_s:
            pressure_pa += faults.pressure_error_pa(now_s)
        inputs = self._raw_inputs
        if inputs is None or pressure_pa != inputs[0] or self.temperature_c != inputs[1]:
            self._raw_inputs = (pressure_pa, self.temperature_c)
            temp_key = math.floor(self.temperature_c * 100.0 + 0.5)  # nearest 0.01 degC
            if temp_key != self._temp_key:
                self._d2 = self._invert_temperature(temp_key, self._temp_key)
                self._temp_key = temp_key
                _, self._off, self._sens = temperature_terms(self.coefficients, self._d2)
            self._d1 = None

    def _pressure_code(self) -> int:
        """D1 for the sampled pressure at the sampled temperature."""
        d1 = self._d1
        if d1 is None:
            # P = ((D1 * SENS / 2^21) - OFF) / 2^15 is linear in D1: the smallest D1 giving the wanted P.
            wanted = ((math.floor(self._raw_inputs[0] + 0.5) << 15) + self._off) << 21  # P in whole Pa
            d1 = -((-wanted) // self._sens) if self._sens > 0 else 1
            self._d1 = d1 = 1 if d1 < 1 else _ADC_MAX if d1 > _ADC_MAX else d1
        return d1

    def _invert_temperature(self, temp_centi_c: int, previous_centi_c: int | None = None) -> int:
        """D2 for ``temp_centi_c``; from the last solution (``self._d2`` for ``previous_centi_c``) when there is
        one, which the small moves between conversions make a close guess."""
        coefficients = self.coefficients
        c6_scale = coefficients[5] / float(1 << 23)
        if previous_centi_c is None:
            guess, step = (coefficients[4] << 8) + round((temp_centi_c - 2000.0) / c6_scale), 4096
        else:
            guess, step = self._d2 + round((temp_centi_c - previous_centi_c) / c6_scale), 64
        return solve_monotone(lambda d: temperature_terms(coefficients, d)[0], temp_centi_c, 1, _ADC_MAX, guess,
                              step=step)

    # ------------------------------------------------------------ bus side

    def _check_busy(self, now_s: float | None) -> None:
        if self._reset_pending:
            if now_s is None or now_s >= self._busy_until_s:
                self._reset_pending = False
            else:
                raise OSError(121, "Remote I/O error")

    def i2c_write(self, data: Sequence[int], now_s: float | None) -> None:
        if self._reset_pending:
            self._check_busy(now_s)
        command = data[0]
        self.pointer = command
        if command == 0x1E:
            self.power_on_reset()
            self._reset_pending = now_s is not None
            self._busy_until_s = None if now_s is None else now_s + _RESET_TIME_S
        elif 0x40 <= command <= 0x48 or 0x50 <= command <= 0x58:
            offset = command & 0x0F
            if offset in _TYPICAL_CONVERSION_S:
                self._converting = 1 if command < 0x50 else 2
                self._done_s = None if now_s is None else now_s + _TYPICAL_CONVERSION_S[offset]
                self._result = 0

    def i2c_read(self, register: int, length: int, now_s: float | None) -> list[int]:
        if self._reset_pending:
            self._check_busy(now_s)
        self.pointer = register
        if register == 0x00:
            converting = self._converting
            if converting and (now_s is None or now_s >= self._done_s):  # the conversion has finished
                self._sample(now_s)
                self._result = self._pressure_code() if converting == 1 else self._d2
                converting = 0
            value = 0 if converting else self._result  # read during conversion: 0, result lost
            self._result = 0
            self._converting = 0
            out = [(value >> 16) & 0xFF, (value >> 8) & 0xFF, value & 0xFF]
            if length == 3:
                return out
        elif 0xA0 <= register <= 0xAE and not register & 1:
            index = (register - 0xA0) >> 1
            word = self.prom[index]
            if index == 1 and self.faults.bad_crc:
                word ^= 0x0100  # one flipped bit in C1: the CRC no longer matches
            out = [word >> 8, word & 0xFF]
        else:
            out = []
        out.extend([0] * (length - len(out)))
        return out[:length]
