"""Bosch BMP280 barometric pressure sensor on I2C.

Registers (datasheet section 4): calibration ``calib00..calib23`` at 0x88..0x9F (little-endian words dig_T1..
dig_P9), ``id`` 0xD0 (= 0x58), ``reset`` 0xE0 (write 0xB6), ``status`` 0xF3, ``ctrl_meas`` 0xF4 (osrs_t[7:5],
osrs_p[4:2], mode[1:0]), ``config`` 0xF5 (t_sb[7:5], filter[4:2]), data 0xF7..0xFC (press msb/lsb/xlsb, temp
msb/lsb/xlsb, 20-bit values in the top bits).  After a reset the data registers hold 0x80000 ("no measurement").

Each update reads 0xF4..0xFC in one burst: the data plus ``ctrl_meas`` and ``config``, so a chip that lost its
configuration (power glitch) is noticed on the next read and initialised again at once.

Modes: ``"normal"`` (the chip measures continuously, every ``standby_s`` + measurement time; each update reads
the newest result) or ``"forced"`` (each update reads the measurement started by the previous update and
starts the next one).  A frozen chip is reported as it reads; judging a stuck value is the estimator's job.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from hal.i2c import DeviceDataError, PolledI2CDevice, check_chip_id
from hal.interfaces import PressureReading

REG_CALIB = 0x88
CALIB_LENGTH = 24
REG_ID = 0xD0
CHIP_ID = 0x58
REG_RESET = 0xE0
RESET_WORD = 0xB6
REG_STATUS = 0xF3
REG_CTRL_MEAS = 0xF4
REG_CONFIG = 0xF5
REG_DATA = 0xF7
STARTUP_TIME_S = 2e-3
NO_DATA = 0x80000
MODE_SLEEP, MODE_FORCED, MODE_NORMAL = 0b00, 0b01, 0b11
RATED_PRESSURE_PA = (30000.0, 110000.0)

#: Oversampling factor -> osrs code (0 = measurement skipped).
OVERSAMPLING_CODE = {0: 0, 1: 1, 2: 2, 4: 3, 8: 4, 16: 5}
#: Standby time in normal mode (s) -> t_sb code.
STANDBY_CODE = {0.0005: 0, 0.0625: 1, 0.125: 2, 0.25: 3, 0.5: 4, 1.0: 5, 2.0: 6, 4.0: 7}
#: IIR filter coefficient -> filter code (1 = off).
FILTER_CODE = {1: 0, 2: 1, 4: 2, 8: 3, 16: 4}


class Calibration(NamedTuple):
    """The trimming parameters dig_T1..dig_P9."""

    dig_t1: int
    dig_t2: int
    dig_t3: int
    dig_p1: int
    dig_p2: int
    dig_p3: int
    dig_p4: int
    dig_p5: int
    dig_p6: int
    dig_p7: int
    dig_p8: int
    dig_p9: int


def parse_calibration(data: Sequence[int]) -> Calibration:
    """Decode the 24 bytes read from 0x88..0x9F (dig_T1 and dig_P1 unsigned, the rest signed)."""
    if len(data) != CALIB_LENGTH:
        raise DeviceDataError(f"calibration read returned {len(data)} bytes, expected {CALIB_LENGTH}")
    words = [data[i] | (data[i + 1] << 8) for i in range(0, CALIB_LENGTH, 2)]
    signed = [w - 0x10000 if w & 0x8000 else w for w in words]
    return Calibration(words[0], signed[1], signed[2], words[3], *signed[4:])


def check_calibration(data: Sequence[int], calibration: Calibration) -> None:
    """Reject an erased or unreadable NVM (the BMP280 has no CRC on it)."""
    if all(b == data[0] for b in data):
        raise DeviceDataError(f"calibration NVM reads all 0x{data[0]:02x}")
    if calibration.dig_t1 in (0, 0xFFFF) or calibration.dig_p1 in (0, 0xFFFF) or calibration.dig_t2 == 0:
        raise DeviceDataError("calibration NVM implausible (dig_T1, dig_T2 or dig_P1 zero or erased)")


def measurement_time_s(oversampling_temperature: int, oversampling_pressure: int) -> float:
    """Maximum measurement time (datasheet 3.8.1): 1.25 ms + 2.3 ms x osrs_t + (2.3 ms x osrs_p + 0.575 ms)."""
    time_ms = 1.25 + 2.3 * oversampling_temperature
    if oversampling_pressure:
        time_ms += 2.3 * oversampling_pressure + 0.575
    return time_ms * 1e-3


def compensate_temperature(cal: Calibration, adc_t: int) -> tuple[int, int]:
    """The datasheet's 32-bit integer temperature compensation.  Returns ``(temp_centi_c, t_fine)``."""
    var1 = (((adc_t >> 3) - (cal.dig_t1 << 1)) * cal.dig_t2) >> 11
    delta = (adc_t >> 4) - cal.dig_t1
    var2 = (((delta * delta) >> 12) * cal.dig_t3) >> 14
    t_fine = var1 + var2
    return (t_fine * 5 + 128) >> 8, t_fine


def _tdiv(numerator: int, denominator: int) -> int:
    """C integer division (truncates toward zero)."""
    quotient = abs(numerator) // abs(denominator)
    return quotient if (numerator >= 0) == (denominator > 0) else -quotient


def compensate_pressure_q24_8(cal: Calibration, adc_p: int, t_fine: int) -> int:
    """The datasheet's 64-bit integer pressure compensation: pressure in Pa as Q24.8 (divide by 256).

    Returns 0 when the calibration would divide by zero, as the datasheet code does.
    """
    var1 = t_fine - 128000
    var2 = var1 * var1 * cal.dig_p6
    var2 = var2 + ((var1 * cal.dig_p5) << 17)
    var2 = var2 + (cal.dig_p4 << 35)
    var1 = ((var1 * var1 * cal.dig_p3) >> 8) + ((var1 * cal.dig_p2) << 12)
    var1 = (((1 << 47) + var1) * cal.dig_p1) >> 33
    if var1 == 0:
        return 0
    p = 1048576 - adc_p
    p = _tdiv(((p << 31) - var2) * 3125, var1)
    var1 = (cal.dig_p9 * (p >> 13) * (p >> 13)) >> 25
    var2 = (cal.dig_p8 * p) >> 19
    return ((p + var1 + var2) >> 8) + (cal.dig_p7 << 4)


class BMP280(PolledI2CDevice):
    """BMP280 driver satisfying :class:`hal.interfaces.Barometer`.

    Arguments:
        bus: an ``smbus2.SMBus`` or compatible object.
        address: 0x76 (SDO low) or 0x77 (SDO high).
        name: device name for logs and telemetry.
        mode: ``"normal"`` (continuous) or ``"forced"`` (one measurement per update).
        oversampling_pressure: 1, 2, 4, 8 or 16.
        oversampling_temperature: 1, 2, 4, 8 or 16.
        iir_filter: IIR filter coefficient 1 (off), 2, 4, 8 or 16.
        standby_s: normal-mode standby between measurements: 0.0005, 0.0625, 0.125, 0.25, 0.5, 1, 2 or 4 s.
        reinit_after_errors: consecutive failed updates after which the chip is reset and configured again.
        stale_after_s: a reading older than this (s) is presented unhealthy.
    """

    rated_pressure_pa: tuple[float, float] = RATED_PRESSURE_PA

    def __init__(self, bus: Any, *, address: int = 0x76, name: str = "baro1", mode: str = "normal",
                 oversampling_pressure: int = 16, oversampling_temperature: int = 2, iir_filter: int = 1,
                 standby_s: float = 0.0625, reinit_after_errors: int = 5, stale_after_s: float = 0.5) -> None:
        if mode not in ("normal", "forced"):
            raise ValueError(f"{name}: mode must be 'normal' or 'forced', got {mode!r}")
        if oversampling_pressure not in OVERSAMPLING_CODE or oversampling_pressure == 0:
            raise ValueError(f"{name}: oversampling_pressure must be 1, 2, 4, 8 or 16")
        if oversampling_temperature not in OVERSAMPLING_CODE or oversampling_temperature == 0:
            raise ValueError(f"{name}: oversampling_temperature must be 1, 2, 4, 8 or 16")
        if iir_filter not in FILTER_CODE:
            raise ValueError(f"{name}: iir_filter must be one of {sorted(FILTER_CODE)}")
        if standby_s not in STANDBY_CODE:
            raise ValueError(f"{name}: standby_s must be one of {sorted(STANDBY_CODE)}")
        super().__init__(bus, address=address, name=name, reinit_after_errors=reinit_after_errors,
                         stale_after_s=stale_after_s, initial_reading=PressureReading())
        self.mode = mode
        self.measurement_time_s = measurement_time_s(oversampling_temperature, oversampling_pressure)
        osrs = (OVERSAMPLING_CODE[oversampling_temperature] << 5) | (OVERSAMPLING_CODE[oversampling_pressure] << 2)
        self._osrs_bits = osrs
        self._ctrl_meas = osrs | (MODE_NORMAL if mode == "normal" else MODE_FORCED)
        self._config = (STANDBY_CODE[standby_s] << 5) | (FILTER_CODE[iir_filter] << 2)
        self.calibration: Calibration | None = None
        self._reset_sent_s: float | None = None
        self._started_s: float | None = None

    def _on_uninitialise(self) -> None:
        self._reset_sent_s = None
        self._started_s = None

    # ------------------------------------------------------------ bus work

    def _step(self, now_s: float) -> None:
        if not self.initialised:
            self._initialise(now_s)
            return
        if self._started_s is None:  # forced mode after a failed update: start a measurement
            self._start_forced(now_s)
            return
        if now_s - self._started_s < self.measurement_time_s:
            return
        regs = self.bus.read_i2c_block_data(self.address, REG_CTRL_MEAS, 9)
        ctrl, config = regs[0], regs[1]
        if (ctrl & 0xFC) != self._osrs_bits or config != self._config:
            self._lost_configuration(f"configuration lost (ctrl_meas 0x{ctrl:02x}, config 0x{config:02x})")
            return
        if self.mode == "forced":
            if ctrl & 0x03:  # still measuring
                if now_s - self._started_s > 10 * self.measurement_time_s + 0.1:
                    self._started_s = None
                    raise DeviceDataError("forced measurement never finished")
                return
            measured_s = self._started_s + self.measurement_time_s
            self._started_s = None
        else:
            if ctrl & 0x03 != MODE_NORMAL:
                self._lost_configuration(f"left normal mode (ctrl_meas 0x{ctrl:02x})")
                return
            measured_s = now_s
        adc_p = (regs[3] << 12) | (regs[4] << 4) | (regs[5] >> 4)
        adc_t = (regs[6] << 12) | (regs[7] << 4) | (regs[8] >> 4)
        if adc_p == NO_DATA and adc_t == NO_DATA:
            raise DeviceDataError("data registers hold the reset value 0x80000 (no measurement)")
        cal = self.calibration
        temp_centi_c, t_fine = compensate_temperature(cal, adc_t)
        pressure_q24_8 = compensate_pressure_q24_8(cal, adc_p, t_fine)
        if self.mode == "forced":
            self._start_forced(now_s)
        pressure_pa = pressure_q24_8 / 256.0
        low, high = self.rated_pressure_pa
        in_range = low <= pressure_pa <= high
        if not in_range:
            self.stats.out_of_range += 1
        self._publish(PressureReading(pressure_pa, temp_centi_c / 100.0, measured_s, in_range))

    def identify(self) -> str:
        """Check that a BMP280 answers at ``address``: read its chip id register (REG_ID).  Changes nothing on the
        chip.  Returns what was checked; raises ``OSError`` (bus) or :class:`~hal.i2c.DeviceDataError` (another
        chip answers)."""
        return check_chip_id(self.bus, self.address, REG_ID, CHIP_ID, "BMP280")

    def _initialise(self, now_s: float) -> None:
        """Check the chip id and reset; >= 2 ms later read the calibration and write the configuration."""
        if self._reset_sent_s is None:
            self.identify()
            self.bus.write_byte_data(self.address, REG_RESET, RESET_WORD)
            self._reset_sent_s = now_s
            return
        if now_s - self._reset_sent_s < STARTUP_TIME_S:
            return
        if self.bus.read_byte_data(self.address, REG_STATUS) & 0x01:  # im_update: NVM still being copied
            if now_s - self._reset_sent_s > 0.1:
                self._reset_sent_s = None
                raise DeviceDataError("NVM copy never finished after reset")
            return
        data = self.bus.read_i2c_block_data(self.address, REG_CALIB, CALIB_LENGTH)
        calibration = parse_calibration(data)
        try:
            check_calibration(data, calibration)
        except DeviceDataError:
            self._reset_sent_s = None
            raise
        self.calibration = calibration
        # config first: writes to config are ignored while the chip is in normal mode
        self.bus.write_byte_data(self.address, REG_CONFIG, self._config)
        self.bus.write_byte_data(self.address, REG_CTRL_MEAS, self._ctrl_meas)
        self.initialised = True
        self._started_s = now_s

    def _start_forced(self, now_s: float) -> None:
        self.bus.write_byte_data(self.address, REG_CTRL_MEAS, self._ctrl_meas)
        self._started_s = now_s
