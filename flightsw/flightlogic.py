"""The flight logic: runs the rules every frame and carries out their decisions.

:class:`FlightLogic` wires the pure rules (:mod:`flightsw.rules`) and the two sequences — the cutdown
(:func:`flightsw.rules.cutdown.cutdown_step`) and the release (:func:`flightsw.rules.release.release_step`) — to
the actuator manager and the latched flight state.  Each frame a sequence gets the actuator manager's report on
the commands of the previous frame (ARM or FIRE write failed, burn started, refused) and answers with its next
state and its commands; this module writes the state to the latches, persists a commit before the FIRE line is
driven, runs the commands, and keeps their results for the next frame.  The daemon's decide task calls
:meth:`FlightLogic.decide` once a frame; the ground link calls the command handlers, which return a
:class:`CommandResult`.

Safety rules kept here:

* a release or cutdown attempt is written to the journal (``persist``) before its FIRE line is driven; a cut is
  never held back by a failing journal, a release is;
* nothing but the actuators' own deadlines and backstops ends a burn or a pulse: an exception in any part of a
  frame (an event sink that fails, a rule that raises) is caught, counted and reported, and the other parts --
  the termination sequence first -- run on;
* every change of a latched fact sets ``state.latches_dirty`` (the journal writes it this frame); a timer or a
  running count sets ``state.timers_dirty`` (written within a second).

Floating flights: entering FLOAT latches the float target (``ALT_TARGET`` unless the ground already set one with
DO_CHANGE_ALTITUDE); a later ``ALT_TARGET`` change moves a latched target.  The altitude controller works on the
estimate's vertical rate smoothed over ``ALT_RATE_TAU`` (kept here, the rules stay pure).
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from math import isfinite
from typing import Callable

from flightsw.params import Params
from flightsw.phase import PREFLIGHT, Phase
from flightsw.rules import apply_dwells, dwell, finite
from flightsw.rules import altitude as alt_rules
from flightsw.rules import cutdown
from flightsw.rules.altitude import ALTITUDE_CONSTRAINTS, ALTITUDE_PARAMS, altitude_control, ballast_remaining_kg
from flightsw.rules.phases import PHASE_PARAMS, phase_decision, phase_request, selftest
from flightsw.rules.release import (RELEASE_CONSTRAINTS, RELEASE_PARAMS, ReleaseInputs, ReleaseReport, ReleaseState,
                                    release_criteria, release_request, release_step)
from flightsw.rules.termination import TERMINATION_CONSTRAINTS, TERMINATION_PARAMS, termination_check
from flightsw.state import FlightState

NAN = math.nan
MAX_ALTITUDE_PERSIST_STEP_M = 200.0  # persist a new maximum altitude when it grew by this much
RELEASE_REPORT_INTERVAL_S = 1.0  # unarmed, not autonomous: the release criteria are only reported, this often
PULSE_RETRY_S = 5.0  # a ground valve pulse whose line write fails is tried again every frame for this long
_VALVE_ACTIONS = frozenset((alt_rules.Action.BALLAST, alt_rules.Action.VENT))  # the controller's pulses

#: Every flight-rule parameter, in the fixed order of the parameter protocol (append only).
FLIGHT_PARAMS = (*PHASE_PARAMS, *TERMINATION_PARAMS, *RELEASE_PARAMS, *ALTITUDE_PARAMS)
FLIGHT_CONSTRAINTS = (*TERMINATION_CONSTRAINTS, *RELEASE_CONSTRAINTS, *ALTITUDE_CONSTRAINTS)


class Outcome(enum.IntEnum):
    """A command's outcome; the values are MAVLink's MAV_RESULT."""

    ACCEPTED = 0
    TEMPORARILY_REJECTED = 1
    DENIED = 2
    UNSUPPORTED = 3
    FAILED = 4
    IN_PROGRESS = 5


@dataclass(frozen=True, slots=True)
class CommandResult:
    outcome: Outcome
    message: str


EventSink = Callable[..., None]  # on_event(name, severity, text, **fields)

_CUTDOWN_LATCHES = ("termination_fired", "termination_reason", "termination_stage", "termination_stage_s",
                    "cutdown_attempts", "cutdown_attempt_limit", "cutdown_commit_s", "ballast_dump_started")
_RELEASE_LATCHES = ("release_armed", "release_fired", "release_fired_s", "release_burn_confirmed",
                    "release_reason", "separation_confirmed", "separation_timed_out")


def _cutdown_from(latches) -> cutdown.CutdownState:
    return cutdown.CutdownState(*(getattr(latches, name) for name in _CUTDOWN_LATCHES))


def _release_from(latches) -> ReleaseState:
    return ReleaseState(armed=latches.release_armed, fired=latches.release_fired, fired_s=latches.release_fired_s,
                        burn_confirmed=latches.release_burn_confirmed, reason=latches.release_reason,
                        separation_confirmed=latches.separation_confirmed,
                        separation_timed_out=latches.separation_timed_out)


#: the parts of a frame, in order: (name in reports, method)
_FRAME_PARTS = (("sync", "_sync"), ("termination", "_termination"), ("release", "_release_frame"),
                ("phase", "_phase"), ("altitude", "_altitude"), ("valves", "_retry_pulses"),
                ("ballast", "_sync_ballast"))


def _same(first, second) -> bool:
    """Equal, counting NaN equal to NaN."""
    return first == second or (first != first and second != second)


class FlightLogic:
    """Runs the rules and the commands against one flight state.

    :param state: the shared :class:`FlightState` (the estimator fills ``state.estimate`` before :meth:`decide`).
    :param params: the current :class:`Params` (must include :data:`FLIGHT_PARAMS`).
    :param actuators: the :class:`flightsw.actuators.ActuatorManager`.
    :param mission: the :class:`~flightsw.config.flight.MissionConfig` (launch box and geofence polygons).
    :param on_event: ``on_event(name, severity, text, **fields)`` for operator-facing events; its exceptions are
        caught and counted (:attr:`faults`), never let through.
    :param separation_switch: optional :class:`hal.interfaces.InputLine` read every frame into
        ``state.separation_switch_active``.
    :param persist: optional callable that writes the latches to the journal at once (returns False when no copy
        could be written); called after a fire is committed and before its line is driven.
    """

    def __init__(self, state: FlightState, params: Params, actuators, mission, *, on_event: EventSink | None = None,
                 separation_switch=None, persist: Callable[[], object] | None = None) -> None:
        self.state = state
        self.params = params
        self.actuators = actuators
        self.mission = mission
        self._on_event = on_event
        self._switch = separation_switch
        self._persist = persist
        self.faults = 0  # exceptions caught in a part of a frame or an event sink
        self._failing_parts: set[str] = set()
        self._max_altitude_persisted_m = state.latches.max_altitude_m
        self._launch_blocked_reported = False
        self._release_report_due_s = -math.inf  # next evaluation of the criteria that only feeds the report
        self._rate_smooth_mps = NAN  # vertical rate smoothed for the altitude controller (ALT_RATE_TAU)
        self._rate_smooth_s = NAN
        self._altitude_decision = None  # the controller's last decision
        self._cutdown = _cutdown_from(state.latches)
        self._release = _release_from(state.latches)
        # results of the commands run for each sequence since its last step (its next report)
        self._cutdown_results: dict[str, object] = {}
        self._release_results: dict[str, object] = {}
        self._test_armed_s = NAN  # the cutdown chain armed by a ground command outside a termination
        self._pending_pulses: dict[str, tuple[float, float]] = {}  # valve -> (duration_s, try until) of a ground
        # pulse whose line write failed
        self._resume()
        on_change = getattr(params, "on_change", None)
        if on_change is not None:
            on_change(self._on_param_change)

    # ------------------------------------------------------------------ helpers

    def _event(self, name: str, severity: str, text: str, **fields) -> None:
        if self._on_event is None:
            return
        try:
            self._on_event(name, severity, text, **fields)
        except Exception:  # noqa: BLE001 - a failing log or link must never stop a sequence
            self.faults += 1

    def _dirty(self) -> None:
        self.state.latches_dirty = True

    def _resume(self) -> None:
        """Bring latches restored from the journal into a safe, consistent state after a restart."""
        latches = self.state.latches
        if latches.release_armed:
            latches.release_armed = False
            self._release = self._release._replace(armed=False)
            self._dirty()
            self._event("disarm", "warning", "release disarmed: flight software restarted", chain="release")
        if latches.release_fired and not latches.release_burn_confirmed:
            self._event("release_unconfirmed", "warning", "the release was committed before the restart but its "
                        "burn was not confirmed: it will not be fired again")
        if latches.termination_fired:
            resumed = cutdown.resume(self._cutdown, self.params)
            self._write_cutdown(resumed)
            self._cutdown = resumed

    def _write_latches(self, names: tuple[str, ...], values) -> None:
        latches = self.state.latches
        for name, value in zip(names, values):
            if not _same(getattr(latches, name), value):
                setattr(latches, name, value)
                self.state.latches_dirty = True

    def _write_cutdown(self, new: cutdown.CutdownState) -> None:
        self._write_latches(_CUTDOWN_LATCHES, new)

    def _write_release(self, new: ReleaseState) -> None:
        self._write_latches(_RELEASE_LATCHES, (new.armed, new.fired, new.fired_s, new.burn_confirmed, new.reason,
                                               new.separation_confirmed, new.separation_timed_out))
        self.state.release_armed_s = new.armed_s

    def _on_param_change(self, name: str, value: float) -> None:
        """A new ``ALT_TARGET`` moves a float target that is already latched (the later of the parameter and
        DO_CHANGE_ALTITUDE wins); before the float it is simply the target the float will start with."""
        latches = self.state.latches
        if name != "ALT_TARGET" or not finite(latches.float_target_altitude_m) or latches.termination_fired:
            return
        if latches.float_target_altitude_m != float(value):
            latches.float_target_altitude_m = float(value)
            self._dirty()
            self._event("float_target", "notice", f"float target set to {value:.0f} m (ALT_TARGET)",
                        altitude_m=float(value))

    def _persist_now(self) -> bool:
        if self._persist is None:
            return True
        try:
            result = self._persist()
        except Exception as error:  # noqa: BLE001 - reported, the caller decides
            self._event("journal_write_failed", "error", f"latch persist failed: {error}")
            return False
        return result is not False

    def _part_failed(self, part: str, error: Exception) -> None:
        """An exception in one part of the frame: counted, and reported once per burst."""
        self.faults += 1
        if part not in self._failing_parts:
            self._failing_parts.add(part)
            self._event("logic_error", "error", f"{part} failed: {error!r}")

    @property
    def needs_backup_cut(self) -> bool:
        """A termination is latched but the cut is not happening, or the termination logic itself fails (the
        daemon stops the termination heartbeat so that independent hardware cuts)."""
        return "termination" in self._failing_parts or cutdown.cutdown_needs_backup(self._cutdown,
                                                                                   self.state.now_s)

    # ------------------------------------------------------------------ the frame

    def decide(self, now_s: float) -> None:
        """Run the parts of this frame in order (termination first, then release, phase, altitude control), each
        isolated: an exception in one is counted and reported, and the others run."""
        failing = self._failing_parts
        for part, method in _FRAME_PARTS:
            if part == "valves" and not self._pending_pulses:
                continue
            try:
                getattr(self, method)(now_s)
            except Exception as error:  # noqa: BLE001 - one failing part must not stop the others
                self._part_failed(part, error)
            else:
                if failing:
                    failing.discard(part)

    def _sync(self, now_s: float) -> None:
        state, latches, act = self.state, self.state.latches, self.actuators
        state.outputs_safe = bool(act.outputs_safe)
        if self._switch is not None:
            try:
                state.separation_switch_active = bool(self._switch.is_active)
            except Exception:  # noqa: BLE001 - a failing input reads as "not separated"
                state.separation_switch_active = False
        est = state.estimate
        altitude_m = est.altitude_m
        if est.altitude_valid and isfinite(altitude_m):
            if not finite(latches.max_altitude_m) or altitude_m > latches.max_altitude_m:
                latches.max_altitude_m = altitude_m
                last = self._max_altitude_persisted_m
                if not finite(last) or altitude_m - last >= MAX_ALTITUDE_PERSIST_STEP_M:
                    self._max_altitude_persisted_m = altitude_m
                    state.timers_dirty = True
        if finite(self._test_armed_s) and not latches.termination_fired:
            if not act.is_armed("cutdown"):
                self._test_armed_s = NAN
            elif now_s - self._test_armed_s > self.params["TRM_ARM_TMO_S"]:
                act.disarm("cutdown", now_s)
                self._test_armed_s = NAN
                self._event("disarm", "warning", "cutdown disarmed: armed by ground command "
                            f"{self.params['TRM_ARM_TMO_S']:.0f} s ago", chain="cutdown")

    def _sync_ballast(self, now_s: float) -> None:
        """At the end of the frame's decisions: the ballast used so far, and whether the ballast valve is open
        (a valve opened this frame, by any part or command, is written this frame: a restart then counts it open
        until its backstop at most; the flow is written at least once a second)."""
        latches, act = self.state.latches, self.actuators
        used_kg = float(act.ballast_used_kg)  # includes the journal's value given at its construction
        if used_kg > latches.ballast_used_kg + 1e-9:
            latches.ballast_used_kg = used_kg
            self.state.timers_dirty = True
        open_until_s = act.ballast_open_until_s
        if not _same(open_until_s, latches.ballast_open_until_s):
            opened = not finite(latches.ballast_open_until_s)
            latches.ballast_open_until_s = open_until_s
            if opened:
                self.state.latches_dirty = True
            else:
                self.state.timers_dirty = True

    # ------------------------------------------------------------------ termination

    def _cutdown_report(self, now_s: float) -> cutdown.Report:
        act, results = self.actuators, self._cutdown_results
        armed = act.is_armed("cutdown")
        ready = act.fire_ready("cutdown", now_s) if armed and self._cutdown.stage == cutdown.Stage.FIRE \
            else ("" if armed else "not armed")
        fire = results.get("fire")
        return cutdown.Report(armed=armed, ready=ready, firing=act.is_firing("cutdown"),
                              arm_failed=results.get("arm") is False,
                              fire_result=fire.value if fire is not None else "",
                              fire_reason=act.last_refusal.get("cutdown", "") if fire is not None else "",
                              valve_open=act.valve_open("ballast"),
                              dump_result=dump.value if (dump := results.get("dump")) is not None else "")

    def _termination(self, now_s: float) -> None:
        state, params = self.state, self.params
        decision = termination_check(state, params, now_s, self.mission)
        if apply_dwells(state, decision.dwells):
            state.timers_dirty = True
        ground = finite(state.ground_terminate_s)
        if not (ground or decision.reason or self._cutdown.fired):
            return  # most frames: nothing to do
        est = state.estimate
        sinking = (self._cutdown.stage == cutdown.Stage.WAIT and est.vertical_rate_valid
                   and isfinite(est.vertical_rate_mps) and est.vertical_rate_mps < -params["TRM_SEP_RATE"])
        separated, update = dwell(state, "trm_separation", sinking, now_s, params["TRM_SEP_DWELL"])
        if apply_dwells(state, (update,)):
            state.timers_dirty = True
        high = est.altitude_valid and isfinite(est.altitude_m) and est.altitude_m > params["TRM_DUMP_MIN_ALT"]
        inputs = cutdown.Inputs(now_s, reason="" if ground else decision.reason, reason_text=decision.text,
                                ground=ground, ground_text=state.ground_terminate_text, high_enough=high,
                                ballast_remaining_kg=ballast_remaining_kg(state, params), separated=separated,
                                landed=state.phase is Phase.LANDED, report=self._cutdown_report(now_s))
        started = not self._cutdown.fired
        new, commands, events = cutdown.cutdown_step(self._cutdown, inputs, params)
        self._cutdown = new
        self._write_cutdown(new)
        state.ground_terminate_s = NAN
        if started and new.fired:
            state.latches.termination_s = now_s
            if state.phase is not Phase.TERMINATION:
                self._set_phase(Phase.TERMINATION, f"termination: {new.reason}", now_s)
        for event in events:
            self._event(event.name, event.severity, event.text, reason=new.reason, attempts=new.attempts)
        self._cutdown_results = {}
        for command in commands:
            self._run_cutdown_command(command, now_s)

    def _run_cutdown_command(self, command: cutdown.Command, now_s: float) -> None:
        act, kind, results = self.actuators, command.kind, self._cutdown_results
        if kind == "close_valves":
            act.close_valves(now_s)
        elif kind == "dump_pulse":
            results["dump"] = act.pulse_valve("ballast", command.value, now_s)
        elif kind == "arm":
            results["arm"] = act.arm("cutdown", now_s)
        elif kind == "fire":
            if not self._persist_now():  # a cut is never held back: fire even if the journal fails
                self._event("journal_write_failed", "error", "cutdown attempt not persisted: firing anyway")
            results["fire"] = act.fire("cutdown", self.params["TRM_BURN_S"], now_s, attempt=int(command.value))
        elif kind == "disarm":
            act.disarm("cutdown", now_s)

    # ------------------------------------------------------------------ release

    def _release_report(self, now_s: float) -> ReleaseReport:
        act, results = self.actuators, self._release_results
        armed = act.is_armed("release")
        fire = results.get("fire")
        return ReleaseReport(armed=armed, ready=act.fire_ready("release", now_s) if armed else "not armed",
                             firing=act.is_firing("release"), arm_failed=results.get("arm") is False,
                             fire_result=fire.value if fire is not None else "",
                             fire_reason=act.last_refusal.get("release", "") if fire is not None else "")

    def _release_inputs(self, now_s: float, criteria) -> ReleaseInputs:
        state, est = self.state, self.state.estimate
        return ReleaseInputs(now_s, criteria, terminated=state.latches.termination_fired,
                             report=self._release_report(now_s), switch_active=state.separation_switch_active,
                             lift_change_mps2=est.lift_change_mps2, vertical_rate_mps=est.vertical_rate_mps,
                             vertical_rate_valid=est.vertical_rate_valid)

    def _release_frame(self, now_s: float) -> None:
        state, rs = self.state, self._release
        busy = rs.armed or rs.fired or state.latches.termination_fired or self.params["REL_AUTO"]
        if not busy:
            # Nothing armed and no autonomous release: nothing can happen; the criteria only feed
            # state.release_failures (telemetry), refreshed at a lower rate.
            if now_s >= self._release_report_due_s:
                self._release_report_due_s = now_s + RELEASE_REPORT_INTERVAL_S
                state.release_failures = release_criteria(state, self.params, now_s, self.mission).failing
            return
        criteria = None
        if not (rs.fired or state.latches.termination_fired):
            criteria = release_criteria(state, self.params, now_s, self.mission)
            state.release_failures = criteria.failing
        new, commands, events = release_step(rs, self._release_inputs(now_s, criteria), self.params)
        self._apply_release(rs, new, commands, events, now_s, consumed=True)

    def _apply_release(self, old: ReleaseState, new: ReleaseState, commands, events, now_s: float, *,
                       consumed: bool) -> tuple[bool, dict]:
        """Write the release state to the latches, persist a commit, run the commands.  Returns whether the commit
        (if any) was persisted -- when not, nothing was fired and the release is not committed -- and the results
        of the commands run.  ``consumed``: the step read the results kept since the last step (they are
        replaced, else added to)."""
        self._write_release(new)
        persisted = True
        if new.fired and not old.fired and not self._persist_now():
            persisted = False
            new = old._replace(armed=new.armed, armed_s=new.armed_s, auto_blocked=True)
            self._write_release(new)
            commands = tuple(command for command in commands if command.kind != "fire")
            events = tuple(events) + (cutdown.Event("release_refused", "error",
                                                    "release not fired: the latch could not be persisted"),)
        if consumed:
            self._release_results = {}
        results: dict = {}
        act = self.actuators
        for command in commands:
            if command.kind == "arm":
                results["arm"] = act.arm("release", now_s)
            elif command.kind == "fire":
                results["fire"] = act.fire("release", self.params["REL_BURN_S"], now_s, attempt=1)
            elif command.kind == "disarm":
                act.disarm("release", now_s)
        self._release_results.update(results)
        if new.fired and not old.fired:
            self.state.release_fired_rate_mps = new.fired_rate_mps
        self._release = new
        for event in events:
            self._event(event.name, event.severity, event.text, chain="release")
        return persisted, results

    # ------------------------------------------------------------------ phases and altitude

    def _phase(self, now_s: float) -> None:
        state = self.state
        decision = phase_decision(state, self.params, now_s)
        if apply_dwells(state, decision.dwells):
            state.timers_dirty = True
        if state.phase is PREFLIGHT:
            state.ground_altitude_m = decision.ground_altitude_m
            state.ground_altitude_s = now_s
            if decision.selftest is not None:
                state.selftest_failures = tuple(f.name for f in decision.selftest.failures)
            if decision.launch_blocked and not self._launch_blocked_reported:
                self._event("launch_blocked", "critical", decision.reason)
            self._launch_blocked_reported = decision.launch_blocked
            state.launch_blocked = decision.launch_blocked
        else:
            state.launch_blocked = False
        if decision.changed:
            self._set_phase(decision.phase, decision.reason, now_s)

    def _set_phase(self, new: Phase, reason: str, now_s: float) -> None:
        state, latches = self.state, self.state.latches
        old = state.phase
        if old is Phase.PREFLIGHT and new not in (Phase.PREFLIGHT, Phase.TERMINATION) and not finite(latches.launch_s):
            est = state.estimate
            latches.launch_s = now_s
            latches.launch_utc_s = state.wall_time_s
            if est.position_valid:
                latches.launch_latitude_deg = est.latitude_deg
                latches.launch_longitude_deg = est.longitude_deg
            ground = state.ground_altitude_m
            latches.launch_altitude_m = ground if finite(ground) else est.altitude_m
        if new is Phase.FLOAT and not finite(latches.float_target_altitude_m) and not latches.termination_fired:
            latches.float_target_altitude_m = float(self.params["ALT_TARGET"])
            target_m = latches.float_target_altitude_m
            self._event("float_target", "notice", f"float target {target_m:.0f} m (ALT_TARGET)", altitude_m=target_m)
        latches.phase = int(new)
        latches.phase_since_s = now_s
        self._dirty()
        self._event("phase", "notice", f"phase {old.name} -> {new.name}: {reason}", old=old.name, new=new.name)

    def _smoothed_rate(self, now_s: float) -> float:
        """The estimate's vertical rate through a first-order filter of time constant ``ALT_RATE_TAU`` (m/s);
        NaN while the rate is invalid (the filter restarts from the next valid rate)."""
        est = self.state.estimate
        rate = est.vertical_rate_mps
        if not (est.vertical_rate_valid and isfinite(rate)):
            self._rate_smooth_mps = self._rate_smooth_s = NAN
            return NAN
        smooth, tau_s, last_s = self._rate_smooth_mps, self.params["ALT_RATE_TAU"], self._rate_smooth_s
        if tau_s <= 0.0 or not (isfinite(smooth) and isfinite(last_s)) or now_s < last_s:
            smooth = rate
        else:
            fraction = (now_s - last_s) / tau_s
            smooth += (rate - smooth) * (fraction if fraction < 1.0 else 1.0)
        self._rate_smooth_mps, self._rate_smooth_s = smooth, now_s
        return smooth

    def _altitude(self, now_s: float) -> None:
        act, control = self.actuators, self.state.control
        busy = act.valve_open("ballast") or act.valve_open("vent")
        decision = altitude_control(self.state, self.params, now_s, valve_busy=busy,
                                    rate_mps=self._smoothed_rate(now_s))
        if decision is self._altitude_decision:
            return  # the same idle decision as last frame: the status already shows it
        self._altitude_decision = decision
        control.active = decision.active
        control.target_altitude_m = decision.target_altitude_m
        control.error_m = decision.error_m
        control.commanded_rate_mps = decision.commanded_rate_mps
        control.rate_error_mps = decision.rate_error_mps
        control.lift_change_kg = decision.lift_change_kg
        control.effort = decision.effort
        control.ballast_available_kg = decision.ballast_available_kg
        control.reason = decision.reason
        if decision.action in _VALVE_ACTIONS:
            if act.pulse_valve(decision.action, decision.pulse_s, now_s):
                control.last_action = decision.action
                control.last_pulse_s = now_s
                control.last_pulse_duration_s = decision.pulse_s
            else:
                control.effort = 0.0
                control.reason = f"{decision.action} pulse refused by the actuators"

    # ------------------------------------------------------------------ ground commands

    def _command(self, body: Callable[[], CommandResult]) -> CommandResult:
        """Run a command handler; an unexpected error is reported as FAILED.  No output is touched: a burn or a
        pulse in progress ends only by its own deadline."""
        try:
            return body()
        except Exception as error:  # noqa: BLE001 - a command must answer
            self.faults += 1
            self._event("logic_error", "error", f"command failed: {error!r}")
            return CommandResult(Outcome.FAILED, f"internal error: {error!r}")

    def terminate(self, reason: str, now_s: float, *, retry: bool = False) -> CommandResult:
        """Ground flight termination (DO_FLIGHTTERMINATION), in any phase and any stage: a dump is cut short, a
        sequence waiting for separation fires again at once, a finished or failed one fires once more.
        ``reason``: free text for the event log.  A ``retry`` of a command (MAVLink confirmation > 0: the ground
        did not hear the answer, perhaps because we restarted) starts a termination but never fires again one
        that is latched."""
        def body() -> CommandResult:
            before = self._cutdown
            if retry and before.fired:
                if before.stage in cutdown.FINAL_STAGES:
                    return CommandResult(Outcome.ACCEPTED, f"termination already {before.stage} (a retried "
                                                           "command does not fire again)")
                return CommandResult(Outcome.IN_PROGRESS, f"termination in progress ({before.stage})")
            self.state.ground_terminate_s = now_s
            self.state.ground_terminate_text = reason
            self._termination(now_s)
            after = self._cutdown
            if not before.fired:
                return CommandResult(Outcome.ACCEPTED, f"termination started ({after.stage})")
            if after.stage != before.stage or after.attempt_limit != before.attempt_limit:
                return CommandResult(Outcome.ACCEPTED, f"cutting now ({before.stage} -> {after.stage})")
            return CommandResult(Outcome.IN_PROGRESS, f"termination in progress ({after.stage})")
        return self._command(body)

    def arm(self, chain: str, now_s: float) -> CommandResult:
        """Arm ``"release"`` (all criteria must hold) or ``"cutdown"`` (a ground test; it disarms after
        ``TRM_ARM_TMO_S``; a termination arms it itself)."""
        def body() -> CommandResult:
            if chain == "release":
                return self._release_command("arm", now_s, "ground command")
            if chain != "cutdown":
                return CommandResult(Outcome.UNSUPPORTED, f"unknown chain {chain!r}")
            if self.state.latches.termination_fired:
                return CommandResult(Outcome.IN_PROGRESS, "the termination sequence controls the cutdown chain")
            if not self.actuators.arm("cutdown", now_s):
                return CommandResult(Outcome.FAILED, "cutdown arming refused by the actuators")
            self._test_armed_s = now_s
            self._event("arm", "warning", "cutdown ARMED: ground command", chain="cutdown", reason="ground command")
            return CommandResult(Outcome.ACCEPTED, f"cutdown armed for {self.params['TRM_ARM_TMO_S']:.0f} s")
        return self._command(body)

    def disarm(self, chain: str, now_s: float) -> CommandResult:
        """Disarm ``"release"`` or ``"cutdown"`` (not while a termination sequence needs it)."""
        def body() -> CommandResult:
            if chain == "release":
                return self._release_command("disarm", now_s, "ground command")
            if chain != "cutdown":
                return CommandResult(Outcome.UNSUPPORTED, f"unknown chain {chain!r}")
            latches = self.state.latches
            if latches.termination_fired and latches.termination_stage not in cutdown.FINAL_STAGES:
                return CommandResult(Outcome.DENIED, "termination in progress: cutdown stays armed")
            self.actuators.disarm("cutdown", now_s)
            self._test_armed_s = NAN
            self._event("disarm", "warning", "cutdown disarmed: ground command", chain="cutdown",
                        reason="ground command")
            return CommandResult(Outcome.ACCEPTED, "cutdown disarmed")
        return self._command(body)

    def fire_release(self, now_s: float) -> CommandResult:
        """Fire the armed release (once per flight), after re-checking every criterion."""
        return self._command(lambda: self._release_command("fire", now_s, "ground command"))

    def _release_command(self, request: str, now_s: float, why: str) -> CommandResult:
        state, rs = self.state, self._release
        criteria = None
        if request != "disarm" and not (rs.fired or state.latches.termination_fired):
            criteria = release_criteria(state, self.params, now_s, self.mission)
        outcome, new, commands, events = release_request(rs, self._release_inputs(now_s, criteria), self.params,
                                                         request, why)
        persisted, results = self._apply_release(rs, new, commands, events, now_s, consumed=False)
        if not persisted:
            return CommandResult(Outcome.FAILED, "release not fired: the latch could not be persisted")
        armed, fired = results.get("arm"), results.get("fire")
        if armed is False:
            return CommandResult(Outcome.ACCEPTED, "release arming: the ARM line write failed, trying again")
        if fired is not None and not fired:
            return CommandResult(Outcome.ACCEPTED, f"release committed; the FIRE line failed ({fired.value}): "
                                                   "firing again")
        return CommandResult(Outcome[outcome.result], outcome.text)

    def _retry_pulses(self, now_s: float) -> None:
        """Try again the ground pulses whose line write failed (every frame, for ``PULSE_RETRY_S``)."""
        for valve, (duration_s, until_s) in list(self._pending_pulses.items()):
            result = self.actuators.pulse_valve(valve, duration_s, now_s)
            if result:
                del self._pending_pulses[valve]
                self.state.control.last_pulse_s = now_s
                self._event("valve_pulse", "notice", f"{valve} valve {duration_s:.1f} s by ground command (after a "
                                                     "line write failure)")
            elif result.value == "refused" or now_s > until_s:
                del self._pending_pulses[valve]
                self._event("valve_pulse_failed", "error", f"{valve} valve pulse by ground command not done: the "
                                                           f"line {'refused it' if result.value == 'refused' else 'keeps failing'}")

    def ground_go(self, now_s: float) -> CommandResult:
        """The ground's GO for release, valid for ``REL_GO_WINDOW_S``."""
        latches = self.state.latches
        if latches.release_fired:
            return CommandResult(Outcome.DENIED, "release already fired")
        if latches.termination_fired:
            return CommandResult(Outcome.DENIED, "flight terminated")
        self.state.link.go_s = now_s
        self.state.timers_dirty = True
        window = self.params["REL_GO_WINDOW_S"]
        self._event("ground_go", "notice", f"ground GO for release received, valid {window:.0f} s")
        return CommandResult(Outcome.ACCEPTED, f"GO valid for {window:.0f} s")

    def pulse(self, valve: str, duration_s: float, now_s: float) -> CommandResult:
        """Open ``"ballast"`` or ``"vent"`` for ``duration_s`` seconds (at most ``GND_PULSE_MAX_S``).  The ground
        may spend the ballast reserve, but never drop ballast airborne below ``ALT_BAL_MIN_ALT``."""
        def body() -> CommandResult:
            if valve not in ("ballast", "vent"):
                return CommandResult(Outcome.UNSUPPORTED, f"unknown valve {valve!r}")
            limit = self.params["GND_PULSE_MAX_S"]
            if not finite(duration_s) or not 0.0 < duration_s <= limit:
                return CommandResult(Outcome.DENIED, f"pulse must be 0..{limit:.1f} s")
            state = self.state
            if state.latches.termination_fired and state.latches.termination_stage == cutdown.Stage.DUMP:
                return CommandResult(Outcome.TEMPORARILY_REJECTED, "ballast dump in progress")
            est = state.estimate
            if valve == "ballast" and state.phase.airborne and not (
                    est.altitude_valid and isfinite(est.altitude_m) and est.altitude_m >= self.params["ALT_BAL_MIN_ALT"]):
                return CommandResult(Outcome.DENIED, "no ballast drop below ALT_BAL_MIN_ALT or without altitude")
            result = self.actuators.pulse_valve(valve, duration_s, now_s)
            if result.value == "write_failed":
                self._pending_pulses[valve] = (duration_s, now_s + PULSE_RETRY_S)
                return CommandResult(Outcome.ACCEPTED, f"{valve} valve: the line write failed, trying again")
            if not result:
                return CommandResult(Outcome.TEMPORARILY_REJECTED, f"{valve} valve refused the pulse: "
                                                                   f"{self.actuators.last_refusal.get(valve, '')}")
            state.control.last_pulse_s = now_s  # the controller lets the balloon respond to this pulse too
            self._event("valve_pulse", "info", f"{valve} valve {duration_s:.1f} s by ground command")
            return CommandResult(Outcome.ACCEPTED, f"{valve} valve open {duration_s:.1f} s")
        return self._command(body)

    def set_float_target(self, altitude_m: float, now_s: float) -> CommandResult:
        """DO_CHANGE_ALTITUDE: the float target altitude (MSL, within ALT_TARGET's range)."""
        decl = self.params.by_name["ALT_TARGET"]
        if not finite(altitude_m) or not decl.min <= altitude_m <= decl.max:
            return CommandResult(Outcome.DENIED, f"target must be {decl.min:.0f}..{decl.max:.0f} m")
        if self.state.latches.termination_fired:
            return CommandResult(Outcome.DENIED, "flight terminated")
        self.state.latches.float_target_altitude_m = float(altitude_m)
        self._dirty()
        self._event("float_target", "notice", f"float target set to {altitude_m:.0f} m", altitude_m=altitude_m)
        return CommandResult(Outcome.ACCEPTED, f"float target {altitude_m:.0f} m")

    def request_phase(self, phase: int, now_s: float) -> CommandResult:
        """DO_SET_MODE: move to ``phase`` if :func:`flightsw.rules.phases.phase_request` permits it."""
        try:
            requested = Phase(int(phase))
        except (TypeError, ValueError):
            return CommandResult(Outcome.UNSUPPORTED, f"unknown phase {phase!r}")
        decision = phase_request(self.state, self.params, requested, now_s)
        if not decision.allowed:
            return CommandResult(Outcome.DENIED, decision.reason)
        if requested is not self.state.phase:
            self._set_phase(requested, decision.reason, now_s)
        return CommandResult(Outcome.ACCEPTED, decision.reason)

    def override_preflight(self, now_s: float) -> CommandResult:
        """Let the flight leave PREFLIGHT although the self-test fails (latched)."""
        state = self.state
        if state.phase is not Phase.PREFLIGHT:
            return CommandResult(Outcome.DENIED, f"not in PREFLIGHT ({state.phase.name})")
        if state.latches.preflight_override:
            return CommandResult(Outcome.ACCEPTED, "preflight override already set")
        state.latches.preflight_override = True
        self._dirty()
        failing = selftest(state, self.params, now_s).describe()
        self._event("preflight_override", "warning", f"preflight self-test overridden ({failing})")
        return CommandResult(Outcome.ACCEPTED, f"self-test overridden ({failing})")

