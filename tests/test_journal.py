"""The journal and the parameter store (issue 13): once a fact is latched, losing or damaging any one file loses
nothing, a CRC-valid record with bad fields is rejected loudly and never stops a start, the copies found are
merged so that no fact goes back, and the earlier one-file-plus-backup layout is migrated.

The corruption matrix damages each file (state-a, state-b, params-a, params-b) in each way (a flipped byte,
truncated, empty, deleted, CRC-valid with a bad field) after each latched fact, and loads it as the daemon does;
for a sample, a real daemon is started on the HIL board from the damaged directory.
"""

from __future__ import annotations

import dataclasses
import json
import math
import zlib
from pathlib import Path

import pytest

from flightsw import logsetup
from flightsw.actuators import FireResult
from flightsw.dictionary import all_param_constraints, all_param_decls
from flightsw.journal import (JOURNAL_SCHEMA_VERSION, LEGACY_SCHEMA_VERSION, PARAMS_SCHEMA_VERSION, Journal,
                              ParamStore)
from flightsw.params import Params
from flightsw.phase import Phase
from flightsw.rules.cutdown import Stage
from flightsw.rules.termination import Reason
from flightsw.state import Latches, latch_problems, latches_from_dict, merge_latches
from flightsw.store import DEFAULT_SLOT_BYTES, LEGACY_FORMAT, decode_document, encode_document
from hil.runner import HilRun
from hil.scenario import load_scenario

ROOT = Path(__file__).resolve().parent.parent
NAN = math.nan

# ------------------------------------------------------------------ what is latched

#: a flight in progress: the record every fact is added to
BASE = dict(flight_id="f00d5eed", met_s=500.0, boot_id="sim-0", since_boot_s=500.0, starts=2,
            utc_anchor_s=1_718_956_900.0, utc_anchor_met_s=490.0, phase=int(Phase.ASCENT), phase_since_s=10.0,
            launch_s=10.0, launch_utc_s=1_718_956_410.0, gcs_heard_s=495.0, tlog_first_id=3, events_first_id=3)

#: each latched fact, as the fields that hold it (added to BASE)
FACTS = {
    "release fired": dict(release_fired=True, release_fired_s=400.0, release_reason="ground"),
    "release burn confirmed": dict(release_fired=True, release_fired_s=400.0, release_reason="auto",
                                   release_burn_confirmed=True),
    "separation confirmed": dict(release_fired=True, release_fired_s=400.0, release_burn_confirmed=True,
                                 separation_confirmed=True),
    "termination with stage and reason": dict(
        phase=int(Phase.TERMINATION), termination_fired=True, termination_reason=Reason.LINK_LOST,
        termination_s=450.0, termination_stage=Stage.DUMP, termination_stage_s=452.0, ballast_dump_started=True),
    "cutdown attempts": dict(
        phase=int(Phase.TERMINATION), termination_fired=True, termination_reason=Reason.GROUND, termination_s=460.0,
        termination_stage=Stage.WAIT, termination_stage_s=470.0, cutdown_attempts=2, cutdown_attempt_limit=3,
        cutdown_commit_s=470.0),
    "ballast used": dict(ballast_used_kg=1.75),
    "ballast valve open": dict(ballast_used_kg=0.5, ballast_open_until_s=520.0),
    "phase": dict(phase=int(Phase.FLOAT), phase_since_s=300.0, float_target_altitude_m=28000.0),
    "launch time": dict(launch_s=12.5, launch_utc_s=1_718_956_412.5, launch_latitude_deg=52.2,
                        launch_longitude_deg=0.1, launch_altitude_m=20.0),
    "max altitude": dict(max_altitude_m=27950.0),
    "signing timestamp and streams": dict(signing_timestamp=4_690_000_000_000,
                                          signing_streams={"255/190/4": 4_689_999_000_000, "255/0/1": 17}),
    "dwell starts": dict(dwell_since_s={"ceiling": 480.0, "battery": 470.5}, dwell_ref={"burst": 27000.0}),
}

STORED_PARAMS = {"TRM_LINK_TMO_S": 1800.0, "ALT_TARGET": 30000.0, "TRM_MAX_TRIES": 5, "REL_AUTO": 1}


def latched(fact: str) -> Latches:
    return Latches(**{**BASE, **FACTS[fact]})


def comparable(latches: Latches) -> dict:
    """The record as a dict in which NaN equals NaN."""
    return {name: ("NaN" if isinstance(value, float) and math.isnan(value) else value)
            for name, value in latches.to_dict().items()}


def write_flight(state_dir: Path, fact: str) -> Latches:
    """A journal that latched ``fact`` (one generation before it without), and a parameter store."""
    state_dir.mkdir(parents=True, exist_ok=True)
    journal = Journal(state_dir, sync=False)
    assert journal.save(Latches(**BASE))
    record = latched(fact)
    assert journal.save(record)
    assert ParamStore(state_dir, sync=False).save(STORED_PARAMS)
    return record


# ------------------------------------------------------------------ how a file is damaged

def _rewrite(path: Path, changes: dict) -> None:
    """Rewrite a slot as a good, CRC-valid generation, one newer than the other slot, with ``changes`` made."""
    data, sequence = decode_document(path.read_bytes(), schema_version=_schema_of(path))
    data.update(changes)
    path.write_bytes(encode_document(data, schema_version=_schema_of(path), sequence=sequence + 1,
                                     slot_bytes=DEFAULT_SLOT_BYTES))


def _schema_of(path: Path) -> int:
    return JOURNAL_SCHEMA_VERSION if path.name.startswith("state") else PARAMS_SCHEMA_VERSION


def _flip(path: Path) -> None:
    raw = bytearray(path.read_bytes())
    middle = raw.index(b"\n") + json.loads(raw[:raw.index(b"\n")])["length"] // 2
    raw[middle] ^= 0x04
    path.write_bytes(bytes(raw))


def _truncate(path: Path) -> None:
    raw = path.read_bytes()
    path.write_bytes(raw[:len(raw.rstrip()) // 2])


#: CRC-valid bad fields, for a journal record and for a parameter record
BAD_FIELDS = {
    "phase 99": ({"phase": 99}, {"TRM_MAX_TRIES": 99}),
    "a flag as the text false": ({"release_fired": "false"}, {"REL_AUTO": "false"}),
    "a negative count": ({"cutdown_attempts": -1}, {"TRM_MAX_TRIES": -1}),
    "an infinite float": ({"ballast_used_kg": math.inf}, {"TRM_LINK_TMO_S": math.inf}),
}

DAMAGES = {
    "flipped byte": _flip,
    "truncated": _truncate,
    "empty": lambda path: path.write_bytes(b""),
    "deleted": lambda path: path.unlink(),
    **{kind: (lambda path, kind=kind: _with_bad_field(path, kind)) for kind in BAD_FIELDS},
}
FILES = ("state-a", "state-b", "params-a", "params-b")


def _with_bad_field(path: Path, kind: str) -> None:
    journal_fields, param_fields = BAD_FIELDS[kind]
    _rewrite(path, journal_fields if path.name.startswith("state") else param_fields)

#: damage the parameter store can not tell from a good value (a number outside the parameter's range)
OUT_OF_RANGE = ("phase 99", "a negative count")


def damage(state_dir: Path, file: str, how: str) -> None:
    DAMAGES[how](state_dir / f"{file}.json")


def restored_params(state_dir: Path) -> tuple[dict, list[str]]:
    """The parameters a start restores, as the daemon does it: the store's values through the declarations."""
    params = Params(all_param_decls(), all_param_constraints())
    values, _source, problems = ParamStore(state_dir, sync=False).load(params.stored_value_problem)
    problems += params.load_values(values)
    return {name: params[name] for name in STORED_PARAMS}, problems


# ------------------------------------------------------------------ the corruption matrix


@pytest.mark.parametrize("fact", list(FACTS))
@pytest.mark.parametrize("how", list(DAMAGES))
@pytest.mark.parametrize("file", FILES)
def test_one_damaged_file_loses_no_latched_fact(tmp_path, file, how, fact):
    record = write_flight(tmp_path, fact)
    damage(tmp_path, file, how)
    restored = Journal(tmp_path, sync=False).load()
    assert comparable(restored.latches) == comparable(record)
    values, _, param_problems = ParamStore(tmp_path, sync=False).load()
    if file.startswith("state"):
        assert restored.sources == ["b" if file == "state-a" else "a"]
        assert len(restored.problems) == 1 and names(restored.problems[0], file)
        assert restored.rejected == (1 if how in BAD_FIELDS else 0)
        assert values == STORED_PARAMS and param_problems == []
    else:
        assert restored.sources == ["a", "b"] and restored.problems == []
        assert how in OUT_OF_RANGE or any(names(problem, file) for problem in param_problems)


def names(problem: str, file: str) -> bool:
    """``problem`` says which file it is about (a rejected record by its slot: "a: record rejected: ...")."""
    return f"{file}.json: " in problem or problem.startswith(f"{file[-1]}: ")


@pytest.mark.parametrize("how", list(DAMAGES))
@pytest.mark.parametrize("file", ("params-a", "params-b"))
def test_one_damaged_parameter_file_loses_no_parameter(tmp_path, file, how, request):
    write_flight(tmp_path, "release fired")
    damage(tmp_path, file, how)
    values, problems = restored_params(tmp_path)
    assert values == STORED_PARAMS
    assert problems  # reported, never silent


@pytest.mark.parametrize("how_a", ["flipped byte", "deleted", "phase 99", "a flag as the text false"])
@pytest.mark.parametrize("how_b", ["truncated", "empty", "an infinite float", "a negative count"])
def test_both_journal_copies_bad_give_defaults_with_a_problem_for_each(tmp_path, how_a, how_b):
    write_flight(tmp_path, "termination with stage and reason")
    damage(tmp_path, "state-a", how_a)
    damage(tmp_path, "state-b", how_b)
    restored = Journal(tmp_path, sync=False).load()
    assert not restored.found and restored.sources == []
    fresh = Latches(flight_id=restored.latches.flight_id)
    assert comparable(restored.latches) == comparable(fresh)
    assert len(restored.problems) == 2
    assert any(names(problem, "state-a") for problem in restored.problems)
    assert any(names(problem, "state-b") for problem in restored.problems)
    assert restored.rejected == sum(how in BAD_FIELDS for how in (how_a, how_b))


def test_a_fresh_state_directory_is_a_new_flight_with_nothing_to_report(tmp_path):
    restored = Journal(tmp_path).load()
    assert not restored.found and restored.rejected == 0
    assert len(restored.latches.flight_id) == 12  # a new flight gets its id
    assert Journal(tmp_path).load().latches.flight_id != restored.latches.flight_id  # until it is written
    assert ParamStore(tmp_path).load() == ({}, "none", [])


# ------------------------------------------------------------------ the matrix on a real daemon (a sample)

DAEMON_SAMPLE = [
    ("state-a", "flipped byte", "release fired"),
    ("state-b", "deleted", "release fired"),
    ("state-a", "a flag as the text false", "release fired"),
    ("state-b", "a flag as the text false", "release burn confirmed"),
    ("state-a", "phase 99", "termination with stage and reason"),
    ("state-b", "truncated", "cutdown attempts"),
    ("state-a", "a negative count", "cutdown attempts"),
    ("state-b", "an infinite float", "ballast used"),
    ("state-a", "empty", "signing timestamp and streams"),
    ("state-b", "phase 99", "phase"),
    ("state-a", "deleted", "launch time"),
    ("state-a", "truncated", "separation confirmed"),
    ("params-a", "flipped byte", "release fired"),
    ("params-b", "an infinite float", "termination with stage and reason"),
    ("params-a", "a flag as the text false", "cutdown attempts"),
]

#: the fields of each fact a running daemon may not change in its first second (timers may run on or reset)
_LATCHED_ONLY = ("dwell_since_s", "dwell_ref", "ballast_open_until_s", "met_s", "since_boot_s", "starts",
                 "phase_since_s", "gcs_heard_s", "termination_stage", "termination_stage_s", "signing_timestamp",
                 "signing_streams")


def start_daemon(work_dir: Path) -> HilRun:
    logsetup.configure("error")
    scenario = load_scenario(ROOT / "config" / "hil" / "kill-test.yaml")
    return HilRun(scenario, work_dir=work_dir, resume=True)


def stop(run: HilRun) -> None:
    try:
        run.daemon.shutdown()
    finally:
        run.faults.stop_all()


@pytest.mark.parametrize("file, how, fact", DAEMON_SAMPLE)
def test_a_daemon_starts_from_one_damaged_file_reports_it_and_keeps_every_fact(tmp_path, file, how, fact):
    record = write_flight(tmp_path / "state", fact)
    damage(tmp_path / "state", file, how)
    run = start_daemon(tmp_path)
    try:
        daemon = run.daemon
        latches = daemon.state.latches
        for name, value in FACTS[fact].items():
            assert _same(getattr(latches, name), value), name
        kind, prefix = ("journal_problem", "state journal: ") if file.startswith("state") else \
            ("param_problem", "parameters: ")
        assert any(name == kind and names(text.removeprefix(prefix), file)
                   for _, name, _, text in daemon.events), daemon.events
        assert {name: daemon.params[name] for name in STORED_PARAMS} == STORED_PARAMS
        daemon.run(max_frames=20)  # a second of flight: no latched fact goes back
        for name, value in FACTS[fact].items():
            if name not in _LATCHED_ONLY:
                now = getattr(daemon.state.latches, name)
                assert _same(now, value) or _not_less(now, value), name
        assert daemon.state.latches.release_fired == record.release_fired
        assert daemon.state.latches.termination_fired == record.termination_fired
        assert daemon.state.latches.cutdown_attempts >= record.cutdown_attempts
        if record.release_fired:
            assert_release_can_not_fire(run)
    finally:
        stop(run)


def assert_release_can_not_fire(run: HilRun) -> None:
    """The restarted daemon's actuator manager refuses the release, whatever is asked of it."""
    actuators, now_s = run.daemon.actuators, run.daemon.state.now_s
    assert actuators.release_fired
    assert not actuators.arm("release", now_s)
    assert actuators.fire_ready("release", now_s + 1.0) == "release already fired"
    assert actuators.fire("release", 1.0, now_s + 1.0, attempt=1) is FireResult.REFUSED
    assert actuators.fire("release", 1.0, now_s + 1.0, attempt=2) is FireResult.REFUSED
    assert run.board.release_burns == 0


def _same(first, second) -> bool:
    return first == second or (first != first and second != second)


def _not_less(value, floor) -> bool:
    return isinstance(value, (int, float)) and isinstance(floor, (int, float)) and value >= floor


@pytest.mark.parametrize("how_a, how_b", [("phase 99", "a flag as the text false"), ("flipped byte", "empty"),
                                          ("truncated", "an infinite float")])
def test_a_daemon_with_both_journal_copies_bad_starts_from_defaults_and_says_so(tmp_path, how_a, how_b):
    write_flight(tmp_path / "state", "release fired")
    damage(tmp_path / "state", "state-a", how_a)
    damage(tmp_path / "state", "state-b", how_b)
    run = start_daemon(tmp_path)
    try:
        daemon = run.daemon
        assert daemon.state.latches.phase == Phase.PREFLIGHT and not daemon.state.latches.release_fired
        problems = [text.removeprefix("state journal: ") for _, name, severity, text in daemon.events
                    if name == "journal_problem" and severity == "critical"]
        assert len(problems) == 2
        assert any(names(problem, "state-a") for problem in problems)
        assert any(names(problem, "state-b") for problem in problems)
        daemon.run(max_frames=20)
    finally:
        stop(run)


def test_a_daemon_in_a_fresh_directory_reports_no_journal_problem(tmp_path):
    run = start_daemon(tmp_path)
    try:
        names = [name for _, name, _, _ in run.daemon.events]
        assert "boot" in names and "journal_problem" not in names and "param_problem" not in names
    finally:
        stop(run)


# ------------------------------------------------------------------ merging the copies found


def merged(*records: dict) -> Latches:
    return merge_latches([Latches(**record) for record in records])


_EVER_TRUE = ("preflight_override", "release_fired", "release_burn_confirmed", "separation_confirmed",
              "separation_timed_out", "termination_fired", "ballast_dump_started")
_NEVER_LESS = [("cutdown_attempts", 1, 2), ("cutdown_attempt_limit", 3, 4), ("ballast_used_kg", 0.5, 0.75),
               ("max_altitude_m", 1000.0, 1500.0), ("starts", 4, 5), ("signing_timestamp", 10, 11)]
_TERMINATED = dict(termination_fired=True, termination_reason=Reason.CEILING, termination_s=300.0,
                   termination_stage=Stage.WAIT, termination_stage_s=305.0, cutdown_commit_s=305.0)

MERGE_CASES = [
    # (why, newest, older, expected fields of the merge)
    *[(f"{flag} in the older copy is kept", {}, {flag: True}, {flag: True}) for flag in _EVER_TRUE],
    *[(f"{flag} in the newest copy is kept", {flag: True}, {}, {flag: True}) for flag in _EVER_TRUE],
    *[(f"{name}: the larger of the newest", {name: high}, {name: low}, {name: high})
      for name, low, high in _NEVER_LESS],
    *[(f"{name}: the larger of an older copy", {name: low}, {name: high}, {name: high})
      for name, low, high in _NEVER_LESS],
    ("a maximum altitude only an older copy knows", {}, {"max_altitude_m": 900.0}, {"max_altitude_m": 900.0}),
    ("the launch from an older copy, as a whole", {"phase": 1},
     {"phase": 1, "launch_s": 10.0, "launch_utc_s": 1.7e9, "launch_latitude_deg": 52.0, "launch_longitude_deg": 0.1,
      "launch_altitude_m": 20.0},
     {"launch_s": 10.0, "launch_utc_s": 1.7e9, "launch_latitude_deg": 52.0, "launch_longitude_deg": 0.1,
      "launch_altitude_m": 20.0}),
    ("a launch is set once: the newest copy's stays", {"phase": 1, "launch_s": 12.0, "launch_latitude_deg": 52.1},
     {"phase": 1, "launch_s": 10.0, "launch_latitude_deg": 52.0}, {"launch_s": 12.0, "launch_latitude_deg": 52.1}),
    ("the release time and reason from an older copy", {}, {"release_fired": True, "release_fired_s": 40.0,
                                                            "release_reason": "ground"},
     {"release_fired": True, "release_fired_s": 40.0, "release_reason": "ground", "phase": Phase.ASCENT}),
    ("the flight id from an older copy", {"flight_id": ""}, {"flight_id": "abc"}, {"flight_id": "abc"}),
    ("the flight id is set once", {"flight_id": "new"}, {"flight_id": "abc"}, {"flight_id": "new"}),
    ("a termination only an older copy knows, with its stage, reason and times", {"phase": 2}, _TERMINATED,
     {**_TERMINATED, "phase": Phase.TERMINATION}),
    ("the newest copy's termination stays as it is", {**_TERMINATED, "termination_stage": Stage.DONE, "phase": 3},
     {**_TERMINATED, "termination_reason": Reason.GROUND},
     {"termination_stage": Stage.DONE, "termination_reason": Reason.CEILING, "phase": Phase.DESCENT}),
    ("the latest mission-clock record", {"met_s": 100.0, "boot_id": "b1", "since_boot_s": 5.0},
     {"met_s": 150.0, "boot_id": "b0", "since_boot_s": 150.0},
     {"met_s": 150.0, "boot_id": "b0", "since_boot_s": 150.0}),
    ("the latest UTC anchor", {"utc_anchor_s": 1.7e9, "utc_anchor_met_s": 50.0},
     {"utc_anchor_s": 1.7e9 + 60.0, "utc_anchor_met_s": 110.0},
     {"utc_anchor_s": 1.7e9 + 60.0, "utc_anchor_met_s": 110.0}),
    ("a UTC anchor only an older copy knows", {}, {"utc_anchor_s": 1.7e9, "utc_anchor_met_s": 50.0},
     {"utc_anchor_s": 1.7e9, "utc_anchor_met_s": 50.0}),
    ("signing streams: each stream's newest, from either copy", {"signing_streams": {"1/1/1": 5, "2/2/2": 1}},
     {"signing_streams": {"1/1/1": 3, "2/2/2": 9, "3/3/3": 4}},
     {"signing_streams": {"1/1/1": 5, "2/2/2": 9, "3/3/3": 4}}),
    ("dwell starts are the newest copy's", {"dwell_since_s": {"ceiling": 20.0}},
     {"dwell_since_s": {"ceiling": 10.0, "battery": 5.0}}, {"dwell_since_s": {"ceiling": 20.0}}),
    ("the newest copy's timers", {"gcs_heard_s": 40.0, "phase_since_s": 30.0},
     {"gcs_heard_s": 90.0, "phase_since_s": 80.0}, {"gcs_heard_s": 40.0, "phase_since_s": 30.0}),
    # the phase never goes back before a latched fact
    ("a termination leaves only TERMINATION ...", {"phase": 1}, {**_TERMINATED, "phase": 5}, {"phase": 5}),
    ("... from FLOAT", {"phase": 2, **_TERMINATED}, {}, {"phase": Phase.TERMINATION}),
    ("... from PREFLIGHT", {"phase": 0}, _TERMINATED, {"phase": Phase.TERMINATION}),
    ("... DESCENT", {"phase": 3}, {**_TERMINATED, "phase": 5}, {"phase": Phase.DESCENT}),
    ("... or LANDED", {"phase": 4}, {**_TERMINATED, "phase": 5}, {"phase": Phase.LANDED}),
    ("a launch leaves PREFLIGHT", {"phase": 0}, {"phase": 2, "launch_s": 10.0}, {"phase": Phase.ASCENT}),
    ("a release leaves PREFLIGHT", {"phase": 0}, {"release_fired": True}, {"phase": Phase.ASCENT}),
    ("nothing latched: PREFLIGHT stays", {"phase": 0}, {"phase": 2}, {"phase": Phase.PREFLIGHT}),
    ("without a latched fact the newest phase stands", {"phase": 1, "launch_s": 10.0},
     {"phase": 2, "launch_s": 10.0}, {"phase": Phase.ASCENT}),
    ("a termination without a stage restarts at ARM", {"termination_fired": True, "phase": 5}, {},
     {"termination_stage": Stage.ARM}),
]


@pytest.mark.parametrize("why, newest, older, expected", MERGE_CASES, ids=[case[0] for case in MERGE_CASES])
def test_merge_rule(why, newest, older, expected):
    result = merged(newest, older)
    for name, value in expected.items():
        assert _same(getattr(result, name), value), name


def test_merge_of_nothing_is_a_new_record():
    assert comparable(merge_latches([])) == comparable(Latches())


def test_a_single_record_comes_back_as_it_is():
    record = latched("cutdown attempts")
    assert comparable(merge_latches([record])) == comparable(record)


def test_merge_takes_every_fact_from_any_of_three_copies_and_changes_none():
    copies = [Latches(phase=1, launch_s=5.0, ballast_used_kg=0.2, signing_streams={"1/1/1": 2}),
              Latches(phase=1, launch_s=5.0, release_fired=True, cutdown_attempts=1, signing_streams={"1/1/1": 7}),
              Latches(phase=1, launch_s=5.0, separation_confirmed=True, ballast_used_kg=0.9, max_altitude_m=700.0)]
    before = [comparable(copy) for copy in copies]
    result = merge_latches(copies)
    assert (result.release_fired, result.separation_confirmed, result.cutdown_attempts) == (True, True, 1)
    assert (result.ballast_used_kg, result.max_altitude_m, result.signing_streams) == (0.9, 700.0, {"1/1/1": 7})
    result.signing_streams["9/9/9"] = 1
    result.dwell_since_s["x"] = 1.0
    assert [comparable(copy) for copy in copies] == before  # the copies are not changed, nor shared


# ------------------------------------------------------------------ validating a record, field by field

_BAD_BOOL = ["false", "true", 0, 1, None, [True]]
_BAD_COUNT = [-1, 1.0, 2.5, True, "3", None, 1_000_001]
_BAD_NUMBER = [math.inf, -math.inf, "1.0", None, True, [1.0]]
_BAD_TEXT = [5, None, False, "x" * 201, ["a"]]
_BAD_TIMES = [[], "x", {"x": math.inf}, {"x": NAN}, {"x": "1"}, {"x": True}, {"x" * 65: 1.0},
              {f"c{i}": 1.0 for i in range(65)}]
KINDS = {
    "bool": ([True, False], _BAD_BOOL),
    "count": ([0, 7, 1_000_000], _BAD_COUNT),
    "number": ([0.0, -12.5, 3, NAN, 1e300], _BAD_NUMBER),
    "text": (["", "abc", "x" * 200], _BAD_TEXT),
    "phase": ([int(phase) for phase in Phase], [99, -1, 6, 1.0, "1", True, None]),
    "stage": (list(Stage.ALL), ["burn", "DONE", 3, None]),
    "reason": (["", *Reason.ALL], ["because", 1, None]),
    "times": ([{}, {"ceiling": 12.0, "battery": -3}, {f"c{i}": 1.0 for i in range(64)}], _BAD_TIMES),
    "streams": ([{}, {"255/190/4": 0}, {"1/1/1": (1 << 48) - 1, "0/0/0": 5}],
                [[], {"255/190": 1}, {"256/1/1": 1}, {"1/1/1": -1}, {"1/1/1": 1 << 48}, {"1/1/1": 1.5},
                 {"a/b/c": 1}, {"1/1/1": True}, {"1/1/1/1": 1}, {f"1/1/{i}": 1 for i in range(65)}]),
    "timestamp": ([0, (1 << 48) - 1], [-1, 1 << 48, 1.5, "1", True, None]),
}
FIELD_KINDS = {
    "flight_id": "text", "met_s": "number", "boot_id": "text", "since_boot_s": "number", "utc_anchor_s": "number",
    "utc_anchor_met_s": "number", "starts": "count", "clean_stop": "bool", "phase": "phase",
    "phase_since_s": "number", "launch_s": "number", "launch_utc_s": "number", "launch_latitude_deg": "number",
    "launch_longitude_deg": "number", "launch_altitude_m": "number", "preflight_override": "bool",
    "release_armed": "bool", "release_fired": "bool", "release_fired_s": "number", "release_burn_confirmed": "bool",
    "release_reason": "text", "separation_confirmed": "bool", "separation_timed_out": "bool",
    "termination_fired": "bool", "termination_reason": "reason", "termination_s": "number",
    "termination_stage": "stage", "termination_stage_s": "number", "cutdown_attempts": "count",
    "cutdown_attempt_limit": "count", "cutdown_commit_s": "number", "ballast_used_kg": "number",
    "ballast_open_until_s": "number", "ballast_dump_started": "bool", "float_target_altitude_m": "number",
    "max_altitude_m": "number", "gcs_heard_s": "number", "go_s": "number", "dwell_since_s": "times",
    "dwell_ref": "times",
    "tlog_first_id": "count", "events_first_id": "count", "signing_timestamp": "timestamp",
    "signing_streams": "streams",
}
GOOD_VALUES = [(name, value) for name, kind in FIELD_KINDS.items() for value in KINDS[kind][0]]
BAD_VALUES = [(name, value) for name, kind in FIELD_KINDS.items() for value in KINDS[kind][1]]


def test_every_latch_field_has_its_kind_in_these_tables():
    assert set(FIELD_KINDS) == {field.name for field in dataclasses.fields(Latches)}


@pytest.mark.parametrize("name, value", GOOD_VALUES, ids=[f"{n}={v!r}"[:60] for n, v in GOOD_VALUES])
def test_a_good_value_of_every_field_is_accepted(name, value):
    assert latch_problems({name: value}) == []
    assert _same(getattr(latches_from_dict({name: value}), name), value)


@pytest.mark.parametrize("name, value", BAD_VALUES, ids=[f"{n}={v!r}"[:60] for n, v in BAD_VALUES])
def test_a_bad_value_of_every_field_is_rejected_naming_the_field(name, value):
    problems = latch_problems({**latched("cutdown attempts").to_dict(), name: value})
    assert len(problems) == 1 and problems[0].startswith(f"{name} ")
    with pytest.raises(ValueError, match=name):
        latches_from_dict({name: value})


def test_unknown_keys_are_ignored_and_missing_ones_take_their_defaults():
    record = latches_from_dict({"release_fired": True, "a_field_of_a_newer_build": [1, 2]})
    assert record.release_fired and comparable(dataclasses.replace(record, release_fired=False)) == \
        comparable(Latches())


def test_every_bad_field_of_a_record_is_named():
    problems = latch_problems({"phase": 99, "release_fired": "false", "cutdown_attempts": -1,
                               "ballast_used_kg": math.inf})
    assert [problem.split()[0] for problem in problems] == ["phase", "release_fired", "cutdown_attempts",
                                                            "ballast_used_kg"]


def test_a_loaded_record_does_not_share_its_maps_with_the_document():
    document = {"dwell_since_s": {"ceiling": 1.0}, "signing_streams": {"1/1/1": 5}}
    record = latches_from_dict(document)
    record.dwell_since_s["battery"] = 2.0
    record.signing_streams["2/2/2"] = 1
    assert document == {"dwell_since_s": {"ceiling": 1.0}, "signing_streams": {"1/1/1": 5}}


# ------------------------------------------------------------------ the journal: writes, rejected records


def test_a_record_is_written_to_both_copies_and_read_back(tmp_path):
    record = latched("termination with stage and reason")
    journal = Journal(tmp_path, sync=False)
    assert journal.save(record) and journal.writes == 1
    restored = Journal(tmp_path).load()
    assert restored.found and restored.sources == ["a", "b"] and restored.problems == [] and restored.rejected == 0
    assert comparable(restored.latches) == comparable(record)


def test_a_rejected_newer_record_does_not_hide_a_fact_of_the_other(tmp_path):
    """A CRC-valid copy with a bad field, newer than the good one, is rejected whole: its other fields are not
    trusted either, and the good copy's facts stand."""
    write_flight(tmp_path, "release fired")
    _rewrite(tmp_path / "state-b.json", {"release_fired": False, "phase": 99})
    restored = Journal(tmp_path).load()
    assert restored.latches.release_fired and restored.rejected == 1
    assert restored.problems == ["b: record rejected: phase must be a phase number (0..5) (found 99)"]


def test_a_newer_good_copy_without_a_fact_does_not_remove_it(tmp_path):
    write_flight(tmp_path, "cutdown attempts")
    _rewrite(tmp_path / "state-a.json", {"termination_fired": False, "cutdown_attempts": 0, "phase": int(Phase.ASCENT)})
    restored = Journal(tmp_path).load()
    assert restored.latches.termination_fired and restored.latches.cutdown_attempts == 2
    assert restored.latches.phase == Phase.TERMINATION


def test_a_write_that_reaches_no_copy_is_counted_and_never_raises(tmp_path):
    journal = Journal(tmp_path / "missing-directory")
    assert journal.save(Latches()) is False
    assert (journal.write_errors, journal.writes) == (1, 0) and journal.last_error


def test_a_write_that_reaches_one_copy_is_counted_as_degraded(tmp_path):
    journal = Journal(tmp_path)
    journal.save(Latches())
    (tmp_path / "state-b.json").unlink()
    (tmp_path / "state-b.json").mkdir()  # slot b can not be written
    assert journal.save(latched("release fired")) is True
    assert (journal.writes, journal.degraded_writes, journal.write_errors) == (2, 1, 0)
    assert "state-b.json" in journal.last_error
    assert Journal(tmp_path).load().latches.release_fired


# ------------------------------------------------------------------ migration from the earlier layout

LEGACY_RECORD = {
    "phase": 2, "phase_since_wall_s": 1_718_960_000.0, "launch_wall_s": 1_718_956_400.0,
    "launch_latitude_deg": 52.2, "launch_longitude_deg": 0.1, "launch_altitude_m": 20.0,
    "preflight_override": False, "release_armed": False, "release_fired": True,
    "release_fired_wall_s": 1_718_958_000.0, "release_reason": "ground", "separation_confirmed": True,
    "termination_fired": False, "termination_reason": "", "termination_wall_s": NAN, "cutdown_attempts": 0,
    "ballast_used_kg": 0.8, "ballast_dump_started": False, "float_target_altitude_m": 28000.0,
    "max_altitude_m": 28100.0, "signing_timestamp": 4_000_000_000_000, "termination_stage": "",
    "cutdown_attempt_limit": 0, "separation_timed_out": False,
}


def legacy_document(data: dict, sequence: int) -> bytes:
    """A file as the earlier store wrote it: a header, then exactly the body."""
    body = (json.dumps(data, sort_keys=True, separators=(",", ":")) + "\n").encode()
    header = {"crc32": f"{zlib.crc32(body):08x}", "format": LEGACY_FORMAT, "length": len(body),
              "schema_version": LEGACY_SCHEMA_VERSION, "sequence": sequence}
    return (json.dumps(header, sort_keys=True) + "\n").encode() + body


def write_legacy_journal(state_dir: Path, newest: dict, backup: dict) -> None:
    (state_dir / "state.json").write_bytes(legacy_document(newest, 7))
    (state_dir / "state.json.bak").write_bytes(legacy_document(backup, 6))


def test_a_schema_1_journal_is_migrated_with_every_fact(tmp_path):
    backup = {**LEGACY_RECORD, "release_fired": False, "separation_confirmed": False, "ballast_used_kg": 0.5,
              "max_altitude_m": 29000.0}
    write_legacy_journal(tmp_path, LEGACY_RECORD, backup)
    restored = Journal(tmp_path).load()
    latches = restored.latches
    assert restored.sources == ["state.json", "state.json.bak"] and restored.rejected == 0
    assert (latches.phase, latches.release_fired, latches.separation_confirmed) == (Phase.FLOAT, True, True)
    assert (latches.ballast_used_kg, latches.max_altitude_m) == (0.8, 29000.0)
    assert (latches.release_reason, latches.float_target_altitude_m) == ("ground", 28000.0)
    assert latches.signing_timestamp == 4_000_000_000_000
    assert latches.launch_utc_s == 1_718_956_400.0  # the wall-clock launch is a label now
    assert latches.launch_s == 0.0  # a launched flight's timers count from the migration
    assert math.isnan(latches.release_fired_s) and math.isnan(latches.phase_since_s)


def test_migrated_files_are_removed_after_a_complete_save_and_only_then(tmp_path):
    write_legacy_journal(tmp_path, LEGACY_RECORD, LEGACY_RECORD)
    journal = Journal(tmp_path)
    latches = journal.load().latches
    (tmp_path / "state-b.json").mkdir()  # slot b can not be written: the migration is not complete
    assert journal.save(latches)
    assert (tmp_path / "state.json").exists() and (tmp_path / "state.json.bak").exists()
    restored = Journal(tmp_path).load()  # the written copy and the old files, merged
    assert restored.sources == ["a", "state.json", "state.json.bak"] and restored.latches.release_fired
    (tmp_path / "state-b.json").rmdir()
    assert journal.save(restored.latches)
    assert not (tmp_path / "state.json").exists() and not (tmp_path / "state.json.bak").exists()
    again = Journal(tmp_path).load()
    assert again.sources == ["a", "b"] and again.problems == [] and again.latches.release_fired


def test_a_damaged_schema_1_journal_falls_back_to_its_backup(tmp_path):
    write_legacy_journal(tmp_path, LEGACY_RECORD, LEGACY_RECORD)
    (tmp_path / "state.json").write_bytes((tmp_path / "state.json").read_bytes()[:-10])
    restored = Journal(tmp_path).load()
    assert restored.sources == ["state.json.bak"] and restored.latches.release_fired
    assert any(problem.startswith("state.json: ") for problem in restored.problems)


def test_a_schema_1_record_with_a_bad_field_is_rejected_loudly(tmp_path):
    write_legacy_journal(tmp_path, {**LEGACY_RECORD, "release_fired": "false"}, LEGACY_RECORD)
    restored = Journal(tmp_path).load()
    assert restored.sources == ["state.json.bak"] and restored.rejected == 1 and restored.latches.release_fired
    assert any(problem.startswith("state.json: record rejected: release_fired") for problem in restored.problems)


def test_a_schema_1_parameter_store_is_migrated_then_removed(tmp_path):
    (tmp_path / "params.json").write_bytes(legacy_document({"ALT_TARGET": 30000.0}, 3))
    (tmp_path / "params.json.bak").write_bytes(legacy_document({"ALT_TARGET": 29000.0}, 2))
    store = ParamStore(tmp_path)
    assert store.load() == ({"ALT_TARGET": 30000.0}, "params.json", [])
    assert store.save({"ALT_TARGET": 30000.0})
    assert not (tmp_path / "params.json").exists() and not (tmp_path / "params.json.bak").exists()
    assert ParamStore(tmp_path).load() == ({"ALT_TARGET": 30000.0}, "a", [])


# ------------------------------------------------------------------ the parameter store


def test_parameters_round_trip(tmp_path):
    assert ParamStore(tmp_path).save(STORED_PARAMS)
    assert ParamStore(tmp_path).load() == (STORED_PARAMS, "a", [])


@pytest.mark.parametrize("newer", ["a", "b"])
def test_the_newest_parameter_copy_wins(tmp_path, newer):
    ParamStore(tmp_path).save({"ALT_TARGET": 29000.0})
    path = tmp_path / f"params-{newer}.json"
    data, sequence = decode_document(path.read_bytes(), schema_version=PARAMS_SCHEMA_VERSION)
    path.write_bytes(encode_document({}, schema_version=PARAMS_SCHEMA_VERSION, sequence=sequence + 1,
                                     slot_bytes=DEFAULT_SLOT_BYTES))
    assert ParamStore(tmp_path).load() == ({}, newer, [])  # a parameter set back to its default is gone


def test_values_that_are_not_finite_numbers_are_dropped_with_a_problem_when_no_copy_has_better(tmp_path):
    ParamStore(tmp_path).save({"ALT_TARGET": 30000.0, "REL_AUTO": "1", "TRM_BURN_S": math.inf, "ALT_KP": True,
                               "TRM_MAX_TRIES": None, "X" * 100: [1]})
    values, source, problems = ParamStore(tmp_path).load()
    assert values == {"ALT_TARGET": 30000.0} and source == "a"
    assert sorted(problems) == sorted(f"params: {name} is not a finite number" for name in
                                      ("REL_AUTO", "TRM_BURN_S", "ALT_KP", "TRM_MAX_TRIES", "X" * 32))


def test_one_missing_parameter_copy_is_reported(tmp_path):
    ParamStore(tmp_path).save(STORED_PARAMS)
    (tmp_path / "params-b.json").unlink()
    assert ParamStore(tmp_path).load() == (STORED_PARAMS, "a", ["params-b.json: missing"])


def test_a_parameter_write_that_reaches_no_copy_is_counted(tmp_path):
    store = ParamStore(tmp_path / "missing-directory")
    assert store.save(STORED_PARAMS) is False
    assert store.write_errors == 1 and store.last_error
