"""The simulated board: the balloon world wired to emulated chips, a fake GPS and mock GPIO pins.

:class:`SimulatedBoard` builds the HIL board profile's devices exactly as a real board's are built
(``hal.board.build_hal``), but on a :class:`hil.fakebus.FakeSMBus` of chip models, a
:class:`hil.fakegps.FakeUbloxSerial` and gpiozero ``MockFactory`` pins.  Each time the simulated clock advances,
:meth:`SimulatedBoard.advance` reads the output pins as the world's inputs (valves, burn wires), steps the physics,
and feeds the new truth to the chips and the GPS.

Sensor errors are seeded from the board's seed (same seed, same run) and drawn on every :meth:`advance`.
The per-frame draws come from :func:`unit_normals`: blocks of standard-normal values picked from a table of
quantiles (:func:`unit_normal_table`) by random 16-bit indices of the seeded generator, which is several times
cheaper than ``random.gauss`` and keeps the unit spread:

* barometers: white gaussian pressure noise of the chip's datasheet RMS figure at the oversampling its driver
  uses (:func:`barometer_noise_pa`), plus a constant per-chip bias drawn once from ``N(0, baro_bias_spread_pa)``;
* GPS: slowly wandering position errors (first-order Gauss-Markov, ``GPS_ERROR_TIME_CONSTANT_S``) of
  ``GPS_ALTITUDE_SIGMA_M`` vertically and ``GPS_HORIZONTAL_SIGMA_M`` per horizontal axis, drawn from their own
  seeded stream on a ``GPS_ERROR_STEP_S`` grid of simulated time (exact discretisation) and interpolated linearly
  in between; they are evaluated only when read (by the receiver once per epoch), so reading them never changes a
  run;
* power monitor: white noise on the bus voltage and the current.

The battery is a 3S lithium pack (12.6 V full, 9.6 V empty); ``battery_sag_v`` (the ``battery_sag`` fault, e.g. a
failed cell) is subtracted from its voltage.
"""

from __future__ import annotations

import errno
import math
import random
import sys
from array import array
from collections import deque
from collections.abc import Mapping
from functools import cache
from statistics import NormalDist
from types import MappingProxyType
from typing import Any

from gpiozero.pins.mock import MockFactory, MockPin

from hal.board import build_hal, device_name
from hal.gpio import OUTPUT_ROLES
from hal.interfaces import Hal
from hil.chips.bmp280 import BMP280Chip
from hil.chips.bmp388 import BMP388Chip
from hil.chips.ina2xx import INA219Chip, INA226Chip
from hil.chips.ms5611 import MS5611Chip
from hil.fakebus import FakeSMBus
from hil.fakegps import FakeUbloxSerial
from hil.physics.balloon import BalloonWorld, WorldInputs

KELVIN = 273.15
GONDOLA_TIME_CONSTANT_S = 1800.0
GONDOLA_HEATING_K = 25.0  # electronics keep the insulated gondola this much above the air
BATTERY_CAPACITY_AH = 20.0
BASE_CURRENT_A = 0.35
VALVE_CURRENT_A = 0.5
BURN_CURRENT_A = 2.0
PHYSICS_MAX_STEP_S = 0.05
METRES_PER_DEGREE_LATITUDE = 111_320.0

#: MS5611 RMS pressure noise (Pa) of one reading per oversampling ratio: the datasheet's "resolution RMS"
#: (0.065 / 0.042 / 0.027 / 0.018 / 0.012 mbar for OSR 256 .. 4096).  The chip's 1 Pa output step comes on top.
MS5611_NOISE_PA = {256: 6.5, 512: 4.2, 1024: 2.7, 2048: 1.8, 4096: 1.2}
#: BMP388 at the driver's settings (pressure x8, IIR filter off).  The datasheet's recommended-settings table gives
#: about 11 cm (~1.3 Pa at sea level) for x8; its sub-0.1 Pa headline figures need the highest oversampling and a
#: strong IIR filter, which the driver does not configure.
BMP388_NOISE_PA = 1.3
#: BMP280 at the driver's settings (pressure x16): the datasheet's noise table scaled from its x1 / x2 figures
#: (26.4 / 20.8 cm unfiltered) to x16.
BMP280_NOISE_PA = 1.0
DEFAULT_BARO_BIAS_SPREAD_PA = 2.0
GPS_ALTITUDE_SIGMA_M = 3.0
GPS_HORIZONTAL_SIGMA_M = 1.0  # per axis: about 1.4 m horizontal RMS
GPS_ERROR_TIME_CONSTANT_S = 60.0
GPS_ERROR_STEP_S = 1.0  # grid of the GPS error draws, s
#: per GPS_ERROR_STEP_S the errors decay by this factor and take this much of their spread in new noise
_GPS_ERROR_DECAY = math.exp(-GPS_ERROR_STEP_S / GPS_ERROR_TIME_CONSTANT_S)
_GPS_ERROR_DRIVE = math.sqrt(1.0 - _GPS_ERROR_DECAY * _GPS_ERROR_DECAY)
POWER_VOLTAGE_SIGMA_V = 0.005
POWER_CURRENT_SIGMA_A = 0.005

#: log2 of the size of the standard-normal table the per-frame noise is drawn from (16: 2-byte indices).
NOISE_TABLE_BITS = 16
#: frames of sensor noise drawn at a time
NOISE_BLOCK_FRAMES = 1024
PIN_HISTORY = 64  # level changes a simulated pin remembers (for tests asserting on them)
_LINE_ROLES = ("ballast_valve", "vent_valve", "release_fire", "cutdown_fire")

_BAROMETER_MODELS = {"ms5611": MS5611Chip, "bmp280": BMP280Chip, "bmp388": BMP388Chip}


@cache
def unit_normal_table(bits: int = NOISE_TABLE_BITS) -> tuple[float, ...]:
    """``2**bits`` equally likely standard-normal values: the quantiles at the centres of ``2**bits`` equal
    probability slices, scaled so their RMS is exactly 1.  Indexing it with ``rng.getrandbits(bits)`` draws from
    N(0, 1) quantised to the table (tails beyond about 4.3 sigma are cut off at ``bits`` = 16)."""
    count = 1 << bits
    inv_cdf = NormalDist().inv_cdf
    values = [inv_cdf((i + 0.5) / count) for i in range(count)]
    rms = math.sqrt(math.fsum(v * v for v in values) / count)
    return tuple(v / rms for v in values)


@cache
def _packed_unit_normal_table(bits: int) -> array:
    """``unit_normal_table(bits)`` as packed doubles: a quarter of the memory of a tuple of float objects, so
    random picks from it miss the processor's caches far less often."""
    return array("d", unit_normal_table(bits))


def unit_normals(rng: random.Random, count: int) -> list[float]:
    """``count`` standard-normal values drawn with ``rng``: entries of ``unit_normal_table()`` picked by 16-bit
    little-endian indices of ``rng.randbytes`` (the same values on any platform for the same generator state)."""
    indices = array("H", rng.randbytes(2 * count))
    if sys.byteorder == "big":
        indices.byteswap()
    table = _packed_unit_normal_table(NOISE_TABLE_BITS)
    return [table[index] for index in indices]


def barometer_noise_pa(chip: str, oversampling: int = 4096) -> float:
    """RMS pressure noise (Pa) of one reading of barometer ``chip`` ("ms5611", "bmp280", "bmp388");
    ``oversampling`` is the MS5611's ratio (the Bosch drivers use fixed settings)."""
    if chip == "ms5611":
        return MS5611_NOISE_PA[oversampling]
    return BMP388_NOISE_PA if chip == "bmp388" else BMP280_NOISE_PA


class BoardPin(MockPin):
    """gpiozero's mock pin keeping only its last ``PIN_HISTORY`` level changes in ``states`` (the stock one keeps
    every change: a 48-hour float's termination-heartbeat line alone toggles some 700 000 times).

    Two hooks for the harness: ``fail_writes`` makes that many next writes raise ``OSError`` (EIO) without changing
    the level (the ``line_write_error`` fault), and ``edge_sink(pin, level)`` is called at the moment the
    level changes (the kill test records every edge where a kill can not lose it)."""

    fail_writes = 0
    edge_sink = None

    def clear_states(self) -> None:
        super().clear_states()
        self.states = deque(self.states, maxlen=PIN_HISTORY)

    def _set_state(self, value) -> None:
        if self.fail_writes > 0:
            self.fail_writes -= 1
            raise OSError(errno.EIO, f"{self.info.name}: write failed (injected fault)")
        if self._change_state(bool(value)) and self.edge_sink is not None:
            self.edge_sink(self, bool(value))



def drop_claims_keeping_levels(pins: MockFactory, numbers) -> None:
    """A process holding these output pins died: its claims on them go (``pins`` is reset), and each pin keeps the
    level it had, as a Raspberry Pi's outputs do, until something drives it again."""
    levels = {number: bool(pins.pin(number).state) for number in numbers}
    pins.reset()
    for number, level in levels.items():
        pin = pins.pin(number)
        pin.function = "output"
        pin.state = level


class SimulatedBoard:
    """The HIL board.  ``board`` is a board profile; ``world`` the physics; ``now_s`` reads the simulated clock
    (seconds), whose ``on_advance`` hook must call :meth:`advance` (the runner wires it): the chips' bus time is the
    clock's time at construction, then the time of the last advance.  ``seed`` seeds the GPS stream and the
    sensor errors; ``baro_bias_spread_pa`` is the spread (1 sigma, Pa) of the barometers' constant biases;
    ``noise`` False makes every sensor exact (no noise, no bias)."""

    def __init__(self, board: Any, world: BalloonWorld, *, now_s: callable, seed: int = 0,
                 gps_rate_hz: float = 1.0, baro_bias_spread_pa: float = DEFAULT_BARO_BIAS_SPREAD_PA,
                 noise: bool = True) -> None:
        self.board = board
        self.world = world
        # the bus time is the time of the last advance (the clock's hook calls advance before the time moves),
        # handed to the bus rather than read from the clock on every transaction
        self.bus = FakeSMBus(board.i2c_bus)
        self.noise = noise
        self.noise_rng = random.Random(f"sensor-noise-{seed}")
        rng = self.noise_rng
        self.barometer_chips: dict[str, Any] = {}
        noise_pa: dict[str, float] = {}
        bias_pa: dict[str, float] = {}
        for config in board.barometers:
            chip = _BAROMETER_MODELS[config.chip](config.address)
            self.bus.attach(chip)
            name = device_name(config)
            self.barometer_chips[name] = chip
            noise_pa[name] = barometer_noise_pa(config.chip, config.oversampling) if noise else 0.0
            bias_pa[name] = rng.gauss(0.0, baro_bias_spread_pa) if noise else 0.0
        # fixed for the run (read-only views): RMS noise of one reading and constant error, per barometer name
        self.barometer_noise_pa: Mapping[str, float] = MappingProxyType(noise_pa)
        self.barometer_bias_pa: Mapping[str, float] = MappingProxyType(bias_pa)
        self._barometer_feeds = tuple((chip, noise_pa[name], bias_pa[name])
                                      for name, chip in self.barometer_chips.items())
        # GPS errors (north m, east m, up m) at grid times t and t + GPS_ERROR_STEP_S, the first drawn from their
        # stationary distribution
        sigmas = (GPS_HORIZONTAL_SIGMA_M, GPS_HORIZONTAL_SIGMA_M, GPS_ALTITUDE_SIGMA_M)
        self._gps_sigmas_m = sigmas if noise else (0.0, 0.0, 0.0)
        self._gps_rng = random.Random(f"gps-error-{seed}")
        self._gps_grid_s = 0.0
        self._gps_errors_m = [self._gps_rng.gauss(0.0, sigma) for sigma in self._gps_sigmas_m]
        self._gps_next_errors_m = self._next_gps_errors(self._gps_errors_m)
        self.power_chips: list[Any] = []
        for config in board.power_monitors:
            model = INA226Chip if config.chip == "ina226" else INA219Chip
            chip = model(config.address, shunt_ohm=config.shunt_ohm)
            self.bus.attach(chip)
            self.power_chips.append(chip)
        self._power_sigmas = (POWER_VOLTAGE_SIGMA_V, POWER_CURRENT_SIGMA_A) if noise else (0.0, 0.0)
        # standard-normal values used per frame (one per barometer and power monitor quantity), drawn in blocks
        self._normals_per_frame = len(self.barometer_chips) + 2 * len(self.power_chips)
        self._normals: list[float] = []
        self._normal_index = self._normals_end = 0
        state = world.state
        self.gps_port = FakeUbloxSerial(rate_hz=gps_rate_hz, seed=seed, start_utc_s=state.utc_s)
        self._before_gps_epoch = self._set_gps_truth  # bound once: handed to the receiver every frame
        self.pins = MockFactory(pin_class=BoardPin)
        self._edge_sink = None
        self.inputs = WorldInputs()
        self._wire_lines()
        self.release_burns = 0
        self.cutdown_burns = 0
        self.fail_cutdown_burns = 0  # fault: this many cutdown burns do nothing (a broken burn wire)
        self._release_was_on = False
        self._cutdown_was_on = False
        self.gondola_temperature_k = state.air_temperature_k + GONDOLA_HEATING_K
        self.battery_charge_ah = BATTERY_CAPACITY_AH
        self.battery_sag_v = 0.0  # fault: volts lost from the pack (a failed cell)
        self.current_a = BASE_CURRENT_A
        self._last_advance_s: float | None = None  # simulated time of the last advance
        self.hal: Hal | None = None
        self.advance(0.0)  # the devices start with the world's initial truth
        self.bus.time_s = now_s()

    def build_hal(self) -> Hal:
        """Construct the daemon's HAL on this board (again after a simulated brown-out)."""
        self.hal = build_hal(self.board, bus=self.bus, gps_port=self.gps_port, pin_factory=self.pins,
                             simulated=True)
        return self.hal

    def fail_line_writes(self, role: str, count: int) -> None:
        """Make the next ``count`` writes of output line ``role`` fail (the ``line_write_error`` fault)."""
        outputs = self.board.outputs
        line = getattr(outputs, role, None)
        if line is None:
            raise ValueError(f"no output line {role!r} on board {self.board.name!r}")
        self.pins.pin(line.pin).fail_writes = int(count)

    def set_edge_sink(self, sink) -> None:
        """Call ``sink(role, active, time_s)`` at every level change of an output line, when it happens."""
        outputs = self.board.outputs
        lines = {getattr(outputs, role).pin: (role, getattr(outputs, role).active_high)
                 for role in OUTPUT_ROLES if getattr(outputs, role, None) is not None}
        roles = {self.pins.pin(number).info.name: line for number, line in lines.items()}

        def on_edge(pin, level: bool) -> None:
            role, active_high = roles[pin.info.name]
            sink(role, level == active_high, self.bus.time_s)

        self._edge_sink = sink
        for number in lines:
            self.pins.pin(number).edge_sink = on_edge if sink is not None else None

    def process_died(self) -> None:
        """The daemon's process dies (SIGKILL) without a reboot: its claims on the pins go with it, and the output
        lines keep the levels it drove (a Raspberry Pi's do) until something drives them again."""
        outputs = self.board.outputs
        drop_claims_keeping_levels(self.pins, [getattr(outputs, role).pin for role in OUTPUT_ROLES
                                               if getattr(outputs, role, None) is not None])
        self._wire_lines()
        if self._edge_sink is not None:
            self.set_edge_sink(self._edge_sink)

    def power_cycle(self) -> None:
        """A brown-out: every output pin drops to its inactive level as the board resets."""
        for pin in self.pins.pins.values():
            if hasattr(pin, "function") and pin.function == "output":
                try:
                    pin.close()
                except Exception:  # noqa: BLE001 - mock pins of a dead process
                    pass
        self.pins.reset()
        self._wire_lines()
        if self._edge_sink is not None:
            self.set_edge_sink(self._edge_sink)
        for chip in (*self.barometer_chips.values(), *self.power_chips):
            chip.faults.reset()

    # ------------------------------------------------------------ lockstep

    def _wire_lines(self) -> None:
        outputs = self.board.outputs
        self._lines = {role: (self.pins.pin(getattr(outputs, role).pin), getattr(outputs, role).active_high)
                       for role in _LINE_ROLES}
        self._line_list = tuple(self._lines[role] for role in _LINE_ROLES)

    def line_active(self, role: str) -> bool:
        """Whether the output line of ``role`` ("ballast_valve", "vent_valve", "release_fire", "cutdown_fire")
        is at its active level."""
        pin, active_high = self._lines[role]
        return bool(pin.state) == active_high

    def advance(self, now_s: float) -> None:
        """Step the world to ``now_s`` with the outputs as the pins show them now, then hand the new truth plus
        this frame's sensor errors to the chips and the GPS.  (One method: it runs every frame.)"""
        self.bus.time_s = now_s
        # the lines: MockPin keeps its level in ``_state``; reading it directly skips two calls per line
        (ballast, ballast_high), (vent, vent_high), (release, release_high), (cutdown, cutdown_high) = self._line_list
        inputs = self.inputs
        inputs.ballast_valve_open = bool(ballast._state) == ballast_high
        inputs.vent_valve_open = bool(vent._state) == vent_high
        release_on = bool(release._state) == release_high
        cutdown_on = bool(cutdown._state) == cutdown_high
        if release_on and not self._release_was_on:
            self.release_burns += 1
        if cutdown_on and not self._cutdown_was_on:
            self.cutdown_burns += 1
        self._release_was_on, self._cutdown_was_on = release_on, cutdown_on
        inputs.release_burn_on = release_on
        inputs.cutdown_burn_on = cutdown_on and self.cutdown_burns > self.fail_cutdown_burns
        # the world
        world = self.world
        dt_s = now_s - world.state.time_s
        while dt_s > 1e-9:
            step_s = dt_s if dt_s < PHYSICS_MAX_STEP_S else PHYSICS_MAX_STEP_S
            world.step(step_s, inputs)
            dt_s -= step_s
        state = world.state
        # the gondola and the battery: the load follows the lines, the pack's charge integrates it
        dt_s = 0.0 if self._last_advance_s is None else now_s - self._last_advance_s
        self._last_advance_s = now_s
        lag = dt_s / GONDOLA_TIME_CONSTANT_S
        gondola_k = self.gondola_temperature_k
        gondola_k += (state.air_temperature_k + GONDOLA_HEATING_K - gondola_k) * (lag if lag < 1.0 else 1.0)
        self.gondola_temperature_k = gondola_k
        current_a = (BASE_CURRENT_A + VALVE_CURRENT_A * (inputs.ballast_valve_open + inputs.vent_valve_open)
                     + BURN_CURRENT_A * (inputs.release_burn_on + inputs.cutdown_burn_on))
        self.current_a = current_a
        charge_ah = self.battery_charge_ah - current_a * dt_s / 3600
        self.battery_charge_ah = charge_ah = charge_ah if charge_ah > 0.0 else 0.0
        # battery_voltage_v(), inline
        cold_sag_v = (263.0 - gondola_k) * 0.01
        voltage_v = (9.6 + 3.0 * (charge_ah / BATTERY_CAPACITY_AH) ** 0.5 - 0.05 * current_a
                     - (cold_sag_v if cold_sag_v > 0.0 else 0.0) - self.battery_sag_v)
        # this frame's standard-normal values: normals[k:]
        normals, k = self._normals, self._normal_index
        if k >= self._normals_end:
            normals = self._normals = unit_normals(self.noise_rng, NOISE_BLOCK_FRAMES * self._normals_per_frame)
            self._normals_end = len(normals)
            k = 0
        self._normal_index = k + self._normals_per_frame
        # the chips (assigning their inputs is what set_environment / set_power do)
        pressure_pa = state.pressure_pa
        temperature_c = gondola_k - KELVIN
        for chip, sigma_pa, bias_pa in self._barometer_feeds:
            chip.pressure_pa = pressure_pa + (bias_pa + sigma_pa * normals[k])
            chip.temperature_c = temperature_c
            k += 1
        voltage_sigma_v, current_sigma_a = self._power_sigmas
        for chip in self.power_chips:
            chip.bus_voltage_v = voltage_v + voltage_sigma_v * normals[k]
            chip.current_a = current_a + current_sigma_a * normals[k + 1]
            k += 2
        # the GPS, which takes the truth (with its errors) only when it emits an epoch
        self.gps_port.advance(now_s, self._before_gps_epoch)

    def battery_voltage_v(self) -> float:
        """A 3S lithium pack: 12.6 V full, 9.6 V empty, sagging under load and in the cold, less
        ``battery_sag_v`` (fault)."""
        cold_sag_v = (263.0 - self.gondola_temperature_k) * 0.01
        return (9.6 + 3.0 * (self.battery_charge_ah / BATTERY_CAPACITY_AH) ** 0.5 - 0.05 * self.current_a
                - (cold_sag_v if cold_sag_v > 0.0 else 0.0) - self.battery_sag_v)

    @property
    def gps_error_m(self) -> list[float]:
        """The GPS position errors ``[north m, east m, up m]`` at the time of the last :meth:`advance`."""
        now_s = self._last_advance_s or 0.0
        while now_s >= self._gps_grid_s + GPS_ERROR_STEP_S:
            self._gps_grid_s += GPS_ERROR_STEP_S
            self._gps_errors_m = self._gps_next_errors_m
            self._gps_next_errors_m = self._next_gps_errors(self._gps_errors_m)
        fraction = (now_s - self._gps_grid_s) / GPS_ERROR_STEP_S
        return [a + (b - a) * fraction for a, b in zip(self._gps_errors_m, self._gps_next_errors_m)]

    def _next_gps_errors(self, errors_m: list[float]) -> list[float]:
        """The Gauss-Markov GPS errors one grid step after ``errors_m`` (exact discretisation: keeps the spread)."""
        decay, drive = _GPS_ERROR_DECAY, _GPS_ERROR_DRIVE
        return [decay * error_m + sigma_m * drive * normal
                for error_m, sigma_m, normal in zip(errors_m, self._gps_sigmas_m, unit_normals(self._gps_rng, 3))]

    def _set_gps_truth(self, now_s: float) -> None:
        """Give the receiver the true state plus the GPS errors (called just before it emits an epoch)."""
        state = self.world.state
        north_m, east_m, up_m = self.gps_error_m
        latitude_deg = state.latitude_deg + north_m / METRES_PER_DEGREE_LATITUDE
        metres_per_degree_longitude = METRES_PER_DEGREE_LATITUDE * max(0.01, math.cos(math.radians(latitude_deg)))
        longitude_deg = state.longitude_deg + east_m / metres_per_degree_longitude
        self.gps_port.set_truth(latitude_deg, longitude_deg, state.altitude_m + up_m, state.ground_speed_mps,
                                state.course_deg, utc_time_s=state.utc_s, now_s=now_s)
