"""Transports over real sockets and a pseudo-terminal: round trips, bounded reads, errors counted not raised."""

from __future__ import annotations

import os
import select
import socket
import time

import pytest

from flightsw.link.transport import (LinkConfig, SerialTransport, UdpTransport, make_transport,
                                     parse_host_port)


def _read_until(transport, want_bytes: int, max_bytes: int = 4096, deadline_s: float = 2.0) -> bytes:
    """Poll a non-blocking transport until ``want_bytes`` arrived (or give up after the deadline)."""
    out = bytearray()
    end = time.monotonic() + deadline_s
    while len(out) < want_bytes and time.monotonic() < end:
        chunk = transport.read_available(max_bytes)
        if chunk:
            out += chunk
        else:
            time.sleep(0.002)
    return bytes(out)


def _udp_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(2.0)
    return sock


class FakeClock:
    def __init__(self) -> None:
        self.now_s = 100.0

    def __call__(self) -> float:
        return self.now_s


# ---------------------------------------------------------------- UDP


def test_udp_listen_replies_to_last_peer() -> None:
    link = UdpTransport(listen=("127.0.0.1", 0), send_to=None, name="gcs")
    first, second = _udp_socket(), _udp_socket()
    try:
        port = link.local_address[1]
        assert link.write(b"nobody yet") is False          # no peer heard: dropped and counted
        assert link.stats.writes_dropped == 1

        first.sendto(b"hello from one", ("127.0.0.1", port))
        assert _read_until(link, 14) == b"hello from one"
        assert link.write(b"reply-1") is True
        assert first.recvfrom(100)[0] == b"reply-1"

        second.sendto(b"two", ("127.0.0.1", port))
        assert _read_until(link, 3) == b"two"
        assert link.write(b"reply-2") is True
        assert second.recvfrom(100)[0] == b"reply-2"
        assert link.peer == second.getsockname()
        assert link.stats.bytes_read == 17 and link.stats.writes_ok == 2 and link.stats.bytes_written == 14
    finally:
        link.close()
        first.close()
        second.close()


def test_udp_send_to_sends_and_receives_replies() -> None:
    server = _udp_socket()
    link = UdpTransport(listen=None, send_to=server.getsockname())
    try:
        assert link.write(b"telemetry") is True
        data, sender = server.recvfrom(100)
        assert data == b"telemetry"
        server.sendto(b"command", sender)
        assert _read_until(link, 7) == b"command"
    finally:
        link.close()
        server.close()


def test_udp_reads_are_bounded_and_keep_byte_order() -> None:
    link = UdpTransport(listen=("127.0.0.1", 0), send_to=None)
    sender = _udp_socket()
    try:
        datagrams = [bytes([i]) * 100 for i in range(5)]
        for datagram in datagrams:
            sender.sendto(datagram, link.local_address)
        got = bytearray()
        end = time.monotonic() + 2.0
        while len(got) < 500 and time.monotonic() < end:
            chunk = link.read_available(150)
            assert len(chunk) <= 150
            got += chunk
        assert bytes(got) == b"".join(datagrams)
        assert link.read_available(0) == b""
    finally:
        link.close()
        sender.close()


def test_udp_write_to_closed_port_does_not_raise() -> None:
    gone = _udp_socket()
    address = gone.getsockname()
    gone.close()
    link = UdpTransport(listen=None, send_to=address)
    try:
        for _ in range(5):
            link.write(b"x" * 50)                    # may be accepted by the OS or refused: never raises
            assert link.read_available(1024) == b""
        assert link.stats.writes_ok + link.stats.write_errors + link.stats.writes_dropped == 5
        assert link.write(b"y" * 70000) is False     # larger than any datagram: refused, counted
        assert link.stats.write_errors >= 1
    finally:
        link.close()


def test_udp_port_in_use_is_counted_and_retried() -> None:
    holder = _udp_socket()
    clock = FakeClock()
    link = UdpTransport(listen=holder.getsockname(), send_to=None, clock=clock, retry_interval_s=2.0)
    try:
        assert not link.is_open and link.stats.open_failures == 1
        assert link.read_available(100) == b""
        assert link.stats.open_failures == 1                  # not retried before the interval
        holder.close()
        clock.now_s += 2.5
        assert link.read_available(100) == b""
        assert link.is_open and link.stats.opens == 1
    finally:
        link.close()
        holder.close()


def test_closed_transport_stays_closed() -> None:
    link = UdpTransport(listen=("127.0.0.1", 0), send_to=None)
    link.close()
    link.close()
    assert link.read_available(100) == b"" and link.write(b"x") is False and not link.is_open


# ---------------------------------------------------------------- serial


def test_serial_missing_device_is_counted_and_retried() -> None:
    clock = FakeClock()
    link = SerialTransport("/dev/flightsw-no-such-radio", 57600, clock=clock, retry_interval_s=2.0)
    assert not link.is_open
    assert link.stats.open_failures == 1
    assert link.read_available(100) == b""
    assert link.write(b"abc") is False
    assert link.stats.writes_dropped == 1
    assert link.stats.open_failures == 1
    clock.now_s += 2.5
    assert link.read_available(100) == b""
    assert link.stats.open_failures == 2
    assert "open" in link.stats.last_error
    link.close()


def test_serial_round_trip_over_pty() -> None:
    master, slave = os.openpty()
    link = SerialTransport(os.ttyname(slave), 115200, name="radio")
    try:
        assert link.is_open and link.name == "radio"
        os.write(master, bytes(range(256)) * 2)
        got = bytearray()
        end = time.monotonic() + 2.0
        while len(got) < 512 and time.monotonic() < end:
            chunk = link.read_available(100)
            assert len(chunk) <= 100
            got += chunk
        assert bytes(got) == bytes(range(256)) * 2

        message = b"\x00\xfd\x0a\x0d\xff payload"          # binary-clean: no newline or CR translation
        assert link.write(message) is True
        echoed = bytearray()
        while len(echoed) < len(message) and select.select([master], [], [], 2.0)[0]:
            echoed += os.read(master, 100)
        assert bytes(echoed) == message
    finally:
        link.close()
        os.close(master)
        os.close(slave)


def test_serial_device_vanishing_is_counted_not_raised() -> None:
    master, slave = os.openpty()
    clock = FakeClock()
    link = SerialTransport(os.ttyname(slave), 57600, clock=clock)
    os.close(slave)
    os.close(master)                               # the other end disappears: reads now fail with EIO
    for _ in range(3):
        assert link.read_available(100) == b""
        link.write(b"data")
    assert link.stats.read_errors + link.stats.write_errors >= 1
    assert not link.is_open
    link.close()


# ---------------------------------------------------------------- configuration


def test_make_transport_from_config() -> None:
    server = _udp_socket()
    host, port = server.getsockname()
    link = make_transport(LinkConfig(name="lte", kind="udp", send_to=f"{host}:{port}"))
    try:
        assert isinstance(link, UdpTransport) and link.name == "lte"
        assert link.write(b"ping")
        assert server.recvfrom(10)[0] == b"ping"
    finally:
        link.close()
        server.close()
    radio = make_transport(LinkConfig(name="radio", kind="serial", device="/dev/flightsw-absent", baud=57600))
    assert isinstance(radio, SerialTransport) and radio.stats.open_failures == 1
    radio.close()


@pytest.mark.parametrize("config", [
    LinkConfig(kind="udp"),
    LinkConfig(kind="serial"),
    LinkConfig(kind="udp", listen="no-port"),
    LinkConfig(kind="carrier-pigeon", device="x"),
])
def test_make_transport_rejects_inconsistent_config(config: LinkConfig) -> None:
    with pytest.raises(ValueError):
        make_transport(config)


def test_parse_host_port() -> None:
    assert parse_host_port("0.0.0.0:14550") == ("0.0.0.0", 14550)
    assert parse_host_port(" localhost:5760 ") == ("localhost", 5760)
    for bad in ("14550", ":14550", "host:", "host:99999", "host:port"):
        with pytest.raises(ValueError):
            parse_host_port(bad)
