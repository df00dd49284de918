"""A crash-safe store for one small JSON document (the flight-state journal, the parameter store).

File format, one document per file::

    {"crc32": "1c291ca3", "format": "flightsw-store/1", "length": 27, "schema_version": 3, "sequence": 42}\\n
    {"altitude_m": 31250.0, ...}\\n

The first line is a header; the rest is the body, serialised with sorted keys, whose length and CRC-32 the header
records.  A file is accepted only when the header parses, names this format and the expected schema version, and
the body has the recorded length and checksum and is a JSON object.

Writing a generation: the new file is written to a temporary file in the same directory, flushed and ``fsync``-ed;
then the current primary (if it is known to be good) is renamed to the backup path, the temporary file is renamed
to the primary path, and the directory is ``fsync``-ed so both renames are durable.  A power cut at any point leaves
either the new generation as primary, or the previous good generation as primary or backup; a torn or corrupted
primary falls back to the backup on :meth:`AtomicStore.load`.  A stale temporary file (a crash before the rename)
is never read and is removed by the next save.

Why not SQLite in WAL mode: SQLite would give the same crash safety, but these documents are a few kilobytes that
are always read and written whole, so a database adds a C library, a schema, journal and shared-memory files, and
a recovery path we can not inspect with ``cat`` after a flight, for no gain.  Rewriting a few kilobytes costs one
``fsync`` of the file plus one of the directory, about what a WAL commit costs, and the two-file layout (primary
plus previous generation) also survives a corrupted block in the primary, which a single database file does not.
"""

from __future__ import annotations

import errno
import json
import os
import pathlib
import zlib
from dataclasses import dataclass, field
from typing import Literal

FORMAT = "flightsw-store/1"
_TEMP_SUFFIX = ".tmp"


@dataclass(slots=True)
class LoadResult:
    """What :meth:`AtomicStore.load` found.

    ``data`` is the document (``None`` when no good copy exists), ``source`` which copy it came from,
    ``sequence`` that copy's generation number (0 when none), ``problems`` human-readable notes about every bad or
    missing copy that was examined (e.g. ``"state.json: checksum mismatch"``).
    """

    data: dict | None
    source: Literal["primary", "backup", "none"]
    problems: list[str] = field(default_factory=list)
    sequence: int = 0


class StoreFormatError(ValueError):
    """A stored file is not a valid generation (internal: turned into a problem string by ``load``)."""


def encode_document(data: dict, *, schema_version: int, sequence: int) -> bytes:
    """Serialise ``data`` with its header.  Raises ``TypeError``/``ValueError`` for data JSON can not encode."""
    if not isinstance(data, dict):
        raise TypeError(f"a stored document must be a dict, not {type(data).__name__}")
    body = (json.dumps(data, sort_keys=True, separators=(",", ":")) + "\n").encode("utf-8")
    header = {
        "crc32": f"{zlib.crc32(body) & 0xFFFFFFFF:08x}",
        "format": FORMAT,
        "length": len(body),
        "schema_version": int(schema_version),
        "sequence": int(sequence),
    }
    return (json.dumps(header, sort_keys=True) + "\n").encode("ascii") + body


def decode_document(raw: bytes, *, schema_version: int) -> tuple[dict, int]:
    """Check and parse one stored file; return ``(data, sequence)`` or raise :class:`StoreFormatError`."""
    if not raw:
        raise StoreFormatError("empty file")
    newline = raw.find(b"\n")
    if newline < 0:
        raise StoreFormatError("no header line (truncated or not a store file)")
    try:
        header = json.loads(raw[:newline].decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        raise StoreFormatError("unreadable header") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise StoreFormatError("not a store file (unknown format)")
    try:
        length = int(header["length"])
        crc = int(str(header["crc32"]), 16)
        version = int(header["schema_version"])
        sequence = int(header["sequence"])
    except (KeyError, TypeError, ValueError):
        raise StoreFormatError("header fields missing or malformed") from None
    if version != schema_version:
        raise StoreFormatError(f"schema version {version}, expected {schema_version}")
    body = raw[newline + 1:]
    if len(body) != length:
        raise StoreFormatError(f"body is {len(body)} bytes, header says {length} (truncated or torn)")
    if zlib.crc32(body) & 0xFFFFFFFF != crc:
        raise StoreFormatError("checksum mismatch")
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise StoreFormatError("body is not JSON") from None
    if not isinstance(data, dict):
        raise StoreFormatError("body is not a JSON object")
    return data, sequence


def _write_all(fd: int, payload: bytes) -> None:
    view = memoryview(payload)
    while view:
        written = os.write(fd, view)
        if written <= 0:
            raise OSError(errno.EIO, "write made no progress")
        view = view[written:]


def _fsync_directory(directory: pathlib.Path) -> None:
    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    except OSError as exc:
        # A few filesystems can not fsync a directory; the renames are then as durable as that filesystem allows.
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise
    finally:
        os.close(fd)


class AtomicStore:
    """One crash-safe JSON document at ``path`` with its previous generation at ``path + '.bak'``.

    ``schema_version`` is the document layout version this program understands; a file with another version is
    reported as a problem and not loaded (migration is the caller's business).  A single process writes a store.
    ``sync=False`` skips the two ``fsync`` calls: a write then survives the death of the process but not a power
    cut (the HIL's simulated flights, whose brown-outs and kills end the process, not the machine).
    """

    def __init__(self, path: pathlib.Path, *, schema_version: int, sync: bool = True) -> None:
        self.path = pathlib.Path(path)
        self.sync = sync
        self.backup_path = self.path.with_name(self.path.name + ".bak")
        self.schema_version = int(schema_version)
        self.saves = 0
        self._sequence: int | None = None      # last generation seen or written; None = not scanned yet
        self._primary_good = False             # the primary on disk is a verified good generation
        self._temps_checked = False            # stale temporary files from a crash were removed

    # ------------------------------------------------------------------ reading

    def _read_one(self, path: pathlib.Path) -> tuple[dict | None, int, str | None]:
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return None, 0, f"{path.name}: missing"
        except OSError as exc:
            return None, 0, f"{path.name}: unreadable ({exc.strerror or exc})"
        try:
            data, sequence = decode_document(raw, schema_version=self.schema_version)
        except StoreFormatError as exc:
            return None, 0, f"{path.name}: {exc}"
        return data, sequence, None

    def load(self) -> LoadResult:
        """Read the newest good generation.  Never raises for missing, damaged or foreign files."""
        problems: list[str] = []
        data, sequence, problem = self._read_one(self.path)
        if data is not None:
            self._primary_good = True
            self._sequence = max(self._sequence or 0, sequence)
            return LoadResult(data, "primary", problems, sequence)
        problems.append(problem or f"{self.path.name}: unusable")
        self._primary_good = False
        data, backup_sequence, problem = self._read_one(self.backup_path)
        if data is not None:
            self._sequence = max(self._sequence or 0, backup_sequence)
            return LoadResult(data, "backup", problems, backup_sequence)
        problems.append(problem or f"{self.backup_path.name}: unusable")
        self._sequence = max(self._sequence or 0, 0)
        return LoadResult(None, "none", problems, 0)

    # ------------------------------------------------------------------ writing

    def _temp_path(self) -> pathlib.Path:
        return self.path.with_name(f".{self.path.name}.{os.getpid()}{_TEMP_SUFFIX}")

    def _remove_stale_temps(self) -> None:
        stem = f".{self.path.name}."
        try:
            for entry in self.path.parent.iterdir():
                if entry.name.startswith(stem) and entry.name.endswith(_TEMP_SUFFIX):
                    entry.unlink(missing_ok=True)
        except OSError:
            pass

    def save(self, data: dict) -> int:
        """Write ``data`` as the next generation and return its sequence number.

        I/O failures (disk full, EIO, read-only filesystem) raise ``OSError`` and leave the previous good
        generation loadable.  Data JSON can not encode raises ``TypeError``/``ValueError`` (a programming error).
        """
        if self._sequence is None:
            self.load()
        if not self._temps_checked:
            self._remove_stale_temps()
            self._temps_checked = True
        sequence = (self._sequence or 0) + 1
        payload = encode_document(data, schema_version=self.schema_version, sequence=sequence)
        temp = self._temp_path()
        try:
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
            try:
                _write_all(fd, payload)
                if self.sync:
                    os.fsync(fd)
            finally:
                os.close(fd)
            if self._primary_good:
                os.replace(self.path, self.backup_path)
                self._primary_good = False
            os.replace(temp, self.path)
        except OSError:
            try:
                temp.unlink(missing_ok=True)
            except OSError:
                pass
            raise
        self._sequence = sequence
        self._primary_good = True
        self.saves += 1
        if self.sync:
            _fsync_directory(self.path.parent)
        return sequence
