"""The flight recorder: every MAVLink frame in and out as ``.tlog`` files, and the structured event log.

``.tlog`` format (what pymavlink's ``mavlogdump.py`` and MAVExplorer read): a sequence of records, each an 8-byte
big-endian unsigned count of microseconds since the Unix epoch followed by one raw MAVLink frame.

Both writers share :class:`RotatingFileWriter`:

* ``write()`` only appends to a memory buffer; the buffer reaches the file (``os.write``) when ``tick()`` finds
  ``flush_interval_s`` has passed since the last flush, when it grows past ``max_buffer_bytes``, or on ``close()``.
  The caller calls ``tick()`` once per frame; there are no threads.
* Files are named ``<prefix>-<sequence>.<ext>`` with a zero-padded sequence number that only grows; the sequence
  number is the log's id for the MAVLink log-download protocol (:func:`list_logs`).  A file is closed and the next
  one started when it would exceed ``max_file_bytes`` (records are never split) or is ``max_file_age_s`` old.
* When a file is started, and every ``space_check_interval_s``, the oldest files of the same kind from *earlier
  flights* are deleted while the filesystem's free space is below ``min_free_bytes``; no file of the current
  flight (ids from ``keep_from_id``, the first file this flight wrote, which the daemon keeps in the journal) is
  ever deleted: when only those are left, ``space_low`` is set for the daemon to report.
* Errors are data: a failed open or write (directory missing, disk full, EIO) increments ``write_errors``, sets
  ``last_error`` and drops the buffered records (counted in ``dropped_records``); the next flush tries again.  A
  partly written record is cut off again (``ftruncate``) so a file never holds a torn record in its middle.
  Nothing here raises to the caller.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

_MAX_US = 2 ** 64 - 1
_STAMP = struct.Struct(">Q")  # a .tlog record's time stamp


@dataclass(frozen=True, slots=True)
class LogFile:
    """One finished or growing log file: ``id`` is its sequence number (stable across restarts)."""

    id: int
    path: Path
    size_bytes: int
    time_utc_s: float


def _name_pattern(prefix: str, suffix: str) -> re.Pattern[str]:
    return re.compile(re.escape(prefix) + r"-(\d+)" + re.escape(suffix) + r"\Z")


def _file_time_utc_s(path: Path, suffix: str, mtime_s: float) -> float:
    """A ``.tlog`` file's start time is its first record's timestamp; other files use their modification time."""
    if suffix == ".tlog":
        try:
            with open(path, "rb") as f:
                head = f.read(8)
        except OSError:
            head = b""
        if len(head) == 8:
            return struct.unpack(">Q", head)[0] / 1_000_000.0
    return mtime_s


def list_logs(directory: Path, *, prefix: str = "flight", suffix: str = ".tlog") -> list[LogFile]:
    """The log files named ``<prefix>-<sequence><suffix>`` in ``directory``, oldest (lowest id) first.

    ``time_utc_s`` is seconds since the Unix epoch.  Never raises: a missing directory gives an empty list.
    """
    pattern = _name_pattern(prefix, suffix)
    found: list[LogFile] = []
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return []
    for entry in entries:
        match = pattern.match(entry.name)
        if match is None:
            continue
        try:
            st = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        path = Path(entry.path)
        found.append(LogFile(int(match.group(1)), path, st.st_size, _file_time_utc_s(path, suffix, st.st_mtime)))
    found.sort(key=lambda log: log.id)
    return found


class RotatingFileWriter:
    """Buffered, rotating, self-pruning append-only record files (the shared machinery of the two writers).

    ``directory``: where the files go (not created here; systemd's ``LogsDirectory=`` makes it).
    ``prefix``/``suffix``: file names are ``<prefix>-NNNNNN<suffix>``.
    ``max_file_bytes``: size at which a new file is started.  ``max_file_age_s``: age (monotonic seconds since the
    file was opened) at which a new file is started.  ``min_free_bytes``: free-space floor of the filesystem.
    ``flush_interval_s``: longest time records wait in memory.  ``clock_mono_s``: monotonic clock in seconds.
    ``space_check_interval_s``: how often ``tick()`` checks the free-space floor.  ``sync_interval_s``: if > 0,
    ``fdatasync`` the file this often so a power cut loses at most that much (0: leave it to the kernel).
    ``max_buffer_bytes``: buffer size that forces an early flush.  ``keep_from_id``: the current flight's first
    file id (None: the first file this writer opens).
    """

    def __init__(self, directory: Path, *, prefix: str, suffix: str, max_file_bytes: int, max_file_age_s: float,
                 min_free_bytes: int, flush_interval_s: float = 1.0,
                 clock_mono_s: Callable[[], float] = time.monotonic, space_check_interval_s: float = 10.0,
                 sync_interval_s: float = 0.0, max_buffer_bytes: int = 1 << 20,
                 keep_from_id: int | None = None) -> None:
        self.directory = Path(directory)
        self.keep_from_id = keep_from_id if keep_from_id else None
        self.space_low = False  # below the free-space floor with only the current flight's files left
        self.prefix = prefix
        self.suffix = suffix
        self.max_file_bytes = int(max_file_bytes)
        self.max_file_age_s = float(max_file_age_s)
        self.min_free_bytes = int(min_free_bytes)
        self.flush_interval_s = float(flush_interval_s)
        self.space_check_interval_s = float(space_check_interval_s)
        self.sync_interval_s = float(sync_interval_s)
        self.max_buffer_bytes = int(max_buffer_bytes)
        self._clock_mono_s = clock_mono_s
        # counters
        self.records_written = 0
        self.bytes_written = 0
        self.dropped_records = 0
        self.write_errors = 0
        self.files_opened = 0
        self.files_deleted = 0
        self.housekeeping_errors = 0
        self.last_error = ""
        # state
        self._buffer: list[bytes] = []
        self._buffer_bytes = 0
        self._fd: int | None = None
        self._file_bytes = 0
        self._opened_s = 0.0
        self._last_sequence = 0
        self.current_path: Path | None = None
        self.current_id: int | None = None
        now_s = clock_mono_s()
        self._last_flush_s = now_s
        self._last_space_check_s = now_s
        self._last_sync_s = now_s

    # ------------------------------------------------------------------ caller interface

    def _append(self, record: bytes) -> None:
        if self._buffer_bytes + len(record) > self.max_buffer_bytes and self._buffer:
            self.flush()
        self._buffer.append(record)
        self._buffer_bytes += len(record)

    @property
    def buffered_records(self) -> int:
        """Records waiting in memory."""
        return len(self._buffer)

    def tick(self) -> None:
        """Call once per frame: flushes, rotates by age, syncs and checks free space when each is due."""
        now_s = self._clock_mono_s()
        if now_s - self._last_flush_s >= self.flush_interval_s:
            self.flush()
        if self.sync_interval_s > 0 and self._fd is not None and now_s - self._last_sync_s >= self.sync_interval_s:
            self._last_sync_s = now_s
            self._sync()
        if now_s - self._last_space_check_s >= self.space_check_interval_s:
            self._last_space_check_s = now_s
            self.enforce_free_space()

    def flush(self) -> bool:
        """Move buffered records to the file now.  Returns False if records were dropped by an error."""
        now_s = self._clock_mono_s()
        self._last_flush_s = now_s
        if self._fd is not None and now_s - self._opened_s >= self.max_file_age_s:
            self._close_current()
        if not self._buffer:
            return True
        records, self._buffer, self._buffer_bytes = self._buffer, [], 0
        done = 0
        try:
            while done < len(records):
                if self._fd is None:
                    self._open_next(now_s)
                end, size = done, self._file_bytes
                while end < len(records) and (size == 0 or size + len(records[end]) <= self.max_file_bytes):
                    size += len(records[end])
                    end += 1
                if end > done:
                    self._write_chunk(b"".join(records[done:end]))
                    self.records_written += end - done
                    done = end
                if self._file_bytes >= self.max_file_bytes or done < len(records):
                    self._close_current()
        except OSError as exc:
            self._record_error(exc, dropped=len(records) - done)
            return False
        return True

    def close(self) -> None:
        """Flush, sync and close the current file.  A later write starts a new file."""
        self.flush()
        if self._fd is not None:
            self._sync()
        self._close_current()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def list_logs(self) -> list[LogFile]:
        """This writer's files, oldest first (see :func:`list_logs`)."""
        return list_logs(self.directory, prefix=self.prefix, suffix=self.suffix)

    def enforce_free_space(self) -> int:
        """Delete this writer's oldest files of earlier flights while free space is below the floor (never a file
        of the current flight).  Returns the number of files deleted.  Errors are counted in
        ``housekeeping_errors``.
        """
        deleted = 0
        self.space_low = False
        try:
            while shutil.disk_usage(self.directory).free < self.min_free_bytes:
                keep = self.keep_from_id
                candidates = [log for log in self.list_logs()
                              if log.path != self.current_path and (keep is None or log.id < keep)]
                if not candidates:
                    self.space_low = True
                    break
                candidates[0].path.unlink()
                deleted += 1
                self.files_deleted += 1
        except OSError as exc:
            self.housekeeping_errors += 1
            self.last_error = f"free-space check: {type(exc).__name__}: {exc}"
        return deleted

    # ------------------------------------------------------------------ internals

    def _open_next(self, now_s: float) -> None:
        existing = self.list_logs()
        sequence = max([self._last_sequence] + [log.id for log in existing]) + 1
        for _attempt in range(16):
            path = self.directory / f"{self.prefix}-{sequence:06d}{self.suffix}"
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC, 0o644)
            except FileExistsError:
                sequence += 1
                continue
            break
        else:
            raise FileExistsError(f"no free log file name after {path}")
        self._fd, self._file_bytes, self._opened_s = fd, 0, now_s
        self._last_sequence, self.current_path, self.current_id = sequence, path, sequence
        if self.keep_from_id is None:
            self.keep_from_id = sequence  # the current flight's first file
        self._last_sync_s = now_s
        self.files_opened += 1
        self.enforce_free_space()

    def _write_chunk(self, chunk: bytes) -> None:
        assert self._fd is not None
        view = memoryview(chunk)
        try:
            while view:
                written = os.write(self._fd, view)
                if written <= 0:
                    raise OSError("write made no progress")
                view = view[written:]
        except OSError:
            try:  # cut off the partial record so the file stays parseable, then keep appending to it
                os.ftruncate(self._fd, self._file_bytes)
            except OSError:
                self._close_current()
            raise
        self._file_bytes += len(chunk)
        self.bytes_written += len(chunk)

    def _sync(self) -> None:
        try:
            os.fdatasync(self._fd)
        except OSError as exc:
            self._record_error(exc, dropped=0)

    def _close_current(self) -> None:
        if self._fd is not None:
            try:
                os.close(self._fd)
            except OSError as exc:
                self._record_error(exc, dropped=0)
        self._fd = None
        self.current_path = None
        self.current_id = None

    def _record_error(self, exc: OSError, *, dropped: int) -> None:
        self.write_errors += 1
        self.dropped_records += dropped
        self.last_error = f"{type(exc).__name__}: {exc}"


class TlogWriter(RotatingFileWriter):
    """Records MAVLink frames as ``<prefix>-NNNNNN.tlog``.

    ``clock_wall_s`` gives seconds since the Unix epoch for each record's timestamp (the caller may pass a clock
    corrected from GPS time); ``clock_mono_s`` drives flushing and rotation.  Other arguments: see
    :class:`RotatingFileWriter`.
    """

    def __init__(self, directory: Path, *, prefix: str = "flight", max_file_bytes: int = 64 << 20,
                 max_file_age_s: float = 3600.0, min_free_bytes: int = 256 << 20, flush_interval_s: float = 1.0,
                 clock_wall_s: Callable[[], float] = time.time, clock_mono_s: Callable[[], float] = time.monotonic,
                 space_check_interval_s: float = 10.0, sync_interval_s: float = 0.0,
                 max_buffer_bytes: int = 1 << 20, keep_from_id: int | None = None) -> None:
        super().__init__(directory, prefix=prefix, suffix=".tlog", max_file_bytes=max_file_bytes,
                         max_file_age_s=max_file_age_s, min_free_bytes=min_free_bytes,
                         flush_interval_s=flush_interval_s, clock_mono_s=clock_mono_s,
                         space_check_interval_s=space_check_interval_s, sync_interval_s=sync_interval_s,
                         max_buffer_bytes=max_buffer_bytes, keep_from_id=keep_from_id)
        self._clock_wall_s = clock_wall_s

    def write(self, frame_bytes: bytes) -> None:
        """Buffer one raw MAVLink frame (either direction), stamped with the wall clock now."""
        if not frame_bytes:
            return
        wall_s = self._clock_wall_s()
        stamp_us = int(wall_s * 1_000_000) if math.isfinite(wall_s) else 0
        stamp_us = 0 if stamp_us < 0 else _MAX_US if stamp_us > _MAX_US else stamp_us  # every frame: no min/max
        self._append(_STAMP.pack(stamp_us) + bytes(frame_bytes))


class EventLogWriter(RotatingFileWriter):
    """Records structured events as JSON lines in ``<prefix>-NNNNNN.jsonl``.

    Usable directly as a structlog logger (``structlog.wrap_logger(writer, processors=[...,
    structlog.processors.JSONRenderer()])``): the rendered line arrives through ``msg``/``info``/``error``...
    Arguments: see :class:`RotatingFileWriter`.
    """

    def __init__(self, directory: Path, *, prefix: str = "events", max_file_bytes: int = 16 << 20,
                 max_file_age_s: float = 3600.0, min_free_bytes: int = 256 << 20, flush_interval_s: float = 1.0,
                 clock_mono_s: Callable[[], float] = time.monotonic, space_check_interval_s: float = 10.0,
                 sync_interval_s: float = 0.0, max_buffer_bytes: int = 1 << 20,
                 keep_from_id: int | None = None) -> None:
        super().__init__(directory, prefix=prefix, suffix=".jsonl", max_file_bytes=max_file_bytes,
                         max_file_age_s=max_file_age_s, min_free_bytes=min_free_bytes,
                         flush_interval_s=flush_interval_s, clock_mono_s=clock_mono_s,
                         space_check_interval_s=space_check_interval_s, sync_interval_s=sync_interval_s,
                         max_buffer_bytes=max_buffer_bytes, keep_from_id=keep_from_id)

    def write(self, line: str) -> None:
        """Buffer one event line (a rendered JSON object); embedded line breaks are folded into spaces."""
        text = " ".join(str(line).splitlines())
        self._append((text + "\n").encode("utf-8", errors="replace"))

    def msg(self, message: str) -> None:
        """structlog logger method: every level writes the rendered line."""
        self.write(message)

    log = debug = info = warn = warning = error = err = critical = fatal = exception = failure = msg
