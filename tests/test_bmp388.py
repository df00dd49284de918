"""BMP388 driver: datasheet arithmetic, and the real driver against its emulated twin.

The BMP388 datasheet gives the compensation formulas (section 9) but no worked numeric example.  The
compensation is therefore checked against (a) an example computed independently by another open-source driver
from a production chip's NVM and raw data, and (b) an exact rational-arithmetic evaluation of the datasheet
formulas written out separately in this file.
"""

from __future__ import annotations

import time
from fractions import Fraction

import pytest

from hal.bmp388 import (
    BMP388,
    Nvm,
    coefficients,
    compensate_pressure,
    compensate_temperature,
    conversion_time_s,
    odr_code_for,
    parse_nvm,
)
from hal.interfaces import Barometer
from hil.chips.bmp388 import TYPICAL_NVM, BMP388Chip, pack_nvm
from hil.fakebus import FakeSMBus

NVM_BYTES = bytes.fromhex("236B5849F65CFFCEF42300EA636E79F3F6AA4312C4")  # 0x31..0x45 of a production part
NVM = Nvm(27427, 18776, -10, -164, -2866, 35, 0, 25578, 31086, -13, -10, 17322, 18, -60)
DATA_BYTES = (151, 159, 109, 115, 216, 133)  # 0x04..0x09
EXPECTED_PRESSURE_PA = 100876.00634692199
EXPECTED_TEMPERATURE_C = 30.499314453874284


class Clock:
    def __init__(self) -> None:
        self.now_s = 0.0

    def __call__(self) -> float:
        return self.now_s


def make(period_s: float = 0.05, **options):
    clock = Clock()
    bus = FakeSMBus(clock=clock)
    chip = bus.attach(BMP388Chip())
    driver = BMP388(bus, **options)

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


def test_nvm_decoding():
    assert parse_nvm(list(NVM_BYTES)) == NVM
    assert TYPICAL_NVM == NVM
    assert pack_nvm(NVM) == NVM_BYTES


def test_coefficient_conversion():
    c = coefficients(NVM)
    assert c.t1 == 27427 * 256.0
    assert c.t2 == 18776 / 2 ** 30
    assert c.t3 == -10 / 2 ** 48
    assert c.p1 == (-164 - 16384) / 2 ** 20
    assert c.p2 == (-2866 - 16384) / 2 ** 29
    assert c.p5 == 25578 * 8.0
    assert c.p11 == -60 / 2 ** 65


def test_independent_example():
    c = coefficients(NVM)
    uncomp_press = DATA_BYTES[0] | DATA_BYTES[1] << 8 | DATA_BYTES[2] << 16
    uncomp_temp = DATA_BYTES[3] | DATA_BYTES[4] << 8 | DATA_BYTES[5] << 16
    t_lin = compensate_temperature(c, uncomp_temp)
    assert t_lin == pytest.approx(EXPECTED_TEMPERATURE_C, abs=1e-9)
    assert compensate_pressure(c, uncomp_press, t_lin) == pytest.approx(EXPECTED_PRESSURE_PA, abs=1e-6)


def test_matches_exact_rational_evaluation():
    n = NVM
    t1, t2, t3 = Fraction(n.t1 * 256), Fraction(n.t2, 2 ** 30), Fraction(n.t3, 2 ** 48)
    p1, p2 = Fraction(n.p1 - 2 ** 14, 2 ** 20), Fraction(n.p2 - 2 ** 14, 2 ** 29)
    p3, p4, p5 = Fraction(n.p3, 2 ** 32), Fraction(n.p4, 2 ** 37), Fraction(n.p5 * 8)
    p6, p7, p8 = Fraction(n.p6, 2 ** 6), Fraction(n.p7, 2 ** 8), Fraction(n.p8, 2 ** 15)
    p9, p10, p11 = Fraction(n.p9, 2 ** 48), Fraction(n.p10, 2 ** 48), Fraction(n.p11, 2 ** 65)
    c = coefficients(NVM)
    for ut, up in ((8771699, 7184279), (8000000, 9000000), (9500000, 6000000)):
        d = ut - t1
        t = d * t2 + d * d * t3
        p = (p5 + p6 * t + p7 * t ** 2 + p8 * t ** 3 + up * (p1 + p2 * t + p3 * t ** 2 + p4 * t ** 3)
             + up ** 2 * (p9 + p10 * t) + up ** 3 * p11)
        t_lin = compensate_temperature(c, ut)
        assert t_lin == pytest.approx(float(t), abs=1e-9)
        assert compensate_pressure(c, up, t_lin) == pytest.approx(float(p), abs=1e-6)


def test_conversion_time_and_odr():
    # x8 pressure, x1 temperature: 234 + 392 + 8*2020 + 163 + 2020 us = 18.969 ms -> 20 ms ODR (code 2)
    assert conversion_time_s(8, 1) == pytest.approx(18.969e-3)
    assert odr_code_for(conversion_time_s(8, 1)) == 2
    assert odr_code_for(conversion_time_s(32, 2)) == 4  # 71.9 ms -> 80 ms


# ---------------------------------------------------------------- against the twin


@pytest.mark.parametrize("mode", ["normal", "forced"])
def test_round_trip_across_range(mode):
    driver, chip, clock, run = make(mode=mode)
    assert isinstance(driver, Barometer)
    for pressure_pa in (30000.5, 45000.0, 70000.0, 101325.0, 124999.0):
        for temperature_c in (-40.0, -12.3, 0.0, 25.0, 40.0):
            chip.set_environment(pressure_pa=pressure_pa, temperature_c=temperature_c)
            run(3)
            reading = driver.reading
            assert reading.healthy, (pressure_pa, temperature_c, driver.stats)
            assert abs(reading.pressure_pa - pressure_pa) <= 0.05
            assert abs(reading.temperature_c - temperature_c) <= 0.002
    assert driver.stats.errors == 0


def test_updates_faster_than_the_output_data_rate():
    driver, chip, clock, run = make(period_s=0.005)  # 5 ms updates, 20 ms ODR: most updates find no new data
    chip.set_environment(pressure_pa=65000.0, temperature_c=-5.0)
    run(200)
    assert driver.stats.errors == 0 and driver.reading.healthy
    assert 40 <= driver.stats.reads <= 52  # one per 20 ms over 1 s


def test_chip_refuses_an_odr_faster_than_a_measurement():
    chip = BMP388Chip()
    bus = FakeSMBus()
    bus.attach(chip)
    bus.write_byte_data(0x77, 0x1C, 0x05)  # x32 pressure: ~66 ms
    bus.write_byte_data(0x77, 0x1D, 0x00)  # 5 ms
    bus.write_byte_data(0x77, 0x1B, 0x33)  # normal mode
    assert bus.read_byte_data(0x77, 0x02) & 0x04  # conf_err
    assert bus.read_byte_data(0x77, 0x1B) & 0x30 == 0  # still sleeping
    assert bus.read_byte_data(0x77, 0x02) == 0  # clear on read


def test_nack_recovery_and_reinit():
    driver, chip, clock, run = make(reinit_after_errors=2)
    run(3)
    chip.faults.nack = True
    run(3)
    assert not driver.reading.healthy and driver.stats.errors == 3 and driver.stats.reinits == 1
    chip.faults.nack = False
    run(4)
    assert driver.reading.healthy


def test_chip_reset_mid_run_is_noticed_and_reconfigured():
    for mode in ("normal", "forced"):
        driver, chip, clock, run = make(mode=mode)
        run(3)
        chip.faults.reset()
        run(1)
        assert "power-on reset" in driver.stats.last_error and driver.stats.reinits == 1
        run(4)
        assert driver.reading.healthy


def test_erased_nvm_is_an_init_failure():
    driver, chip, clock, run = make()
    chip.faults.bad_crc = True
    run(6)
    assert not driver.initialised and "NVM" in driver.stats.last_error
    chip.faults.bad_crc = False
    run(4)
    assert driver.reading.healthy


def test_wrong_chip_id():
    from hil.chips.bmp280 import BMP280Chip

    clock = Clock()
    bus = FakeSMBus(clock=clock)
    bus.attach(BMP280Chip(0x77))
    driver = BMP388(bus)
    driver.update(0.0)
    assert "not a BMP388" in driver.stats.last_error


def test_stuck_chip_is_reported_as_read():
    """A frozen chip still raises data-ready: the driver reports its value; the estimator must judge it."""
    driver, chip, clock, run = make()
    chip.set_environment(pressure_pa=90000.0, temperature_c=5.0)
    run(3)
    chip.faults.stuck = True
    chip.set_environment(pressure_pa=40000.0, temperature_c=-30.0)
    run(3)
    assert driver.reading.healthy and abs(driver.reading.pressure_pa - 90000.0) < 0.05


def test_out_of_range_is_unhealthy_and_counted():
    driver, chip, clock, run = make()
    run(3)
    chip.faults.out_of_range = True
    run(2)
    assert not driver.reading.healthy and driver.reading.pressure_pa < 30000.0
    assert driver.stats.out_of_range == 2 and driver.stats.errors == 0


def test_silent_chip_goes_stale_then_errors():
    driver, chip, clock, run = make()
    run(3)
    driver.bus.write_byte_data(0x77, 0x1B, 0x03)  # sleep mode, nothing new will come
    run(11)  # 0.55 s: stale
    assert not driver.reading.healthy
    run(10)
    assert "no new data" in driver.stats.last_error


def test_rejects_bad_options():
    with pytest.raises(ValueError):
        BMP388(FakeSMBus(), mode="auto")
    with pytest.raises(ValueError):
        BMP388(FakeSMBus(), oversampling_pressure=64)
