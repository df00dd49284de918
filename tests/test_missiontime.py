"""Mission elapsed time across restarts (issue 13): a restart in the same boot resumes exactly, a reboot resumes at
a lower bound that only a trusted UTC from before and after can correct, and a correction moves every time of a
past event by the same amount.  The wall clock never enters."""

from __future__ import annotations

import dataclasses
import math

import pytest

from flightsw.missiontime import (MAX_CORRECTION_S, MIN_CORRECTION_S, PAST_TIMES, PLAUSIBLE_UTC_S, Resume,
                                  missed_down_time_s, rebase_latches, resume, trusted_utc_s)
from flightsw.state import Estimate, Latches

NAN = math.nan
UTC = 1_718_956_800.0  # 2024-06-21
#: the journal's last record: written at mission time 1000 s, 400 s into boot "b1"
RECORD = Latches(met_s=1000.0, boot_id="b1", since_boot_s=400.0)
ANCHORED = dataclasses.replace(RECORD, utc_anchor_s=UTC, utc_anchor_met_s=990.0)

RESUME_CASES = [
    # (why, record, found, boot id now, since boot now, expected Resume)
    ("a new flight starts at 0", RECORD, False, "b1", 900.0, Resume(0.0, 0.0, True, False)),
    ("same boot: the time between is known exactly", RECORD, True, "b1", 460.0, Resume(1060.0, 60.0, True, False)),
    ("same boot, at once", RECORD, True, "b1", 400.0, Resume(1000.0, 0.0, True, False)),
    ("a reboot: at least the time since this boot", RECORD, True, "b2", 35.0, Resume(1035.0, 35.0, False, False)),
    ("a reboot with a trusted UTC recorded: GPS may tell the rest", ANCHORED, True, "b2", 35.0,
     Resume(1035.0, 35.0, False, True)),
    ("a UTC anchor without its mission time is no anchor", dataclasses.replace(ANCHORED, utc_anchor_met_s=NAN),
     True, "b2", 35.0, Resume(1035.0, 35.0, False, False)),
    ("the same boot id with a boot clock that went back is taken as a reboot", RECORD, True, "b1", 300.0,
     Resume(1300.0, 300.0, False, False)),
    ("the same boot id without the boot clock of the record", dataclasses.replace(RECORD, since_boot_s=NAN), True,
     "b1", 300.0, Resume(1300.0, 300.0, False, False)),
    ("a record without a mission time counts from 0", dataclasses.replace(RECORD, met_s=NAN), True, "b2", 35.0,
     Resume(35.0, 35.0, False, False)),
    ("a negative mission time counts from 0", dataclasses.replace(RECORD, met_s=-50.0), True, "b2", 35.0,
     Resume(35.0, 35.0, False, False)),
    ("a boot clock that can not be read adds nothing", RECORD, True, "b2", NAN, Resume(1000.0, 0.0, False, False)),
    ("a negative boot clock adds nothing", RECORD, True, "b2", -5.0, Resume(1000.0, 0.0, False, False)),
]


@pytest.mark.parametrize("why, record, found, boot_id, since_boot_s, expected", RESUME_CASES,
                         ids=[case[0] for case in RESUME_CASES])
def test_resume(why, record, found, boot_id, since_boot_s, expected):
    assert resume(record, found=found, boot_id=boot_id, since_boot_s=since_boot_s) == expected


def test_resume_never_goes_back_whatever_the_boot_clock_says():
    for since_boot_s in (0.0, 1.0, 399.0, 400.0, 401.0, 1e6):
        for boot_id in ("b1", "b2"):
            assert resume(RECORD, found=True, boot_id=boot_id, since_boot_s=since_boot_s).met_s >= RECORD.met_s


@pytest.mark.parametrize("resumed, words", [
    (Resume(1060.0, 60.0, True, False), "resumed at 1060.0 s (60.0 s since the last record)"),
    (Resume(1035.0, 35.0, False, True), "after a reboot (at least 35.0 s down; GPS time will tell the rest)"),
    (Resume(1035.0, 35.0, False, False), "no GPS time recorded to tell more"),
])
def test_resume_describes_itself(resumed, words):
    assert words in resumed.describe()


# ------------------------------------------------------------------ the down time GPS tells


MISSED_CASES = [
    # (why, anchor UTC, anchor MET, UTC now, MET now, missed)
    ("300 s down the mission clock did not count", UTC, 990.0, UTC + 370.0, 1060.0, 300.0),
    ("nothing missed", UTC, 990.0, UTC + 70.0, 1060.0, 0.0),
    ("negative: the mission clock ran ahead of UTC", UTC, 990.0, UTC + 60.0, 1060.0, 0.0),
    ("tiny: fix latency, not down time", UTC, 990.0, UTC + 70.4, 1060.0, 0.0),
    ("the smallest correction", UTC, 990.0, UTC + 70.0 + MIN_CORRECTION_S, 1060.0, MIN_CORRECTION_S),
    ("the largest correction", UTC, 990.0, UTC + 70.0 + MAX_CORRECTION_S, 1060.0, MAX_CORRECTION_S),
    ("over a day is not believed", UTC, 990.0, UTC + 70.0 + MAX_CORRECTION_S + 1.0, 1060.0, 0.0),
    ("a year (a receiver's bad week number)", UTC, 990.0, UTC + 365 * 86400.0, 1060.0, 0.0),
    ("no anchor", NAN, NAN, UTC + 370.0, 1060.0, 0.0),
    ("no UTC now", UTC, 990.0, NAN, 1060.0, 0.0),
    ("an infinite time", UTC, 990.0, math.inf, 1060.0, 0.0),
]


@pytest.mark.parametrize("why, anchor_utc_s, anchor_met_s, utc_now_s, met_now_s, missed_s", MISSED_CASES,
                         ids=[case[0] for case in MISSED_CASES])
def test_missed_down_time(why, anchor_utc_s, anchor_met_s, utc_now_s, met_now_s, missed_s):
    assert missed_down_time_s(anchor_utc_s, anchor_met_s, utc_now_s, met_now_s) == pytest.approx(missed_s)


# ------------------------------------------------------------------ moving the past by a correction


def every_time_at(value_s: float) -> Latches:
    return Latches(**{name: value_s for name in PAST_TIMES}, dwell_since_s={"ceiling": value_s},
                   launch_utc_s=UTC, utc_anchor_s=UTC, since_boot_s=value_s, ballast_open_until_s=value_s)


@pytest.mark.parametrize("name", PAST_TIMES)
@pytest.mark.parametrize("value_s, moved", [(500.0, True), (1035.0, True), (1035.5, False), (2000.0, False)])
def test_rebase_moves_only_times_at_or_before_the_start(name, value_s, moved):
    latches = Latches(**{name: value_s})
    rebase_latches(latches, 1035.0, 300.0)
    assert getattr(latches, name) == (value_s - 300.0 if moved else value_s)


def test_rebase_moves_every_past_time_and_dwell_start_and_nothing_else():
    latches = every_time_at(1000.0)
    latches.dwell_since_s["battery"] = 1100.0  # began after the start: already on the corrected time line
    rebase_latches(latches, 1035.0, 300.0)
    for name in PAST_TIMES:
        assert getattr(latches, name) == 700.0, name
    assert latches.dwell_since_s == {"ceiling": 700.0, "battery": 1100.0}
    # UTC labels, the boot clock and the valve's deadline are not past mission times
    assert (latches.launch_utc_s, latches.utc_anchor_s) == (UTC, UTC)
    assert (latches.since_boot_s, latches.ballast_open_until_s) == (1000.0, 1000.0)


def test_rebase_leaves_unknown_times_unknown():
    latches = Latches()
    rebase_latches(latches, 1035.0, 300.0)
    assert all(math.isnan(getattr(latches, name)) for name in PAST_TIMES if name != "met_s")
    assert latches.met_s == -300.0  # a known time, 0 too, moves like any other


def test_every_mission_time_of_a_past_event_is_rebased():
    """A new timer in the journal must be moved by a correction, or a reboot would stretch it."""
    not_past_mission_times = {"since_boot_s", "utc_anchor_s", "launch_utc_s", "ballast_open_until_s"}
    times = {field.name for field in dataclasses.fields(Latches) if field.name.endswith("_s")
             and field.type == "float"}
    assert times - not_past_mission_times == set(PAST_TIMES)


# ------------------------------------------------------------------ which UTC is trusted


def fix(**overrides) -> Estimate:
    return dataclasses.replace(Estimate(position_valid=True, fix_type=3, gps_utc_time_s=UTC), **overrides)


TRUST_CASES = [
    ("a valid 3-D fix in a plausible year", fix(), UTC),
    ("a 3-D fix with dead reckoning", fix(fix_type=4), UTC),
    ("a 2-D fix", fix(fix_type=2), NAN),
    ("no fix", fix(fix_type=0), NAN),
    ("a position that is not valid (stale)", fix(position_valid=False), NAN),
    ("1970: the receiver has no time yet", fix(gps_utc_time_s=315_964_800.0), NAN),
    ("2020-01-01 itself is not after it", fix(gps_utc_time_s=PLAUSIBLE_UTC_S), NAN),
    ("just after 2020-01-01", fix(gps_utc_time_s=PLAUSIBLE_UTC_S + 1.0), PLAUSIBLE_UTC_S + 1.0),
    ("no time in the fix", fix(gps_utc_time_s=NAN), NAN),
]


@pytest.mark.parametrize("why, estimate, expected", TRUST_CASES, ids=[case[0] for case in TRUST_CASES])
def test_trusted_utc(why, estimate, expected):
    result = trusted_utc_s(estimate)
    assert result == expected or (math.isnan(result) and math.isnan(expected))
