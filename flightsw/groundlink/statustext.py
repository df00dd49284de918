"""STATUSTEXT: operator-facing events, chunked as MAVLink 2 allows, queued and paced.

A text longer than 50 bytes (UTF-8) is split into chunks of at most 50 bytes that share a non-zero ``id`` and
count ``chunk_seq`` from 0; receivers join them and know the last chunk by its NUL padding.  When the text is an
exact multiple of 50 bytes an empty final chunk is added so the last real chunk is not mistaken for an unfinished
one.  A single-chunk text has ``id`` 0 ("emit immediately").  Chunks are never split inside a UTF-8 character.
"""

from __future__ import annotations

from collections import deque

from pymavlink.dialects.v20 import common as mavlink

TEXT_BYTES = 50
MAX_CHUNKS = 8        # longer texts are cut (400 bytes is already a paragraph on a ground station screen)
QUEUE_CHUNKS = 64     # chunks waiting; the oldest are dropped (counted) beyond this

#: Event severity names (as used by the daemon's ``event()``) to MAV_SEVERITY.
SEVERITY = {
    "emergency": mavlink.MAV_SEVERITY_EMERGENCY,
    "alert": mavlink.MAV_SEVERITY_ALERT,
    "critical": mavlink.MAV_SEVERITY_CRITICAL,
    "error": mavlink.MAV_SEVERITY_ERROR,
    "warning": mavlink.MAV_SEVERITY_WARNING,
    "notice": mavlink.MAV_SEVERITY_NOTICE,
    "info": mavlink.MAV_SEVERITY_INFO,
    "debug": mavlink.MAV_SEVERITY_DEBUG,
}


def severity_of(name: str) -> int:
    """MAV_SEVERITY for an event severity name (case-insensitive); unknown names are INFO."""
    return SEVERITY.get(str(name).strip().lower(), mavlink.MAV_SEVERITY_INFO)


def split_utf8(text: str, size: int = TEXT_BYTES, max_chunks: int = MAX_CHUNKS) -> list[bytes]:
    """``text`` as UTF-8 pieces of at most ``size`` bytes, never cutting a character, at most ``max_chunks``."""
    data = text.encode("utf-8")
    pieces: list[bytes] = []
    start = 0
    while start < len(data) and len(pieces) < max_chunks:
        end = min(start + size, len(data))
        while end < len(data) and end > start and (data[end] & 0xC0) == 0x80:
            end -= 1  # back off to the start of the character that would be cut
        pieces.append(data[start:end])
        start = end
    return pieces or [b""]


class StatusTextQueue:
    """Chunks waiting to be sent, oldest first."""

    def __init__(self, max_chunks: int = QUEUE_CHUNKS) -> None:
        self._queue: deque[mavlink.MAVLink_statustext_message] = deque()
        self._max_chunks = max_chunks
        self._next_id = 1
        self.queued = 0
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._queue)

    def put(self, severity: int, text: str) -> None:
        """Queue ``text`` at MAV_SEVERITY ``severity`` (chunked when longer than 50 bytes)."""
        pieces = split_utf8(text)
        if len(pieces) == 1:
            chunks = [(0, 0, pieces[0])]
        else:
            if len(pieces[-1]) == TEXT_BYTES and len(pieces) < MAX_CHUNKS:
                pieces.append(b"")
            message_id = self._next_id
            self._next_id = self._next_id % 0xFFFF + 1  # 1..65535; 0 is reserved for single chunks
            chunks = [(message_id, seq, piece) for seq, piece in enumerate(pieces)]
        for message_id, seq, piece in chunks:
            if len(self._queue) >= self._max_chunks:
                self._queue.popleft()
                self.dropped += 1
            self._queue.append(mavlink.MAVLink_statustext_message(severity, piece, message_id, seq))
            self.queued += 1

    def pop(self) -> mavlink.MAVLink_statustext_message | None:
        return self._queue.popleft() if self._queue else None
