"""What the kill test checks: the daemon's journal against the parent's own record of what happened.

The parent (``hil.killtest``) reads the journal with the flight software's own ``Journal(state_dir).load()``
(reading never writes), in two ways:

* :class:`JournalWatch` polls it while the child flies, and after every kill: latched facts never go backwards
  between two reads (phase, fired flags, attempts, ballast used, facts set once), no copy is ever rejected, and
  once one was found there is always one;
* :func:`check_latched_facts`, after every kill and before the next child starts, holds the journal the restart
  will resume from against :class:`Facts`, what the parent itself saw: release line activations (from the
  flight log, not the world), cutdown activations, a termination the daemon acknowledged, and the ballast the
  world lost.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from flightsw.journal import Journal, Restored
from flightsw.phase import Phase
from flightsw.state import Latches
from hil.killlog import FlightLog

#: The journal may lag the world's ballast by 1 s of flow (the daemon writes a running count at least once a
#: second) plus two frames: the once-a-second write is due at a frame boundary, and the count it writes is the
#: actuators' as of the frame before; the world snapshot is of the start of the frame the kill came in.
BALLAST_LAG_S = 1.0 + 2 * 0.05
BALLAST_TOLERANCE_KG = 1e-6  # numerical: the world integrates the flow in steps, the daemon by open time
_LATE_PHASES = (Phase.DESCENT, Phase.LANDED, Phase.TERMINATION)
_NEVER_REVERT = ("release_fired", "termination_fired", "separation_confirmed", "preflight_override",
                 "ballast_dump_started")
_NEVER_DECREASE = ("ballast_used_kg", "max_altitude_m", "cutdown_attempts", "cutdown_attempt_limit", "starts")
_SET_ONCE = ("flight_id", "launch_s", "release_fired_s", "termination_s", "termination_reason")


@dataclass(frozen=True)
class Facts:
    """What the parent knows happened, without asking the daemon."""

    release_activations: int  # release_fire line edges to active, from the flight log
    cutdown_activations: int  # the same for cutdown_fire
    termination_acknowledged: bool  # the daemon answered a terminate ACCEPTED or IN_PROGRESS
    ballast_dropped_kg: float  # ballast the world lost, from the dead process's world snapshot

    @classmethod
    def observe(cls, log: FlightLog, *, ballast_dropped_kg: float) -> "Facts":
        return cls(len(log.activations("release_fire")), len(log.activations("cutdown_fire")),
                   bool(log.acknowledged("terminate")), ballast_dropped_kg)


def check_latched_facts(restored: Restored, facts: Facts, *, flow_kgps: float) -> list[str]:
    """Problems with the journal a restart resumes from, given what the parent saw happen."""
    latches, problems = restored.latches, []
    if facts.release_activations and not latches.release_fired:
        problems.append("the release line was activated but the journal does not say release fired")
    if facts.release_activations > 1:
        problems.append(f"the release line was activated {facts.release_activations} times")
    if not facts.cutdown_activations <= latches.cutdown_attempts <= latches.cutdown_attempt_limit:
        problems.append(f"cutdown line activated {facts.cutdown_activations} times; journal: "
                        f"{latches.cutdown_attempts} attempts, limit {latches.cutdown_attempt_limit}")
    if facts.termination_acknowledged and not latches.termination_fired:
        problems.append("the daemon acknowledged a termination but the journal does not say terminated")
    allowed_kg = latches.ballast_used_kg + flow_kgps * BALLAST_LAG_S + BALLAST_TOLERANCE_KG
    if facts.ballast_dropped_kg > allowed_kg:
        problems.append(f"the world dropped {facts.ballast_dropped_kg:.4f} kg of ballast; the journal, written at "
                        f"{latches.met_s:.2f} s, counts {latches.ballast_used_kg:.4f} kg (+{BALLAST_LAG_S:g} s of "
                        "flow allowed)")
    return problems


def regressions(before: Latches, after: Latches) -> list[str]:
    """Latched facts that went backwards from one journal read to the next."""
    found = []
    if before.phase != Phase.PREFLIGHT and after.phase == Phase.PREFLIGHT or (
            before.phase in _LATE_PHASES and after.phase not in _LATE_PHASES):
        found.append(f"phase went back from {Phase(before.phase).name} to {Phase(after.phase).name}")
    found += [f"{name} reverted" for name in _NEVER_REVERT if getattr(before, name) and not getattr(after, name)]
    for name in _NEVER_DECREASE:
        old, new = getattr(before, name), getattr(after, name)
        if old == old and not new >= old:  # NaN before: anything goes
            found.append(f"{name} went back from {old} to {new}")
    for name in _SET_ONCE:
        old, new = getattr(before, name), getattr(after, name)
        if old == old and old not in ("", new):
            found.append(f"{name} changed from {old} to {new}")
    if before.termination_stage == "done" and after.cutdown_attempts > before.cutdown_attempts:
        found.append("a cutdown attempt after the separation was confirmed")
    return found


class JournalWatch:
    """Reads the daemon's journal (never writes it) and checks each read against the previous one."""

    def __init__(self, state_dir: Path) -> None:
        self.journal = Journal(Path(state_dir))
        self.last: Latches | None = None
        self.reads = 0
        self.problems: list[str] = []

    def read(self, *, label: str = "", require_found: bool = False) -> Restored:
        """Load the journal now and check it against the last read: no copy rejected, a copy found once one was
        (or ``require_found``), nothing gone backwards.  ``label`` prefixes the problems."""
        restored = self.journal.load()
        self.reads += 1
        found = []
        if restored.rejected:
            found.append(f"{restored.rejected} journal copies rejected: {'; '.join(restored.problems)}")
        if not restored.found:
            if self.last is not None or require_found:
                found.append(f"no journal copy found: {'; '.join(restored.problems)}")
        else:
            if self.last is not None:
                found += regressions(self.last, restored.latches)
            self.last = restored.latches
        self.problems += [f"{label}{problem}" for problem in found]
        return restored
