"""Chip drivers join a registry; hal/board.py builds whatever a board profile names from it."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest
from gpiozero.pins.mock import MockFactory

from flightsw.config.board import BarometerConfig, PowerMonitorConfig
from flightsw.config.check import load_board_of
from hal.board import (BAROMETER, POWER_MONITOR, build_hal, register_chip, registered_chips, unregister_chip)
from hal.probe import FOUND, probe_hal
from hal.interfaces import PressureReading
from hil.fakebus import FakeSMBus

ROOT = Path(__file__).resolve().parent.parent
HIL_BOARD = load_board_of(ROOT / "config" / "boards" / "hil.yaml")


class RegisteredBarometer:
    """A driver written by a test: remembers how it was built and identifies itself."""

    rated_pressure_pa = (1000.0, 120000.0)

    def __init__(self, bus, *, address: int, name: str) -> None:
        self.bus, self.address, self.name = bus, address, name
        self.reading = PressureReading()

    def update(self, now_s: float) -> None:
        pass

    def identify(self) -> str:
        return "test chip"


@pytest.fixture
def test_chip():
    register_chip("testbaro", BAROMETER, lambda config, bus, name: RegisteredBarometer(bus, address=config.address,
                                                                                  name=name))
    yield "testbaro"
    unregister_chip("testbaro")


def test_a_registered_driver_is_built_from_a_board_profile(test_chip):
    board = dataclasses.replace(HIL_BOARD, barometers=(BarometerConfig(chip=test_chip, address=0x20),),
                                power_monitors=(), gps=None)
    bus = FakeSMBus(1)
    hal = build_hal(board, bus=bus, pin_factory=MockFactory())
    try:
        [barometer] = hal.barometers
        assert isinstance(barometer, RegisteredBarometer)
        assert (barometer.bus, barometer.address, barometer.name) == (bus, 0x20, "testbaro@0x20")
        assert [(r.name, r.status, r.detail) for r in probe_hal(hal)] == [("testbaro@0x20", FOUND, "test chip")]
    finally:
        hal.close()
    assert test_chip in registered_chips(BAROMETER)


def test_the_shipped_chips_are_registered_with_their_roles():
    assert registered_chips(BAROMETER) == ("ms5611", "bmp280", "bmp388")
    assert registered_chips(POWER_MONITOR) == ("ina219", "ina226")


def test_the_config_validator_accepts_exactly_the_registered_chips():
    from flightsw.config.board import BAROMETER_CHIPS, POWER_CHIPS

    assert BAROMETER_CHIPS == registered_chips(BAROMETER)
    assert POWER_CHIPS == registered_chips(POWER_MONITOR)


def test_unknown_or_misplaced_chips_are_refused_and_no_line_stays_claimed(test_chip):
    pins = MockFactory()
    unknown = dataclasses.replace(HIL_BOARD, barometers=(BarometerConfig(chip="bmp999", address=0x20),))
    with pytest.raises(ValueError, match="unknown barometer chip 'bmp999'"):
        build_hal(unknown, bus=FakeSMBus(1), pin_factory=pins)
    misplaced = dataclasses.replace(HIL_BOARD, power_monitors=(PowerMonitorConfig(chip=test_chip, address=0x41),))
    with pytest.raises(ValueError, match="'testbaro' is a barometer, not a power monitor"):
        build_hal(misplaced, bus=FakeSMBus(1), pin_factory=pins)
    hal = build_hal(HIL_BOARD, bus=FakeSMBus(1), pin_factory=pins)  # the same pins can be claimed again
    hal.close()


def test_a_chip_name_is_registered_once():
    with pytest.raises(ValueError, match="already registered"):
        register_chip("ms5611", BAROMETER, lambda config, bus, name: None)
    with pytest.raises(ValueError, match="role"):
        register_chip("newchip", "thermometer", lambda config, bus, name: None)


def test_hal_imports_nothing_from_flightsw_or_hil():
    code = ("import sys, hal.board, hal.probe, hal.gpio; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('flightsw', 'hil')]; assert not bad, bad")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
