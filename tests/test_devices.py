"""The device report: each configured device is probed with its driver's protocol at start and reported (log and
STATUSTEXT), and a preflight summary follows; a missing device or bus is data, never a traceback."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from gpiozero.pins.mock import MockFactory

from flightsw import logsetup
from flightsw.config.check import load_board_of
from flightsw.devices import PREFLIGHT_REPEAT_S, PREFLIGHT_SUMMARY_AFTER_S
from hal.board import build_hal
from hal.probe import BUS_MISSING, FOUND, NOT_RESPONDING, UNCHECKED, WRONG_DEVICE, probe_hal, probe_i2c
from hil.chips.bmp280 import BMP280Chip
from hil.chips.bmp388 import BMP388Chip
from hil.chips.ina2xx import INA226Chip
from hil.chips.ms5611 import MS5611Chip
from hil.fakebus import FakeSMBus
from hil.fakegps import FakeUbloxSerial
from hil.runner import HilRun
from hil.scenario import load_scenario

ROOT = Path(__file__).resolve().parent.parent
HIL_BOARD = load_board_of(ROOT / "config" / "boards" / "hil.yaml")
RATE_HZ = 20


def emulated_bus(*chips) -> FakeSMBus:
    bus = FakeSMBus(1)
    for chip in chips:
        bus.attach(chip)
    return bus


def hil_hal(bus: FakeSMBus, **overrides):
    board = dataclasses.replace(HIL_BOARD, **overrides)
    return build_hal(board, bus=bus, gps_port=FakeUbloxSerial(), pin_factory=MockFactory())


def statuses(hal) -> dict[str, str]:
    return {result.name: result.status for result in probe_hal(hal)}


def test_every_emulated_chip_is_found_by_its_identity():
    hal = hil_hal(emulated_bus(MS5611Chip(0x77), BMP388Chip(0x76), INA226Chip(0x40, shunt_ohm=0.01)))
    try:
        results = {result.name: result for result in probe_hal(hal)}
    finally:
        hal.close()
    assert {name: r.status for name, r in results.items()} == {
        "baro0": FOUND, "baro1": FOUND, "battery": FOUND, "gps": UNCHECKED}
    assert results["baro0"].detail == "PROM CRC ok"
    assert results["baro1"].detail == "chip id 0x50"
    assert results["battery"].detail == "ids 0x5449/0x226"


def test_a_chip_that_does_not_answer_and_a_wrong_chip_are_told_apart():
    wrong = BMP280Chip(0x76)  # the profile says BMP388 at 0x76
    hal = hil_hal(emulated_bus(MS5611Chip(0x77), wrong))
    try:
        results = {result.name: result for result in probe_hal(hal)}
    finally:
        hal.close()
    assert results["baro0"].status == FOUND
    assert results["baro1"].status == WRONG_DEVICE and "is not a BMP388 (0x50)" in results["baro1"].detail
    assert results["battery"].status == NOT_RESPONDING and "NACK" in results["battery"].detail


def test_a_corrupt_ms5611_prom_is_a_wrong_device_and_the_probe_changes_nothing():
    chip = MS5611Chip(0x77)
    bus = emulated_bus(chip, BMP388Chip(0x76), INA226Chip(0x40, shunt_ohm=0.01))
    hal = hil_hal(bus)
    try:
        chip.faults.bad_crc = True
        assert statuses(hal)["baro0"] == WRONG_DEVICE
        chip.faults.bad_crc = False
        writes_before = bus.transactions
        assert statuses(hal)["baro0"] == FOUND
        assert bus.transactions - writes_before == 8 + 1 + 2  # PROM words; chip id; two id registers
    finally:
        hal.close()


def test_a_missing_i2c_bus_and_gps_device_are_reported_as_bus_missing(tmp_path):
    board = dataclasses.replace(HIL_BOARD, i2c_bus=20,
                                gps=dataclasses.replace(HIL_BOARD.gps, device=str(tmp_path / "no-such-tty")))
    hal = build_hal(board, pin_factory=MockFactory())  # the real smbus2 and pyserial
    try:
        results = probe_hal(hal)
    finally:
        hal.close()
    assert [r.status for r in results] == [BUS_MISSING] * 4
    assert results[0].detail == "I2C bus unavailable: /dev/i2c-20: No such file or directory (errno 2)"
    assert "no-such-tty" in results[-1].detail


class _Broken:
    name = "broken"

    def identify(self):
        raise RuntimeError("garbage")


class _Anonymous:
    name = "anon"


def test_a_probe_never_raises():
    assert probe_i2c(_Broken()).status == NOT_RESPONDING
    assert "RuntimeError: garbage" in probe_i2c(_Broken()).detail
    assert probe_i2c(_Anonymous()).status == UNCHECKED


# ------------------------------------------------------------------ the daemon's report


def start(tmp_path: Path, *, missing: tuple[int, ...] = ()) -> HilRun:
    logsetup.configure("error")
    scenario = load_scenario(ROOT / "config" / "hil" / "nominal.yaml")
    # the simulated balloon rises at once: launch detection is kept off so the daemon stays in PREFLIGHT
    scenario = dataclasses.replace(scenario, operator=(),
                                   params={**scenario.params, "PH_LAUNCH_RATE": 20.0, "PH_LAUNCH_GAIN": 2000.0})
    run = HilRun(scenario, work_dir=tmp_path)
    for address in missing:
        run.board.bus.detach(address)
    return run


def statustexts(log_dir: Path) -> list[str]:
    """Every STATUSTEXT the vehicle sent, from the flight recorder's .tlog files."""
    from pymavlink import mavutil

    texts = []
    for tlog in sorted(log_dir.glob("*.tlog")):
        log = mavutil.mavlink_connection(str(tlog))
        while (message := log.recv_match(type="STATUSTEXT")) is not None:
            texts.append(message.text)
    return texts


def test_the_daemon_reports_each_device_at_start_in_the_log_and_as_statustext(tmp_path):
    logsetup.configure("error")
    scenario = load_scenario(ROOT / "config" / "hil" / "nominal.yaml")
    # the chip is gone before the daemon starts: the board is built, then the bus loses it
    run = HilRun(scenario, work_dir=tmp_path)
    run.daemon.shutdown()
    run.board.bus.detach(0x40)
    run.daemon = run._start_daemon()
    try:
        device_events = [(name, severity, text) for _, name, severity, text in run.daemon.events
                         if name in ("device", "devices")]
        assert [text.split(" ")[0] for name, _, text in device_events if name == "device"] == [
            "baro0", "baro1", "battery", "gps"]
        assert ("device", "error", "battery (ina226 at i2c-1 0x40): not responding, NACK (errno 121)") \
            in device_events
        assert device_events[-1] == ("devices", "warning", "devices: 3 of 4 answer; battery not responding")
        run.daemon.run(max_frames=2 * RATE_HZ)
    finally:
        run.daemon.shutdown()
    texts = statustexts(tmp_path / "logs")
    assert "devices: 3 of 4 answer; battery not responding" in texts


def test_the_preflight_summary_names_failing_devices_and_the_self_test_verdict(tmp_path):
    run = start(tmp_path, missing=(0x76,))
    try:
        run.daemon.run(max_frames=int(RATE_HZ * (PREFLIGHT_SUMMARY_AFTER_S - 1)))
        assert not [e for e in run.daemon.events if e[1] == "preflight"]  # the sensors get time to start
        run.daemon.run(max_frames=2 * RATE_HZ)
        [summary] = [e for e in run.daemon.events if e[1] == "preflight"]
        assert summary[2] == "warning"
        assert "baro0 ok" in summary[3] and "baro1 FAIL (NACK (errno 121))" in summary[3]
        assert "self-test FAILS: sensors" in summary[3]
        assert run.daemon.state.sensor_faults == ("baro1 (NACK (errno 121))",)
        run.board.bus.attach(run.board.barometer_chips["baro1"])  # plugged back in: a new summary follows
        run.daemon.run(max_frames=int(RATE_HZ * (PREFLIGHT_REPEAT_S + 2)))
        summaries = [e for e in run.daemon.events if e[1] == "preflight"]
        assert len(summaries) == 2 and "baro1 ok" in summaries[-1][3]
        assert run.daemon.state.sensor_faults == ()
    finally:
        run.daemon.shutdown()


def test_the_self_test_report_names_the_failing_device(tmp_path):
    run = start(tmp_path, missing=(0x76,))
    try:
        run.daemon.run(max_frames=2 * RATE_HZ)
        result = run.daemon.logic.override_preflight(run.clock.now_s())
    finally:
        run.daemon.shutdown()
    assert "baro1 (NACK (errno 121))" in result.message


@pytest.mark.parametrize("status", [FOUND, NOT_RESPONDING, WRONG_DEVICE, BUS_MISSING, UNCHECKED])
def test_only_missing_or_wrong_devices_count_as_failed(status):
    from hal.probe import ProbeResult

    assert ProbeResult("x", status, "").failed is (status in (NOT_RESPONDING, WRONG_DEVICE, BUS_MISSING))
