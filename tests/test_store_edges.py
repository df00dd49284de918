"""The mirrored store's file format at its edges: the exact bytes a document is written as (sorted compact body,
sorted header, padding to the slot), the slot size boundary, every way a stored file is refused with the exact
reason, the header fields' ranges, the byte after the body, and how the state directory is synced.
test_store.py has the slots, the damage matrix, torn writes and full disks."""

from __future__ import annotations

import errno
import json
import os
import zlib

import pytest

import flightsw.store
from flightsw.store import FORMAT, LEGACY_FORMAT, StoreFormatError, decode_document, encode_document

SCHEMA = 3


def header_line(body: bytes, *, fmt: str = FORMAT, **fields) -> bytes:
    header = {"crc32": f"{zlib.crc32(body):08x}", "format": fmt, "length": len(body), "schema_version": SCHEMA,
              "sequence": 1, **fields}
    return (json.dumps(header, sort_keys=True) + "\n").encode("ascii")


# ----------------------------------------------------------------------------------------------- writing

def test_a_document_is_a_sorted_header_line_then_a_sorted_compact_body():
    document = encode_document({"b": [1, 2], "a": "é"}, schema_version=SCHEMA, sequence=7)
    body = '{"a":"\\u00e9","b":[1,2]}\n'.encode("utf-8")
    assert document == (json.dumps({"crc32": f"{zlib.crc32(body):08x}", "format": FORMAT, "length": len(body),
                                    "schema_version": SCHEMA, "sequence": 7}) + "\n").encode("ascii") + body
    assert document.split(b"\n")[0].startswith(b'{"crc32": "')


def test_a_slot_is_the_document_padded_with_spaces_to_its_size_ending_in_a_newline():
    document = encode_document({"a": 1}, schema_version=SCHEMA, sequence=1)
    slot = encode_document({"a": 1}, schema_version=SCHEMA, sequence=1, slot_bytes=len(document) + 10)
    assert slot == document + b" " * 9 + b"\n"


def test_a_document_fits_a_slot_one_byte_longer_than_itself_and_no_smaller():
    document = encode_document({"a": 1}, schema_version=SCHEMA, sequence=1)
    assert encode_document({"a": 1}, schema_version=SCHEMA, sequence=1, slot_bytes=len(document) + 1) == \
        document + b"\n"
    with pytest.raises(ValueError) as error:
        encode_document({"a": 1}, schema_version=SCHEMA, sequence=1, slot_bytes=len(document))
    assert str(error.value) == f"document of {len(document)} bytes does not fit a {len(document)}-byte slot"


def test_only_a_dict_is_stored():
    with pytest.raises(TypeError) as error:
        encode_document([1], schema_version=SCHEMA, sequence=1)
    assert str(error.value) == "a stored document must be a dict, not list"


# ----------------------------------------------------------------------------------------------- reading

def test_a_sequence_of_0_is_a_sequence():
    raw = encode_document({"a": 1}, schema_version=SCHEMA, sequence=0, slot_bytes=256)
    assert decode_document(raw, schema_version=SCHEMA) == ({"a": 1}, 0)


BODY = b'{"a":1}\n'

# (what is wrong, the raw bytes, the exact reason)
REFUSED = [
    ("nothing", b"", "empty file"),
    ("blanks", b"   \n  ", "empty file"),
    ("no newline", b'{"format": "x"}', "no header line (truncated or not a store file)"),
    ("an empty header line", b"\n" + BODY, "unreadable header"),
    ("a header that is not JSON", b"{not json\n" + BODY, "unreadable header"),
    ("a header that is not ASCII", "{\"é\": 1}\n".encode("utf-8") + BODY, "unreadable header"),
    ("a header that is a list", b"[1]\n" + BODY, "not a store file (unknown format)"),
    ("another format", header_line(BODY, fmt="other/1") + BODY, "not a store file (unknown format)"),
    ("a header without a length", header_line(BODY, length=None)[:-1].replace(b'"length": null, ', b"") + b"\n"
     + BODY, "header fields missing or malformed"),
    ("a header with a length that is not a number", header_line(BODY, length="ten") + BODY,
     "header fields missing or malformed"),
    ("another schema", header_line(BODY, schema_version=SCHEMA + 1) + BODY, "schema version 4, expected 3"),
    ("a negative length", header_line(BODY, length=-1) + BODY, "header fields out of range"),
    ("a negative sequence", header_line(BODY, sequence=-1) + BODY, "header fields out of range"),
    ("a length of 0", header_line(b"", length=0) + b"\n", "body is not JSON"),
    ("a body cut short", header_line(BODY)[:-1].replace(b'"length": 8', b'"length": 9') + b"\n" + BODY,
     "body is 8 bytes, header says 9 (truncated or torn)"),
    ("a byte that is not padding after the body", header_line(BODY) + BODY + b"x" + b" " * 10 + b"\n",
     "body is 20 bytes, header says 8 (truncated or torn)"),
    ("a legacy file with a byte after its body", header_line(BODY, fmt=LEGACY_FORMAT) + BODY + b" ",
     "body is 9 bytes, header says 8 (truncated or torn)"),
    ("a changed body", header_line(BODY) + b'{"a":2}\n', "checksum mismatch"),
    ("a body that is not JSON", header_line(b"{a:1}\n") + b"{a:1}\n", "body is not JSON"),
    ("a body that is not UTF-8", header_line(b'"\xff"\n') + b'"\xff"\n', "body is not JSON"),
    ("a body that is a list", header_line(b"[1]\n") + b"[1]\n", "body is not a JSON object"),
]


@pytest.mark.parametrize("raw, reason", [row[1:] for row in REFUSED], ids=[row[0] for row in REFUSED])
def test_a_stored_file_is_refused_with_the_exact_reason(raw, reason):
    with pytest.raises(StoreFormatError) as error:
        decode_document(raw, schema_version=SCHEMA)
    assert str(error.value) == reason


def test_padding_after_the_body_is_accepted_and_a_legacy_file_ends_with_its_body():
    assert decode_document(header_line(BODY) + BODY + b"   \n", schema_version=SCHEMA) == ({"a": 1}, 1)
    assert decode_document(header_line(BODY, fmt=LEGACY_FORMAT) + BODY, schema_version=SCHEMA) == ({"a": 1}, 1)


# ----------------------------------------------------------------------------------------------- syncing the directory

def test_the_state_directory_is_opened_read_only_as_a_directory_not_inherited(tmp_path, monkeypatch):
    opened = []
    real_open = os.open

    def spy(path, flags, *args):
        opened.append(flags)
        return real_open(path, flags, *args)
    monkeypatch.setattr(flightsw.store.os, "open", spy)
    flightsw.store._fsync_directory(tmp_path)
    assert opened == [os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC]


def test_syncing_a_file_as_the_directory_is_refused(tmp_path):
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(NotADirectoryError):
        flightsw.store._fsync_directory(tmp_path / "file")


@pytest.mark.parametrize("code, raises", [(errno.EINVAL, False), (errno.ENOTSUP, False), (errno.EBADF, False),
                                          (errno.EIO, True), (errno.ENOSPC, True)])
def test_a_file_system_that_can_not_sync_a_directory_is_accepted_other_errors_are_not(tmp_path, monkeypatch, code,
                                                                                       raises):
    def failing(fd):
        raise OSError(code, os.strerror(code))
    monkeypatch.setattr(flightsw.store.os, "fsync", failing)
    if raises:
        with pytest.raises(OSError) as error:
            flightsw.store._fsync_directory(tmp_path)
        assert error.value.errno == code
    else:
        flightsw.store._fsync_directory(tmp_path)


# ----------------------------------------------------------------------------------------------- slots on disk

from flightsw.store import DEFAULT_SLOT_BYTES, MirroredStore  # noqa: E402


def test_a_slot_is_read_up_to_64_kib_and_one_byte_and_nothing_after_it_is_looked_at(tmp_path):
    """A slot written with a larger slot size (up to 64 KiB) is read whole; a file longer than that is not read to
    its end."""
    store = MirroredStore(tmp_path, "doc", schema_version=SCHEMA)
    size = 65536
    for _ in range(3):  # the header's length field grows with the body: converge on 64 KiB
        filling = encode_document({"a": "x" * size}, schema_version=SCHEMA, sequence=1)
        size -= len(filling) - 65536
    assert len(filling) == 65536  # the document ends on the 64 KiB boundary
    (tmp_path / "doc-a.json").write_bytes(filling + b" " + b"x" * 100)  # beyond 64 KiB + 1: never read
    result = store.load()
    assert [(g.source, g.sequence) for g in result.generations] == [("a", 1)]
    assert len(result.generations[0].data["a"]) == size


def test_a_slot_that_is_a_directory_is_unreadable_and_said_so(tmp_path):
    (tmp_path / "doc-a.json").mkdir()
    result = MirroredStore(tmp_path, "doc", schema_version=SCHEMA).load()
    assert result.problems == ["doc-a.json: unreadable (Is a directory)", "doc-b.json: missing"]


def test_a_created_slot_is_readable_by_all_and_writable_by_its_owner(tmp_path):
    old = os.umask(0o022)
    try:
        MirroredStore(tmp_path, "doc", schema_version=SCHEMA, sync=False).save({"a": 1})
    finally:
        os.umask(old)
    assert [(tmp_path / f"doc-{slot}.json").stat().st_mode & 0o777 for slot in "ab"] == [0o644, 0o644]


def test_a_write_that_makes_no_progress_says_so(tmp_path, monkeypatch):
    monkeypatch.setattr(flightsw.store.os, "pwrite", lambda fd, data, offset: 0)
    with pytest.raises(OSError) as raised:
        MirroredStore(tmp_path, "doc", schema_version=SCHEMA, sync=False).save({"a": 1})
    assert (raised.value.errno, raised.value.strerror) == (errno.EIO, "write made no progress")


def test_a_sequence_number_that_failed_on_both_slots_is_never_used_again(tmp_path):
    store = MirroredStore(tmp_path, "doc", schema_version=SCHEMA, sync=False)
    assert store.save({"a": 1}).sequence == 1
    real = store._write_slot

    def broken(path, payload):
        raise OSError(errno.EIO, "sync failed")
    store._write_slot = broken
    with pytest.raises(OSError):
        store.save({"a": 2})  # generation 2 may be on disk all the same
    store._write_slot = real
    assert store.save({"a": 3}).sequence == 3


def test_a_sequence_number_is_never_used_again_when_the_copy_holding_it_is_lost(tmp_path):
    store = MirroredStore(tmp_path, "doc", schema_version=SCHEMA, sync=False)
    store.save({"a": 1})
    (tmp_path / "doc-b.json").unlink()
    (tmp_path / "doc-b.json").mkdir()  # slot b can not be written now
    assert store.save({"a": 2}).sequence == 2  # in slot a only
    (tmp_path / "doc-a.json").unlink()  # and that copy is lost
    assert store.save({"a": 3}).sequence == 3


def test_a_slot_file_larger_than_the_slot_is_read_by_a_store_with_smaller_slots(tmp_path):
    MirroredStore(tmp_path, "doc", schema_version=SCHEMA, sync=False).save({"a": "x" * 1000})
    small = MirroredStore(tmp_path, "doc", schema_version=SCHEMA, slot_bytes=512)
    assert [g.data["a"] for g in small.load().generations] == ["x" * 1000] * 2
    assert DEFAULT_SLOT_BYTES > 1100
