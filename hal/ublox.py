"""u-blox GNSS receiver on a serial port: NMEA navigation output and UBX dynamic-model configuration.

The receiver streams NMEA sentences (GGA, RMC, GSA ...) and answers UBX binary frames on the same port.  The
driver drains the port without blocking, splits sentences and frames out of the byte stream, checks their
checksums and assembles a :class:`~hal.interfaces.GpsFix`.

u-blox receivers stop reporting a fix above about 12 km (and faster than 100 m/s) in their default "portable"
dynamic model, so the driver sets the platform model with UBX-CFG-NAV5 (default 6, "airborne <1g"), waits for
UBX-ACK-ACK, verifies it by polling CFG-NAV5, re-polls every ``reassert_interval_s`` and sets it again when the
receiver has forgotten it (power loss, reset; a restart is also recognised from the receiver's boot text).
"""

from __future__ import annotations

import functools
import math
import re
from datetime import datetime, timezone
from typing import Any, Callable

from hal.interfaces import NAN, DeviceStats, FixType, GpsFix

KNOTS_TO_MPS = 1852.0 / 3600.0
UBX_SYNC = b"\xb5\x62"
UBX_CLASS_ACK, UBX_ID_ACK_NAK, UBX_ID_ACK_ACK = 0x05, 0x00, 0x01
UBX_CLASS_CFG, UBX_ID_CFG_NAV5 = 0x06, 0x24
NAV5_PAYLOAD_LEN = 36
NAV5_MASK_DYN = 0x0001
DYN_MODEL_PORTABLE, DYN_MODEL_AIRBORNE_1G = 0, 6

MAX_READ_BYTES = 4096         # drained per update() at most
MAX_NMEA_LINE_BYTES = 120     # '$' up to the checksum; the NMEA limit is 82 incl. CR LF, u-blox TXT stays within
MAX_UBX_PAYLOAD_BYTES = 1024  # longer claimed lengths are treated as a false sync
# NAV RXM INF ACK CFG UPD MON AID TIM ESF MGA LOG SEC HNR: a sync followed by another class is noise
UBX_CLASSES = frozenset({0x01, 0x02, 0x04, 0x05, 0x06, 0x09, 0x0A, 0x0B, 0x0D, 0x10, 0x13, 0x21, 0x27, 0x28})
VALID_GGA_QUALITIES = frozenset({1, 2, 3, 4, 5})  # 0 = no fix, 6 = dead reckoning only, 7 = manual, 8 = simulator
BOOT_TEXT_PREFIXES = ("U-BLOX", "HW ", "ROM ", "FWVER", "PROTVER")
RESTART_DEBOUNCE_S = 1.0      # one boot banner is several TXT lines: treat them as one restart
NAK_RETRY_S = 0.25            # a NAKed set is resent after this, so a receiver that always NAKs is not flooded

_SYNC_RE = re.compile(rb"\$|\xb5(?:\x62|\Z)")
_NMEA_RE = re.compile(rb"\$[\x20-\x23\x25-\x7e]*")  # printable ASCII except '$'


# ---------------------------------------------------------------- protocol helpers


def ubx_checksum(body: bytes) -> bytes:
    """The 8-bit Fletcher checksum (CK_A, CK_B) over class, id, length and payload."""
    ck_a = ck_b = 0
    for byte in body:
        ck_a = (ck_a + byte) & 0xFF
        ck_b = (ck_b + ck_a) & 0xFF
    return bytes((ck_a, ck_b))


def ubx_frame(msg_class: int, msg_id: int, payload: bytes = b"") -> bytes:
    """A complete UBX frame: sync chars, class, id, little-endian length, payload, checksum."""
    body = bytes((msg_class, msg_id, len(payload) & 0xFF, len(payload) >> 8)) + payload
    return UBX_SYNC + body + ubx_checksum(body)


def nmea_checksum(body: str) -> int:
    """XOR of the characters between '$' and '*'."""
    value = 0
    for char in body.encode("ascii"):
        value ^= char
    return value


def nav5_set_payload(dynamic_model: int) -> bytes:
    """CFG-NAV5 payload that changes only the dynamic platform model (mask bit 0); other fields are ignored."""
    payload = bytearray(NAV5_PAYLOAD_LEN)
    payload[0:2] = NAV5_MASK_DYN.to_bytes(2, "little")
    payload[2] = dynamic_model
    return bytes(payload)


class _OutOfRange(ValueError):
    """A field parsed but holds an impossible value."""


def _float(text: str) -> float:
    return float(text) if text else NAN


@functools.lru_cache(maxsize=8)
def _coordinate(value: str, hemisphere: str, limit_deg: float, negative: str) -> float:
    """NMEA ``(d)ddmm.mmmm`` plus hemisphere letter -> signed decimal degrees; NaN when the field is empty.

    Remembered: the RMC and GGA of one epoch carry the same position."""
    if not value:
        return NAN
    dot = value.find(".")
    dot = len(value) if dot < 0 else dot
    if dot < 3:
        raise ValueError(f"bad coordinate {value!r}")
    degrees = int(value[:dot - 2])
    minutes = float(value[dot - 2:])
    if hemisphere not in ("N", "S", "E", "W"):
        raise ValueError(f"bad hemisphere {hemisphere!r}")
    result = degrees + minutes / 60.0
    if minutes >= 60.0 or result > limit_deg:
        raise _OutOfRange(f"coordinate {value}{hemisphere}")
    return -result if hemisphere == negative else result


def parse_latitude(value: str, hemisphere: str) -> float:
    """``ddmm.mmmm`` and N/S -> degrees, south negative."""
    return _coordinate(value, hemisphere, 90.0, "S")


def parse_longitude(value: str, hemisphere: str) -> float:
    """``dddmm.mmmm`` and E/W -> degrees, west negative."""
    return _coordinate(value, hemisphere, 180.0, "W")


@functools.lru_cache(maxsize=4)
def _utc_midnight_s(date_ddmmyy: str) -> float:
    """Seconds since the Unix epoch at 00:00 UTC of RMC date ``ddmmyy`` (remembered: the date rarely changes)."""
    year = int(date_ddmmyy[4:6])
    return datetime(year + (1900 if year >= 80 else 2000), int(date_ddmmyy[2:4]), int(date_ddmmyy[0:2]),
                    tzinfo=timezone.utc).timestamp()


def parse_utc(date_ddmmyy: str, time_hhmmss: str) -> float:
    """RMC date ``ddmmyy`` and time ``hhmmss.ss`` -> seconds since the Unix epoch (NaN if either is empty)."""
    if len(date_ddmmyy) != 6 or len(time_hhmmss) < 6:
        return NAN
    midnight = _utc_midnight_s(date_ddmmyy)
    hours, minutes, seconds = int(time_hhmmss[0:2]), int(time_hhmmss[2:4]), float(time_hhmmss[4:])
    if hours > 23 or minutes > 59 or seconds >= 61.0:
        raise _OutOfRange(f"time {time_hhmmss}")
    return midnight + hours * 3600 + minutes * 60 + seconds


class StreamSplitter:
    """Cuts NMEA sentences and UBX frames out of a byte stream that may hold noise and partial messages.

    :meth:`feed` returns ``("nmea", body)`` tuples (``body`` = text between '$' and CR/LF, checksum not yet
    verified) and ``("ubx", class, id, payload)`` tuples (checksum verified).  Incomplete messages are kept
    for the next call; the buffer never exceeds one maximum-size message.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()
        self.garbage_bytes = self.ubx_false_syncs = 0  # noise, not errors
        self.overlong_lines = self.broken_lines = self.ubx_checksum_errors = 0
        self.errors = 0  # overlong + broken lines + UBX checksum errors
        self.last_error = ""

    def _error(self, what: str) -> None:
        self.errors += 1
        self.last_error = what

    def clear(self) -> None:
        self._buffer.clear()

    def feed(self, data: bytes) -> list[tuple]:
        buf = self._buffer
        buf += data
        out: list[tuple] = []
        pos, size = 0, len(buf)
        while pos < size:
            match = _SYNC_RE.search(buf, pos)
            if match is None:
                self.garbage_bytes += size - pos
                pos = size
                break
            self.garbage_bytes += match.start() - pos
            pos = match.start()
            if buf[pos] == 0x24:  # '$'
                end = _NMEA_RE.match(buf, pos).end()
                if end - pos > MAX_NMEA_LINE_BYTES:
                    self.overlong_lines += 1
                    self._error("overlong line")
                    pos = end
                elif end == size:
                    break  # incomplete line: wait for more bytes
                elif buf[end] in (0x0D, 0x0A):
                    out.append(("nmea", buf[pos + 1:end].decode("ascii")))
                    pos = end + (2 if buf[end:end + 2] == b"\r\n" else 1)
                else:
                    self.broken_lines += 1  # a binary byte or a new '$' inside the line
                    self._error("broken line")
                    pos = end
                continue
            if size - pos < 6:
                if size - pos >= 3 and buf[pos + 2] not in UBX_CLASSES:
                    self.ubx_false_syncs += 1
                    pos += 1
                    continue
                break  # incomplete header
            length = buf[pos + 4] | (buf[pos + 5] << 8)
            if length > MAX_UBX_PAYLOAD_BYTES or buf[pos + 2] not in UBX_CLASSES:
                self.ubx_false_syncs += 1
                pos += 1
                continue
            if size - pos < length + 8:
                break  # incomplete frame
            body = bytes(buf[pos + 2:pos + 6 + length])
            if ubx_checksum(body) == bytes(buf[pos + 6 + length:pos + 8 + length]):
                out.append(("ubx", body[0], body[1], body[4:]))
                pos += length + 8
            else:
                self.ubx_checksum_errors += 1
                self._error("ubx checksum")
                pos += 1  # resynchronise inside the bytes: a real sentence may hide behind a false sync
        del buf[:pos]
        return out


# ---------------------------------------------------------------- the driver

_SET_NEEDED, _WAIT_ACK, _POLL_NEEDED, _WAIT_POLL, _CONFIRMED = range(5)


class UbloxGps:
    """A u-blox receiver on a non-blocking serial port; satisfies :class:`hal.interfaces.Gps`.

    Arguments: ``port`` a pyserial ``Serial``-like object opened with ``timeout=0`` (or ``None`` when it could
    not be opened; ``opener`` is then retried), ``dynamic_model`` the CFG-NAV5 dynModel to enforce (6 = airborne
    <1g), ``reassert_interval_s`` how often the model is polled and re-set if lost, ``stale_after_s`` how long
    the port or the navigation solution may be silent before the fix turns unhealthy, ``ack_timeout_s`` how
    long to wait for ACK or a poll reply before resending, ``opener`` a callable returning a new port (used
    after open or read failures), ``reopen_interval_s`` the delay between reopen attempts.
    """

    def __init__(self, port: Any, *, name: str = "gps", dynamic_model: int = DYN_MODEL_AIRBORNE_1G,
                 reassert_interval_s: float = 30.0, stale_after_s: float = 2.0, ack_timeout_s: float = 1.0,
                 opener: Callable[[], Any] | None = None, reopen_interval_s: float = 5.0) -> None:
        if not 0 <= dynamic_model <= 10 or dynamic_model == 1:
            raise ValueError(f"dynamic_model {dynamic_model} is not a u-blox dynModel")
        self.name = name
        self.stats = DeviceStats()
        self.dynamic_model = dynamic_model
        self.reassert_interval_s = reassert_interval_s
        self.stale_after_s = stale_after_s
        self.ack_timeout_s = ack_timeout_s
        self.reopen_interval_s = reopen_interval_s
        self._port = port
        self._opener = opener
        self._next_open_s = -math.inf
        self._splitter = StreamSplitter()
        # configuration state and counters
        self.dynamic_model_confirmed = False
        self.reported_dynamic_model = -1  # dynModel from the newest CFG-NAV5 poll reply; -1 = none yet
        self.config_attempts = self.config_polls = 0  # CFG-NAV5 set / poll frames sent
        self.config_naks = self.config_timeouts = 0
        self.reasserts = 0  # times the model was found lost (poll reply or restart) and set again
        self.restarts_detected = 0  # receiver restarts recognised from the boot text
        self.nmea_checksum_errors = self.malformed_sentences = 0
        self._cfg_state = _SET_NEEDED
        self._cfg_due_s = -math.inf
        self._last_restart_s = -math.inf
        # navigation state from the newest sentences
        self._last_byte_s = NAN  # when bytes last arrived (silence is judged from the first update if none)
        self._silent = False
        self._gga_s = self._rmc_s = self._gsa_s = NAN
        self._gga_valid = self._rmc_valid = False
        self._gga_lat = self._gga_lon = self._altitude_m = NAN
        self._rmc_lat = self._rmc_lon = NAN
        self._speed_mps = self._course_deg = self._utc_s = NAN
        self._satellites = 0
        self._hdop = self._vdop = NAN
        self.pdop = NAN  # position dilution of precision from the newest GSA
        self._gsa_fix_type = FixType.NO_FIX
        self._gga_has_altitude = False
        self._fix = GpsFix(fix_type=FixType.NO_GPS)
        # whether bytes arrived, the port was opened or closed, or the fix was replaced since it was last assembled
        self._news = True
        self._assembled_s = -math.inf  # when it was
        self._oldest_recent_s = math.inf  # the oldest of the inputs that were recent then (inf: none was)

    # ------------------------------------------------------------ Gps protocol

    @property
    def fix(self) -> GpsFix:
        return self._fix

    @property
    def port_open(self) -> bool:
        return self._port is not None

    def update(self, now_s: float) -> None:
        """Drain the port (at most ``MAX_READ_BYTES``), parse, run the configuration steps.  Never raises."""
        try:
            if math.isnan(self._last_byte_s):
                self._last_byte_s = now_s
            if self._port is None:
                self._try_open(now_s)
            if self._port is not None:
                self._read(now_s)
            if self._port is not None and now_s >= self._cfg_due_s:
                self._configure(now_s)
            self._publish(now_s)
        except Exception as exc:  # noqa: BLE001 - a driver bug must not stop the frame loop
            self.stats.record_error(f"update: {exc!r}")
            self._fix = GpsFix(fix_type=FixType.NO_GPS, time_s=self._fix.time_s)
            self._news = True

    def close(self) -> None:
        if self._port is not None:
            try:
                self._port.close()
            except Exception:  # noqa: BLE001
                pass
            self._port = None
            self._news = True

    # ------------------------------------------------------------ serial port

    def _try_open(self, now_s: float) -> None:
        if self._opener is None or now_s < self._next_open_s:
            return
        self._next_open_s = now_s + self.reopen_interval_s
        try:
            self._port = self._opener()
            self._port.reset_input_buffer()
        except Exception as exc:  # noqa: BLE001 - a missing device is data
            self.close()
            self.stats.record_error(f"open: {exc}")
            return
        self.stats.reinits += 1
        self._splitter.clear()
        self._last_byte_s = now_s
        self._silent = False
        self._news = True
        self._restart_configuration()

    def _read(self, now_s: float) -> None:
        try:
            waiting = self._port.in_waiting
            data = self._port.read(min(waiting, MAX_READ_BYTES)) if waiting > 0 else b""
        except Exception as exc:  # noqa: BLE001 - OSError / SerialException from a pulled cable
            self.stats.record_error(f"read: {exc}")
            if self._opener is not None:
                self.close()
                self._next_open_s = now_s + self.reopen_interval_s
            return
        if data:
            self._last_byte_s = now_s
            self._silent = False
            self._news = True
            splitter_errors = self._splitter.errors
            for message in self._splitter.feed(data):
                if message[0] == "nmea":
                    self._on_nmea(message[1], now_s)
                else:
                    self._on_ubx(message[1], message[2], message[3], now_s)
            if self._splitter.errors > splitter_errors:
                self.stats.record_error(self._splitter.last_error)
        elif not self._silent and not now_s - self._last_byte_s <= self.stale_after_s:
            self._silent = True
            self.stats.record_error("port silent")

    def _send(self, frame: bytes) -> bool:
        try:
            written = self._port.write(frame)
        except Exception as exc:  # noqa: BLE001
            self.stats.record_error(f"write: {exc}")
            return False
        if written is not None and written != len(frame):
            self.stats.record_error("write: short")
            return False
        return True

    # ------------------------------------------------------------ UBX configuration

    def _restart_configuration(self) -> None:
        self.dynamic_model_confirmed = False
        self._cfg_state = _SET_NEEDED
        self._cfg_due_s = -math.inf

    def _configure(self, now_s: float) -> None:
        """The next configuration step.  Nothing is due before ``_cfg_due_s`` (``update`` calls this only from
        then on): a reply that asks for an immediate step sets it to -inf."""
        state = self._cfg_state
        if state in (_WAIT_ACK, _WAIT_POLL) and now_s >= self._cfg_due_s:
            self.config_timeouts += 1
            self.dynamic_model_confirmed = False
            state = _SET_NEEDED  # no answer: set again, then verify
        elif state == _CONFIRMED and now_s >= self._cfg_due_s:
            state = _POLL_NEEDED
        if state == _SET_NEEDED and now_s >= self._cfg_due_s:
            self.config_attempts += 1
            self._send(ubx_frame(UBX_CLASS_CFG, UBX_ID_CFG_NAV5, nav5_set_payload(self.dynamic_model)))
            state, self._cfg_due_s = _WAIT_ACK, now_s + self.ack_timeout_s
        elif state == _POLL_NEEDED:
            self.config_polls += 1
            self._send(ubx_frame(UBX_CLASS_CFG, UBX_ID_CFG_NAV5))
            state, self._cfg_due_s = _WAIT_POLL, now_s + self.ack_timeout_s
        self._cfg_state = state

    def _on_ubx(self, msg_class: int, msg_id: int, payload: bytes, now_s: float) -> None:
        self.stats.record_ok()
        if msg_class == UBX_CLASS_ACK and len(payload) >= 2 and payload[0] == UBX_CLASS_CFG \
                and payload[1] == UBX_ID_CFG_NAV5 and self._cfg_state == _WAIT_ACK:
            if msg_id == UBX_ID_ACK_ACK:
                self._cfg_state, self._cfg_due_s = _POLL_NEEDED, -math.inf  # verify at once
            elif msg_id == UBX_ID_ACK_NAK:
                self.config_naks += 1
                self._cfg_state, self._cfg_due_s = _SET_NEEDED, now_s + NAK_RETRY_S
        elif msg_class == UBX_CLASS_CFG and msg_id == UBX_ID_CFG_NAV5 and len(payload) == NAV5_PAYLOAD_LEN:
            self.reported_dynamic_model = payload[2]
            if self._cfg_state != _WAIT_POLL:
                return
            if payload[2] == self.dynamic_model:
                self.dynamic_model_confirmed = True
                self._cfg_state, self._cfg_due_s = _CONFIRMED, now_s + self.reassert_interval_s
            else:
                self.dynamic_model_confirmed = False
                self.reasserts += 1
                self._cfg_state, self._cfg_due_s = _SET_NEEDED, -math.inf

    def _on_boot_text(self, now_s: float) -> None:
        if now_s - self._last_restart_s < RESTART_DEBOUNCE_S:
            return
        self._last_restart_s = now_s
        self.restarts_detected += 1
        self.reasserts += 1
        self.stats.reinits += 1
        self._restart_configuration()

    # ------------------------------------------------------------ NMEA

    def _on_nmea(self, body: str, now_s: float) -> None:
        data, star, checksum = body.rpartition("*")
        try:
            good = bool(star) and len(checksum) == 2 and int(checksum, 16) == nmea_checksum(data)
        except ValueError:
            good = False
        if not good:
            self.nmea_checksum_errors += 1
            self.stats.record_error("nmea checksum")
            return
        fields = data.split(",")
        address = fields[0]
        kind = address[2:] if len(address) == 5 else ""
        handler = self._NMEA_HANDLERS.get(kind)
        try:
            if handler is not None:
                handler(self, fields, now_s)
            self.stats.record_ok()
        except _OutOfRange as exc:
            self.stats.out_of_range += 1
            self.stats.record_error(f"{address} out of range: {exc}")
        except (ValueError, IndexError) as exc:
            self.malformed_sentences += 1
            self.stats.record_error(f"{address} malformed: {exc}")

    def _on_gga(self, f: list[str], now_s: float) -> None:
        # GGA,time,lat,N,lon,E,quality,numSV,HDOP,alt,M,sep,M,diffAge,diffStation
        quality = int(f[6]) if f[6] else 0
        satellites = int(f[7]) if f[7] else 0
        hdop = _float(f[8])
        lat, lon, alt = NAN, NAN, NAN
        valid = quality in VALID_GGA_QUALITIES
        if valid:
            lat, lon, alt = parse_latitude(f[2], f[3]), parse_longitude(f[4], f[5]), _float(f[9])
            valid = not (math.isnan(lat) or math.isnan(lon))
        self._gga_valid = valid
        self._gga_lat, self._gga_lon, self._altitude_m = lat, lon, alt
        self._gga_has_altitude = not math.isnan(alt)
        self._satellites, self._hdop, self._gga_s = satellites, hdop, now_s

    def _on_rmc(self, f: list[str], now_s: float) -> None:
        # RMC,time,status,lat,N,lon,E,speed_kn,course,ddmmyy,magvar,E/W[,mode[,navStatus]]
        mode = f[12] if len(f) > 12 else ""
        valid = f[2] == "A" and mode not in ("N", "E")
        lat, lon = NAN, NAN
        if valid:
            lat, lon = parse_latitude(f[3], f[4]), parse_longitude(f[5], f[6])
            valid = not (math.isnan(lat) or math.isnan(lon))
        speed_kn = _float(f[7])
        if speed_kn < 0:
            raise _OutOfRange(f"speed {speed_kn}")
        self._rmc_valid = valid
        self._rmc_lat, self._rmc_lon = lat, lon
        self._speed_mps = speed_kn * KNOTS_TO_MPS if valid else NAN
        self._course_deg = _float(f[8]) if valid else NAN
        self._utc_s = parse_utc(f[9], f[1])
        self._rmc_s = now_s

    def _on_gsa(self, f: list[str], now_s: float) -> None:
        # GSA,opMode,navMode,sv1..sv12,PDOP,HDOP,VDOP[,systemId]
        nav_mode = int(f[2]) if f[2] else FixType.NO_FIX
        if nav_mode not in (1, 2, 3):
            raise _OutOfRange(f"navMode {nav_mode}")
        self._gsa_fix_type = nav_mode
        self.pdop, self._vdop = _float(f[15]), _float(f[17])
        hdop = _float(f[16])
        if not math.isnan(hdop):
            self._hdop = hdop
        self._gsa_s = now_s

    def _on_txt(self, f: list[str], now_s: float) -> None:
        # TXT,numMsg,msgNum,msgType,text
        text = ",".join(f[4:]).strip().upper()
        if text.startswith(BOOT_TEXT_PREFIXES):
            self._on_boot_text(now_s)

    #: sentence type (the address less its two-letter talker) -> handler(self, fields, now_s)
    _NMEA_HANDLERS = {"GGA": _on_gga, "RMC": _on_rmc, "GSA": _on_gsa, "TXT": _on_txt}

    # ------------------------------------------------------------ fix assembly

    def _publish(self, now_s: float) -> None:
        """Assemble the fix from the newest sentences, unless it would come out the same as the last one.

        It would when nothing arrived since (``_news``) and no input changed between recent and stale: none that
        was stale can have become recent, as the clock has not gone back, and none that was recent can have aged
        out while the oldest of them is still recent (``now_s - t`` cannot grow as ``t`` grows).
        """
        stale = self.stale_after_s
        if not self._news and now_s >= self._assembled_s and now_s - self._oldest_recent_s <= stale:
            return
        # recent: at most stale_after_s old (False for NaN, never set)
        gga, rmc, gsa = now_s - self._gga_s <= stale, now_s - self._rmc_s <= stale, now_s - self._gsa_s <= stale
        port_live = self._port is not None and now_s - self._last_byte_s <= stale
        self._news = False
        self._assembled_s = now_s
        inputs = ((self._gga_s, gga), (self._rmc_s, rmc), (self._gsa_s, gsa), (self._last_byte_s, port_live))
        self._oldest_recent_s = min((t for t, recent in inputs if recent), default=math.inf)
        valid = (gga or rmc) and (self._gga_valid or not gga) and (self._rmc_valid or not rmc)
        if not port_live:
            fix_type = FixType.NO_GPS
        elif not valid:
            fix_type = FixType.NO_FIX
        elif gsa:
            fix_type = self._gsa_fix_type
        else:
            fix_type = FixType.FIX_3D if self._gga_has_altitude or not gga else FixType.FIX_2D
        lat, lon = (self._gga_lat, self._gga_lon) if gga else (self._rmc_lat, self._rmc_lon)
        position_s = self._gga_s if gga else self._rmc_s
        healthy = bool(valid and fix_type >= FixType.FIX_2D and not (math.isnan(lat) or math.isnan(lon)))
        if healthy and fix_type == FixType.FIX_3D and math.isnan(self._altitude_m):
            fix_type = FixType.FIX_2D
        altitude_m = self._altitude_m if gga else NAN
        ground_speed_mps, course_deg = (self._speed_mps, self._course_deg) if rmc else (NAN, NAN)
        satellites = self._satellites if gga else 0
        time_s = position_s if (gga or rmc) else self._fix.time_s
        self._fix = GpsFix(lat, lon, altitude_m, ground_speed_mps, course_deg, fix_type, satellites, self._hdop,
                           self._vdop, self._utc_s, time_s, healthy)  # the fields in order


def open_serial_gps(device: str, baud: int = 9600, **options: Any) -> UbloxGps:
    """Open ``device`` (e.g. a UART tty) at ``baud`` bit/s non-blocking and wrap it in a :class:`UbloxGps`.

    ``options`` are passed to :class:`UbloxGps`.  If the device cannot be opened the GPS is still returned;
    it reports unhealthy and retries the open every ``reopen_interval_s`` from :meth:`UbloxGps.update`.
    """

    def opener() -> Any:
        import serial  # pyserial; imported here so a missing package is reported like a missing device

        return serial.Serial(device, baud, timeout=0, write_timeout=0)

    port, error = None, ""
    try:
        port = opener()
    except Exception as exc:  # noqa: BLE001 - a missing device is data
        error = f"open {device}: {exc}"
    gps = UbloxGps(port, opener=opener, **options)
    if port is None:
        gps.stats.record_error(error)
    return gps
