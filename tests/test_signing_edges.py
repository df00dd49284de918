"""Signing at its edges: what counts as a signed MAVLink 2 frame (short, empty-payload, wrong-magic and padded
frames), the new-stream window at its boundary, every count, the bound on remembered streams (which ones are
forgotten), restoring streams (malformed and negative entries), and the signing clock at the ends of its range.
test_signing.py has the nominal behaviour."""

from __future__ import annotations

import pytest

from flightsw.link.signing import (MAX_TIMESTAMP, SignatureResult, SignatureVerifier, SigningClock, signature,
                                   unix_to_signing_timestamp)
from test_signing import KEY, NOW_TS, SECOND, Wall, frame


def empty_payload_frame(timestamp: int, key: bytes = KEY) -> bytes:
    """A signed MAVLink 2 frame with no payload bytes at all (the shortest there is: 25 bytes)."""
    header = bytes([0xFD, 0, 0x01, 0, 7, 255, 190]) + (0).to_bytes(3, "little")
    body = header + b"\x00\x00"  # the CRC is the caller's business, not the verifier's
    block_head = bytes([0]) + timestamp.to_bytes(6, "little")
    return body + block_head + signature(key, body + block_head)


# ----------------------------------------------------------------------------------------------- what is signed

@pytest.mark.parametrize("raw", [b"", b"\xfd", b"\xfd\x00", b"\xfd\x00\x01", b"\xfd" + b"\x00" * 23])
def test_a_frame_too_short_to_be_signed_is_unsigned(raw):
    assert SignatureVerifier(KEY).verify(raw) is SignatureResult.UNSIGNED


def test_a_signed_frame_with_an_empty_payload_is_checked():
    raw = empty_payload_frame(NOW_TS)
    assert len(raw) == 25
    assert SignatureVerifier(KEY).verify(raw) is SignatureResult.GOOD


def test_an_unsigned_frame_with_bytes_after_it_is_unsigned():
    raw = frame(None) + bytes(13)
    assert SignatureVerifier(KEY).verify(raw) is SignatureResult.UNSIGNED


def test_a_signed_frame_whose_first_byte_is_not_the_mavlink_2_magic_is_unsigned():
    raw = b"\xfe" + frame(KEY)[1:]
    assert SignatureVerifier(KEY).verify(raw) is SignatureResult.UNSIGNED


# ----------------------------------------------------------------------------------------------- new streams

@pytest.mark.parametrize("behind_s, result", [(60.0, SignatureResult.GOOD), (60.00001, SignatureResult.TOO_OLD)])
def test_a_new_stream_may_be_exactly_its_window_behind_the_trusted_time(behind_s, result):
    verifier = SignatureVerifier(KEY, max_behind_s=60.0)
    assert verifier.verify(frame(KEY, NOW_TS - round(behind_s * SECOND)), trusted_floor=NOW_TS) is result


def test_without_a_trusted_time_a_new_stream_at_timestamp_0_is_accepted():
    verifier = SignatureVerifier(KEY, max_behind_s=0.0)
    assert verifier.verify(empty_payload_frame(0)) is SignatureResult.GOOD


def test_every_result_is_counted():
    verifier = SignatureVerifier(KEY)
    for _ in range(2):
        verifier.verify(frame(bytes(32)))
        verifier.verify(frame(KEY, 5, system_id=9), trusted_floor=NOW_TS)
        verifier.verify(frame(None))
    verifier.verify(frame(KEY))
    verifier.verify(frame(KEY))
    verifier.verify(frame(KEY))
    stats = verifier.stats
    assert (stats.bad, stats.too_old, stats.unsigned, stats.good, stats.replay) == (2, 2, 2, 1, 2)


def test_a_short_key_is_refused_with_its_length():
    with pytest.raises(ValueError) as error:
        SignatureVerifier(bytes(31))
    assert str(error.value) == "secret key must be 32 bytes, got 31"


# ----------------------------------------------------------------------------------------------- remembered streams

def test_32_streams_are_remembered_by_default_and_the_oldest_is_forgotten_first():
    verifier = SignatureVerifier(KEY)
    for system_id in range(1, 34):
        assert verifier.verify(frame(KEY, NOW_TS + system_id, system_id=system_id)) is SignatureResult.GOOD
    assert verifier.last_timestamp(1, 190, 0) is None
    assert verifier.last_timestamp(2, 190, 0) == NOW_TS + 2 and verifier.last_timestamp(33, 190, 0) == NOW_TS + 33
    assert len(verifier.streams()) == 32


def test_exactly_as_many_streams_as_allowed_are_all_remembered():
    verifier = SignatureVerifier(KEY, max_streams=3)
    for system_id in (1, 2, 3):
        verifier.verify(frame(KEY, system_id=system_id))
    assert len(verifier.streams()) == 3
    verifier.restore({"1/190/0": NOW_TS + 9})
    assert len(verifier.streams()) == 3


def test_restoring_more_streams_than_allowed_keeps_the_newest_ones():
    verifier = SignatureVerifier(KEY, max_streams=2)
    verifier.restore({"1/1/0": 10, "2/1/0": 20, "3/1/0": 30})
    assert verifier.streams() == {"2/1/0": 20, "3/1/0": 30}


def test_a_malformed_stream_does_not_stop_the_restore_of_the_others():
    verifier = SignatureVerifier(KEY)
    verifier.restore({"bad": 5, "1/2": 5, "1/2/x": 5, "4/5/6": "7", "1/1/0": 10, "2/1/0": 20})
    assert verifier.streams() == {"1/1/0": 10, "2/1/0": 20}


@pytest.mark.parametrize("stamp, kept", [(0, True), (1, True), (-1, False)])
def test_a_restored_timestamp_is_kept_unless_it_is_negative(stamp, kept):
    verifier = SignatureVerifier(KEY)
    verifier.restore({"1/1/0": stamp})
    assert verifier.streams() == ({"1/1/0": stamp} if kept else {})


# ----------------------------------------------------------------------------------------------- the clock

def test_a_clock_with_nothing_stored_and_a_wall_clock_before_2015_starts_at_0():
    assert SigningClock(None, wall_clock=Wall(0.0)).current == 0
    assert SigningClock(0, wall_clock=Wall(0.0)).current == 0


@pytest.mark.parametrize("unix_s, timestamp", [(1e12, MAX_TIMESTAMP), (1_420_070_400.0, 0), (0.0, 0),
                                               (1_420_070_400.00001, 1)])
def test_a_signing_timestamp_is_clamped_to_its_48_bits(unix_s, timestamp):
    assert unix_to_signing_timestamp(unix_s) == timestamp


def test_the_clock_stays_at_its_last_value_once_it_reaches_48_bits():
    clock = SigningClock(MAX_TIMESTAMP - 2, wall_clock=Wall(0.0))
    assert clock.current == MAX_TIMESTAMP
    assert clock.next_timestamp() == MAX_TIMESTAMP and clock.next_timestamp() == MAX_TIMESTAMP
    clock.observe(MAX_TIMESTAMP + 5)
    assert clock.current == MAX_TIMESTAMP


def test_the_clock_counts_up_by_one_when_the_wall_clock_stands_still():
    clock = SigningClock(None, wall_clock=Wall(1_750_000_000.0))
    first = clock.current
    assert [clock.next_timestamp() for _ in range(3)] == [first + 1, first + 2, first + 3]
