"""Flight recorder: tlog format read back by pymavlink, rotation, free-space floor, errors, flushing, event log."""

from __future__ import annotations

import errno
import json
import os
import shutil
from collections import namedtuple
from pathlib import Path

import pytest
import structlog
from pymavlink import mavutil
from pymavlink.dialects.v20 import common

from flightsw.recorder import EventLogWriter, LogFile, TlogWriter, list_logs

MAV = common.MAVLink(None, srcSystem=1, srcComponent=1)
HEARTBEAT = MAV.heartbeat_encode(common.MAV_TYPE_FREE_BALLOON, common.MAV_AUTOPILOT_GENERIC, 0, 0,
                                 common.MAV_STATE_ACTIVE).pack(MAV)
STATUSTEXT = MAV.statustext_encode(common.MAV_SEVERITY_INFO, b"ballast drop 0.5 kg").pack(MAV)
ALTITUDE = MAV.altitude_encode(123456, 31000.0, 30950.0, 31000.0, 30900.0, 30000.0, 50.0).pack(MAV)
DiskUsage = namedtuple("DiskUsage", "total used free")


class Clock:
    def __init__(self, now_s: float) -> None:
        self.now_s = now_s

    def __call__(self) -> float:
        return self.now_s


@pytest.fixture
def clocks():
    return Clock(1_700_000_000.0), Clock(100.0)


def make_tlog(directory, clocks, **overrides):
    wall, mono = clocks
    options = dict(max_file_bytes=1 << 20, max_file_age_s=3600.0, min_free_bytes=0, flush_interval_s=1.0,
                   clock_wall_s=wall, clock_mono_s=mono)
    options.update(overrides)
    return TlogWriter(directory, **options)


def read_tlog(path):
    """(type, timestamp_s) of every message pymavlink finds in a tlog file."""
    connection = mavutil.mavlink_connection(str(path))
    found = []
    while True:
        message = connection.recv_match()
        if message is None:
            break
        found.append((message.get_type(), message._timestamp))
    connection.close()
    return found


def test_frames_read_back_with_pymavlink(tmp_path, clocks):
    wall, mono = clocks
    writer = make_tlog(tmp_path, clocks)
    writer.write(HEARTBEAT)
    wall.now_s += 0.25
    writer.write(STATUSTEXT)
    wall.now_s += 0.5
    writer.write(bytearray(ALTITUDE))
    writer.close()
    assert writer.write_errors == 0 and writer.records_written == 3
    [log] = list_logs(tmp_path)
    assert log.path.name == "flight-000001.tlog" and log.id == 1
    found = read_tlog(log.path)
    assert [t for t, _ in found] == ["HEARTBEAT", "STATUSTEXT", "ALTITUDE"]
    assert [ts for _, ts in found] == pytest.approx([1_700_000_000.0, 1_700_000_000.25, 1_700_000_000.75])
    assert log.time_utc_s == pytest.approx(1_700_000_000.0)
    assert log.size_bytes == 3 * 8 + len(HEARTBEAT) + len(STATUSTEXT) + len(ALTITUDE)


def test_flush_interval_honoured(tmp_path, clocks):
    _, mono = clocks
    writer = make_tlog(tmp_path, clocks, flush_interval_s=1.0)
    writer.write(HEARTBEAT)
    mono.now_s += 0.5
    writer.tick()
    assert list_logs(tmp_path) == [] and writer.buffered_records == 1
    mono.now_s += 0.6
    writer.tick()
    [log] = list_logs(tmp_path)
    assert log.size_bytes == 8 + len(HEARTBEAT) and writer.buffered_records == 0
    assert [t for t, _ in read_tlog(log.path)] == ["HEARTBEAT"]


def test_large_buffer_flushes_early(tmp_path, clocks):
    writer = make_tlog(tmp_path, clocks, max_buffer_bytes=100)
    for _ in range(5):
        writer.write(HEARTBEAT)
    assert writer.records_written >= 3
    assert list_logs(tmp_path)


def test_rotation_by_size_never_splits_records(tmp_path, clocks):
    record_bytes = 8 + len(HEARTBEAT)
    writer = make_tlog(tmp_path, clocks, max_file_bytes=3 * record_bytes + 5)
    for _ in range(10):
        writer.write(HEARTBEAT)
    writer.close()
    logs = list_logs(tmp_path)
    assert [log.id for log in logs] == [1, 2, 3, 4]
    assert [log.size_bytes for log in logs] == [3 * record_bytes] * 3 + [record_bytes]
    assert sum(len(read_tlog(log.path)) for log in logs) == 10


def test_rotation_by_age(tmp_path, clocks):
    _, mono = clocks
    writer = make_tlog(tmp_path, clocks, max_file_age_s=60.0)
    writer.write(HEARTBEAT)
    mono.now_s += 1.5
    writer.tick()
    mono.now_s += 30.0
    writer.write(HEARTBEAT)
    writer.tick()
    assert len(list_logs(tmp_path)) == 1
    mono.now_s += 30.0
    writer.write(STATUSTEXT)
    writer.tick()
    logs = list_logs(tmp_path)
    assert [log.id for log in logs] == [1, 2]
    assert writer.current_id == 2
    assert [t for t, _ in read_tlog(logs[0].path)] == ["HEARTBEAT", "HEARTBEAT"]
    assert [t for t, _ in read_tlog(logs[1].path)] == ["STATUSTEXT"]


def test_sequence_continues_after_restart(tmp_path, clocks):
    (tmp_path / "flight-000041.tlog").write_bytes(b"")
    (tmp_path / "other.txt").write_text("not a log")
    writer = make_tlog(tmp_path, clocks)
    writer.write(HEARTBEAT)
    writer.close()
    assert [log.id for log in list_logs(tmp_path)] == [41, 42]


def test_free_space_floor_deletes_oldest_first(tmp_path, clocks, monkeypatch):
    for sequence in (3, 1, 2):
        (tmp_path / f"flight-{sequence:06d}.tlog").write_bytes(b"x" * 100)
    (tmp_path / "events-000001.jsonl").write_text("{}\n")
    deleted_order = []
    real_unlink = type(tmp_path).unlink

    def spy_unlink(path, *args, **kwargs):
        deleted_order.append(path.name)
        return real_unlink(path, *args, **kwargs)

    def fake_usage(path):
        remaining = len(list(tmp_path.glob("flight-*.tlog")))
        return DiskUsage(10_000, 0, 1_000 if remaining > 2 else 5_000)   # enough once only 2 tlogs are left

    monkeypatch.setattr(type(tmp_path), "unlink", spy_unlink)
    monkeypatch.setattr(shutil, "disk_usage", fake_usage)
    writer = make_tlog(tmp_path, clocks, min_free_bytes=2_000)
    writer.write(HEARTBEAT)
    writer.flush()   # opens flight-000004.tlog, then prunes
    assert deleted_order == ["flight-000001.tlog", "flight-000002.tlog"]
    assert [log.id for log in list_logs(tmp_path)] == [3, 4]
    assert (tmp_path / "events-000001.jsonl").exists()
    assert writer.files_deleted == 2


def test_free_space_floor_never_deletes_current_file(tmp_path, clocks, monkeypatch):
    _, mono = clocks
    (tmp_path / "flight-000001.tlog").write_bytes(b"x")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: DiskUsage(10_000, 10_000, 0))
    writer = make_tlog(tmp_path, clocks, min_free_bytes=1_000, space_check_interval_s=5.0)
    writer.write(HEARTBEAT)
    mono.now_s += 6.0
    writer.tick()
    assert [log.id for log in list_logs(tmp_path)] == [2]
    writer.write(HEARTBEAT)
    mono.now_s += 6.0
    writer.tick()   # periodic check: still short of space, but the current file stays
    assert [log.id for log in list_logs(tmp_path)] == [2]
    assert writer.current_path == tmp_path / "flight-000002.tlog"
    assert writer.records_written == 2 and writer.write_errors == 0


def test_disk_usage_error_is_counted(tmp_path, clocks, monkeypatch):
    def broken(path):
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(shutil, "disk_usage", broken)
    writer = make_tlog(tmp_path, clocks, min_free_bytes=1)
    writer.write(HEARTBEAT)
    writer.close()
    assert writer.housekeeping_errors >= 1 and "free-space" in writer.last_error
    assert writer.records_written == 1


def test_write_error_is_counted_dropped_and_retried(tmp_path, clocks, monkeypatch):
    _, mono = clocks
    writer = make_tlog(tmp_path, clocks)
    writer.write(HEARTBEAT)
    writer.flush()
    real_write = os.write
    calls = {"n": 0}

    def half_then_full(fd, data):
        calls["n"] += 1
        if calls["n"] == 1:
            return real_write(fd, bytes(data[:10]))      # a partial record reaches the disk...
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))   # ...then the disk is full

    monkeypatch.setattr(os, "write", half_then_full)
    writer.write(STATUSTEXT)
    writer.write(ALTITUDE)
    mono.now_s += 2.0
    writer.tick()
    assert writer.write_errors == 1 and writer.dropped_records == 2
    assert "ENOSPC" in writer.last_error or "No space" in writer.last_error
    monkeypatch.setattr(os, "write", real_write)
    writer.write(ALTITUDE)
    mono.now_s += 2.0
    writer.tick()
    writer.close()
    logs = list_logs(tmp_path)
    assert [t for log in logs for t, _ in read_tlog(log.path)] == ["HEARTBEAT", "ALTITUDE"]
    assert sum(log.size_bytes for log in logs) == 16 + len(HEARTBEAT) + len(ALTITUDE)


def test_missing_directory_is_counted_and_retried(tmp_path, clocks):
    _, mono = clocks
    directory = tmp_path / "logs"
    writer = make_tlog(directory, clocks)
    writer.write(HEARTBEAT)
    mono.now_s += 2.0
    writer.tick()
    assert writer.write_errors == 1 and writer.dropped_records == 1 and writer.last_error
    directory.mkdir()
    writer.write(STATUSTEXT)
    mono.now_s += 2.0
    writer.tick()
    writer.close()
    [log] = list_logs(directory)
    assert [t for t, _ in read_tlog(log.path)] == ["STATUSTEXT"]


def test_list_logs(tmp_path, clocks):
    assert list_logs(tmp_path / "absent") == []
    wall, mono = clocks
    writer = make_tlog(tmp_path, clocks, max_file_age_s=10.0)
    for _ in range(3):
        writer.write(HEARTBEAT)
        writer.flush()
        mono.now_s += 11.0
        wall.now_s += 11.0
    writer.close()
    logs = list_logs(tmp_path)
    assert [log.id for log in logs] == [1, 2, 3]
    assert all(isinstance(log, LogFile) for log in logs)
    assert [log.time_utc_s for log in logs] == pytest.approx([1_700_000_000.0, 1_700_000_011.0, 1_700_000_022.0])
    assert writer.list_logs() == logs


def test_event_log_with_structlog_and_shared_rotation(tmp_path, clocks):
    _, mono = clocks
    writer = EventLogWriter(tmp_path, max_file_bytes=120, max_file_age_s=3600.0, min_free_bytes=0,
                            clock_mono_s=mono)
    log = structlog.wrap_logger(writer, processors=[structlog.processors.JSONRenderer(sort_keys=True)],
                                wrapper_class=structlog.BoundLogger)  # independent of the global level
    for index in range(6):
        log.info("ballast_drop", mass_kg=0.5, index=index)
    log.error("multi\nline", detail="a\nb")
    writer.write("raw line\nwith break")
    mono.now_s += 1.5
    writer.tick()
    writer.close()
    logs = list_logs(tmp_path, prefix="events", suffix=".jsonl")
    assert len(logs) > 1 and all(entry.size_bytes <= 120 for entry in logs)
    lines = [line for entry in logs for line in entry.path.read_text().splitlines()]
    events = [json.loads(line) for line in lines[:-1]]
    assert [e["index"] for e in events[:6]] == list(range(6))
    assert events[6]["event"] == "multi\nline" and events[6]["detail"] == "a\nb"
    assert lines[-1] == "raw line with break"
    assert list_logs(tmp_path) == []   # tlog listing ignores event logs


# ------------------------------------------------------------------ the current flight's logs are never deleted


class Disk:
    """shutil.disk_usage with a free space the test sets; unlinks recorded in order."""

    def __init__(self, monkeypatch, free_bytes: int) -> None:
        self.free_bytes = free_bytes
        self.deleted: list[str] = []
        real_unlink = type(Path()).unlink

        def recording_unlink(path, *args, **kwargs):
            self.deleted.append(path.name)
            return real_unlink(path, *args, **kwargs)

        monkeypatch.setattr(shutil, "disk_usage", lambda path: DiskUsage(10 << 30, 0, self.free_bytes))
        monkeypatch.setattr(type(Path()), "unlink", recording_unlink)


def earlier_logs(directory, ids, prefix="flight", suffix=".tlog"):
    for log_id in ids:
        (directory / f"{prefix}-{log_id:06d}{suffix}").write_bytes(b"x" * 100)


WRITERS = {
    "tlog": lambda directory, clocks, **options: make_tlog(directory, clocks, **options),
    "events": lambda directory, clocks, **options: EventLogWriter(
        directory, **{"max_file_bytes": 1 << 20, "max_file_age_s": 3600.0, "min_free_bytes": 0,
                      "clock_mono_s": clocks[1], **options}),
}
NAMES = {"tlog": ("flight", ".tlog"), "events": ("events", ".jsonl")}


def write_one(writer, kind):
    writer.write(HEARTBEAT if kind == "tlog" else '{"event": "x"}')
    writer.flush()


@pytest.mark.parametrize("kind", list(WRITERS))
def test_free_space_rule_deletes_only_earlier_flights_logs_oldest_first(tmp_path, clocks, monkeypatch, kind):
    prefix, suffix = NAMES[kind]
    earlier_logs(tmp_path, [4, 2, 1, 3], prefix, suffix)  # 1 and 2: an earlier flight; 3 and 4: this one
    disk = Disk(monkeypatch, free_bytes=0)  # never enough
    writer = WRITERS[kind](tmp_path, clocks, min_free_bytes=1 << 20, keep_from_id=3)
    write_one(writer, kind)  # opens file 5 after a restart, then prunes
    assert disk.deleted == [f"{prefix}-000001{suffix}", f"{prefix}-000002{suffix}"]
    assert [log.id for log in writer.list_logs()] == [3, 4, 5]
    assert writer.space_low and writer.files_deleted == 2
    assert writer.records_written == 1 and writer.write_errors == 0


@pytest.mark.parametrize("kind", list(WRITERS))
def test_with_only_this_flights_logs_left_nothing_is_deleted_and_space_low_is_set(tmp_path, clocks, monkeypatch,
                                                                                   kind):
    _, mono = clocks
    earlier_logs(tmp_path, [1, 2], *NAMES[kind])
    disk = Disk(monkeypatch, free_bytes=0)
    writer = WRITERS[kind](tmp_path, clocks, min_free_bytes=1 << 20, keep_from_id=1, space_check_interval_s=5.0)
    assert not writer.space_low
    write_one(writer, kind)
    mono.now_s += 6.0
    writer.tick()
    assert disk.deleted == [] and [log.id for log in writer.list_logs()] == [1, 2, 3]
    assert writer.space_low and writer.files_deleted == 0
    disk.free_bytes = 2 << 20  # space is back
    mono.now_s += 6.0
    writer.tick()
    assert not writer.space_low


def test_a_restarted_writer_keeps_the_first_log_of_this_flight(tmp_path, clocks, monkeypatch):
    earlier_logs(tmp_path, range(1, 7))  # six logs of earlier flights
    disk = Disk(monkeypatch, free_bytes=1 << 30)
    first = make_tlog(tmp_path, clocks, min_free_bytes=1 << 20)
    write_one(first, "tlog")
    assert first.keep_from_id == 7  # the first file this flight wrote (the daemon keeps it in the journal)
    first.close()
    disk.free_bytes = 0
    restarted = make_tlog(tmp_path, clocks, min_free_bytes=1 << 20, keep_from_id=first.keep_from_id)
    write_one(restarted, "tlog")
    assert disk.deleted == [f"flight-{log_id:06d}.tlog" for log_id in range(1, 7)]
    assert [log.id for log in list_logs(tmp_path)] == [7, 8] and restarted.space_low


def test_a_keep_id_of_0_means_not_known_yet_the_first_file_written(tmp_path, clocks, monkeypatch):
    earlier_logs(tmp_path, [1, 2])
    disk = Disk(monkeypatch, free_bytes=0)
    writer = make_tlog(tmp_path, clocks, min_free_bytes=1 << 20, keep_from_id=0)  # the journal's default
    assert writer.keep_from_id is None
    write_one(writer, "tlog")
    assert writer.keep_from_id == 3 and disk.deleted == ["flight-000001.tlog", "flight-000002.tlog"]


def test_files_rotated_within_this_flight_are_kept_when_space_runs_low(tmp_path, clocks, monkeypatch):
    _, mono = clocks
    disk = Disk(monkeypatch, free_bytes=1 << 30)
    writer = make_tlog(tmp_path, clocks, min_free_bytes=1 << 20, max_file_age_s=10.0)
    for _ in range(3):
        write_one(writer, "tlog")
        mono.now_s += 11.0
    disk.free_bytes = 0
    write_one(writer, "tlog")
    assert disk.deleted == [] and [log.id for log in list_logs(tmp_path)] == [1, 2, 3, 4] and writer.space_low
