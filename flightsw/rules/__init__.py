"""The flight rules: pure functions of the flight state, the parameters and the time.

Every rule has the form `rule(state, params, now_s[, mission]) -> decision` where the decision is a frozen
dataclass.  Rules never touch hardware, never log and never modify the state they are given; the glue
(`flightsw.flightlogic`) turns decisions into actuator calls and latch changes.  That keeps every rule
testable from a table of states.

Conditions that must hold for a while before they count ("dwell") keep their start time in
`state.dwell_since_s` (and, for conditions about a change, a reference value in `state.dwell_ref`).  A rule
reads those and returns `DwellUpdate` records; the glue writes them back with `apply_dwells`.

Modules (each declares its parameters in a `*_PARAMS` tuple):

* `flightsw.rules.phases` — the phase machine and the ground's DO_SET_MODE permissions,
* `flightsw.rules.termination` — when to terminate and the cutdown sequence,
* `flightsw.rules.release` — launch-commit criteria and the ARM/FIRE release logic,
* `flightsw.rules.altitude` — the float altitude controller.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, NamedTuple

NAN = math.nan


class DwellUpdate(NamedTuple):  # immutable, and cheaper to build than a frozen dataclass
    """New start time (flight clock, s; NaN: condition not holding) and reference value of a named condition."""

    name: str
    since_s: float
    ref: float = NAN


@dataclass(frozen=True, slots=True)
class Failure:
    """One failing check: a short machine name and a human-readable reason."""

    name: str
    reason: str


def finite(value: float, *more: float) -> bool:
    """True when every value is a finite number (anything that is not a number counts as not finite)."""
    try:
        if not more:  # the common call, without a loop over nothing
            return _isfinite(value)
        if not _isfinite(value):
            return False
        for other in more:
            if not _isfinite(other):
                return False
    except (TypeError, OverflowError):  # None, a string, an int beyond any float
        return False
    return True


_isfinite = math.isfinite


class _NotHoldingByName(dict):
    """Condition name -> its shared "does not hold" update, made on first use."""

    def __missing__(self, name: str) -> DwellUpdate:
        update = self[name] = DwellUpdate(name, NAN)
        return update


_NOT_HOLDING = _NotHoldingByName()


def not_holding(name: str) -> DwellUpdate:
    """The update that says condition ``name`` does not hold (one shared, immutable instance per name: most
    conditions do not hold most of the time)."""
    return _NOT_HOLDING[name]


class _NothingHolds(tuple):
    """A tuple of "does not hold" updates that also knows their names (made by :func:`nothing_holds`)."""

    names: frozenset[str]


def nothing_holds(names: Iterable[str]) -> tuple[DwellUpdate, ...]:
    """The updates that say none of the conditions ``names`` holds, as one tuple to share.  :func:`apply_dwells`
    applies it without going through the updates when the state remembers none of the names (most frames)."""
    updates = _NothingHolds(not_holding(name) for name in names)
    updates.names = frozenset(update.name for update in updates)
    return updates


def dwell(state, name: str, condition: bool, now_s: float, dwell_s: float) -> tuple[bool, DwellUpdate]:
    """Has ``condition`` held continuously for at least ``dwell_s`` seconds?

    :param state: the :class:`~flightsw.state.FlightState` whose ``dwell_since_s`` remembers when it began.
    :param name: the condition's key.
    :param condition: whether it holds this frame.
    :param now_s: flight-clock time, s.
    :param dwell_s: how long it must have held, s (0: at once).
    :returns: ``(held, update)``; apply ``update`` to remember the start for the next frame.
    """
    if not condition:
        return False, _NOT_HOLDING[name]
    since_s = state.dwell_since_s.get(name, NAN)
    if not finite(since_s) or since_s > now_s:
        since_s = now_s
    return now_s - since_s >= dwell_s, DwellUpdate(name, since_s)


def dwell_with_reference(state, name: str, condition: bool, value: float, tolerance: float, now_s: float,
                         dwell_s: float) -> tuple[bool, DwellUpdate]:
    """Like :func:`dwell`, for "``value`` has stayed within ``tolerance`` of where it was when the condition
    began".  If ``value`` leaves the band the dwell restarts with ``value`` as the new reference."""
    if not condition or not finite(value):
        return False, _NOT_HOLDING[name]
    since_s = state.dwell_since_s.get(name, NAN)
    ref = state.dwell_ref.get(name, NAN)
    if not finite(since_s, ref) or since_s > now_s or abs(value - ref) > tolerance:
        since_s, ref = now_s, value
    return now_s - since_s >= dwell_s, DwellUpdate(name, since_s, ref)


def apply_dwells(state, updates: Iterable[DwellUpdate]) -> bool:
    """Write dwell updates back into ``state`` (the glue calls this; rules never do).  Returns whether anything
    changed (a dwell began or ended: the journal keeps the starts)."""
    since_by_name, ref_by_name = state.dwell_since_s, state.dwell_ref
    if type(updates) is _NothingHolds and updates.names.isdisjoint(since_by_name) \
            and updates.names.isdisjoint(ref_by_name):
        return False  # none of these conditions holds, and the state remembers none of them
    changed = False
    for name, since_s, ref in updates:
        if since_s == since_s and finite(since_s):  # NaN (not holding, the common case) fails without a call
            if since_by_name.get(name) != since_s:
                since_by_name[name] = since_s
                changed = True
            if finite(ref):
                ref_by_name[name] = ref
            else:
                ref_by_name.pop(name, None)
        elif name in since_by_name or name in ref_by_name:
            since_by_name.pop(name, None)
            ref_by_name.pop(name, None)
            changed = True
    return changed


def clamp(value: float, low: float, high: float) -> float:
    """``max(low, min(high, value))`` (NaN gives ``high``), without the builtins' slower calls."""
    value = value if value < high else high
    return value if value > low else low
