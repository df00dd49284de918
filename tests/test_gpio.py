"""GPIO output lines on gpiozero's mock pins: level outputs, and the backstop that drops a line on its own."""

from __future__ import annotations

import math
import time

import gpiozero
import pytest
from gpiozero.pins.mock import MockFactory

from hal.gpio import Backstop, GpioOutputLine, build_output_lines


@pytest.fixture
def factory():
    pins = MockFactory()
    yield pins
    pins.reset()


def test_a_burn_wire_drops_on_time_when_nobody_deactivates_it(factory):
    line = GpioOutputLine("cutdown_fire", 17, pin_factory=factory)
    line.activate(0.2)
    assert line.is_active and factory.pin(17).state  # driven at once, not by a thread later
    time.sleep(0.5)  # the frame loop has stalled: nobody calls deactivate
    assert not line.is_active and not factory.pin(17).state
    assert line.backstop_drops == 1


def test_a_later_activation_or_deactivation_supersedes_a_pending_deadline(factory):
    backstop = Backstop()
    extended = GpioOutputLine("ballast_valve", 5, pin_factory=factory, backstop=backstop)
    restarted = GpioOutputLine("vent_valve", 6, pin_factory=factory, backstop=backstop)
    extended.activate(0.05)
    extended.activate(5.0)  # a longer pulse on an open valve
    restarted.activate(0.05)
    restarted.deactivate()
    restarted.activate(5.0)
    time.sleep(0.25)  # well past the first deadlines
    assert extended.is_active and restarted.is_active
    assert extended.backstop_drops == restarted.backstop_drops == 0
    extended.deactivate()
    restarted.deactivate()
    assert not extended.is_active and not restarted.is_active


def test_a_level_output_has_no_deadline_and_stays_until_deactivated(factory):
    backstop = Backstop()
    line = GpioOutputLine("termination_heartbeat", 22, max_on_s=math.inf, pin_factory=factory, backstop=backstop)
    line.activate(math.inf)
    assert line.is_active and backstop.pending == 0
    line.deactivate()
    assert not line.is_active


def test_the_line_ceiling_caps_the_requested_time(factory):
    backstop = Backstop()
    line = GpioOutputLine("release_fire", 23, max_on_s=0.05, pin_factory=factory, backstop=backstop)
    line.activate(math.inf)  # asks for a level, but the line may never stay on longer than 0.05 s
    assert backstop.pending == 1
    time.sleep(0.25)
    assert not line.is_active


def test_an_active_low_line_drops_to_its_high_level(factory):
    line = GpioOutputLine("vent_valve", 24, active_high=False, pin_factory=factory)
    assert factory.pin(24).state  # inactive: driven high
    line.activate(0.05)
    assert line.is_active and not factory.pin(24).state
    time.sleep(0.25)
    assert not line.is_active and factory.pin(24).state


@pytest.mark.parametrize("active_high", [True, False])
def test_the_read_back_is_the_pin_level_not_the_last_write(factory, active_high):
    line = GpioOutputLine("cutdown_fire", 23, active_high=active_high, pin_factory=factory)
    pin = factory.pin(23)
    line.activate(5.0)
    pin.state = not active_high  # something else pulls the pin to its inactive level
    assert not line.is_active
    line.deactivate()
    pin.state = active_high  # a line stuck at its active level
    assert line.is_active
    line.close()
    with pytest.raises(gpiozero.GPIODeviceClosed):
        line.is_active  # a closed line is not known to be safe


@pytest.mark.parametrize("max_on_s", [math.nan, 0.0, -1.0])
def test_a_bad_backstop_time_is_refused_and_the_line_stays_off(factory, max_on_s):
    line = GpioOutputLine("release_fire", 25, pin_factory=factory)
    with pytest.raises(ValueError):
        line.activate(max_on_s)
    assert not line.is_active


def test_a_line_that_cannot_be_written_does_not_stop_the_backstop(factory):
    backstop = Backstop()
    broken = GpioOutputLine("release_fire", 26, pin_factory=factory, backstop=backstop)
    healthy = GpioOutputLine("cutdown_fire", 27, pin_factory=factory, backstop=backstop)
    broken.activate(0.02)

    def failing_off() -> None:
        raise OSError("GPIO write failed")

    broken._device.off = failing_off
    healthy.activate(0.1)
    time.sleep(0.3)
    assert backstop.errors == 1
    assert not healthy.is_active and healthy.backstop_drops == 1


def test_build_output_lines_makes_arm_and_heartbeat_lines_levels(factory):
    class LineConfig:
        def __init__(self, pin: int) -> None:
            self.pin, self.active_high, self.max_on_s = pin, True, 12.0

    class Outputs:
        ballast_valve, vent_valve = LineConfig(5), LineConfig(6)
        release_arm, release_fire = LineConfig(12), LineConfig(13)
        cutdown_arm, cutdown_fire = LineConfig(16), LineConfig(19)
        termination_heartbeat = LineConfig(20)

    lines = build_output_lines(Outputs(), pin_factory=factory)
    assert lines.release_arm.max_on_s == lines.termination_heartbeat.max_on_s == math.inf
    assert lines.cutdown_fire.max_on_s == 12.0
    assert not any(line.is_active for line in lines.all())
