"""A crash-safe store for one small JSON document kept in two mirrored files (the flight-state journal, the
parameter store).

Each of the two *slot files* (``<name>-a.json`` and ``<name>-b.json``) holds one complete generation::

    {"crc32": "1c291ca3", "format": "flightsw-store/2", "length": 27, "schema_version": 3, "sequence": 42}\\n
    {"altitude_m": 31250.0, ...}\\n
    <spaces up to the slot size>\\n

The first line is a header; the body that follows is serialised with sorted keys, and the header records its
length and CRC-32; the rest of the file is padding.  A slot is accepted only when the header parses, names this
format and the expected schema version, and the body has the recorded length and checksum and is a JSON object.

Writing a generation writes the *same* document (same sequence number) to slot a, then to slot b, each in place
(``pwrite`` of the whole fixed-size slot, then ``fdatasync``).  So:

* once :meth:`MirroredStore.save` has returned, every fact is in two files, and the loss or corruption of any one
  of them (a bad SD-card block, a deleted or truncated file) loses nothing;
* a power cut tears at most the slot being written; the other one holds the previous or the new generation, so a
  torn slot is found by its checksum and the other one is used;
* the slots are written over in place, never re-created: their blocks were allocated when they were first
  written, so a full file system does not stop the journal (ext4 and the other file systems Raspberry Pi OS uses
  write over allocated blocks without allocating; a missing or truncated slot is re-created, which does need
  space).

Why not temporary file + rename (what this store did before) or SQLite in WAL mode: both keep the newest
generation in one file only until the next write, so losing that one file right after a release loses the latch;
and both allocate new blocks for every write, which a full disk refuses.  A log of appended records has the same
two problems.  The cost here is two small in-place writes and two ``fdatasync`` calls per generation.
"""

from __future__ import annotations

import errno
import json
import os
import pathlib
import zlib
from dataclasses import dataclass, field

FORMAT = "flightsw-store/2"
LEGACY_FORMAT = "flightsw-store/1"  # one file + ".bak", body exactly ``length`` bytes (read only, for migration)
SLOTS = ("a", "b")
DEFAULT_SLOT_BYTES = 16384


@dataclass(slots=True)
class Generation:
    """One good copy found by :meth:`MirroredStore.load`: where it came from, its sequence and its document."""

    source: str  # "a", "b", or a legacy file name
    sequence: int
    data: dict


@dataclass(slots=True)
class LoadResult:
    """What :meth:`MirroredStore.load` found: every good copy, newest first, and a note about every bad or missing
    one (e.g. ``"state-a.json: checksum mismatch"``)."""

    generations: list[Generation] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def newest(self) -> Generation | None:
        return self.generations[0] if self.generations else None


@dataclass(slots=True)
class SaveResult:
    """What :meth:`MirroredStore.save` wrote: the generation's sequence, and the slots that could not be written
    (each with the error).  ``written`` counts the good copies now on disk."""

    sequence: int
    written: int
    errors: list[str] = field(default_factory=list)


class StoreFormatError(ValueError):
    """A stored file is not a valid generation (internal: turned into a problem string by ``load``)."""


def encode_document(data: dict, *, schema_version: int, sequence: int, slot_bytes: int | None = None) -> bytes:
    """Serialise ``data`` with its header, padded to ``slot_bytes`` when given.  Raises ``TypeError`` /
    ``ValueError`` for data JSON can not encode, and ``ValueError`` when it does not fit the slot."""
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
    document = (json.dumps(header, sort_keys=True) + "\n").encode("ascii") + body
    if slot_bytes is None:
        return document
    if len(document) + 1 > slot_bytes:
        raise ValueError(f"document of {len(document)} bytes does not fit a {slot_bytes}-byte slot")
    return document + b" " * (slot_bytes - len(document) - 1) + b"\n"


def decode_document(raw: bytes, *, schema_version: int) -> tuple[dict, int]:
    """Check and parse one stored file (this format or the legacy one); return ``(data, sequence)`` or raise
    :class:`StoreFormatError`."""
    if not raw.strip():
        raise StoreFormatError("empty file")
    newline = raw.find(b"\n")
    if newline < 0:
        raise StoreFormatError("no header line (truncated or not a store file)")
    try:
        header = json.loads(raw[:newline].decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        raise StoreFormatError("unreadable header") from None
    if not isinstance(header, dict) or header.get("format") not in (FORMAT, LEGACY_FORMAT):
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
    if length < 0 or sequence < 0:
        raise StoreFormatError("header fields out of range")
    body, rest = raw[newline + 1:newline + 1 + length], raw[newline + 1 + length:]
    if len(body) != length or (rest.strip() if header["format"] == FORMAT else rest):
        raise StoreFormatError(f"body is {len(raw) - newline - 1} bytes, header says {length} (truncated or torn)")
    if zlib.crc32(body) & 0xFFFFFFFF != crc:
        raise StoreFormatError("checksum mismatch")
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise StoreFormatError("body is not JSON") from None
    if not isinstance(data, dict):
        raise StoreFormatError("body is not a JSON object")
    return data, sequence


def _fsync_directory(directory: pathlib.Path) -> None:
    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    except OSError as exc:
        # A few filesystems can not fsync a directory; a new file is then as durable as that filesystem allows.
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise
    finally:
        os.close(fd)


class MirroredStore:
    """One crash-safe JSON document in ``directory`` as ``<name>-a.json`` and ``<name>-b.json``.

    ``schema_version`` is the document layout this program understands; a file with another version is reported
    as a problem and not loaded (migration is the caller's business: ``legacy_paths`` are files of an earlier
    layout that the caller reads, and that the first :meth:`save` writing both slots removes).
    A single process writes a store.  ``sync=False`` skips the ``fdatasync`` calls: a write then survives the
    death of the process but not a power cut (the HIL's simulated flights, whose kills end the process, not the
    machine).
    """

    def __init__(self, directory: pathlib.Path, name: str, *, schema_version: int,
                 slot_bytes: int = DEFAULT_SLOT_BYTES, sync: bool = True,
                 legacy_paths: tuple[pathlib.Path, ...] = ()) -> None:
        self.directory = pathlib.Path(directory)
        self.paths = tuple(self.directory / f"{name}-{slot}.json" for slot in SLOTS)
        self.schema_version = int(schema_version)
        self.slot_bytes = int(slot_bytes)
        self.sync = sync
        self.legacy_paths = tuple(pathlib.Path(path) for path in legacy_paths)
        self.saves = 0
        self._sequence: int | None = None  # the newest generation seen or written; None: not loaded yet

    # ------------------------------------------------------------------ reading

    def _read_one(self, path: pathlib.Path) -> tuple[dict | None, int, str | None]:
        try:
            with open(path, "rb") as file:
                raw = file.read(max(self.slot_bytes, 1 << 16) + 1)
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
        """Every good copy, newest first (slot a before slot b at an equal sequence).  Never raises for missing,
        damaged or foreign files."""
        result = LoadResult()
        for source, path in zip(SLOTS, self.paths):
            data, sequence, problem = self._read_one(path)
            if data is None:
                result.problems.append(problem or f"{path.name}: unusable")
            else:
                result.generations.append(Generation(source, sequence, data))
        result.generations.sort(key=lambda generation: -generation.sequence)
        newest = result.generations[0].sequence if result.generations else 0
        self._sequence = max(self._sequence or 0, newest)
        return result

    # ------------------------------------------------------------------ writing

    def _write_slot(self, path: pathlib.Path, payload: bytes) -> None:
        """Write ``payload`` over the slot file at ``path`` in place (created if missing), and make it durable."""
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
            created = False
        except FileNotFoundError:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
            created = True
        try:
            view, offset = memoryview(payload), 0
            while offset < len(payload):
                written = os.pwrite(fd, view[offset:], offset)
                if written <= 0:
                    raise OSError(errno.EIO, "write made no progress")
                offset += written
            if self.sync:
                os.fdatasync(fd)
        finally:
            os.close(fd)
        if created and self.sync:
            _fsync_directory(self.directory)

    def save(self, data: dict) -> SaveResult:
        """Write ``data`` as the next generation to slot a, then slot b.

        Returns which slots were written; raises ``OSError`` (the first error) only when neither could be.  Data
        JSON can not encode, or too large for a slot, raises ``TypeError`` / ``ValueError`` (a programming
        error)."""
        if self._sequence is None:
            self.load()
        sequence = (self._sequence or 0) + 1
        payload = encode_document(data, schema_version=self.schema_version, sequence=sequence,
                                  slot_bytes=self.slot_bytes)
        errors: list[str] = []
        first_error: OSError | None = None
        for path in self.paths:
            try:
                self._write_slot(path, payload)
            except OSError as exc:
                errors.append(f"{path.name}: {exc.strerror or exc}")
                first_error = first_error or exc
        written = len(self.paths) - len(errors)
        if not written:
            assert first_error is not None
            self._sequence = sequence  # a write whose sync failed may be on disk all the same: never reuse its number
            raise first_error
        self._sequence = sequence
        self.saves += 1
        if not errors and self.legacy_paths:
            for path in self.legacy_paths:
                try:
                    path.unlink(missing_ok=True)
                except OSError:
                    pass
            self.legacy_paths = ()
        return SaveResult(sequence, written, errors)
