"""The u-blox driver's stream splitting, NMEA parsing, UBX handling and port-failure behaviour."""

from __future__ import annotations

import math
import random
from datetime import datetime, timezone

import pytest

from hal.interfaces import FixType, Gps
from hal import ublox
from hal.ublox import (MAX_READ_BYTES, UbloxGps, nav5_set_payload, open_serial_gps, parse_latitude,
                       parse_longitude, parse_utc, ubx_checksum, ubx_frame)

# Textbook sentences with their published checksums.
GGA = b"$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*47\r\n"
RMC = b"$GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W*6A\r\n"
GSA = b"$GPGSA,A,3,04,05,,09,12,,,24,,,,,2.5,1.3,2.1*39\r\n"
EPOCH = RMC + GGA + GSA


def sentence(body: str) -> bytes:
    """Independent checksum computation for test vectors."""
    checksum = 0
    for char in body:
        checksum ^= ord(char)
    return f"${body}*{checksum:02X}\r\n".encode()


@pytest.fixture(autouse=True)
def no_sleep(monkeypatch):
    def fail(*_args):
        raise AssertionError("time.sleep called")

    monkeypatch.setattr("time.sleep", fail)


class ScriptedPort:
    """A pyserial-like port whose received bytes the test supplies."""

    def __init__(self) -> None:
        self.rx = bytearray()
        self.written: list[bytes] = []
        self.read_sizes: list[int] = []
        self.fail_reads = False
        self.fail_writes = False
        self.closed = False

    @property
    def in_waiting(self) -> int:
        if self.fail_reads:
            raise OSError(5, "Input/output error")
        return len(self.rx)

    def read(self, size: int = 1) -> bytes:
        self.read_sizes.append(size)
        data = bytes(self.rx[:size])
        del self.rx[:size]
        return data

    def write(self, data: bytes) -> int:
        if self.fail_writes:
            raise OSError(5, "Input/output error")
        self.written.append(bytes(data))
        return len(data)

    def reset_input_buffer(self) -> None:
        self.rx.clear()

    def close(self) -> None:
        self.closed = True


def feed(data: bytes, gps: UbloxGps | None = None, now_s: float = 1.0, **options) -> UbloxGps:
    port = ScriptedPort() if gps is None else gps._port
    gps = gps or UbloxGps(port, **options)
    port.rx += data
    gps.update(now_s)
    return gps


def test_satisfies_gps_protocol():
    assert isinstance(UbloxGps(ScriptedPort()), Gps)


def test_textbook_epoch_parsed():
    fix = feed(EPOCH).fix
    assert fix.healthy
    assert fix.latitude_deg == pytest.approx(48 + 7.038 / 60, abs=1e-9)
    assert fix.longitude_deg == pytest.approx(11 + 31.0 / 60, abs=1e-9)
    assert fix.altitude_m == pytest.approx(545.4)
    assert fix.ground_speed_mps == pytest.approx(22.4 * 1852 / 3600)
    assert fix.course_deg == pytest.approx(84.4)
    assert fix.satellites == 8
    assert fix.fix_type == FixType.FIX_3D
    assert fix.hdop == pytest.approx(1.3) and fix.vdop == pytest.approx(2.1)
    assert fix.utc_time_s == datetime(1994, 3, 23, 12, 35, 19, tzinfo=timezone.utc).timestamp()
    assert fix.time_s == 1.0


@pytest.mark.parametrize("talker", ["GP", "GN", "GL", "GA", "BD", "GB"])
def test_every_talker_southern_western(talker):
    data = (sentence(f"{talker}RMC,235959.50,A,3351.12345,S,15112.54321,W,0.500,,311224,,,A,V")
            + sentence(f"{talker}GGA,235959.50,3351.12345,S,15112.54321,W,2,17,0.71,-12.3,M,22.1,M,,")
            + sentence(f"{talker}GSA,A,3,01,02,03,04,05,06,07,08,09,10,11,12,1.20,0.71,0.97,1"))
    fix = feed(data).fix
    assert fix.healthy
    assert fix.latitude_deg == pytest.approx(-(33 + 51.12345 / 60), abs=1e-9)
    assert fix.longitude_deg == pytest.approx(-(151 + 12.54321 / 60), abs=1e-9)
    assert fix.altitude_m == pytest.approx(-12.3)
    assert math.isnan(fix.course_deg)
    assert fix.satellites == 17
    expected_utc = datetime(2024, 12, 31, 23, 59, 59, 500000, tzinfo=timezone.utc)
    assert fix.utc_time_s == pytest.approx(expected_utc.timestamp())


def test_empty_fields_mean_no_fix():
    data = (sentence("GNRMC,,V,,,,,,,,,,N,V") + sentence("GNGGA,,,,,,0,00,99.99,,,,,,")
            + sentence("GNGSA,A,1,,,,,,,,,,,,,99.99,99.99,99.99,1"))
    gps = feed(data)
    assert not gps.fix.healthy
    assert gps.fix.fix_type == FixType.NO_FIX
    assert math.isnan(gps.fix.latitude_deg) and math.isnan(gps.fix.utc_time_s)
    assert gps.malformed_sentences == 0 and gps.stats.errors == 0


def test_fix_lost_after_valid_epoch():
    gps = feed(EPOCH)
    feed(sentence("GPRMC,123520,V,,,,,,,230394,,,N") + sentence("GPGGA,123520,,,,,0,03,,,,,,,"), gps, 2.0)
    assert not gps.fix.healthy and gps.fix.fix_type == FixType.NO_FIX


def test_rmc_valid_but_gga_without_fix_is_unhealthy():
    gps = feed(RMC + sentence("GPGGA,123519,,,,,0,02,,,,,,,"))
    assert not gps.fix.healthy


def test_gsa_2d_fix():
    gps = feed(RMC + GGA + sentence("GPGSA,A,2,04,05,09,,,,,,,,,,3.0,2.0,2.2"))
    assert gps.fix.healthy and gps.fix.fix_type == FixType.FIX_2D


def test_bad_checksum_rejected_and_counted():
    bad_gga = GGA.replace(b"*47", b"*48")
    missing = b"$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,\r\n"
    gps = feed(bad_gga + missing + b"$GPGSA,A,3*ZZ\r\n")
    assert gps.nmea_checksum_errors == 3
    assert gps.stats.errors == 3
    assert not gps.fix.healthy and math.isnan(gps.fix.latitude_deg)


def test_partial_sentences_across_reads():
    gps = UbloxGps(ScriptedPort())
    for i, byte in enumerate(EPOCH):
        gps._port.rx.append(byte)
        gps.update(1.0 + i * 0.001)
        if i < len(RMC) + len(GGA) - 2:  # GGA is complete at its CR
            assert math.isnan(gps.fix.altitude_m)
    assert gps.fix.healthy and gps.fix.altitude_m == pytest.approx(545.4)
    assert gps.stats.errors == 0 and gps._splitter.garbage_bytes <= 3  # only LFs that arrived after their CR


def test_binary_garbage_between_and_inside_sentences():
    rng = random.Random(7)
    noise = bytes(rng.randrange(256) for _ in range(300)) + b"$$\xb5\x62\x01\x07\xff" + b"$GPGGA,12\x00\xff"
    gps = feed(noise + b"\r\n" + RMC + rng.randbytes(40) + b"\n" + GGA + GSA)
    assert gps.fix.healthy and gps.fix.satellites == 8
    assert gps._splitter.garbage_bytes > 0 and gps._splitter.broken_lines >= 1


def test_fuzzed_streams_never_raise():
    for seed in range(40):
        rng = random.Random(seed)
        gps = UbloxGps(ScriptedPort())
        pieces = [EPOCH, rng.randbytes(rng.randrange(600)), b"\xb5\x62" + rng.randbytes(30), b"$" * 5,
                  EPOCH[:rng.randrange(len(EPOCH))], bytes([0xB5]) * 3, b"$GPTXT" + b"\n" * 3]
        stream = b"".join(rng.choice(pieces) for _ in range(30))
        for i in range(0, len(stream), 97):
            gps._port.rx += stream[i:i + 97]
            gps.update(i * 1e-3)
        gps._port.rx += b"\r\n" + bytes(1100) + EPOCH  # flowing data completes any false UBX sync
        gps.update(100.0)
        gps.update(100.1)
        assert gps.fix.healthy, seed


def test_overlong_line_dropped():
    gps = feed(b"$GPGGA," + b"1" * 500 + b"*00\r\n" + EPOCH)
    assert gps._splitter.overlong_lines == 1
    assert gps.fix.healthy


def test_ubx_frames_interleaved_with_nmea():
    pvt = ubx_frame(0x01, 0x07, b"\r\n$GPGGA," + bytes(range(83)))  # payload that looks like text
    corrupt = bytearray(ubx_frame(0x01, 0x07, bytes(92)))
    corrupt[-1] ^= 0xFF
    ack = ubx_frame(0x05, 0x01, bytes((0x06, 0x24)))
    stream = RMC + pvt + bytes(corrupt) + GGA + ack + GSA
    gps = UbloxGps(ScriptedPort())
    for i in range(0, len(stream), 13):
        gps._port.rx += stream[i:i + 13]
        gps.update(1.0)
    assert gps.fix.healthy and gps.fix.satellites == 8
    assert gps._splitter.ubx_checksum_errors >= 1
    assert gps.stats.reads >= 5


def test_out_of_range_coordinates_counted():
    gps = feed(sentence("GPGGA,123519,9507.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,")
               + sentence("GPGGA,123519,4807.038,N,01161.000,E,1,08,0.9,545.4,M,46.9,M,,"))
    assert gps.stats.out_of_range == 2 and not gps.fix.healthy


def test_coordinate_helpers():
    assert parse_latitude("0000.000", "S") == 0.0
    assert parse_longitude("17959.99999", "W") == pytest.approx(-(179 + 59.99999 / 60))
    assert math.isnan(parse_latitude("", ""))
    with pytest.raises(ValueError):
        parse_latitude("4807.038", "X")


def test_stale_after_silence():
    gps = feed(EPOCH, stale_after_s=2.0)
    gps.update(2.9)
    assert gps.fix.healthy
    gps.update(3.1)
    assert not gps.fix.healthy and gps.fix.fix_type == FixType.NO_GPS
    assert gps.stats.last_error == "port silent"


def test_fix_follows_an_input_that_ages_out_without_new_bytes():
    gps = feed(RMC + GGA + sentence("GPGSA,A,2,04,05,09,,,,,,,,,,3.0,2.0,2.2"), stale_after_s=2.0)
    fix = gps.fix
    gps.update(1.5)
    assert gps.fix is fix  # nothing arrived and nothing aged out: the fix stands as it was
    feed(RMC + GGA, gps, 2.5)
    assert gps.fix.fix_type == FixType.FIX_2D and gps.fix.time_s == 2.5  # the GSA of 1.0 s still counts
    gps.update(3.5)  # no bytes: only the GSA has aged out
    assert gps.fix.healthy and gps.fix.fix_type == FixType.FIX_3D  # from the GGA altitude
    gps.update(4.6)  # now the port is silent too
    assert not gps.fix.healthy and gps.fix.fix_type == FixType.NO_GPS


def test_read_is_bounded():
    gps = feed(b"x" * 10000)
    assert max(gps._port.read_sizes) <= MAX_READ_BYTES
    assert len(gps._port.rx) == 10000 - MAX_READ_BYTES


def test_port_errors_do_not_raise():
    port = ScriptedPort()
    port.fail_reads = port.fail_writes = True
    gps = UbloxGps(port)
    gps.update(0.0)
    gps.update(5.0)
    assert gps.stats.errors >= 2 and not gps.fix.healthy


def test_reopens_after_read_failure():
    ports = [ScriptedPort(), ScriptedPort()]
    ports[0].fail_reads = True
    gps = UbloxGps(ports[0], opener=lambda: ports[1], reopen_interval_s=1.0)
    gps.update(0.0)
    assert ports[0].closed and not gps.port_open
    gps.update(0.5)
    assert not gps.port_open
    ports[1].rx += b"stale"  # discarded by reset_input_buffer on open
    gps.update(1.0)
    assert gps.port_open and gps.stats.reinits == 1
    ports[1].rx += EPOCH
    gps.update(1.1)
    assert gps.fix.healthy


def test_missing_serial_device_does_not_raise():
    gps = open_serial_gps("/dev/nonexistent-gps-device", 9600, name="gps0", reopen_interval_s=1.0)
    assert gps.name == "gps0" and not gps.port_open
    assert gps.stats.errors == 1
    gps.update(0.0)
    gps.update(0.5)
    gps.update(1.0)
    assert gps.stats.errors == 3  # construction, then one retry per reopen interval
    assert not gps.fix.healthy and gps.fix.fix_type == FixType.NO_GPS


def test_startup_sends_airborne_nav5_set():
    gps = feed(b"")
    frame = gps._port.written[0]
    assert frame[:6] == b"\xb5\x62\x06\x24\x24\x00"
    assert frame[6:8] == b"\x01\x00" and frame[8] == 6
    assert frame[-2:] == ubx_checksum(frame[2:-2])
    assert ubx_frame(0x06, 0x24) == bytes.fromhex("b562062400002a84")  # the well-known NAV5 poll
    assert nav5_set_payload(7)[2] == 7 and len(nav5_set_payload(7)) == 36


def test_ack_then_poll_reply_confirms():
    gps = feed(b"", now_s=0.0)
    feed(ubx_frame(0x05, 0x01, b"\x06\x24"), gps, 0.1)
    assert gps._port.written[-1] == ubx_frame(0x06, 0x24)
    reply = bytearray(36)
    reply[2] = 6
    feed(ubx_frame(0x06, 0x24, bytes(reply)), gps, 0.2)
    assert gps.dynamic_model_confirmed and gps.reported_dynamic_model == 6
    assert gps.config_attempts == 1 and gps.config_polls == 1


def test_nak_and_timeout_cause_resend():
    gps = feed(b"", now_s=0.0, ack_timeout_s=1.0)
    feed(ubx_frame(0x05, 0x00, b"\x06\x24"), gps, 0.1)
    assert gps.config_naks == 1 and gps.config_attempts == 1
    gps.update(0.4)
    assert gps.config_attempts == 2
    gps.update(1.3)
    assert gps.config_attempts == 2
    gps.update(1.5)
    assert gps.config_attempts == 3 and gps.config_timeouts == 1
    assert not gps.dynamic_model_confirmed


def test_boot_text_triggers_reconfiguration_once():
    gps = feed(b"", now_s=0.0)
    feed(ubx_frame(0x05, 0x01, b"\x06\x24"), gps, 0.1)
    feed(ubx_frame(0x06, 0x24, nav5_set_payload(6)), gps, 0.2)
    assert gps.dynamic_model_confirmed
    feed(sentence("GNTXT,01,01,01,ANTENNA OPEN"), gps, 0.3)
    assert gps.restarts_detected == 0
    boot = sentence("GNTXT,01,01,02,u-blox AG - www.u-blox.com") + sentence("GNTXT,01,01,02,HW UBX-M8030 00080000")
    feed(boot + sentence("GNTXT,01,01,02,PROTVER=18.00"), gps, 0.4)
    assert gps.restarts_detected == 1 and gps.reasserts == 1
    assert not gps.dynamic_model_confirmed and gps.config_attempts == 2


def test_a_fix_not_assembled_anew_is_the_one_a_full_assembly_gives():
    """The fix is not assembled again while nothing arrived and nothing aged out: two drivers on the same random
    stream, one made to assemble on every update, agree throughout, as sentences drop out one by one, the port
    falls silent, fails and reopens, and the clock steps back."""
    rng = random.Random(7)
    pieces = [RMC, GGA, GSA, sentence("GPGSA,A,2,04,05,09,,,,,,,,,,3.0,2.0,2.2"),
              sentence("GPGGA,123520,,,,,0,00,99.99,,,,,,"), sentence("GPRMC,123520,V,,,,,,,230394,,,N")]
    drivers = []
    for _ in range(2):
        ports = [ScriptedPort()]
        drivers.append(UbloxGps(ports[0], stale_after_s=2.0, reopen_interval_s=0.5,
                                opener=lambda ports=ports: ports.append(ScriptedPort()) or ports[-1]))
    lazy, full = drivers
    now_s, rebuilt = 0.0, 0
    for _ in range(4000):
        now_s += rng.choice((0.05, 0.05, 0.05, 0.05, 0.3, 1.0, 2.5, -0.2))
        data = b"".join(p for p in pieces if rng.random() < 0.4) if rng.random() < 0.1 else b""
        fail = rng.random() < 0.003
        for gps in drivers:
            if gps._port is not None:
                gps._port.rx += data
                gps._port.fail_reads = fail
        full._news = True
        before = lazy.fix
        lazy.update(now_s)
        full.update(now_s)
        rebuilt += lazy.fix is not before
        assert repr(lazy.fix) == repr(full.fix)
    assert lazy.stats.reinits >= 3 and 500 < rebuilt < 2000


def test_configuration_steps_skipped_until_due_are_the_ones_with_nothing_to_do():
    """``update`` runs the configuration only once something is due: a driver given an extra configuration step
    after every update sends exactly the same frames through ACKs, NAKs, poll replies, restarts and silences."""
    rng = random.Random(11)
    replies = [ubx_frame(0x05, 0x01, b"\x06\x24"), ubx_frame(0x05, 0x00, b"\x06\x24"),
               ubx_frame(0x06, 0x24, nav5_set_payload(6)), ubx_frame(0x06, 0x24, nav5_set_payload(0)),
               sentence("GNTXT,01,01,02,u-blox AG - www.u-blox.com")]
    plain, stepped = (UbloxGps(ScriptedPort(), ack_timeout_s=0.5, reassert_interval_s=3.0) for _ in range(2))
    now_s = 0.0
    for _ in range(4000):
        now_s += 0.05
        data = rng.choice(replies) if rng.random() < 0.08 else b""
        for gps in (plain, stepped):
            gps._port.rx += data
            gps.update(now_s)
        stepped._configure(now_s)
        assert stepped._port.written == plain._port.written
    counters = ("config_attempts", "config_polls", "config_naks", "config_timeouts", "reasserts")
    assert [getattr(stepped, c) for c in counters] == [getattr(plain, c) for c in counters]
    assert plain.config_polls > 20 and plain.config_naks > 10 and plain.config_timeouts > 10


def test_remembered_coordinates_and_dates_are_the_ones_parsed_afresh():
    """Coordinates and RMC dates are remembered (an epoch's RMC and GGA carry the same position, the date changes
    at midnight): through repeats and changes the answers equal a fresh parse, and bad fields still raise."""
    rng = random.Random(5)
    parse = ublox._coordinate.__wrapped__  # the parse without the memory
    values = [f"{rng.randrange(0, 90):02d}{rng.uniform(0, 59.99999):08.5f}" for _ in range(20)]
    for _ in range(500):
        value, hemisphere = rng.choice(values), rng.choice("NS")
        assert parse_latitude(value, hemisphere) == parse(value, hemisphere, 90.0, "S")
        value = f"0{value}"
        assert parse_longitude(value, hemisphere.replace("N", "E").replace("S", "W")) == \
            parse(value, hemisphere.replace("N", "E").replace("S", "W"), 180.0, "W")
    for _ in range(2):
        with pytest.raises(ValueError):
            parse_latitude("4807.038", "X")
        with pytest.raises(ValueError):
            parse_latitude("4860.000", "N")  # out of range (60 minutes)
    for _ in range(300):
        day, month, year = rng.randrange(1, 29), rng.randrange(1, 13), rng.choice((80, 99, 0, 24, 79))
        date = f"{day:02d}{month:02d}{year:02d}"
        expected = datetime(year + (1900 if year >= 80 else 2000), month, day, 12, 34, 56,
                            tzinfo=timezone.utc).timestamp()
        assert parse_utc(date, "123456.00") == expected
    with pytest.raises(ValueError):
        parse_utc("320624", "123456.00")
