"""Mission time at its edges: a record or a boot clock of less than a second still counts, a dwell that began at
the very start is moved with the other past times, and what the operator is told after a reboot with no GPS time
recorded.  test_missiontime.py has the nominal cases."""

from __future__ import annotations

import dataclasses

import pytest

from flightsw.missiontime import Resume, rebase_latches, resume
from flightsw.state import Latches

RECORD = Latches(met_s=0.5, boot_id="b1", since_boot_s=0.25)


def test_a_mission_time_of_half_a_second_is_resumed_from():
    assert resume(RECORD, found=True, boot_id="b2", since_boot_s=0.5) == Resume(1.0, 0.5, False, False)


def test_a_boot_clock_of_half_a_second_is_counted_in_the_same_boot():
    assert resume(RECORD, found=True, boot_id="b1", since_boot_s=0.75) == Resume(1.0, 0.5, True, False)


def test_a_dwell_that_began_exactly_at_the_start_is_moved_with_the_past_times():
    latches = dataclasses.replace(RECORD, dwell_since_s={"at_start": 100.0, "before": 99.0, "after": 100.5})
    rebase_latches(latches, 100.0, 30.0)
    assert latches.dwell_since_s == {"at_start": 70.0, "before": 69.0, "after": 100.5}


@pytest.mark.parametrize("correctable, told", [
    (False, "mission time resumed at 35.0 s after a reboot (at least 35.0 s down; no GPS time recorded to tell "
            "more)"),
    (True, "mission time resumed at 35.0 s after a reboot (at least 35.0 s down; GPS time will tell the rest)"),
])
def test_a_reboot_is_described_with_what_gps_time_may_tell(correctable, told):
    assert Resume(35.0, 35.0, False, correctable).describe() == told
