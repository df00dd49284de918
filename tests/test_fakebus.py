"""FakeSMBus routing and smbus2 compatibility, chip fault plumbing, and the shared driver machinery."""

from __future__ import annotations

import errno
import inspect

import pytest
import smbus2

from hal.i2c import DeviceDataError, PolledI2CDevice, bus_error_text, swap16
from hal.interfaces import PressureReading
from hil.chips import ChipModel, solve_monotone
from hil.chips.bmp280 import BMP280Chip
from hil.chips.ms5611 import MS5611Chip
from hil.fakebus import FakeSMBus

METHODS = ("read_byte", "write_byte", "read_byte_data", "write_byte_data", "read_word_data", "write_word_data",
           "read_i2c_block_data", "write_i2c_block_data", "write_quick", "close", "open")


@pytest.mark.parametrize("method", METHODS)
def test_signatures_match_smbus2(method):
    real = inspect.signature(getattr(smbus2.SMBus, method))
    fake = inspect.signature(getattr(FakeSMBus, method))
    assert list(real.parameters) == list(fake.parameters)
    for name, parameter in real.parameters.items():
        assert fake.parameters[name].default == parameter.default, name


class Recorder(ChipModel):
    """A chip that records writes and returns register numbers as data."""

    def __init__(self, address: int) -> None:
        super().__init__(address)
        self.writes: list[tuple] = []
        self.times: list = []

    def i2c_write(self, data, now_s):
        self.writes.append(tuple(data))
        self.times.append(now_s)
        self.pointer = data[0]

    def i2c_read(self, register, length, now_s):
        self.times.append(now_s)
        return [(register + i) & 0xFF for i in range(length)]


def test_routing_and_byte_order():
    bus = FakeSMBus(clock=lambda: 12.5)
    a = bus.attach(Recorder(0x40))
    b = bus.attach(Recorder(0x41))
    bus.write_byte(0x40, 0x1E)
    bus.write_byte_data(0x41, 0xF4, 0x57)
    bus.write_word_data(0x40, 0x05, 0x1234)  # low byte first on the wire
    bus.write_i2c_block_data(0x41, 0x10, [1, 2, 3])
    assert a.writes == [(0x1E,), (0x05, 0x34, 0x12)]
    assert b.writes == [(0xF4, 0x57), (0x10, 1, 2, 3)]
    assert bus.read_byte_data(0x40, 0x33) == 0x33
    assert bus.read_word_data(0x40, 0x10) == 0x1110  # first byte (0x10) is the low byte
    assert swap16(bus.read_word_data(0x40, 0x10)) == 0x1011
    assert bus.read_i2c_block_data(0x41, 0x20, 4) == [0x20, 0x21, 0x22, 0x23]
    assert bus.read_byte(0x41) == 0x10  # from the pointer set by the last write
    assert set(a.times) == {12.5}
    assert bus.transactions == 9


def test_missing_address_fails_like_linux():
    bus = FakeSMBus()
    with pytest.raises(OSError) as info:
        bus.read_byte_data(0x50, 0)
    assert info.value.errno == errno.EREMOTEIO
    bus = FakeSMBus(missing_errno=errno.ENXIO)
    with pytest.raises(OSError) as info:
        bus.write_byte(0x50, 0)
    assert info.value.errno == errno.ENXIO


def test_block_limits_and_closed_bus():
    bus = FakeSMBus()
    bus.attach(Recorder(0x40))
    with pytest.raises(ValueError):
        bus.read_i2c_block_data(0x40, 0, 33)
    with pytest.raises(ValueError):
        bus.write_i2c_block_data(0x40, 0, [0] * 33)
    with FakeSMBus() as other:
        pass
    assert other.closed
    bus.close()
    with pytest.raises(OSError):
        bus.read_byte_data(0x40, 0)


def test_attach_rules():
    bus = FakeSMBus()
    bus.attach(Recorder(0x40))
    with pytest.raises(ValueError):
        bus.attach(Recorder(0x40))
    with pytest.raises(ValueError):
        bus.attach(Recorder(0x80))
    bus.detach(0x40)
    with pytest.raises(OSError):
        bus.read_byte_data(0x40, 0)


def test_nack_faults():
    bus = FakeSMBus()
    chip = bus.attach(Recorder(0x40))
    chip.faults.nack_next(2)
    for _ in range(2):
        with pytest.raises(OSError) as info:
            bus.read_byte_data(0x40, 1)
        assert info.value.errno == 121
    assert bus.read_byte_data(0x40, 1) == 1
    chip.faults.nack = True
    with pytest.raises(OSError):
        bus.write_byte(0x40, 1)
    chip.faults.clear()
    bus.write_byte(0x40, 1)


def test_fault_reset_is_a_power_glitch():
    chip = BMP280Chip()
    bus = FakeSMBus()
    bus.attach(chip)
    bus.write_byte_data(0x76, 0xF4, 0x57)
    assert bus.read_byte_data(0x76, 0xF4) == 0x57
    chip.faults.reset()
    assert bus.read_byte_data(0x76, 0xF4) == 0x00


def test_ms5611_adc_without_finished_conversion_reads_zero():
    now = [0.0]
    bus = FakeSMBus(clock=lambda: now[0])
    bus.attach(MS5611Chip())
    assert bus.read_i2c_block_data(0x77, 0x00, 3) == [0, 0, 0]  # nothing converted
    bus.write_byte(0x77, 0x48)
    now[0] = 0.004
    assert bus.read_i2c_block_data(0x77, 0x00, 3) == [0, 0, 0]  # read during conversion: lost
    bus.write_byte(0x77, 0x48)
    now[0] = 0.02
    assert bus.read_i2c_block_data(0x77, 0x00, 3) != [0, 0, 0]
    assert bus.read_i2c_block_data(0x77, 0x00, 3) == [0, 0, 0]  # the result is read once
    bus.write_byte(0x77, 0x1E)  # reset: silent for 2.8 ms
    with pytest.raises(OSError):
        bus.read_i2c_block_data(0x77, 0xA2, 2)
    now[0] = 0.03
    assert bus.read_i2c_block_data(0x77, 0xA2, 2) == [40127 >> 8, 40127 & 0xFF]


@pytest.mark.parametrize("slope", [3, -3])
def test_solve_monotone_step_functions(slope):
    def forward(x: int) -> float:
        return float((x * slope) // 7)  # integer steps, flat stretches of several x

    for target in (-500.0, 0.0, 123.0, 4000.0):
        x = solve_monotone(forward, target, -10000, 10000, 17)
        assert abs(forward(x) - target) <= 0.5
    assert solve_monotone(forward, 1e9, -100, 100, 0) in (-100, 100)  # beyond reach: the nearer bound


# ---------------------------------------------------------------- hal.i2c


def test_bus_error_text():
    assert bus_error_text(OSError(121, "x")) == "NACK (errno 121)"
    assert bus_error_text(OSError(110, "x")) == "bus timeout (errno 110)"
    assert bus_error_text(OSError(5, "x")) == "I/O error (errno 5)"
    assert bus_error_text(OSError(6, "x")) == "no device at address (errno 6)"
    assert bus_error_text(OSError(11, "x")) == "bus busy / arbitration lost (errno 11)"
    assert "errno 13" in bus_error_text(OSError(13, "x"))
    assert "bus error" in bus_error_text(OSError("no errno"))


class Flaky(PolledI2CDevice):
    def __init__(self, failures):
        super().__init__(None, address=0x40, name="flaky", reinit_after_errors=2, stale_after_s=0.5,
                         initial_reading=PressureReading())
        self.failures = list(failures)
        self.uninitialised = 0

    def _on_uninitialise(self):
        self.uninitialised += 1

    def _step(self, now_s):
        self.initialised = True
        failure = self.failures.pop(0) if self.failures else None
        if failure is not None:
            raise failure
        self._publish(PressureReading(pressure_pa=1.0, temperature_c=0.0, time_s=now_s, healthy=True))


def test_update_never_raises_and_reinitialises():
    device = Flaky([None, OSError(110, "t"), DeviceDataError("garbage"), ZeroDivisionError("bug"), None])
    device.update(0.0)
    assert device.reading.healthy
    device.update(0.1)
    assert not device.reading.healthy and device.stats.last_error == "bus timeout (errno 110)"
    device.update(0.2)
    assert device.stats.reinits == 1 and device.uninitialised == 1
    device.update(0.3)
    assert "ZeroDivisionError" in device.stats.last_error and device.stats.errors == 3
    device.update(0.4)
    assert device.reading.healthy and device.stats.consecutive_errors == 0 and device.stats.reads == 2


def test_failed_and_stale_readings_keep_their_values_and_readings_stay_immutable():
    device = Flaky([None, OSError(121, "nack")])
    device.update(0.0)
    fresh = device.reading
    device.update(0.1)  # the NACK: the same values, unhealthy
    assert device.reading == PressureReading(1.0, 0.0, 0.0, False)
    device.update(0.2)
    assert device.reading == PressureReading(1.0, 0.0, 0.2, True)
    device._step = lambda now_s: None  # the chip goes quiet: the reading ages out
    device.update(0.8)
    assert device.reading == PressureReading(1.0, 0.0, 0.2, False)
    assert (fresh.pressure_pa, fresh.temperature_c, fresh.time_s, fresh.healthy) == (1.0, 0.0, 0.0, True)
    with pytest.raises(AttributeError):
        fresh.healthy = False
