"""TE Connectivity MS5611-01BA03 barometric pressure sensor on I2C.

Protocol (datasheet "Commands"): RESET 0x1E; PROM READ 0xA0..0xAE (eight 16-bit words, big-endian: word 0 factory
data, words 1..6 the coefficients C1..C6, word 7 serial code with the CRC-4 in its low nibble); CONVERT D1
(pressure) 0x40..0x48 and CONVERT D2 (temperature) 0x50..0x58 for oversampling 256..4096; ADC READ 0x00 returns
the 24-bit result of the last conversion, or 0 if no conversion has finished since.

The driver never waits: a conversion is started in one ``update`` and its result read by a later one once the
datasheet's maximum conversion time has passed.  Conversions alternate D2, D1, D2, D1 ...; each D1 result is
compensated with the newest D2 and published, so at 20 updates per second a new reading appears every 100 ms.
The temperature half of the compensation depends on D2 alone and is computed again only when D2 changes.

A frozen ("stuck") sensor is reported as it reads: the raw values pass the same checks as live ones, so only the
estimator, comparing barometers and the flight profile, can judge it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hal.i2c import DeviceDataError, PolledI2CDevice
from hal.interfaces import PressureReading

CMD_RESET = 0x1E
CMD_ADC_READ = 0x00
CMD_PROM_READ = 0xA0
CMD_CONVERT_D1 = 0x40
CMD_CONVERT_D2 = 0x50

#: Oversampling ratio -> (command offset, maximum conversion time in seconds) from the datasheet.
OVERSAMPLING = {
    256: (0x00, 0.60e-3),
    512: (0x02, 1.17e-3),
    1024: (0x04, 2.28e-3),
    2048: (0x06, 4.54e-3),
    4096: (0x08, 9.04e-3),
}
RESET_TIME_S = 2.8e-3
RATED_PRESSURE_PA = (1000.0, 120000.0)  # 10..1200 mbar
RATED_TEMPERATURE_C = (-40.0, 85.0)

_IDLE, _D2, _D1 = 0, 1, 2


def prom_crc4(words: Sequence[int]) -> int:
    """The 4-bit CRC of the eight PROM words (application note AN520); the low byte of word 7 is taken as 0."""
    remainder = 0
    for index in range(16):
        word = words[index >> 1]
        if index == 15:
            word &= 0xFF00
        remainder ^= (word & 0x00FF) if index & 1 else (word >> 8)
        for _ in range(8):
            if remainder & 0x8000:
                remainder = ((remainder << 1) ^ 0x3000) & 0xFFFF
            else:
                remainder = (remainder << 1) & 0xFFFF
    return (remainder >> 12) & 0xF


def _tdiv(numerator: int, denominator: int) -> int:
    """Integer division truncating toward zero, as C's ``/`` on the datasheet's int64 values."""
    if numerator >= 0:
        return numerator // denominator
    return -((-numerator) // denominator)


def temperature_terms(coefficients: Sequence[int], d2: int) -> tuple[int, int, int]:
    """The temperature half of the datasheet compensation, second order included.

    Returns ``(temp_centi_c, off, sens)``: the temperature in 0.01 degC and the offset and sensitivity at that
    temperature, all integers as the datasheet computes them.
    """
    c1, c2, c3, c4, c5, c6 = coefficients
    dt = d2 - (c5 << 8)
    temp = 2000 + _tdiv(dt * c6, 1 << 23)
    off = (c2 << 16) + _tdiv(c4 * dt, 1 << 7)
    sens = (c1 << 15) + _tdiv(c3 * dt, 1 << 8)
    if temp < 2000:
        t2 = (dt * dt) >> 31
        cold = (temp - 2000) * (temp - 2000)
        off2 = (5 * cold) >> 1
        sens2 = (5 * cold) >> 2
        if temp < -1500:
            very_cold = (temp + 1500) * (temp + 1500)
            off2 += 7 * very_cold
            sens2 += (11 * very_cold) >> 1
        temp -= t2
        off -= off2
        sens -= sens2
    return temp, off, sens


def compensate(coefficients: Sequence[int], d1: int, d2: int) -> tuple[int, int]:
    """Datasheet compensation with the second-order temperature correction, in integer arithmetic.

    Arguments:
        coefficients: C1..C6 (six PROM words, in that order).
        d1: raw pressure ADC value.
        d2: raw temperature ADC value.

    Returns ``(temp_centi_c, pressure_pa)``: temperature in 0.01 degC and pressure in Pa (= 0.01 mbar).
    """
    terms = temperature_terms(coefficients, d2)
    return terms[0], pressure_from_terms(terms, d1)


def pressure_from_terms(terms: tuple[int, int, int], d1: int) -> int:
    """The pressure half of the datasheet compensation: pressure in Pa from :func:`temperature_terms`' result and
    the raw pressure ADC value ``d1``."""
    _, off, sens = terms
    return _tdiv(_tdiv(d1 * sens, 1 << 21) - off, 1 << 15)


class MS5611(PolledI2CDevice):
    """MS5611 driver satisfying :class:`hal.interfaces.Barometer`.

    Arguments:
        bus: an ``smbus2.SMBus`` or compatible object.
        address: 0x77 (CSB low) or 0x76 (CSB high).
        name: device name for logs and telemetry.
        oversampling: 256, 512, 1024, 2048 or 4096; higher is less noisy and slower (0.6..9.04 ms).
        reinit_after_errors: consecutive failed updates after which the chip is reset and its PROM read again.
        stale_after_s: a reading older than this (s) is presented unhealthy.  Must exceed two update periods,
            since a pressure reading is produced every second update.
    """

    rated_pressure_pa: tuple[float, float] = RATED_PRESSURE_PA

    def __init__(self, bus: Any, *, address: int = 0x77, name: str = "baro0", oversampling: int = 4096,
                 reinit_after_errors: int = 5, stale_after_s: float = 0.5) -> None:
        if oversampling not in OVERSAMPLING:
            raise ValueError(f"{name}: oversampling must be one of {sorted(OVERSAMPLING)}, got {oversampling}")
        super().__init__(bus, address=address, name=name, reinit_after_errors=reinit_after_errors,
                         stale_after_s=stale_after_s, initial_reading=PressureReading())
        self.oversampling = oversampling
        offset, self.conversion_time_s = OVERSAMPLING[oversampling]
        self._cmd_d1 = CMD_CONVERT_D1 + offset
        self._cmd_d2 = CMD_CONVERT_D2 + offset
        self.coefficients: tuple[int, ...] = ()
        self._reset_sent_s: float | None = None
        self._phase = _IDLE
        self._started_s = 0.0
        self._d2 = 0  # the newest D2; 0 (never a valid result) until the first one after initialisation
        self._temperature_terms = (0, 0, 0)  # temperature_terms(coefficients, _d2)

    def _on_uninitialise(self) -> None:
        self._reset_sent_s = None
        self._phase = _IDLE

    # ------------------------------------------------------------ bus work

    def _step(self, now_s: float) -> None:
        if not self.initialised:
            self._initialise(now_s)
            return
        phase = self._phase
        self._phase = _IDLE  # where we are if anything below fails
        if phase == _IDLE:
            self._start(_D2, now_s)
            return
        if now_s - self._started_s < self.conversion_time_s:
            self._phase = phase
            return
        raw = self._read_adc()
        if phase == _D2:
            if raw != self._d2:
                self._d2 = raw
                self._temperature_terms = temperature_terms(self.coefficients, raw)
            self._start(_D1, now_s)
            return
        terms = self._temperature_terms
        pressure_pa = pressure_from_terms(terms, raw)
        measured_s = self._started_s + self.conversion_time_s
        self._start(_D2, now_s)
        low, high = self.rated_pressure_pa
        in_range = low <= pressure_pa <= high
        if not in_range:
            self.stats.out_of_range += 1
        self._publish(PressureReading(float(pressure_pa), terms[0] / 100.0, measured_s, in_range))

    def _initialise(self, now_s: float) -> None:
        """Reset the chip; on a later update (>= 2.8 ms after), read and check the PROM, then start converting."""
        if self._reset_sent_s is None:
            self.bus.write_byte(self.address, CMD_RESET)
            self._reset_sent_s = now_s
            return
        if now_s - self._reset_sent_s < RESET_TIME_S:
            return
        try:
            coefficients = self._read_prom()
        except DeviceDataError:
            self._reset_sent_s = None
            raise
        self.coefficients = coefficients
        self._d2 = 0  # the temperature terms of the old coefficients are void
        self.initialised = True
        self._start(_D2, now_s)

    def identify(self) -> str:
        """Check that an MS5611 answers at ``address``: read its PROM and check the CRC-4 (the chip has no id
        register).  Changes nothing on the chip.  Returns what was checked; raises ``OSError`` (bus) or
        :class:`~hal.i2c.DeviceDataError` (something else answers, or the PROM is corrupt)."""
        self._read_prom()
        return "PROM CRC ok"

    def _read_prom(self) -> tuple[int, ...]:
        """The coefficients C1..C6 from the eight PROM words, after checking their CRC-4 and plausibility."""
        words = [0] * 8
        for index in range(8):
            msb, lsb = self.bus.read_i2c_block_data(self.address, CMD_PROM_READ + 2 * index, 2)
            words[index] = (msb << 8) | lsb
        coefficients = tuple(words[1:7])
        if prom_crc4(words) != words[7] & 0xF:
            raise DeviceDataError("PROM CRC mismatch")
        if any(c in (0, 0xFFFF) for c in coefficients):
            raise DeviceDataError("PROM coefficients implausible (0x0000 or 0xFFFF)")
        return coefficients

    def _start(self, phase: int, now_s: float) -> None:
        self.bus.write_byte(self.address, self._cmd_d1 if phase == _D1 else self._cmd_d2)
        self._phase = phase
        self._started_s = now_s

    def _read_adc(self) -> int:
        b0, b1, b2 = self.bus.read_i2c_block_data(self.address, CMD_ADC_READ, 3)
        raw = (b0 << 16) | (b1 << 8) | b2
        if raw == 0:
            raise DeviceDataError("ADC read returned 0 (no finished conversion)")
        return raw
