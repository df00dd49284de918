"""A small client for systemd's service notification protocol (``sd_notify``).

systemd passes the path of a datagram socket in ``NOTIFY_SOCKET``; the service sends newline-separated
``KEY=VALUE`` assignments to it (``READY=1``, ``STATUS=...``, ``WATCHDOG=1``, ``STOPPING=1``).  A path starting
with ``@`` names a socket in Linux's abstract namespace (the ``@`` stands for a leading NUL byte).  When the
service runs with ``WatchdogSec=``, systemd also sets ``WATCHDOG_USEC`` (the period in microseconds) and
``WATCHDOG_PID`` (the process that must ping); the service must send ``WATCHDOG=1`` more often than that.

Sending never blocks and never raises: a failed send returns ``False``, increments :attr:`SystemdNotifier.errors`
and records :attr:`SystemdNotifier.last_error`, so the health task can report it.
"""

from __future__ import annotations

import math
import os
import socket
from collections.abc import Mapping

_FROM_ENVIRONMENT = object()


def watchdog_period_s(environ: Mapping[str, str] | None = None, pid: int | None = None) -> float | None:
    """The systemd watchdog period in seconds, or ``None`` when no watchdog applies to this process.

    ``environ`` defaults to ``os.environ`` and ``pid`` to this process's id.  ``WATCHDOG_PID``, when set, must
    equal ``pid``; a missing, malformed or non-positive ``WATCHDOG_USEC`` means no watchdog.
    """
    env = os.environ if environ is None else environ
    own_pid = os.getpid() if pid is None else pid
    watchdog_pid = env.get("WATCHDOG_PID")
    if watchdog_pid:
        try:
            if int(watchdog_pid) != own_pid:
                return None
        except ValueError:
            return None
    try:
        usec = int(env.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    if usec <= 0:
        return None
    return usec / 1_000_000.0


def watchdog_should_ping(frames_on_time: bool, tasks_healthy: bool, last_ping_s: float | None, now_s: float,
                         period_s: float | None) -> bool:
    """Decide whether to send ``WATCHDOG=1`` this frame.

    Ping only while the main loop keeps its frame deadlines (``frames_on_time``) and every task reports healthy
    (``tasks_healthy``), and then at half the watchdog period ``period_s`` (seconds; ``None`` or <= 0 means no
    watchdog, so never ping).  ``last_ping_s`` is the monotonic time of the previous ping (``None`` before the
    first); ``now_s`` the current monotonic time.  A ``now_s`` earlier than ``last_ping_s`` can only be a caller
    error; it counts as due so the watchdog is not starved.
    """
    if period_s is None or not period_s > 0 or math.isinf(period_s):
        return False
    if not (frames_on_time and tasks_healthy):
        return False
    if last_ping_s is None or math.isnan(last_ping_s):
        return True
    elapsed_s = now_s - last_ping_s
    if elapsed_s < 0:
        return True
    return elapsed_s >= period_s / 2.0


def _socket_address(path: str) -> str | bytes:
    if path.startswith("@"):
        return b"\0" + path[1:].encode("utf-8")
    return path


class SystemdNotifier:
    """Sends notifications to systemd.

    ``socket_path`` defaults to ``$NOTIFY_SOCKET``; ``None`` or empty makes every call a successful no-op (the
    program is not run by systemd with ``Type=notify``).  Counters: ``sent`` (datagrams delivered), ``errors``
    (failed sends) and ``last_error`` (text of the most recent failure, empty if none).
    """

    def __init__(self, socket_path: str | None = _FROM_ENVIRONMENT) -> None:  # type: ignore[assignment]
        if socket_path is _FROM_ENVIRONMENT:
            socket_path = os.environ.get("NOTIFY_SOCKET")
        self.socket_path: str | None = socket_path or None
        self.sent = 0
        self.errors = 0
        self.last_error = ""
        self._socket: socket.socket | None = None

    @property
    def enabled(self) -> bool:
        """True when there is a notify socket to talk to."""
        return self.socket_path is not None

    def notify(self, *assignments: str) -> bool:
        """Send ``KEY=VALUE`` assignments in one datagram.  Returns True when sent (or when disabled)."""
        if self.socket_path is None:
            return True
        message = "\n".join(assignments).encode("utf-8")
        try:
            if self._socket is None:
                self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                self._socket.setblocking(False)
            self._socket.sendto(message, _socket_address(self.socket_path))
        except OSError as exc:
            self.errors += 1
            self.last_error = f"{type(exc).__name__}: {exc}"
            self.close()
            return False
        self.sent += 1
        return True

    def ready(self, status: str | None = None) -> bool:
        """Tell systemd start-up is complete (``READY=1``), optionally with a status line."""
        if status is None:
            return self.notify("READY=1")
        return self.notify("READY=1", "STATUS=" + _one_line(status))

    def status(self, text: str) -> bool:
        """Set the one-line status shown by ``systemctl status``."""
        return self.notify("STATUS=" + _one_line(text))

    def watchdog(self) -> bool:
        """Ping the watchdog (``WATCHDOG=1``)."""
        return self.notify("WATCHDOG=1")

    def stopping(self, status: str | None = None) -> bool:
        """Tell systemd the service is shutting down (``STOPPING=1``)."""
        if status is None:
            return self.notify("STOPPING=1")
        return self.notify("STOPPING=1", "STATUS=" + _one_line(status))

    def extend_timeout(self, timeout_s: float) -> bool:
        """Ask for ``timeout_s`` more seconds of start-up or shutdown time (``EXTEND_TIMEOUT_USEC``)."""
        return self.notify(f"EXTEND_TIMEOUT_USEC={max(0, int(timeout_s * 1_000_000))}")

    def watchdog_period_s(self) -> float | None:
        """The watchdog period from this process's environment (see :func:`watchdog_period_s`)."""
        return watchdog_period_s()

    def close(self) -> None:
        """Release the socket (a later send opens a new one)."""
        if self._socket is not None:
            try:
                self._socket.close()
            except OSError:
                pass
            self._socket = None


def _one_line(text: str) -> str:
    return " ".join(str(text).splitlines())
