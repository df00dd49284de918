"""Pauses the kill test's child makes inside the flight software, so that its parent can kill it there.

Installed only in the killable child (``hil.killable``), never in ``flightsw``: each hook replaces a method on
its class in the child's own process.  At each pause the child writes one mark byte to its notify pipe and waits
for one byte on its resume pipe: the parent, waiting on the first, either kills it there or lets it go on.

* :func:`pause_journal_writes` — every write of a journal slot (``MirroredStore._write_slot`` of
  ``state-a.json`` / ``state-b.json``) from a simulated time on: half of them torn (``T``: part of the slot
  written, then the pause, then the whole slot), and a pause after slot a, before slot b (``J``);
* :func:`pause_latch_drive` — after ``FlightLogic._persist_now`` returns, the journal write that commits a
  release or a cutdown attempt, and before the firing line is driven (``L``);
* ``A``: just after the daemon acknowledged a ground termination, before the rest of its frame (the killable
  run makes this pause itself, where it hears the answer: ``--pause-ack``);
* :func:`drive_before_latch` — a deliberate defect for the test of the test: the release's FIRE line is driven
  *before* its latch is persisted, with a pause between the two (``D``).
"""

from __future__ import annotations

import os
import random
from typing import Callable

MARK_TORN = b"T"
MARK_BETWEEN_SLOTS = b"J"
MARK_LATCH = b"L"
MARK_DEFECT = b"D"
MARK_HALT = b"H"
MARK_ACK = b"A"
JOURNAL_SLOT_PREFIX = "state-"
DEFECTS = ("drive-before-latch",)


class Notifier:
    """Tells the parent where the child is (one byte on ``fd``) and, at a pause, waits until the parent lets it
    go on (one byte on ``resume_fd``; at once without one, or when the parent closed it).  ``seed`` seeds
    :attr:`rng` (where a slot write is torn)."""

    def __init__(self, fd: int | None, resume_fd: int | None, seed: int) -> None:
        self.fd = fd
        self.resume_fd = resume_fd
        self.rng = random.Random(seed)

    def mark(self, mark: bytes) -> None:
        if self.fd is not None:
            try:
                os.write(self.fd, mark)
            except OSError:
                pass

    def pause(self, mark: bytes) -> None:
        self.mark(mark)
        if self.fd is not None and self.resume_fd is not None:
            try:
                os.read(self.resume_fd, 1)  # b"" when the parent is gone: go on
            except OSError:
                pass


def pause_journal_writes(notifier: Notifier, now_s: Callable[[], float], from_s: float) -> None:
    """From simulated time ``from_s`` on, pause inside and between the journal's slot writes (see above)."""
    from flightsw.store import MirroredStore

    write_slot = MirroredStore._write_slot

    def paused_write_slot(store, path, payload: bytes) -> None:
        if now_s() < from_s or not path.name.startswith(JOURNAL_SLOT_PREFIX):
            return write_slot(store, path, payload)
        document_bytes = len(payload.rstrip())
        if notifier.rng.random() < 0.5 and document_bytes > 1 and path.exists():
            cut = notifier.rng.randrange(1, document_bytes)  # inside the header or the body: a torn slot
            fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
            try:
                os.pwrite(fd, payload[:cut], 0)
            finally:
                os.close(fd)
            notifier.pause(MARK_TORN)
        write_slot(store, path, payload)
        if path == store.paths[0]:
            notifier.pause(MARK_BETWEEN_SLOTS)

    MirroredStore._write_slot = paused_write_slot


def pause_latch_drive(notifier: Notifier) -> None:
    """Pause after the journal write that commits a fire, before the line is driven."""
    from flightsw.flightlogic import FlightLogic

    persist_now = FlightLogic._persist_now

    def paused_persist_now(logic) -> bool:
        persisted = persist_now(logic)
        notifier.pause(MARK_LATCH)
        return persisted

    FlightLogic._persist_now = paused_persist_now


def drive_before_latch(notifier: Notifier) -> None:
    """The defect: the release's FIRE line is driven first, then (after a pause) the latch is persisted."""
    from flightsw.flightlogic import FlightLogic

    apply_release = FlightLogic._apply_release

    def defective_apply_release(logic, old, new, commands, events, now_s: float, **options):
        if not (new.fired and not old.fired and any(command.kind == "fire" for command in commands)):
            return apply_release(logic, old, new, commands, events, now_s, **options)
        fired = logic.actuators.fire("release", logic.params["REL_BURN_S"], now_s, attempt=1)
        notifier.pause(MARK_DEFECT)
        applied = apply_release(logic, old, new, tuple(c for c in commands if c.kind != "fire"), events, now_s,
                                **options)
        logic._release_results["fire"] = fired
        if isinstance(applied, tuple):  # (persisted, results) in later versions of the flight logic
            applied[1]["fire"] = fired
        return applied

    FlightLogic._apply_release = defective_apply_release
