"""The cutdown sequence: a pure state machine, ``cutdown_step(state, inputs, params) -> (state', commands, events)``.

The flight logic calls it every frame with the termination reason that holds (:func:`termination_check`), a ground
termination request if one came, the estimate's facts it needs, and the actuator manager's report on the commands
of the previous frame (:class:`Report`: ARM line failed, FIRE started / write failed / refused, burning, valve
open).  It answers with the next state, the commands for the actuators, and the events to tell the operator (each
problem once per change, never every frame).  The persisted part of the state is in the journal's latches; the
rest lives for one boot.

Stages (``state.stage``):

1. ``dump`` — only for a reason that allows it (lost link, maximum duration, float floor; the ground only with
   ``TRM_GND_DUMP``), with ballast left, above ``TRM_DUMP_MIN_ALT``: pulse the ballast valve (at most
   ``TRM_DUMP_PULSE_S`` each) until the ballast is gone, ``TRM_DUMP_MAX_S`` has passed, the balloon is below
   ``TRM_DUMP_MIN_ALT``, or the valve refuses the pulse (a valve write that fails is tried again next frame).  A ground request or an immediate reason (no altitude, ceiling,
   geofence, uncontrolled descent, battery) cuts the dump short in the frame it comes: escalation runs every frame.
2. ``arm`` — arm the cutdown chain.
3. ``fire`` — once the actuators say the chain may fire (armed, settled, ARM read back), commit the next attempt
   (``attempts`` + 1, written to the journal before the line is driven) and fire it for ``TRM_BURN_S``.  A write
   error or a refusal is not a burn: the same attempt is fired again next frame, an ARM line that fails is armed
   again, and each problem is reported once; a refusal (an attempt beyond ``ACT_CUT_MAX_TRY``) ends the sequence
   as ``failed``.
4. ``wait`` — the burn started: separation is seen when sinking faster than ``TRM_SEP_RATE`` for
   ``TRM_SEP_DWELL``; without it, ``TRM_SEP_TMO_S`` after the burn began, the next attempt fires, up to
   ``TRM_MAX_TRIES`` burns; once landed no further attempt is made.  A ground request fires again at once.
5. ``done`` (separated, or landed) or ``failed`` (burns used up).  A ground request fires once more.

``cutdown_needs_backup`` tells the daemon when to stop the termination heartbeat, so that an independent
termination board cuts: the sequence failed, or it has been trying to fire for 2 s (``FIRE_STALL_S``) without a
burn.  A restart resumes the sequence from the journal (``resume``): a dump or a wait goes on with its timers, an
attempt committed before the restart may have burned and is waited for from its commit time, never fired again.

Behaviours decided the safe way:

* A ground termination before a launch is detected (PREFLIGHT) fires: the range must always be able to cut, and a
  flight whose launch detection is held by a failing self-test is airborne under the PREFLIGHT label.  It latches
  no launch (no launch time or point: the lost-link and maximum-duration timers, which count from the launch, stay
  off).
* A termination does not cut short a release burn in progress (a half-burned release can leave the payload
  hanging); an armed release that is not burning is disarmed.  Both burn wires may then be powered together: the
  burn supply must carry both (``docs/hardware.md``).
* Once LANDED no automatic attempt follows (a burn wire on the ground is a fire and recovery hazard); a ground
  command still fires.
* A cutdown chain armed by ground command outside a termination (a test) disarms after ``TRM_ARM_TMO_S``.
* A retried ground command (MAVLink confirmation > 0: the ground did not hear our answer) never fires a latched
  termination again; a new command does.
* A burn is never refused for its length: the actuators cap it at ``ACT_BURN_MAX_S``, and a ``TRM_BURN_S`` above
  ``ACT_BURN_MAX_S``, or longer than the FIRE line's own backstop (the board's ``max_on_s`` less
  ``ACT_BACKSTOP_S``), is refused when it is set.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from flightsw.rules.termination import Reason

NAN = math.nan
FIRE_STALL_S = 2.0  # trying to fire this long without a burn: the heartbeat stops (docs/hardware.md)


class Stage:
    NONE = ""
    DUMP = "dump"
    ARM = "arm"
    FIRE = "fire"
    WAIT = "wait"
    DONE = "done"
    FAILED = "failed"

    ALL = (NONE, DUMP, ARM, FIRE, WAIT, DONE, FAILED)


#: the stages in which the sequence is over (only a ground request starts it again)
FINAL_STAGES = frozenset((Stage.DONE, Stage.FAILED))
#: reasons that may dump ballast before the cut; every other one cuts a dump short
WAITING_REASONS = frozenset(Reason.DUMP_FIRST)


class CutdownState(NamedTuple):
    """The sequence's state.  The first eight fields are persisted (the journal's ``termination_*`` and
    ``cutdown_*`` latches); the rest live for one boot."""

    fired: bool = False  # a termination is latched
    reason: str = ""
    stage: str = Stage.NONE
    stage_s: float = NAN  # when the stage began (mission time)
    attempts: int = 0  # attempts committed
    attempt_limit: int = 0
    commit_s: float = NAN  # when the last attempt was committed
    dump_started: bool = False
    pending: int = 0  # an attempt committed whose burn has not been seen to start (fired again until it does)
    write_faults: int = 0  # FIRE writes that failed in this boot
    arm_faults: int = 0  # ARM writes that failed in this boot
    valve_faults: int = 0  # ballast-valve writes that failed during the dump in this boot
    refusals: int = 0  # fires the actuators refused in this boot
    problem: str = ""  # the problem last reported (each is reported once per change)


class Report(NamedTuple):
    """The actuator manager's answer to the previous frame's commands, and the chain as it is now."""

    armed: bool = False  # the cutdown chain is armed
    ready: str = "not armed"  # why a fire would be refused now ("" when it would fire)
    firing: bool = False  # the burn wire is powered
    arm_failed: bool = False  # last frame's ARM write failed
    fire_result: str = ""  # last frame's FIRE: "started", "write_failed", "refused" ("" when none was commanded)
    fire_reason: str = ""  # why it was refused
    valve_open: bool = False  # the ballast valve is open
    dump_result: str = ""  # last frame's dump pulse: "open", "write_failed", "refused" ("" when none)


class Inputs(NamedTuple):
    now_s: float
    reason: str = ""  # the termination reason holding this frame, most severe first ("" when none)
    reason_text: str = ""
    ground: bool = False  # a ground termination request came this frame
    ground_text: str = ""
    high_enough: bool = False  # a valid altitude above TRM_DUMP_MIN_ALT
    ballast_remaining_kg: float = 0.0
    separated: bool = False  # sinking faster than TRM_SEP_RATE for TRM_SEP_DWELL
    landed: bool = False  # the phase machine says LANDED
    report: Report = Report()


class Command(NamedTuple):
    kind: str  # "close_valves", "dump_pulse" (value: seconds), "arm", "fire" (value: attempt), "disarm"
    value: float = 0.0


class Event(NamedTuple):
    name: str
    severity: str
    text: str


def dump_seconds(params, ballast_remaining_kg: float) -> float:
    """How long the pre-cut dump may run: the remaining ballast at the valve's flow, at most TRM_DUMP_MAX_S."""
    if not ballast_remaining_kg > 0.0:
        return 0.0
    return min(params["TRM_DUMP_MAX_S"], ballast_remaining_kg / params["BAL_FLOW_KGPS"])


def cutdown_step(state: CutdownState, inputs: Inputs, params) -> tuple[CutdownState, tuple[Command, ...],
                                                                        tuple[Event, ...]]:
    """One frame of the cutdown sequence (see the module documentation)."""
    commands: list[Command] = []
    events: list[Event] = []
    if not state.fired:
        if not (inputs.ground or inputs.reason):
            return state, (), ()
        state = _start(state, inputs, params, commands, events)
    else:
        state = _escalate(state, inputs, commands, events)
    stage = state.stage
    if stage == Stage.DUMP:
        state = _dump(state, inputs, params, commands, events)
        stage = state.stage
    if stage == Stage.ARM:
        commands.append(Command("arm"))
        state = state._replace(stage=Stage.FIRE, stage_s=inputs.now_s)
    elif stage == Stage.FIRE:
        state = _fire(state, inputs, commands, events)
    elif stage == Stage.WAIT:
        state = _wait(state, inputs, params, commands, events)
    return state, tuple(commands), tuple(events)


def _start(state: CutdownState, inputs: Inputs, params, commands: list, events: list) -> CutdownState:
    ground = inputs.ground
    reason = "ground" if ground else inputs.reason
    text = (f"ground command: {inputs.ground_text}" if inputs.ground_text else "ground command") if ground \
        else inputs.reason_text
    wants_dump = bool(params["TRM_GND_DUMP"]) if ground else reason in WAITING_REASONS
    dumping = wants_dump and inputs.high_enough and dump_seconds(params, inputs.ballast_remaining_kg) > 0.0
    events.append(Event("termination", "critical", f"TERMINATION: {text}" + (", dumping ballast first" if dumping
                                                                              else "")))
    if not dumping:
        commands.append(Command("close_valves"))
    return state._replace(fired=True, reason=reason, stage=Stage.DUMP if dumping else Stage.ARM,
                          stage_s=inputs.now_s, attempt_limit=state.attempts + int(params["TRM_MAX_TRIES"]),
                          dump_started=state.dump_started or dumping)


def _escalate(state: CutdownState, inputs: Inputs, commands: list, events: list) -> CutdownState:
    """A ground request or a more severe reason on a running or finished sequence."""
    stage, now_s = state.stage, inputs.now_s
    if stage == Stage.DUMP and (inputs.ground or inputs.reason and inputs.reason not in WAITING_REASONS):
        why = "ground command" if inputs.ground else inputs.reason_text
        commands.append(Command("close_valves"))
        events.append(Event("ballast_dump", "critical", f"ballast dump cut short ({why}): cutting now"))
        return state._replace(stage=Stage.ARM, stage_s=now_s)
    if not inputs.ground:
        return state
    if stage in FINAL_STAGES:
        events.append(Event("cutdown_retry", "critical", "cutdown fired again by ground command"))
        return state._replace(stage=Stage.ARM, stage_s=now_s, attempt_limit=state.attempts + 1, problem="")
    if stage == Stage.WAIT and not inputs.report.firing:
        events.append(Event("cutdown_retry", "critical", "ground command: firing the cutdown again now"))
        return state._replace(stage=Stage.FIRE, stage_s=now_s, attempt_limit=max(state.attempt_limit,
                                                                                  state.attempts + 1))
    return state  # arming, firing, or burning: the cut is under way


def _dump(state: CutdownState, inputs: Inputs, params, commands: list, events: list) -> CutdownState:
    elapsed_s = inputs.now_s - state.stage_s if math.isfinite(state.stage_s) else math.inf  # unknown: over
    max_s, remaining_kg, report = params["TRM_DUMP_MAX_S"], inputs.ballast_remaining_kg, inputs.report
    why = ""
    if not remaining_kg > 0.0:
        why = "ballast dumped"
    elif elapsed_s >= max_s:
        why = f"dump time {max_s:g} s over"
    elif not inputs.high_enough:
        why = "below the dump altitude"
    elif report.dump_result == "refused":
        why = "the ballast valve refused the pulse"
    if why:
        commands.append(Command("close_valves"))
        events.append(Event("ballast_dump", "notice" if report.dump_result != "refused" else "warning",
                            f"ballast dump over ({why}): arming cutdown"))
        return state._replace(stage=Stage.ARM, stage_s=inputs.now_s)
    if report.dump_result == "write_failed":  # tried again now, for as long as the dump may last
        state = _problem(state._replace(valve_faults=state.valve_faults + 1), events, "error",
                         "ballast valve line write failed during the dump: trying again")
    if not report.valve_open:
        pulse_s = min(params["TRM_DUMP_PULSE_S"], max_s - elapsed_s, remaining_kg / params["BAL_FLOW_KGPS"])
        commands.append(Command("dump_pulse", pulse_s))
    return state


def _fire(state: CutdownState, inputs: Inputs, commands: list, events: list) -> CutdownState:
    report, now_s = inputs.report, inputs.now_s
    if state.pending:
        result = report.fire_result
        if result == "started":
            events.append(Event("cutdown_fired", "critical", f"cutdown fired (attempt {state.pending})"))
            return state._replace(stage=Stage.WAIT, stage_s=now_s, pending=0, problem="")
        if result == "write_failed":
            state = _problem(state._replace(write_faults=state.write_faults + 1), events, "error",
                             f"cutdown FIRE line write failed (attempt {state.pending}): firing again")
        elif result == "refused":  # not a transient state of the chain (that is ``ready``): it will not change
            events.append(Event("cutdown_failed", "emergency", f"CUTDOWN FAILED: fire refused ({report.fire_reason})"))
            return state._replace(stage=Stage.FAILED, stage_s=now_s, pending=0, refusals=state.refusals + 1)
    if report.arm_failed:
        state = _problem(state._replace(arm_faults=state.arm_faults + 1), events, "error",
                         "cutdown ARM line write failed: arming again")
    if not report.armed:
        commands.append(Command("arm"))
        return state
    if report.ready:
        return state  # armed; the arm settles, or the ARM line does not read back yet
    if not state.pending and state.attempts >= state.attempt_limit:
        events.append(Event("cutdown_failed", "emergency", f"CUTDOWN FAILED: {state.attempts} attempts used"))
        return state._replace(stage=Stage.FAILED, stage_s=now_s)
    attempt = state.pending or state.attempts + 1
    commands.append(Command("fire", attempt))
    return state._replace(attempts=max(state.attempts, attempt), pending=attempt, commit_s=now_s)


def _wait(state: CutdownState, inputs: Inputs, params, commands: list, events: list) -> CutdownState:
    now_s = inputs.now_s
    elapsed_s = now_s - state.stage_s if math.isfinite(state.stage_s) else math.inf  # unknown: timed out
    if inputs.separated:
        commands.append(Command("disarm"))
        events.append(Event("cutdown_separated", "notice", f"cutdown separation confirmed after attempt "
                                                           f"{state.attempts}"))
        return state._replace(stage=Stage.DONE, stage_s=now_s)
    if inputs.report.firing or elapsed_s < params["TRM_SEP_TMO_S"]:
        return state
    if inputs.landed:
        commands.append(Command("disarm"))
        events.append(Event("cutdown_landed", "notice", f"landed after cutdown attempt {state.attempts}: no "
                                                        "further attempt"))
        return state._replace(stage=Stage.DONE, stage_s=now_s)
    if state.attempts < state.attempt_limit:
        events.append(Event("cutdown_retry", "critical", f"no separation {elapsed_s:.0f} s after attempt "
                                                         f"{state.attempts}: firing again"))
        return state._replace(stage=Stage.FIRE, stage_s=now_s)
    commands.append(Command("disarm"))
    events.append(Event("cutdown_failed", "emergency", f"CUTDOWN FAILED: no separation after {state.attempts} "
                                                       "attempts"))
    return state._replace(stage=Stage.FAILED, stage_s=now_s)


def _problem(state: CutdownState, events: list, severity: str, text: str) -> CutdownState:
    """Report ``text`` unless it is the problem reported last."""
    if state.problem == text:
        return state
    events.append(Event("cutdown_problem", severity, text))
    return state._replace(problem=text)


def resume(state: CutdownState, params) -> CutdownState:
    """The sequence after a restart, from its persisted part: a dump, a wait or a finished sequence goes on where
    it was (its timers run on from the journal's times); an attempt committed before the restart may have burned,
    so it is waited for from its commit time, never fired again; an arm starts again."""
    if not state.fired:
        return CutdownState()
    limit = state.attempt_limit if state.attempt_limit > 0 else state.attempts + int(params["TRM_MAX_TRIES"])
    state = CutdownState(fired=True, reason=state.reason, stage=state.stage, stage_s=state.stage_s,
                         attempts=state.attempts, attempt_limit=limit, commit_s=state.commit_s,
                         dump_started=state.dump_started)
    committed_here = math.isfinite(state.commit_s) and not state.commit_s < state.stage_s
    if state.stage == Stage.FIRE and state.attempts and committed_here:
        return state._replace(stage=Stage.WAIT, stage_s=state.commit_s)
    if state.stage in (Stage.FIRE, Stage.NONE, Stage.ARM):
        return state._replace(stage=Stage.ARM)
    return state


def cutdown_needs_backup(state: CutdownState, now_s: float) -> bool:
    """A termination is latched but the cut is not happening: the sequence failed, or it has been trying to fire
    for :data:`FIRE_STALL_S` without a burn (the heartbeat stops so that independent hardware cuts)."""
    if not state.fired:
        return False
    if state.stage == Stage.FAILED:
        return True
    return state.stage == Stage.FIRE and now_s - state.stage_s > FIRE_STALL_S
