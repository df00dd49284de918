"""MAVLink 2 signing: verification, replay protection, the forged-future-timestamp lockout, clock and key file."""

from __future__ import annotations

import hashlib
import os

import pytest
from pymavlink.dialects.v20 import common as mavlink

from flightsw.link.signing import (KeyFileError, SignatureResult, SignatureVerifier, SigningClock,
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


def test_clock_starts_at_stored_plus_margin_when_that_is_later() -> None:
    stored = NOW_TS + 10 * SECOND                   # last run's clock was ahead of ours (or ours is wrong)
    clock = SigningClock(stored, wall_clock=Wall(NOW_UNIX_S))
    assert clock.current == stored + 60 * SECOND
    assert clock.next_timestamp() == stored + 60 * SECOND + 1


def test_clock_starts_at_wall_clock_when_that_is_later() -> None:
    clock = SigningClock(NOW_TS - 3600 * SECOND, wall_clock=Wall(NOW_UNIX_S))
    assert clock.current == NOW_TS
    assert SigningClock(None, wall_clock=Wall(NOW_UNIX_S)).current == NOW_TS


def test_clock_without_rtc_relies_on_the_stored_value() -> None:
    clock = SigningClock(NOW_TS, wall_clock=Wall(0.0))   # board booted thinking it is 1970
    assert clock.current == NOW_TS + 60 * SECOND
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


def test_frames_signed_between_the_last_persist_and_a_reboot_cannot_be_replayed_after_it() -> None:
    """A frame captured just before a reboot (after our timestamp was last persisted) is a new stream to the
    rebooted vehicle: it must fall outside the window, however the operator's link was used before."""
    from flightsw.link.signing import BOOT_MARGIN_S, DEFAULT_MAX_BEHIND_S, PERSIST_INTERVAL_S, SigningClock

    assert DEFAULT_MAX_BEHIND_S < BOOT_MARGIN_S - PERSIST_INTERVAL_S
    stored = NOW_TS
    captured = stored + int(PERSIST_INTERVAL_S) * SECOND  # the newest a frame can be that was not yet persisted
    rebooted = SigningClock(stored, wall_clock=lambda: 0.0)  # no RTC
    verifier = SignatureVerifier(KEY)
    assert verifier.verify(frame(KEY, captured), rebooted.current) is SignatureResult.TOO_OLD
