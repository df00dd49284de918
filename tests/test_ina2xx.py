"""INA219 / INA226 drivers: datasheet calibration examples, and the real drivers against their twins."""

from __future__ import annotations

import time

import pytest

from hal.i2c import swap16
from hal.ina2xx import INA219, INA226, ina219_calibration, ina226_calibration, minimum_current_lsb_a
from hal.interfaces import PowerMonitor
from hil.chips.ina2xx import INA219Chip, INA226Chip
from hil.fakebus import FakeSMBus


class Clock:
    def __init__(self) -> None:
        self.now_s = 0.0

    def __call__(self) -> float:
        return self.now_s


def make(kind: str, **options):
    clock = Clock()
    bus = FakeSMBus(clock=clock)
    if kind == "ina219":
        chip = bus.attach(INA219Chip(0x40, shunt_ohm=options.get("shunt_ohm", 0.1)))
        driver = INA219(bus, **options)
    else:
        chip = bus.attach(INA226Chip(0x40, shunt_ohm=options.get("shunt_ohm", 0.002)))
        driver = INA226(bus, **options)

    def run(n: int) -> None:
        for _ in range(n):
            clock.now_s += 0.05
            driver.update(clock.now_s)

    return driver, chip, clock, run


@pytest.fixture(autouse=True)
def no_sleep(monkeypatch):
    def forbidden(_seconds: float) -> None:
        raise AssertionError("a driver slept")

    monkeypatch.setattr(time, "sleep", forbidden)


# ---------------------------------------------------------------- datasheet examples


def test_ina219_datasheet_example():
    """INA219 datasheet "Configure/Measure/Calculate Example": 10 A load, 12 V common mode, 2 mOhm shunt,
    40 mV shunt range, 16 V bus range, Current_LSB 1 mA: Cal 5000h, Shunt 07D0h, Bus 5D98h (2995 x 4 mV = 11.98 V,
    CNVR/OVF aside), Current 2710h (10.0 A), Power 1766h (5990 x 20 mW = 119.8 W), Configuration 019Fh."""
    assert ina219_calibration(0.002, 0.001) == 0x5000 == 20480
    driver, chip, clock, run = make("ina219", shunt_ohm=0.002, max_current_a=10.0, current_lsb_a=0.001,
                                    bus_voltage_range_v=16)
    assert driver.config == 0x019F and driver.calibration == 0x5000
    chip.set_power(bus_voltage_v=11.98, current_a=10.0)
    run(2)
    bus = driver.bus
    assert swap16(bus.read_word_data(0x40, 0x01)) == 0x07D0
    assert swap16(bus.read_word_data(0x40, 0x02)) & 0xFFF8 == 0x5D98
    assert swap16(bus.read_word_data(0x40, 0x04)) == 0x2710
    assert swap16(bus.read_word_data(0x40, 0x03)) == 0x1766
    reading = driver.reading
    assert reading.healthy
    assert reading.bus_voltage_v == pytest.approx(11.98)
    assert reading.current_a == pytest.approx(10.0)
    assert reading.power_w == pytest.approx(119.8)


def test_ina226_datasheet_example():
    """INA226 datasheet "Configure/Measure/Calculate Example": 10 A load, 12 V, 2 mOhm shunt, Current_LSB 1 mA:
    Cal A00h (2560), Shunt 1F40h (20 mV), Bus 2570h (11.98 V), Current 2710h (10 A), Power 12B8h (119.82 W)."""
    assert ina226_calibration(0.002, 0.001) == 0x0A00 == 2560
    driver, chip, clock, run = make("ina226", shunt_ohm=0.002, max_current_a=10.0, current_lsb_a=0.001)
    chip.set_power(bus_voltage_v=11.98, current_a=10.0)
    run(2)
    bus = driver.bus
    assert swap16(bus.read_word_data(0x40, 0x05)) == 0x0A00
    assert swap16(bus.read_word_data(0x40, 0x01)) == 0x1F40
    assert swap16(bus.read_word_data(0x40, 0x02)) == 0x2570
    assert swap16(bus.read_word_data(0x40, 0x04)) == 0x2710
    assert swap16(bus.read_word_data(0x40, 0x03)) == 0x12B8
    reading = driver.reading
    assert reading.healthy
    assert reading.bus_voltage_v == pytest.approx(11.98)
    assert reading.current_a == pytest.approx(10.0)
    assert reading.power_w == pytest.approx(119.8)


def test_minimum_lsb_and_truncation():
    assert minimum_current_lsb_a(3.2) == pytest.approx(97.65625e-6)
    # 0.04096 / (97.65625e-6 * 0.1) = 4194.304 -> 4194
    assert ina219_calibration(0.1, minimum_current_lsb_a(3.2)) == 4194
    # 0.00512 / (305.17578125e-6 * 0.002) = 8388.608 -> 8388
    assert ina226_calibration(0.002, minimum_current_lsb_a(10.0)) == 8388


def test_registers_are_big_endian_on_the_wire():
    chip = INA226Chip(0x40)
    bus = FakeSMBus()
    bus.attach(chip)
    assert bus.read_i2c_block_data(0x40, 0xFE, 2) == [0x54, 0x49]
    assert bus.read_word_data(0x40, 0xFE) == 0x4954  # SMBus word: first byte is the low byte
    bus.write_word_data(0x40, 0x05, swap16(0x1234))
    assert chip.calibration == 0x1234


def test_config_validation():
    with pytest.raises(ValueError):
        INA219(FakeSMBus(), shunt_ohm=0.1, max_current_a=5.0)  # 500 mV > 320 mV range
    with pytest.raises(ValueError):
        INA226(FakeSMBus(), shunt_ohm=0.01, max_current_a=10.0)  # 100 mV > 81.92 mV
    with pytest.raises(ValueError):
        INA226(FakeSMBus(), shunt_ohm=0.002, max_current_a=10.0, current_lsb_a=1e-5)  # cannot hold 10 A


# ---------------------------------------------------------------- against the twins


@pytest.mark.parametrize("kind", ["ina219", "ina226"])
def test_round_trip(kind):
    driver, chip, clock, run = make(kind)
    assert isinstance(driver, PowerMonitor)
    full_scale_a = driver.max_current_a
    lsb = driver.effective_current_lsb_a
    run(1)  # identification and configuration
    for bus_voltage_v in (0.0, 3.3, 12.0, 25.0):
        for current_a in (-0.9 * full_scale_a, -0.01, 0.0, 0.25, 0.9 * full_scale_a):
            chip.set_power(bus_voltage_v=bus_voltage_v, current_a=current_a)
            run(1)
            reading = driver.reading
            assert reading.healthy
            assert abs(reading.bus_voltage_v - bus_voltage_v) <= 0.0041
            assert abs(reading.current_a - current_a) <= max(2 * lsb, 1e-5 / chip.shunt_ohm)
            assert reading.power_w == pytest.approx(abs(current_a) * bus_voltage_v, rel=0.01, abs=0.03)
    assert driver.stats.errors == 0


@pytest.mark.parametrize("kind", ["ina219", "ina226"])
def test_nack_recovery_and_reinit(kind):
    driver, chip, clock, run = make(kind, reinit_after_errors=3)
    chip.set_power(bus_voltage_v=12.0, current_a=1.0)
    run(2)
    chip.faults.nack = True
    run(4)
    assert not driver.reading.healthy and driver.stats.errors == 4 and driver.stats.reinits == 1
    chip.faults.nack = False
    run(2)
    assert driver.reading.healthy and driver.reading.current_a == pytest.approx(1.0, abs=1e-3)


@pytest.mark.parametrize("kind", ["ina219", "ina226"])
def test_chip_reset_mid_run(kind):
    driver, chip, clock, run = make(kind)
    chip.set_power(bus_voltage_v=12.0, current_a=1.0)
    run(2)
    chip.faults.reset()
    assert chip.calibration == 0
    run(1)
    assert "calibration register" in driver.stats.last_error and driver.stats.reinits == 1
    assert not driver.reading.healthy
    run(2)
    assert driver.reading.healthy and chip.calibration == driver.calibration


@pytest.mark.parametrize("kind", ["ina219", "ina226"])
def test_corrupted_calibration_readback(kind):
    driver, chip, clock, run = make(kind)
    chip.faults.bad_crc = True
    run(4)
    assert not driver.reading.healthy and driver.stats.errors >= 2
    chip.faults.bad_crc = False
    run(2)
    assert driver.reading.healthy


@pytest.mark.parametrize("kind", ["ina219", "ina226"])
def test_out_of_range_is_unhealthy_and_counted(kind):
    driver, chip, clock, run = make(kind)
    chip.set_power(bus_voltage_v=12.0, current_a=1.0)
    run(2)
    chip.faults.out_of_range = True
    run(2)
    assert not driver.reading.healthy and driver.stats.out_of_range == 2 and driver.stats.errors == 0
    chip.faults.out_of_range = False
    chip.set_power(bus_voltage_v=40.0, current_a=1.0)  # above the rated bus input
    run(1)
    assert not driver.reading.healthy and driver.stats.out_of_range == 3


@pytest.mark.parametrize("kind", ["ina219", "ina226"])
def test_stuck_and_bias(kind):
    """A stuck chip is reported as read (healthy); a bias shows up in the reading."""
    driver, chip, clock, run = make(kind)
    chip.set_power(bus_voltage_v=12.0, current_a=1.0)
    run(2)
    chip.faults.stuck = True
    chip.set_power(bus_voltage_v=9.0, current_a=2.0)
    run(1)
    assert driver.reading.healthy and driver.reading.bus_voltage_v == pytest.approx(12.0, abs=0.005)
    chip.faults.stuck = False
    chip.faults.bias_current_a = 0.5
    run(1)
    assert driver.reading.current_a == pytest.approx(2.5, abs=1e-3)


def test_ina226_wrong_identity():
    clock = Clock()
    bus = FakeSMBus(clock=clock)
    bus.attach(INA219Chip(0x40))
    driver = INA226(bus)
    driver.update(0.0)
    assert "not an INA226" in driver.stats.last_error and not driver.initialised


def test_ina219_wrong_identity():
    bus = FakeSMBus()
    bus.attach(INA226Chip(0x40))
    driver = INA219(bus)
    driver.update(0.0)
    assert "not the INA219" in driver.stats.last_error
