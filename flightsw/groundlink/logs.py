"""Log download over MAVLink: the flight recorder's ``.tlog`` files, for MAVProxy's ``log`` commands.

* LOG_REQUEST_LIST (start..end ids) -> one LOG_ENTRY per recorder file (id = the file's sequence number, size,
  UTC time of its first record); with no files, one LOG_ENTRY with ``num_logs`` 0.
* LOG_REQUEST_DATA (id, ofs, count) -> LOG_DATA packets of 90 bytes from ``ofs``, a few per frame per link so the
  frame stays short and the link is not flooded; past the end of the file a LOG_DATA with ``count`` 0 says so.
  A new request replaces the one in progress on that link.
* LOG_REQUEST_END stops the transfer.
* LOG_ERASE deletes every recorder file except the one being written; it is a write, so it needs a good
  signature when signing is on (refused with a STATUSTEXT otherwise).

The file being written is flushed before it is listed or read, so a download sees everything up to that moment.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from pymavlink.dialects.v20 import common as mavlink

from flightsw.recorder import LogFile

if TYPE_CHECKING:
    from flightsw.groundlink.link import GroundLink, LinkState
    from flightsw.link.endpoint import Received

LOG_DATA_BYTES = 90
PACKETS_PER_FRAME = 4
ALL_LOGS = 0xFFFF


@dataclass
class _Transfer:
    path: Path
    log_id: int
    next_offset: int
    end_offset: int


class LogService:
    """Serves the recorder's files.  ``list_logs()`` returns them oldest first; ``flush()`` writes out what the
    recorder holds in memory; ``current_id()`` is the id of the file being written (never erased)."""

    def __init__(self, link: GroundLink, *, list_logs: Callable[[], list[LogFile]],
                 flush: Callable[[], object], current_id: Callable[[], int | None]) -> None:
        self.link = link
        self._list_logs = list_logs
        self._flush = flush
        self._current_id = current_id
        self.transfers: dict[int, _Transfer] = {}  # downloads in progress, by id(LinkState)
        self.erased = 0

    def _logs(self) -> list[LogFile]:
        self._flush()
        return [log for log in self._list_logs() if 0 < log.id <= ALL_LOGS]

    def request_list(self, state: LinkState, rx: Received, now_s: float) -> None:
        message = rx.msg
        logs = self._logs()
        if not logs:
            self.link.send_on(state, mavlink.MAVLink_log_entry_message(0, 0, 0, 0, 0))
            return
        last_id = logs[-1].id
        start, end = message.start, message.end if message.end != ALL_LOGS else last_id
        for log in logs:
            if start <= log.id <= end:
                self.link.send_on(state, mavlink.MAVLink_log_entry_message(
                    log.id, len(logs), last_id, int(max(0.0, log.time_utc_s)), log.size_bytes))

    def request_data(self, state: LinkState, rx: Received, now_s: float) -> None:
        message = rx.msg
        log = next((entry for entry in self._logs() if entry.id == message.id), None)
        if log is None:
            self.link.send_on(state, mavlink.MAVLink_log_data_message(message.id, message.ofs, 0, bytes(90)))
            return
        end_offset = min(log.size_bytes, message.ofs + message.count)
        self.transfers[id(state)] = _Transfer(log.path, log.id, message.ofs, end_offset)

    def request_end(self, state: LinkState, rx: Received, now_s: float) -> None:
        self.transfers.pop(id(state), None)

    def erase(self, state: LinkState, rx: Received, now_s: float) -> None:
        allowed, why = self.link.authorise(rx)
        if not allowed:
            self.link.refuse_unsigned(f"LOG_ERASE refused: {why}")
            return
        current = self._current_id()
        for log in self._logs():
            if log.id == current:
                continue
            try:
                log.path.unlink()
                self.erased += 1
            except OSError:
                pass
        self.transfers.clear()
        self.link.statustext("notice", "logs erased (the current log is kept)")

    def tick(self, state: LinkState) -> None:
        """Send the next few LOG_DATA packets of this link's transfer (called every frame)."""
        transfer = self.transfers.get(id(state))
        if transfer is None:
            return
        try:
            with transfer.path.open("rb") as file:
                file.seek(transfer.next_offset)
                for _ in range(PACKETS_PER_FRAME):
                    count = min(LOG_DATA_BYTES, transfer.end_offset - transfer.next_offset)
                    chunk = file.read(count) if count > 0 else b""
                    self.link.send_on(state, mavlink.MAVLink_log_data_message(
                        transfer.log_id, transfer.next_offset, len(chunk), chunk.ljust(LOG_DATA_BYTES, b"\x00")))
                    transfer.next_offset += len(chunk)
                    if not chunk:
                        del self.transfers[id(state)]
                        return
        except OSError:
            del self.transfers[id(state)]
            self.link.send_on(state, mavlink.MAVLink_log_data_message(transfer.log_id, transfer.next_offset, 0,
                                                                       bytes(LOG_DATA_BYTES)))
