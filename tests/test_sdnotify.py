"""SystemdNotifier against real AF_UNIX datagram sockets, the watchdog period and the ping decision."""

from __future__ import annotations

import os
import socket
import uuid

import pytest

from flightsw.sdnotify import SystemdNotifier, watchdog_period_s, watchdog_should_ping


@pytest.fixture
def path_socket(tmp_path):
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(2.0)
    yield path, sock
    sock.close()


@pytest.fixture
def abstract_socket():
    name = f"flightsw-test-{uuid.uuid4().hex}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(b"\0" + name.encode())
    sock.settimeout(2.0)
    yield "@" + name, sock
    sock.close()


def test_exact_datagrams_on_a_path_socket(path_socket):
    path, sock = path_socket
    notifier = SystemdNotifier(path)
    assert notifier.enabled
    assert notifier.ready()
    assert sock.recv(4096) == b"READY=1"
    assert notifier.status("ascent, 12.3 km")
    assert sock.recv(4096) == b"STATUS=ascent, 12.3 km"
    assert notifier.watchdog()
    assert sock.recv(4096) == b"WATCHDOG=1"
    assert notifier.stopping()
    assert sock.recv(4096) == b"STOPPING=1"
    assert notifier.ready("armed")
    assert sock.recv(4096) == b"READY=1\nSTATUS=armed"
    assert notifier.extend_timeout(2.5)
    assert sock.recv(4096) == b"EXTEND_TIMEOUT_USEC=2500000"
    assert notifier.sent == 6 and notifier.errors == 0 and notifier.last_error == ""
    notifier.close()


def test_status_is_one_line(path_socket):
    path, sock = path_socket
    notifier = SystemdNotifier(path)
    notifier.status("line one\nline two")
    assert sock.recv(4096) == b"STATUS=line one line two"


def test_abstract_namespace_socket(abstract_socket):
    name, sock = abstract_socket
    notifier = SystemdNotifier(name)
    assert notifier.watchdog()
    assert sock.recv(4096) == b"WATCHDOG=1"
    assert notifier.errors == 0


def test_default_socket_comes_from_environment(path_socket, monkeypatch):
    path, sock = path_socket
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    notifier = SystemdNotifier()
    assert notifier.socket_path == path
    notifier.ready()
    assert sock.recv(4096) == b"READY=1"


@pytest.mark.parametrize("socket_path", [None, ""])
def test_no_socket_is_a_no_op(socket_path):
    notifier = SystemdNotifier(socket_path)
    assert not notifier.enabled
    assert notifier.ready() and notifier.watchdog() and notifier.stopping()
    assert notifier.sent == 0 and notifier.errors == 0


def test_no_environment_socket_is_a_no_op(monkeypatch):
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    notifier = SystemdNotifier()
    assert not notifier.enabled and notifier.watchdog()


def test_unreachable_socket_returns_false_and_counts(tmp_path):
    notifier = SystemdNotifier(str(tmp_path / "nobody-listens.sock"))
    assert notifier.watchdog() is False
    assert notifier.ready() is False
    assert notifier.errors == 2
    assert "FileNotFoundError" in notifier.last_error
    assert notifier.sent == 0


def test_unreachable_abstract_socket_returns_false():
    notifier = SystemdNotifier(f"@flightsw-nobody-{uuid.uuid4().hex}")
    assert notifier.watchdog() is False
    assert notifier.errors == 1 and notifier.last_error


def test_recovers_when_the_socket_appears(tmp_path):
    path = str(tmp_path / "late.sock")
    notifier = SystemdNotifier(path)
    assert not notifier.watchdog()
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(path)
        sock.settimeout(2.0)
        assert notifier.watchdog()
        assert sock.recv(4096) == b"WATCHDOG=1"
    assert notifier.errors == 1 and notifier.sent == 1


@pytest.mark.parametrize("env, pid, expected", [
    ({"WATCHDOG_USEC": "5000000"}, 42, 5.0),
    ({"WATCHDOG_USEC": "5000000", "WATCHDOG_PID": "42"}, 42, 5.0),
    ({"WATCHDOG_USEC": "5000000", "WATCHDOG_PID": "43"}, 42, None),
    ({"WATCHDOG_USEC": "5000000", "WATCHDOG_PID": "junk"}, 42, None),
    ({"WATCHDOG_USEC": "250000"}, 42, 0.25),
    ({"WATCHDOG_USEC": "0"}, 42, None),
    ({"WATCHDOG_USEC": "-5"}, 42, None),
    ({"WATCHDOG_USEC": "five"}, 42, None),
    ({}, 42, None),
])
def test_watchdog_period(env, pid, expected):
    assert watchdog_period_s(env, pid) == expected


def test_watchdog_period_defaults_to_this_process(monkeypatch):
    monkeypatch.setenv("WATCHDOG_USEC", "3000000")
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    assert watchdog_period_s() == 3.0
    assert SystemdNotifier(None).watchdog_period_s() == 3.0
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid() + 1))
    assert watchdog_period_s() is None


@pytest.mark.parametrize("on_time, healthy, last_ping_s, now_s, period_s, expected", [
    (True, True, None, 10.0, 5.0, True),          # first ping
    (True, True, 10.0, 12.4, 5.0, False),         # before half period
    (True, True, 10.0, 12.5, 5.0, True),          # exactly half period
    (True, True, 10.0, 14.0, 5.0, True),          # late
    (False, True, 10.0, 14.0, 5.0, False),        # frames overrunning: let systemd restart us
    (True, False, 10.0, 14.0, 5.0, False),        # a task unhealthy
    (False, False, None, 14.0, 5.0, False),
    (True, True, 10.0, 14.0, None, False),        # no watchdog configured
    (True, True, 10.0, 14.0, 0.0, False),
    (True, True, 10.0, 14.0, float("nan"), False),
    (True, True, float("nan"), 14.0, 5.0, True),
    (True, True, 20.0, 14.0, 5.0, True),          # clock went backwards: do not starve the watchdog
])
def test_watchdog_should_ping(on_time, healthy, last_ping_s, now_s, period_s, expected):
    assert watchdog_should_ping(on_time, healthy, last_ping_s, now_s, period_s) is expected
