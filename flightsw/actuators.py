"""The actuator manager: the only code that drives output lines.

Valves (``"ballast"``, ``"vent"``)
    :meth:`ActuatorManager.pulse_valve` opens a valve for a bounded time.  A pulse shorter than ``ACT_MIN_PULSE_S``
    is lengthened to it, a longer one than ``ACT_MAX_PULSE_S`` is refused; a pulse on an open valve moves its
    deadline to the later of the two.  :meth:`~ActuatorManager.update` closes valves at their deadline every frame,
    and each activation also arms the line's own backstop with the remaining time plus ``ACT_BACKSTOP_S``.
    Ballast used is credited continuously: the open time so far times ``BAL_FLOW_KGPS``, every frame
    (:attr:`~ActuatorManager.ballast_used_kg`), so the journal never lags an open valve by more than it persists.

Chains (``"release"``, ``"cutdown"``)
    Two lines each: ARM (a level, held with a ``ACT_ARM_HOLD_S`` backstop re-asserted every half of it, so the arm
    drops by itself if the frame loop stops) and FIRE (a burn wire, never activated without a finite backstop).
    :meth:`~ActuatorManager.fire` needs the chain armed for at least ``ACT_ARM_SETTLE_S`` and a later frame, with
    the ARM line reading back active (:meth:`~ActuatorManager.fire_ready` says why not); it burns for ``burn_s``
    (capped at ``ACT_BURN_MAX_S``, never refused for its length) then drops FIRE, then ARM.  Each firing carries an
    attempt number chosen by the sequence that latched it: an attempt that started burning is never started again,
    the release chain burns at most once, ever (``release_already_fired`` comes from the journal), and no cutdown
    attempt beyond ``ACT_CUT_MAX_TRY`` is started.  The answer is a :class:`FireResult`: a write error with the
    line reading back inactive is ``WRITE_FAILED`` (nothing burned: the caller may try the same attempt again); a
    write error with the line active or unreadable counts as started (it may be burning, and its deadline holds).

Termination heartbeat
    When the board has ``termination_heartbeat``, :meth:`~ActuatorManager.update` toggles it at
    ``ACT_HB_TOGGLE_HZ`` while called with ``healthy=True`` and holds it inactive otherwise, so an external
    termination board that watches it can act.  It is a level signal (activated with ``math.inf``): a stalled loop
    stops the toggling, which is what the watcher looks for, and it powers nothing that needs a backstop.

Read-back
    :attr:`~ActuatorManager.any_output_active` / :attr:`~ActuatorManager.outputs_safe` report the actuator lines as
    last read back: :meth:`~ActuatorManager.update` reads every line once a frame, and any line the manager drives
    makes the next query read them all again.  The FIRE interlock reads the ARM line itself, at the moment of firing.

Events go to ``on_event(kind, data)``: ``pulse_start``, ``pulse_end`` (with ``open_s``, ``ballast_kg``
for this pulse and ``ballast_used_kg`` in all), ``pulse_refused``, ``armed``, ``disarmed``, ``arm_refused``,
``fire_started`` (with ``attempt``), ``fire_ended``, ``fire_refused`` (with ``reason``), ``burn_capped``, ``safe``;
line faults once per change of a line's health: ``output_error`` (with ``line``, ``action``, ``error``) when a
line that worked fails, ``output_recovered`` when it works again (every failure is counted in ``line_errors``).
"""

from __future__ import annotations

import enum
import math
from typing import Callable, Literal

from hal.interfaces import OutputLine, OutputLines
from flightsw.params import ParamConstraint, ParamDecl, at_most

GROUP = "actuators"
CHAINS = ("release", "cutdown")
VALVES = ("ballast", "vent")

ACTUATOR_PARAMS: tuple[ParamDecl, ...] = (
    ParamDecl("BAL_FLOW_KGPS", float, 0.01, 0.0001, 1.0, "kg/s",
              "Ballast mass flow while the ballast valve is open.", group=GROUP),
    ParamDecl("ACT_MIN_PULSE_S", float, 0.2, 0.01, 10.0, "s",
              "Shortest valve pulse; shorter requests are lengthened to this.", group=GROUP),
    ParamDecl("ACT_MAX_PULSE_S", float, 60.0, 1.0, 1800.0, "s",
              "Longest valve pulse; longer requests are refused.", group=GROUP),
    ParamDecl("ACT_BACKSTOP_S", float, 1.0, 0.1, 30.0, "s",
              "Margin added to a pulse or burn for the output line's own backstop.", group=GROUP),
    ParamDecl("ACT_ARM_HOLD_S", float, 10.0, 1.0, 600.0, "s",
              "Backstop of an ARM line; re-asserted every half of it while armed.", group=GROUP),
    ParamDecl("ACT_ARM_SETTLE_S", float, 0.04, 0.0, 5.0, "s",
              "A chain must have been armed this long (and since an earlier frame) before it may fire.", group=GROUP),
    ParamDecl("ACT_BURN_MAX_S", float, 10.0, 0.5, 60.0, "s",
              "Longest burn of a FIRE line; a longer burn is cut to this (TRM_BURN_S and REL_BURN_S may not be "
              "set above it).", group=GROUP),
    ParamDecl("ACT_CUT_MAX_TRY", int, 10, 1, 20, "",
              "Absolute ceiling on cutdown firings in the flight (the first plus retries); the termination rule's "
              "own limit normally stops earlier.", group=GROUP),
    ParamDecl("ACT_HB_TOGGLE_HZ", float, 2.0, 0.1, 10.0, "Hz",
              "Toggles per second of the termination heartbeat line while healthy.", group=GROUP),
)

ACTUATOR_CONSTRAINTS: tuple[ParamConstraint, ...] = (
    at_most("ACT_MIN_PULSE_S", "ACT_MAX_PULSE_S"),
)

EventSink = Callable[[str, dict], None]

#: burn-time parameter -> the FIRE line that burns for it
BURN_PARAMS = {"TRM_BURN_S": "cutdown_fire", "REL_BURN_S": "release_fire"}


def board_constraints(outputs) -> tuple[ParamConstraint, ...]:
    """The rules a board's lines add.  A burn plus ``ACT_BACKSTOP_S`` must fit its FIRE line's own backstop
    ceiling (``max_on_s`` of the board profile), or the line would drop before the burn is over; and the longest
    valve pulse, ``ACT_MAX_PULSE_S``, must fit the valve lines' ceilings, or a pulse would be cut short while the
    ballast it did not drop is counted.

    :param outputs: the board's output lines (lines without a finite ``max_on_s`` add nothing)."""
    constraints = []
    for name, role in BURN_PARAMS.items():
        ceiling_s = _ceiling_s(outputs, role)
        if ceiling_s is None:
            continue

        def check(values, name=name, role=role, ceiling_s=ceiling_s) -> str:
            burn_s = min(values[name], values["ACT_BURN_MAX_S"])
            if burn_s + values["ACT_BACKSTOP_S"] <= ceiling_s:
                return ""
            return (f"{name} {burn_s:g} s + ACT_BACKSTOP_S {values['ACT_BACKSTOP_S']:g} s is longer than the {role} "
                    f"line's backstop ({ceiling_s:g} s, the board's max_on_s): the burn would be cut short")
        constraints.append(ParamConstraint((name, "ACT_BURN_MAX_S", "ACT_BACKSTOP_S"), check,
                                           f"{name} + ACT_BACKSTOP_S <= the {role} line's max_on_s"))
    valve_ceilings = [(role, ceiling) for role in ("ballast_valve", "vent_valve")
                      if (ceiling := _ceiling_s(outputs, role)) is not None]
    if valve_ceilings:
        role, ceiling_s = min(valve_ceilings, key=lambda item: item[1])

        def check_pulse(values, role=role, ceiling_s=ceiling_s) -> str:
            if values["ACT_MAX_PULSE_S"] <= ceiling_s:
                return ""
            return (f"ACT_MAX_PULSE_S {values['ACT_MAX_PULSE_S']:g} s is longer than the {role} line's backstop "
                    f"({ceiling_s:g} s, the board's max_on_s): a pulse would be cut short")
        constraints.append(ParamConstraint(("ACT_MAX_PULSE_S",), check_pulse,
                                           f"ACT_MAX_PULSE_S <= the {role} line's max_on_s"))
    return tuple(constraints)


def _ceiling_s(outputs, role: str) -> float | None:
    ceiling_s = getattr(getattr(outputs, role, None), "max_on_s", None)
    if not isinstance(ceiling_s, (int, float)) or not math.isfinite(ceiling_s):
        return None
    return float(ceiling_s)


class PulseResult(enum.Enum):
    """What :meth:`ActuatorManager.pulse_valve` did.  True only for ``OPEN``."""

    OPEN = "open"  # the valve is open until the pulse's deadline
    WRITE_FAILED = "write_failed"  # the line write failed (the caller may try again next frame)
    REFUSED = "refused"  # a bad or too long pulse (the reason is in ``last_refusal``)

    def __bool__(self) -> bool:
        return self is PulseResult.OPEN


class FireResult(enum.Enum):
    """What :meth:`ActuatorManager.fire` did.  True only for ``STARTED``."""

    STARTED = "started"  # the FIRE line is burning (or may be: a write error that left it active or unreadable)
    WRITE_FAILED = "write_failed"  # the write failed and the line reads back inactive: nothing burned
    REFUSED = "refused"  # an interlock said no (the reason is in ``last_refusal``); nothing was driven

    def __bool__(self) -> bool:
        return self is FireResult.STARTED


class _Valve:
    __slots__ = ("name", "line", "open", "opened_s", "deadline_s", "backstop_at_s")

    def __init__(self, name: str, line: OutputLine) -> None:
        self.name = name
        self.line = line
        self.open = False
        self.opened_s = 0.0
        self.deadline_s = 0.0
        self.backstop_at_s = math.inf


class _Chain:
    __slots__ = ("name", "arm_line", "fire_line", "armed", "armed_s", "asserted_s", "firing", "fire_deadline_s",
                 "attempt", "started", "spent")

    def __init__(self, name: str, arm_line: OutputLine, fire_line: OutputLine) -> None:
        self.name = name
        self.arm_line = arm_line
        self.fire_line = fire_line
        self.armed = False
        self.armed_s = math.nan
        self.asserted_s = math.nan
        self.firing = False
        self.fire_deadline_s = 0.0
        self.attempt = 0  # the attempt burning or burned last
        self.started: set[int] = set()  # attempts that started burning (never started again)
        self.spent = False  # release: fired once, never again


class ActuatorManager:
    """Owns every output line of ``outputs``.

    :param outputs: the board's output lines.
    :param params: parameter values indexable by name (see :data:`ACTUATOR_PARAMS`), read when used.
    :param on_event: called with ``(kind, data)`` for every state change worth journaling; its exceptions are
        swallowed.
    :param release_already_fired: the journal says the release chain fired (in this or an earlier process).
    :param cutdown_attempts: cutdown attempts already committed (from the journal): none of them is started again.
    :param ballast_used_kg: ballast already used (from the journal), kg.
    """

    def __init__(self, outputs: OutputLines, params, *, on_event: EventSink | None = None,
                 release_already_fired: bool = False, cutdown_attempts: int = 0,
                 ballast_used_kg: float = 0.0) -> None:
        self.outputs = outputs
        self.params = params
        self.on_event = on_event
        self._valves = {"ballast": _Valve("ballast", outputs.ballast_valve),
                        "vent": _Valve("vent", outputs.vent_valve)}
        self._chains = {"release": _Chain("release", outputs.release_arm, outputs.release_fire),
                        "cutdown": _Chain("cutdown", outputs.cutdown_arm, outputs.cutdown_fire)}
        self._chains["release"].spent = bool(release_already_fired)
        cutdown = self._chains["cutdown"]
        cutdown.started.update(range(1, int(cutdown_attempts) + 1))
        cutdown.attempt = int(cutdown_attempts)
        self._ballast_closed_kg = float(ballast_used_kg)  # ballast of ended pulses (and the journal's)
        self._ballast_open_kg = 0.0  # ballast of the pulse in progress, as of the last update
        self._heartbeat = outputs.termination_heartbeat
        self._heartbeat_high = False
        self._heartbeat_next_s = -math.inf
        self._last_now_s = 0.0
        self._retry_off: list[OutputLine] = []  # lines whose deactivate failed; tried again every update
        self._actuator_lines = (outputs.release_fire, outputs.cutdown_fire, outputs.ballast_valve,
                                outputs.vent_valve, outputs.release_arm, outputs.cutdown_arm)
        self._any_active = False  # the actuator lines as last read back ...
        self._read_back_due = True  # ... unless a line was driven since (or never read yet)
        self._failing_lines: set[str] = set()  # lines whose last operation failed (reported once per change)
        self.line_errors: dict[str, int] = {}
        self.errors = 0
        self.last_refusal: dict[str, str] = {}

    # ------------------------------------------------------------ state

    @property
    def ballast_used_kg(self) -> float:
        """Ballast released (kg): ended pulses, the journal's value given at construction, and the pulse in
        progress up to the last :meth:`update`."""
        return self._ballast_closed_kg + self._ballast_open_kg

    @property
    def ballast_open_until_s(self) -> float:
        """While the ballast valve is open, the latest time it can stay open (its backstop); NaN when closed."""
        valve = self._valves["ballast"]
        return valve.backstop_at_s if valve.open else math.nan

    @property
    def release_fired(self) -> bool:
        return self._chains["release"].spent

    def is_armed(self, chain: str) -> bool:
        return self._chain(chain).armed

    def is_firing(self, chain: str) -> bool:
        return self._chain(chain).firing

    def valve_open(self, valve: str) -> bool:
        return self._valve(valve).open

    @property
    def any_output_active(self) -> bool:
        """True when any valve, ARM or FIRE line reads back active (the heartbeat is a signal, not counted).

        The lines are read at most once per :meth:`update`, and again after the manager drove any of them."""
        if self._read_back_due:
            self._read_back()
        return self._any_active

    def _read_back(self) -> None:
        self._read_back_due = False
        self._any_active = False
        for line in self._actuator_lines:
            try:
                if line.is_active:
                    self._any_active = True
                    return
            except Exception:  # noqa: BLE001 - a line that cannot be read is not known to be safe
                self._any_active = True
                return

    @property
    def outputs_safe(self) -> bool:
        """True when every actuator line (valves, ARM, FIRE) reads back inactive."""
        return not self.any_output_active

    # ------------------------------------------------------------ valves

    def pulse_valve(self, valve: Literal["ballast", "vent"], duration_s: float, now_s: float) -> PulseResult:
        """Open ``valve`` for ``duration_s`` seconds from ``now_s``: ``OPEN``, ``REFUSED`` (a bad or too long
        pulse) or ``WRITE_FAILED`` (the line failed; the valve is driven closed again)."""
        state = self._valve(valve)
        p = self.params
        if not (isinstance(duration_s, (int, float)) and duration_s > 0.0 and math.isfinite(duration_s)):
            return self._refuse_pulse(valve, duration_s, "duration must be a positive number of seconds")
        if duration_s > p["ACT_MAX_PULSE_S"]:
            return self._refuse_pulse(valve, duration_s, f"longer than ACT_MAX_PULSE_S {p['ACT_MAX_PULSE_S']:g} s")
        duration_s = max(float(duration_s), float(p["ACT_MIN_PULSE_S"]))
        deadline_s = now_s + duration_s
        if state.open and deadline_s <= state.deadline_s:
            return PulseResult.OPEN
        max_on_s = deadline_s - now_s + p["ACT_BACKSTOP_S"]
        line_ceiling_s = getattr(state.line, "max_on_s", math.inf)  # the line drops by itself after this
        if isinstance(line_ceiling_s, (int, float)) and line_ceiling_s < max_on_s:
            max_on_s = float(line_ceiling_s)
        if not self._on(state.line, max_on_s):
            if state.open:  # the valve stays open to its earlier deadline
                return PulseResult.WRITE_FAILED
            self._off(state.line)  # a write that failed part way must not leave the valve open
            return PulseResult.WRITE_FAILED
        if not state.open:
            state.open = True
            state.opened_s = now_s
            self._emit("pulse_start", valve=valve, duration_s=duration_s)
        state.deadline_s = deadline_s
        state.backstop_at_s = now_s + max_on_s
        return PulseResult.OPEN

    def close_valves(self, now_s: float) -> None:
        """Close both valves now and account for the ballast released."""
        for state in self._valves.values():
            if state.open:
                self._close_valve(state, now_s, "closed")

    def _open_ballast_kg(self, state: _Valve, now_s: float) -> float:
        """Ballast released so far by the open valve ``state`` (kg): until now, or its backstop if earlier."""
        open_s = min(now_s, state.backstop_at_s) - state.opened_s
        return open_s * self.params["BAL_FLOW_KGPS"] if open_s > 0.0 else 0.0

    def _close_valve(self, state: _Valve, now_s: float, reason: str) -> None:
        self._off(state.line)
        state.open = False
        open_s = max(0.0, min(now_s, state.backstop_at_s) - state.opened_s)
        ballast_kg = self._open_ballast_kg(state, now_s) if state.name == "ballast" else 0.0
        if state.name == "ballast":
            self._ballast_closed_kg += ballast_kg
            self._ballast_open_kg = 0.0
        self._emit("pulse_end", valve=state.name, open_s=open_s, ballast_kg=ballast_kg,
                   ballast_used_kg=self.ballast_used_kg, reason=reason)

    def _refuse_pulse(self, valve: str, duration_s: float, reason: str) -> PulseResult:
        self.last_refusal[valve] = reason
        self._emit("pulse_refused", valve=valve, duration_s=duration_s, reason=reason)
        return PulseResult.REFUSED

    # ------------------------------------------------------------ chains

    def arm(self, chain: Literal["release", "cutdown"], now_s: float) -> bool:
        """Drive the chain's ARM line.  True if armed (already or now); False when the release is spent or the
        line fails (the caller may try again next frame)."""
        state = self._chain(chain)
        if state.armed:
            return True
        if state.spent:
            self.last_refusal[chain] = "release already fired"
            self._emit("arm_refused", chain=chain, reason="release already fired")
            return False
        if not self._on(state.arm_line, self.params["ACT_ARM_HOLD_S"]):
            self._off(state.arm_line)
            self.last_refusal[chain] = "ARM line write failed"
            return False
        state.armed = True
        state.armed_s = now_s
        state.asserted_s = now_s
        self._emit("armed", chain=chain)
        return True

    def disarm(self, chain: Literal["release", "cutdown"], now_s: float) -> None:
        """Drop the chain's FIRE line (if burning) and then its ARM line."""
        state = self._chain(chain)
        if state.firing:
            self._end_fire(state, "disarmed")
            return
        was_armed = state.armed
        self._off(state.arm_line)
        state.armed = False
        if was_armed:
            self._emit("disarmed", chain=chain)

    def fire_ready(self, chain: Literal["release", "cutdown"], now_s: float) -> str:
        """Why :meth:`fire` would refuse now for the chain's interlocks (armed, settled, a later frame, ARM reads
        back active, not burning), or "" when it would fire.  Reads the ARM line."""
        state = self._chain(chain)
        if state.firing:
            return "already firing"
        if state.spent:
            return "release already fired"
        if not state.armed:
            return "not armed"
        if not (now_s > state.armed_s and now_s - state.armed_s >= self.params["ACT_ARM_SETTLE_S"]):
            return "armed too recently"
        if not self._reads_active(state.arm_line):
            return "ARM line does not read back active"
        return ""

    def fire(self, chain: Literal["release", "cutdown"], burn_s: float, now_s: float, *,
             attempt: int = 1) -> FireResult:
        """Burn the chain's FIRE line for ``burn_s`` seconds (at most ``ACT_BURN_MAX_S``) as ``attempt`` (the
        attempt number the caller latched; 1 for the release).  ``REFUSED`` (with a ``fire_refused`` event)
        unless every interlock allows it and the attempt never started before."""
        state = self._chain(chain)
        p = self.params
        reason = ""
        if not (isinstance(burn_s, (int, float)) and burn_s > 0.0 and math.isfinite(burn_s)):
            reason = "burn must be a positive number of seconds"
        elif not isinstance(attempt, int) or attempt < 1:
            reason = "attempt must be a whole number >= 1"
        elif attempt in state.started:
            reason = f"attempt {attempt} already fired"
        elif chain == "cutdown" and attempt > p["ACT_CUT_MAX_TRY"]:
            reason = f"attempt {attempt} beyond ACT_CUT_MAX_TRY {p['ACT_CUT_MAX_TRY']:g}"
        else:
            reason = self.fire_ready(chain, now_s)
        if reason:
            self.last_refusal[chain] = reason
            self._emit("fire_refused", chain=chain, reason=reason, attempt=attempt)
            return FireResult.REFUSED
        if burn_s > p["ACT_BURN_MAX_S"]:
            self._emit("burn_capped", chain=chain, requested_s=float(burn_s), burn_s=float(p["ACT_BURN_MAX_S"]))
            burn_s = p["ACT_BURN_MAX_S"]
        if not self._on(state.fire_line, burn_s + p["ACT_BACKSTOP_S"]):
            if self._known_inactive(state.fire_line):
                self.last_refusal[chain] = "FIRE line write failed"
                return FireResult.WRITE_FAILED
            line_ok = False  # it may be burning: count it, and let its deadline end it
        else:
            line_ok = True
        state.started.add(attempt)
        state.attempt = attempt
        if chain == "release":
            state.spent = True
        state.firing = True
        state.fire_deadline_s = now_s + burn_s
        self._emit("fire_started", chain=chain, burn_s=float(burn_s), attempt=attempt, line_ok=line_ok)
        return FireResult.STARTED

    def _known_inactive(self, line: OutputLine) -> bool:
        """After a failed write: the line reads back inactive (then nothing was driven); otherwise it is dropped
        again for good measure and counted as possibly driven."""
        self._off(line)
        try:
            return not line.is_active
        except Exception:  # noqa: BLE001 - unreadable: not known to be off
            return False

    def _end_fire(self, state: _Chain, reason: str) -> None:
        self._off(state.fire_line)
        self._off(state.arm_line)
        state.firing = False
        state.armed = False
        self._emit("fire_ended", chain=state.name, attempt=state.attempt, reason=reason)

    # ------------------------------------------------------------ every frame

    def update(self, now_s: float, healthy: bool = True) -> None:
        """Enforce deadlines, re-assert ARM lines, credit the ballast of an open valve and drive the heartbeat at
        ``now_s``.  ``healthy``: the flight software's own health; False stops the heartbeat.  Never raises."""
        try:
            self._update(now_s, healthy)
        except Exception as error:  # noqa: BLE001 - the frame must go on; the fault is reported
            self.errors += 1
            self._emit("output_error", line="", action="update", error=repr(error))
        self._read_back()  # once a frame, whatever happened above

    def _update(self, now_s: float, healthy: bool) -> None:
        self._last_now_s = now_s
        if self._retry_off:
            pending, self._retry_off = self._retry_off, []
            for line in pending:
                self._off(line)
        for state in self._chains.values():
            if state.firing and now_s >= state.fire_deadline_s:
                self._end_fire(state, "burn complete")
            elif state.armed and now_s - state.asserted_s >= 0.5 * self.params["ACT_ARM_HOLD_S"]:
                if self._on(state.arm_line, self.params["ACT_ARM_HOLD_S"]):
                    state.asserted_s = now_s
        for state in self._valves.values():
            if state.open and now_s >= state.deadline_s:
                self._close_valve(state, now_s, "deadline")
        ballast = self._valves["ballast"]
        if ballast.open:
            self._ballast_open_kg = self._open_ballast_kg(ballast, now_s)
        if self._heartbeat is not None and not (healthy and now_s < self._heartbeat_next_s):
            self._drive_heartbeat(now_s, healthy)

    def _drive_heartbeat(self, now_s: float, healthy: bool) -> None:
        """Hold the heartbeat inactive when not ``healthy``, else toggle it (called when a toggle is due)."""
        line = self._heartbeat
        if not healthy:
            if self._heartbeat_high:
                self._off(line)
                self._heartbeat_high = False
            self._heartbeat_next_s = -math.inf
            return
        half_period_s = 1.0 / self.params["ACT_HB_TOGGLE_HZ"]
        if self._heartbeat_high:
            self._off(line)
            self._heartbeat_high = False
        else:
            self._heartbeat_high = self._on(line, math.inf)  # a level: the toggling is the signal
        next_s = self._heartbeat_next_s + half_period_s
        self._heartbeat_next_s = next_s if next_s > now_s else now_s + half_period_s

    def safe(self, now_s: float | None = None) -> None:
        """Force every line inactive (FIRE lines first, then valves, ARM lines, heartbeat), cancel pulses and
        burns, account for ballast released until ``now_s`` (default: the last update's time).  Never raises."""
        try:
            when_s = self._last_now_s if now_s is None else now_s
            for state in self._chains.values():
                self._off(state.fire_line)
            for state in self._valves.values():
                if state.open:
                    self._close_valve(state, when_s, "safe")
                else:
                    self._off(state.line)
            for state in self._chains.values():
                if state.firing:
                    self._end_fire(state, "safe")
                self._off(state.arm_line)
                state.armed = False
            if self._heartbeat is not None:
                self._off(self._heartbeat)
                self._heartbeat_high = False
                self._heartbeat_next_s = -math.inf
            self._emit("safe")
        except Exception as error:  # noqa: BLE001 - last resort: the board's own force_safe
            self.errors += 1
            self._read_back_due = True
            self.outputs.force_safe()
            self._emit("output_error", line="", action="safe", error=repr(error))

    # ------------------------------------------------------------ helpers

    def _on(self, line: OutputLine, max_on_s: float) -> bool:
        self._read_back_due = True
        try:
            line.activate(max_on_s)
        except Exception as error:  # noqa: BLE001 - hardware errors are data
            self._line_error(line, "activate", error)
            return False
        self._line_ok(line)
        return True

    def _off(self, line: OutputLine) -> bool:
        self._read_back_due = True
        try:
            line.deactivate()
        except Exception as error:  # noqa: BLE001
            self._line_error(line, "deactivate", error)
            if line not in self._retry_off:
                self._retry_off.append(line)
            return False
        self._line_ok(line)
        return True

    def _reads_active(self, line: OutputLine) -> bool:
        try:
            return bool(line.is_active)
        except Exception as error:  # noqa: BLE001
            self._line_error(line, "read", error)
            return False

    def _line_error(self, line: OutputLine, action: str, error: Exception) -> None:
        name = getattr(line, "name", "?")
        self.errors += 1
        self.line_errors[name] = self.line_errors.get(name, 0) + 1
        if name not in self._failing_lines:
            self._failing_lines.add(name)
            self._emit("output_error", line=name, action=action, error=repr(error))

    def _line_ok(self, line: OutputLine) -> None:
        if self._failing_lines:
            name = getattr(line, "name", "?")
            if name in self._failing_lines:
                self._failing_lines.discard(name)
                self._emit("output_recovered", line=name, errors=self.line_errors.get(name, 0))

    def _emit(self, kind: str, **data) -> None:
        if self.on_event is None:
            return
        try:
            self.on_event(kind, data)
        except Exception:  # noqa: BLE001 - a faulty listener must not stop an output being driven
            self.errors += 1

    def _chain(self, chain: str) -> _Chain:
        try:
            return self._chains[chain]
        except KeyError:
            raise ValueError(f"unknown chain {chain!r}; expected one of {CHAINS}") from None

    def _valve(self, valve: str) -> _Valve:
        try:
            return self._valves[valve]
        except KeyError:
            raise ValueError(f"unknown valve {valve!r}; expected one of {VALVES}") from None
