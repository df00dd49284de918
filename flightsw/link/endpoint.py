"""One MAVLink endpoint per ground link: frames out (MAVLink 2, signed when configured) and frames in.

Sending: pymavlink encodes each message's payload (its own per-type ``pack``); the header, CRC and signature are
added here, byte for byte as pymavlink's ``pack`` adds them (the tests compare the two for every message type of
the dialect), because pymavlink's framing and signing cost more than encoding the payload itself.

Receiving uses our own framer rather than pymavlink's ``parse_char``: pymavlink discards a whole claimed frame
when its CRC fails, so a stray start byte in radio noise can swallow the genuine frame that follows.  Here a frame
that fails any check costs exactly one byte: the search for the next start byte resumes right after the false one.
pymavlink's ``MAVLink.decode`` then turns each checked frame into a message object; its receive-side signing is
left switched off (no key) because :mod:`flightsw.link.signing` verifies signatures correctly.

Work per :meth:`Endpoint.poll` call is bounded: at most ``max_bytes`` new bytes are read, the parse buffer never
holds more than those plus one unfinished frame (at most 280 bytes), and each byte position is examined once.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Callable

from pymavlink.dialects.v20 import common as mavlink

from flightsw.link.signing import SignatureResult, SigningPolicy, signature, signature_fields
from flightsw.link.transport import Transport

STX_V1 = 0xFE
STX_V2 = 0xFD
_HEADER_V1 = 6
_HEADER_V2 = 10
_CRC_BYTES = 2
_SIGNATURE_BYTES = 13
_IFLAG_SIGNED = 0x01
DEFAULT_POLL_BYTES = 2048
_V2_HEADER = struct.Struct("<BBBBBBBHB")  # magic, len, incompat, compat, seq, system, component, id low 16, id high 8

Recorder = Callable[[bytes], None]


def _make_crc_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8408 if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_CRC_TABLE = _make_crc_table()


try:  # the C implementation of the same checksum, which pymavlink uses too when it is installed
    from fastcrc.crc16 import mcrf4xx as _mcrf4xx
except ImportError:  # pragma: no cover - depends on the installation
    _mcrf4xx = None
_BYTE = tuple(bytes((value,)) for value in range(256))


def mavlink_crc(data: bytes | bytearray, crc_extra: int) -> int:
    """The X.25 (CRC-16/MCRF4XX) checksum MAVLink appends: over ``data`` (frame bytes after the start byte,
    up to the end of the payload) followed by the message's ``crc_extra`` byte."""
    if _mcrf4xx is None:
        return table_crc(data, crc_extra)
    return _mcrf4xx(_BYTE[crc_extra], _mcrf4xx(bytes(data), 0xFFFF))


def table_crc(data: bytes | bytearray, crc_extra: int) -> int:
    """:func:`mavlink_crc` computed in Python from a table (the fallback without ``fastcrc``)."""
    crc = 0xFFFF
    table = _CRC_TABLE
    for byte in data:
        crc = (crc >> 8) ^ table[(crc ^ byte) & 0xFF]
    return (crc >> 8) ^ table[(crc ^ crc_extra) & 0xFF]


def packed_payload(msg: mavlink.MAVLink_message) -> bytes:
    """``msg``'s payload as pymavlink's own ``pack`` of its message type lays it out (fields in wire order, strings
    and arrays padded to their declared size), before MAVLink 2 drops the trailing zero bytes.

    pymavlink has no call for the payload alone: each message type's ``pack`` builds it and hands it to the
    message's ``_pack``, which adds header, CRC and signature.  For this one call ``_pack`` is shadowed on the
    instance by a function that keeps the payload, so the fields are still encoded by pymavlink alone.
    """
    kept: list[bytes] = []
    msg._pack = lambda _mav, _crc_extra, payload, **_options: kept.append(payload)
    try:
        msg.pack(None)
    finally:
        del msg._pack
    return kept[0]


@dataclass(frozen=True, slots=True)
class Received:
    """One frame that passed framing, CRC and decoding.

    ``msg``: the decoded pymavlink message (``msg.get_type()``, ``msg.get_srcSystem()``, fields as attributes).
    ``mavlink_version``: 1 or 2 (a MAVLink 1 frame can never be signed).
    ``signed``: the frame carried a signature block.
    ``signature``: what that proved; only ``SignatureResult.GOOD`` means "sent by a holder of our key and not a
    replay" (see :attr:`authenticated`).  ``UNSIGNED`` for frames without a signature, ``NOT_CHECKED`` for signed
    frames on an endpoint that has no key.
    ``link_id``: the link id in the signature block (``None`` if unsigned); ``timestamp`` likewise, in 10 us units
    since 2015.
    ``frame``: the raw frame bytes exactly as received.  ``link``: the name of the transport it came in on.
    """

    msg: mavlink.MAVLink_message
    mavlink_version: int
    signed: bool
    signature: SignatureResult
    link_id: int | None
    timestamp: int | None
    frame: bytes
    link: str

    @property
    def authenticated(self) -> bool:
        """True only for a frame whose signature verified with our key and was not a replay or too old."""
        return self.signature is SignatureResult.GOOD


@dataclass(slots=True)
class EndpointStats:
    """Counters of one endpoint (the transport keeps its own byte-level counters)."""

    frames_received: int = 0
    frames_sent: int = 0
    send_failures: int = 0       # packed but the transport dropped or refused it
    pack_errors: int = 0         # the message could not be packed (a field out of range for its type)
    bad_crc: int = 0
    unknown_msg: int = 0         # a message id our dialect lacks (noise that looks like a frame start counts too)
    malformed: int = 0           # unsupported flags, a payload too long for its message, or undecodable
    bytes_discarded: int = 0     # bytes skipped while looking for a frame start
    recorder_errors: int = 0
    unsigned: int = 0
    sig_good: int = 0
    sig_bad: int = 0
    sig_replay: int = 0
    sig_too_old: int = 0
    sig_not_checked: int = 0
    last_error: str = ""


_SIG_COUNTER = {
    SignatureResult.GOOD: "sig_good", SignatureResult.UNSIGNED: "unsigned", SignatureResult.BAD_SIGNATURE: "sig_bad",
    SignatureResult.REPLAY: "sig_replay", SignatureResult.TOO_OLD: "sig_too_old",
    SignatureResult.NOT_CHECKED: "sig_not_checked",
}


class Endpoint:
    """MAVLink on one transport.

    ``system_id``/``component_id``: our identity in sent frames.  ``signing``: the vehicle's shared
    :class:`SigningPolicy`, or ``None`` to send unsigned and leave received signatures unchecked.
    ``recorder``: called with the raw bytes of every frame sent and every frame received (for the flight log);
    its exceptions are counted, never propagated.  ``link_id``: the link id written into our signatures.
    """

    def __init__(self, transport: Transport, *, system_id: int, component_id: int,
                 signing: SigningPolicy | None, recorder: Recorder | None, link_id: int = 0) -> None:
        self.transport = transport
        self.stats = EndpointStats()
        self.link_id = link_id
        self._recorder = recorder
        self._signing: SigningPolicy | None = None
        self.system_id = system_id
        self.component_id = component_id
        self._seq = 0
        self._tx = mavlink.MAVLink(None, srcSystem=system_id, srcComponent=component_id)
        self._rx = mavlink.MAVLink(None, srcSystem=system_id, srcComponent=component_id)
        self._rx.robust_parsing = True   # the receive object only decodes; it must never hold the key
        self._buf = bytearray()
        self.set_signing(signing)

    @property
    def name(self) -> str:
        return self.transport.name

    @property
    def buffered_bytes(self) -> int:
        """Bytes read but not yet parsed: the start of a frame still arriving (at most 279 between polls)."""
        return len(self._buf)

    @property
    def signing(self) -> SigningPolicy | None:
        return self._signing

    def set_signing(self, policy: SigningPolicy | None) -> None:
        """Start, change (new key from SETUP_SIGNING) or stop (``None``) signing on this endpoint."""
        self._signing = policy

    @property
    def mav(self) -> mavlink.MAVLink:
        """A pymavlink object for building messages: ``endpoint.mav.heartbeat_encode(...)``.  Send them with
        :meth:`send`, never with this object's ``*_send`` methods (it has no file to write to and no key)."""
        return self._tx

    # ---------------------------------------------------------------- sending

    def send(self, msg: mavlink.MAVLink_message) -> bool:
        """Pack ``msg`` as MAVLink 2 (signed when a policy is set), record it and write it.

        Returns ``True`` when the transport accepted the whole frame.  Never raises: a message that cannot be
        packed is counted in ``stats.pack_errors``, a dropped write in ``stats.send_failures``.
        """
        signing = self._signing
        timestamp = signing.clock.next_timestamp() if signing is not None else None
        try:
            frame = self._frame(msg, packed_payload(msg), timestamp)
        except (struct.error, ValueError, TypeError, OverflowError) as exc:
            self.stats.pack_errors += 1
            self.stats.last_error = f"pack {msg.get_type()}: {exc}"
            return False
        self._seq = (self._seq + 1) % 256
        self._record(frame)
        if not self.transport.write(frame):
            self.stats.send_failures += 1
            return False
        self.stats.frames_sent += 1
        return True

    def _frame(self, msg: mavlink.MAVLink_message, payload: bytes, timestamp: int | None) -> bytes:
        """The MAVLink 2 frame of ``msg`` exactly as pymavlink's ``pack`` makes it: the payload without its trailing
        zero bytes (at least one byte kept), the CRC, and the signature block when ``timestamp`` is given."""
        body = payload.rstrip(b"\x00") or payload[:1]
        msg_id = msg.get_msgId()  # not msg.id: some messages have a field of that name
        frame = _V2_HEADER.pack(STX_V2, len(body), 0 if timestamp is None else _IFLAG_SIGNED, 0, self._seq,
                                self.system_id, self.component_id, msg_id & 0xFFFF, msg_id >> 16) + body
        frame += mavlink_crc(frame[1:], msg.crc_extra).to_bytes(2, "little")
        if timestamp is None:
            return frame
        frame += bytes((self.link_id,)) + timestamp.to_bytes(6, "little")
        return frame + signature(self._signing.key, frame)

    # ---------------------------------------------------------------- receiving

    def poll(self, max_bytes: int = DEFAULT_POLL_BYTES) -> list[Received]:
        """Read up to ``max_bytes`` waiting bytes and return every complete, valid frame, oldest first.

        Pass the link's ``LinkConfig.max_rx_bytes_per_frame`` as ``max_bytes`` once per control-loop frame.

        Never blocks or raises.  Noise, bad CRCs, unknown message ids and malformed frames are counted in
        ``stats`` and skipped.  Signed frames are checked with the signing policy; frames whose signature fails
        are still returned (``authenticated`` is False) so the caller can decide and report.
        """
        data = self.transport.read_available(max_bytes)
        if data:
            self._buf += data
        if not self._buf:
            return []
        return self._extract_frames()

    def _extract_frames(self) -> list[Received]:
        buf = self._buf
        size = len(buf)
        out: list[Received] = []
        pos = 0
        starts = _StartFinder(buf)
        while True:
            start = starts.next_at_or_after(pos)
            if start < 0:
                self.stats.bytes_discarded += size - pos
                pos = size
                break
            self.stats.bytes_discarded += start - pos
            pos = start
            header_len = _HEADER_V2 if buf[pos] == STX_V2 else _HEADER_V1
            if size - pos < header_len:
                break
            payload_len = buf[pos + 1]
            if header_len == _HEADER_V2:
                flags = buf[pos + 2]
                if flags & ~_IFLAG_SIGNED:
                    self._skip_start("malformed", "unsupported incompat flags")
                    pos += 1
                    continue
                msg_id = buf[pos + 7] | (buf[pos + 8] << 8) | (buf[pos + 9] << 16)
                total = header_len + payload_len + _CRC_BYTES + (_SIGNATURE_BYTES if flags & _IFLAG_SIGNED else 0)
            else:
                msg_id = buf[pos + 5]
                total = header_len + payload_len + _CRC_BYTES
            msg_type = mavlink.mavlink_map.get(msg_id)
            if msg_type is None:
                self._skip_start("unknown_msg", f"unknown message id {msg_id}")
                pos += 1
                continue
            if payload_len > msg_type.unpacker.size:
                self._skip_start("malformed", f"payload of {payload_len} bytes too long for {msg_type.msgname}")
                pos += 1
                continue
            if size - pos < total:
                break
            crc_end = pos + header_len + payload_len
            wire_crc = buf[crc_end] | (buf[crc_end + 1] << 8)
            if mavlink_crc(buf[pos + 1:crc_end], msg_type.crc_extra) != wire_crc:
                self._skip_start("bad_crc", f"bad CRC on {msg_type.msgname}")
                pos += 1
                continue
            frame = bytes(buf[pos:pos + total])
            pos += total
            received = self._decode(frame, header_len == _HEADER_V2)
            if received is not None:
                out.append(received)
        del buf[:pos]
        return out

    def _skip_start(self, counter: str, why: str) -> None:
        setattr(self.stats, counter, getattr(self.stats, counter) + 1)
        self.stats.last_error = why
        self.stats.bytes_discarded += 1

    def _decode(self, frame: bytes, is_v2: bool) -> Received | None:
        try:
            msg = self._rx.decode(bytearray(frame))
        except (mavlink.MAVError, struct.error, ValueError, TypeError, IndexError) as exc:
            self.stats.malformed += 1
            self.stats.last_error = f"decode: {exc}"
            return None
        sig = signature_fields(frame) if is_v2 else None
        if sig is None:
            result = SignatureResult.UNSIGNED
        elif self._signing is None:
            result = SignatureResult.NOT_CHECKED
        else:
            result = self._signing.check(frame)
        counter = _SIG_COUNTER[result]
        setattr(self.stats, counter, getattr(self.stats, counter) + 1)
        self.stats.frames_received += 1
        self._record(frame)
        return Received(msg=msg, mavlink_version=2 if is_v2 else 1, signed=sig is not None, signature=result,
                        link_id=sig[0] if sig else None, timestamp=sig[1] if sig else None, frame=frame,
                        link=self.transport.name)

    def _record(self, frame: bytes) -> None:
        if self._recorder is None:
            return
        try:
            self._recorder(frame)
        except Exception as exc:  # noqa: BLE001 - a failing log writer must not take the ground link down
            self.stats.recorder_errors += 1
            self.stats.last_error = f"recorder: {exc}"

    def close(self) -> None:
        """Close the transport."""
        self.transport.close()


class _StartFinder:
    """Finds MAVLink start bytes in a buffer, remembering the next of each kind so a long run of one kind does not
    make the search for the other rescan the buffer every time."""

    def __init__(self, buf: bytearray) -> None:
        self._buf = buf
        self._next_v1 = -2
        self._next_v2 = -2

    def next_at_or_after(self, pos: int) -> int:
        """Index of the first start byte at or after ``pos``, or -1."""
        if self._next_v1 != -1 and self._next_v1 < pos:
            self._next_v1 = self._buf.find(STX_V1, pos)
        if self._next_v2 != -1 and self._next_v2 < pos:
            self._next_v2 = self._buf.find(STX_V2, pos)
        if self._next_v1 < 0:
            return self._next_v2
        if self._next_v2 < 0:
            return self._next_v1
        return min(self._next_v1, self._next_v2)
