"""The killable child's own files: the world snapshot it writes every frame, and the progress record the parent
polls.

* ``world.pickle`` (:class:`SnapshotFile`): two fixed regions of one file written in place alternately, each with
  a sequence number and a CRC-32; a kill in the middle of a write leaves the other copy, one frame older.  SIGKILL
  loses nothing in the page cache, so nothing is fsync-ed.  :func:`record_stop` is the parent's only write to it
  (the stop after a kill, see :mod:`hil.killable`).
* ``progress.json``: one fixed-size record rewritten in place every frame, ``<crc32 hex> <json>``.
* :class:`Layout` reads and writes back an object's fields fast (the world and the board, every frame).
"""

from __future__ import annotations

import dataclasses
import json
import operator
import os
import pickle
import struct
import zlib
from pathlib import Path

SNAPSHOT_NAME = "world.pickle"
PROGRESS_NAME = "progress.json"

_REGION_BYTES = 1 << 20
_HEADER = struct.Struct("<4sQII")  # magic, sequence, payload length, CRC-32 of the payload
_MAGIC = b"KSN1"
_PROGRESS_BYTES = 1024
_SCALARS = (int, float, bool)


# ---------------------------------------------------------------------------------------------- snapshot file

class SnapshotFile:
    """Two fixed regions of one file written alternately with ``pwrite``; the newest intact one is the snapshot."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._sequence, newest, _ = max(_regions(self.path), default=(0, 1, b""))
        self._region = 1 - newest
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)

    def write(self, payload: bytes) -> None:
        if len(payload) + _HEADER.size > _REGION_BYTES:
            raise ValueError(f"snapshot of {len(payload)} bytes does not fit a {_REGION_BYTES}-byte region")
        self._sequence += 1
        header = _HEADER.pack(_MAGIC, self._sequence, len(payload), zlib.crc32(payload))
        os.pwritev(self._fd, (header, payload), self._region * _REGION_BYTES)
        self._region ^= 1

    def close(self) -> None:
        os.close(self._fd)


def _regions(path: Path) -> list[tuple[int, int, bytes]]:
    """``(sequence, region, payload)`` of every intact region of ``path``."""
    found = []
    try:
        with open(path, "rb") as file:
            for region in (0, 1):
                file.seek(region * _REGION_BYTES)
                raw = file.read(_HEADER.size)
                if len(raw) == _HEADER.size:
                    magic, sequence, length, crc = _HEADER.unpack(raw)
                    payload = file.read(length) if magic == _MAGIC and length < _REGION_BYTES else None
                    if payload is not None and len(payload) == length and zlib.crc32(payload) == crc:
                        found.append((sequence, region, payload))
    except FileNotFoundError:
        pass
    return found


def read_snapshot(work_dir: Path) -> dict | None:
    """The newest intact snapshot in ``work_dir`` (a dict, see :meth:`KillableRun.snapshot`), or None."""
    regions = _regions(Path(work_dir) / SNAPSHOT_NAME)
    return pickle.loads(max(regions)[2]) if regions else None


def record_stop(work_dir: Path, *, held_s: float, restart_delay_s: float) -> bool:
    """After a kill: the outputs stayed as the dead process left them for ``held_s`` seconds, then
    ``safe-outputs`` dropped them, and the next process starts ``restart_delay_s`` after the kill.  A stop not yet
    consumed (the previous process died before its first frame) is extended.  False when no snapshot exists."""
    snapshot = read_snapshot(work_dir)
    if snapshot is None:
        return False
    previous = snapshot.get("stop")
    if previous:
        held_s = previous["held_s"]
        restart_delay_s += previous["restart_delay_s"]
    snapshot["stop"] = {"held_s": float(held_s), "restart_delay_s": float(max(held_s, restart_delay_s))}
    file = SnapshotFile(Path(work_dir) / SNAPSHOT_NAME)
    try:
        file.write(pickle.dumps(snapshot, protocol=pickle.HIGHEST_PROTOCOL))
    finally:
        file.close()
    return True


# ---------------------------------------------------------------------------------------------- progress file

def write_progress(fd: int, data: dict) -> None:
    """One fixed-size record at offset 0: ``<crc32 hex> <json>`` padded with spaces."""
    body = json.dumps(data, separators=(",", ":")).encode()
    line = b"%08x " % zlib.crc32(body) + body
    os.pwrite(fd, line.ljust(_PROGRESS_BYTES), 0)


def read_progress(work_dir: Path) -> dict | None:
    """The child's last progress record, or None (none yet, or caught half written)."""
    try:
        raw = (Path(work_dir) / PROGRESS_NAME).read_bytes().rstrip()
    except FileNotFoundError:
        return None
    crc, _, body = raw.partition(b" ")
    try:
        if int(crc, 16) != zlib.crc32(body):
            return None
        return json.loads(body)
    except ValueError:
        return None


class Layout:
    """Reads an object's fields fast: ``capture`` gives ``(names, values)``, a dataclass field as a tuple of its
    own values; ``apply`` writes such a capture back (a dataclass field is updated in place)."""

    def __init__(self, obj, *, skip=frozenset(), scalars_only: bool = False) -> None:
        if hasattr(obj, "__dict__"):
            items = list(vars(obj).items())
        else:
            names = [name for cls in type(obj).__mro__ for name in getattr(cls, "__slots__", ())]
            items = [(name, getattr(obj, name)) for name in names if hasattr(obj, name)]
        items = [(name, value) for name, value in items if name not in skip
                 and (type(value) in _SCALARS or not scalars_only and not callable(value))]
        self.names = tuple(name for name, _ in items)
        self.size = len(vars(obj)) if hasattr(obj, "__dict__") else len(items)
        self._get = operator.attrgetter(*self.names, *self.names[:1])  # two or more names: always a tuple
        self._nested = [(index, operator.attrgetter(*(f.name for f in dataclasses.fields(value))))
                        for index, (_, value) in enumerate(items) if dataclasses.is_dataclass(value)]

    def capture(self, obj) -> tuple:
        values = self._get(obj)[:-1]
        if self._nested:
            values = list(values)
            for index, getter in self._nested:
                values[index] = getter(values[index])
        return self.names, tuple(values)

    @staticmethod
    def apply(obj, captured: tuple) -> None:
        for name, value in zip(*captured):
            current = getattr(obj, name, None)
            if dataclasses.is_dataclass(current) and type(value) is tuple:
                for field, item in zip(dataclasses.fields(current), value):
                    setattr(current, field.name, item)
            else:
                setattr(obj, name, value)
