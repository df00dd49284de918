"""MS5611 driver: datasheet arithmetic, and the real driver against its emulated twin."""

from __future__ import annotations

import math
import time

import pytest

from hal.interfaces import Barometer
from hal.ms5611 import MS5611, compensate, prom_crc4, temperature_terms
from hil.chips.ms5611 import DATASHEET_COEFFICIENTS, MS5611Chip
from hil.fakebus import FakeSMBus

C = (40127, 36924, 23317, 23282, 33464, 28312)  # the datasheet's example C1..C6


class Clock:
    def __init__(self) -> None:
        self.now_s = 0.0

    def __call__(self) -> float:
        return self.now_s


def make(period_s: float = 0.05, **options):
    clock = Clock()
    bus = FakeSMBus(clock=clock)
    chip = bus.attach(MS5611Chip())
    driver = MS5611(bus, **options)

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


def test_datasheet_worked_example():
    assert DATASHEET_COEFFICIENTS == C
    temp, off, sens = temperature_terms(C, 8569150)
    assert (temp, off, sens) == (2007, 2420281617, 1315097036)
    assert compensate(C, 9085466, 8569150) == (2007, 100009)


def test_second_order_below_20_degc_hand_computed():
    # D2 = 8000000: dT = 8000000 - 33464*256 = -566784
    # TEMP1 = 2000 + trunc(-566784*28312/2^23 = -1912.93) = 88
    # OFF1 = 36924*2^16 + trunc(23282*dT/2^7) = 2419851264 - 103092696 = 2316758568
    # SENS1 = 40127*2^15 + trunc(23317*dT/2^8) = 1314881536 - 51623838 = 1263257698
    # T2 = trunc(dT^2/2^31 = 149.59) = 149; OFF2 = 5*(88-2000)^2/2 = 9139360; SENS2 = 5*1912^2/4 = 4569680
    assert temperature_terms(C, 8000000) == (88 - 149, 2316758568 - 9139360, 1263257698 - 4569680)
    # P = trunc((trunc(8500000*1258688018/2^21) - 2307619208)/2^15) = trunc((5101608349 - 2307619208)/32768)
    assert compensate(C, 8500000, 8000000) == (-61, 85265)


def test_second_order_below_minus_15_degc_hand_computed():
    # D2 = 7200000: dT = -1366784; TEMP1 = 2000 + trunc(-4612.97) = -2612
    # OFF1 = 2419851264 - 248605196 = 2171246068; SENS1 = 1314881536 - 124489463 = 1190392073
    # T2 = trunc(869.90) = 869; OFF2 = 5*4612^2/2 + 7*(-2612+1500)^2 = 53176360 + 8655808 = 61832168
    # SENS2 = 5*4612^2/4 + 11*1112^2/2 = 26588180 + 6800992 = 33389172
    assert temperature_terms(C, 7200000) == (-2612 - 869, 2171246068 - 61832168, 1190392073 - 33389172)
    assert compensate(C, 7000000, 7200000) == (-3481, 53482)


def test_prom_crc_detects_every_single_bit_error():
    chip = MS5611Chip()
    prom = list(chip.prom)
    assert prom_crc4(prom) == prom[7] & 0xF
    for word in range(8):
        for bit in range(16):
            if word == 7 and bit < 8:
                continue  # AN520 replaces the whole low byte of word 7 (CRC nibble included) by 0
            corrupted = list(prom)
            corrupted[word] ^= 1 << bit
            assert prom_crc4(corrupted) != prom[7] & 0xF, (word, bit)


# ---------------------------------------------------------------- against the twin


def test_satisfies_barometer_protocol():
    driver, *_ = make()
    assert isinstance(driver, Barometer)
    assert driver.rated_pressure_pa == (1000.0, 120000.0)
    assert not driver.reading.healthy


@pytest.mark.parametrize("pressure_pa", [1000.0, 1500.0, 5000.0, 12345.6, 30000.0, 70000.0, 101325.0, 119999.0])
def test_round_trip_across_range(pressure_pa):
    driver, chip, clock, run = make()
    for temperature_c in (-40.0, -16.0, -10.5, 0.0, 19.99, 25.0, 40.0):
        chip.set_environment(pressure_pa=pressure_pa, temperature_c=temperature_c)
        run(6)
        reading = driver.reading
        assert reading.healthy
        assert abs(reading.pressure_pa - pressure_pa) <= 1.0
        assert abs(reading.temperature_c - temperature_c) <= 0.011
        assert clock.now_s - reading.time_s < 0.1
    assert driver.stats.errors == 0


def test_works_when_updates_are_faster_than_a_conversion():
    driver, chip, clock, run = make(period_s=0.004)  # 4 ms < 9.04 ms conversion at OSR 4096
    chip.set_environment(pressure_pa=50000.0, temperature_c=-20.0)
    run(100)
    assert driver.reading.healthy and abs(driver.reading.pressure_pa - 50000.0) <= 1.0
    assert driver.stats.errors == 0


def test_lower_oversampling():
    driver, chip, clock, run = make(oversampling=256)
    assert driver.conversion_time_s == pytest.approx(0.6e-3)
    chip.set_environment(pressure_pa=80000.0, temperature_c=10.0)
    run(8)
    assert abs(driver.reading.pressure_pa - 80000.0) <= 1.0


def test_nack_marks_unhealthy_counts_and_reinitialises_then_recovers():
    driver, chip, clock, run = make(reinit_after_errors=3)
    run(6)
    assert driver.reading.healthy
    chip.faults.nack = True
    run(1)
    assert not driver.reading.healthy
    assert driver.stats.errors == 1 and "121" in driver.stats.last_error
    run(5)
    assert driver.stats.consecutive_errors == 6
    assert driver.stats.reinits == 1 and not driver.initialised
    chip.faults.nack = False
    run(6)
    assert driver.initialised and driver.reading.healthy
    assert driver.stats.consecutive_errors == 0


def test_single_nack_does_not_reinitialise():
    driver, chip, clock, run = make()
    run(6)
    chip.faults.nack_next(1)
    run(1)
    assert driver.stats.errors == 1 and not driver.reading.healthy
    run(3)
    assert driver.reading.healthy and driver.stats.reinits == 0


def test_missing_chip_never_raises():
    clock = Clock()
    bus = FakeSMBus(clock=clock, missing_errno=6)
    driver = MS5611(bus)
    for _ in range(20):
        clock.now_s += 0.05
        driver.update(clock.now_s)
    assert driver.stats.errors == 20 and "errno 6" in driver.stats.last_error
    assert not driver.reading.healthy


def test_chip_reset_mid_run_loses_one_conversion_then_recovers():
    driver, chip, clock, run = make()
    run(6)
    chip.faults.reset()
    run(1)
    assert driver.stats.errors == 1 and "ADC read returned 0" in driver.stats.last_error
    run(4)
    assert driver.reading.healthy and driver.stats.reinits == 0


def test_bad_crc_is_an_init_failure_retried_later():
    driver, chip, clock, run = make()
    chip.faults.bad_crc = True
    run(10)
    assert not driver.initialised and not driver.reading.healthy
    assert "CRC" in driver.stats.last_error and driver.stats.errors >= 4
    chip.faults.bad_crc = False
    run(6)
    assert driver.initialised and driver.reading.healthy


def test_stuck_chip_is_reported_as_read():
    """The driver cannot tell a frozen chip from a steady atmosphere: it reports the frozen value, healthy."""
    driver, chip, clock, run = make()
    chip.set_environment(pressure_pa=90000.0, temperature_c=5.0)
    run(6)
    chip.faults.stuck = True
    chip.set_environment(pressure_pa=20000.0, temperature_c=-30.0)
    run(6)
    assert driver.reading.healthy and abs(driver.reading.pressure_pa - 90000.0) <= 1.0


def test_bias_and_drift():
    driver, chip, clock, run = make()
    chip.set_environment(pressure_pa=60000.0, temperature_c=0.0)
    chip.faults.bias_pa = 150.0
    run(6)
    assert abs(driver.reading.pressure_pa - 60150.0) <= 1.0
    chip.faults.bias_pa = 0.0
    chip.faults.drift_start_s = clock.now_s
    chip.faults.drift_pa_per_s = 10.0
    run(40)  # 2 s
    assert 60010.0 < driver.reading.pressure_pa < 60030.0


def test_out_of_range_is_unhealthy_and_counted():
    driver, chip, clock, run = make()
    run(6)
    chip.faults.out_of_range = True
    run(4)
    assert not driver.reading.healthy
    assert driver.reading.pressure_pa < 1000.0
    assert driver.stats.out_of_range >= 1 and driver.stats.errors == 0


def test_stale_reading_is_not_healthy():
    driver, chip, clock, run = make()
    run(6)
    assert driver.reading.healthy
    clock.now_s += 2.0
    driver.update(clock.now_s)  # a D2 step: no new pressure yet, the old one is 2 s old
    assert not driver.reading.healthy


def test_rejects_bad_options():
    with pytest.raises(ValueError):
        MS5611(FakeSMBus(), oversampling=300)
    with pytest.raises(ValueError):
        MS5611(FakeSMBus(), address=0x90)


def test_temperature_terms_are_reused_only_while_d2_repeats():
    """The driver keeps the temperature half of the compensation while D2 repeats: every reading equals the full
    compensation of the codes the chip answered, as the temperature holds, as it moves, and after the chip was
    replaced by one with other coefficients answering the same D2 (the re-initialisation reads them anew)."""
    driver, chip, clock, run = make(reinit_after_errors=1)
    bus = driver.bus
    answers = []  # every ADC result, in order: D2, D1, D2, D1 ...
    read = bus.read_i2c_block_data

    def recording_read(i2c_addr, register, length, force=None):
        data = read(i2c_addr, register, length, force)
        if register == 0x00:
            answers.append((data[0] << 16) | (data[1] << 8) | data[2])
        return data

    class SameD2(MS5611Chip):  # whatever the temperature, the D2 the first part answered last
        def _invert_temperature(self, temp_centi_c, previous_centi_c=None):
            return answers[-2]

    bus.read_i2c_block_data = recording_read
    other = (41000, 37000, 23000, 23500, 33000, 28000)
    last_time_s, checked = None, 0
    for step in range(120):
        if step == 60:  # the part is swapped: missing for an update, then one with other coefficients
            bus.detach(chip.address)
            run(1)
            chip = bus.attach(SameD2(coefficients=other))
        temperature_c = 15.0 if step < 30 else 15.0 - 0.004 * step
        chip.set_environment(pressure_pa=90000.0 - 7.3 * step, temperature_c=temperature_c)
        run(1)
        reading = driver.reading
        if reading.healthy and reading.time_s != last_time_s:
            last_time_s = reading.time_s
            temp_centi_c, expected_pa = compensate(chip.coefficients, answers[-1], answers[-2])
            assert (reading.pressure_pa, reading.temperature_c) == (float(expected_pa), temp_centi_c / 100.0)
            checked += 1
    assert checked >= 55 and driver.coefficients == other and driver.stats.reinits == 1
    assert len(set(answers[0:20:2])) == 1 and len(set(answers[30:58:2])) > 5  # D2 held, then moved


def test_pressure_code_worked_out_only_when_asked_is_the_sampled_pressure():
    """The model works D1 out only for a pressure conversion.  Every code the driver reads equals the code of a
    twin asked for both codes at every conversion, and every D1 compensates (with the model's D2 of the same
    sample) to the pressure the test expects at that conversion: through pressure and temperature moves, bias,
    drift, an out-of-range fault and the chip sticking (frozen at the last sample, after either conversion)."""
    driver, chip, clock, run = make()
    twin = MS5611Chip()
    bus = driver.bus
    read, write = bus.read_i2c_block_data, bus.write_byte
    last_command = [None]
    sampled_pa = [None]
    environment = {}
    checked = {1: 0, 2: 0}

    def recording_write(i2c_addr, value, force=None):
        last_command[0] = value
        return write(i2c_addr, value, force)

    def checking_read(i2c_addr, register, length, force=None):
        data = read(i2c_addr, register, length, force)
        if register == 0x00:
            now_s, env = clock.now_s, environment
            if not env["stuck"] or sampled_pa[0] is None:
                drift_pa = env["drift"][0] * (now_s - env["drift"][1]) if now_s > env["drift"][1] else 0.0
                sampled_pa[0] = (500.0 if env["out_of_range"] else env["pressure_pa"]) + env["bias"] + drift_pa
            d1, d2 = twin.raw_values(now_s)
            answer = (data[0] << 16) | (data[1] << 8) | data[2]
            kind = 1 if last_command[0] < 0x50 else 2
            assert answer == (d1 if kind == 1 else d2)
            if kind == 1:
                assert compensate(chip.coefficients, answer, d2)[1] == math.floor(sampled_pa[0] + 0.5)
            checked[kind] += 1
        return data

    bus.read_i2c_block_data, bus.write_byte = checking_read, recording_write
    for step in range(400):
        environment.update(pressure_pa=70000.0 + 13.7 * step, bias=25.0 if 50 <= step < 100 else 0.0,
                           drift=(3.0, 4.0) if 100 <= step < 150 else (0.0, 0.0), out_of_range=150 <= step < 170,
                           stuck=step in range(200, 231) or step in range(301, 320))
        for part in (chip, twin):
            part.set_environment(pressure_pa=environment["pressure_pa"], temperature_c=20.0 - 0.011 * step)
            faults = part.faults
            faults.bias_pa = environment["bias"]
            faults.drift_pa_per_s, faults.drift_start_s = environment["drift"]
            faults.out_of_range, faults.stuck = environment["out_of_range"], environment["stuck"]
        run(1)
    assert checked[1] > 150 and checked[2] > 150
