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

Across restarts (the scheme, also in ``docs/ground.md``): the newest accepted timestamp of every stream is
persisted in the journal, every ``PERSIST_INTERVAL_S`` and before any signed write is acted on, so a frame captured
before a restart is still a replay after it.  A stream never seen is checked against a *trusted floor* -- GPS UTC,
carried across restarts by the mission clock -- and never against our own outgoing timestamp: that one starts
``BOOT_MARGIN_S`` above its persisted value at every start, so quick restarts may push it ahead of real time, but
a ground station whose clock is right is never refused for it.
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
PERSIST_INTERVAL_S = 10.0                      # the daemon persists our timestamp and the streams this often
# At a start our outgoing timestamp begins at least this far above the persisted one: it covers what we issued
# after the last persist (the daemon persists at once when the timestamp jumps by more than half of it).  It does
# not stack into a lock-out: nothing we verify is compared with our own timestamp (see SignatureVerifier).
BOOT_MARGIN_S = PERSIST_INTERVAL_S + 1.0
# A stream never seen before may be at most this far behind the trusted time: the MAVLink signing spec's one-minute
# window.
DEFAULT_MAX_BEHIND_S = 60.0
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

    A stream is ``(system id, component id, link id)``; the newest accepted timestamp of every stream is kept and
    can be persisted (:meth:`streams` / :meth:`restore`): a frame captured before a restart then stays a replay
    after it, without any margin added to our own clock.  A stream never seen before is accepted only if its
    timestamp is at most ``max_behind_s`` seconds behind the *trusted floor* passed to :meth:`verify` (the time
    known to have passed: GPS UTC, carried by the mission clock; 0 when unknown, which leaves only the per-stream
    rule).  Streams are forgotten oldest-first beyond ``max_streams``; a forgotten stream is then judged as new.
    """

    def __init__(self, secret_key: bytes, *, max_behind_s: float = DEFAULT_MAX_BEHIND_S,
                 max_streams: int = 32) -> None:
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

    def streams(self) -> dict[str, int]:
        """Every stream's newest accepted timestamp, as ``{"system/component/link": timestamp}`` (to persist)."""
        return {f"{system}/{component}/{link}": stamp for (system, component, link), stamp in self._streams.items()}

    def restore(self, streams: dict[str, int]) -> None:
        """Take persisted streams (:meth:`streams`) back; a stream's timestamp only moves forward."""
        for name, stamp in streams.items():
            parts = name.split("/")
            if len(parts) != 3 or not all(part.isdigit() for part in parts) or not isinstance(stamp, int):
                continue
            stream = (int(parts[0]), int(parts[1]), int(parts[2]))
            if stamp > self._streams.get(stream, -1):
                self._streams[stream] = stamp
        while len(self._streams) > self.max_streams:
            self._streams.popitem(last=False)

    def verify(self, frame: bytes | bytearray, trusted_floor: int = 0) -> SignatureResult:
        """Judge one complete raw frame (CRC already checked by the caller).

        ``trusted_floor`` is a signing timestamp (10 us units since 2015) known not to be in the future, used for
        the new-stream rule.  A stream's remembered timestamp moves forward only when the result is ``GOOD``.
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
        elif timestamp + self.max_behind_units < trusted_floor:
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

    At a start it begins at ``max(wall clock, stored_timestamp + BOOT_MARGIN_S)`` (the MAVLink spec's rule, with a
    margin for what was issued after the last persist), so a restart never reuses a timestamp even when the wall
    clock is wrong (no RTC, no GPS yet).  It then follows the later of the wall clock, a trusted UTC
    (:meth:`observe_unix_time`) and good incoming timestamps (:meth:`observe`), and otherwise counts up by one per
    frame.  The caller persists :attr:`value_to_persist` at least every ``PERSIST_INTERVAL_S``, and at once when
    :attr:`jumped` says it moved on by more than half the margin since the last persist.
    """

    def __init__(self, stored_timestamp: int | None = None, *,
                 wall_clock: Callable[[], float] = time.time) -> None:
        self._wall_clock = wall_clock
        boot_floor = 0
        if stored_timestamp:
            boot_floor = int(stored_timestamp) + int(BOOT_MARGIN_S * TIMESTAMP_UNITS_PER_S)
        self._last = min(max(unix_to_signing_timestamp(wall_clock()), boot_floor), MAX_TIMESTAMP)
        self._persisted = self._last

    @property
    def current(self) -> int:
        """The newest timestamp issued or observed; no frame will ever be signed with a value <= this."""
        return self._last

    @property
    def value_to_persist(self) -> int:
        """What the caller should store; pass it back as ``stored_timestamp`` at the next start."""
        return self._last

    @property
    def jumped(self) -> bool:
        """The timestamp moved on by more than half the boot margin since :meth:`persisted` was last called."""
        return self._last - self._persisted > BOOT_MARGIN_S * TIMESTAMP_UNITS_PER_S / 2

    def persisted(self, value: int) -> None:
        """The caller stored ``value``."""
        self._persisted = max(self._persisted, int(value))

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
        """Move forward to a trusted absolute time, e.g. from a GPS fix on a board without an RTC."""
        self.observe(unix_to_signing_timestamp(unix_time_s))


def _no_floor() -> int:
    return 0


@dataclass
class SigningPolicy:
    """Everything one vehicle needs to sign and verify: the key, the verifier, our clock, and the trusted floor for
    new streams (a callable returning a signing timestamp known not to be in the future; 0 when unknown).

    One policy is shared by all links (one clock keeps timestamps increasing across links).  Build it with
    :meth:`create`.
    """

    key: bytes = field(repr=False)
    verifier: SignatureVerifier
    clock: SigningClock
    trusted_floor: Callable[[], int] = _no_floor

    @classmethod
    def create(cls, key: bytes, *, stored_timestamp: int | None = None, streams: dict[str, int] | None = None,
               max_behind_s: float = DEFAULT_MAX_BEHIND_S, wall_clock: Callable[[], float] = time.time,
               trusted_floor: Callable[[], int] = _no_floor) -> SigningPolicy:
        """A policy for ``key`` whose clock starts from ``stored_timestamp`` (see :class:`SigningClock`) and whose
        verifier knows the persisted ``streams``."""
        verifier = SignatureVerifier(key, max_behind_s=max_behind_s)
        verifier.restore(streams or {})
        return cls(key=bytes(key), verifier=verifier, clock=SigningClock(stored_timestamp, wall_clock=wall_clock),
                   trusted_floor=trusted_floor)

    def check(self, frame: bytes | bytearray) -> SignatureResult:
        """Verify a received frame; a GOOD frame's timestamp also advances our clock."""
        result = self.verifier.verify(frame, self.trusted_floor())
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
