"""BMP280 driver: datasheet arithmetic, and the real driver against its emulated twin."""

from __future__ import annotations

import time

import pytest

from hal.bmp280 import (
    BMP280,
    Calibration,
    compensate_pressure_q24_8,
    compensate_temperature,
    measurement_time_s,
    parse_calibration,
)
from hal.interfaces import Barometer
from hil.chips.bmp280 import DATASHEET_CALIBRATION, BMP280Chip
from hil.chips.bmp388 import BMP388Chip
from hil.fakebus import FakeSMBus

# Datasheet section 3.12 worked example: trimming parameters and raw readings.
EXAMPLE = Calibration(dig_t1=27504, dig_t2=26435, dig_t3=-1000, dig_p1=36477, dig_p2=-10685, dig_p3=3024,
                      dig_p4=2855, dig_p5=140, dig_p6=-7, dig_p7=15500, dig_p8=-14600, dig_p9=6000)
ADC_T = 519888
ADC_P = 415148


class Clock:
    def __init__(self) -> None:
        self.now_s = 0.0

    def __call__(self) -> float:
        return self.now_s


def make(period_s: float = 0.05, **options):
    clock = Clock()
    bus = FakeSMBus(clock=clock)
    chip = bus.attach(BMP280Chip())
    driver = BMP280(bus, **options)

    def run(n: int) -> None:
        for _ in range(n):
            clock.now_s += period_s
            driver.update(clock.now_s)

    return driver, chip, clock, run


@pytest.fixture(autouse=True)
def no_sleep(monkeypatch):
    def forbidden(_seconds: float) -> None:
        raise AssertionError("a driver slept")

    monkeypatch.setattr(time, "sleep", forbidden)


# ---------------------------------------------------------------- datasheet arithmetic


def test_datasheet_example_temperature():
    assert DATASHEET_CALIBRATION == EXAMPLE
    temp_centi_c, t_fine = compensate_temperature(EXAMPLE, ADC_T)
    assert t_fine == 128422
    assert temp_centi_c == 2508  # 25.08 degC


def test_datasheet_example_pressure():
    """The datasheet's example prints 100653.27 Pa, from its double-precision formula.  The 64-bit integer
    formula it also gives yields Q24.8 25767233 (= 100653.25 Pa) for the same inputs: 100653 Pa either way."""
    q24_8 = compensate_pressure_q24_8(EXAMPLE, ADC_P, 128422)
    assert q24_8 == 25767233
    assert q24_8 // 256 == 100653
    # the datasheet's floating-point version (appendix 8.1), written out independently
    var1 = 128422 / 2.0 - 64000.0
    var2 = var1 * var1 * EXAMPLE.dig_p6 / 32768.0
    var2 = var2 + var1 * EXAMPLE.dig_p5 * 2.0
    var2 = var2 / 4.0 + EXAMPLE.dig_p4 * 65536.0
    var1 = (EXAMPLE.dig_p3 * var1 * var1 / 524288.0 + EXAMPLE.dig_p2 * var1) / 524288.0
    var1 = (1.0 + var1 / 32768.0) * EXAMPLE.dig_p1
    p = 1048576.0 - ADC_P
    p = (p - var2 / 4096.0) * 6250.0 / var1
    var1 = EXAMPLE.dig_p9 * p * p / 2147483648.0
    var2 = p * EXAMPLE.dig_p8 / 32768.0
    p = p + (var1 + var2 + EXAMPLE.dig_p7) / 16.0
    assert p == pytest.approx(100653.27, abs=0.02)  # the datasheet table's figure
    assert abs(q24_8 / 256.0 - p) < 0.05


def test_calibration_bytes_little_endian_and_signed():
    raw = bytes.fromhex("706b 4367 18fc 7d8e 43d6 d00b 270b 8c00 f9ff 8c3c f8c6 7017".replace(" ", ""))
    assert parse_calibration(list(raw)) == EXAMPLE


def test_measurement_time_from_datasheet_formula():
    # x2 temperature, x16 pressure: 1.25 + 2.3*2 + 2.3*16 + 0.575 = 43.225 ms
    assert measurement_time_s(2, 16) == pytest.approx(43.225e-3)


# ---------------------------------------------------------------- against the twin


@pytest.mark.parametrize("mode", ["normal", "forced"])
def test_round_trip_across_range(mode):
    driver, chip, clock, run = make(mode=mode)
    assert isinstance(driver, Barometer)
    for pressure_pa in (30000.5, 45000.0, 70000.0, 101325.0, 109999.0):
        for temperature_c in (-40.0, -12.3, 0.0, 25.0, 40.0):
            chip.set_environment(pressure_pa=pressure_pa, temperature_c=temperature_c)
            run(3)
            reading = driver.reading
            assert reading.healthy, (pressure_pa, temperature_c, driver.stats)
            assert abs(reading.pressure_pa - pressure_pa) <= 0.2  # x16: 20-bit, ~0.17 Pa per code
            assert abs(reading.temperature_c - temperature_c) <= 0.011
    assert driver.stats.errors == 0


def test_low_oversampling_resolution_is_coarser():
    driver, chip, clock, run = make(oversampling_pressure=1, oversampling_temperature=1)
    chip.set_environment(pressure_pa=80000.0, temperature_c=10.0)
    run(4)
    assert driver.reading.healthy
    assert abs(driver.reading.pressure_pa - 80000.0) <= 3.0  # 16-bit: ~2.7 Pa per code


def test_forced_mode_waits_for_the_measurement_time():
    driver, chip, clock, run = make(mode="forced", period_s=0.01)  # 10 ms < 43 ms measurement time
    chip.set_environment(pressure_pa=50000.0, temperature_c=-20.0)
    run(30)
    assert driver.stats.errors == 0 and driver.reading.healthy
    assert abs(driver.reading.pressure_pa - 50000.0) < 0.2
    reads = driver.stats.reads
    while driver.stats.reads == reads:  # up to the update that reads one and starts the next
        run(1)
    reads = driver.stats.reads
    run(4)  # 40 ms: the measurement started at the last reading is not finished yet
    assert driver.stats.reads == reads
    run(1)
    assert driver.stats.reads == reads + 1


def test_nack_recovery_and_reinit():
    driver, chip, clock, run = make(reinit_after_errors=4)
    run(3)
    chip.faults.nack = True
    run(6)
    assert not driver.reading.healthy and driver.stats.errors == 6
    assert driver.stats.reinits == 1 and "NACK" in driver.stats.last_error
    chip.faults.nack = False
    run(4)
    assert driver.reading.healthy and driver.initialised


def test_chip_reset_mid_run_is_noticed_and_reconfigured():
    for mode in ("normal", "forced"):
        driver, chip, clock, run = make(mode=mode)
        run(3)
        chip.faults.reset()
        run(1)
        assert "configuration lost" in driver.stats.last_error
        assert driver.stats.reinits == 1 and not driver.reading.healthy
        run(4)
        assert driver.reading.healthy


def test_erased_calibration_is_an_init_failure():
    driver, chip, clock, run = make()
    chip.faults.bad_crc = True
    run(8)
    assert not driver.initialised and "calibration NVM" in driver.stats.last_error
    chip.faults.bad_crc = False
    run(4)
    assert driver.reading.healthy


def test_wrong_chip_id():
    clock = Clock()
    bus = FakeSMBus(clock=clock)
    bus.attach(BMP388Chip(0x76))
    driver = BMP280(bus)
    for _ in range(3):
        clock.now_s += 0.05
        driver.update(clock.now_s)
    assert "not a BMP280" in driver.stats.last_error and not driver.initialised


def test_stuck_chip_is_reported_as_read():
    """A frozen chip passes every check the driver can make; the estimator must judge it."""
    driver, chip, clock, run = make()
    chip.set_environment(pressure_pa=90000.0, temperature_c=5.0)
    run(3)
    chip.faults.stuck = True
    chip.set_environment(pressure_pa=40000.0, temperature_c=-30.0)
    run(3)
    assert driver.reading.healthy and abs(driver.reading.pressure_pa - 90000.0) < 0.2


def test_out_of_range_is_unhealthy_and_counted():
    driver, chip, clock, run = make()
    run(3)
    chip.faults.out_of_range = True
    run(2)
    assert not driver.reading.healthy and driver.reading.pressure_pa < 30000.0
    assert driver.stats.out_of_range == 2 and driver.stats.errors == 0


def test_below_rated_range_in_the_stratosphere():
    driver, chip, clock, run = make()
    chip.set_environment(pressure_pa=5500.0, temperature_c=-55.0)
    run(4)
    assert not driver.reading.healthy and abs(driver.reading.pressure_pa - 5500.0) < 1.0


def test_bias():
    driver, chip, clock, run = make()
    chip.set_environment(pressure_pa=60000.0, temperature_c=0.0)
    chip.faults.bias_pa = -80.0
    run(3)
    assert abs(driver.reading.pressure_pa - 59920.0) < 0.2


def test_stale_reading_is_not_healthy():
    driver, chip, clock, run = make(mode="forced")
    run(3)
    chip.faults.nack = True
    clock.now_s += 1.0
    driver.update(clock.now_s)
    assert not driver.reading.healthy


def test_rejects_bad_options():
    with pytest.raises(ValueError):
        BMP280(FakeSMBus(), mode="continuous")
    with pytest.raises(ValueError):
        BMP280(FakeSMBus(), oversampling_pressure=3)
    with pytest.raises(ValueError):
        BMP280(FakeSMBus(), standby_s=0.3)
