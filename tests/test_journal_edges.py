"""The journal and the parameter store at their edges: where they keep their files and that they sync by default,
every failing save counted and told, a rejected record told with each of its problems, the earlier layout's files
(an unreadable one does not hide the other, its timers start again only for a launched flight), and the parameter
store's choice between its copies (a bad newer one rejected and named, values not finite dropped, nothing to report
for a new flight).  test_journal.py has the corruption matrix and the merge rules."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from flightsw.journal import JOURNAL_SCHEMA_VERSION, PARAMS_SCHEMA_VERSION, Journal, ParamStore
from flightsw.phase import Phase
from flightsw.state import Latches
from flightsw.store import DEFAULT_SLOT_BYTES, encode_document
from test_journal import legacy_document


def write_slot(path: Path, data: dict, sequence: int, schema: int = PARAMS_SCHEMA_VERSION) -> None:
    path.write_bytes(encode_document(data, schema_version=schema, sequence=sequence, slot_bytes=DEFAULT_SLOT_BYTES))


# ----------------------------------------------------------------------------------------------- where and how

def test_the_journal_and_the_parameter_store_keep_two_slots_each_synced_by_default(tmp_path):
    journal, params = Journal(tmp_path), ParamStore(tmp_path)
    assert [path.name for path in journal.store.paths] == ["state-a.json", "state-b.json"]
    assert [path.name for path in params.store.paths] == ["params-a.json", "params-b.json"]
    assert (journal.store.schema_version, params.store.schema_version) == (JOURNAL_SCHEMA_VERSION,
                                                                           PARAMS_SCHEMA_VERSION)
    assert journal.store.sync is True and params.store.sync is True
    assert Journal(tmp_path, sync=False).store.sync is False and ParamStore(tmp_path, sync=False).store.sync is False
    assert journal.legacy_paths == [tmp_path / "state.json", tmp_path / "state.json.bak"]
    assert params.legacy_paths == [tmp_path / "params.json", tmp_path / "params.json.bak"]
    assert journal.store.legacy_paths == tuple(journal.legacy_paths)
    assert params.store.legacy_paths == tuple(params.legacy_paths)
    assert (journal.writes, journal.write_errors, journal.degraded_writes, journal.last_error) == (0, 0, 0, "")
    assert (params.write_errors, params.last_error) == (0, "")


# ----------------------------------------------------------------------------------------------- failing saves

def test_every_journal_save_that_writes_no_copy_is_counted_and_told(tmp_path):
    (tmp_path / "state-a.json").mkdir()
    (tmp_path / "state-b.json").mkdir()
    journal = Journal(tmp_path, sync=False)
    assert journal.save(Latches()) is False
    assert journal.save(Latches()) is False
    assert (journal.writes, journal.write_errors, journal.last_error) == (0, 2, "Is a directory")


def test_every_journal_save_that_writes_one_copy_is_counted_as_degraded_and_told(tmp_path):
    (tmp_path / "state-b.json").mkdir()
    journal = Journal(tmp_path, sync=False)
    assert journal.save(Latches()) is True
    assert journal.save(Latches()) is True
    assert (journal.writes, journal.write_errors, journal.degraded_writes) == (2, 0, 2)
    assert journal.last_error == "state-b.json: Is a directory"


def test_a_journal_save_failing_on_both_copies_tells_the_first_error(tmp_path):
    journal = Journal(tmp_path, sync=False)
    journal.store._write_slot = _failing_slot_writer({"state-a.json": "No space left on device",
                                                      "state-b.json": "Is a directory"})
    assert journal.save(Latches()) is False
    assert journal.last_error == "No space left on device"


def _failing_slot_writer(errors: dict[str, str]):
    def write(path, payload):
        raise OSError(28 if "space" in errors[path.name] else 21, errors[path.name])
    return write


def test_a_parameter_save_that_writes_no_copy_is_counted_and_told(tmp_path):
    (tmp_path / "params-a.json").mkdir()
    (tmp_path / "params-b.json").mkdir()
    store = ParamStore(tmp_path, sync=False)
    assert store.save({"ALT_TARGET": 1.0}) is False
    assert store.save({"ALT_TARGET": 1.0}) is False
    assert (store.write_errors, store.last_error) == (2, "Is a directory")


def test_a_parameter_save_that_writes_one_copy_is_done_and_told(tmp_path):
    (tmp_path / "params-a.json").mkdir()
    store = ParamStore(tmp_path, sync=False)
    assert store.save({"ALT_TARGET": 1.0}) is True
    assert (store.write_errors, store.last_error) == (0, "params-a.json: Is a directory")


def test_an_error_without_a_description_is_told_by_itself(tmp_path):
    journal, params = Journal(tmp_path, sync=False), ParamStore(tmp_path, sync=False)

    def broken(path, payload):
        raise OSError("the card is gone")
    journal.store._write_slot = params.store._write_slot = broken
    assert journal.save(Latches()) is False and journal.last_error == "the card is gone"
    assert params.save({"A": 1.0}) is False and params.last_error == "the card is gone"


# ----------------------------------------------------------------------------------------------- loading

def test_a_rejected_record_is_told_with_every_one_of_its_problems(tmp_path):
    write_slot(tmp_path / "state-a.json", {"phase": 9, "release_fired": "yes"}, 2, JOURNAL_SCHEMA_VERSION)
    write_slot(tmp_path / "state-b.json", {"phase": 2}, 1, JOURNAL_SCHEMA_VERSION)
    restored = Journal(tmp_path).load()
    assert restored.problems == ["a: record rejected: phase must be a phase number (0..5) (found 9); "
                                 "release_fired must be true or false (found 'yes')"]
    assert restored.rejected == 1 and restored.sources == ["b"] and restored.latches.phase == 2


def test_a_new_flight_gets_a_flight_id(tmp_path):
    first, second = Journal(tmp_path).load(), Journal(tmp_path).load()
    assert len(first.latches.flight_id) == 12 and first.latches.flight_id != second.latches.flight_id
    assert first.found is False


# ----------------------------------------------------------------------------------------------- the earlier layout

LEGACY = {"phase": int(Phase.FLOAT), "release_fired": True, "launch_wall_s": 1_718_956_400.0,
          "phase_since_wall_s": 5.0, "release_fired_wall_s": 6.0, "termination_wall_s": 7.0}


def test_an_unreadable_old_file_is_told_and_does_not_hide_its_backup(tmp_path):
    (tmp_path / "state.json").mkdir()
    (tmp_path / "state.json.bak").write_bytes(legacy_document(LEGACY, 6))
    restored = Journal(tmp_path).load()
    assert "state.json: unreadable (Is a directory)" in restored.problems
    assert restored.sources == ["state.json.bak"] and restored.latches.release_fired


def test_a_missing_old_file_does_not_hide_its_backup(tmp_path):
    (tmp_path / "state.json.bak").write_bytes(legacy_document(LEGACY, 6))
    restored = Journal(tmp_path).load()
    assert restored.sources == ["state.json.bak"] and restored.latches.release_fired


def test_a_damaged_old_file_is_told_and_does_not_hide_its_backup(tmp_path):
    (tmp_path / "state.json").write_bytes(b"garbage\n")
    (tmp_path / "state.json.bak").write_bytes(legacy_document(LEGACY, 6))
    restored = Journal(tmp_path).load()
    assert "state.json: unreadable header" in restored.problems
    assert restored.sources == ["state.json.bak"]


def test_the_newer_old_file_comes_first_whatever_its_name(tmp_path):
    (tmp_path / "state.json").write_bytes(legacy_document({**LEGACY, "boot_id": "older"}, 3))
    (tmp_path / "state.json.bak").write_bytes(legacy_document({**LEGACY, "boot_id": "newer"}, 4))
    restored = Journal(tmp_path).load()
    assert restored.sources == ["state.json.bak", "state.json"] and restored.latches.boot_id == "newer"


@pytest.mark.parametrize("record, launch_s", [
    ({"phase": int(Phase.FLOAT)}, 0.0),  # launched: its timers count from the migration
    ({"phase": int(Phase.FLOAT), "launch_s": 12.0}, 12.0),  # a launch time it has is kept
    ({"phase": int(Phase.PREFLIGHT)}, None),  # not launched: no launch
    ({}, None),  # no phase: PREFLIGHT, no launch
])
def test_an_old_record_keeps_its_facts_and_only_a_launched_flight_gets_a_launch_time(tmp_path, record, launch_s):
    (tmp_path / "state.json").write_bytes(legacy_document({**record, "launch_wall_s": 1e9, "phase_since_wall_s": 1.0},
                                                          3))
    latches = Journal(tmp_path).load().latches
    assert latches.launch_s == launch_s if launch_s is not None else latches.launch_s != latches.launch_s
    assert latches.launch_utc_s == 1e9  # renamed: a label now
    assert latches.phase_since_s != latches.phase_since_s  # a wall-clock time: dropped


# ----------------------------------------------------------------------------------------------- the parameter store

def test_a_newer_parameter_copy_with_a_bad_value_is_rejected_and_named(tmp_path):
    write_slot(tmp_path / "params-b.json", {"ALT_TARGET": 29000.0}, 1)
    write_slot(tmp_path / "params-a.json", {"ALT_TARGET": "high", "ALT_KP": 0.01}, 2)
    values, source, problems = ParamStore(tmp_path).load()
    assert (values, source) == ({"ALT_TARGET": 29000.0}, "b")
    assert problems == ["a: record rejected: ALT_TARGET is not a finite number"]


def test_a_rejected_copy_names_every_bad_value_within_200_characters(tmp_path):
    write_slot(tmp_path / "params-b.json", {"A": 1.0}, 1)
    bad = {f"PARAM_{i:02d}": "x" for i in range(20)}
    write_slot(tmp_path / "params-a.json", bad, 2)
    _, _, problems = ParamStore(tmp_path).load()
    told = problems[0].removeprefix("a: record rejected: ")
    assert len(told) == 200 and told.startswith("PARAM_00 is not a finite number; PARAM_01 is not")


def test_when_every_copy_has_a_bad_value_the_newest_is_used_without_it(tmp_path):
    write_slot(tmp_path / "params-b.json", {"A": 1.0, "B": True}, 1)
    write_slot(tmp_path / "params-a.json", {"A": 2.0, "B": float("nan")}, 2)
    values, source, problems = ParamStore(tmp_path).load()
    assert (values, source) == ({"A": 2.0}, "a")
    assert problems == ["params: B is not a finite number"]


def test_a_value_is_named_by_at_most_32_characters(tmp_path):
    name = "N" * 40
    write_slot(tmp_path / "params-a.json", {name: "x"}, 1)
    write_slot(tmp_path / "params-b.json", {name: "x"}, 1)
    _, _, problems = ParamStore(tmp_path).load()
    assert problems == [f"params: {'N' * 32} is not a finite number"]


def test_a_given_check_decides_what_is_acceptable(tmp_path):
    write_slot(tmp_path / "params-b.json", {"A": 1.0, "B": 9.0}, 1)
    write_slot(tmp_path / "params-a.json", {"A": 5.0, "B": 9.0}, 2)

    def problem_of(name, value):
        return f"{name} {value:g} is above 2" if name == "A" and value > 2 else ""
    values, source, problems = ParamStore(tmp_path).load(problem_of)
    assert (values, source, problems) == ({"A": 1.0, "B": 9.0}, "b", ["a: record rejected: A 5 is above 2"])


def test_one_missing_copy_is_told(tmp_path):
    write_slot(tmp_path / "params-a.json", {"A": 1.0}, 1)
    assert ParamStore(tmp_path).load() == ({"A": 1.0}, "a", ["params-b.json: missing"])


def test_no_copy_and_a_damaged_one_is_told_not_taken_for_a_new_flight(tmp_path):
    (tmp_path / "params-a.json").write_bytes(b"garbage\n")
    values, source, problems = ParamStore(tmp_path).load()
    assert (values, source) == ({}, "none")
    assert problems == ["params-a.json: unreadable header", "params-b.json: missing"]


def test_the_old_parameter_file_is_read_when_no_copy_is_good(tmp_path):
    (tmp_path / "params.json").mkdir()
    (tmp_path / "params.json.bak").write_bytes(legacy_document({"A": 3.0, "B": "x"}, 2))
    values, source, problems = ParamStore(tmp_path).load()
    assert (values, source) == ({"A": 3.0}, "params.json.bak")
    assert problems == ["params.json: unreadable (Is a directory)", "params: B is not a finite number"]


def test_the_old_parameter_file_read_after_damaged_copies_keeps_their_problems(tmp_path):
    (tmp_path / "params-a.json").write_bytes(b"garbage\n")
    (tmp_path / "params.json").write_bytes(legacy_document({"A": 3.0}, 2))
    values, source, problems = ParamStore(tmp_path).load()
    assert (values, source) == ({"A": 3.0}, "params.json")
    assert problems == ["params-a.json: unreadable header", "params-b.json: missing"]


def test_the_old_parameter_files_are_not_read_when_a_copy_is_good(tmp_path):
    write_slot(tmp_path / "params-a.json", {"A": 1.0}, 1)
    write_slot(tmp_path / "params-b.json", {"A": 1.0}, 1)
    (tmp_path / "params.json").write_bytes(legacy_document({"A": 3.0}, 9))
    assert ParamStore(tmp_path).load() == ({"A": 1.0}, "a", [])


def test_a_saved_parameter_set_is_a_copy_of_the_values(tmp_path):
    values = {"A": 1.0}
    store = ParamStore(tmp_path, sync=False)
    assert store.save(values)
    values["A"] = 2.0
    assert json.loads((tmp_path / "params-a.json").read_text().splitlines()[1]) == {"A": 1.0}
