"""MAVLink 2 signing: verification, replay protection, the forged-future-timestamp lockout, clock and key file."""

from __future__ import annotations

import hashlib
import os

import pytest
from pymavlink.dialects.v20 import common as mavlink

from flightsw.link.signing import (BOOT_MARGIN_S, KeyFileError, SignatureResult, SignatureVerifier, SigningClock,
                                   SigningPolicy, load_key_file, passphrase_to_key, signature_fields,
                                   unix_to_signing_timestamp)

KEY = bytes(range(32))
OTHER_KEY = bytes(range(100, 132))
SECOND = 100_000                      # signing-timestamp units per second
NOW_UNIX_S = 1_750_000_000.0
NOW_TS = unix_to_signing_timestamp(NOW_UNIX_S)


def frame(key: bytes | None, timestamp: int = NOW_TS, *, system_id: int = 255, component_id: int = 190,
          link_id: int = 0, mavlink1: bool = False, status: int = 4) -> bytes:
    """A HEARTBEAT frame as a ground station would send it, signed with ``key`` at ``timestamp``."""
    mav = mavlink.MAVLink(None, srcSystem=system_id, srcComponent=component_id)
    if key is not None:
        mav.signing.secret_key = key
        mav.signing.sign_outgoing = True
        mav.signing.timestamp = timestamp
        mav.signing.link_id = link_id
    msg = mav.heartbeat_encode(6, 8, 0, 0, status)
    return bytes(msg.pack(mav, force_mavlink1=mavlink1))


def test_good_frame_is_accepted() -> None:
    verifier = SignatureVerifier(KEY)
    assert verifier.verify(frame(KEY), NOW_TS) is SignatureResult.GOOD
    assert verifier.stats.good == 1
    assert verifier.last_timestamp(255, 190, 0) == NOW_TS


def test_signature_matches_the_spec_formula() -> None:
    signed = frame(KEY, NOW_TS + 7, link_id=3)
    assert signed[-6:] == hashlib.sha256(KEY + signed[:-6]).digest()[:6]
    assert signature_fields(signed) == (3, NOW_TS + 7)
    assert signature_fields(frame(None)) is None


def test_unsigned_frames() -> None:
    verifier = SignatureVerifier(KEY)
    assert verifier.verify(frame(None), NOW_TS) is SignatureResult.UNSIGNED
    assert verifier.verify(frame(None, mavlink1=True), NOW_TS) is SignatureResult.UNSIGNED
    assert verifier.stats.unsigned == 2 and verifier.stats.good == 0


def test_wrong_key_is_rejected() -> None:
    verifier = SignatureVerifier(KEY)
    assert verifier.verify(frame(OTHER_KEY), NOW_TS) is SignatureResult.BAD_SIGNATURE
    assert verifier.stats.bad == 1
    assert verifier.last_timestamp(255, 190, 0) is None


def test_any_altered_bit_breaks_the_signature() -> None:
    good = frame(KEY)
    for bit in range(8 * len(good)):
        altered = bytearray(good)
        altered[bit // 8] ^= 1 << (bit % 8)
        if bit // 8 == 2 and bit % 8 == 0:
            continue                       # clearing the signed flag makes it an (oddly sized) unsigned frame
        assert SignatureVerifier(KEY).verify(bytes(altered), NOW_TS) is not SignatureResult.GOOD, bit


def test_replay_of_the_same_frame_is_rejected() -> None:
    verifier = SignatureVerifier(KEY)
    signed = frame(KEY)
    assert verifier.verify(signed, NOW_TS) is SignatureResult.GOOD
    assert verifier.verify(signed, NOW_TS) is SignatureResult.REPLAY
    assert verifier.verify(frame(KEY, NOW_TS - 1), NOW_TS) is SignatureResult.REPLAY
    assert verifier.verify(frame(KEY, NOW_TS + 1), NOW_TS) is SignatureResult.GOOD
    assert verifier.stats.replay == 2 and verifier.stats.good == 2


def test_streams_are_independent() -> None:
    verifier = SignatureVerifier(KEY)
    assert verifier.verify(frame(KEY, NOW_TS + 50, link_id=0), NOW_TS) is SignatureResult.GOOD
    assert verifier.verify(frame(KEY, NOW_TS, link_id=1), NOW_TS) is SignatureResult.GOOD
    assert verifier.verify(frame(KEY, NOW_TS, component_id=191), NOW_TS) is SignatureResult.GOOD
    assert verifier.verify(frame(KEY, NOW_TS, system_id=254), NOW_TS) is SignatureResult.GOOD


def test_stale_new_stream_is_rejected() -> None:
    verifier = SignatureVerifier(KEY, max_behind_s=60.0)
    assert verifier.verify(frame(KEY, NOW_TS - 61 * SECOND), NOW_TS) is SignatureResult.TOO_OLD
    assert verifier.stats.too_old == 1
    assert verifier.last_timestamp(255, 190, 0) is None
    assert verifier.verify(frame(KEY, NOW_TS - 59 * SECOND), NOW_TS) is SignatureResult.GOOD
    # once the stream is known, only "newer than the last" matters, not the distance to our clock
    assert verifier.verify(frame(KEY, NOW_TS - 58 * SECOND), NOW_TS + 3600 * SECOND) is SignatureResult.GOOD


def test_forged_future_timestamp_does_not_lock_out_the_real_ground_station() -> None:
    policy = SigningPolicy.create(KEY, wall_clock=lambda: NOW_UNIX_S)
    year_ahead = NOW_TS + 365 * 24 * 3600 * SECOND
    forged = bytearray(frame(OTHER_KEY, year_ahead))                # attacker does not have the key
    assert policy.check(bytes(forged)) is SignatureResult.BAD_SIGNATURE
    forged_from_real = bytearray(frame(KEY, NOW_TS))                 # or bumps a captured frame's timestamp
    forged_from_real[-12:-6] = year_ahead.to_bytes(6, "little")
    assert policy.check(bytes(forged_from_real)) is SignatureResult.BAD_SIGNATURE
    assert policy.clock.current < NOW_TS + SECOND                   # our clock was not dragged forward either
    real = frame(KEY, NOW_TS + 5)
    assert policy.check(real) is SignatureResult.GOOD               # the real ground station still gets in
    assert policy.check(frame(KEY, NOW_TS + 6)) is SignatureResult.GOOD


def test_good_frame_advances_our_clock() -> None:
    policy = SigningPolicy.create(KEY, wall_clock=lambda: NOW_UNIX_S)
    ahead = NOW_TS + 500 * SECOND
    assert policy.check(frame(KEY, ahead)) is SignatureResult.GOOD
    assert policy.clock.current == ahead
    assert policy.clock.next_timestamp() == ahead + 1


def test_streams_are_bounded() -> None:
    verifier = SignatureVerifier(KEY, max_streams=4)
    for link_id in range(10):
        assert verifier.verify(frame(KEY, link_id=link_id), NOW_TS) is SignatureResult.GOOD
    assert verifier.last_timestamp(255, 190, 9) == NOW_TS
    assert verifier.last_timestamp(255, 190, 0) is None


def test_verifier_rejects_a_short_key() -> None:
    with pytest.raises(ValueError):
        SignatureVerifier(b"short")


# ---------------------------------------------------------------- outgoing timestamp


class Wall:
    def __init__(self, unix_s: float) -> None:
        self.unix_s = unix_s

    def __call__(self) -> float:
        return self.unix_s


MARGIN = int(BOOT_MARGIN_S * SECOND)


def test_clock_starts_at_stored_plus_margin_when_that_is_later() -> None:
    stored = NOW_TS + 10 * SECOND                   # last run's clock was ahead of ours (or ours is wrong)
    clock = SigningClock(stored, wall_clock=Wall(NOW_UNIX_S))
    assert clock.current == stored + MARGIN
    assert clock.next_timestamp() == stored + MARGIN + 1


def test_clock_starts_at_wall_clock_when_that_is_later() -> None:
    clock = SigningClock(NOW_TS - 3600 * SECOND, wall_clock=Wall(NOW_UNIX_S))
    assert clock.current == NOW_TS
    assert SigningClock(None, wall_clock=Wall(NOW_UNIX_S)).current == NOW_TS


def test_clock_without_rtc_relies_on_the_stored_value() -> None:
    clock = SigningClock(NOW_TS, wall_clock=Wall(0.0))   # board booted thinking it is 1970
    assert clock.current == NOW_TS + MARGIN
    clock.observe_unix_time(NOW_UNIX_S + 600)             # GPS time arrives
    assert clock.current == NOW_TS + 600 * SECOND
    assert clock.value_to_persist == clock.current


def test_clock_is_strictly_increasing_even_when_wall_clock_stalls_or_jumps_back() -> None:
    wall = Wall(NOW_UNIX_S)
    clock = SigningClock(None, wall_clock=wall)
    issued = [clock.next_timestamp() for _ in range(50)]
    wall.unix_s -= 3600
    issued += [clock.next_timestamp() for _ in range(50)]
    wall.unix_s += 7200
    issued += [clock.next_timestamp() for _ in range(5)]
    assert all(later > earlier for earlier, later in zip(issued, issued[1:]))
    assert issued[-1] >= unix_to_signing_timestamp(wall.unix_s)
    clock.observe(issued[-1] - 1000)                      # observing the past never moves the clock back
    assert clock.next_timestamp() == issued[-1] + 1


def test_timestamp_epoch_is_2015() -> None:
    assert unix_to_signing_timestamp(1_420_070_400.0) == 0
    assert unix_to_signing_timestamp(1_420_070_401.5) == 150_000
    assert unix_to_signing_timestamp(0.0) == 0


# ---------------------------------------------------------------- key file


def write_key_file(tmp_path, content: bytes, mode: int = 0o600):
    path = tmp_path / "signing.key"
    path.write_bytes(content)
    os.chmod(path, mode)
    return path


def test_raw_key_file(tmp_path) -> None:
    assert load_key_file(write_key_file(tmp_path, KEY)) == KEY


def test_hex_key_file(tmp_path) -> None:
    assert load_key_file(write_key_file(tmp_path, KEY.hex().encode() + b"\n")) == KEY
    assert load_key_file(write_key_file(tmp_path, KEY.hex().upper().encode())) == KEY


def test_passphrase_key_file_matches_mavproxy(tmp_path) -> None:
    key = load_key_file(write_key_file(tmp_path, b"passphrase:balloon over the alps\n"))
    assert key == hashlib.sha256(b"balloon over the alps").digest()
    assert key == passphrase_to_key("balloon over the alps")


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o620, 0o602, 0o666])
def test_key_file_open_to_others_is_refused(tmp_path, mode: int) -> None:
    with pytest.raises(KeyFileError, match="chmod 600"):
        load_key_file(write_key_file(tmp_path, KEY, mode))


def test_key_file_owner_only_modes_are_accepted(tmp_path) -> None:
    assert load_key_file(write_key_file(tmp_path, KEY, 0o400)) == KEY


def test_missing_key_file(tmp_path) -> None:
    with pytest.raises(KeyFileError, match="cannot open"):
        load_key_file(tmp_path / "absent.key")


def test_key_file_that_is_a_directory(tmp_path) -> None:
    directory = tmp_path / "keydir"
    directory.mkdir(mode=0o700)
    with pytest.raises(KeyFileError):
        load_key_file(directory)


@pytest.mark.parametrize("content", [
    b"",
    KEY[:31],
    KEY + b"\n\x00",
    b"ab" * 31 + b"\n",
    b"zz" * 32,
    b"passphrase:\n",
    b"passphrase:two\nlines\n",
    b"passphrase:\xff\xfe\n",
    b"x" * 5000,
])
def test_malformed_key_file_is_refused(tmp_path, content: bytes) -> None:
    with pytest.raises(KeyFileError):
        load_key_file(write_key_file(tmp_path, content))


def test_a_jump_of_the_timestamp_asks_for_a_persist_at_once() -> None:
    wall = Wall(NOW_UNIX_S)
    clock = SigningClock(None, wall_clock=wall)
    clock.persisted(clock.current)
    clock.next_timestamp()
    assert not clock.jumped
    wall.unix_s += 3600                                   # NTP steps the clock an hour ahead
    clock.next_timestamp()
    assert clock.jumped
    clock.persisted(clock.value_to_persist)
    assert not clock.jumped


class Vehicle:
    """What the daemon keeps across restarts for signing: the persisted timestamp and streams, GPS-anchored
    trusted time (here: the real time, ``NOW_UNIX_S`` + elapsed), and a wall clock that may be anything."""

    def __init__(self) -> None:
        self.stored_timestamp: int | None = None
        self.stored_streams: dict[str, int] = {}
        self.elapsed_s = 0.0

    def boot(self, wall_unix_s: float, *, gps: bool = True) -> SigningPolicy:
        floor = (lambda: unix_to_signing_timestamp(NOW_UNIX_S + self.elapsed_s)) if gps else (lambda: 0)
        return SigningPolicy.create(KEY, stored_timestamp=self.stored_timestamp, streams=self.stored_streams,
                                    wall_clock=lambda: wall_unix_s, trusted_floor=floor)

    def persist(self, policy: SigningPolicy) -> None:
        self.stored_timestamp = policy.clock.value_to_persist
        self.stored_streams = policy.verifier.streams()


@pytest.mark.parametrize("gps", [True, False])
def test_twenty_quick_restarts_never_refuse_a_ground_station_whose_clock_is_right(gps: bool) -> None:
    """Each start moves our own timestamp BOOT_MARGIN_S ahead of the persisted one, and it is persisted again:
    after 20 restarts 2 s apart we are minutes ahead of real time.  Nothing we verify is compared with it."""
    vehicle = Vehicle()
    vehicle.stored_timestamp = NOW_TS                    # the flight so far ran on a right clock
    for restart in range(20):
        policy = vehicle.boot(wall_unix_s=0.0)           # no RTC: the wall clock says 1970
        for _ in range(3):
            policy.clock.next_timestamp()
        vehicle.persist(policy)
        vehicle.elapsed_s += 2.0
    assert policy.clock.current > NOW_TS + 200 * SECOND  # our own clock ran ahead ...
    policy = vehicle.boot(wall_unix_s=0.0, gps=gps)
    for link_id in (0, 1):                               # ... yet the ground, on a known and on a new stream,
        right_now = unix_to_signing_timestamp(NOW_UNIX_S + vehicle.elapsed_s)
        assert policy.check(frame(KEY, right_now, link_id=link_id)) is SignatureResult.GOOD
        assert policy.check(frame(KEY, right_now - 50 * SECOND, link_id=link_id + 2)) is SignatureResult.GOOD


def test_frames_captured_before_a_restart_are_replays_after_it() -> None:
    vehicle = Vehicle()
    policy = vehicle.boot(wall_unix_s=NOW_UNIX_S)
    captured = [frame(KEY, NOW_TS + k * SECOND // 2) for k in range(5)]
    for captured_frame in captured:
        assert policy.check(captured_frame) is SignatureResult.GOOD
    vehicle.persist(policy)                              # the daemon persists before acting on a signed write
    vehicle.elapsed_s += 3.0
    rebooted = vehicle.boot(wall_unix_s=0.0)
    assert [rebooted.check(f) for f in captured] == [SignatureResult.REPLAY] * len(captured)
    fresh = frame(KEY, unix_to_signing_timestamp(NOW_UNIX_S + vehicle.elapsed_s))
    assert rebooted.check(fresh) is SignatureResult.GOOD


def test_a_new_stream_more_than_a_minute_behind_trusted_time_is_too_old() -> None:
    vehicle = Vehicle()
    vehicle.elapsed_s = 3600.0
    policy = vehicle.boot(wall_unix_s=0.0)
    trusted = unix_to_signing_timestamp(NOW_UNIX_S + vehicle.elapsed_s)
    assert policy.check(frame(KEY, trusted - 61 * SECOND)) is SignatureResult.TOO_OLD
    assert policy.check(frame(KEY, trusted - 59 * SECOND, link_id=1)) is SignatureResult.GOOD


def test_streams_restore_only_moves_forward_and_ignores_malformed_entries() -> None:
    verifier = SignatureVerifier(KEY)
    verifier.restore({"255/190/0": 100, "bad": 5, "1/2/x": 7, "3/4/5": "x"})
    verifier.restore({"255/190/0": 50})
    assert verifier.streams() == {"255/190/0": 100}
