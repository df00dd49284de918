"""The ``disk_full`` fault: the file system under the daemon's state and log directories has no free block left.

It behaves as ext4 does when full: a write that needs a new block -- creating a file, appending to one, writing
past its end -- fails with ENOSPC; writing over bytes a file already holds succeeds (their blocks are allocated).
The fault replaces the ``os`` module seen by the flight software's writers (``flightsw.store``,
``flightsw.recorder``) with one whose ``open``, ``write`` and ``pwrite`` check that, for files inside the given
directories only; nothing in ``flightsw`` knows it is there.  :meth:`DiskFull.stop` puts the real module back.
"""

from __future__ import annotations

import errno
import os
import types
from pathlib import Path

#: the flight-software modules whose ``os`` is replaced
WRITER_MODULES = ("flightsw.store", "flightsw.recorder")


def _no_space(path: str) -> OSError:
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)


class DiskFull:
    """Writes that need new space under ``directories`` fail with ENOSPC while started."""

    def __init__(self, directories: list[Path]) -> None:
        self.directories = tuple(str(Path(directory).resolve()) + os.sep for directory in directories)
        self.refused = 0  # writes refused
        self._saved: dict[str, object] = {}

    def _inside(self, path: str) -> bool:
        return str(Path(path).resolve()).startswith(self.directories) or \
            (str(Path(path).resolve()) + os.sep) in self.directories

    def _fd_path(self, fd: int) -> str:
        try:
            return os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            return ""

    def _open(self, path, flags, mode=0o777, *, dir_fd=None):
        text = os.fspath(path)
        if flags & os.O_CREAT and self._inside(text) and not os.path.exists(text):
            self.refused += 1
            raise _no_space(text)
        return os.open(path, flags, mode, dir_fd=dir_fd)

    def _write(self, fd, data):
        path = self._fd_path(fd)
        if data and self._inside(path):  # the writers append: every byte needs space
            self.refused += 1
            raise _no_space(path)
        return os.write(fd, data)

    def _pwrite(self, fd, data, offset):
        path = self._fd_path(fd)
        if self._inside(path) and offset + len(data) > os.fstat(fd).st_size:
            self.refused += 1
            raise _no_space(path)
        return os.pwrite(fd, data, offset)

    def start(self) -> None:
        import importlib

        replacement = types.SimpleNamespace(**{name: getattr(os, name) for name in dir(os)
                                               if not name.startswith("__")})
        replacement.open, replacement.write, replacement.pwrite = self._open, self._write, self._pwrite
        for name in WRITER_MODULES:
            module = importlib.import_module(name)
            self._saved[name] = module.os
            module.os = replacement

    def stop(self) -> None:
        import importlib

        for name, saved in self._saved.items():
            importlib.import_module(name).os = saved
        self._saved.clear()
