"""An in-memory stand-in for ``smbus2.SMBus`` that routes transactions to emulated chips.

:class:`FakeSMBus` offers the ``smbus2.SMBus`` methods the drivers use, with identical signatures, and applies
the same argument checks smbus2 does (block transfers of at most 32 bytes).  Each call is routed by 7-bit address
to a chip model from :mod:`hil.chips`; an address with no chip fails like Linux i2c-dev does when nobody
acknowledges (``OSError`` errno 121 EREMOTEIO by default, or 6 ENXIO, as some adapters report).

The bus carries the simulation clock (``clock``: a callable returning seconds) and hands the time to the chip on
every transaction, so conversions take their datasheet time.  Without a clock the bus hands over ``time_s``, which
a simulation that steps time itself may set on each step (it costs no call per transaction); while that is None,
conversions complete instantly.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Sequence
from typing import Any

I2C_SMBUS_BLOCK_MAX = 32


class FakeSMBus:
    """smbus2.SMBus-compatible bus of emulated chips.

    Arguments:
        bus: accepted and ignored (the Linux bus number of the real thing).
        force: accepted and ignored.
        clock: callable returning the simulation time in seconds, or None: then transactions carry the
            ``time_s`` attribute (seconds; None, the default, for instant conversions).
        missing_errno: errno raised for an address with no chip (EREMOTEIO 121 or ENXIO 6).
    """

    def __init__(self, bus: int | str | None = None, force: bool = False, *,
                 clock: Callable[[], float] | None = None, missing_errno: int = errno.EREMOTEIO) -> None:
        self.bus_number = bus
        self.force = force
        self.clock = clock
        self.time_s: float | None = None
        self.missing_errno = missing_errno
        self.chips: dict[int, Any] = {}
        self.transactions = 0
        self.closed = False

    # ------------------------------------------------------------ wiring

    def attach(self, chip: Any, address: int | None = None) -> Any:
        """Connect ``chip`` at ``address`` (default: ``chip.address``); returns the chip."""
        address = chip.address if address is None else address
        if not 0x03 <= address <= 0x77:
            raise ValueError(f"I2C address 0x{address:02x} outside 0x03..0x77")
        if address in self.chips:
            raise ValueError(f"I2C address 0x{address:02x} already taken")
        chip.address = address
        self.chips[address] = chip
        return chip

    def detach(self, address: int) -> None:
        """Disconnect the chip at ``address`` (it then fails like a missing device)."""
        self.chips.pop(address, None)

    def _route(self, i2c_addr: int) -> tuple[Any, float | None]:
        """The chip at ``i2c_addr`` and the bus time, or the OSError the transaction fails with."""
        if self.closed:
            raise OSError(errno.EBADF, os.strerror(errno.EBADF))
        self.transactions += 1
        chip = self.chips.get(i2c_addr)
        if chip is None:
            raise OSError(self.missing_errno, os.strerror(self.missing_errno))
        faults = chip.faults
        if faults.nack or faults.nack_pending:
            faults.check_nack()
        clock = self.clock
        return chip, (clock() if clock is not None else self.time_s)

    # ------------------------------------------------------------ smbus2.SMBus API

    def open(self, bus: int | str) -> None:
        self.bus_number = bus
        self.closed = False

    def close(self) -> None:
        self.closed = True

    def __enter__(self) -> FakeSMBus:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def write_quick(self, i2c_addr: int, force: bool | None = None) -> None:
        self._route(i2c_addr)

    def read_byte(self, i2c_addr: int, force: bool | None = None) -> int:
        chip, now_s = self._route(i2c_addr)
        return chip.i2c_read_current(1, now_s)[0]

    def write_byte(self, i2c_addr: int, value: int, force: bool | None = None) -> None:
        chip, now_s = self._route(i2c_addr)
        chip.i2c_write((value & 0xFF,), now_s)

    def read_byte_data(self, i2c_addr: int, register: int, force: bool | None = None) -> int:
        chip, now_s = self._route(i2c_addr)
        return chip.i2c_read(register & 0xFF, 1, now_s)[0]

    def write_byte_data(self, i2c_addr: int, register: int, value: int, force: bool | None = None) -> None:
        chip, now_s = self._route(i2c_addr)
        chip.i2c_write((register & 0xFF, value & 0xFF), now_s)

    def read_word_data(self, i2c_addr: int, register: int, force: bool | None = None) -> int:
        """SMBus read word: the first byte on the wire is the low byte of the result."""
        chip, now_s = self._route(i2c_addr)
        first, second = chip.i2c_read(register & 0xFF, 2, now_s)
        return first | (second << 8)

    def write_word_data(self, i2c_addr: int, register: int, value: int, force: bool | None = None) -> None:
        """SMBus write word: the low byte of ``value`` goes first on the wire."""
        chip, now_s = self._route(i2c_addr)
        chip.i2c_write((register & 0xFF, value & 0xFF, (value >> 8) & 0xFF), now_s)

    def read_i2c_block_data(self, i2c_addr: int, register: int, length: int,
                            force: bool | None = None) -> list[int]:
        if length > I2C_SMBUS_BLOCK_MAX:
            raise ValueError(f"Desired block length over {I2C_SMBUS_BLOCK_MAX} bytes")
        chip, now_s = self._route(i2c_addr)
        return chip.i2c_read(register & 0xFF, length, now_s)  # a fresh list (ChipModel.i2c_read)

    def write_i2c_block_data(self, i2c_addr: int, register: int, data: Sequence[int],
                             force: bool | None = None) -> None:
        if len(data) > I2C_SMBUS_BLOCK_MAX:
            raise ValueError(f"Data length cannot exceed {I2C_SMBUS_BLOCK_MAX} bytes")
        chip, now_s = self._route(i2c_addr)
        chip.i2c_write((register & 0xFF, *(b & 0xFF for b in data)), now_s)
