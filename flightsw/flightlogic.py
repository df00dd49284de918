"""The flight logic: runs the rules every frame and carries out their decisions.

:class:`FlightLogic` is the glue between the pure rules (:mod:`flightsw.rules`), the actuator manager and the
latched flight state.  The daemon's decide task calls :meth:`FlightLogic.decide` once a frame; the ground link
calls the command handlers, which return a :class:`CommandResult`.

Safety rules kept here:

* release and cutdown fire at most once per command; the fact is latched in ``state.latches`` (and handed to the
  optional ``persist`` callback) *before* the line is driven, and a latch that says "fired" is never fired again
  after a restart (cutdown retries are counted in ``latches.cutdown_attempts``);
* an exception inside :meth:`decide` makes every output safe (``actuators.safe()``) before it propagates;
* every change of a latched fact sets ``state.latches_dirty`` so the journal persists it the same frame;
* the cutdown fires in a later frame than the one that armed it (and ``ACT_ARM_SETTLE_S`` after it), so the
  attempt latched before the fire is never one the actuators' interlock must refuse.

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
from flightsw.phase import AIRBORNE, FLOAT, PREFLIGHT, Phase
from flightsw.rules import apply_dwells, finite
from flightsw.rules import altitude as alt_rules
from flightsw.rules import release as rel_rules
from flightsw.rules import termination as trm_rules
from flightsw.rules.altitude import ALTITUDE_PARAMS, altitude_control, ballast_remaining_kg
from flightsw.rules.phases import PHASE_PARAMS, phase_decision, phase_request, selftest
from flightsw.rules.release import RELEASE_PARAMS, release_criteria, release_decision
from flightsw.rules.termination import (FINAL_STAGES, TERMINATION_PARAMS, Stage, should_dump, termination_check,
                                        termination_step)
from flightsw.state import FlightState

NAN = math.nan
MAX_ALTITUDE_PERSIST_STEP_M = 200.0  # persist a new maximum altitude when it grew by this much
RELEASE_REPORT_INTERVAL_S = 1.0  # unarmed, not autonomous: the release criteria are only reported, this often
_VALVE_ACTIONS = frozenset((alt_rules.Action.BALLAST, alt_rules.Action.VENT))  # the controller's pulses

#: Every flight-rule parameter, in the fixed order of the parameter protocol (append only).
FLIGHT_PARAMS = (*PHASE_PARAMS, *TERMINATION_PARAMS, *RELEASE_PARAMS, *ALTITUDE_PARAMS)


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


class FlightLogic:
    """Runs the rules and the commands against one flight state.

    :param state: the shared :class:`FlightState` (the estimator fills ``state.estimate`` before :meth:`decide`).
    :param params: the current :class:`Params` (must include :data:`FLIGHT_PARAMS`).
    :param actuators: the :class:`flightsw.actuators.ActuatorManager` (or anything with its API).
    :param mission: the :class:`~flightsw.config.flight.MissionConfig` (launch box and geofence polygons).
    :param on_event: ``on_event(name, severity, text, **fields)`` for operator-facing events.
    :param separation_switch: optional :class:`hal.interfaces.InputLine` read every frame into
        ``state.separation_switch_active``.
    :param persist: optional callable that writes the latches to the journal at once; called after a fire is
        latched and before the line is driven.
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
        self._max_altitude_persisted_m = state.latches.max_altitude_m
        self._launch_blocked_reported = False
        self._auto_release_blocked = False  # an autonomous fire failed: no autonomous retry this boot
        self._release_report_due_s = -math.inf  # next evaluation of the criteria that only feeds the report
        self._rate_smooth_mps = NAN  # vertical rate smoothed for the altitude controller (ALT_RATE_TAU)
        self._altitude_decision = None  # the controller's last decision
        self._rate_smooth_s = NAN
        self._cutdown_armed_s = NAN  # flight-clock time the cutdown chain was armed (NaN: not armed / unknown)
        self._resume(state.now_s)
        on_change = getattr(params, "on_change", None)
        if on_change is not None:
            on_change(self._on_param_change)

    # ------------------------------------------------------------------ helpers

    def _event(self, name: str, severity: str, text: str, **fields) -> None:
        if self._on_event is not None:
            self._on_event(name, severity, text, **fields)

    def _dirty(self) -> None:
        self.state.latches_dirty = True

    def _resume(self, now_s: float) -> None:
        """Bring latches restored from the journal into a safe, consistent state after a restart."""
        state, latches = self.state, self.state.latches
        if latches.release_armed and not latches.release_fired:
            latches.release_armed = False
            self._dirty()
            self._event("disarm", "warning", "release disarmed: flight software restarted", chain="release")
        if state.phase.airborne and not finite(state.airborne_since_s):
            state.airborne_since_s = now_s
        if latches.termination_fired:
            stage = latches.termination_stage
            if stage in (Stage.DUMP, Stage.ARM, "") and latches.cutdown_attempts == 0:
                latches.termination_stage = Stage.ARM
            elif stage in (Stage.DUMP, Stage.ARM, Stage.FIRE, ""):
                latches.termination_stage = Stage.WAIT  # it may have fired: wait before any retry
            if latches.cutdown_attempt_limit <= 0:
                latches.cutdown_attempt_limit = int(self.params["TRM_MAX_TRIES"])
            state.termination_stage_s = now_s
            if latches.termination_stage != stage:
                self._dirty()

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

    def _make_safe(self, now_s: float) -> None:
        try:
            self.actuators.safe(now_s)
        except Exception:  # noqa: BLE001 - the original exception matters more
            pass

    # ------------------------------------------------------------------ the frame

    def decide(self, now_s: float) -> None:
        """Run the rules for this frame: termination, release, phase, altitude control."""
        try:
            self._sync(now_s)
            self._termination(now_s)
            self._release(now_s)
            self._phase(now_s)
            self._altitude(now_s)
        except BaseException:
            self._make_safe(now_s)
            raise

    def _sync(self, now_s: float) -> None:
        state, latches, act = self.state, self.state.latches, self.actuators
        state.outputs_safe = bool(act.outputs_safe)
        if self._switch is not None:
            try:
                state.separation_switch_active = bool(self._switch.is_active)
            except Exception:  # noqa: BLE001 - a failing input reads as "not separated"
                state.separation_switch_active = False
        used_kg = float(act.ballast_used_kg)  # includes the journal's value given at its construction
        if used_kg > latches.ballast_used_kg + 1e-9:
            latches.ballast_used_kg = used_kg
            self._dirty()
        est = state.estimate
        altitude_m = est.altitude_m
        if est.altitude_valid and isfinite(altitude_m):
            if not finite(latches.max_altitude_m) or altitude_m > latches.max_altitude_m:
                latches.max_altitude_m = altitude_m
                last = self._max_altitude_persisted_m
                if not finite(last) or altitude_m - last >= MAX_ALTITUDE_PERSIST_STEP_M:
                    self._max_altitude_persisted_m = altitude_m
                    self._dirty()
        if not finite(state.airborne_since_s) and state.phase in AIRBORNE:
            state.airborne_since_s = now_s

    # ------------------------------------------------------------------ termination

    def _termination(self, now_s: float) -> None:
        latches = self.state.latches
        if not latches.termination_fired:
            decision = termination_check(self.state, self.params, now_s, self.mission)
            apply_dwells(self.state, decision.dwells)
            if decision.reason:
                self._start_termination(decision.reason, decision.text, decision.dump_ballast, now_s)
        if latches.termination_fired:
            self._termination_sequence(now_s)

    def _start_termination(self, reason: str, text: str, dump_requested: bool, now_s: float) -> None:
        state, latches = self.state, self.state.latches
        dumping = should_dump(state, self.params, dump_requested, ballast_remaining_kg(state, self.params))
        latches.termination_fired = True
        latches.termination_reason = reason
        latches.termination_wall_s = state.wall_time_s
        latches.termination_stage = Stage.DUMP if dumping else Stage.ARM
        latches.cutdown_attempt_limit = latches.cutdown_attempts + int(self.params["TRM_MAX_TRIES"])
        latches.ballast_dump_started = latches.ballast_dump_started or dumping
        state.termination_stage_s = now_s
        state.ground_terminate_s = NAN
        self._dirty()
        self._event("termination", "critical", f"TERMINATION: {text}" + (", dumping ballast first" if dumping else ""),
                    reason=reason, dump=dumping)
        if latches.release_armed:
            self._disarm_release(now_s, "flight terminated")
        if not dumping:
            self.actuators.close_valves(now_s)
        if state.phase is not Phase.TERMINATION:
            self._set_phase(Phase.TERMINATION, f"termination: {reason}", now_s)

    def _set_stage(self, stage: str, now_s: float) -> None:
        if self.state.latches.termination_stage != stage:
            self.state.latches.termination_stage = stage
            self.state.termination_stage_s = now_s
            self._dirty()

    def _arm_cutdown(self, now_s: float) -> bool:
        """Arm the cutdown chain, noting when it became armed; the actuators' answer."""
        was_armed = self.actuators.is_armed("cutdown")
        armed = self.actuators.arm("cutdown", now_s) is not False
        if armed and not (was_armed and finite(self._cutdown_armed_s)):
            self._cutdown_armed_s = now_s
        return armed

    def _cutdown_armed_since(self, now_s: float) -> float:
        """When the cutdown chain was armed (flight clock, s); an armed chain of unknown age counts from now."""
        if not self.actuators.is_armed("cutdown"):
            self._cutdown_armed_s = NAN
        elif not finite(self._cutdown_armed_s):
            self._cutdown_armed_s = now_s
        return self._cutdown_armed_s

    def _termination_sequence(self, now_s: float) -> None:
        state, latches, act = self.state, self.state.latches, self.actuators
        armed_s = self._cutdown_armed_since(now_s)
        if latches.termination_stage in FINAL_STAGES:
            return  # the sequence is over: nothing to step until a ground command starts it again
        step = termination_step(state, self.params, now_s,
                                ballast_remaining_kg=ballast_remaining_kg(state, self.params),
                                valve_open=act.valve_open("ballast"), cutdown_armed=act.is_armed("cutdown"),
                                cutdown_firing=act.is_firing("cutdown"), cutdown_armed_s=armed_s)
        apply_dwells(state, step.dwells)
        action = step.action
        if action == trm_rules.Action.DUMP_PULSE:
            if not act.pulse_valve("ballast", step.pulse_s, now_s):
                self._event("ballast_dump", "warning", "ballast dump refused by the valve: cutting now")
                self._set_stage(Stage.ARM, now_s)
                return
        elif action == trm_rules.Action.END_DUMP:
            act.close_valves(now_s)
            self._event("ballast_dump", "notice", f"ballast dump over ({step.text}): arming cutdown")
        elif action == trm_rules.Action.ARM:
            if not self._arm_cutdown(now_s):
                self._event("cutdown_failed", "emergency", "CUTDOWN FAILED: the cutdown chain refuses to arm",
                            attempts=latches.cutdown_attempts)
                self._set_stage(Stage.FAILED, now_s)
                return
        elif action == trm_rules.Action.FIRE:
            self._fire_cutdown(step.attempt, now_s)
            return
        elif action == trm_rules.Action.SEPARATED:
            act.disarm("cutdown", now_s)
            self._event("cutdown_separated", "notice", f"cutdown {step.text}", attempts=latches.cutdown_attempts)
        elif action == trm_rules.Action.RETRY:
            self._event("cutdown_retry", "critical", f"cutdown retry: {step.text}", attempts=latches.cutdown_attempts)
        elif action == trm_rules.Action.GIVE_UP:
            act.disarm("cutdown", now_s)
            self._event("cutdown_failed", "emergency", f"CUTDOWN FAILED: {step.text}",
                        attempts=latches.cutdown_attempts)
        self._set_stage(step.next_stage, now_s)

    def _fire_cutdown(self, attempt: int, now_s: float) -> None:
        latches = self.state.latches
        previous = (latches.cutdown_attempts, latches.termination_stage)
        latches.cutdown_attempts = attempt
        self._set_stage(Stage.WAIT, now_s)
        self._dirty()
        self._persist_now()  # a cut is never held back: fire even if the journal fails
        if not self.actuators.fire("cutdown", self.params["TRM_BURN_S"], now_s, retry=attempt > 1):
            latches.cutdown_attempts, stage = previous
            self._set_stage(stage, now_s)
            self._event("cutdown_refused", "error", f"cutdown fire attempt {attempt} refused by the actuators")
            return
        self._event("cutdown_fired", "critical", f"cutdown fired (attempt {attempt})", attempt=attempt)

    def _persist_now(self) -> bool:
        if self._persist is None:
            return True
        try:
            result = self._persist()
        except Exception as error:  # noqa: BLE001 - reported, the caller decides
            self._event("journal_write_failed", "error", f"latch persist failed: {error}")
            return False
        return result is not False

    # ------------------------------------------------------------------ release

    def _release(self, now_s: float) -> None:
        state, latches, act = self.state, self.state.latches, self.actuators
        if not (latches.release_armed or latches.release_fired or latches.termination_fired
                or self.params["REL_AUTO"]):
            # Nothing armed and no autonomous release: the decision can only be NONE, and its criteria only feed
            # state.release_failures (telemetry), which is refreshed at a lower rate.
            if now_s < self._release_report_due_s:
                return
            self._release_report_due_s = now_s + RELEASE_REPORT_INTERVAL_S
        else:
            self._release_report_due_s = -math.inf
        decision = release_decision(state, self.params, now_s, self.mission)
        state.release_failures = decision.criteria.failing if decision.criteria is not None else ()
        if decision.action != rel_rules.Action.NONE:
            self._release_action(decision, now_s)
        if latches.release_fired and latches.release_armed and not act.is_firing("release"):
            act.disarm("release", now_s)
            latches.release_armed = False
            self._dirty()

    def _release_action(self, decision: rel_rules.ReleaseDecision, now_s: float) -> None:
        """Carry out the release logic's action (arm, fire, disarm, separation seen or not)."""
        latches = self.state.latches
        action = decision.action
        if action == rel_rules.Action.DISARM:
            self._disarm_release(now_s, decision.reason)
        elif action == rel_rules.Action.ARM and not self._auto_release_blocked:
            self._arm_release(now_s, decision.reason)
        elif action == rel_rules.Action.FIRE and not self._auto_release_blocked:
            result = self._fire_release(now_s, decision.reason)
            if result.outcome is Outcome.FAILED:
                self._auto_release_blocked = True
                self._disarm_release(now_s, "autonomous release failed; ground commands only from now on")
        elif action == rel_rules.Action.SEPARATED:
            latches.separation_confirmed = True
            self._dirty()
            self._event("separation_confirmed", "notice", f"release separation confirmed: {decision.reason}")
        elif action == rel_rules.Action.SEPARATION_TIMEOUT:
            latches.separation_timed_out = True
            self._dirty()
            self._event("separation_not_seen", "warning", f"release separation not confirmed: {decision.reason}")

    def _arm_release(self, now_s: float, why: str) -> CommandResult:
        state, latches = self.state, self.state.latches
        if latches.release_fired:
            return CommandResult(Outcome.DENIED, "release already fired")
        if latches.termination_fired:
            return CommandResult(Outcome.DENIED, "flight terminated")
        if latches.release_armed:
            return CommandResult(Outcome.ACCEPTED, "release already armed")
        criteria = release_criteria(state, self.params, now_s, self.mission)
        if not criteria.ok:
            return CommandResult(Outcome.DENIED, f"release criteria fail: {criteria.describe()}")
        if self.actuators.arm("release", now_s) is False:
            return CommandResult(Outcome.FAILED, "release arming refused by the actuators")
        latches.release_armed = True
        state.release_armed_s = now_s
        self._dirty()
        self._event("arm", "warning", f"release ARMED: {why}", chain="release", reason=why)
        return CommandResult(Outcome.ACCEPTED, f"release armed; fire within {self.params['REL_ARM_TMO_S']:.0f} s")

    def _disarm_release(self, now_s: float, why: str) -> None:
        self.actuators.disarm("release", now_s)
        if self.state.latches.release_armed:
            self.state.latches.release_armed = False
            self.state.release_armed_s = NAN
            self._dirty()
            self._event("disarm", "warning", f"release disarmed: {why}", chain="release", reason=why)

    def _fire_release(self, now_s: float, why: str) -> CommandResult:
        state, latches = self.state, self.state.latches
        if latches.release_fired:
            return CommandResult(Outcome.DENIED, "release already fired")
        if latches.termination_fired:
            return CommandResult(Outcome.DENIED, "flight terminated")
        if not latches.release_armed or not self.actuators.is_armed("release"):
            return CommandResult(Outcome.DENIED, "release not armed")
        armed_s = state.release_armed_s
        if not finite(armed_s) or now_s <= armed_s:
            return CommandResult(Outcome.TEMPORARILY_REJECTED, "armed this frame: fire again")
        if now_s - armed_s > self.params["REL_ARM_TMO_S"]:
            self._disarm_release(now_s, "arm timeout")
            return CommandResult(Outcome.DENIED, "arm timed out: release disarmed")
        criteria = release_criteria(state, self.params, now_s, self.mission)
        if not criteria.ok:
            self._disarm_release(now_s, criteria.describe())
            return CommandResult(Outcome.DENIED, f"release criteria fail, disarmed: {criteria.describe()}")
        latches.release_fired = True
        latches.release_fired_wall_s = state.wall_time_s
        latches.release_reason = why
        self._dirty()
        if not self._persist_now() or not self.actuators.fire("release", self.params["REL_BURN_S"], now_s):
            latches.release_fired = False
            latches.release_fired_wall_s = NAN
            latches.release_reason = ""
            self._event("release_refused", "error", "release not fired: latch not persisted or line refused")
            return CommandResult(Outcome.FAILED, "release not fired: latch not persisted or line refused")
        state.release_fired_s = now_s
        state.release_fired_rate_mps = state.estimate.vertical_rate_mps
        self._event("release_fired", "critical", f"RELEASE FIRED: {why}", reason=why)
        return CommandResult(Outcome.ACCEPTED, "release fired")

    # ------------------------------------------------------------------ phases and altitude

    def _phase(self, now_s: float) -> None:
        state = self.state
        decision = phase_decision(state, self.params, now_s)
        apply_dwells(state, decision.dwells)
        if state.phase is PREFLIGHT:
            state.ground_altitude_m = decision.ground_altitude_m
            state.ground_altitude_s = now_s
            if decision.selftest is not None:
                state.selftest_failures = tuple(f.name for f in decision.selftest.failures)
            if decision.launch_blocked and not self._launch_blocked_reported:
                self._event("launch_blocked", "critical", decision.reason)
            self._launch_blocked_reported = decision.launch_blocked
        if decision.changed:
            self._set_phase(decision.phase, decision.reason, now_s)

    def _set_phase(self, new: Phase, reason: str, now_s: float) -> None:
        state, latches = self.state, self.state.latches
        old = state.phase
        if old is Phase.PREFLIGHT and new is not Phase.PREFLIGHT and not finite(latches.launch_wall_s):
            est = state.estimate
            latches.launch_wall_s = state.wall_time_s
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
        latches.phase_since_wall_s = state.wall_time_s
        state.phase_since_s = now_s
        if new.airborne and not finite(state.airborne_since_s):
            state.airborne_since_s = now_s
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

    def _command(self, now_s: float, body: Callable[[], CommandResult]) -> CommandResult:
        """Run a command handler; an unexpected error makes the outputs safe and is reported as FAILED."""
        try:
            return body()
        except Exception as error:  # noqa: BLE001 - a command must answer, outputs made safe first
            self._make_safe(now_s)
            self._event("logic_error", "error", f"command failed, outputs made safe: {error!r}")
            return CommandResult(Outcome.FAILED, f"internal error: {error!r}")

    def terminate(self, reason: str, now_s: float) -> CommandResult:
        """Ground flight termination (DO_FLIGHTTERMINATION).  ``reason``: free text for the event log.  After a
        finished or failed sequence, a new command fires the cutdown once more."""
        def body() -> CommandResult:
            latches = self.state.latches
            if latches.termination_fired:
                if latches.termination_stage in FINAL_STAGES:
                    latches.cutdown_attempt_limit = latches.cutdown_attempts + 1
                    self._set_stage(Stage.ARM, now_s)
                    self._dirty()
                    self._event("cutdown_retry", "critical", f"cutdown fired again by ground command: {reason}")
                    return CommandResult(Outcome.ACCEPTED, "cutdown will fire once more")
                return CommandResult(Outcome.IN_PROGRESS, f"termination in progress ({latches.termination_stage})")
            self.state.ground_terminate_s = now_s
            self.state.ground_terminate_text = reason
            self._termination(now_s)
            return CommandResult(Outcome.ACCEPTED, f"termination started ({latches.termination_stage})")
        return self._command(now_s, body)

    def arm(self, chain: str, now_s: float) -> CommandResult:
        """Arm ``"release"`` (all criteria must hold) or ``"cutdown"`` (ground test; termination arms it itself)."""
        def body() -> CommandResult:
            if chain == "release":
                return self._arm_release(now_s, "ground command")
            if chain != "cutdown":
                return CommandResult(Outcome.UNSUPPORTED, f"unknown chain {chain!r}")
            if self.state.latches.termination_fired:
                return CommandResult(Outcome.IN_PROGRESS, "the termination sequence controls the cutdown chain")
            if not self._arm_cutdown(now_s):
                return CommandResult(Outcome.FAILED, "cutdown arming refused by the actuators")
            self._event("arm", "warning", "cutdown ARMED: ground command", chain="cutdown", reason="ground command")
            return CommandResult(Outcome.ACCEPTED, "cutdown armed")
        return self._command(now_s, body)

    def disarm(self, chain: str, now_s: float) -> CommandResult:
        """Disarm ``"release"`` or ``"cutdown"`` (not while a termination sequence needs it)."""
        def body() -> CommandResult:
            if chain == "release":
                self._disarm_release(now_s, "ground command")
                return CommandResult(Outcome.ACCEPTED, "release disarmed")
            if chain != "cutdown":
                return CommandResult(Outcome.UNSUPPORTED, f"unknown chain {chain!r}")
            latches = self.state.latches
            if latches.termination_fired and latches.termination_stage not in FINAL_STAGES:
                return CommandResult(Outcome.DENIED, "termination in progress: cutdown stays armed")
            self.actuators.disarm("cutdown", now_s)
            self._event("disarm", "warning", "cutdown disarmed: ground command", chain="cutdown",
                        reason="ground command")
            return CommandResult(Outcome.ACCEPTED, "cutdown disarmed")
        return self._command(now_s, body)

    def fire_release(self, now_s: float) -> CommandResult:
        """Fire the armed release (once per flight), after re-checking every criterion."""
        return self._command(now_s, lambda: self._fire_release(now_s, "ground command"))

    def ground_go(self, now_s: float) -> CommandResult:
        """The ground's GO for release, valid for ``REL_GO_WINDOW_S``."""
        latches = self.state.latches
        if latches.release_fired:
            return CommandResult(Outcome.DENIED, "release already fired")
        if latches.termination_fired:
            return CommandResult(Outcome.DENIED, "flight terminated")
        self.state.link.go_s = now_s
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
            if state.latches.termination_fired and state.latches.termination_stage == Stage.DUMP:
                return CommandResult(Outcome.TEMPORARILY_REJECTED, "ballast dump in progress")
            est = state.estimate
            if valve == "ballast" and state.phase.airborne and not (
                    est.altitude_valid and isfinite(est.altitude_m) and est.altitude_m >= self.params["ALT_BAL_MIN_ALT"]):
                return CommandResult(Outcome.DENIED, "no ballast drop below ALT_BAL_MIN_ALT or without altitude")
            if not self.actuators.pulse_valve(valve, duration_s, now_s):
                return CommandResult(Outcome.TEMPORARILY_REJECTED, f"{valve} valve busy or refused")
            state.control.last_pulse_s = now_s  # the controller lets the balloon respond to this pulse too
            self._event("valve_pulse", "info", f"{valve} valve {duration_s:.1f} s by ground command")
            return CommandResult(Outcome.ACCEPTED, f"{valve} valve open {duration_s:.1f} s")
        return self._command(now_s, body)

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
