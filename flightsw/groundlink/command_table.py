"""The command table: every MAV_CMD the vehicle accepts, with its handler.

Each handler reads the request's parameters, checks them, calls the flight logic and returns a
:class:`~flightsw.groundlink.commands.Reply`.  Parameter conventions are in each row's description (which is also
the command table in ``docs/ground.md``).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from pymavlink.dialects.v20 import common as mavlink

from flightsw.groundlink import identity, telemetry
from flightsw.groundlink.commands import OUTCOME_RESULT, CommandRequest, CommandSpec, Reply
from flightsw.phase import Phase

if TYPE_CHECKING:
    from flightsw.groundlink.link import GroundLink, LinkState

MAV_CMD_GO_RELEASE = mavlink.MAV_CMD_USER_1
CHAINS = {0: "release", 1: "cutdown"}
OVERRIDE_PREFLIGHT = 2  # COMPONENT_ARM_DISARM param3 value that overrides a failing pre-flight self-test
ABSOLUTE_FRAMES = (mavlink.MAV_FRAME_GLOBAL, mavlink.MAV_FRAME_GLOBAL_INT)
RELATIVE_FRAMES = (mavlink.MAV_FRAME_GLOBAL_RELATIVE_ALT, mavlink.MAV_FRAME_GLOBAL_RELATIVE_ALT_INT)


def _finite(value: float) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def _whole(value: float) -> int | None:
    if not _finite(value) or abs(value - round(value)) > 1e-3:
        return None
    return int(round(value))


def from_logic(result) -> Reply:
    """A flight logic ``CommandResult(outcome, message)`` as a :class:`Reply` (outcome by name, enum or str)."""
    outcome = getattr(result, "outcome", result)
    name = getattr(outcome, "name", None) or str(getattr(outcome, "value", outcome))
    code = OUTCOME_RESULT.get(name.upper(), mavlink.MAV_RESULT_FAILED)
    return Reply(code, str(getattr(result, "message", "") or ""))


def _denied(text: str) -> Reply:
    return Reply(mavlink.MAV_RESULT_DENIED, text)


def _logic(link: GroundLink, request: CommandRequest, result) -> Reply:
    """Wrap a logic result; an IN_PROGRESS one is followed by the link's progress watcher."""
    reply = from_logic(result)
    if reply.result == mavlink.MAV_RESULT_IN_PROGRESS:
        reply.poll = link.progress_watcher(request.command)
        reply.progress = getattr(reply.poll, "progress", reply.progress)
    return reply


# ---------------------------------------------------------------------------------------------- actions


def do_flight_termination(link: GroundLink, state: LinkState, req: CommandRequest, now_s: float) -> Reply:
    if not (_finite(req.p(1)) and req.p(1) > 0.5):
        return Reply(mavlink.MAV_RESULT_FAILED, "param1 must be > 0.5 to terminate")
    return _logic(link, req, link.logic.terminate("ground command DO_FLIGHTTERMINATION", now_s,
                                                  retry=req.confirmation > 0))


def component_arm_disarm(link: GroundLink, state: LinkState, req: CommandRequest, now_s: float) -> Reply:
    arm = _whole(req.p(1))
    target = _whole(req.p(3)) if _finite(req.p(3)) else 0
    if arm not in (0, 1):
        return _denied("param1 must be 1 (arm) or 0 (disarm)")
    if target == OVERRIDE_PREFLIGHT:
        if not arm:
            return _denied("param3 = 2 (pre-flight override) only with param1 = 1")
        return _logic(link, req, link.logic.override_preflight(now_s))
    chain = CHAINS.get(target)
    if chain is None:
        return _denied("param3 must be 0 (release chain), 1 (cutdown chain) or 2 (pre-flight override)")
    if arm:
        return _logic(link, req, link.logic.arm(chain, now_s))
    return _logic(link, req, link.logic.disarm(chain, now_s))


def do_gripper(link: GroundLink, state: LinkState, req: CommandRequest, now_s: float) -> Reply:
    action = _whole(req.p(2))
    if action != mavlink.GRIPPER_ACTION_RELEASE:
        return _denied("only param2 = 0 (GRIPPER_ACTION_RELEASE) is supported: a released payload cannot be grabbed")
    return _logic(link, req, link.logic.fire_release(now_s))


def do_parachute(link: GroundLink, state: LinkState, req: CommandRequest, now_s: float) -> Reply:
    action = _whole(req.p(1))
    if action == mavlink.PARACHUTE_RELEASE:
        return _logic(link, req, link.logic.terminate("ground command DO_PARACHUTE release", now_s,
                                                      retry=req.confirmation > 0))
    if action in (mavlink.PARACHUTE_ENABLE, mavlink.PARACHUTE_DISABLE):
        link.statustext("info", "DO_PARACHUTE enable/disable has no effect: termination is always available")
        return Reply(mavlink.MAV_RESULT_ACCEPTED)
    return _denied("param1 must be 0 (disable), 1 (enable) or 2 (release)")


def do_set_actuator(link: GroundLink, state: LinkState, req: CommandRequest, now_s: float) -> Reply:
    pulses = []
    for valve, value in (("ballast", req.p(1)), ("vent", req.p(2))):
        if not _finite(value) or value == 0.0:
            continue  # NaN or 0: this valve is not asked to move
        if value < 0.0:
            return _denied(f"{valve} pulse must be a positive number of seconds")
        pulses.append((valve, float(value)))
    if not pulses:
        return _denied("param1 (ballast seconds) or param2 (vent seconds) must be > 0")
    reply = Reply(mavlink.MAV_RESULT_ACCEPTED)
    for valve, seconds in pulses:
        reply = _logic(link, req, link.logic.pulse(valve, seconds, now_s))
        if reply.result != mavlink.MAV_RESULT_ACCEPTED:
            return reply
    return reply


def do_change_altitude(link: GroundLink, state: LinkState, req: CommandRequest, now_s: float) -> Reply:
    altitude_m = req.p(1)
    frame = req.frame if req.is_int else _whole(req.p(2))
    if not _finite(altitude_m):
        return _denied("param1 must be the target altitude in metres")
    if frame in RELATIVE_FRAMES:
        home = link.view.home()
        if home is None:
            return Reply(mavlink.MAV_RESULT_TEMPORARILY_REJECTED, "relative altitude needs the launch point")
        altitude_m += home[2]
    elif frame not in ABSOLUTE_FRAMES:
        return _denied("frame must be GLOBAL (MSL) or GLOBAL_RELATIVE_ALT (above launch)")
    return _logic(link, req, link.logic.set_float_target(float(altitude_m), now_s))


def do_set_mode(link: GroundLink, state: LinkState, req: CommandRequest, now_s: float) -> Reply:
    base = _whole(req.p(1))
    if base is None or not base & mavlink.MAV_MODE_FLAG_CUSTOM_MODE_ENABLED:
        return _denied("param1 must have MAV_MODE_FLAG_CUSTOM_MODE_ENABLED; the phase goes in param2")
    number = _whole(req.p(2))
    try:
        phase = Phase(number)
    except ValueError:
        return _denied(f"param2 {req.p(2):g} is not a phase number (0..{max(Phase)})")
    return _logic(link, req, link.logic.request_phase(phase, now_s))


def ground_go(link: GroundLink, state: LinkState, req: CommandRequest, now_s: float) -> Reply:
    return _logic(link, req, link.logic.ground_go(now_s))


def preflight_reboot(link: GroundLink, state: LinkState, req: CommandRequest, now_s: float) -> Reply:
    action = _whole(req.p(1))
    if action == 0:
        return Reply(mavlink.MAV_RESULT_ACCEPTED)
    if action != 1:
        return _denied("only param1 = 1 (restart flightsw) is supported; no shutdown or bootloader")
    if link.view.phase.airborne:
        return _denied(f"no restart while airborne ({link.view.phase.name})")
    if link.on_reboot is None:
        return _denied("restart is not available in this build of the daemon")
    link.statustext("notice", "restart requested by the ground")
    return Reply(mavlink.MAV_RESULT_ACCEPTED, then=link.on_reboot)


def control_high_latency(link: GroundLink, state: LinkState, req: CommandRequest, now_s: float) -> Reply:
    enable = _whole(req.p(1))
    if enable not in (0, 1):
        return _denied("param1 must be 1 (start) or 0 (stop)")
    if not any(s.high_latency for s in link.links):
        return Reply(mavlink.MAV_RESULT_FAILED, "no high-latency link is configured")
    link.high_latency_enabled = bool(enable)
    return Reply(mavlink.MAV_RESULT_ACCEPTED)


# ---------------------------------------------------------------------------------------------- reads


def _one_shot(link: GroundLink, msg_id: int, now_s: float) -> tuple[list, str]:
    """The messages answering a request for ``msg_id`` and, if none, why."""
    if msg_id == mavlink.MAVLINK_MSG_ID_AUTOPILOT_VERSION:
        return [identity.autopilot_version(link.system_id)], ""
    if msg_id == mavlink.MAVLINK_MSG_ID_HIGH_LATENCY2:
        return [link.high_latency2(now_s)], ""
    entry = telemetry.BY_ID.get(msg_id)
    if entry is None:
        return [], f"message {msg_id} is not available from this vehicle"
    built = entry.builder(link, now_s)
    return built, "" if built else f"{entry.name} has nothing to report (not fitted or not known yet)"


def request_message(link: GroundLink, state: LinkState, req: CommandRequest, now_s: float) -> Reply:
    msg_id = _whole(req.p(1))
    if msg_id is None or msg_id < 0:
        return _denied("param1 must be a message id")
    messages, why = _one_shot(link, msg_id, now_s)
    if not messages:
        entry = telemetry.BY_ID.get(msg_id)
        return Reply(mavlink.MAV_RESULT_FAILED if entry is not None else mavlink.MAV_RESULT_DENIED, why)
    if _whole(req.p(7)) == 2:  # response target: broadcast
        for message in messages:
            link.broadcast(message)
        return Reply(mavlink.MAV_RESULT_ACCEPTED)
    return Reply(mavlink.MAV_RESULT_ACCEPTED, after=messages)


def set_message_interval(link: GroundLink, state: LinkState, req: CommandRequest, now_s: float) -> Reply:
    if state.high_latency:
        return _denied("a high-latency link sends HIGH_LATENCY2 only")
    msg_id = _whole(req.p(1))
    if msg_id is None:
        return _denied("param1 must be a message id")
    ok, why = state.schedule.set_interval_us(msg_id, req.p(2), now_s)
    return Reply(mavlink.MAV_RESULT_ACCEPTED) if ok else _denied(why)


def get_message_interval(link: GroundLink, state: LinkState, req: CommandRequest, now_s: float) -> Reply:
    msg_id = _whole(req.p(1))
    if msg_id is None or msg_id < 0:
        return _denied("param1 must be a message id")
    interval = state.schedule.interval_us(msg_id) if not state.high_latency else -1
    return Reply(mavlink.MAV_RESULT_ACCEPTED,
                 after=[mavlink.MAVLink_message_interval_message(msg_id & 0xFFFF, interval)])


def request_autopilot_capabilities(link: GroundLink, state: LinkState, req: CommandRequest, now_s: float) -> Reply:
    if not (_finite(req.p(1)) and req.p(1) >= 0.5):
        return Reply(mavlink.MAV_RESULT_ACCEPTED)  # param1 0: nothing requested
    return Reply(mavlink.MAV_RESULT_ACCEPTED, after=[identity.autopilot_version(link.system_id)])


def get_home_position(link: GroundLink, state: LinkState, req: CommandRequest, now_s: float) -> Reply:
    messages = telemetry.build_home_position(link, now_s)
    if not messages:
        return Reply(mavlink.MAV_RESULT_FAILED, "home (the launch point) is not known yet")
    return Reply(mavlink.MAV_RESULT_ACCEPTED, after=messages)


# ---------------------------------------------------------------------------------------------- the table

_C = CommandSpec
COMMANDS: tuple[CommandSpec, ...] = (
    _C(mavlink.MAV_CMD_DO_FLIGHTTERMINATION, "DO_FLIGHTTERMINATION", True, do_flight_termination,
       "param1 > 0.5: terminate the flight (cutdown); otherwise FAILED, nothing happens"),
    _C(mavlink.MAV_CMD_COMPONENT_ARM_DISARM, "COMPONENT_ARM_DISARM", True, component_arm_disarm,
       "param1 1 = arm, 0 = disarm; param3 selects what: 0 (default) = payload release chain, 1 = cutdown "
       "chain, 2 (with param1 = 1) = override a failing pre-flight self-test (PREFLIGHT only). "
       "param2 (force) is ignored: nothing bypasses the flight rules"),
    _C(mavlink.MAV_CMD_DO_GRIPPER, "DO_GRIPPER", True, do_gripper,
       "param2 = 0 (GRIPPER_ACTION_RELEASE): fire the payload release, only when armed and the release rules "
       "allow; GRAB is DENIED"),
    _C(mavlink.MAV_CMD_DO_PARACHUTE, "DO_PARACHUTE", True, do_parachute,
       "param1 = 2 (RELEASE): terminate the flight; 0/1 (DISABLE/ENABLE): ACCEPTED with no effect, termination "
       "cannot be disabled from the ground"),
    _C(mavlink.MAV_CMD_DO_SET_ACTUATOR, "DO_SET_ACTUATOR", True, do_set_actuator,
       "param1 = ballast valve pulse in seconds, param2 = vent valve pulse in seconds (0 or NaN: that valve is "
       "left alone); other params ignored"),
    _C(mavlink.MAV_CMD_DO_CHANGE_ALTITUDE, "DO_CHANGE_ALTITUDE", True, do_change_altitude,
       "param1 = float target altitude in m; frame (param2, or COMMAND_INT's frame) GLOBAL = MSL, "
       "GLOBAL_RELATIVE_ALT = above the launch point"),
    _C(mavlink.MAV_CMD_DO_SET_MODE, "DO_SET_MODE", True, do_set_mode,
       "param1 must include MAV_MODE_FLAG_CUSTOM_MODE_ENABLED (1); param2 = requested phase number "
       "(0 PREFLIGHT, 1 ASCENT, 2 FLOAT, 3 DESCENT, 4 LANDED, 5 TERMINATION); the phase rules decide"),
    _C(MAV_CMD_GO_RELEASE, "USER_1 (GO for release)", True, ground_go,
       "the ground's GO for payload release (the release rules still decide when)"),
    _C(mavlink.MAV_CMD_PREFLIGHT_REBOOT_SHUTDOWN, "PREFLIGHT_REBOOT_SHUTDOWN", True, preflight_reboot,
       "param1 = 1: restart flightsw, only on the ground (DENIED while airborne); 0: nothing; shutdown and "
       "bootloader are DENIED"),
    _C(mavlink.MAV_CMD_CONTROL_HIGH_LATENCY, "CONTROL_HIGH_LATENCY", True, control_high_latency,
       "param1 1/0: start/stop HIGH_LATENCY2 on the links configured high_latency (started at boot)"),
    _C(mavlink.MAV_CMD_SET_MESSAGE_INTERVAL, "SET_MESSAGE_INTERVAL", True, set_message_interval,
       "param1 = message id, param2 = interval in us (0 = default, -1 = off); on the link it came in on"),
    _C(mavlink.MAV_CMD_REQUEST_MESSAGE, "REQUEST_MESSAGE", False, request_message,
       "param1 = message id: sent once (any telemetry message, AUTOPILOT_VERSION, HIGH_LATENCY2); "
       "param7 = 2 broadcasts it"),
    _C(mavlink.MAV_CMD_GET_MESSAGE_INTERVAL, "GET_MESSAGE_INTERVAL", False, get_message_interval,
       "param1 = message id: answered with MESSAGE_INTERVAL for this link"),
    _C(mavlink.MAV_CMD_REQUEST_AUTOPILOT_CAPABILITIES, "REQUEST_AUTOPILOT_CAPABILITIES", False,
       request_autopilot_capabilities, "param1 = 1: send AUTOPILOT_VERSION"),
    _C(mavlink.MAV_CMD_GET_HOME_POSITION, "GET_HOME_POSITION", False, get_home_position,
       "send HOME_POSITION (the launch point); FAILED before launch"),
)
