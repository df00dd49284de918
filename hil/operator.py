"""The scripted operator: a pymavlink ground station on the HIL's loopback link.

It sends a signed HEARTBEAT every second (as a ground station does, so the link is alive), and the scenario's
commands as COMMAND_LONG / PARAM_SET, signed with the ground station's key unless the action says otherwise.
It reads the link only for a few seconds after it sent something (to collect the COMMAND_ACKs and STATUSTEXTs),
and drops telemetry otherwise, to keep the simulation fast.

A caller that needs to know which of its commands were answered (the kill test) sends them with a ``token``:
an ACK of a command is matched to the oldest token sent with that command and not yet answered (a PARAM_VALUE
of the parameter for a PARAM_SET), and reported to ``on_ack(token, command, result)`` the moment it is heard.
``retry=True`` sends a command as a retry (COMMAND_LONG ``confirmation`` 1: the ground did not hear the answer).
"""

from __future__ import annotations

from pymavlink.dialects.v20 import common as mavlink2

from flightsw.link.signing import unix_to_signing_timestamp
from hil.loopback import LoopbackTransport

M = mavlink2
GCS_SYSTEM_ID = 255
GCS_COMPONENT_ID = 190  # MAV_COMP_ID_MISSIONPLANNER
SIGNING_LINK_ID = 7
LISTEN_AFTER_SEND_S = 10.0
COMMAND_NAMES = {value: name.removeprefix("MAV_CMD_") for name, value in vars(mavlink2).items()
                 if name.startswith("MAV_CMD_") and isinstance(value, int)}
RESULT_NAMES = {entry: info.name.removeprefix("MAV_RESULT_")
                for entry, info in mavlink2.enums["MAV_RESULT"].items()}


VALUE = "value"  # stands for the action's ``value`` in a command's parameters

#: What each scenario operator command sends: the COMMAND_LONG's command and parameters (param1 first; ``VALUE``
#: is the action's ``value``) and what it asks for.  ``set_param`` (command None) is a PARAM_SET of ``name`` =
#: ``value`` instead.
OPERATOR_COMMANDS: dict[str, tuple[int | None, tuple, str]] = {
    "terminate": (M.MAV_CMD_DO_FLIGHTTERMINATION, (1,), "terminate the flight (cutdown)"),
    "arm_release": (M.MAV_CMD_COMPONENT_ARM_DISARM, (1, 0, 0), "arm the payload release chain"),
    "disarm_release": (M.MAV_CMD_COMPONENT_ARM_DISARM, (0, 0, 0), "disarm the payload release chain"),
    "arm_cutdown": (M.MAV_CMD_COMPONENT_ARM_DISARM, (1, 0, 1), "arm the cutdown chain"),
    "fire_release": (M.MAV_CMD_DO_GRIPPER, (1, M.GRIPPER_ACTION_RELEASE), "fire the payload release (armed first)"),
    "go": (M.MAV_CMD_USER_1, (1,), "the ground's GO for release (the release rules still decide when)"),
    "change_altitude": (M.MAV_CMD_DO_CHANGE_ALTITUDE, (VALUE, M.MAV_FRAME_GLOBAL),
                        "set the float target altitude to `value` m (MSL)"),
    "pulse_ballast": (M.MAV_CMD_DO_SET_ACTUATOR, (VALUE, 0), "open the ballast valve for `value` s"),
    "pulse_vent": (M.MAV_CMD_DO_SET_ACTUATOR, (0, VALUE), "open the vent valve for `value` s"),
    "set_phase": (M.MAV_CMD_DO_SET_MODE, (M.MAV_MODE_FLAG_CUSTOM_MODE_ENABLED, VALUE),
                  "request phase number `value` (0 PREFLIGHT ... 5 TERMINATION)"),
    "override_preflight": (M.MAV_CMD_COMPONENT_ARM_DISARM, (1, 21196, 2), "override a failing pre-flight self-test"),
    "set_param": (None, (), "set parameter `name` to `value`"),
}


class _Sink:
    """pymavlink writes packed frames to ``file.write``."""

    def __init__(self, transport: LoopbackTransport) -> None:
        self.transport = transport

    def write(self, data: bytes) -> None:
        self.transport.write(data)


class ScriptedOperator:
    """A ground station.  ``key`` is the shared signing key (None: unsigned)."""

    def __init__(self, transport: LoopbackTransport, *, key: bytes | None, target_system: int,
                 target_component: int, wall_time_s, on_ack=None) -> None:
        self.transport = transport
        self.target_system = target_system
        self.target_component = target_component
        self._wall_time_s = wall_time_s
        self.mav = M.MAVLink(_Sink(transport), srcSystem=GCS_SYSTEM_ID, srcComponent=GCS_COMPONENT_ID)
        self.mav.robust_parsing = True
        self.key = key
        self._heard: list[tuple[str, str]] = []  # ("ack:COMMAND:RESULT" or "statustext", text) since last read
        self._listen_until_s = -1.0
        self.on_ack = on_ack
        self.awaiting: dict[object, list] = {}  # command id (or ("param", name)) -> tokens not yet answered
        self._heartbeat = self.mav.heartbeat_encode(M.MAV_TYPE_GCS, M.MAV_AUTOPILOT_INVALID, 0, 0,
                                                    M.MAV_STATE_ACTIVE)  # the same fields every second
        if key is not None:
            self.mav.signing.secret_key = key
            self.mav.signing.link_id = SIGNING_LINK_ID
            self.mav.signing.timestamp = unix_to_signing_timestamp(wall_time_s())

    def _send(self, message, *, signed: bool = True) -> None:
        signing = self.mav.signing
        signing.sign_outgoing = bool(signed and self.key is not None)
        if signing.sign_outgoing:
            signing.timestamp = max(signing.timestamp, unix_to_signing_timestamp(self._wall_time_s()))
        self.mav.send(message)

    def heartbeat(self, now_s: float) -> list[tuple[str, str]]:
        """Send the once-a-second heartbeat; return what was heard since the last one (acks, status texts)."""
        self._send(self._heartbeat)
        inbox = self.transport.inbox
        if inbox:
            data = b"".join(inbox)
            inbox.clear()
            self.receive(data, now_s)
        heard, self._heard = self._heard, []
        return heard

    def receive(self, data: bytes, now_s: float) -> None:
        """Frames from the vehicle: read while listening or waiting for an answer, else dropped (telemetry nobody
        waits for).  The link's inbox is read once a second by :meth:`heartbeat`; a harness may call this as
        the vehicle sends instead, to hear every answer the moment it is sent."""
        if now_s > self._listen_until_s and not self.awaiting:
            return
        for message in self.mav.parse_buffer(data) or []:
            kind = message.get_type()
            if kind == "COMMAND_ACK":
                command = COMMAND_NAMES.get(message.command, str(message.command))
                result = RESULT_NAMES.get(message.result, str(message.result))
                self._heard.append((f"ack:{command}:{result}", f"{command}: {result}"))
                self._answered(message.command, command, result)
            elif kind == "STATUSTEXT":
                self._heard.append(("statustext", message.text))
            elif kind == "PARAM_VALUE" and self.awaiting:
                name = message.param_id.rstrip("\x00") if isinstance(message.param_id, str) else ""
                self._answered(("param", name), "PARAM_SET", "ACCEPTED")

    def _answered(self, key, command: str, result: str) -> None:
        tokens = self.awaiting.get(key)
        if not tokens:
            return  # an answer to nothing we wait for (a repeated or final ACK of an answered command)
        token = tokens.pop(0)
        if not tokens:
            del self.awaiting[key]
        if self.on_ack is not None:
            self.on_ack(token, command, result)

    def listen(self, now_s: float) -> None:
        """Read the link for the next few seconds (the answer to something just sent)."""
        self._listen_until_s = now_s + LISTEN_AFTER_SEND_S

    def command(self, command: int, *params: float, signed: bool = True, confirmation: int = 0) -> None:
        values = [float(p) for p in params] + [0.0] * (7 - len(params))
        self._send(self.mav.command_long_encode(self.target_system, self.target_component, command, confirmation,
                                                *values), signed=signed)

    def set_param(self, name: str, value: float, *, signed: bool = True) -> None:
        self._send(self.mav.param_set_encode(self.target_system, self.target_component, name.encode(), value,
                                             M.MAV_PARAM_TYPE_REAL32), signed=signed)

    def perform(self, action, *, token=None, retry: bool = False) -> str:
        """Send one scenario :class:`hil.scenario.OperatorAction`; returns a description for the report.
        ``token``: wait for the answer (see the module documentation); ``retry``: send it as a retry."""
        name, value, signed = action.command, action.value, action.signed
        if name == "set_param":
            if token is not None:
                self.awaiting.setdefault(("param", action.name), []).append(token)
            self.set_param(action.name, value, signed=signed)
            return f"PARAM_SET {action.name}={value:g}"
        command, params, _ = OPERATOR_COMMANDS[name]
        if token is not None:
            self.awaiting.setdefault(command, []).append(token)
        self.command(command, *(value if param == VALUE else param for param in params), signed=signed,
                     confirmation=1 if retry else 0)
        return f"{name} ({'signed' if signed and self.key else 'unsigned'}{', retry' if retry else ''})"


def make_key(seed: int) -> bytes:
    """A per-run signing key (reproducible from the seed, never reused for flight)."""
    import hashlib

    return hashlib.sha256(f"flightsw-hil-{seed}".encode()).digest()
