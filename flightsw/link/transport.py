"""Byte transports for the ground link: UDP sockets and serial ports.

A transport moves raw bytes and nothing else; MAVLink framing lives in :mod:`flightsw.link.endpoint`.  Every
transport keeps the same small contract so the control loop can drive it without ever blocking or crashing:

* ``read_available(max_bytes)`` returns at most ``max_bytes`` bytes that are already waiting (possibly ``b""``)
  and never blocks;
* ``write(data)`` returns ``True`` when the whole of ``data`` was handed to the operating system and ``False``
  otherwise; it never raises, and a full buffer drops the data (counted) instead of waiting;
* a device that is missing or fails is closed, counted, and reopened every ``retry_interval_s``;
* ``close()`` releases the socket or port and may be called more than once.

Build a transport from configuration with :func:`make_transport`.
"""

from __future__ import annotations

import abc
import errno
import os
import socket
import time
from dataclasses import dataclass
from typing import Callable

import serial

from flightsw.config.spec import spec

MAX_UDP_DATAGRAM_BYTES = 65535


@dataclass(frozen=True)
class LinkConfig:
    """One ground link: how to reach it and how to treat it."""

    name: str = spec("gcs", min=1, max=32, doc="Name of the link in logs and health reports.")
    kind: str = spec("udp", choices=("udp", "serial"), doc="Transport: a UDP socket or a serial port.")
    listen: str = spec("", doc="UDP only: 'host:port' to bind and listen on; replies go to the last peer heard.")
    send_to: str = spec("", doc="UDP only: 'host:port' to send to; replies from it are received too.")
    device: str = spec("", doc="Serial only: device path of the port, e.g. a telemetry radio.")
    baud: int = spec(57600, min=1200, max=4_000_000, unit="baud", doc="Serial only: line speed.")
    local: bool = spec(False, doc="A wired link (serial, or UDP on 127.0.0.1): with no key installed, SETUP_SIGNING "
                                  "is accepted only on such a link, in PREFLIGHT.")
    high_latency: bool = spec(False, doc="A slow, expensive link (e.g. satellite) that gets HIGH_LATENCY2 only.")
    max_rx_bytes_per_frame: int = spec(2048, min=64, max=65536, unit="bytes",
                                       doc="Most bytes read and parsed from this link in one control-loop frame.")
    signing_link_id: int = spec(0, min=0, max=255,
                                doc="Link id written into our MAVLink 2 signatures on this link; give each link "
                                    "its own so a ground station on two links sees two signing streams.")


@dataclass(slots=True)
class TransportStats:
    """Counters every transport keeps; the health task reports them."""

    bytes_read: int = 0
    bytes_written: int = 0
    writes_ok: int = 0
    writes_dropped: int = 0     # not sent: buffer full, no peer yet, or the device is not open
    write_errors: int = 0       # the operating system refused the write
    read_errors: int = 0
    open_failures: int = 0      # failed attempts to open the socket or device
    opens: int = 0              # successful opens (the first one included)
    last_error: str = ""


def parse_host_port(text: str) -> tuple[str, int]:
    """Split ``'host:port'`` into ``(host, port)``; raises ``ValueError`` on a malformed address."""
    host, sep, port_text = text.strip().rpartition(":")
    if not sep or not host or not port_text.isdigit():
        raise ValueError(f"expected 'host:port', got {text!r}")
    port = int(port_text)
    if not 0 <= port <= 65535:
        raise ValueError(f"port out of range in {text!r}")
    return host, port


class Transport(abc.ABC):
    """Common behaviour: counters, a name, and a reopen-after-failure schedule.

    Subclasses implement ``_open``, ``_read``, ``_write`` and ``_close``; this class turns their exceptions into
    counters and schedules reopening.
    """

    def __init__(self, name: str, *, retry_interval_s: float, clock: Callable[[], float]) -> None:
        self.name = name
        self.stats = TransportStats()
        self.retry_interval_s = retry_interval_s
        self._clock = clock
        self._next_open_s = float("-inf")
        self._open_now = False

    # ---------------------------------------------------------------- public API

    @property
    def is_open(self) -> bool:
        return self._open_now

    def read_available(self, max_bytes: int) -> bytes:
        """Up to ``max_bytes`` bytes already received; ``b""`` when there are none.  Never blocks or raises."""
        if max_bytes <= 0 or not (self._open_now or self._ensure_open()):
            return b""
        try:
            data = self._read(max_bytes)
        except (OSError, serial.SerialException) as exc:
            self.stats.read_errors += 1
            self._fail(f"read: {exc}")
            return b""
        self.stats.bytes_read += len(data)
        return data

    def write(self, data: bytes) -> bool:
        """Send ``data`` whole; ``False`` (and a counter) when it was dropped or failed.  Never raises."""
        if not (self._open_now or self._ensure_open()):
            self.stats.writes_dropped += 1
            return False
        try:
            ok = self._write(bytes(data))
        except BlockingIOError:
            self.stats.writes_dropped += 1
            self.stats.last_error = "write: buffer full"
            return False
        except (OSError, serial.SerialException) as exc:
            self.stats.write_errors += 1
            self._fail(f"write: {exc}")
            return False
        if ok:
            self.stats.writes_ok += 1
            self.stats.bytes_written += len(data)
        return ok

    def close(self) -> None:
        """Release the socket or device.  Safe to call repeatedly; a closed transport stays closed."""
        self._next_open_s = float("inf")
        if self._open_now:
            self._open_now = False
            self._close_quietly()

    # ---------------------------------------------------------------- helpers

    def _ensure_open(self) -> bool:
        if self._open_now:
            return True
        now_s = self._clock()
        if now_s < self._next_open_s:
            return False
        self._next_open_s = now_s + self.retry_interval_s
        try:
            self._open()
        except (OSError, ValueError, serial.SerialException) as exc:
            self.stats.open_failures += 1
            self.stats.last_error = f"open: {exc}"
            self._close_quietly()
            return False
        self._open_now = True
        self.stats.opens += 1
        return True

    def _fail(self, what: str) -> None:
        """Record ``what`` and close; the device is reopened after ``retry_interval_s``."""
        self.stats.last_error = what
        if self._should_close_on_error():
            self._open_now = False
            self._close_quietly()
            self._next_open_s = self._clock() + self.retry_interval_s

    def _close_quietly(self) -> None:
        try:
            self._close()
        except (OSError, serial.SerialException):
            pass

    def _should_close_on_error(self) -> bool:
        return True

    @abc.abstractmethod
    def _open(self) -> None:
        """Open the socket or device; raise ``OSError`` / ``serial.SerialException`` on failure."""

    @abc.abstractmethod
    def _read(self, max_bytes: int) -> bytes:
        """Up to ``max_bytes`` waiting bytes, without blocking."""

    @abc.abstractmethod
    def _write(self, data: bytes) -> bool:
        """Send all of ``data`` without blocking; ``BlockingIOError`` when the buffer is full."""

    @abc.abstractmethod
    def _close(self) -> None:
        """Release the socket or device."""


class UdpTransport(Transport):
    """A non-blocking UDP socket.

    ``listen=(host, port)`` binds there and replies to the last peer a datagram came from (as MAVProxy and
    ArduPilot SITL do); until a peer has been heard, writes are dropped and counted.  ``send_to=(host, port)``
    sends every write to that fixed address from an ephemeral port and receives the replies.  Both may be given:
    bind to ``listen`` and always send to ``send_to``.

    Reads keep datagram bytes in order; a datagram larger than ``max_bytes`` is returned over several reads.
    """

    def __init__(self, *, listen: tuple[str, int] | None, send_to: tuple[str, int] | None, name: str = "udp",
                 retry_interval_s: float = 2.0, clock: Callable[[], float] = time.monotonic) -> None:
        if listen is None and send_to is None:
            raise ValueError("UdpTransport needs listen, send_to, or both")
        super().__init__(name, retry_interval_s=retry_interval_s, clock=clock)
        self._listen = listen
        self._send_to_spec = send_to
        self._send_to: tuple[str, int] | None = None
        self._sock: socket.socket | None = None
        self._pending = bytearray()
        self.peer: tuple[str, int] | None = None   # where replies go: send_to, or the last sender heard
        self._ensure_open()

    @property
    def local_address(self) -> tuple[str, int] | None:
        """The bound ``(host, port)``, or ``None`` while the socket is not open."""
        return self._sock.getsockname() if self._sock is not None else None

    def _open(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock = sock
        sock.setblocking(False)
        if self._listen is not None:
            sock.bind(_resolve(self._listen))
        else:
            sock.bind(("0.0.0.0", 0))
        if self._send_to_spec is not None:
            self._send_to = _resolve(self._send_to_spec)
            self.peer = self._send_to

    def _read(self, max_bytes: int) -> bytes:
        out = bytearray()
        if self._pending:
            out += self._pending[:max_bytes]
            del self._pending[:max_bytes]
        attempts = 0
        while len(out) < max_bytes and attempts < max_bytes:
            attempts += 1   # bounds the loop even under a flood of empty datagrams
            try:
                datagram, sender = self._sock.recvfrom(MAX_UDP_DATAGRAM_BYTES)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:   # e.g. an ICMP port-unreachable reported on this socket
                self.stats.read_errors += 1
                self.stats.last_error = f"recv: {exc}"
                break
            if self._send_to is None:
                self.peer = sender
            room = max_bytes - len(out)
            out += datagram[:room]
            self._pending += datagram[room:]
        return bytes(out)

    def _write(self, data: bytes) -> bool:
        if self.peer is None:
            self.stats.writes_dropped += 1
            self.stats.last_error = "write: no peer heard yet"
            return False
        sent = self._sock.sendto(data, self.peer)
        if sent != len(data):
            self.stats.writes_dropped += 1
            return False
        return True

    def _should_close_on_error(self) -> bool:
        # A UDP send error (unreachable network, refused port) concerns one datagram, not the socket.
        return False

    def _close(self) -> None:
        sock, self._sock = self._sock, None
        self._pending.clear()
        if sock is not None:
            sock.close()


class SerialTransport(Transport):
    """A serial port opened with pyserial in non-blocking mode (``timeout=0``).

    A missing or vanished device is not an exception: it is counted in ``stats.open_failures`` and reopened every
    ``retry_interval_s`` seconds, reads return ``b""`` and writes are dropped (counted) meanwhile.  Writes that do
    not fit in the driver's output buffer are dropped rather than waited for.
    """

    def __init__(self, device: str, baud: int, *, name: str | None = None, retry_interval_s: float = 2.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(name or device, retry_interval_s=retry_interval_s, clock=clock)
        self.device = device
        self.baud = baud
        self._port: serial.Serial | None = None
        self._ensure_open()

    def _open(self) -> None:
        port = serial.Serial()
        port.port = self.device
        port.baudrate = self.baud
        port.timeout = 0
        port.write_timeout = 0
        port.exclusive = True
        port.open()
        self._port = port

    def _read(self, max_bytes: int) -> bytes:
        return self._port.read(max_bytes)

    def _write(self, data: bytes) -> bool:
        # os.write on the non-blocking descriptor: pyserial's own write spins while the buffer is full.
        try:
            written = os.write(self._port.fileno(), data)
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EINTR):
                raise BlockingIOError(exc.errno, "serial output buffer full") from exc
            raise
        if written != len(data):
            self.stats.writes_dropped += 1
            self.stats.last_error = f"write: only {written} of {len(data)} bytes fitted"
            return False
        return True

    def _close(self) -> None:
        port, self._port = self._port, None
        if port is not None:
            port.close()


def _resolve(address: tuple[str, int]) -> tuple[str, int]:
    """Resolve ``(host, port)`` to an IPv4 socket address; raises ``OSError`` when the host is unknown."""
    host, port = address
    infos = socket.getaddrinfo(host or "0.0.0.0", port, socket.AF_INET, socket.SOCK_DGRAM)
    return infos[0][4][0], infos[0][4][1]


def make_transport(spec: LinkConfig, *, clock: Callable[[], float] = time.monotonic) -> Transport:
    """Build the transport ``spec`` describes; raises ``ValueError`` when the configuration is inconsistent.

    The transport never raises after this point: an unplugged radio or a busy port is retried and counted.
    """
    if spec.kind == "udp":
        listen = parse_host_port(spec.listen) if spec.listen else None
        send_to = parse_host_port(spec.send_to) if spec.send_to else None
        if listen is None and send_to is None:
            raise ValueError(f"link {spec.name!r}: a udp link needs 'listen' or 'send_to'")
        return UdpTransport(listen=listen, send_to=send_to, name=spec.name, clock=clock)
    if spec.kind == "serial":
        if not spec.device:
            raise ValueError(f"link {spec.name!r}: a serial link needs 'device'")
        return SerialTransport(spec.device, spec.baud, name=spec.name, clock=clock)
    raise ValueError(f"link {spec.name!r}: unknown kind {spec.kind!r} (expected 'udp' or 'serial')")
