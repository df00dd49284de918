"""An emulated u-blox receiver behind a pyserial-compatible port, for hardware-in-the-loop tests.

:class:`FakeUbloxSerial` offers the pyserial calls the real driver uses (``in_waiting``, ``read``, ``write``,
``reset_input_buffer``, ``close``).  The simulation sets the true state with :meth:`FakeUbloxSerial.set_truth`
and moves the simulated clock with :meth:`FakeUbloxSerial.advance` (or passes ``clock=`` so every port call
reads the simulated clock); navigation epochs (RMC, GGA, GSA in NMEA 4.1 form) are emitted on the
``1 / rate_hz`` grid of simulated time, never of wall-clock time.

UBX input is decoded like the receiver does: CFG-NAV5 sets (mask bit 0 applies dynModel) are answered with
ACK-ACK or ACK-NAK, CFG-NAV5 polls with the current settings followed by ACK-ACK.  Outside the airborne models
(dynModel 6, 7, 8) the receiver loses its fix above 12 000 m or faster than 100 m/s, as real receivers do.

Faults: ``silence``, ``no_fix``, ``garbage``, ``corrupt_checksums`` (plain attributes), ``nak_next_sets``
(count of CFG-NAV5 sets to refuse), ``answer_ubx = False`` (UBX input ignored), :meth:`position_jump`,
:meth:`reset` (restart: boot text, dynModel back to 0 "portable", fix reacquired after a delay).
"""

from __future__ import annotations

import functools
import math
import random
import time as _time
from typing import Callable

from serial import PortNotOpenError

AIRBORNE_MODELS = frozenset({6, 7, 8})
VALID_DYN_MODELS = frozenset({0, 2, 3, 4, 5, 6, 7, 8, 9, 10})
NON_AIRBORNE_ALTITUDE_LIMIT_M = 12000.0
NON_AIRBORNE_SPEED_LIMIT_MPS = 100.0
MPS_TO_KNOTS = 3600.0 / 1852.0
TX_BUFFER_BYTES = 16384  # the receiver drops output the host does not read
DEFAULT_START_UTC_S = 1718953200.0  # 2024-06-21 07:00:00 UTC
BOOT_TEXT = (
    "u-blox AG - www.u-blox.com", "HW UBX-M8030 00080000", "ROM CORE 3.01 (107888)", "FWVER=SPG 3.01",
    "PROTVER=18.00", "GPS;GLO;GAL;BDS", "SBAS;IMES;QZSS", "GNSS OTP=GPS;GLO", "ANTSUPERV=AC SD PDoS SR",
    "ANTSTATUS=OK",
)
# CFG-NAV5 power-on defaults (M8): mask, dynModel, fixMode, fixedAlt, fixedAltVar, minElev, drLimit, pDop, tDop,
# pAcc, tAcc, staticHoldThresh, dgnssTimeout, cnoThreshNumSVs, cnoThresh, res, staticHoldMaxDist, utcStandard
_NAV5_DEFAULT = bytes.fromhex("ffff0003" "00000000" "10270000" "0500" "fa00" "fa00" "6400" "5e01"
                              "00" "3c" "00" "00" "0000" "0000" "00" "0000000000")

_SATELLITE_IDS = ",".join(f"{n:02d}" for n in range(1, 13))  # the GSA's twelve satellites in use


def _ubx(msg_class: int, msg_id: int, payload: bytes = b"") -> bytes:
    body = bytes((msg_class, msg_id, len(payload) & 0xFF, len(payload) >> 8)) + payload
    ck_a = ck_b = 0
    for byte in body:
        ck_a = (ck_a + byte) & 0xFF
        ck_b = (ck_b + ck_a) & 0xFF
    return b"\xb5\x62" + body + bytes((ck_a, ck_b))


def _nmea(body: str, corrupt: bool = False) -> bytes:
    checksum = 0
    for byte in body.encode("ascii"):
        checksum ^= byte
    if corrupt:
        checksum ^= 0x5A
    return f"${body}*{checksum:02X}\r\n".encode("ascii")


@functools.lru_cache(maxsize=2)
def _nmea_date(day: int) -> str:
    """NMEA ``ddmmyy`` of the UTC day ``day`` days after 1970-01-01 (remembered: it changes at midnight)."""
    stamp = _time.gmtime(day * 86400)
    return f"{stamp.tm_mday:02d}{stamp.tm_mon:02d}{stamp.tm_year % 100:02d}"


def _ddmm(value_deg: float, degree_digits: int) -> str:
    """Degrees -> NMEA ``(d)ddmm.mmmmm`` (hemisphere handled by the caller)."""
    total = round(abs(value_deg) * 60.0 * 100000)
    degrees, minutes = divmod(total, 6000000)
    return f"{degrees:0{degree_digits}d}{minutes // 100000:02d}.{minutes % 100000:05d}"


class FakeUbloxSerial:
    """A u-blox M8-like receiver on a serial port, driven by simulated time.

    Arguments: ``rate_hz`` navigation rate (1 or 5 are typical), ``talker`` NMEA talker id ("GN", "GP" ...),
    ``seed`` for the garbage generator, ``clock`` an optional callable returning simulated seconds (when
    given, every port call advances the receiver to it), ``start_utc_s`` the UTC (epoch seconds) at simulated
    time 0 until :meth:`set_truth` supplies one, ``satellites`` / ``hdop`` / ``vdop`` / ``pdop`` the reported
    geometry, ``geoid_separation_m`` the GGA geoid field.
    """

    def __init__(self, *, rate_hz: float = 1.0, talker: str = "GN", seed: int = 0,
                 clock: Callable[[], float] | None = None, start_utc_s: float = DEFAULT_START_UTC_S,
                 satellites: int = 12, hdop: float = 0.8, vdop: float = 1.1, pdop: float = 1.4,
                 geoid_separation_m: float = 47.0, port: str = "fake-ublox", baudrate: int = 9600) -> None:
        if rate_hz <= 0:
            raise ValueError("rate_hz must be positive")
        self.port, self.baudrate, self.timeout, self.write_timeout = port, baudrate, 0, 0
        self.is_open = True
        self.rate_hz = rate_hz
        self.talker = talker
        self.satellites, self.hdop, self.vdop, self.pdop = satellites, hdop, vdop, pdop
        self.geoid_separation_m = geoid_separation_m
        self._rng = random.Random(seed)
        self._clock = clock
        self._out = bytearray()
        self._in = bytearray()
        self._nav5 = bytearray(_NAV5_DEFAULT)
        self._now_s = 0.0
        self._last_epoch = -1
        self._truth: tuple[float, float, float, float, float] | None = None
        self._utc_offset_s = start_utc_s  # UTC = simulated time + offset
        self._reacquire_until_s = -math.inf
        self._jump = (0.0, 0.0)
        self._jump_until_s = -math.inf
        # faults
        self.silence = False
        self.no_fix = False
        self.garbage = False
        self.corrupt_checksums = False
        self.nak_next_sets = 0
        self.answer_ubx = True
        # counters
        self.epochs_sent = 0
        self.sets_received = 0
        self.polls_received = 0
        self.acks_sent = 0
        self.naks_sent = 0
        self.bad_frames_received = 0
        self.resets = 0
        self.tx_dropped_bytes = 0

    # ------------------------------------------------------------ simulation side

    @property
    def dynamic_model(self) -> int:
        """The receiver's current CFG-NAV5 dynModel (0 portable, 6 airborne <1g ...)."""
        return self._nav5[2]

    @property
    def now_s(self) -> float:
        return self._now_s

    def set_truth(self, latitude_deg: float, longitude_deg: float, altitude_m: float,
                  ground_speed_mps: float = 0.0, course_deg: float = 0.0, utc_time_s: float | None = None,
                  now_s: float | None = None) -> None:
        """Set the true position (degrees, metres above mean sea level), ground speed (m/s) and course (degrees
        true).  ``utc_time_s`` (epoch seconds) is UTC at simulated time ``now_s`` (default: the last advance);
        later epochs report UTC advancing with simulated time."""
        self._truth = (latitude_deg, longitude_deg, altitude_m, ground_speed_mps, course_deg % 360.0)
        if utc_time_s is not None:
            self._utc_offset_s = utc_time_s - (self._now_s if now_s is None else now_s)

    def advance(self, now_s: float, before_epoch: Callable[[float], None] | None = None) -> None:
        """Move the receiver to simulated time ``now_s`` (seconds); emits the newest due epoch, if any.

        ``before_epoch``, when given, is called with the receiver's time just before an epoch is emitted: a
        simulation can set the truth there (:meth:`set_truth`) instead of on every step, since the receiver only
        looks at the truth when it emits an epoch.
        """
        if now_s > self._now_s:
            self._now_s = now_s
        if self._now_s * self.rate_hz + 1e-9 >= self._last_epoch + 1:  # cheap test before the floor
            epoch = math.floor(self._now_s * self.rate_hz + 1e-9)
            if epoch > self._last_epoch:
                self._last_epoch = epoch
                if before_epoch is not None:
                    before_epoch(self._now_s)
                self._emit_epoch(epoch / self.rate_hz)

    @property
    def has_fix(self) -> bool:
        """Whether the receiver would report a valid fix now."""
        if self._truth is None or self.no_fix or self._now_s < self._reacquire_until_s:
            return False
        _, _, altitude_m, speed_mps, _ = self._truth
        if self.dynamic_model not in AIRBORNE_MODELS and (
                altitude_m > NON_AIRBORNE_ALTITUDE_LIMIT_M or speed_mps > NON_AIRBORNE_SPEED_LIMIT_MPS):
            return False
        return True

    def position_jump(self, dlat_deg: float, dlon_deg: float, duration_s: float = math.inf) -> None:
        """Offset reported positions by (``dlat_deg``, ``dlon_deg``) for ``duration_s`` of simulated time."""
        self._jump = (dlat_deg, dlon_deg)
        self._jump_until_s = self._now_s + duration_s

    def reset(self, reacquire_s: float = 1.0) -> None:
        """Receiver restart: pending input and output are lost, the boot text is sent, the configuration
        returns to defaults (dynModel 0) and no fix is reported for ``reacquire_s`` seconds."""
        self.resets += 1
        self._in.clear()
        self._out.clear()
        self._nav5[:] = _NAV5_DEFAULT
        self._reacquire_until_s = self._now_s + reacquire_s
        for text in BOOT_TEXT:
            self._queue(_nmea(f"{self.talker}TXT,01,01,02,{text}"))

    def clear_faults(self) -> None:
        self.silence = self.no_fix = self.garbage = self.corrupt_checksums = False
        self.nak_next_sets = 0
        self.answer_ubx = True
        self._jump_until_s = -math.inf

    # ------------------------------------------------------------ pyserial side

    def _tick(self) -> None:
        if not self.is_open:
            raise PortNotOpenError()
        if self._clock is not None:
            self.advance(self._clock())

    @property
    def in_waiting(self) -> int:
        if self._clock is not None or not self.is_open:
            self._tick()
        return len(self._out)

    def read(self, size: int = 1) -> bytes:
        """Up to ``size`` bytes the receiver has sent; never waits (``timeout=0`` semantics)."""
        self._tick()
        data = bytes(self._out[:size])
        del self._out[:size]
        return data

    def write(self, data: bytes) -> int:
        """Bytes from the host to the receiver; complete UBX frames are acted on at once."""
        self._tick()
        self._in += data
        self._parse_input()
        return len(data)

    def reset_input_buffer(self) -> None:
        self._out.clear()

    def reset_output_buffer(self) -> None:
        self._in.clear()

    def flush(self) -> None:
        if not self.is_open:
            raise PortNotOpenError()

    def close(self) -> None:
        self.is_open = False

    # ------------------------------------------------------------ receiver internals

    def _queue(self, data: bytes) -> None:
        if self.silence:
            return
        room = TX_BUFFER_BYTES - len(self._out)
        if len(data) > room:
            self.tx_dropped_bytes += len(data)
            return
        self._out += data

    def _parse_input(self) -> None:
        buf = self._in
        while True:
            start = buf.find(b"\xb5\x62")
            if start < 0:
                del buf[:max(0, len(buf) - 1)]  # keep a trailing 0xB5
                return
            del buf[:start]
            if len(buf) < 8:
                return
            length = buf[4] | (buf[5] << 8)
            if len(buf) < length + 8:
                if length > 2048:
                    del buf[:2]
                    continue
                return
            frame = bytes(buf[:length + 8])
            if _ubx(frame[2], frame[3], frame[6:6 + length]) != frame:
                self.bad_frames_received += 1
                del buf[:2]
                continue
            del buf[:length + 8]
            if self.answer_ubx:
                self._on_frame(frame[2], frame[3], frame[6:6 + length])

    def _ack(self, msg_class: int, msg_id: int, ok: bool) -> None:
        if ok:
            self.acks_sent += 1
        else:
            self.naks_sent += 1
        self._queue(_ubx(0x05, 0x01 if ok else 0x00, bytes((msg_class, msg_id))))

    def _on_frame(self, msg_class: int, msg_id: int, payload: bytes) -> None:
        if msg_class != 0x06:
            return  # only configuration input is modelled; other classes are ignored like unknown input
        if msg_id != 0x24:
            self._ack(msg_class, msg_id, False)
            return
        if not payload:
            self.polls_received += 1
            self._queue(_ubx(0x06, 0x24, bytes(self._nav5)))
            self._ack(0x06, 0x24, True)
            return
        self.sets_received += 1
        mask = payload[0] | (payload[1] << 8) if len(payload) >= 2 else 0
        valid = len(payload) == 36 and (not mask & 0x0001 or payload[2] in VALID_DYN_MODELS) \
            and (not mask & 0x0004 or payload[3] in (1, 2, 3))
        if not valid or self.nak_next_sets > 0:
            self.nak_next_sets = max(0, self.nak_next_sets - 1)
            self._ack(0x06, 0x24, False)
            return
        if mask & 0x0001:
            self._nav5[2] = payload[2]
        if mask & 0x0004:
            self._nav5[3] = payload[3]
        if mask & 0x0002:
            self._nav5[12] = payload[12]
        self._ack(0x06, 0x24, True)

    def _emit_epoch(self, epoch_s: float) -> None:
        seconds, centiseconds = divmod(round((self._utc_offset_s + epoch_s) * 100), 100)
        day, second_of_day = divmod(seconds, 86400)  # UTC (POSIX) days have 86400 s
        minute_of_day, second = divmod(second_of_day, 60)
        hour, minute = divmod(minute_of_day, 60)
        hhmmss = f"{hour:02d}{minute:02d}{second:02d}.{centiseconds:02d}"
        date = _nmea_date(day)
        t = self.talker
        if self.has_fix:
            lat, lon, alt, speed, course = self._truth
            if epoch_s < self._jump_until_s:
                lat, lon = lat + self._jump[0], lon + self._jump[1]
            lat = max(-90.0, min(90.0, lat))
            lon = (lon + 180.0) % 360.0 - 180.0
            pos = f"{_ddmm(lat, 2)},{'N' if lat >= 0 else 'S'},{_ddmm(lon, 3)},{'E' if lon >= 0 else 'W'}"
            svs = _SATELLITE_IDS
            bodies = [
                f"{t}RMC,{hhmmss},A,{pos},{speed * MPS_TO_KNOTS:.3f},{course:.2f},{date},,,A,V",
                f"{t}GGA,{hhmmss},{pos},1,{min(self.satellites, 99):02d},{self.hdop:.2f},{alt:.1f},M,"
                f"{self.geoid_separation_m:.1f},M,,",
                f"{t}GSA,A,3,{svs},{self.pdop:.2f},{self.hdop:.2f},{self.vdop:.2f},1",
            ]
        else:
            bodies = [
                f"{t}RMC,{hhmmss},V,,,,,,,{date},,,N,V",
                f"{t}GGA,{hhmmss},,,,,0,00,99.99,,,,,,",
                f"{t}GSA,A,1,,,,,,,,,,,,,99.99,99.99,99.99,1",
            ]
        chunks = [_nmea(body, self.corrupt_checksums) for body in bodies]
        if self.garbage:
            noise = self._rng.randbytes(self._rng.randint(4, 48))
            where = self._rng.randrange(len(chunks) + 1)
            if self._rng.random() < 0.3 and where < len(chunks):  # noise inside a sentence, breaking it
                cut = self._rng.randrange(1, len(chunks[where]))
                chunks[where] = chunks[where][:cut] + noise + chunks[where][cut:]
            else:
                chunks.insert(where, noise)
        self._queue(b"".join(chunks))
        self.epochs_sent += 1
