"""MirroredStore: one JSON document in two fixed-size slot files written in place, slot a then slot b.

What it must guarantee: once ``save`` has returned, the loss or damage of either slot loses nothing; a power cut
tears at most the slot being written; a full file system does not stop writes over slots that exist; an I/O
error is reported as data (a degraded ``SaveResult``) unless no copy could be written.
"""

from __future__ import annotations

import errno
import json
import os
import types
import zlib

import pytest

import flightsw.store
from flightsw.store import (FORMAT, LEGACY_FORMAT, MirroredStore, SaveResult, StoreFormatError, decode_document,
                            encode_document)
from hil.diskfull import DiskFull

SCHEMA = 2
SLOT_BYTES = 512  # small slots: the byte-by-byte damage tables stay fast and cover the padding too
DOC_A = {"phase": "ascent", "ballast_used_kg": 1.25, "events": [1, 2, 3], "nested": {"ok": True}}
DOC_B = {"phase": "float", "ballast_used_kg": 2.5, "events": [1, 2, 3, 4], "nested": {"ok": False}}
DOC_C = {"phase": "descent", "ballast_used_kg": 3.0}
OTHER = {"a": "b", "b": "a"}


def make_store(directory, **options) -> MirroredStore:
    options.setdefault("slot_bytes", SLOT_BYTES)
    return MirroredStore(directory, "state", schema_version=SCHEMA, **options)


def saved_twice(directory) -> MirroredStore:
    """A store whose slots both hold DOC_B as generation 2 (DOC_A was generation 1)."""
    store = make_store(directory)
    store.save(DOC_A)
    store.save(DOC_B)
    return store


def reload(directory, **options):
    return make_store(directory, **options).load()


def slot_path(directory, slot: str):
    return directory / f"state-{slot}.json"


def other_slot(slot: str) -> str:
    return "b" if slot == "a" else "a"


def assert_falls_back(result, damaged: str, data: dict = DOC_B, sequence: int = 2) -> None:
    """The damaged slot is reported (and not used); the other slot gives ``data``."""
    good = other_slot(damaged)
    assert [(g.source, g.sequence, g.data) for g in result.generations] == [(good, sequence, data)]
    assert len(result.problems) == 1 and result.problems[0].startswith(f"state-{damaged}.json: ")


# ------------------------------------------------------------------ round trip, layout, sequence


def test_round_trip_and_sequence(tmp_path):
    store = make_store(tmp_path)
    assert store.save(DOC_A) == SaveResult(sequence=1, written=2, errors=[])
    assert store.save(DOC_B) == SaveResult(sequence=2, written=2, errors=[])
    result = reload(tmp_path)
    assert [(g.source, g.sequence, g.data) for g in result.generations] == [("a", 2, DOC_B), ("b", 2, DOC_B)]
    assert result.newest.data == DOC_B and result.problems == []
    assert store.saves == 2


def test_both_slots_are_identical_fixed_size_files_after_a_save(tmp_path):
    saved_twice(tmp_path)
    a, b = slot_path(tmp_path, "a").read_bytes(), slot_path(tmp_path, "b").read_bytes()
    assert a == b
    assert len(a) == SLOT_BYTES and a.endswith(b"\n")
    header, body, padding = a.split(b"\n", 2)
    header, body = json.loads(header), body + b"\n"
    assert header == {"crc32": f"{zlib.crc32(body):08x}", "format": FORMAT, "length": len(body),
                      "schema_version": SCHEMA, "sequence": 2}
    assert json.loads(body) == DOC_B and body.index(b'"ballast_used_kg"') < body.index(b'"events"')  # sorted keys
    assert padding.strip() == b""


def test_a_smaller_document_overwrites_a_larger_one_completely(tmp_path):
    store = saved_twice(tmp_path)
    store.save({})
    assert reload(tmp_path).newest.data == {}
    assert all(len(slot_path(tmp_path, slot).read_bytes()) == SLOT_BYTES for slot in "ab")


def test_sequence_continues_across_instances(tmp_path):
    saved_twice(tmp_path)
    assert make_store(tmp_path).save(DOC_C).sequence == 3  # a fresh instance loads before its first save
    assert reload(tmp_path).newest.data == DOC_C


def test_newest_generation_is_listed_first_whichever_slot_holds_it(tmp_path):
    saved_twice(tmp_path)
    slot_path(tmp_path, "b").write_bytes(encode_document(DOC_C, schema_version=SCHEMA, sequence=7,
                                                         slot_bytes=SLOT_BYTES))
    result = reload(tmp_path)
    assert [(g.source, g.sequence) for g in result.generations] == [("b", 7), ("a", 2)]
    assert make_store(tmp_path).save(DOC_A).sequence == 8  # the next generation is newer than any on disk


def test_missing_files_give_no_generation_without_raising(tmp_path):
    result = reload(tmp_path)
    assert result.generations == [] and result.newest is None
    assert result.problems == ["state-a.json: missing", "state-b.json: missing"]


@pytest.mark.parametrize("slot", ["a", "b"])
def test_each_slot_alone_loads(tmp_path, slot):
    saved_twice(tmp_path)
    slot_path(tmp_path, other_slot(slot)).unlink()
    result = reload(tmp_path)
    assert [(g.source, g.sequence, g.data) for g in result.generations] == [(slot, 2, DOC_B)]
    assert result.problems == [f"state-{other_slot(slot)}.json: missing"]


# ------------------------------------------------------------------ damage to one slot


@pytest.mark.parametrize("slot", ["a", "b"])
def test_a_flipped_byte_anywhere_in_one_slot_falls_back_to_the_other(tmp_path, slot):
    saved_twice(tmp_path)
    path = slot_path(tmp_path, slot)
    good = path.read_bytes()
    body_start = good.index(b"\n") + 1
    body_end = body_start + json.loads(good[:body_start])["length"]
    rejected = 0
    for index in range(len(good)):
        damaged = bytearray(good)
        damaged[index] ^= 0x01
        path.write_bytes(bytes(damaged))
        result = reload(tmp_path)
        # never a wrong document: either the damaged slot is rejected, or the flip left it meaning the same
        assert result.newest.data == DOC_B, index
        assert all(generation.data == DOC_B for generation in result.generations), index
        if result.problems:
            assert_falls_back(result, slot)
            rejected += 1
        if body_start <= index < body_end:
            assert result.problems == [f"state-{slot}.json: checksum mismatch"], index
    # only a few header flips keep a valid header (a sequence digit); every padding byte but the last is checked
    assert rejected >= len(good) - 4


@pytest.mark.parametrize("slot", ["a", "b"])
def test_every_truncation_of_one_slot_falls_back_to_the_other(tmp_path, slot):
    saved_twice(tmp_path)
    path = slot_path(tmp_path, slot)
    good = path.read_bytes()
    document_bytes = len(encode_document(DOC_B, schema_version=SCHEMA, sequence=2))
    for length in range(len(good)):
        path.write_bytes(good[:length])
        result = reload(tmp_path)
        if length < document_bytes:
            assert_falls_back(result, slot)
        else:  # only padding was cut off: the document is whole
            assert [g.data for g in result.generations] == [DOC_B, DOC_B], length


DAMAGE = {
    "empty": lambda path: path.write_bytes(b""),
    "deleted": lambda path: path.unlink(),
    "zeroed": lambda path: path.write_bytes(b"\x00" * SLOT_BYTES),
    "spaces": lambda path: path.write_bytes(b" " * (SLOT_BYTES - 1) + b"\n"),
    "binary garbage": lambda path: path.write_bytes(bytes(range(256)) * 2),
    "not a store file": lambda path: path.write_bytes(b'{"phase": "float"}\n'),
    "a JSON list header": lambda path: path.write_bytes(b"[1, 2, 3]\n{}\n"),
    "unknown format": lambda path: path.write_bytes(path.read_bytes().replace(FORMAT.encode(), b"flightsw-store/9")),
    "header without its fields": lambda path: path.write_bytes(b'{"format": "flightsw-store/2"}\n{}\n'),
    "negative length": lambda path: path.write_bytes(path.read_bytes().replace(b'"length": ', b'"length": -')),
    "body not JSON": lambda path: path.write_bytes(_forged(b"{not json}\n")),
    "body a JSON list": lambda path: path.write_bytes(_forged(b"[1, 2]\n")),
    "wrong schema, newer sequence": lambda path: path.write_bytes(
        encode_document(OTHER, schema_version=SCHEMA + 1, sequence=99, slot_bytes=SLOT_BYTES)),
    "older schema": lambda path: path.write_bytes(
        encode_document(OTHER, schema_version=1, sequence=99, slot_bytes=SLOT_BYTES)),
    "a directory in its place": lambda path: (path.unlink(), path.mkdir()),
}


def _forged(body: bytes) -> bytes:
    """A slot whose header checks out for ``body`` (a good checksum over something that is not an object)."""
    header = {"crc32": f"{zlib.crc32(body):08x}", "format": FORMAT, "length": len(body), "schema_version": SCHEMA,
              "sequence": 5}
    return (json.dumps(header) + "\n").encode() + body


@pytest.mark.parametrize("damage", list(DAMAGE))
@pytest.mark.parametrize("slot", ["a", "b"])
def test_any_damage_to_one_slot_falls_back_to_the_other(tmp_path, slot, damage):
    saved_twice(tmp_path)
    DAMAGE[damage](slot_path(tmp_path, slot))
    assert_falls_back(reload(tmp_path), slot)


@pytest.mark.parametrize("damage", ["empty", "deleted", "zeroed", "wrong schema, newer sequence"])
@pytest.mark.parametrize("slot", ["a", "b"])
def test_the_next_save_repairs_a_damaged_slot(tmp_path, slot, damage):
    saved_twice(tmp_path)
    DAMAGE[damage](slot_path(tmp_path, slot))
    store = make_store(tmp_path)
    assert store.save(DOC_C) == SaveResult(sequence=3, written=2, errors=[])
    result = reload(tmp_path)
    assert [(g.sequence, g.data) for g in result.generations] == [(3, DOC_C), (3, DOC_C)] and not result.problems


def test_both_slots_damaged_give_nothing_and_two_problems(tmp_path):
    saved_twice(tmp_path)
    slot_path(tmp_path, "a").write_bytes(b"")
    slot_path(tmp_path, "b").write_bytes(slot_path(tmp_path, "b").read_bytes()[:40])
    result = reload(tmp_path)
    assert result.generations == [] and result.newest is None
    assert result.problems == ["state-a.json: empty file",
                               "state-b.json: no header line (truncated or not a store file)"]


@pytest.mark.parametrize("raw, problem", [
    (b"", "empty file"),
    (b"  \n ", "empty file"),
    (b"abc", "no header line"),
    (b"\xff\xfe\n{}", "unreadable header"),
    (b'{"format": "x"}\n', "not a store file"),
    (b'{"format": "flightsw-store/2", "length": "many"}\n', "header fields missing or malformed"),
])
def test_decode_names_what_is_wrong(raw, problem):
    with pytest.raises(StoreFormatError, match=problem):
        decode_document(raw, schema_version=SCHEMA)


def test_legacy_format_documents_decode_only_when_exactly_their_length():
    body = b'{"a":1}\n'
    header = {"crc32": f"{zlib.crc32(body):08x}", "format": LEGACY_FORMAT, "length": len(body),
              "schema_version": 1, "sequence": 4}
    raw = (json.dumps(header) + "\n").encode() + body
    assert decode_document(raw, schema_version=1) == ({"a": 1}, 4)
    with pytest.raises(StoreFormatError, match="torn"):
        decode_document(raw + b"   \n", schema_version=1)  # padding is a slot's, not a legacy file's


# ------------------------------------------------------------------ torn writes (a power cut mid-save)


class PowerCut(BaseException):
    """The process stops here (not an OSError: the store must not get to handle it)."""


def cut_power_in_slot(monkeypatch, slot: str, after_bytes: int) -> None:
    """The next write of ``slot`` puts ``after_bytes`` bytes on disk, then the power goes."""
    real_open, real_pwrite = os.open, os.pwrite
    fds: dict[int, str] = {}

    def tracking_open(path, flags, *args, **kwargs):
        fd = real_open(path, flags, *args, **kwargs)
        fds[fd] = os.fspath(path)
        return fd

    def torn_pwrite(fd, data, offset):
        if fds.get(fd, "").endswith(f"-{slot}.json"):
            real_pwrite(fd, bytes(data[:after_bytes]), offset)
            raise PowerCut()
        return real_pwrite(fd, data, offset)

    monkeypatch.setattr(flightsw.store, "os", types.SimpleNamespace(**{
        **{name: getattr(os, name) for name in dir(os) if not name.startswith("__")},
        "open": tracking_open, "pwrite": torn_pwrite}))


LONG_DOC = {"a much longer document": "x" * 200}
LONG_BYTES = len(encode_document(LONG_DOC, schema_version=SCHEMA, sequence=2))
#: where the power goes while the new document is being written: its first byte ... its last
TEAR_POINTS = [0, 1, 20, 60, LONG_BYTES // 4, LONG_BYTES // 2, 3 * LONG_BYTES // 4, LONG_BYTES - 2, LONG_BYTES - 1]


def torn_save(directory, monkeypatch, *, first: dict, second: dict, slot: str, after_bytes: int):
    """Save ``first``, then lose the power while ``second`` is being written to ``slot``; what a restart loads."""
    store = make_store(directory)
    store.save(first)
    cut_power_in_slot(monkeypatch, slot, after_bytes)
    with pytest.raises(PowerCut):
        store.save(second)
    monkeypatch.undo()
    return reload(directory)


@pytest.mark.parametrize("after_bytes", TEAR_POINTS)
def test_a_torn_write_of_slot_a_leaves_slot_b(tmp_path, monkeypatch, after_bytes):
    result = torn_save(tmp_path, monkeypatch, first=DOC_B, second=LONG_DOC, slot="a", after_bytes=after_bytes)
    # slot b was never touched; slot a is either rejected or still its old self, never a mixture
    assert result.newest.data == DOC_B and result.newest.sequence == 1
    assert all((g.sequence, g.data) == (1, DOC_B) for g in result.generations)
    assert ("b", 1, DOC_B) in [(g.source, g.sequence, g.data) for g in result.generations]
    assert slot_path(tmp_path, "b").read_bytes() == encode_document(DOC_B, schema_version=SCHEMA, sequence=1,
                                                                    slot_bytes=SLOT_BYTES)


@pytest.mark.parametrize("after_bytes", TEAR_POINTS)
def test_a_torn_write_of_slot_b_leaves_the_new_generation_in_slot_a(tmp_path, monkeypatch, after_bytes):
    result = torn_save(tmp_path, monkeypatch, first=LONG_DOC, second=DOC_B, slot="b", after_bytes=after_bytes)
    assert (result.newest.source, result.newest.sequence, result.newest.data) == ("a", 2, DOC_B)
    # slot b: rejected, its old generation, or (torn past the new document's end) the new one -- never a mixture
    assert all((g.sequence, g.data) in ((1, LONG_DOC), (2, DOC_B)) for g in result.generations[1:])


def test_a_stop_between_the_slots_leaves_both_generations_newest_first(tmp_path, monkeypatch):
    result = torn_save(tmp_path, monkeypatch, first=DOC_A, second=DOC_B, slot="b", after_bytes=0)
    assert [(g.source, g.sequence, g.data) for g in result.generations] == [("a", 2, DOC_B), ("b", 1, DOC_A)]


def test_short_writes_are_completed(tmp_path, monkeypatch):
    real_pwrite = os.pwrite
    monkeypatch.setattr(os, "pwrite", lambda fd, data, offset: real_pwrite(fd, bytes(data[:7]), offset))
    make_store(tmp_path).save(DOC_A)
    monkeypatch.undo()
    assert [g.data for g in reload(tmp_path).generations] == [DOC_A, DOC_A]


def test_a_write_that_makes_no_progress_is_an_io_error(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "pwrite", lambda fd, data, offset: 0)
    with pytest.raises(OSError) as raised:
        make_store(tmp_path).save(DOC_A)
    assert raised.value.errno == errno.EIO


# ------------------------------------------------------------------ a full file system


@pytest.fixture
def disk_full(tmp_path):
    full = DiskFull([tmp_path])
    yield full
    full.stop()


def test_a_full_disk_still_takes_writes_over_existing_slots(tmp_path, disk_full):
    store = saved_twice(tmp_path)
    disk_full.start()
    assert store.save(DOC_C) == SaveResult(sequence=3, written=2, errors=[])
    assert make_store(tmp_path).save(DOC_A).written == 2  # a restarted process too
    disk_full.stop()
    assert [(g.sequence, g.data) for g in reload(tmp_path).generations] == [(4, DOC_A), (4, DOC_A)]
    assert disk_full.refused == 0


@pytest.mark.parametrize("slot", ["a", "b"])
@pytest.mark.parametrize("damage", ["deleted", "truncated"])
def test_a_full_disk_refuses_to_recreate_a_missing_or_truncated_slot(tmp_path, disk_full, slot, damage):
    store = saved_twice(tmp_path)
    path = slot_path(tmp_path, slot)
    if damage == "deleted":
        path.unlink()
    else:
        path.write_bytes(path.read_bytes()[:100])
    disk_full.start()
    result = store.save(DOC_C)
    assert (result.sequence, result.written) == (3, 1)
    assert result.errors == [f"state-{slot}.json: {os.strerror(errno.ENOSPC)}"]
    disk_full.stop()
    loaded = reload(tmp_path)
    assert (loaded.newest.source, loaded.newest.data) == (other_slot(slot), DOC_C)
    assert disk_full.refused >= 1


def test_a_full_disk_with_no_slot_yet_raises_enospc(tmp_path, disk_full):
    disk_full.start()
    store = make_store(tmp_path)
    with pytest.raises(OSError) as raised:
        store.save(DOC_A)
    assert raised.value.errno == errno.ENOSPC
    assert store.saves == 0
    disk_full.stop()
    assert reload(tmp_path).generations == []


# ------------------------------------------------------------------ I/O errors


class FailingOs:
    """``os`` for flightsw.store with ``call`` failing (EIO) on the slots named in ``slots``."""

    def __init__(self, call: str, slots: str) -> None:
        self.call, self.slots, self.fds = call, slots, {}

    def __getattr__(self, name):
        return getattr(os, name)

    def _failing(self, path: str) -> bool:
        return any(path.endswith(f"-{slot}.json") for slot in self.slots)

    def open(self, path, flags, *args, **kwargs):
        if self.call == "open" and self._failing(os.fspath(path)):
            raise OSError(errno.EIO, os.strerror(errno.EIO), os.fspath(path))
        fd = os.open(path, flags, *args, **kwargs)
        self.fds[fd] = os.fspath(path)
        return fd

    def pwrite(self, fd, data, offset):
        if self.call == "pwrite" and self._failing(self.fds.get(fd, "")):
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        return os.pwrite(fd, data, offset)

    def fdatasync(self, fd):
        if self.call == "fdatasync" and self._failing(self.fds.get(fd, "")):
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        return os.fdatasync(fd)


@pytest.mark.parametrize("call", ["open", "pwrite", "fdatasync"])
@pytest.mark.parametrize("slot", ["a", "b"])
def test_an_io_error_on_one_slot_gives_a_degraded_save(tmp_path, monkeypatch, call, slot):
    store = saved_twice(tmp_path)
    monkeypatch.setattr(flightsw.store, "os", FailingOs(call, slot))
    result = store.save(DOC_C)
    monkeypatch.undo()
    assert result == SaveResult(sequence=3, written=1, errors=[f"state-{slot}.json: {os.strerror(errno.EIO)}"])
    assert store.saves == 3
    loaded = reload(tmp_path)
    assert loaded.newest.data == DOC_C
    assert (other_slot(slot), 3, DOC_C) in [(g.source, g.sequence, g.data) for g in loaded.generations]


@pytest.mark.parametrize("call", ["open", "pwrite", "fdatasync"])
def test_an_io_error_on_both_slots_raises_the_first(tmp_path, monkeypatch, call):
    store = saved_twice(tmp_path)
    monkeypatch.setattr(flightsw.store, "os", FailingOs(call, "ab"))
    with pytest.raises(OSError) as raised:
        store.save(DOC_C)
    monkeypatch.undo()
    assert raised.value.errno == errno.EIO
    assert store.saves == 2
    assert reload(tmp_path).newest.data in (DOC_B, DOC_C)  # a failed sync may or may not have reached the disk


def test_a_generation_that_failed_to_sync_is_never_outranked_by_an_older_one(tmp_path, monkeypatch):
    """A save whose syncs both failed may still be on disk; the next generation must get a newer number, or a
    later slot-b-only write would tie with it and lose to slot a's stale copy."""
    store = saved_twice(tmp_path)
    monkeypatch.setattr(flightsw.store, "os", FailingOs("fdatasync", "ab"))
    with pytest.raises(OSError):
        store.save(DOC_A)  # written to both slots, but neither sync succeeded
    monkeypatch.setattr(flightsw.store, "os", FailingOs("pwrite", "a"))
    assert store.save(DOC_C).written == 1  # slot b only
    monkeypatch.undo()
    assert reload(tmp_path).newest.data == DOC_C


# ------------------------------------------------------------------ sync, data errors, legacy files


@pytest.mark.parametrize("sync, syncs_when_creating, syncs_when_overwriting", [(True, 4, 2), (False, 0, 0)])
def test_sync_false_makes_no_fsync_calls(tmp_path, monkeypatch, sync, syncs_when_creating, syncs_when_overwriting):
    calls = []
    real_fsync, real_fdatasync = os.fsync, os.fdatasync
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append("fsync"), real_fsync(fd)))
    monkeypatch.setattr(os, "fdatasync", lambda fd: (calls.append("fdatasync"), real_fdatasync(fd)))
    store = make_store(tmp_path, sync=sync)
    store.save(DOC_A)  # creates both slots: each synced, and the directory for each new file
    assert len(calls) == syncs_when_creating
    calls.clear()
    store.save(DOC_B)
    assert calls == ["fdatasync"] * syncs_when_overwriting
    assert [g.data for g in reload(tmp_path).generations] == [DOC_B, DOC_B]


def test_data_json_can_not_hold_is_refused_before_anything_is_written(tmp_path):
    store = saved_twice(tmp_path)
    with pytest.raises(TypeError):
        store.save([1, 2])  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        store.save({"when": object()})
    with pytest.raises(ValueError, match="does not fit"):
        store.save({"big": "x" * SLOT_BYTES})
    assert [(g.sequence, g.data) for g in reload(tmp_path).generations] == [(2, DOC_B), (2, DOC_B)]


def test_a_missing_directory_raises_on_save_and_loads_as_nothing(tmp_path):
    store = make_store(tmp_path / "no-such-dir")
    assert store.load().generations == []
    with pytest.raises(OSError):
        store.save(DOC_A)


def legacy_files(tmp_path):
    paths = (tmp_path / "state.json", tmp_path / "state.json.bak")
    for path in paths:
        path.write_text("an earlier layout")
    return paths


def test_legacy_files_are_removed_after_a_complete_save_and_only_then(tmp_path, monkeypatch):
    paths = legacy_files(tmp_path)
    store = make_store(tmp_path, legacy_paths=paths)
    store.load()
    assert all(path.exists() for path in paths)  # loading removes nothing
    monkeypatch.setattr(flightsw.store, "os", FailingOs("pwrite", "b"))
    assert store.save(DOC_A).written == 1
    assert all(path.exists() for path in paths)  # one copy is not enough to let the old layout go
    monkeypatch.undo()
    assert store.save(DOC_B).written == 2
    assert not any(path.exists() for path in paths)


def test_legacy_files_stay_when_no_copy_could_be_written(tmp_path, monkeypatch):
    paths = legacy_files(tmp_path)
    store = make_store(tmp_path, legacy_paths=paths)
    monkeypatch.setattr(flightsw.store, "os", FailingOs("open", "ab"))
    with pytest.raises(OSError):
        store.save(DOC_A)
    assert all(path.exists() for path in paths)
