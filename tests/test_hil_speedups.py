"""The cheap paths of the simulated world keep its behaviour: table-drawn noise keeps its spread and its seed,
the chip models' fast inversions still pick the code closest to the truth, the bus time handed over by the board is
the time of the last advance, and observing the GPS errors never changes a run."""

from __future__ import annotations

import math
import random
import statistics
from pathlib import Path

import pytest

from flightsw.config.check import load_board_of
from hal.bmp388 import coefficients, compensate_pressure, compensate_temperature
from hal.ms5611 import temperature_terms
from hil.chips import ChipModel, nearest_root_code, newton_step_limit
from hil.chips.bmp388 import TYPICAL_NVM, BMP388Chip
from hil.chips.ms5611 import MS5611Chip
from hil.fakebus import FakeSMBus
from hil.fakegps import FakeUbloxSerial
from hil.physics.balloon import BalloonWorld
from hil.physics.config import WorldConfig
from hil.sim import (
    BASE_CURRENT_A,
    GPS_ALTITUDE_SIGMA_M,
    NOISE_TABLE_BITS,
    PIN_HISTORY,
    VALVE_CURRENT_A,
    SimulatedBoard,
    unit_normal_table,
    unit_normals,
)

HIL_BOARD = Path(__file__).resolve().parent.parent / "config" / "boards" / "hil.yaml"
FRAME_S = 0.05


def make_board(seed: int = 1, **options):
    world = BalloonWorld(WorldConfig(), seed=seed)
    now = [0.0]
    board = SimulatedBoard(load_board_of(HIL_BOARD), world, now_s=lambda: now[0], seed=seed, **options)
    return board, world, now


def frames(board, now, count: int, step_s: float = FRAME_S, each=None) -> None:
    for _ in range(count):
        now[0] += step_s
        board.advance(now[0])
        if each is not None:
            each()


# ---------------------------------------------------------------- noise


def test_normal_table_is_symmetric_with_unit_spread_and_cut_tails():
    table = unit_normal_table(NOISE_TABLE_BITS)
    assert len(table) == 1 << NOISE_TABLE_BITS
    assert list(table) == sorted(table)
    assert math.fsum(v * v for v in table) / len(table) == pytest.approx(1.0, abs=1e-12)
    assert all(a == pytest.approx(-b, abs=1e-9) for a, b in zip(table[:100], reversed(table[-100:])))
    assert 4.0 < table[-1] < 4.6  # tails beyond ~4.3 sigma are cut off
    assert table[len(table) // 2] == pytest.approx(0.0, abs=1e-4)


def test_table_normals_are_seeded_and_have_the_right_moments():
    first = unit_normals(random.Random("a"), 40_000)
    assert first == unit_normals(random.Random("a"), 40_000)
    assert first != unit_normals(random.Random("b"), 40_000)
    assert statistics.fmean(first) == pytest.approx(0.0, abs=0.02)
    assert statistics.pstdev(first) == pytest.approx(1.0, abs=0.02)
    assert sum(abs(v) > 2.0 for v in first) / len(first) == pytest.approx(0.0455, abs=0.006)


def test_table_normals_are_the_table_entries_the_random_indices_pick():
    """The draws come from a packed copy of the table: the same values as indexing the table itself."""
    table = unit_normal_table(NOISE_TABLE_BITS)
    for seed in range(3):
        rng, twin = random.Random(seed), random.Random(seed)
        for count in (1, 4, 1024 * 4, 6):
            raw = twin.randbytes(2 * count)
            indices = [raw[i] | (raw[i + 1] << 8) for i in range(0, len(raw), 2)]
            assert unit_normals(rng, count) == [table[i] for i in indices]


# ---------------------------------------------------------------- inversions


def test_nearest_root_code_is_the_closest_integer_and_refuses_unreachable_targets():
    rng = random.Random(3)
    for _ in range(300):
        a0, a1 = rng.uniform(-1e5, 1e5), rng.choice((-1, 1)) * rng.uniform(0.005, 2.0)
        a2, a3 = a1 * rng.uniform(-1e-9, 1e-9), a1 * rng.uniform(-1e-16, 1e-16)
        root = rng.uniform(1000.0, 1_000_000.0)
        target = a0 + a1 * root + a2 * root ** 2 + a3 * root ** 3
        code = nearest_root_code(a0, a1, a2, a3, target, root + rng.uniform(-5000.0, 5000.0), 0, 2_000_000)
        forward = [a0 + a1 * x + a2 * x * x + a3 * x ** 3 for x in (code - 1, code, code + 1)]
        assert abs(forward[1] - target) <= min(abs(forward[0] - target), abs(forward[2] - target)) + 1e-6
    assert nearest_root_code(0.0, 1.0, 0.0, 0.0, 5000.0, 10.0, 0, 1000) is None  # root beyond the range


def closest_pressure_code(c, t_lin: float, target_pa: float, code: int) -> bool:
    """Whether ``code`` is the closest of its neighbours to ``target_pa`` (within a rounding hair)."""
    errors = [abs(compensate_pressure(c, u, t_lin) - target_pa) for u in (code - 1, code, code + 1)]
    return errors[1] <= min(errors[0], errors[2]) + 1e-6


def test_bmp388_codes_stay_closest_through_small_moves_big_jumps_and_temperature_changes():
    chip = BMP388Chip()
    c = coefficients(TYPICAL_NVM)
    rng = random.Random(5)
    pressure_pa, temperature_c = 101325.0, 25.0
    for i in range(600):
        if i % 50 == 0:
            pressure_pa, temperature_c = rng.uniform(30000.0, 125000.0), rng.uniform(-40.0, 60.0)  # a jump
        pressure_pa += rng.gauss(0.0, 5.0)
        temperature_c += rng.gauss(0.0, 0.003)
        chip.set_environment(pressure_pa=pressure_pa, temperature_c=temperature_c)
        up, ut = chip.raw_values()
        t_lin = compensate_temperature(c, ut)
        assert abs(t_lin - temperature_c) < 0.0006  # 1 mdegC steps, to within a code
        assert closest_pressure_code(c, t_lin, pressure_pa, up), (i, pressure_pa, temperature_c)


def test_ms5611_temperature_code_from_the_last_solution_matches_a_fresh_solve():
    chip = MS5611Chip()
    temperature_c = 35.0
    rng = random.Random(8)
    for i in range(400):
        temperature_c += -0.02 if i < 300 else rng.uniform(-20.0, 20.0)  # a slow cooling, then jumps
        chip.set_environment(pressure_pa=80000.0, temperature_c=temperature_c)
        fresh = MS5611Chip()  # solves from the datasheet guess
        fresh.set_environment(pressure_pa=80000.0, temperature_c=temperature_c)
        centi_c = temperature_terms(chip.coefficients, chip.raw_values()[1])[0]
        assert abs(centi_c - temperature_c * 100.0) <= 0.5 + 1e-6
        assert centi_c == temperature_terms(fresh.coefficients, fresh.raw_values()[1])[0]


# ---------------------------------------------------------------- bus


class Recorder(ChipModel):
    def __init__(self, address: int) -> None:
        super().__init__(address)
        self.times: list = []

    def i2c_write(self, data, now_s):
        self.times.append(now_s)

    def i2c_read(self, register, length, now_s):
        self.times.append(now_s)
        return [register] * length


def test_bus_without_clock_hands_over_its_time_attribute():
    bus = FakeSMBus()
    chip = bus.attach(Recorder(0x40))
    bus.read_i2c_block_data(0x40, 1, 2)
    bus.time_s = 12.5
    bus.write_byte(0x40, 3)
    assert bus.read_word_data(0x40, 7) == 0x0707
    assert chip.times == [None, 12.5, 12.5]
    clocked = FakeSMBus(clock=lambda: 3.0)
    clocked.time_s = 99.0  # a clock wins
    clocked_chip = clocked.attach(Recorder(0x41))
    clocked.read_byte_data(0x41, 0)
    assert clocked_chip.times == [3.0]


def test_fast_transfers_keep_nack_bursts_closed_bus_and_counting():
    bus = FakeSMBus()
    chip = bus.attach(Recorder(0x40))
    chip.faults.nack_next(2)
    for transfer in (lambda: bus.read_i2c_block_data(0x40, 0, 2), lambda: bus.write_byte(0x40, 1)):
        with pytest.raises(OSError) as failure:
            transfer()
        assert failure.value.errno == 121
    assert bus.read_word_data(0x40, 2) == 0x0202
    with pytest.raises(OSError):
        bus.read_i2c_block_data(0x50, 0, 1)  # nobody there
    bus.close()
    with pytest.raises(OSError):
        bus.write_byte(0x40, 1)
    assert bus.transactions == 4  # the two NACKed, the good one and the one to the empty address


# ---------------------------------------------------------------- board


def test_board_bus_time_follows_the_advances():
    board, _, now = make_board(seed=2)
    assert board.bus.time_s == 0.0
    frames(board, now, 3)
    assert board.bus.time_s == pytest.approx(3 * FRAME_S)


def test_reading_the_gps_errors_never_changes_a_run():
    def run(observe: bool):
        board, _, now = make_board(seed=9)
        pressures: list[float] = []
        chip = board.barometer_chips["baro0"]
        frames(board, now, 120, each=lambda: (pressures.append(chip.pressure_pa),
                                             board.gps_error_m if observe else None))
        return pressures, board.gps_error_m

    assert run(True) == run(False)


def test_gps_errors_are_continuous_and_keep_their_spread():
    ups: list[float] = []
    for seed in range(8):
        board, _, now = make_board(seed=seed)
        frames(board, now, 600, step_s=1.0, each=lambda: ups.append(board.gps_error_m[2]))
    assert statistics.pstdev(ups) == pytest.approx(GPS_ALTITUDE_SIGMA_M, rel=0.25)
    board, _, now = make_board(seed=4)
    history: list[list[float]] = []
    frames(board, now, 100, each=lambda: history.append(board.gps_error_m))
    assert all(abs(a - b) < 0.2 for before, after in zip(history, history[1:]) for a, b in zip(before, after))


def test_power_chips_see_the_pack_voltage_and_the_load_of_the_open_valves():
    board, _, now = make_board(seed=3, noise=False)
    valve = board.pins.pin(board.board.outputs.ballast_valve.pin)
    valve.function = "output"
    valve.state = board.board.outputs.ballast_valve.active_high
    frames(board, now, 4)
    chip = board.power_chips[0]
    assert board.current_a == pytest.approx(BASE_CURRENT_A + VALVE_CURRENT_A)
    assert chip.current_a == board.current_a
    assert chip.bus_voltage_v == pytest.approx(board.battery_voltage_v(), abs=1e-12)
    assert board.battery_charge_ah < 20.0


def test_barometer_error_tables_are_read_only():
    board, _, _ = make_board(seed=1)
    with pytest.raises(TypeError):
        board.barometer_bias_pa["baro0"] = 0.0  # fixed for the run: the frames use the values drawn at start


def test_gps_truth_callback_runs_once_per_epoch_just_before_it():
    port = FakeUbloxSerial(rate_hz=1.0)
    port.advance(0.0)  # the first epoch, before any truth
    seen: list[float] = []

    def before_epoch(now_s: float) -> None:
        seen.append(now_s)
        port.set_truth(52.0, 0.1, 1000.0, now_s=now_s)

    for step in range(1, 61):
        port.advance(step * FRAME_S, before_epoch)
    assert seen == pytest.approx([1.0, 2.0, 3.0])
    assert port.epochs_sent == 4  # the one at time 0 (no truth yet: no fix) and three with the truth
    text = port.read(10_000).decode("ascii")
    assert text.count("GGA,") == 4 and ",5200.00000,N," in text


def test_newton_step_limit_bounds_the_error_of_one_step_and_refuses_non_monotone_polynomials():
    rng = random.Random(11)
    for _ in range(200):
        a0, a1 = rng.uniform(-1e5, 1e5), rng.choice((-1, 1)) * rng.uniform(0.005, 2.0)
        a2, a3 = a1 * rng.uniform(-1e-7, 1e-7), a1 * rng.uniform(-1e-13, 1e-13)
        limit = newton_step_limit(a1, a2, a3, 1_000_000)
        if limit == 0.0:
            continue
        root = rng.uniform(0.0, 1_000_000.0)
        x = min(max(root + rng.uniform(-limit, limit), 0.0), 1_000_000.0)
        f = a0 + root * (a1 + root * (a2 + root * a3))
        step = (f - (a0 + x * (a1 + x * (a2 + x * a3)))) / (a1 + x * (2.0 * a2 + 3.0 * a3 * x))
        if abs(step) < limit:
            assert abs(x + step - root) <= 0.05 + 1e-6
    assert newton_step_limit(1.0, -1e-3, 0.0, 1_000_000) == 0.0  # the slope changes sign at 500
    assert newton_step_limit(1.0, 0.0, 0.0, 1000) == math.inf  # a straight line: any step is exact


def test_a_simulated_pin_remembers_only_its_last_level_changes_and_still_reads_its_level():
    board, _, _ = make_board()
    hal = board.build_hal()
    line = hal.outputs.termination_heartbeat
    pin = board.pins.pin(board.board.outputs.termination_heartbeat.pin)
    for toggle in range(10 * PIN_HISTORY):
        if toggle % 2:
            line.deactivate()
        else:
            line.activate(math.inf)
        assert line.is_active == (toggle % 2 == 0)
    assert len(pin.states) == PIN_HISTORY
    assert [state.state for state in pin.states][-2:] == [True, False]
    hal.close()
