"""The simulated board: the balloon world wired to emulated chips, a fake GPS and mock GPIO pins.

:class:`SimulatedBoard` builds the HIL board profile's devices exactly as a real board's are built
(``hal.board.build_hal``), but on a :class:`hil.fakebus.FakeSMBus` of chip models, a
:class:`hil.fakegps.FakeUbloxSerial` and gpiozero ``MockFactory`` pins.  Each time the simulated clock advances,
:meth:`SimulatedBoard.advance` reads the output pins as the world's inputs (valves, burn wires), steps the physics,
and feeds the new truth to the chips and the GPS.

Sensor errors are seeded from the board's seed (same seed, same run) and drawn on every feed of the devices:

* barometers: white gaussian pressure noise of the chip's datasheet RMS figure at the oversampling its driver
  uses (:func:`barometer_noise_pa`), plus a constant per-chip bias drawn once from ``N(0, baro_bias_spread_pa)``;
* GPS: slowly wandering position errors (first-order Gauss-Markov, ``GPS_ERROR_TIME_CONSTANT_S``) of
  ``GPS_ALTITUDE_SIGMA_M`` vertically and ``GPS_HORIZONTAL_SIGMA_M`` per horizontal axis;
* power monitor: white noise on the bus voltage and the current.

The battery is a 3S lithium pack (12.6 V full, 9.6 V empty); ``battery_sag_v`` (the ``battery_sag`` fault, e.g. a
failed cell) is subtracted from its voltage.
"""

from __future__ import annotations

import math
import random
from typing import Any

from gpiozero.pins.mock import MockFactory

from hal.board import build_hal
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
POWER_VOLTAGE_SIGMA_V = 0.005
POWER_CURRENT_SIGMA_A = 0.005

_BAROMETER_MODELS = {"ms5611": MS5611Chip, "bmp280": BMP280Chip, "bmp388": BMP388Chip}


def barometer_noise_pa(chip: str, oversampling: int = 4096) -> float:
    """RMS pressure noise (Pa) of one reading of barometer ``chip`` ("ms5611", "bmp280", "bmp388");
    ``oversampling`` is the MS5611's ratio (the Bosch drivers use fixed settings)."""
    if chip == "ms5611":
        return MS5611_NOISE_PA[oversampling]
    return BMP388_NOISE_PA if chip == "bmp388" else BMP280_NOISE_PA


class SimulatedBoard:
    """The HIL board.  ``board`` is a board profile; ``world`` the physics; ``clock`` the simulated clock whose
    ``on_advance`` hook must call :meth:`advance` (the runner wires it).  ``seed`` seeds the GPS stream and the
    sensor errors; ``baro_bias_spread_pa`` is the spread (1 sigma, Pa) of the barometers' constant biases;
    ``noise`` False makes every sensor exact (no noise, no bias)."""

    def __init__(self, board: Any, world: BalloonWorld, *, now_s: callable, seed: int = 0,
                 gps_rate_hz: float = 1.0, baro_bias_spread_pa: float = DEFAULT_BARO_BIAS_SPREAD_PA,
                 noise: bool = True) -> None:
        self.board = board
        self.world = world
        self.bus = FakeSMBus(board.i2c_bus, clock=now_s)
        self.noise = noise
        self.noise_rng = random.Random(f"sensor-noise-{seed}")
        rng = self.noise_rng
        self.barometer_chips: dict[str, Any] = {}
        self.barometer_noise_pa: dict[str, float] = {}  # RMS noise of one reading, per barometer name
        self.barometer_bias_pa: dict[str, float] = {}   # constant error, per barometer name
        for config in board.barometers:
            chip = _BAROMETER_MODELS[config.chip](config.address)
            self.bus.attach(chip)
            name = config.name or f"{config.chip}@{config.address:#04x}"
            self.barometer_chips[name] = chip
            self.barometer_noise_pa[name] = barometer_noise_pa(config.chip, config.oversampling) if noise else 0.0
            self.barometer_bias_pa[name] = rng.gauss(0.0, baro_bias_spread_pa) if noise else 0.0
        # GPS errors (north m, east m, up m), started from their stationary distribution
        sigmas = (GPS_HORIZONTAL_SIGMA_M, GPS_HORIZONTAL_SIGMA_M, GPS_ALTITUDE_SIGMA_M)
        self._gps_sigmas_m = sigmas if noise else (0.0, 0.0, 0.0)
        self.gps_error_m = [rng.gauss(0.0, sigma) for sigma in self._gps_sigmas_m]
        self.power_chips: list[Any] = []
        for config in board.power_monitors:
            model = INA226Chip if config.chip == "ina226" else INA219Chip
            chip = model(config.address, shunt_ohm=config.shunt_ohm)
            self.bus.attach(chip)
            self.power_chips.append(chip)
        state = world.state
        self.gps_port = FakeUbloxSerial(rate_hz=gps_rate_hz, seed=seed, start_utc_s=state.utc_s)
        self.pins = MockFactory()
        self.inputs = WorldInputs()
        self._lines = {role: (self.pins.pin(getattr(board.outputs, role).pin), getattr(board.outputs, role).active_high)
                       for role in ("ballast_valve", "vent_valve", "release_fire", "cutdown_fire")}
        self.release_burns = 0
        self.cutdown_burns = 0
        self.fail_cutdown_burns = 0  # fault: this many cutdown burns do nothing (a broken burn wire)
        self._release_was_on = False
        self._cutdown_was_on = False
        self.gondola_temperature_k = state.air_temperature_k + GONDOLA_HEATING_K
        self.battery_charge_ah = BATTERY_CAPACITY_AH
        self.battery_sag_v = 0.0  # fault: volts lost from the pack (a failed cell)
        self.current_a = BASE_CURRENT_A
        self._last_power_s: float | None = None  # simulated time of the last power / device update
        self._last_feed_s: float | None = None
        self.hal: Hal | None = None
        self._feed_devices(0.0)

    def build_hal(self) -> Hal:
        """Construct the daemon's HAL on this board (again after a simulated brown-out)."""
        self.hal = build_hal(self.board, bus=self.bus, gps_port=self.gps_port, pin_factory=self.pins,
                             simulated=True)
        return self.hal

    def power_cycle(self) -> None:
        """A brown-out: every output pin drops to its inactive level as the board resets."""
        for pin in self.pins.pins.values():
            if hasattr(pin, "function") and pin.function == "output":
                try:
                    pin.close()
                except Exception:  # noqa: BLE001 - mock pins of a dead process
                    pass
        self.pins.reset()
        self._lines = {role: (self.pins.pin(getattr(self.board.outputs, role).pin),
                              getattr(self.board.outputs, role).active_high)
                       for role in ("ballast_valve", "vent_valve", "release_fire", "cutdown_fire")}
        for chip in (*self.barometer_chips.values(), *self.power_chips):
            chip.faults.reset()

    # ------------------------------------------------------------ lockstep

    def line_active(self, role: str) -> bool:
        pin, active_high = self._lines[role]
        return bool(pin.state) == active_high

    def advance(self, now_s: float) -> None:
        """Step the world to ``now_s`` with the outputs as the pins show them now."""
        inputs = self.inputs
        inputs.ballast_valve_open = self.line_active("ballast_valve")
        inputs.vent_valve_open = self.line_active("vent_valve")
        release_on = self.line_active("release_fire")
        cutdown_on = self.line_active("cutdown_fire")
        if release_on and not self._release_was_on:
            self.release_burns += 1
        if cutdown_on and not self._cutdown_was_on:
            self.cutdown_burns += 1
        self._release_was_on, self._cutdown_was_on = release_on, cutdown_on
        inputs.release_burn_on = release_on
        inputs.cutdown_burn_on = cutdown_on and self.cutdown_burns > self.fail_cutdown_burns
        world = self.world
        dt_s = now_s - world.state.time_s
        while dt_s > 1e-9:
            step_s = min(dt_s, PHYSICS_MAX_STEP_S)
            world.step(step_s, inputs)
            dt_s -= step_s
        self._update_power(inputs, now_s)
        self._feed_devices(now_s)

    def _update_power(self, inputs: WorldInputs, now_s: float) -> None:
        current_a = BASE_CURRENT_A
        current_a += VALVE_CURRENT_A * (inputs.ballast_valve_open + inputs.vent_valve_open)
        current_a += BURN_CURRENT_A * (inputs.release_burn_on + inputs.cutdown_burn_on)
        self.current_a = current_a
        last_s = now_s if self._last_power_s is None else self._last_power_s
        self.battery_charge_ah = max(0.0, self.battery_charge_ah - current_a * (now_s - last_s) / 3600)
        self._last_power_s = now_s

    def battery_voltage_v(self) -> float:
        """A 3S lithium pack: 12.6 V full, 9.6 V empty, sagging under load and in the cold, less
        ``battery_sag_v`` (fault)."""
        state_of_charge = self.battery_charge_ah / BATTERY_CAPACITY_AH
        cold_sag_v = max(0.0, (263.0 - self.gondola_temperature_k) * 0.01)
        return (9.6 + 3.0 * math.sqrt(state_of_charge) - 0.05 * self.current_a - cold_sag_v
                - self.battery_sag_v)

    def _step_gps_error(self, dt_s: float) -> None:
        """Advance the Gauss-Markov GPS errors by ``dt_s`` (exact discretisation: any step keeps the spread)."""
        if dt_s <= 0.0 or not self.noise:
            return
        decay = math.exp(-dt_s / GPS_ERROR_TIME_CONSTANT_S)
        drive = math.sqrt(1.0 - decay * decay)
        gauss = self.noise_rng.gauss
        errors = self.gps_error_m
        for axis, sigma_m in enumerate(self._gps_sigmas_m):
            errors[axis] = decay * errors[axis] + sigma_m * drive * gauss(0.0, 1.0)

    def _feed_devices(self, now_s: float) -> None:
        state = self.world.state
        dt_s = 0.0 if self._last_feed_s is None else now_s - self._last_feed_s
        self._last_feed_s = now_s
        target_k = state.air_temperature_k + GONDOLA_HEATING_K
        self.gondola_temperature_k += (target_k - self.gondola_temperature_k) * min(1.0, dt_s / GONDOLA_TIME_CONSTANT_S)
        temperature_c = self.gondola_temperature_k - KELVIN
        gauss = self.noise_rng.gauss
        for name, chip in self.barometer_chips.items():
            sigma_pa = self.barometer_noise_pa[name]
            error_pa = self.barometer_bias_pa[name] + (gauss(0.0, sigma_pa) if sigma_pa else 0.0)
            chip.set_environment(pressure_pa=state.pressure_pa + error_pa, temperature_c=temperature_c)
        voltage_v = self.battery_voltage_v()
        for chip in self.power_chips:
            if self.noise:
                chip.set_power(bus_voltage_v=voltage_v + gauss(0.0, POWER_VOLTAGE_SIGMA_V),
                               current_a=self.current_a + gauss(0.0, POWER_CURRENT_SIGMA_A))
            else:
                chip.set_power(bus_voltage_v=voltage_v, current_a=self.current_a)
        self._step_gps_error(dt_s)
        north_m, east_m, up_m = self.gps_error_m
        latitude_deg = state.latitude_deg + north_m / METRES_PER_DEGREE_LATITUDE
        metres_per_degree_longitude = METRES_PER_DEGREE_LATITUDE * max(0.01, math.cos(math.radians(latitude_deg)))
        longitude_deg = state.longitude_deg + east_m / metres_per_degree_longitude
        self.gps_port.set_truth(latitude_deg, longitude_deg, state.altitude_m + up_m, state.ground_speed_mps,
                                state.course_deg, utc_time_s=state.utc_s, now_s=now_s)
        self.gps_port.advance(now_s)
