"""The emulated u-blox receiver on its own, and the real driver running against it."""

from __future__ import annotations

import math

import pytest
from serial import PortNotOpenError

from hal.interfaces import FixType
from hal.ublox import UbloxGps
from hil.fakegps import FakeUbloxSerial

ALTITUDE_M = 20000.0


@pytest.fixture(autouse=True)
def no_sleep_no_wall_clock(monkeypatch):
    def fail(*_args):
        raise AssertionError("sleep or wall clock used")

    monkeypatch.setattr("time.sleep", fail)
    monkeypatch.setattr("time.time", fail)
    monkeypatch.setattr("time.monotonic", fail)


def ubx(msg_class: int, msg_id: int, payload: bytes = b"") -> bytes:
    body = bytes((msg_class, msg_id, len(payload) & 0xFF, len(payload) >> 8)) + payload
    a = b = 0
    for byte in body:
        a = (a + byte) % 256
        b = (b + a) % 256
    return b"\xb5\x62" + body + bytes((a, b))


def nav5_set(dyn_model: int, mask: int = 1) -> bytes:
    payload = bytearray(36)
    payload[0:2] = mask.to_bytes(2, "little")
    payload[2] = dyn_model
    return ubx(0x06, 0x24, bytes(payload))


def lines(data: bytes) -> list[str]:
    return [line.decode() for line in data.split(b"\r\n") if line]


def checksum_ok(line: str) -> bool:
    body, _, checksum = line[1:].rpartition("*")
    value = 0
    for char in body:
        value ^= ord(char)
    return checksum == f"{value:02X}"


def receiver(**options) -> FakeUbloxSerial:
    fake = FakeUbloxSerial(**options)
    fake.set_truth(48.1173, 11.516666666, 545.4, 11.52, 84.4, utc_time_s=764426119.0)
    return fake


def gga_quality(fake: FakeUbloxSerial) -> str:
    gga = [line for line in lines(fake.read(10000)) if line[3:6] == "GGA"]
    return gga[-1].split(",")[6]


# ---------------------------------------------------------------- the twin alone


def test_epochs_follow_simulated_time():
    fake = receiver()
    fake.advance(0.0)
    first = lines(fake.read(4096))
    assert [line[:6] for line in first] == ["$GNRMC", "$GNGGA", "$GNGSA"]
    assert all(checksum_ok(line) for line in first)
    assert first[1].startswith("$GNGGA,123519.00,4807.03800,N,01131.00000,E,1,12,0.80,545.4,M,")
    assert ",A," in first[0] and ",230394," in first[0]
    fake.advance(0.99)
    assert fake.in_waiting == 0
    fake.advance(1.0)
    assert lines(fake.read(4096))[0].startswith("$GNRMC,123520.00,A,")


def test_epoch_time_and_date_fields_across_midnight_and_new_year():
    """The time of day is worked out arithmetically and the date remembered per day: the RMC fields equal what
    time.gmtime gives for every epoch, across a midnight that is also a new year."""
    import time

    start_utc_s = 1735689597.0  # 2024-12-31 23:59:57 UTC
    fake = FakeUbloxSerial(rate_hz=5.0, start_utc_s=start_utc_s)
    dates = set()
    for step in range(41):
        now_s = step * 0.13
        fake.advance(now_s)
        for line in lines(fake.read(100000)):
            if line[3:6] == "RMC":
                fields = line.split(",")
                epoch_s = math.floor(now_s * 5.0 + 1e-9) / 5.0
                centiseconds = round((start_utc_s + epoch_s) * 100)
                stamp = time.gmtime(centiseconds // 100)
                assert fields[1] == f"{stamp.tm_hour:02d}{stamp.tm_min:02d}{stamp.tm_sec:02d}.{centiseconds % 100:02d}"
                assert fields[9] == f"{stamp.tm_mday:02d}{stamp.tm_mon:02d}{stamp.tm_year % 100:02d}"
                dates.add(fields[9])
    assert fake.epochs_sent == 27 and dates == {"311224", "010125"}


def test_five_hz_and_talker():
    fake = receiver(rate_hz=5.0, talker="GP")
    for step in range(21):
        fake.advance(step * 0.05)
    assert fake.epochs_sent == 6  # epochs at 0.0, 0.2, 0.4, 0.6, 0.8, 1.0
    assert all(line.startswith("$GP") for line in lines(fake.read(100000)))


def test_clock_callable_drives_output():
    now = [0.0]
    fake = receiver(clock=lambda: now[0])
    assert fake.in_waiting > 0
    fake.read(100000)
    now[0] = 0.5
    assert fake.in_waiting == 0
    now[0] = 1.0
    assert fake.in_waiting > 0


def test_southern_western_and_wrapped_coordinates():
    fake = FakeUbloxSerial()
    fake.set_truth(-33.5, -70.25, 600.0)
    fake.advance(0.0)
    gga = lines(fake.read(4096))[1]
    assert ",3330.00000,S,07015.00000,W," in gga


def test_nav5_set_ack_and_poll():
    fake = receiver()
    assert fake.dynamic_model == 0
    fake.write(nav5_set(6))
    assert fake.read(100) == ubx(0x05, 0x01, b"\x06\x24")
    assert fake.dynamic_model == 6
    fake.write(ubx(0x06, 0x24))
    reply = fake.read(100)
    assert reply[:6] == b"\xb5\x62\x06\x24\x24\x00" and reply[8] == 6
    assert reply[44:] == ubx(0x05, 0x01, b"\x06\x24")
    assert fake.sets_received == 1 and fake.polls_received == 1


def test_nav5_refusals():
    fake = receiver()
    fake.write(nav5_set(1))  # dynModel 1 does not exist
    fake.write(ubx(0x06, 0x24, bytes(10)))  # wrong length
    fake.nak_next_sets = 1
    fake.write(nav5_set(6))
    assert fake.read(100) == ubx(0x05, 0x00, b"\x06\x24") * 3
    assert fake.dynamic_model == 0
    fake.write(nav5_set(6, mask=0))  # dyn not in the mask: accepted, not applied
    assert fake.dynamic_model == 0
    frame = nav5_set(7)
    fake.write(frame[:10])
    fake.write(frame[10:])
    assert fake.dynamic_model == 7
    corrupt = bytearray(nav5_set(8))
    corrupt[-1] ^= 1
    fake.write(b"\x00junk" + bytes(corrupt))
    assert fake.dynamic_model == 7 and fake.bad_frames_received == 1


def test_altitude_and_speed_limits_outside_airborne_models():
    fake = receiver()
    fake.set_truth(48.0, 11.0, 12500.0, 5.0, 0.0)
    fake.advance(0.0)
    assert gga_quality(fake) == "0"
    fake.set_truth(48.0, 11.0, 500.0, 150.0, 0.0)
    fake.advance(1.0)
    assert gga_quality(fake) == "0"
    fake.write(nav5_set(6))
    fake.read(100)
    fake.set_truth(48.0, 11.0, 38000.0, 150.0, 0.0)
    fake.advance(2.0)
    assert gga_quality(fake) == "1"


def test_reset_sends_boot_text_and_forgets_model():
    fake = receiver()
    fake.write(nav5_set(6))
    fake.read(100)
    fake.reset(reacquire_s=2.0)
    boot = lines(fake.read(100000))
    assert boot[0] == "$GNTXT,01,01,02,u-blox AG - www.u-blox.com*4E"
    assert all(checksum_ok(line) for line in boot) and len(boot) > 3
    assert fake.dynamic_model == 0
    fake.advance(1.0)
    assert gga_quality(fake) == "0"
    fake.advance(2.0)
    assert gga_quality(fake) == "1"


def test_faults():
    fake = receiver(seed=3)
    fake.silence = True
    fake.advance(0.0)
    fake.write(nav5_set(6))
    assert fake.in_waiting == 0
    fake.clear_faults()
    fake.no_fix = True
    fake.advance(1.0)
    assert gga_quality(fake) == "0"
    fake.clear_faults()
    fake.corrupt_checksums = True
    fake.advance(2.0)
    assert not any(checksum_ok(line) for line in lines(fake.read(4096)))
    fake.clear_faults()
    fake.garbage = True
    fake.advance(3.0)
    noisy = fake.read(4096)
    fake.clear_faults()
    fake.advance(4.0)
    assert len(noisy) > len(fake.read(4096))
    fake.position_jump(0.5, -0.25, duration_s=1.5)
    fake.advance(5.0)
    assert ",4837.03800,N,01116.00000,E," in lines(fake.read(4096))[1]
    fake.advance(7.0)
    assert ",4807.03800,N,01131.00000,E," in lines(fake.read(4096))[1]


def test_closed_port_raises_like_pyserial():
    fake = receiver()
    fake.close()
    with pytest.raises(PortNotOpenError):
        fake.read(10)


# ---------------------------------------------------------------- the driver against the twin


def run(gps: UbloxGps, fake: FakeUbloxSerial, start_s: float, stop_s: float, step_s: float = 0.1) -> float:
    now = start_s
    while now < stop_s - 1e-9:
        fake.advance(now)
        gps.update(now)
        now = round(now + step_s, 6)
    return now


def flight(**driver_options) -> tuple[FakeUbloxSerial, UbloxGps]:
    fake = FakeUbloxSerial()
    fake.set_truth(47.25, -3.5, ALTITUDE_M, 8.0, 270.0)
    return fake, UbloxGps(fake, **driver_options)


def test_driver_sets_and_verifies_airborne_model():
    fake, gps = flight()
    run(gps, fake, 0.0, 5.0)
    assert gps.dynamic_model_confirmed and fake.dynamic_model == 6
    assert gps.config_attempts == 1 and gps.config_polls == 1
    assert fake.sets_received == 1 and fake.polls_received == 1
    fix = gps.fix
    assert fix.healthy and fix.fix_type == FixType.FIX_3D
    assert fix.latitude_deg == pytest.approx(47.25, abs=1e-6)
    assert fix.longitude_deg == pytest.approx(-3.5, abs=1e-6)
    assert fix.altitude_m == pytest.approx(ALTITUDE_M)
    assert fix.ground_speed_mps == pytest.approx(8.0, abs=1e-3) and fix.course_deg == pytest.approx(270.0)
    assert fix.utc_time_s == pytest.approx(fake._utc_offset_s + 4.0)
    assert gps.stats.errors == 0


def test_without_airborne_model_no_fix_above_12_km():
    fake, gps = flight(dynamic_model=4)  # automotive: a driver configured wrongly
    run(gps, fake, 0.0, 5.0)
    assert gps.dynamic_model_confirmed and fake.dynamic_model == 4
    assert not gps.fix.healthy and gps.fix.fix_type == FixType.NO_FIX
    fake, gps = flight()
    fake.answer_ubx = False  # the receiver never takes the configuration
    run(gps, fake, 0.0, 5.0)
    assert not gps.dynamic_model_confirmed and not gps.fix.healthy
    assert gps.config_attempts >= 4 and gps.config_timeouts >= 3
    fake.answer_ubx = True
    run(gps, fake, 5.0, 9.0)
    assert gps.dynamic_model_confirmed and gps.fix.healthy


def test_nak_is_retried():
    fake, gps = flight()
    fake.nak_next_sets = 2
    run(gps, fake, 0.0, 5.0)
    assert gps.config_naks == 2 and gps.config_attempts == 3
    assert gps.dynamic_model_confirmed and gps.fix.healthy


def test_reset_detected_from_boot_text_and_model_reasserted():
    fake, gps = flight()
    run(gps, fake, 0.0, 5.0)
    fake.reset(reacquire_s=1.0)
    run(gps, fake, 5.0, 5.3)
    assert gps.restarts_detected == 1 and gps.reasserts == 1
    run(gps, fake, 5.3, 9.0)
    assert fake.dynamic_model == 6 and gps.dynamic_model_confirmed
    assert gps.fix.healthy and gps.fix.altitude_m == pytest.approx(ALTITUDE_M)


def test_silent_model_loss_found_by_periodic_poll():
    fake, gps = flight(reassert_interval_s=10.0)
    run(gps, fake, 0.0, 5.0)
    fake.silence = True
    fake.reset(reacquire_s=0.0)  # boot text lost: only the periodic poll can notice
    fake.silence = False
    run(gps, fake, 5.0, 9.0)
    assert gps.restarts_detected == 0 and not gps.fix.healthy and gps.dynamic_model_confirmed
    run(gps, fake, 9.0, 18.0)
    assert gps.reasserts == 1 and gps.config_attempts == 2
    assert gps.dynamic_model_confirmed and fake.dynamic_model == 6 and gps.fix.healthy


def test_silent_port_goes_unhealthy_after_stale_time():
    fake, gps = flight(stale_after_s=2.0)
    run(gps, fake, 0.0, 5.0)
    last_epoch_s = gps.fix.time_s
    fake.silence = True
    end = run(gps, fake, 5.0, last_epoch_s + 2.0)
    assert gps.fix.healthy
    run(gps, fake, end, last_epoch_s + 2.3)
    assert not gps.fix.healthy and gps.fix.fix_type == FixType.NO_GPS
    fake.silence = False
    run(gps, fake, last_epoch_s + 2.3, last_epoch_s + 4.0)
    assert gps.fix.healthy


def test_faults_seen_by_driver():
    fake, gps = flight()
    run(gps, fake, 0.0, 5.0)
    fake.corrupt_checksums = True
    run(gps, fake, 5.0, 8.0)
    assert gps.nmea_checksum_errors >= 6 and not gps.fix.healthy
    fake.clear_faults()
    fake.garbage = True
    end = run(gps, fake, 8.0, 40.0)
    assert gps.fix.healthy
    fake.clear_faults()
    fake.position_jump(0.01, 0.0)
    run(gps, fake, end, end + 1.5)
    assert gps.fix.latitude_deg == pytest.approx(47.26, abs=1e-6)
    fake.no_fix = True
    run(gps, fake, end + 1.5, end + 3.0)
    assert not gps.fix.healthy and math.isnan(gps.fix.latitude_deg)


def test_five_hz_receiver():
    fake = FakeUbloxSerial(rate_hz=5.0)
    fake.set_truth(10.0, 20.0, 30000.0)
    gps = UbloxGps(fake)
    run(gps, fake, 0.0, 3.0, step_s=0.02)
    assert gps.fix.healthy and fake.epochs_sent == 15  # 0.0, 0.2 ... 2.8
    assert gps.fix.time_s == pytest.approx(2.8)
