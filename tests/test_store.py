"""AtomicStore: round trips, fallback to the backup for every kind of damage, crash and disk-full behaviour."""

from __future__ import annotations

import errno
import json
import os
import zlib

import pytest

from flightsw.store import AtomicStore, decode_document, encode_document

DOC_A = {"phase": "ascent", "ballast_dropped_kg": 1.25, "events": [1, 2, 3], "nested": {"ok": True}}
DOC_B = {"phase": "float", "ballast_dropped_kg": 2.5, "events": [1, 2, 3, 4], "nested": {"ok": False}}


def _two_generations(tmp_path):
    """A store whose primary holds DOC_B and whose backup holds DOC_A."""
    store = AtomicStore(tmp_path / "state.json", schema_version=2)
    store.save(DOC_A)
    store.save(DOC_B)
    return store


def test_round_trip_and_sequence(tmp_path):
    store = AtomicStore(tmp_path / "state.json", schema_version=2)
    assert store.save(DOC_A) == 1
    assert store.save(DOC_B) == 2
    result = AtomicStore(tmp_path / "state.json", schema_version=2).load()
    assert result.data == DOC_B
    assert result.source == "primary"
    assert result.problems == []
    assert result.sequence == 2
    backup = json.loads(store.backup_path.read_text().split("\n", 1)[1])
    assert backup == DOC_A


def test_body_is_sorted_json_with_header(tmp_path):
    store = AtomicStore(tmp_path / "params.json", schema_version=7)
    store.save({"b": 1, "a": 2})
    header, body = store.path.read_text().split("\n", 1)
    header = json.loads(header)
    assert header["schema_version"] == 7 and header["sequence"] == 1 and header["length"] == len(body)
    assert body.index('"a"') < body.index('"b"')


def test_sequence_continues_across_instances(tmp_path):
    _two_generations(tmp_path)
    store = AtomicStore(tmp_path / "state.json", schema_version=2)
    assert store.save({"x": 1}) == 3
    assert store.load().data == {"x": 1}
    assert json.loads(store.backup_path.read_text().split("\n", 1)[1]) == DOC_B


def test_missing_files_give_none_without_raising(tmp_path):
    result = AtomicStore(tmp_path / "state.json", schema_version=1).load()
    assert result.data is None and result.source == "none"
    assert any("state.json: missing" in p for p in result.problems)
    assert any("state.json.bak: missing" in p for p in result.problems)


def test_flipped_byte_anywhere_falls_back_to_backup(tmp_path):
    store = _two_generations(tmp_path)
    good = store.path.read_bytes()
    for index in range(len(good)):
        damaged = bytearray(good)
        damaged[index] ^= 0x01
        store.path.write_bytes(bytes(damaged))
        result = AtomicStore(store.path, schema_version=2).load()
        assert result.data in (DOC_A, DOC_B), index
        if result.source == "backup":
            assert result.data == DOC_A and result.problems, index
        else:  # a flip that leaves an equivalent header (e.g. whitespace) must still decode the same body
            assert result.data == DOC_B, index


def test_flipped_body_byte_reports_checksum_mismatch(tmp_path):
    store = _two_generations(tmp_path)
    raw = bytearray(store.path.read_bytes())
    raw[-5] ^= 0x20
    store.path.write_bytes(bytes(raw))
    result = store.load()
    assert result.source == "backup" and result.data == DOC_A
    assert result.problems == ["state.json: checksum mismatch"]


def test_truncated_at_every_length_falls_back_to_backup(tmp_path):
    store = _two_generations(tmp_path)
    good = store.path.read_bytes()
    for length in range(len(good)):
        store.path.write_bytes(good[:length])
        result = AtomicStore(store.path, schema_version=2).load()
        assert result.source == "backup", length
        assert result.data == DOC_A, length
        assert result.problems and result.problems[0].startswith("state.json: "), length


@pytest.mark.parametrize("content", [b"", b"garbage \x00\xff\xfe not json", b"[1, 2, 3]\n{}", b"{\"a\": 1}",
                                     b"\n\n\n", "{\"format\": \"flightsw-store/1\"}\n{}".encode()])
def test_garbage_primary_falls_back(tmp_path, content):
    store = _two_generations(tmp_path)
    store.path.write_bytes(content)
    result = store.load()
    assert result.source == "backup" and result.data == DOC_A and len(result.problems) == 1


def test_wrong_schema_version(tmp_path):
    _two_generations(tmp_path)
    result = AtomicStore(tmp_path / "state.json", schema_version=3).load()
    assert result.source == "none" and result.data is None
    assert result.problems == ["state.json: schema version 2, expected 3",
                               "state.json.bak: schema version 2, expected 3"]


def test_wrong_schema_primary_only_uses_backup(tmp_path):
    store = _two_generations(tmp_path)
    store.path.write_bytes(encode_document({"old": True}, schema_version=1, sequence=9))
    result = store.load()
    assert result.source == "backup" and result.data == DOC_A


def test_both_bad_gives_none_with_problems(tmp_path):
    store = _two_generations(tmp_path)
    store.path.write_bytes(b"\x00" * 40)
    store.backup_path.write_bytes(store.backup_path.read_bytes()[:-3])
    result = store.load()
    assert result.source == "none" and result.data is None
    assert len(result.problems) == 2
    assert result.problems[1].startswith("state.json.bak: ")


def test_body_that_is_not_an_object_is_rejected():
    raw = encode_document({"a": 1}, schema_version=1, sequence=1)
    header, _ = raw.split(b"\n", 1)
    body = b"[1]\n"
    forged = json.loads(header)
    forged.update(length=len(body), crc32=f"{zlib.crc32(body):08x}")
    with pytest.raises(ValueError, match="not a JSON object"):
        decode_document(json.dumps(forged).encode() + b"\n" + body, schema_version=1)


def test_save_after_corrupt_primary_keeps_good_backup(tmp_path):
    store = _two_generations(tmp_path)
    store.path.write_bytes(b"torn")
    fresh = AtomicStore(store.path, schema_version=2)
    assert fresh.load().source == "backup"
    fresh.save({"after": "repair"})
    assert fresh.load().data == {"after": "repair"}
    # the damaged primary was not rotated over the good backup
    store.path.write_bytes(b"")
    assert AtomicStore(store.path, schema_version=2).load().data == DOC_A


def test_stale_temp_file_from_a_crash_is_harmless(tmp_path):
    store = _two_generations(tmp_path)
    stale = tmp_path / ".state.json.12345.tmp"
    stale.write_bytes(encode_document({"half": "written"}, schema_version=2, sequence=3)[:20])
    fresh = AtomicStore(store.path, schema_version=2)
    assert fresh.load().data == DOC_B
    fresh.save({"next": 1})
    assert not stale.exists()
    assert AtomicStore(store.path, schema_version=2).load().data == {"next": 1}


def test_crash_after_backup_rotation_before_rename(tmp_path, monkeypatch):
    store = _two_generations(tmp_path)
    real_replace = os.replace

    def crash_on_second_rename(src, dst):
        if str(src).endswith(".tmp"):
            raise OSError(errno.EIO, "power cut")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", crash_on_second_rename)
    with pytest.raises(OSError):
        store.save({"never": "landed"})
    monkeypatch.undo()
    result = AtomicStore(store.path, schema_version=2).load()
    assert result.source == "backup" and result.data == DOC_B
    assert not list(tmp_path.glob("*.tmp"))


def test_disk_full_raises_oserror_and_keeps_previous_data(tmp_path, monkeypatch):
    store = _two_generations(tmp_path)

    def no_space(fd, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "write", no_space)
    with pytest.raises(OSError) as excinfo:
        store.save({"big": "x" * 1000})
    assert excinfo.value.errno == errno.ENOSPC
    monkeypatch.undo()
    result = AtomicStore(store.path, schema_version=2).load()
    assert result.source == "primary" and result.data == DOC_B
    assert not list(tmp_path.glob(".*.tmp"))
    # the store keeps working once space is back, and the backup is still the previous generation
    store.save({"after": 1})
    assert store.load().data == {"after": 1}
    assert json.loads(store.backup_path.read_text().split("\n", 1)[1]) == DOC_B


def test_short_writes_are_completed(tmp_path, monkeypatch):
    real_write = os.write
    monkeypatch.setattr(os, "write", lambda fd, data: real_write(fd, bytes(data[:7])))
    store = AtomicStore(tmp_path / "state.json", schema_version=1)
    store.save(DOC_A)
    monkeypatch.undo()
    assert store.load().data == DOC_A


def test_open_failure_raises_oserror(tmp_path):
    store = AtomicStore(tmp_path / "missing-dir" / "state.json", schema_version=1)
    assert store.load().source == "none"
    with pytest.raises(OSError):
        store.save(DOC_A)


def test_non_dict_is_a_type_error(tmp_path):
    with pytest.raises(TypeError):
        AtomicStore(tmp_path / "s.json", schema_version=1).save([1, 2])  # type: ignore[arg-type]


@pytest.mark.parametrize("sync, expected_fsyncs", [(True, 2), (False, 0)])
def test_sync_false_skips_fsync_but_keeps_the_generations(tmp_path, monkeypatch, sync, expected_fsyncs):
    calls = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append(fd), real_fsync(fd)))
    store = AtomicStore(tmp_path / "state.json", schema_version=2, sync=sync)
    store.save(DOC_A)
    calls.clear()
    store.save(DOC_B)
    assert len(calls) == expected_fsyncs  # the file and its directory, or neither
    result = AtomicStore(tmp_path / "state.json", schema_version=2).load()
    assert (result.data, result.source) == (DOC_B, "primary")
    assert json.loads(store.backup_path.read_text().split("\n", 1)[1]) == DOC_A
