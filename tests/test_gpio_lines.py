"""GPIO lines (``hal/gpio.py``) and board construction (``hal/board.py``) on gpiozero's ``MockFactory``.

Every output line must be inactive from the moment it exists (an active-high line drives its pin low, an
active-low line drives it high), ``build_hal`` must make every output line before it touches any device, and the
safe-state functions must leave every line inactive whatever state it was in.  Backstop timing is not tested
here.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pytest
from gpiozero.pins.mock import MockFactory

import hal.board
import hal.ublox
from flightsw.config.board import BoardConfig
from flightsw.config.loader import load_file
from hal.board import build_hal, safe_outputs
from hal.gpio import OUTPUT_ROLES, GpioInputLine, GpioOutputLine, build_output_lines
from hal.interfaces import OutputLines
from hil.chips.bmp388 import BMP388Chip
from hil.chips.ina2xx import INA226Chip
from hil.chips.ms5611 import MS5611Chip
from hil.fakebus import FakeSMBus
from hil.fakegps import FakeUbloxSerial

HIL_BOARD = Path(__file__).resolve().parent.parent / "config" / "boards" / "hil.yaml"


@pytest.fixture()
def pins():
    factory = MockFactory()
    yield factory
    factory.close()


def load_hil_board() -> BoardConfig:
    return load_file(HIL_BOARD, BoardConfig)


def with_active_levels(board: BoardConfig, active_high: bool) -> BoardConfig:
    """``board`` with every output line's active level set to ``active_high``."""
    outputs = {role: dataclasses.replace(getattr(board.outputs, role), active_high=active_high)
               for role in OUTPUT_ROLES if getattr(board.outputs, role) is not None}
    return dataclasses.replace(board, outputs=dataclasses.replace(board.outputs, **outputs))


def inactive_level(active_high: bool) -> bool:
    return not active_high


def output_pin_levels(board: BoardConfig, factory: MockFactory) -> dict[str, tuple[str, bool]]:
    """Role -> (pin function, pin level) for every output line of ``board``."""
    result = {}
    for role in OUTPUT_ROLES:
        config = getattr(board.outputs, role)
        if config is not None:
            pin = factory.pin(config.pin)
            result[role] = (pin.function, bool(pin.state))
    return result


def drive_active(board: BoardConfig, factory: MockFactory) -> None:
    """Leave every output pin driven active, as a killed process would on a Raspberry Pi kernel."""
    for role in OUTPUT_ROLES:
        config = getattr(board.outputs, role)
        if config is not None:
            pin = factory.pin(config.pin)
            pin.function = "output"
            pin.state = config.active_high


# ---------------------------------------------------------------- single lines


@pytest.mark.parametrize("active_high", [True, False])
def test_output_line_is_inactive_from_construction(pins, active_high):
    line = GpioOutputLine("cutdown_fire", 25, active_high=active_high, max_on_s=8.0, pin_factory=pins)
    pin = pins.pin(25)
    assert pin.function == "output"
    assert bool(pin.state) is inactive_level(active_high)
    assert line.is_active is False
    line.close()


@pytest.mark.parametrize("active_high", [True, False])
def test_level_activation_drives_the_active_level_and_deactivate_restores_the_inactive_one(pins, active_high):
    line = GpioOutputLine("release_arm", 22, active_high=active_high, max_on_s=math.inf, pin_factory=pins)
    line.activate(math.inf)
    assert bool(pins.pin(22).state) is active_high and line.is_active
    line.deactivate()
    assert bool(pins.pin(22).state) is inactive_level(active_high) and not line.is_active
    line.close()


def test_close_drives_the_line_inactive_before_releasing_it(pins):
    line = GpioOutputLine("release_arm", 22, active_high=False, max_on_s=math.inf, pin_factory=pins)
    line.activate(math.inf)
    line.close()
    assert pins.pin(22).function == "input"
    assert pins.pin(22).state is True  # an active-low line is left high


@pytest.mark.parametrize("active_high, pull_up, level, expected", [
    (False, True, False, True),   # switch to ground with the pull-up: active when pulled low
    (False, True, True, False),
    (True, False, True, True),    # switch to 3.3 V with the pull-down: active when high
    (True, False, False, False),
])
def test_input_line_reports_the_configured_active_level(pins, active_high, pull_up, level, expected):
    line = GpioInputLine("separation_switch", 6, active_high=active_high, pull_up=pull_up, pin_factory=pins)
    pin = pins.pin(6)
    pin.drive_high() if level else pin.drive_low()
    assert line.is_active is expected
    line.close()


# ---------------------------------------------------------------- whole boards


@pytest.mark.parametrize("active_high", [True, False])
def test_build_output_lines_makes_every_role_inactive(pins, active_high):
    board = with_active_levels(load_hil_board(), active_high)
    lines = build_output_lines(board.outputs, pin_factory=pins)
    try:
        assert {line.name for line in lines.all()} == set(OUTPUT_ROLES)
        for role, (function, level) in output_pin_levels(board, pins).items():
            assert function == "output" and level is inactive_level(active_high), role
    finally:
        for line in lines.all():
            line.close()


def make_hil_devices(board: BoardConfig) -> tuple[FakeSMBus, FakeUbloxSerial]:
    """The emulated bus and GPS that ``hil/sim.py`` gives ``build_hal``."""
    bus = FakeSMBus(board.i2c_bus, clock=lambda: 0.0)
    models = {"ms5611": MS5611Chip, "bmp388": BMP388Chip}
    for config in board.barometers:
        bus.attach(models[config.chip](config.address))
    for config in board.power_monitors:
        bus.attach(INA226Chip(config.address, shunt_ohm=config.shunt_ohm))
    return bus, FakeUbloxSerial()


@pytest.mark.parametrize("active_high", [True, False])
def test_build_hal_makes_every_output_inactive_before_any_device(pins, monkeypatch, active_high):
    board = with_active_levels(load_hil_board(), active_high)
    bus, gps_port = make_hil_devices(board)
    seen: list[tuple[str, dict]] = []  # (device, output pin levels when it was about to be built)

    def spy(kind, build):
        def wrapper(*args, **kwargs):
            seen.append((kind, output_pin_levels(board, pins)))
            return build(*args, **kwargs)
        return wrapper

    build_chip = hal.board.build_chip

    def spy_chip(config, bus, role):
        seen.append((role.replace("_", " "), output_pin_levels(board, pins)))
        return build_chip(config, bus, role)

    monkeypatch.setattr(hal.board, "build_chip", spy_chip)
    monkeypatch.setattr(hal.ublox, "UbloxGps", spy("gps", hal.ublox.UbloxGps))

    built = build_hal(board, bus=bus, gps_port=gps_port, pin_factory=pins, simulated=True)
    try:
        kinds = [kind for kind, _ in seen]
        assert kinds.count("barometer") == 2 and kinds.count("power monitor") == 1 and kinds.count("gps") == 1
        for kind, levels in seen:
            assert set(levels) == set(OUTPUT_ROLES)
            for role, (function, level) in levels.items():
                assert function == "output", f"{role} not yet built when the {kind} was"
                assert level is inactive_level(active_high), f"{role} active when the {kind} was built"
        assert len(built.barometers) == 2 and built.gps is not None
        assert not any(line.is_active for line in built.outputs.all())
    finally:
        built.close()


def test_build_hal_that_fails_on_a_device_leaves_every_line_inactive_and_released(pins, monkeypatch):
    board = with_active_levels(load_hil_board(), False)
    bus, gps_port = make_hil_devices(board)

    build_chip = hal.board.build_chip

    def broken(config, bus, role):
        if role == hal.board.POWER_MONITOR:
            raise ValueError("unknown chip")
        return build_chip(config, bus, role)

    monkeypatch.setattr(hal.board, "build_chip", broken)
    with pytest.raises(ValueError, match="unknown chip"):
        build_hal(board, bus=bus, gps_port=gps_port, pin_factory=pins, simulated=True)
    for role, (function, level) in output_pin_levels(board, pins).items():
        assert function == "input" and level is True, role  # released, last driven high = inactive


@pytest.mark.parametrize("active_high", [True, False])
def test_safe_outputs_leaves_lines_that_were_active_inactive(pins, active_high):
    board = with_active_levels(load_hil_board(), active_high)
    drive_active(board, pins)
    assert all(level is active_high for _, level in output_pin_levels(board, pins).values())
    names = safe_outputs(board, pin_factory=pins)
    assert sorted(names) == sorted(OUTPUT_ROLES)
    for role, (function, level) in output_pin_levels(board, pins).items():
        assert level is inactive_level(active_high), role
        assert function == "input", role  # released for the next process


def test_force_safe_drives_every_active_line_inactive(pins):
    board = with_active_levels(load_hil_board(), False)
    lines = build_output_lines(board.outputs, pin_factory=pins)
    for line in lines.all():
        line.activate(math.inf)
    assert all(line.is_active for line in lines.all())
    lines.force_safe()
    assert not any(line.is_active for line in lines.all())
    for role, (_, level) in output_pin_levels(board, pins).items():
        assert level is True, role
    for line in lines.all():
        line.close()


class _FailingLine:
    """An output line whose driver raises, e.g. a GPIO chip that went away."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.deactivate_calls = 0

    def activate(self, max_on_s: float) -> None:
        raise OSError(5, "Input/output error")

    def deactivate(self) -> None:
        self.deactivate_calls += 1
        raise OSError(5, "Input/output error")

    @property
    def is_active(self) -> bool:
        raise OSError(5, "Input/output error")

    def close(self) -> None:
        pass


def test_force_safe_continues_past_a_line_that_raises(pins):
    lines = {role: GpioOutputLine(role, pin, active_high=True, max_on_s=math.inf, pin_factory=pins)
             for role, pin in (("ballast_valve", 17), ("vent_valve", 27), ("release_arm", 22),
                               ("cutdown_arm", 24), ("cutdown_fire", 25))}
    failing = _FailingLine("release_fire")  # the first FIRE line in force_safe's order
    outputs = OutputLines(release_fire=failing, **lines)
    for line in lines.values():
        line.activate(math.inf)
    outputs.force_safe()  # must not raise
    assert failing.deactivate_calls == 1
    for role, line in lines.items():
        assert not line.is_active, role
        assert pins.pin(line.pin).state is False, role
    for line in lines.values():
        line.close()
