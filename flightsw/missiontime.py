"""Mission elapsed time: the one time base every decision of the flight software runs on.

Mission elapsed time (MET) starts at 0 when a flight's journal is first written and only ever moves forward.  It
is carried across restarts in the journal (:class:`flightsw.state.Latches`: ``met_s`` with the machine's
``boot_id`` and ``since_boot_s`` at the moment of writing), and time spent down counts as elapsed:

* a restart of the process within one boot of the machine (a crash, ``Restart=always``) knows the time between
  exactly, from the kernel's boot clock: MET resumes at ``met_s + (since_boot_now - since_boot_then)``;
* after a reboot (a brown-out) the time the board was off is not known; MET resumes at ``met_s`` plus the time
  since this boot began (a lower bound).  The rest is recovered from GPS: once the receiver gives a trusted UTC,
  and the journal holds a trusted UTC from before (``utc_anchor_s`` at ``utc_anchor_met_s``), the down time the
  mission clock missed is ``(utc_now - utc_anchor_s) - (met_now - utc_anchor_met_s)``; every mission time
  recorded before this start is moved back by it (:func:`rebase_latches`), which is the same for every timer as
  having counted it.  A correction is applied once per start, and only when plausible (positive, at most
  :data:`MAX_CORRECTION_S`).

The wall clock never enters: a board without a real-time clock boots in 1970 and steps to GPS or NTP time later,
and nothing notices.  The wall clock labels logs and feeds the outgoing signing timestamp; GPS UTC, when the
receiver has a 3-D fix, is the trusted UTC (it anchors the mission clock and the signing replay window).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from flightsw.state import Latches

MAX_CORRECTION_S = 86400.0  # a down time GPS says is longer than this is not believed
MIN_CORRECTION_S = 0.5  # smaller differences are rounding and fix latency, not down time
PLAUSIBLE_UTC_S = 1_577_836_800.0  # 2020-01-01: a receiver reporting earlier has no real time yet
TRUSTED_FIX_TYPE = 3

#: every Latches field holding a mission time of a past event (moved by :func:`rebase_latches`)
PAST_TIMES = ("met_s", "phase_since_s", "launch_s", "release_fired_s", "termination_s", "termination_stage_s",
              "cutdown_commit_s", "gcs_heard_s", "go_s", "utc_anchor_met_s")


@dataclass(frozen=True, slots=True)
class Resume:
    """Where the mission clock resumes at a start: ``met_s``, of which ``down_s`` was counted for the time since
    the last record, ``exact`` when that is known exactly (same boot) and ``correctable`` when GPS may correct it
    later (a reboot, with a trusted UTC in the journal)."""

    met_s: float
    down_s: float
    exact: bool
    correctable: bool

    def describe(self) -> str:
        if self.exact:
            return f"mission time resumed at {self.met_s:.1f} s ({self.down_s:.1f} s since the last record)"
        return (f"mission time resumed at {self.met_s:.1f} s after a reboot (at least {self.down_s:.1f} s down"
                f"{'; GPS time will tell the rest' if self.correctable else '; no GPS time recorded to tell more'})")


def resume(latches: Latches, *, found: bool, boot_id: str, since_boot_s: float) -> Resume:
    """Where mission time resumes, from the journal's record (``found``: the journal held one) and this boot."""
    if not found:
        return Resume(0.0, 0.0, True, False)
    met_s = latches.met_s if math.isfinite(latches.met_s) and latches.met_s > 0.0 else 0.0
    since_boot_s = since_boot_s if math.isfinite(since_boot_s) and since_boot_s > 0.0 else 0.0
    then_s = latches.since_boot_s
    if latches.boot_id == boot_id and math.isfinite(then_s) and since_boot_s >= then_s:
        return Resume(met_s + (since_boot_s - then_s), since_boot_s - then_s, True, False)
    correctable = math.isfinite(latches.utc_anchor_s) and math.isfinite(latches.utc_anchor_met_s)
    return Resume(met_s + since_boot_s, since_boot_s, False, correctable)


def trusted_utc_s(estimate) -> float:
    """UTC from the receiver when it is trustworthy (a 3-D fix, fresh, after 2020), else NaN."""
    utc_s = estimate.gps_utc_time_s
    if estimate.position_valid and estimate.fix_type >= TRUSTED_FIX_TYPE and utc_s > PLAUSIBLE_UTC_S:
        return utc_s
    return math.nan


def missed_down_time_s(anchor_utc_s: float, anchor_met_s: float, utc_now_s: float, met_now_s: float) -> float:
    """The down time the mission clock did not count, from a trusted UTC before a reboot and one now; 0 when
    there is none, or when the difference is not plausible (negative, tiny, or over :data:`MAX_CORRECTION_S`)."""
    missed_s = (utc_now_s - anchor_utc_s) - (met_now_s - anchor_met_s)
    if not math.isfinite(missed_s) or not MIN_CORRECTION_S <= missed_s <= MAX_CORRECTION_S:
        return 0.0
    return missed_s


def rebase_latches(latches: Latches, before_s: float, shift_s: float) -> None:
    """Move every mission time in ``latches`` at or before ``before_s`` back by ``shift_s`` seconds (the glue's
    one mutation for a correction; the daemon also moves the copies it keeps outside the latches)."""
    for name in PAST_TIMES:
        value = getattr(latches, name)
        if math.isfinite(value) and value <= before_s:
            setattr(latches, name, value - shift_s)
    for name, since_s in list(latches.dwell_since_s.items()):
        if since_s <= before_s:
            latches.dwell_since_s[name] = since_s - shift_s
