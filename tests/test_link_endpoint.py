"""Endpoint: decoding what a pymavlink ground station sends, robustness against noise, and signed sending."""

from __future__ import annotations

import os
import random
import time

os.environ.setdefault("MAVLINK20", "1")   # make mavutil ground stations speak MAVLink 2 (needed for signing)

import pytest  # noqa: E402
from pymavlink import mavutil  # noqa: E402
from pymavlink.dialects.v20 import common as mavlink  # noqa: E402

from flightsw.link.endpoint import Endpoint, Received, mavlink_crc  # noqa: E402
from flightsw.link.signing import SignatureResult, SigningPolicy  # noqa: E402
from flightsw.link.transport import UdpTransport  # noqa: E402

KEY = bytes(range(1, 33))
GCS_SYSID = 255
GCS_COMPID = 190


class MemoryTransport:
    """An in-memory transport: tests put bytes in ``rx`` and find written frames in ``tx``."""

    def __init__(self, name: str = "mem") -> None:
        self.name = name
        self.rx = bytearray()
        self.tx: list[bytes] = []
        self.accept_writes = True

    def read_available(self, max_bytes: int) -> bytes:
        data = bytes(self.rx[:max_bytes])
        del self.rx[:max_bytes]
        return data

    def write(self, data: bytes) -> bool:
        if self.accept_writes:
            self.tx.append(bytes(data))
        return self.accept_writes

    def close(self) -> None:
        self.rx.clear()


def gcs_mav(key: bytes | None = None, *, timestamp: int | None = None, link_id: int = 0) -> mavlink.MAVLink:
    """A raw pymavlink ground-station object, optionally signing with ``key``."""
    mav = mavlink.MAVLink(None, srcSystem=GCS_SYSID, srcComponent=GCS_COMPID)
    if key is not None:
        mav.signing.secret_key = key
        mav.signing.sign_outgoing = True
        mav.signing.link_id = link_id
        mav.signing.timestamp = timestamp if timestamp is not None else int((time.time() - 1_420_070_400) * 1e5)
    return mav


def heartbeat(mav: mavlink.MAVLink, status: int = 4, *, mavlink1: bool = False) -> bytes:
    msg = mav.heartbeat_encode(mavlink.MAV_TYPE_GCS, mavlink.MAV_AUTOPILOT_INVALID, 0, 0, status)
    data = bytes(msg.pack(mav, force_mavlink1=mavlink1))
    mav.seq = (mav.seq + 1) % 256
    return data


def endpoint(signing: SigningPolicy | None = None, recorder=None) -> tuple[Endpoint, MemoryTransport]:
    transport = MemoryTransport()
    return Endpoint(transport, system_id=1, component_id=1, signing=signing, recorder=recorder), transport


def poll_until(ep: Endpoint, count: int, deadline_s: float = 2.0) -> list[Received]:
    got: list[Received] = []
    end = time.monotonic() + deadline_s
    while len(got) < count and time.monotonic() < end:
        batch = ep.poll()
        got += batch
        if not batch:
            time.sleep(0.002)
    return got


# ---------------------------------------------------------------- over real UDP


def test_messages_from_a_mavutil_ground_station_are_decoded() -> None:
    ep = Endpoint(UdpTransport(listen=("127.0.0.1", 0), send_to=None, name="gcs"), system_id=1, component_id=1,
                  signing=None, recorder=None)
    port = ep.transport.local_address[1]
    gcs = mavutil.mavlink_connection(f"udpout:127.0.0.1:{port}", source_system=GCS_SYSID,
                                     source_component=GCS_COMPID, dialect="common")
    try:
        gcs.mav.heartbeat_send(mavlink.MAV_TYPE_GCS, mavlink.MAV_AUTOPILOT_INVALID, 0, 0, 0)
        gcs.mav.command_long_send(1, 1, mavlink.MAV_CMD_REQUEST_MESSAGE, 0, 148, 0, 0, 0, 0, 0, 0)
        got = poll_until(ep, 2)
        assert [r.msg.get_type() for r in got] == ["HEARTBEAT", "COMMAND_LONG"]
        assert all(r.mavlink_version == 2 and not r.signed and r.signature is SignatureResult.UNSIGNED
                   and r.link == "gcs" and r.link_id is None for r in got)
        assert got[0].msg.get_srcSystem() == GCS_SYSID
        assert got[1].msg.command == mavlink.MAV_CMD_REQUEST_MESSAGE and got[1].msg.param1 == 148
        assert ep.stats.frames_received == 2
    finally:
        gcs.close()
        ep.close()


def test_signed_frames_are_accepted_by_a_mavutil_ground_station_with_the_same_key() -> None:
    policy = SigningPolicy.create(KEY)
    ep = Endpoint(UdpTransport(listen=("127.0.0.1", 0), send_to=None), system_id=1, component_id=1,
                  signing=policy, recorder=None, link_id=2)
    port = ep.transport.local_address[1]
    gcs = mavutil.mavlink_connection(f"udpout:127.0.0.1:{port}", source_system=GCS_SYSID,
                                     source_component=GCS_COMPID, dialect="common")
    try:
        gcs.setup_signing(KEY, sign_outgoing=True, link_id=7)
        gcs.mav.heartbeat_send(mavlink.MAV_TYPE_GCS, mavlink.MAV_AUTOPILOT_INVALID, 0, 0, 0)
        got = poll_until(ep, 1)
        assert len(got) == 1 and got[0].signed and got[0].authenticated and got[0].link_id == 7

        assert ep.send(ep.mav.heartbeat_encode(mavlink.MAV_TYPE_FREE_BALLOON, mavlink.MAV_AUTOPILOT_GENERIC,
                                               0, 0, mavlink.MAV_STATE_ACTIVE))
        reply = gcs.recv_match(type="HEARTBEAT", blocking=True, timeout=2.0)
        assert reply is not None and reply.type == mavlink.MAV_TYPE_FREE_BALLOON
        assert reply.get_signed() and reply.get_link_id() == 2
        assert gcs.mav.signing.goodsig_count == 1 and gcs.mav.signing.badsig_count == 0
    finally:
        gcs.close()
        ep.close()


# ---------------------------------------------------------------- decoding details


def test_mavlink1_frames_are_flagged() -> None:
    ep, transport = endpoint()
    gcs = gcs_mav()
    transport.rx += heartbeat(gcs, mavlink1=True) + heartbeat(gcs)
    got = ep.poll()
    assert [r.mavlink_version for r in got] == [1, 2]
    assert got[0].frame[0] == 0xFE and got[0].msg.system_status == 4


def test_frames_split_across_reads_are_reassembled() -> None:
    ep, transport = endpoint()
    data = heartbeat(gcs_mav()) * 3
    got = []
    for byte in data:
        transport.rx.append(byte)
        got += ep.poll()
    assert len(got) == 3 and ep.stats.bytes_discarded == 0


def test_poll_reads_a_bounded_number_of_bytes() -> None:
    ep, transport = endpoint()
    one = heartbeat(gcs_mav())
    transport.rx += one * 100
    got = ep.poll(max_bytes=10 * len(one) + 5)
    assert len(got) == 10
    assert len(transport.rx) == 90 * len(one) - 5
    assert ep.buffered_bytes == 5
    assert len(ep.poll(max_bytes=10_000)) == 90


def test_recorder_gets_every_frame_and_its_errors_are_contained() -> None:
    recorded: list[bytes] = []
    ep, transport = endpoint(recorder=recorded.append)
    incoming = heartbeat(gcs_mav())
    transport.rx += incoming
    ep.poll()
    assert ep.send(ep.mav.heartbeat_encode(0, 0, 0, 0, 0))
    assert recorded == [incoming, transport.tx[0]]

    def broken(frame: bytes) -> None:
        raise OSError("disk full")

    ep2, transport2 = endpoint(recorder=broken)
    transport2.rx += incoming
    assert len(ep2.poll()) == 1
    assert ep2.send(ep2.mav.heartbeat_encode(0, 0, 0, 0, 0))
    assert ep2.stats.recorder_errors == 2


def test_send_counts_failures_and_unpackable_messages() -> None:
    ep, transport = endpoint()
    transport.accept_writes = False
    assert ep.send(ep.mav.heartbeat_encode(0, 0, 0, 0, 0)) is False
    assert ep.stats.send_failures == 1
    transport.accept_writes = True
    assert ep.send(ep.mav.heartbeat_encode(0, 0, 0, 0, 9999)) is False   # system_status is a uint8
    assert ep.stats.pack_errors == 1
    assert ep.send(ep.mav.heartbeat_encode(0, 0, 0, 0, 0)) is True
    assert ep.stats.frames_sent == 1


def test_sent_frames_are_mavlink2_with_increasing_sequence() -> None:
    ep, transport = endpoint()
    for _ in range(3):
        ep.send(ep.mav.heartbeat_encode(0, 0, 0, 0, 0))
    assert [f[0] for f in transport.tx] == [0xFD] * 3
    assert [f[4] for f in transport.tx] == [0, 1, 2]
    assert all(f[5] == 1 and f[6] == 1 for f in transport.tx)


def test_crc_matches_pymavlink() -> None:
    rng = random.Random(5)
    for _ in range(50):
        data = bytes(rng.randrange(256) for _ in range(rng.randrange(300)))
        extra = rng.randrange(256)
        reference = mavlink.x25crc(data)
        reference.accumulate(bytes([extra]))
        assert mavlink_crc(data, extra) == reference.crc


# ---------------------------------------------------------------- garbage in


def test_random_bytes_never_raise_and_yield_nothing() -> None:
    ep, transport = endpoint(signing=SigningPolicy.create(KEY))
    rng = random.Random(1234)
    noise = bytes(rng.randrange(256) for _ in range(60_000))
    # extra frame starts so the header, length and CRC paths are all exercised
    noise += bytes(rng.choice((0xFD, 0xFE, 0x00, 0x01, rng.randrange(256))) for _ in range(20_000))
    transport.rx += noise
    got = []
    while transport.rx:
        got += ep.poll(max_bytes=2048)
        assert ep.buffered_bytes < 280       # only an unfinished frame is kept
    assert got == []
    stats = ep.stats
    assert stats.bad_crc + stats.unknown_msg + stats.malformed > 100
    assert stats.frames_received == 0


def test_each_error_kind_is_counted_and_the_next_frame_survives() -> None:
    ep, transport = endpoint()
    gcs = gcs_mav()
    good = heartbeat(gcs)
    corrupt = bytearray(heartbeat(gcs))
    corrupt[12] ^= 0x40                                              # payload bit: bad CRC
    unknown = bytes([0xFD, 2, 0, 0, 0, 9, 9, 0xEF, 0xCD, 0xAB, 1, 2, 0x12, 0x34])   # message id 0xABCDEF
    bad_flags = bytearray(heartbeat(gcs))
    bad_flags[2] = 0x02                                              # an incompat flag nobody defined
    too_long = bytearray(heartbeat(gcs, mavlink1=True))
    too_long[1] = 200                                                # HEARTBEAT payload is 9 bytes, not 200
    transport.rx += bytes(corrupt) + good + unknown + good + bytes(bad_flags) + good + bytes(too_long) + good
    got = ep.poll()
    assert [r.frame for r in got] == [good] * 4
    assert ep.stats.bad_crc >= 1
    assert ep.stats.unknown_msg >= 1
    assert ep.stats.malformed >= 2


@pytest.mark.parametrize("mavlink1", [False, True])
def test_bit_flipped_frames_never_yield_a_wrong_message(mavlink1: bool) -> None:
    gcs = gcs_mav()
    original = heartbeat(gcs, status=3, mavlink1=mavlink1)
    follower = heartbeat(gcs, status=5)
    for bit in range(8 * len(original)):
        mutated = bytearray(original)
        mutated[bit // 8] ^= 1 << (bit % 8)
        ep, transport = endpoint()
        transport.rx += bytes(mutated) + follower + bytes(300)      # padding lets a bogus long length resolve
        got = ep.poll(max_bytes=4096)
        assert [r.frame for r in got] == [follower], f"bit {bit}"
        if bit < 8:                               # the start byte itself: the frame is just noise now
            assert ep.stats.bytes_discarded >= len(original)
        else:
            assert ep.stats.bad_crc + ep.stats.unknown_msg + ep.stats.malformed >= 1, f"bit {bit}"


def test_bit_flipped_signed_frames_never_authenticate() -> None:
    gcs = gcs_mav(KEY)
    original = heartbeat(gcs, status=3)
    follower = heartbeat(gcs, status=5)
    for bit in range(8 * len(original)):
        mutated = bytearray(original)
        mutated[bit // 8] ^= 1 << (bit % 8)
        ep, transport = endpoint(signing=SigningPolicy.create(KEY))
        transport.rx += bytes(mutated) + follower + bytes(300)
        got = ep.poll(max_bytes=4096)
        assert got[-1].frame == follower and got[-1].authenticated, f"bit {bit}"
        for r in got[:-1]:                       # only the signature block escapes the CRC: decodes, fails auth
            assert not r.authenticated and r.msg.system_status == 3, f"bit {bit}"


# ---------------------------------------------------------------- signing on the endpoint


def test_signed_receive_results() -> None:
    ep, transport = endpoint(signing=SigningPolicy.create(KEY))
    gcs = gcs_mav(KEY)
    first = heartbeat(gcs)
    transport.rx += first + first + heartbeat(gcs_mav(bytes(32))) + heartbeat(gcs_mav())
    got = ep.poll()
    assert [r.signature for r in got] == [SignatureResult.GOOD, SignatureResult.REPLAY,
                                          SignatureResult.BAD_SIGNATURE, SignatureResult.UNSIGNED]
    assert [r.authenticated for r in got] == [True, False, False, False]
    assert (ep.stats.sig_good, ep.stats.sig_replay, ep.stats.sig_bad, ep.stats.unsigned) == (1, 1, 1, 1)


def test_signed_frames_without_a_key_are_not_checked() -> None:
    ep, transport = endpoint()
    transport.rx += heartbeat(gcs_mav(KEY))
    (got,) = ep.poll()
    assert got.signed and got.signature is SignatureResult.NOT_CHECKED and not got.authenticated


def test_our_signed_frames_verify_with_pymavlink_and_timestamps_increase() -> None:
    policy = SigningPolicy.create(KEY)
    ep, transport = endpoint(signing=policy)
    ep.link_id = 4
    for _ in range(3):
        assert ep.send(ep.mav.heartbeat_encode(0, 0, 0, 0, 0))
    receiver = mavlink.MAVLink(None)
    receiver.signing.secret_key = KEY
    for data in transport.tx:
        msg = receiver.decode(bytearray(data))
        assert msg.get_signed() and msg.get_link_id() == 4
    stamps = [int.from_bytes(f[-12:-6], "little") for f in transport.tx]
    assert stamps[0] < stamps[1] < stamps[2] <= policy.clock.current

    wrong = mavlink.MAVLink(None)
    wrong.signing.secret_key = bytes(32)
    with pytest.raises(mavlink.MAVError):
        wrong.decode(bytearray(transport.tx[0]))


def test_signing_can_be_switched_off() -> None:
    ep, transport = endpoint(signing=SigningPolicy.create(KEY))
    ep.set_signing(None)
    assert ep.send(ep.mav.heartbeat_encode(0, 0, 0, 0, 0))
    assert transport.tx[0][2] & 0x01 == 0 and len(transport.tx[0]) == 12 + 9


# ---------------------------------------------------------------- our framing against pymavlink's pack

_INT_RANGES = {"uint8_t": (0, 0xFF), "int8_t": (-0x80, 0x7F), "uint16_t": (0, 0xFFFF), "int16_t": (-0x8000, 0x7FFF),
               "uint32_t": (0, 0xFFFF_FFFF), "int32_t": (-0x8000_0000, 0x7FFF_FFFF),
               "uint64_t": (0, 0xFFFF_FFFF_FFFF_FFFF), "int64_t": (-0x8000_0000_0000_0000, 0x7FFF_FFFF_FFFF_FFFF)}


def _random_field(rng: random.Random, field_type: str, array_length: int):
    """A value pymavlink can pack: zero often (so trailing-zero truncation is exercised), else anything in range."""
    if field_type == "char":
        size = array_length or 1
        return bytes(rng.randrange(32, 127) for _ in range(rng.choice([0, size, rng.randint(0, size)])))[:size] \
            if array_length else bytes([rng.randrange(32, 127)])

    def scalar():
        if rng.random() < 0.3:
            return 0
        if field_type in ("float", "double"):
            return rng.uniform(-1e6, 1e6)
        return rng.randint(*_INT_RANGES[field_type])
    return [scalar() for _ in range(array_length)] if array_length else scalar()


def _random_message(rng: random.Random, msg_type: type) -> mavlink.MAVLink_message:
    array_lengths = dict(zip(msg_type.ordered_fieldnames, msg_type.array_lengths))  # these are in wire order
    values = [_random_field(rng, field_type, array_lengths[name])
              for name, field_type in zip(msg_type.fieldnames, msg_type.fieldtypes)]
    return msg_type(*values)


@pytest.mark.parametrize("fastcrc", [True, False])
@pytest.mark.parametrize("signed", [False, True])
def test_sent_frames_are_byte_identical_to_pymavlinks_pack_for_every_message_type(signed: bool, fastcrc: bool,
                                                                                monkeypatch) -> None:
    from flightsw.link import endpoint as module

    if not fastcrc:
        monkeypatch.setattr(module, "_mcrf4xx", None)   # the table CRC, as on a board without fastcrc
    elif module._mcrf4xx is None:
        pytest.skip("fastcrc is not installed")
    rng = random.Random(20240621)
    policy = SigningPolicy.create(KEY, wall_clock=lambda: 1_700_000_000.0) if signed else None
    ep, transport = endpoint(signing=policy)
    ep.link_id = 9
    reference = mavlink.MAVLink(None, srcSystem=1, srcComponent=1)
    if signed:
        reference.signing.secret_key = KEY
        reference.signing.sign_outgoing = True
        reference.signing.link_id = 9
    checked = 0
    for msg_type in sorted(mavlink.mavlink_map.values(), key=lambda cls: cls.id):
        for _ in range(3):   # 3 per type: more than 256 frames in all, so the sequence number wraps too
            msg = _random_message(rng, msg_type)
            if signed:
                reference.signing.timestamp = policy.clock.current + 1   # what the endpoint signs with next
            assert ep.send(msg), msg_type.msgname
            assert transport.tx[-1] == msg.pack(reference), msg_type.msgname
            reference.seq = (reference.seq + 1) % 256
            checked += 1
    assert checked == ep.stats.frames_sent > 256


def test_an_all_zero_payload_keeps_one_byte_as_pymavlink_does() -> None:
    ep, transport = endpoint()
    msg = ep.mav.heartbeat_encode(0, 0, 0, 0, 0)
    msg.mavlink_version = 0
    assert ep.send(msg)
    assert transport.tx[0][1] == 1 and transport.tx[0] == msg.pack(mavlink.MAVLink(None, 1, 1))


def test_the_checksum_is_the_same_with_and_without_fastcrc() -> None:
    from flightsw.link import endpoint as module

    rng = random.Random(7)
    for size in (0, 1, 9, 37, 255, 280):
        data = bytes(rng.randrange(256) for _ in range(size))
        extra = rng.randrange(256)
        assert module.table_crc(data, extra) == module.table_crc(bytearray(data), extra)
        if module._mcrf4xx is not None:
            assert mavlink_crc(data, extra) == mavlink_crc(bytearray(data), extra) == module.table_crc(data, extra)
