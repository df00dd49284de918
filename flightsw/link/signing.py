"""MAVLink 2 message signing: verifying incoming signatures, our outgoing timestamp, and the key file.

Frame layout of a signed MAVLink 2 packet (``incompat_flags & 0x01`` set)::

    header (10) | payload (len) | CRC (2) | link id (1) | timestamp (6, little endian) | signature (6)

The signature is the first 6 bytes of ``SHA-256(secret_key + header + payload + CRC + link_id + timestamp)``,
i.e. of the key followed by every frame byte before the signature.  Timestamps count 10 microsecond units since
2015-01-01T00:00:00Z.

Why this module verifies signatures itself instead of letting pymavlink do it: pymavlink's ``check_signature``
records a stream's timestamp *before* it checks the signature, so one forged frame carrying a timestamp far in
the future makes every later genuine frame look like a replay.  :class:`SignatureVerifier` advances a stream's
timestamp only after the signature has been proven good.  The receiving ``MAVLink`` object must therefore never
be given the key (``mav.signing.secret_key`` stays ``None``), which keeps pymavlink's own check switched off.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import os
import stat
import string
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Callable

SIGNING_EPOCH_UNIX_S = 1_420_070_400          # 2015-01-01T00:00:00Z
TIMESTAMP_UNITS_PER_S = 100_000               # the timestamp counts 10 us units
MAX_TIMESTAMP = (1 << 48) - 1
BOOT_MARGIN_S = 60.0                           # added to the persisted timestamp at boot
PERSIST_INTERVAL_S = 10.0                      # the daemon persists our timestamp at least this often
# A new stream may be at most this far behind our timestamp.  It must stay below BOOT_MARGIN_S minus
# PERSIST_INTERVAL_S: frames signed after the last persist and before a reboot then fall behind the window after
# the reboot and cannot be replayed as a "new stream".  The cost: right after a reboot that took less than
# BOOT_MARGIN_S - DEFAULT_MAX_BEHIND_S (15 s), a ground station with a correct clock is refused until it is.
DEFAULT_MAX_BEHIND_S = 45.0
SIGNATURE_BLOCK_BYTES = 13
SECRET_KEY_BYTES = 32
PASSPHRASE_PREFIX = b"passphrase:"
_MAX_KEY_FILE_BYTES = 4096
_V2_MAGIC = 0xFD
_V2_HEADER_BYTES = 10
_IFLAG_SIGNED = 0x01


class SignatureResult(enum.Enum):
    """What the signature of one received frame proved."""

    GOOD = "good"                      # signed with our key, newer than anything seen on its stream
    UNSIGNED = "unsigned"              # no signature (MAVLink 1, or MAVLink 2 without the signed flag)
    BAD_SIGNATURE = "bad_signature"    # signed, but not with our key (or altered on the way)
    REPLAY = "replay"                  # good signature, timestamp not newer than the stream's last
    TOO_OLD = "too_old"                # good signature, new stream, timestamp too far behind our clock
    NOT_CHECKED = "not_checked"        # signed, but no key is configured here so nothing was verified


def unix_to_signing_timestamp(unix_time_s: float) -> int:
    """Convert a Unix time in seconds to a signing timestamp (10 us units since 2015), clamped to 48 bits."""
    units = int((unix_time_s - SIGNING_EPOCH_UNIX_S) * TIMESTAMP_UNITS_PER_S)
    return 0 if units < 0 else MAX_TIMESTAMP if units > MAX_TIMESTAMP else units  # once per frame sent: no min/max


def signature(key: bytes, signed_bytes: bytes | bytearray) -> bytes:
    """The 6-byte signature of a frame whose bytes before the signature (link id and timestamp included) are
    ``signed_bytes``: the first 6 bytes of SHA-256 of the key followed by those bytes."""
    return hashlib.sha256(key + signed_bytes).digest()[:6]


def signature_fields(frame: bytes | bytearray) -> tuple[int, int] | None:
    """``(link_id, timestamp)`` of a signed MAVLink 2 frame, or ``None`` when ``frame`` is not one."""
    if not _is_signed_v2(frame):
        return None
    return _block_fields(frame)


def _block_fields(frame: bytes | bytearray) -> tuple[int, int]:
    """``(link_id, timestamp)`` from the signature block of a frame known to be signed."""
    block = frame[-SIGNATURE_BLOCK_BYTES:]
    return block[0], int.from_bytes(block[1:7], "little")


def _is_signed_v2(frame: bytes | bytearray) -> bool:
    return (len(frame) >= _V2_HEADER_BYTES + 2 + SIGNATURE_BLOCK_BYTES and frame[0] == _V2_MAGIC
            and bool(frame[2] & _IFLAG_SIGNED)
            and len(frame) == _V2_HEADER_BYTES + frame[1] + 2 + SIGNATURE_BLOCK_BYTES)


@dataclass(slots=True)
class SignatureStats:
    good: int = 0
    bad: int = 0
    unsigned: int = 0
    replay: int = 0
    too_old: int = 0


class SignatureVerifier:
    """Checks signatures of received frames and guards each stream against replay.

    A stream is ``(system id, component id, link id)``.  ``secret_key`` is the 32-byte key.  A stream never seen
    before is accepted only if its timestamp is at most ``max_behind_s`` seconds behind our own signing timestamp
    (passed to :meth:`verify`).  Streams are forgotten oldest-first beyond ``max_streams``; a forgotten stream is
    then judged as new again.
    """

    def __init__(self, secret_key: bytes, *, max_behind_s: float = DEFAULT_MAX_BEHIND_S,
                 max_streams: int = 1024) -> None:
        if len(secret_key) != SECRET_KEY_BYTES:
            raise ValueError(f"secret key must be {SECRET_KEY_BYTES} bytes, got {len(secret_key)}")
        self._key = bytes(secret_key)
        self.max_behind_units = int(max_behind_s * TIMESTAMP_UNITS_PER_S)
        self.max_streams = max_streams
        self._streams: OrderedDict[tuple[int, int, int], int] = OrderedDict()
        self.stats = SignatureStats()

    def last_timestamp(self, system_id: int, component_id: int, link_id: int) -> int | None:
        """The newest accepted timestamp of a stream, or ``None`` if none was accepted."""
        return self._streams.get((system_id, component_id, link_id))

    def verify(self, frame: bytes | bytearray, local_timestamp: int) -> SignatureResult:
        """Judge one complete raw frame (CRC already checked by the caller).

        ``local_timestamp`` is our current signing timestamp (10 us units since 2015), used for the new-stream
        rule.  A stream's remembered timestamp moves forward only when the result is ``GOOD``.
        """
        if not _is_signed_v2(frame):
            self.stats.unsigned += 1
            return SignatureResult.UNSIGNED
        if not hmac.compare_digest(signature(self._key, frame[:-6]), bytes(frame[-6:])):
            self.stats.bad += 1
            return SignatureResult.BAD_SIGNATURE
        link_id, timestamp = _block_fields(frame)
        stream = (frame[5], frame[6], link_id)
        last = self._streams.get(stream)
        if last is not None:
            if timestamp <= last:
                self.stats.replay += 1
                return SignatureResult.REPLAY
        elif timestamp + self.max_behind_units < local_timestamp:
            self.stats.too_old += 1
            return SignatureResult.TOO_OLD
        self._streams[stream] = timestamp
        self._streams.move_to_end(stream)
        while len(self._streams) > self.max_streams:
            self._streams.popitem(last=False)
        self.stats.good += 1
        return SignatureResult.GOOD


class SigningClock:
    """Our outgoing signing timestamp: 10 us units since 2015-01-01T00:00:00Z, strictly increasing.

    At boot it starts at ``max(wall clock, stored_timestamp + 60 s)`` so that a reboot can never reuse a
    timestamp even when the wall clock is wrong (no RTC, no GPS yet).  ``stored_timestamp`` is the last value the
    caller persisted (``None`` or ``0`` when there is none).  The caller must persist :attr:`value_to_persist` at
    least every ``PERSIST_INTERVAL_S``.  ``wall_clock`` returns Unix time in seconds.
    """

    def __init__(self, stored_timestamp: int | None = None, *,
                 wall_clock: Callable[[], float] = time.time) -> None:
        self._wall_clock = wall_clock
        boot_floor = 0
        if stored_timestamp:
            boot_floor = int(stored_timestamp) + int(BOOT_MARGIN_S * TIMESTAMP_UNITS_PER_S)
        self._last = min(max(unix_to_signing_timestamp(wall_clock()), boot_floor), MAX_TIMESTAMP)

    @property
    def current(self) -> int:
        """The newest timestamp issued or observed; no frame will ever be signed with a value <= this."""
        return self._last

    @property
    def value_to_persist(self) -> int:
        """What the caller should store; pass it back as ``stored_timestamp`` at the next boot."""
        return self._last

    def next_timestamp(self) -> int:
        """The timestamp for the next frame we sign: the wall clock, or one more than the last if that is later."""
        # Once per frame sent: comparisons, not min/max calls.
        following, wall = self._last + 1, unix_to_signing_timestamp(self._wall_clock())
        self._last = wall if wall > following else following if following < MAX_TIMESTAMP else MAX_TIMESTAMP
        return self._last

    def observe(self, timestamp: int) -> None:
        """Move forward to ``timestamp`` (from a frame whose signature was GOOD), never backward."""
        self._last = min(max(self._last, int(timestamp)), MAX_TIMESTAMP)

    def observe_unix_time(self, unix_time_s: float) -> None:
        """Move forward to a trusted absolute time, e.g. from the first GPS fix on a board without an RTC."""
        self.observe(unix_to_signing_timestamp(unix_time_s))


@dataclass
class SigningPolicy:
    """Everything one vehicle needs to sign and verify: the key, the verifier and our clock.

    One policy is shared by all links (one clock keeps timestamps increasing across links).  Build it with
    :meth:`create`.
    """

    key: bytes = field(repr=False)
    verifier: SignatureVerifier
    clock: SigningClock

    @classmethod
    def create(cls, key: bytes, *, stored_timestamp: int | None = None, max_behind_s: float = DEFAULT_MAX_BEHIND_S,
               wall_clock: Callable[[], float] = time.time) -> SigningPolicy:
        """A policy for ``key`` whose clock starts from ``stored_timestamp`` (see :class:`SigningClock`)."""
        return cls(key=bytes(key), verifier=SignatureVerifier(key, max_behind_s=max_behind_s),
                   clock=SigningClock(stored_timestamp, wall_clock=wall_clock))

    def check(self, frame: bytes | bytearray) -> SignatureResult:
        """Verify a received frame against our clock; a GOOD frame's timestamp also advances our clock."""
        result = self.verifier.verify(frame, self.clock.current)
        if result is SignatureResult.GOOD:
            self.clock.observe(_block_fields(frame)[1])
        return result


class KeyFileError(Exception):
    """The signing key file is missing, too open, or not in a supported format."""


def passphrase_to_key(passphrase: str) -> bytes:
    """The 32-byte key MAVProxy's ``signing setup PASSPHRASE`` derives: SHA-256 of the passphrase."""
    return hashlib.sha256(passphrase.encode("utf-8")).digest()


def load_key_file(path: str | os.PathLike) -> bytes:
    """Read the 32-byte secret key from ``path``.

    Supported formats, tried in this order:

    * a passphrase: a text file starting with ``passphrase:`` followed by the passphrase (one line; the trailing
      newline is ignored); the key is SHA-256 of the passphrase, as MAVProxy's ``signing setup`` computes it;
    * raw: exactly 32 bytes of binary key, nothing else;
    * hex: 64 hexadecimal characters, optionally surrounded by whitespace / a trailing newline.

    Raises :class:`KeyFileError` when the file is missing, is not a regular file, is readable or writable by
    group or others (it must be ``chmod 600`` or stricter), or matches none of the formats.
    """
    try:
        fd = os.open(os.fspath(path), os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError as exc:
        raise KeyFileError(f"cannot open signing key file {os.fspath(path)!r}: {exc.strerror}") from exc
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise KeyFileError(f"signing key file {os.fspath(path)!r} is not a regular file")
        if stat.S_IMODE(info.st_mode) & 0o066:   # group/other read or write
            raise KeyFileError(f"signing key file {os.fspath(path)!r} has mode {stat.S_IMODE(info.st_mode):04o}; "
                               "it must not be readable or writable by group or others (chmod 600)")
        data = os.read(fd, _MAX_KEY_FILE_BYTES + 1)
    finally:
        os.close(fd)
    return _parse_key(data, os.fspath(path))


def _parse_key(data: bytes, where: str) -> bytes:
    if len(data) > _MAX_KEY_FILE_BYTES:
        raise KeyFileError(f"signing key file {where!r} is too large to be a key")
    if data.startswith(PASSPHRASE_PREFIX):
        try:
            passphrase = data[len(PASSPHRASE_PREFIX):].decode("utf-8").rstrip("\r\n")
        except UnicodeDecodeError as exc:
            raise KeyFileError(f"signing key file {where!r}: passphrase is not UTF-8 text") from exc
        if not passphrase or "\n" in passphrase:
            raise KeyFileError(f"signing key file {where!r}: passphrase must be one non-empty line")
        return passphrase_to_key(passphrase)
    if len(data) == SECRET_KEY_BYTES:
        return bytes(data)
    text = data.strip()
    if len(text) == 2 * SECRET_KEY_BYTES and all(chr(c) in string.hexdigits for c in text):
        return bytes.fromhex(text.decode("ascii"))
    raise KeyFileError(f"signing key file {where!r} is not 32 raw bytes, 64 hex characters, "
                       f"or a '{PASSPHRASE_PREFIX.decode()}' line ({len(data)} bytes found)")
