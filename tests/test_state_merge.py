"""The journal record's validation at every limit (each field's type, range and length, the stream names, the
choices, the phase numbers, how a problem is told) and the merge of the copies found at start-up: properties over
any copies (hypothesis) -- merging never loses a fact any copy holds -- and each merge rule alone."""

from __future__ import annotations

import dataclasses
import math

import pytest
from hypothesis import given, settings, strategies as st

from flightsw.phase import Phase
from flightsw.rules.cutdown import Stage
from flightsw.state import (MAX_MAP_ENTRIES, MAX_SIGNING_TIMESTAMP, MAX_TEXT_CHARS, Latches, latch_problems,
                            latches_from_dict, merge_latches)

NAN = math.nan

# ----------------------------------------------------------------------------------------------- validation

# (field, value, problem or "" when valid)
FIELDS = [
    ("release_fired", True, ""), ("release_fired", False, ""),
    ("release_fired", 1, "release_fired must be true or false (found 1)"),
    ("release_fired", "false", "release_fired must be true or false (found 'false')"),
    ("cutdown_attempts", 0, ""), ("cutdown_attempts", 1_000_000, ""),
    ("cutdown_attempts", 1_000_001, "cutdown_attempts must be a whole number >= 0 (found 1000001)"),
    ("cutdown_attempts", -1, "cutdown_attempts must be a whole number >= 0 (found -1)"),
    ("cutdown_attempts", True, "cutdown_attempts must be a whole number >= 0 (found True)"),
    ("cutdown_attempts", 2.0, "cutdown_attempts must be a whole number >= 0 (found 2.0)"),
    ("launch_s", 12.5, ""), ("launch_s", 12, ""), ("launch_s", NAN, ""),
    ("launch_s", math.inf, "launch_s must be a number (NaN when unknown) (found inf)"),
    ("launch_s", -math.inf, "launch_s must be a number (NaN when unknown) (found -inf)"),
    ("launch_s", "12", "launch_s must be a number (NaN when unknown) (found '12')"),
    ("launch_s", None, "launch_s must be a number (NaN when unknown) (found None)"),
    ("release_reason", "x" * MAX_TEXT_CHARS, ""),
    ("release_reason", "x" * (MAX_TEXT_CHARS + 1),
     "release_reason must be a text of <= 200 (found 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...)"),
    ("release_reason", 5, "release_reason must be a text of <= 200 (found 5)"),
    ("termination_stage", Stage.WAIT, ""),
    ("termination_stage", "burning", "termination_stage must be one of '', 'dump', 'arm', 'fire', 'wait', 'done', "
                                     "'failed' (found 'burning')"),
    ("termination_reason", "ceiling", ""), ("termination_reason", "", ""),
    ("termination_reason", "boredom", "termination_reason must be one of '', 'ground', 'no_altitude', 'ceiling', "
                                      "'geofence', 'uncontrolled', 'battery', 'link_lost', 'max_duration', "
                                      "'float_floor' (found 'boredom')"),
    ("phase", 5, ""), ("phase", 0, ""),
    ("phase", 6, "phase must be a phase number (0..5) (found 6)"),
    ("phase", -1, "phase must be a whole number >= 0 (found -1)"),
    ("dwell_since_s", {"a": 1.0, "b": 2}, ""),
    ("dwell_since_s", {f"n{i}": 1.0 for i in range(MAX_MAP_ENTRIES)}, ""),
    ("dwell_since_s", {f"n{i}": 1.0 for i in range(MAX_MAP_ENTRIES + 1)},
     "dwell_since_s must be a mapping of <= 64 names to numbers (found {'n0': 1.0, 'n1': 1.0, 'n2': 1.0, 'n3...)"),
    ("dwell_since_s", [1.0], "dwell_since_s must be a mapping of <= 64 names to numbers (found [1.0])"),
    ("dwell_ref", {"a": NAN}, "dwell_ref must map names to finite numbers ('a' does not) (found {'a': nan})"),
    ("dwell_ref", {"a": "1"}, "dwell_ref must map names to finite numbers ('a' does not) (found {'a': '1'})"),
    ("dwell_ref", {"x" * 64: 1.0}, ""),
    ("dwell_ref", {"x" * 65: 1.0},
     f"dwell_ref must map names to finite numbers ({'x' * 64!r} does not) "
     "(found {'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...)"),
    ("signing_streams", {"255/190/0": 0, "1/1/1": MAX_SIGNING_TIMESTAMP}, ""),
    ("signing_streams", {f"1/1/{i}": 1 for i in range(MAX_MAP_ENTRIES + 1)},
     "signing_streams must be a mapping of <= 64 streams to timestamps "
     "(found {'1/1/0': 1, '1/1/1': 1, '1/1/2': 1, ...)"),
    ("signing_streams", {f"1/1/{i}": 1 for i in range(MAX_MAP_ENTRIES)}, ""),
    ("signing_streams", {"9" * 70: 1},
     f"signing_streams must map 'system/component/link' to 48-bit timestamps ({'9' * 64!r} does not) "
     "(found {'99999999999999999999999999999999999...)"),
    ("launch_s", "x" * 38, f"launch_s must be a number (NaN when unknown) (found {'x' * 38!r})"),  # 40 characters
    ("launch_s", "x" * 39,
     "launch_s must be a number (NaN when unknown) (found 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...)"),
    ("signing_streams", "1/1/1", "signing_streams must be a mapping of <= 64 streams to timestamps (found '1/1/1')"),
    ("signing_streams", {"1/1/1": MAX_SIGNING_TIMESTAMP + 1},
     "signing_streams must map 'system/component/link' to 48-bit timestamps ('1/1/1' does not) "
     "(found {'1/1/1': 281474976710656})"),
    ("signing_streams", {"1/1/1": -1},
     "signing_streams must map 'system/component/link' to 48-bit timestamps ('1/1/1' does not) (found {'1/1/1': -1})"),
    ("signing_streams", {"1/1/1": 1.0},
     "signing_streams must map 'system/component/link' to 48-bit timestamps ('1/1/1' does not) (found {'1/1/1': 1.0})"),
    ("signing_streams", {"256/1/1": 1},
     "signing_streams must map 'system/component/link' to 48-bit timestamps ('256/1/1' does not) "
     "(found {'256/1/1': 1})"),
    ("signing_streams", {"0255/1/1": 1},
     "signing_streams must map 'system/component/link' to 48-bit timestamps ('0255/1/1' does not) "
     "(found {'0255/1/1': 1})"),
    ("signing_streams", {"1/1": 1},
     "signing_streams must map 'system/component/link' to 48-bit timestamps ('1/1' does not) (found {'1/1': 1})"),
    ("signing_streams", {"1/1/1/1": 1},
     "signing_streams must map 'system/component/link' to 48-bit timestamps ('1/1/1/1' does not) "
     "(found {'1/1/1/1': 1})"),
    ("signing_streams", {"a/1/1": 1},
     "signing_streams must map 'system/component/link' to 48-bit timestamps ('a/1/1' does not) "
     "(found {'a/1/1': 1})"),
    ("signing_streams", {1: 1},
     "signing_streams must map 'system/component/link' to 48-bit timestamps ('1' does not) (found {1: 1})"),
    ("signing_timestamp", 0, ""), ("signing_timestamp", MAX_SIGNING_TIMESTAMP, ""),
    ("signing_timestamp", MAX_SIGNING_TIMESTAMP + 1, "signing_timestamp must be a 48-bit timestamp "
                                                     "(found 281474976710656)"),
    ("signing_timestamp", -1, "signing_timestamp must be a 48-bit timestamp (found -1)"),
    ("signing_timestamp", 1.0, "signing_timestamp must be a 48-bit timestamp (found 1.0)"),
]


@pytest.mark.parametrize("name, value, problem", FIELDS, ids=[f"{row[0]}-{row[2] or 'valid'}"[:60] for row in FIELDS])
def test_each_field_is_checked_at_its_limits_and_a_problem_names_the_field_and_what_was_found(name, value, problem):
    assert latch_problems({name: value}) == ([problem] if problem else [])


def test_unknown_keys_are_ignored_and_missing_ones_take_their_defaults():
    assert latch_problems({"a_newer_builds_field": object()}) == []
    assert latches_from_dict({"cutdown_attempts": 2, "a_newer_builds_field": 1}) == Latches(cutdown_attempts=2)


def test_every_problem_of_a_record_is_listed_and_loading_it_names_them_all():
    data = {"release_fired": "yes", "phase": 9, "launch_s": 1.0}
    problems = latch_problems(data)
    assert problems == ["phase must be a phase number (0..5) (found 9)",
                        "release_fired must be true or false (found 'yes')"]
    with pytest.raises(ValueError, match="^phase must be .* \\(found 9\\); release_fired must be"):
        latches_from_dict(data)


def test_a_loaded_record_owns_its_mappings():
    data = {"dwell_since_s": {"a": 1.0}, "dwell_ref": {"a": 2.0}, "signing_streams": {"1/1/1": 5}}
    latches = latches_from_dict(data)
    assert (latches.dwell_since_s, latches.dwell_ref, latches.signing_streams) == ({"a": 1.0}, {"a": 2.0},
                                                                                  {"1/1/1": 5})
    latches.dwell_since_s["b"] = 3.0
    latches.dwell_ref["b"] = 3.0
    latches.signing_streams["2/2/2"] = 1
    assert data == {"dwell_since_s": {"a": 1.0}, "dwell_ref": {"a": 2.0}, "signing_streams": {"1/1/1": 5}}


# ----------------------------------------------------------------------------------------------- merge rules

def test_no_copy_merges_to_a_new_record():
    assert merge_latches([]) == Latches()


def test_one_copy_merges_to_itself_and_the_merge_owns_its_mappings():
    record = Latches(phase=int(Phase.FLOAT), launch_s=5.0, dwell_since_s={"a": 1.0}, dwell_ref={"a": 2.0},
                     signing_streams={"1/1/1": 9})
    merged = merge_latches([record])
    assert merged == record
    merged.dwell_since_s["b"] = 1.0
    merged.dwell_ref["b"] = 1.0
    merged.signing_streams["2/2/2"] = 1
    assert record.dwell_since_s == {"a": 1.0} and record.dwell_ref == {"a": 2.0}
    assert record.signing_streams == {"1/1/1": 9}


def test_the_newest_copy_gives_what_no_rule_merges():
    newest = Latches(release_reason="", flight_id="f", boot_id="b2", since_boot_s=3.0, met_s=50.0,
                     dwell_since_s={"new": 1.0})
    older = Latches(flight_id="f", boot_id="b1", since_boot_s=9.0, met_s=40.0, dwell_since_s={"old": 1.0})
    merged = merge_latches([newest, older])
    assert (merged.boot_id, merged.since_boot_s, merged.met_s, merged.dwell_since_s) == ("b2", 3.0, 50.0,
                                                                                         {"new": 1.0})


def test_a_later_mission_clock_record_in_an_older_copy_wins_with_its_boot():
    merged = merge_latches([Latches(met_s=40.0, boot_id="b1", since_boot_s=1.0),
                            Latches(met_s=50.0, boot_id="b2", since_boot_s=2.0)])
    assert (merged.met_s, merged.boot_id, merged.since_boot_s) == (50.0, "b2", 2.0)


def test_an_equal_mission_clock_keeps_the_newest_copys_boot():
    merged = merge_latches([Latches(met_s=50.0, boot_id="b1", since_boot_s=1.0),
                            Latches(met_s=50.0, boot_id="b2", since_boot_s=2.0)])
    assert (merged.boot_id, merged.since_boot_s) == ("b1", 1.0)


@pytest.mark.parametrize("mine, theirs, merged", [((10.0, 5.0), (20.0, 8.0), (20.0, 8.0)),
                                                  ((20.0, 8.0), (10.0, 5.0), (20.0, 8.0)),
                                                  ((NAN, NAN), (10.0, 5.0), (10.0, 5.0)),
                                                  ((10.0, 5.0), (NAN, NAN), (10.0, 5.0)),
                                                  ((10.0, 5.0), (11.0, 5.0), (10.0, 5.0))])
def test_the_utc_anchor_taken_latest_in_mission_time_wins(mine, theirs, merged):
    records = [Latches(utc_anchor_s=mine[0], utc_anchor_met_s=mine[1]),
               Latches(utc_anchor_s=theirs[0], utc_anchor_met_s=theirs[1])]
    result = merge_latches(records)
    assert (result.utc_anchor_s, result.utc_anchor_met_s) == pytest.approx(merged, nan_ok=True)


def test_a_termination_any_copy_knows_is_kept_with_its_stage_and_times():
    older = Latches(phase=int(Phase.TERMINATION), termination_fired=True, termination_reason="ceiling",
                    termination_s=10.0, termination_stage=Stage.WAIT, termination_stage_s=12.0, cutdown_commit_s=11.0,
                    cutdown_attempts=1)
    merged = merge_latches([Latches(phase=int(Phase.FLOAT)), older])
    assert (merged.termination_fired, merged.termination_reason, merged.termination_s, merged.termination_stage,
            merged.termination_stage_s, merged.cutdown_commit_s, merged.cutdown_attempts, merged.phase) == (
        True, "ceiling", 10.0, Stage.WAIT, 12.0, 11.0, 1, int(Phase.TERMINATION))


def test_the_newest_copys_termination_is_not_replaced_by_an_older_one():
    newest = Latches(termination_fired=True, termination_reason="ground", termination_stage=Stage.DONE,
                     phase=int(Phase.DESCENT))
    older = Latches(termination_fired=True, termination_reason="ceiling", termination_stage=Stage.FIRE)
    merged = merge_latches([newest, older])
    assert (merged.termination_reason, merged.termination_stage, merged.phase) == ("ground", Stage.DONE,
                                                                                  int(Phase.DESCENT))


@pytest.mark.parametrize("phase", [Phase.TERMINATION, Phase.DESCENT, Phase.LANDED])
def test_a_termination_keeps_a_phase_after_it(phase):
    merged = merge_latches([Latches(phase=int(phase), termination_fired=True, termination_stage=Stage.DONE)])
    assert merged.phase == int(phase)


def test_a_termination_without_a_stage_resumes_arming():
    merged = merge_latches([Latches(phase=int(Phase.FLOAT)), Latches(termination_fired=True)])
    assert merged.termination_stage == Stage.ARM and merged.phase == int(Phase.TERMINATION)


@pytest.mark.parametrize("fact", [dict(launch_s=5.0), dict(release_fired=True)])
def test_a_launch_or_a_release_moves_a_preflight_record_to_ascent(fact):
    assert merge_latches([Latches(), Latches(**fact)]).phase == int(Phase.ASCENT)


def test_a_record_with_neither_stays_in_preflight():
    assert merge_latches([Latches(), Latches()]).phase == int(Phase.PREFLIGHT)


def test_facts_set_once_come_as_a_group_from_the_copy_that_has_them():
    older = Latches(launch_s=5.0, launch_utc_s=1e9, launch_latitude_deg=1.0, launch_longitude_deg=2.0,
                    launch_altitude_m=3.0, release_fired_s=7.0, release_reason="go", flight_id="abc")
    merged = merge_latches([Latches(phase=int(Phase.ASCENT)), older])
    assert (merged.launch_s, merged.launch_utc_s, merged.launch_latitude_deg, merged.launch_longitude_deg,
            merged.launch_altitude_m, merged.release_fired_s, merged.release_reason, merged.flight_id) == (
        5.0, 1e9, 1.0, 2.0, 3.0, 7.0, "go", "abc")
    newest = Latches(launch_s=6.0, flight_id="new")
    assert (merge_latches([newest, older]).launch_s, merge_latches([newest, older]).flight_id) == (6.0, "new")


@pytest.mark.parametrize("stamp", [0, 1])
def test_a_stream_only_an_older_copy_knows_is_kept_from_timestamp_0(stamp):
    merged = merge_latches([Latches(signing_streams={"1/1/1": 5}), Latches(signing_streams={"2/2/2": stamp})])
    assert merged.signing_streams == {"1/1/1": 5, "2/2/2": stamp}


def test_counts_take_the_larger_and_an_unknown_maximum_altitude_takes_the_known_one():
    merged = merge_latches([Latches(cutdown_attempts=1, max_altitude_m=NAN, ballast_used_kg=2.0, starts=3),
                            Latches(cutdown_attempts=2, max_altitude_m=30000.0, ballast_used_kg=1.0, starts=4)])
    assert (merged.cutdown_attempts, merged.max_altitude_m, merged.ballast_used_kg, merged.starts) == (
        2, 30000.0, 2.0, 4)
    assert math.isnan(merge_latches([Latches(max_altitude_m=NAN), Latches(max_altitude_m=NAN)]).max_altitude_m)
    assert merge_latches([Latches(max_altitude_m=30000.0), Latches(max_altitude_m=NAN)]).max_altitude_m == 30000.0


# ----------------------------------------------------------------------------------------------- properties

EVER_TRUE = ("preflight_override", "release_fired", "release_burn_confirmed", "separation_confirmed",
             "separation_timed_out", "termination_fired", "ballast_dump_started")
NEVER_LESS = ("cutdown_attempts", "cutdown_attempt_limit", "ballast_used_kg", "max_altitude_m", "starts",
              "signing_timestamp")
maybe_time = st.one_of(st.just(NAN), st.floats(0.0, 1e6))


@st.composite
def records(draw):
    values = {name: draw(st.booleans()) for name in EVER_TRUE}
    values.update(cutdown_attempts=draw(st.integers(0, 5)), cutdown_attempt_limit=draw(st.integers(0, 5)),
                  ballast_used_kg=draw(st.floats(0.0, 20.0)), max_altitude_m=draw(maybe_time),
                  starts=draw(st.integers(0, 50)), signing_timestamp=draw(st.integers(0, 10 ** 9)),
                  phase=int(draw(st.sampled_from(list(Phase)))), launch_s=draw(maybe_time),
                  release_fired_s=draw(maybe_time), met_s=draw(st.floats(0.0, 1e6)),
                  utc_anchor_met_s=draw(maybe_time), utc_anchor_s=draw(st.floats(1.6e9, 1.8e9)),
                  flight_id=draw(st.sampled_from(["", "f1"])),
                  termination_reason=draw(st.sampled_from(["", "ceiling"])),
                  termination_stage=draw(st.sampled_from(list(Stage.ALL))),
                  signing_streams=draw(st.dictionaries(st.sampled_from(["1/1/1", "2/1/1", "255/190/0"]),
                                                       st.integers(0, 10 ** 6), max_size=3)))
    return Latches(**values)


@settings(max_examples=150, deadline=None)
@given(st.lists(records(), min_size=1, max_size=4))
def test_merging_copies_never_loses_a_fact_any_copy_holds(copies):
    merged = merge_latches(copies)
    for name in EVER_TRUE:
        assert getattr(merged, name) == any(getattr(copy, name) for copy in copies), name
    for name in NEVER_LESS:
        known = [getattr(copy, name) for copy in copies if getattr(copy, name) == getattr(copy, name)]
        value = getattr(merged, name)
        assert (value == max(known)) if known else math.isnan(value), name
    for copy in copies:
        for stream, stamp in copy.signing_streams.items():
            assert merged.signing_streams[stream] >= stamp
    assert set(merged.signing_streams) == {stream for copy in copies for stream in copy.signing_streams}
    assert merged.met_s == max(copy.met_s for copy in copies)
    if any(not math.isnan(copy.launch_s) for copy in copies):
        assert not math.isnan(merged.launch_s)
    if any(not math.isnan(copy.utc_anchor_met_s) for copy in copies):
        assert merged.utc_anchor_met_s == max(c.utc_anchor_met_s for c in copies if not math.isnan(c.utc_anchor_met_s))
    if merged.termination_fired:
        assert merged.termination_stage and merged.phase in (Phase.TERMINATION, Phase.DESCENT, Phase.LANDED)
    if merged.release_fired or not math.isnan(merged.launch_s):
        assert merged.phase != Phase.PREFLIGHT
    if any(copy.flight_id for copy in copies):
        assert merged.flight_id


@settings(max_examples=60, deadline=None)
@given(st.lists(records(), min_size=1, max_size=3))
def test_merging_a_merge_with_its_copies_again_changes_nothing(copies):
    merged = merge_latches(copies)
    again = merge_latches([merged, *copies])
    assert _same(dataclasses.asdict(again), dataclasses.asdict(merged))


def _same(a: dict, b: dict) -> bool:
    return all(a[k] == b[k] or (isinstance(a[k], float) and math.isnan(a[k]) and math.isnan(b[k])) for k in a)
