"""The actuator manager: the only code that drives output lines.

Valves (``"ballast"``, ``"vent"``)
    :meth:`ActuatorManager.pulse_valve` opens a valve for a bounded time.  A pulse shorter than ``ACT_MIN_PULSE_S``
    is lengthened to it, a longer one than ``ACT_MAX_PULSE_S`` is refused; a pulse on an open valve moves its
    deadline to the later of the two.  :meth:`~ActuatorManager.update` closes valves at their deadline every frame,
    and each activation also arms the line's own backstop with the remaining time plus ``ACT_BACKSTOP_S``.
    Ballast used grows by the open time times ``BAL_FLOW_KGPS`` and is reported when the pulse ends.

Chains (``"release"``, ``"cutdown"``)
    Two lines each: ARM (a level, held with a ``ACT_ARM_HOLD_S`` backstop re-asserted every half of it, so the arm
    drops by itself if the frame loop stops) and FIRE (a burn wire, never activated without a finite backstop).
    :meth:`~ActuatorManager.fire` needs the chain armed for at least ``ACT_ARM_SETTLE_S`` and a later frame, with
    the ARM line reading back active; it burns for ``burn_s`` then drops FIRE, then ARM.  The release chain fires
    at most once, ever (``release_already_fired`` comes from the journal); the cutdown chain fires again only with
    ``retry=True``, at most ``ACT_CUT_MAX_TRY`` attempts in all (``cutdown_attempts`` comes from the journal).

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
``fire_started`` (with ``attempt``), ``fire_ended``, ``fire_refused`` (with ``reason``), ``safe``,
``output_error`` (with ``line``, ``action``, ``error``).
"""

from __future__ import annotations

import math
from typing import Callable, Literal

from hal.interfaces import OutputLine, OutputLines
from flightsw.params import ParamDecl

GROUP = "actuators"
CHAINS = ("release", "cutdown")
VALVES = ("ballast", "vent")

ACTUATOR_PARAMS: tuple[ParamDecl, ...] = (
    ParamDecl("BAL_FLOW_KGPS", float, 0.01, 0.0, 1.0, "kg/s",
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
              "Longest burn of a FIRE line; longer requests are refused.", group=GROUP),
    ParamDecl("ACT_CUT_MAX_TRY", int, 10, 1, 20, "",
              "Absolute ceiling on cutdown firings in the flight (the first plus retries); the termination rule's "
              "own limit normally stops earlier.", group=GROUP),
    ParamDecl("ACT_HB_TOGGLE_HZ", float, 2.0, 0.1, 10.0, "Hz",
              "Toggles per second of the termination heartbeat line while healthy.", group=GROUP),
)

EventSink = Callable[[str, dict], None]

#: burn-time parameter -> the FIRE line that burns for it
BURN_PARAMS = {"TRM_BURN_S": "cutdown_fire", "REL_BURN_S": "release_fire"}


def burn_backstop_problems(params, line_max_on_s: dict[str, float]) -> list[str]:
    """Burn times the FIRE lines' own backstops would cut short.

    :param line_max_on_s: each FIRE line's backstop ceiling (s, the board profile's ``max_on_s``), by role.
    :returns: one text per burn parameter whose burn (capped by ``ACT_BURN_MAX_S``) plus ``ACT_BACKSTOP_S`` is
        longer than its line's ceiling: that line would drop before the burn is over.
    """
    problems = []
    for name, role in BURN_PARAMS.items():
        ceiling_s = line_max_on_s.get(role)
        if ceiling_s is None:
            continue
        burn_s = min(params[name], params["ACT_BURN_MAX_S"])
        if burn_s + params["ACT_BACKSTOP_S"] > ceiling_s:
            problems.append(f"{name} {burn_s:g} s + ACT_BACKSTOP_S {params['ACT_BACKSTOP_S']:g} s is longer than "
                            f"the {role} line's backstop ({ceiling_s:g} s, board max_on_s): the burn would be cut "
                            "short")
    return problems


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
                 "attempts", "spent")

    def __init__(self, name: str, arm_line: OutputLine, fire_line: OutputLine) -> None:
        self.name = name
        self.arm_line = arm_line
        self.fire_line = fire_line
        self.armed = False
        self.armed_s = math.nan
        self.asserted_s = math.nan
        self.firing = False
        self.fire_deadline_s = 0.0
        self.attempts = 0
        self.spent = False  # release: fired once, never again


class ActuatorManager:
    """Owns every output line of ``outputs``.

    :param outputs: the board's output lines.
    :param params: parameter values indexable by name (see :data:`ACTUATOR_PARAMS`), read when used.
    :param on_event: called with ``(kind, data)`` for every state change worth journaling; its exceptions are
        swallowed.
    :param release_already_fired: the journal says the release chain fired (in this or an earlier process).
    :param cutdown_attempts: cutdown firings already made (from the journal).
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
        self._chains["release"].attempts = 1 if release_already_fired else 0
        self._chains["cutdown"].attempts = int(cutdown_attempts)
        self._ballast_used_kg = float(ballast_used_kg)
        self._heartbeat = outputs.termination_heartbeat
        self._heartbeat_high = False
        self._heartbeat_next_s = -math.inf
        self._last_now_s = 0.0
        self._retry_off: list[OutputLine] = []  # lines whose deactivate failed; tried again every update
        self._actuator_lines = (outputs.release_fire, outputs.cutdown_fire, outputs.ballast_valve,
                                outputs.vent_valve, outputs.release_arm, outputs.cutdown_arm)
        self._any_active = False  # the actuator lines as last read back ...
        self._read_back_due = True  # ... unless a line was driven since (or never read yet)
        self.line_errors: dict[str, int] = {}
        self.errors = 0
        self.last_refusal: dict[str, str] = {}

    # ------------------------------------------------------------ state

    @property
    def ballast_used_kg(self) -> float:
        """Ballast released in ended pulses (kg), including what the journal reported at construction."""
        return self._ballast_used_kg

    @property
    def cutdown_attempts(self) -> int:
        return self._chains["cutdown"].attempts

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

    def pulse_valve(self, valve: Literal["ballast", "vent"], duration_s: float, now_s: float) -> bool:
        """Open ``valve`` for ``duration_s`` seconds from ``now_s``; False if refused (bad or too long a pulse,
        or the line failed)."""
        state = self._valve(valve)
        p = self.params
        if not (isinstance(duration_s, (int, float)) and duration_s > 0.0 and math.isfinite(duration_s)):
            return self._refuse_pulse(valve, duration_s, "duration must be a positive number of seconds")
        if duration_s > p["ACT_MAX_PULSE_S"]:
            return self._refuse_pulse(valve, duration_s, f"longer than ACT_MAX_PULSE_S {p['ACT_MAX_PULSE_S']:g} s")
        duration_s = max(float(duration_s), float(p["ACT_MIN_PULSE_S"]))
        deadline_s = now_s + duration_s
        if state.open and deadline_s <= state.deadline_s:
            return True
        max_on_s = deadline_s - now_s + p["ACT_BACKSTOP_S"]
        if not self._on(state.line, max_on_s):
            return False
        if not state.open:
            state.open = True
            state.opened_s = now_s
            self._emit("pulse_start", valve=valve, duration_s=duration_s)
        state.deadline_s = deadline_s
        state.backstop_at_s = now_s + max_on_s
        return True

    def close_valves(self, now_s: float) -> None:
        """Close both valves now and account for the ballast released."""
        for state in self._valves.values():
            if state.open:
                self._close_valve(state, now_s, "closed")

    def _close_valve(self, state: _Valve, now_s: float, reason: str) -> None:
        self._off(state.line)
        state.open = False
        open_s = max(0.0, min(now_s, state.backstop_at_s) - state.opened_s)
        ballast_kg = open_s * self.params["BAL_FLOW_KGPS"] if state.name == "ballast" else 0.0
        self._ballast_used_kg += ballast_kg
        self._emit("pulse_end", valve=state.name, open_s=open_s, ballast_kg=ballast_kg,
                   ballast_used_kg=self._ballast_used_kg, reason=reason)

    def _refuse_pulse(self, valve: str, duration_s: float, reason: str) -> bool:
        self.last_refusal[valve] = reason
        self._emit("pulse_refused", valve=valve, duration_s=duration_s, reason=reason)
        return False

    # ------------------------------------------------------------ chains

    def arm(self, chain: Literal["release", "cutdown"], now_s: float) -> bool:
        """Drive the chain's ARM line.  True if armed (already or now); refused for a chain that can never fire
        again (release spent, cutdown attempts used up) or when the line fails."""
        state = self._chain(chain)
        if state.armed:
            return True
        if state.spent or (chain == "cutdown" and state.attempts >= self.params["ACT_CUT_MAX_TRY"]):
            reason = "release already fired" if state.spent else "cutdown attempts used up"
            self.last_refusal[chain] = reason
            self._emit("arm_refused", chain=chain, reason=reason)
            return False
        if not self._on(state.arm_line, self.params["ACT_ARM_HOLD_S"]):
            self._off(state.arm_line)
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

    def fire(self, chain: Literal["release", "cutdown"], burn_s: float, now_s: float, *, retry: bool = False) -> bool:
        """Burn the chain's FIRE line for ``burn_s`` seconds; False (with a ``fire_refused`` event) unless every
        interlock allows it.  ``retry`` (cutdown only) allows a firing after the first, up to ACT_CUT_MAX_TRY."""
        state = self._chain(chain)
        p = self.params
        reason = ""
        if not (isinstance(burn_s, (int, float)) and 0.0 < burn_s <= p["ACT_BURN_MAX_S"]):
            reason = f"burn must be in (0, ACT_BURN_MAX_S {p['ACT_BURN_MAX_S']:g}] s"
        elif state.firing:
            reason = "already firing"
        elif state.spent:
            reason = "release already fired"
        elif state.attempts > 0 and chain == "cutdown" and not retry:
            reason = "cutdown already fired; a new firing needs retry"
        elif chain == "cutdown" and state.attempts >= p["ACT_CUT_MAX_TRY"]:
            reason = "cutdown attempts used up"
        elif not state.armed:
            reason = "not armed"
        elif not (now_s > state.armed_s and now_s - state.armed_s >= p["ACT_ARM_SETTLE_S"]):
            reason = "armed too recently"
        elif not self._reads_active(state.arm_line):
            reason = "ARM line does not read back active"
        if reason:
            self.last_refusal[chain] = reason
            self._emit("fire_refused", chain=chain, reason=reason)
            return False
        state.attempts += 1  # counted before the line moves: a failure part way is still an attempt
        if chain == "release":
            state.spent = True
        started = self._on(state.fire_line, burn_s + p["ACT_BACKSTOP_S"])
        state.firing = True
        state.fire_deadline_s = now_s + burn_s
        self._emit("fire_started", chain=chain, burn_s=float(burn_s), attempt=state.attempts, line_ok=started)
        if not started:
            self._end_fire(state, "line failed")
        return started

    def _end_fire(self, state: _Chain, reason: str) -> None:
        self._off(state.fire_line)
        self._off(state.arm_line)
        state.firing = False
        state.armed = False
        self._emit("fire_ended", chain=state.name, attempt=state.attempts, reason=reason)

    # ------------------------------------------------------------ every frame

    def update(self, now_s: float, healthy: bool = True) -> None:
        """Enforce deadlines, re-assert ARM lines and drive the heartbeat at flight-clock time ``now_s``.
        ``healthy``: the flight software's own health; False stops the heartbeat.  Never raises."""
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
            return True
        except Exception as error:  # noqa: BLE001 - hardware errors are data
            self._line_error(line, "activate", error)
            return False

    def _off(self, line: OutputLine) -> bool:
        self._read_back_due = True
        try:
            line.deactivate()
            return True
        except Exception as error:  # noqa: BLE001
            self._line_error(line, "deactivate", error)
            if line not in self._retry_off:
                self._retry_off.append(line)
            return False

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
        self._emit("output_error", line=name, action=action, error=repr(error))

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
