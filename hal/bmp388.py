"""Bosch BMP388 barometric pressure sensor on I2C.

Registers (datasheet section 4): CHIP_ID 0x00 (= 0x50), ERR_REG 0x02 (fatal/cmd/conf error, clear on read),
STATUS 0x03 (drdy_press bit 5, drdy_temp bit 6), DATA 0x04..0x09 (pressure then temperature, 24 bit, xlsb first),
EVENT 0x10 (por_detected bit 0, clear on read), PWR_CTRL 0x1B (press_en, temp_en, mode[5:4]), OSR 0x1C, ODR 0x1D,
CONFIG 0x1F (IIR filter), calibration NVM 0x31..0x45, CMD 0x7E (soft reset 0xB6).

Each update reads 0x02..0x10 in one burst: error flags, data-ready flags, data and the power-on-reset event, so a
chip that reset itself is noticed on the next read and configured again at once.  The output data rate is the
fastest one whose period holds a whole measurement (the chip rejects faster ones with a configuration error).
Compensation is the datasheet's floating-point one.  A frozen chip is reported as it reads.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from hal.i2c import DeviceDataError, PolledI2CDevice, check_chip_id, s8
from hal.interfaces import PressureReading

REG_CHIP_ID = 0x00
CHIP_ID = 0x50
REG_ERR = 0x02
REG_STATUS = 0x03
REG_DATA = 0x04
REG_EVENT = 0x10
REG_PWR_CTRL = 0x1B
REG_OSR = 0x1C
REG_ODR = 0x1D
REG_CONFIG = 0x1F
REG_CALIB = 0x31
CALIB_LENGTH = 21
REG_CMD = 0x7E
CMD_SOFT_RESET = 0xB6
STARTUP_TIME_S = 2e-3
RATED_PRESSURE_PA = (30000.0, 125000.0)

PWR_PRESS_EN = 0x01
PWR_TEMP_EN = 0x02
MODE_FORCED = 0x10
MODE_NORMAL = 0x30
STATUS_DRDY_PRESS = 0x20
STATUS_DRDY_TEMP = 0x40
STATUS_DRDY_BOTH = STATUS_DRDY_PRESS | STATUS_DRDY_TEMP
#: Bytes of the per-update burst read, ERR_REG up to EVENT.
BURST_LENGTH = REG_EVENT - REG_ERR + 1

#: Oversampling factor -> osr code.
OVERSAMPLING_CODE = {1: 0, 2: 1, 4: 2, 8: 3, 16: 4, 32: 5}
#: IIR filter coefficient -> CONFIG iir_filter code.
FILTER_CODE = {0: 0, 1: 1, 3: 2, 7: 3, 15: 4, 31: 5, 63: 6, 127: 7}


class Nvm(NamedTuple):
    """The calibration words as stored (NVM_PAR_T1 .. NVM_PAR_P11)."""

    t1: int
    t2: int
    t3: int
    p1: int
    p2: int
    p3: int
    p4: int
    p5: int
    p6: int
    p7: int
    p8: int
    p9: int
    p10: int
    p11: int


class Coefficients(NamedTuple):
    """The floating-point calibration coefficients PAR_T1 .. PAR_P11 (datasheet section 9.1)."""

    t1: float
    t2: float
    t3: float
    p1: float
    p2: float
    p3: float
    p4: float
    p5: float
    p6: float
    p7: float
    p8: float
    p9: float
    p10: float
    p11: float


def _u16(lo: int, hi: int) -> int:
    return lo | (hi << 8)


def _s16(lo: int, hi: int) -> int:
    value = lo | (hi << 8)
    return value - 0x10000 if value & 0x8000 else value


def parse_nvm(data: Sequence[int]) -> Nvm:
    """Decode the 21 bytes read from 0x31..0x45 (little-endian words; signedness as in the datasheet)."""
    if len(data) != CALIB_LENGTH:
        raise DeviceDataError(f"calibration read returned {len(data)} bytes, expected {CALIB_LENGTH}")
    d = data
    return Nvm(_u16(d[0], d[1]), _u16(d[2], d[3]), s8(d[4]), _s16(d[5], d[6]), _s16(d[7], d[8]), s8(d[9]),
               s8(d[10]), _u16(d[11], d[12]), _u16(d[13], d[14]), s8(d[15]), s8(d[16]), _s16(d[17], d[18]),
               s8(d[19]), s8(d[20]))


def check_nvm(data: Sequence[int], nvm: Nvm) -> None:
    """Reject an erased or unreadable NVM (the BMP388 has no CRC on it)."""
    if all(b == data[0] for b in data):
        raise DeviceDataError(f"calibration NVM reads all 0x{data[0]:02x}")
    if nvm.t1 in (0, 0xFFFF) or nvm.t2 in (0, 0xFFFF) or nvm.p5 in (0, 0xFFFF):
        raise DeviceDataError("calibration NVM implausible (PAR_T1, PAR_T2 or PAR_P5 zero or erased)")


def coefficients(nvm: Nvm) -> Coefficients:
    """Convert the NVM words to floating-point coefficients as the datasheet prescribes."""
    return Coefficients(
        t1=nvm.t1 * 2.0 ** 8,
        t2=nvm.t2 / 2.0 ** 30,
        t3=nvm.t3 / 2.0 ** 48,
        p1=(nvm.p1 - 2 ** 14) / 2.0 ** 20,
        p2=(nvm.p2 - 2 ** 14) / 2.0 ** 29,
        p3=nvm.p3 / 2.0 ** 32,
        p4=nvm.p4 / 2.0 ** 37,
        p5=nvm.p5 * 2.0 ** 3,
        p6=nvm.p6 / 2.0 ** 6,
        p7=nvm.p7 / 2.0 ** 8,
        p8=nvm.p8 / 2.0 ** 15,
        p9=nvm.p9 / 2.0 ** 48,
        p10=nvm.p10 / 2.0 ** 48,
        p11=nvm.p11 / 2.0 ** 65,
    )


def compensate_temperature(c: Coefficients, uncomp_temp: int) -> float:
    """Datasheet floating-point temperature compensation: returns t_lin, the temperature in degC."""
    partial1 = uncomp_temp - c.t1
    partial2 = partial1 * c.t2
    return partial2 + (partial1 * partial1) * c.t3


def compensate_pressure(c: Coefficients, uncomp_press: int, t_lin: float) -> float:
    """Datasheet floating-point pressure compensation: returns the pressure in Pa."""
    _, _, _, p1, p2, p3, p4, p5, p6, p7, p8, p9, p10, p11 = c
    t2 = t_lin * t_lin
    t3 = t2 * t_lin
    out1 = p5 + p6 * t_lin + p7 * t2 + p8 * t3
    out2 = uncomp_press * (p1 + p2 * t_lin + p3 * t2 + p4 * t3)
    up2 = uncomp_press * uncomp_press
    out3 = up2 * (p9 + p10 * t_lin) + up2 * uncomp_press * p11
    return out1 + out2 + out3


def conversion_time_s(oversampling_pressure: int, oversampling_temperature: int) -> float:
    """Measurement time with pressure and temperature enabled (datasheet 3.9.2)."""
    return (234 + 392 + oversampling_pressure * 2020 + 163 + oversampling_temperature * 2020) * 1e-6


def odr_code_for(conversion_s: float) -> int:
    """The fastest ODR code (period 5 ms x 2^code) whose period holds a measurement."""
    for code in range(18):
        if 5e-3 * (1 << code) >= conversion_s:
            return code
    return 17


class BMP388(PolledI2CDevice):
    """BMP388 driver satisfying :class:`hal.interfaces.Barometer`.

    Arguments:
        bus: an ``smbus2.SMBus`` or compatible object.
        address: 0x76 (SDO low) or 0x77 (SDO high).
        name: device name for logs and telemetry.
        mode: ``"normal"`` (continuous at the ODR) or ``"forced"`` (one measurement per update).
        oversampling_pressure: 1, 2, 4, 8, 16 or 32.
        oversampling_temperature: 1, 2, 4, 8, 16 or 32.
        iir_filter: IIR coefficient 0 (bypass), 1, 3, 7, 15, 31, 63 or 127.
        reinit_after_errors: consecutive failed updates after which the chip is reset and configured again.
        stale_after_s: a reading older than this (s) is presented unhealthy.
    """

    rated_pressure_pa: tuple[float, float] = RATED_PRESSURE_PA

    def __init__(self, bus: Any, *, address: int = 0x77, name: str = "baro2", mode: str = "normal",
                 oversampling_pressure: int = 8, oversampling_temperature: int = 1, iir_filter: int = 0,
                 reinit_after_errors: int = 5, stale_after_s: float = 0.5) -> None:
        if mode not in ("normal", "forced"):
            raise ValueError(f"{name}: mode must be 'normal' or 'forced', got {mode!r}")
        if oversampling_pressure not in OVERSAMPLING_CODE or oversampling_temperature not in OVERSAMPLING_CODE:
            raise ValueError(f"{name}: oversampling must be one of {sorted(OVERSAMPLING_CODE)}")
        if iir_filter not in FILTER_CODE:
            raise ValueError(f"{name}: iir_filter must be one of {sorted(FILTER_CODE)}")
        super().__init__(bus, address=address, name=name, reinit_after_errors=reinit_after_errors,
                         stale_after_s=stale_after_s, initial_reading=PressureReading())
        self.mode = mode
        self.conversion_time_s = conversion_time_s(oversampling_pressure, oversampling_temperature)
        self._osr = (OVERSAMPLING_CODE[oversampling_temperature] << 3) | OVERSAMPLING_CODE[oversampling_pressure]
        self._odr = odr_code_for(self.conversion_time_s)
        self.odr_period_s = 5e-3 * (1 << self._odr)
        self._config = FILTER_CODE[iir_filter] << 1
        self._pwr_ctrl = PWR_PRESS_EN | PWR_TEMP_EN | (MODE_NORMAL if mode == "normal" else MODE_FORCED)
        self.coefficients: Coefficients | None = None
        self._reset_sent_s: float | None = None
        self._started_s: float | None = None
        self._last_data_s = 0.0

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
        if now_s - self._started_s < self.conversion_time_s:
            return
        (err, status, press_xlsb, press_lsb, press_msb, temp_xlsb, temp_lsb, temp_msb,
         _, _, _, _, _, _, event) = self.bus.read_i2c_block_data(self.address, REG_ERR, BURST_LENGTH)
        if event & 0x01:
            self._lost_configuration("power-on reset detected (EVENT.por_detected)")
            return
        if err & 0x07:
            self._lost_configuration(f"chip reports error (ERR_REG 0x{err:02x})")
            return
        if status & STATUS_DRDY_BOTH != STATUS_DRDY_BOTH:
            waited_s = now_s - max(self._last_data_s, self._started_s)
            if waited_s > 4 * max(self.odr_period_s, self.conversion_time_s) + 0.1:
                self._last_data_s = now_s
                if self.mode == "forced":
                    self._started_s = None
                raise DeviceDataError(f"no new data for {waited_s:.3f} s")
            return
        self._last_data_s = now_s
        uncomp_press = press_xlsb | (press_lsb << 8) | (press_msb << 16)
        uncomp_temp = temp_xlsb | (temp_lsb << 8) | (temp_msb << 16)
        if self.mode == "forced":
            measured_s = self._started_s + self.conversion_time_s
            self._started_s = None
            self._start_forced(now_s)
        else:
            measured_s = now_s
        c = self.coefficients
        t_lin = compensate_temperature(c, uncomp_temp)
        pressure_pa = compensate_pressure(c, uncomp_press, t_lin)
        low, high = self.rated_pressure_pa
        in_range = low <= pressure_pa <= high
        if not in_range:
            self.stats.out_of_range += 1
        self._publish(PressureReading(pressure_pa, t_lin, measured_s, in_range))

    def identify(self) -> str:
        """Check that a BMP388 answers at ``address``: read its chip id register (REG_CHIP_ID).  Changes nothing on the
        chip.  Returns what was checked; raises ``OSError`` (bus) or :class:`~hal.i2c.DeviceDataError` (another
        chip answers)."""
        return check_chip_id(self.bus, self.address, REG_CHIP_ID, CHIP_ID, "BMP388")

    def _initialise(self, now_s: float) -> None:
        """Check the chip id and soft-reset; >= 2 ms later read the NVM and write the configuration."""
        if self._reset_sent_s is None:
            self.identify()
            self.bus.write_byte_data(self.address, REG_CMD, CMD_SOFT_RESET)
            self._reset_sent_s = now_s
            return
        if now_s - self._reset_sent_s < STARTUP_TIME_S:
            return
        data = self.bus.read_i2c_block_data(self.address, REG_CALIB, CALIB_LENGTH)
        nvm = parse_nvm(data)
        try:
            check_nvm(data, nvm)
        except DeviceDataError:
            self._reset_sent_s = None
            raise
        self.coefficients = coefficients(nvm)
        self.bus.read_byte_data(self.address, REG_EVENT)  # clears por_detected
        self.bus.read_byte_data(self.address, REG_ERR)  # clears stale error flags
        self.bus.write_byte_data(self.address, REG_OSR, self._osr)
        self.bus.write_byte_data(self.address, REG_ODR, self._odr)
        self.bus.write_byte_data(self.address, REG_CONFIG, self._config)
        self.bus.write_byte_data(self.address, REG_PWR_CTRL, self._pwr_ctrl)
        self.initialised = True
        self._started_s = now_s
        self._last_data_s = now_s

    def _start_forced(self, now_s: float) -> None:
        self.bus.write_byte_data(self.address, REG_PWR_CTRL, self._pwr_ctrl)
        self._started_s = now_s
