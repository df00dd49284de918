"""When the journal is written: the daemon's persist policy, in one place (the daemon and the bench tests of the
safety core run this same code).

* a latched fact that changed (``state.latches_dirty``): in the frame it changed -- and at once, before the line
  is driven, when a sequence commits a fire (:meth:`JournalKeeper.save_now`, the flight logic's ``persist``);
* a timer or a running count (``state.timers_dirty``: a dwell began or ended, ballast flowing through an open
  valve, a new maximum altitude): within :data:`TIMERS_PERSIST_INTERVAL_S`;
* everything else the record holds (mission time, the last time our ground station was heard, the signing
  streams): every :data:`flightsw.link.signing.PERSIST_INTERVAL_S`, and at once when ``extra_due`` says so (our
  signing timestamp jumped);
* a failing journal is tried again every :data:`PERSIST_RETRY_INTERVAL_S`, not every frame; its failures are
  reported (the first, then every 60th), and so is a write that reached only one copy of two.
"""

from __future__ import annotations

import math
from typing import Callable

from flightsw.journal import Journal
from flightsw.link.signing import PERSIST_INTERVAL_S

PERSIST_RETRY_INTERVAL_S = 1.0
TIMERS_PERSIST_INTERVAL_S = 1.0
REPORT_EVERY = 60  # after the first failure, every this many


class JournalKeeper:
    """Writes ``state.latches`` to ``journal`` by the policy above.

    :param record: ``record(now_s)`` brings the latches' record up to date just before each write (mission time,
        boot, timers kept elsewhere, signing).
    :param on_event: ``on_event(name, severity, text)`` for the failures to report.
    :param on_saved: called after a successful write (the signing clock notes what was stored).
    """

    def __init__(self, journal: Journal, state, *, record: Callable[[float], None],
                 on_event: Callable[[str, str, str], None], on_saved: Callable[[], None] | None = None) -> None:
        self.journal = journal
        self.state = state
        self._record = record
        self._on_event = on_event
        self._on_saved = on_saved
        self._last_periodic_s = -math.inf  # the first frame writes the record (a start is a fact too)
        self._last_timers_s = -math.inf
        self._last_attempt_s = -math.inf

    def tick(self, now_s: float, *, extra_due: bool = False) -> None:
        """The persist task: write when something is due."""
        state = self.state
        due = (state.latches_dirty or extra_due or now_s - self._last_periodic_s >= PERSIST_INTERVAL_S
               or state.timers_dirty and now_s - self._last_timers_s >= TIMERS_PERSIST_INTERVAL_S)
        if not due:
            return
        if self.journal.write_errors and now_s - self._last_attempt_s < PERSIST_RETRY_INTERVAL_S:
            return  # the disk is failing: try again once a second, not every frame
        self._last_attempt_s = self._last_periodic_s = self._last_timers_s = now_s
        self.save_now(now_s)

    def save_now(self, now_s: float) -> bool:
        """Write at once; False when no copy could be written (reported)."""
        self._record(now_s)
        journal = self.journal
        errors_before, degraded_before = journal.write_errors, journal.degraded_writes
        saved = journal.save(self.state.latches)
        if saved:
            self.state.latches_dirty = self.state.timers_dirty = False
            if self._on_saved is not None:
                self._on_saved()
        errors, degraded = journal.write_errors, journal.degraded_writes
        if errors > errors_before and (errors == 1 or errors % REPORT_EVERY == 0):
            self._on_event("journal_write_failed", "critical",
                           f"state journal NOT written ({errors} failures): {journal.last_error}")
        elif degraded > degraded_before and (degraded == 1 or degraded % REPORT_EVERY == 0):
            self._on_event("journal_degraded", "error",
                           f"state journal written to one copy of two: {journal.last_error}")
        return saved
