"""Sensor errors of the simulated board (seeded barometer / GPS / power noise, barometer bias) and the battery sag
fault, seen below and through the real drivers."""

from __future__ import annotations

import statistics
from pathlib import Path

import pytest

from flightsw.config.check import load_board_of
from hil.faults import FaultInjector
from hil.physics.balloon import BalloonWorld
from hil.physics.config import WorldConfig
from hil.scenario import FaultSpec
from hil.sim import GPS_ALTITUDE_SIGMA_M, MS5611_NOISE_PA, SimulatedBoard, barometer_noise_pa

HIL_BOARD = Path(__file__).resolve().parent.parent / "config" / "boards" / "hil.yaml"
STEP_S = 0.05


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def make_board(seed: int = 1, **options):
    clock = Clock()
    world = BalloonWorld(WorldConfig(), seed=seed)
    board = SimulatedBoard(load_board_of(HIL_BOARD), world, now_s=clock, seed=seed, **options)
    return board, world, clock


def run(board, clock, seconds: float, each=None):
    """Advance the board in frame steps, calling ``each()`` after every step."""
    for _ in range(round(seconds / STEP_S)):
        clock.now += STEP_S
        board.advance(clock.now)
        if each is not None:
            each()


def pressure_errors(board, world, clock, name: str, seconds: float) -> list[float]:
    """Per frame: what barometer ``name``'s chip senses minus the true pressure (Pa)."""
    chip = board.barometer_chips[name]
    errors: list[float] = []
    run(board, clock, seconds, lambda: errors.append(chip.pressure_pa - world.state.pressure_pa))
    return errors


def test_noise_figures_follow_the_datasheets():
    assert barometer_noise_pa("ms5611", 4096) == 1.2 == MS5611_NOISE_PA[4096]
    assert barometer_noise_pa("ms5611", 256) > barometer_noise_pa("ms5611", 1024) > barometer_noise_pa("ms5611", 4096)
    assert 0.5 <= barometer_noise_pa("bmp388") <= 3.0 and 0.5 <= barometer_noise_pa("bmp280") <= 3.0


def test_barometer_errors_are_gaussian_noise_around_a_constant_per_chip_bias():
    board, world, clock = make_board(seed=4, baro_bias_spread_pa=2.0)
    for name in ("baro0", "baro1"):
        errors = pressure_errors(board, world, clock, name, 60.0)
        bias_pa = board.barometer_bias_pa[name]
        assert statistics.mean(errors) == pytest.approx(bias_pa, abs=0.15)
        assert statistics.pstdev(errors) == pytest.approx(board.barometer_noise_pa[name], rel=0.1)
    assert board.barometer_bias_pa["baro0"] != board.barometer_bias_pa["baro1"]
    assert all(abs(bias) < 8.0 for bias in board.barometer_bias_pa.values())


def test_bias_spread_zero_gives_no_bias_and_noise_off_gives_exact_sensors():
    board, _, _ = make_board(seed=4, baro_bias_spread_pa=0.0)
    assert set(board.barometer_bias_pa.values()) == {0.0}
    exact, exact_world, exact_clock = make_board(seed=4, noise=False)
    assert set(pressure_errors(exact, exact_world, exact_clock, "baro0", 2.0)) == {0.0}
    assert exact.gps_error_m == [0.0, 0.0, 0.0]
    assert exact.power_chips[0].bus_voltage_v == pytest.approx(exact.battery_voltage_v())


def test_same_seed_same_errors_other_seed_other_errors():
    def errors(seed):
        board, world, clock = make_board(seed=seed)
        return pressure_errors(board, world, clock, "baro0", 3.0), list(board.gps_error_m), board.barometer_bias_pa

    assert errors(7) == errors(7)
    assert errors(7)[0] != errors(8)[0] and errors(7)[1] != errors(8)[1] and errors(7)[2] != errors(8)[2]


def test_gps_error_is_metres_and_wanders_slowly():
    board, world, clock = make_board(seed=5)
    history: list[list[float]] = []
    run(board, clock, 30.0, lambda: history.append(list(board.gps_error_m)))
    for before, after in zip(history, history[1:]):
        assert all(abs(a - b) < 0.5 for a, b in zip(before, after))  # correlated, not white
    assert any(abs(sample[2]) > 0.05 for sample in history)
    assert all(abs(sample[2]) < 5 * GPS_ALTITUDE_SIGMA_M for sample in history)


def test_the_real_drivers_see_changing_pressures_and_noisy_gps_and_power():
    board, world, clock = make_board(seed=2)
    hal = board.build_hal()
    readings: dict[str, list[float]] = {baro.name: [] for baro in hal.barometers}
    seen_times: dict[str, float] = {}

    def sense():
        for device in (*hal.barometers, hal.gps, *hal.power_monitors):
            device.update(clock.now)
        for baro in hal.barometers:
            reading = baro.reading
            if reading.healthy and reading.time_s != seen_times.get(baro.name):
                seen_times[baro.name] = reading.time_s
                readings[baro.name].append(reading.pressure_pa)

    run(board, clock, 12.0, sense)
    for name, pressures in readings.items():
        assert len(pressures) > 20, name
        tail = pressures[-30:]
        assert len(set(tail)) > 3, name  # never frozen: a live chip changes by a few counts every few samples
    fix = hal.gps.fix
    assert fix.healthy and abs(fix.altitude_m - world.state.altitude_m) < 5 * GPS_ALTITUDE_SIGMA_M + 10.0
    power = hal.power_monitors[0].reading
    assert power.healthy and abs(power.bus_voltage_v - board.battery_voltage_v()) < 0.1


def test_stuck_fault_freezes_the_noisy_output_bit_for_bit():
    board, world, clock = make_board(seed=2)
    hal = board.build_hal()
    baro0 = hal.barometers[0]
    run(board, clock, 2.0, lambda: baro0.update(clock.now))
    board.barometer_chips[baro0.name].faults.stuck = True
    run(board, clock, 0.5, lambda: baro0.update(clock.now))
    pressures = []
    run(board, clock, 5.0, lambda: (baro0.update(clock.now), pressures.append(baro0.reading.pressure_pa)))
    assert len(set(pressures)) == 1


def test_battery_sag_fault_drops_the_pack_voltage_while_active():
    board, world, clock = make_board(seed=3)
    injector = FaultInjector((FaultSpec(kind="battery_sag", at_s=1.0, duration_s=2.0, magnitude=4.0),),
                             board=board, world=world, vehicle_link=None)
    quantity = {"time_s": 0.0}.get
    healthy_v = board.battery_voltage_v()
    assert 12.0 < healthy_v <= 12.6  # a fresh 3S pack
    clock.now = 1.0
    injector.update(1.0, quantity)
    assert board.battery_sag_v == 4.0
    assert board.battery_voltage_v() == pytest.approx(healthy_v - 4.0, abs=0.05)
    run(board, clock, 0.1)
    assert board.power_chips[0].bus_voltage_v == pytest.approx(healthy_v - 4.0, abs=0.1)
    injector.update(3.0, quantity)
    assert board.battery_sag_v == 0.0 and board.battery_voltage_v() == pytest.approx(healthy_v, abs=0.05)
