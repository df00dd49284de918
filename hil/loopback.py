"""An in-memory link between the daemon's ground link and the simulated operator's ground station.

Bytes written on one end are read on the other, through the real transport interface, so the scripted operator's
commands cross the same parser, signature check and dispatcher as a radio's.  A blackout fault drops everything.
"""

from __future__ import annotations

from collections import deque

from flightsw.link.transport import Transport


class LoopbackTransport(Transport):
    """One end of a :func:`loopback_pair`."""

    def __init__(self, name: str) -> None:
        super().__init__(name, retry_interval_s=1.0, clock=lambda: 0.0)
        self.inbox: deque[bytes] = deque()
        self.peer: LoopbackTransport | None = None
        self.blackout = False

    def _open(self) -> None:
        if self.peer is None:
            raise OSError("loopback end not connected")

    def _read(self, max_bytes: int) -> bytes:
        inbox = self.inbox
        if not inbox:
            return b""
        chunks = []
        size = 0
        while inbox and size + len(inbox[0]) <= max_bytes:
            chunk = inbox.popleft()
            chunks.append(chunk)
            size += len(chunk)
        if not chunks and inbox:  # a chunk larger than the budget: hand over its first part
            head = inbox.popleft()
            chunks.append(head[:max_bytes])
            inbox.appendleft(head[max_bytes:])
        return b"".join(chunks)

    def _write(self, data: bytes) -> bool:
        assert self.peer is not None
        if self.blackout or self.peer.blackout:
            return True  # the radio "sent" it; nobody heard it
        self.peer.inbox.append(data)
        return True

    def _close(self) -> None:
        self.inbox.clear()


def loopback_pair(name: str = "hil") -> tuple[LoopbackTransport, LoopbackTransport]:
    """``(vehicle_end, ground_end)`` connected to each other."""
    vehicle, ground = LoopbackTransport(f"{name}-vehicle"), LoopbackTransport(f"{name}-ground")
    vehicle.peer, ground.peer = ground, vehicle
    return vehicle, ground
