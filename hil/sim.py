"""The simulated board: the balloon world wired to emulated chips, a fake GPS and mock GPIO pins.

:class:`SimulatedBoard` builds the HIL board profile's devices exactly as a real board's are built
(``hal.board.build_hal``), but on a :class:`hil.fakebus.FakeSMBus` of chip models, a
:class:`hil.fakegps.FakeUbloxSerial` and gpiozero ``MockFactory`` pins.  Each time the simulated clock advances,
:meth:`SimulatedBoard.advance` reads the output pins as the world's inputs (valves, burn wires), steps the physics,
and feeds the new truth to the chips and the GPS.
"""

from __future__ import annotations

import math
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

_BAROMETER_MODELS = {"ms5611": MS5611Chip, "bmp280": BMP280Chip, "bmp388": BMP388Chip}


class SimulatedBoard:
    """The HIL board.  ``board`` is a board profile; ``world`` the physics; ``clock`` the simulated clock whose
    ``on_advance`` hook must call :meth:`advance` (the runner wires it)."""

    def __init__(self, board: Any, world: BalloonWorld, *, now_s: callable, seed: int = 0,
                 gps_rate_hz: float = 1.0) -> None:
        self.board = board
        self.world = world
        self.bus = FakeSMBus(board.i2c_bus, clock=now_s)
        self.barometer_chips: dict[str, Any] = {}
        for config in board.barometers:
            chip = _BAROMETER_MODELS[config.chip](config.address)
            self.bus.attach(chip)
            self.barometer_chips[config.name or f"{config.chip}@{config.address:#04x}"] = chip
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
        """A 3S lithium pack: 12.6 V full, 9.6 V empty, sagging under load and in the cold."""
        state_of_charge = self.battery_charge_ah / BATTERY_CAPACITY_AH
        cold_sag_v = max(0.0, (263.0 - self.gondola_temperature_k) * 0.01)
        return 9.6 + 3.0 * math.sqrt(state_of_charge) - 0.05 * self.current_a - cold_sag_v

    def _feed_devices(self, now_s: float) -> None:
        state = self.world.state
        dt_s = 0.0 if self._last_feed_s is None else now_s - self._last_feed_s
        self._last_feed_s = now_s
        target_k = state.air_temperature_k + GONDOLA_HEATING_K
        self.gondola_temperature_k += (target_k - self.gondola_temperature_k) * min(1.0, dt_s / GONDOLA_TIME_CONSTANT_S)
        temperature_c = self.gondola_temperature_k - KELVIN
        for chip in self.barometer_chips.values():
            chip.set_environment(pressure_pa=state.pressure_pa, temperature_c=temperature_c)
        voltage_v = self.battery_voltage_v()
        for chip in self.power_chips:
            chip.set_power(bus_voltage_v=voltage_v, current_a=self.current_a)
        self.gps_port.set_truth(state.latitude_deg, state.longitude_deg, state.altitude_m, state.ground_speed_mps,
                                state.course_deg, utc_time_s=state.utc_s, now_s=now_s)
        self.gps_port.advance(now_s)
