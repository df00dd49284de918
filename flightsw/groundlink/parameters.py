"""The MAVLink parameter protocol (https://mavlink.io/en/services/parameter.html) over :class:`flightsw.params.Params`.

* PARAM_REQUEST_LIST starts streaming every parameter, in index order, on the link that asked; a few go out per
  frame (:data:`LIST_PER_FRAME`, or one every :data:`HIGH_LATENCY_LIST_INTERVAL_S` on a high-latency link) so the
  frame is never late.  A new request restarts the stream.
* PARAM_REQUEST_READ answers one PARAM_VALUE, by index when ``param_index`` >= 0, otherwise by name.  A name or
  index we do not have gets no answer (the protocol's rule; the ground station times out).
* PARAM_SET answers PARAM_VALUE on every link (so every ground station stays in sync) with the value now held:
  the new one when accepted, the unchanged one when refused, plus a STATUSTEXT saying why.  An unknown name gets
  only the STATUSTEXT.  A set is stored before it is applied: ``on_params_changed(values)`` gets the
  parameters that would differ from their defaults, and when it answers False (the store could not be written)
  the set is refused and the PARAM_VALUE tells the unchanged value.

Encoding: one, declared in AUTOPILOT_VERSION's capabilities: PARAM_ENCODE_BYTEWISE, the convention MAVSDK and
QGroundControl use with a vehicle that is not ArduPilot.  The four bytes of ``param_value`` hold a value of the
type ``param_type`` names: a float32 for MAV_PARAM_TYPE_REAL32, an integer in its first 1, 2 or 4 bytes for the
integer types (the unused bytes zero).  Every value goes out as REAL32 holding the number, integer parameters
included (whole numbers, exact up to 2**24), so ground stations send REAL32 back: MAVProxy sends ``float(value)``
with REAL32, MAVSDK an integer's bytes with INT32.  PARAM_SET is decoded by that rule and nothing else (no guessing
between encodings); then a float parameter takes the number rounded to 7 significant digits (so "0.1" is stored
as 0.1, not 0.100000001) and an integer parameter only an exact whole number (:meth:`ParamDecl.coerce`): the
bytes ``01 00 00 00`` sent as REAL32 are 1.4e-45, which is refused, never read as 0.  A value in a type we cannot
decode (64-bit types) or with stray bytes (a C-cast float sent with an 8- or 16-bit integer type) is refused.
"""

from __future__ import annotations

import math
import struct
from typing import TYPE_CHECKING, Callable

from pymavlink.dialects.v20 import common as mavlink

from flightsw.params import ParamDecl, Params

if TYPE_CHECKING:
    from flightsw.groundlink.link import GroundLink, LinkState
    from flightsw.link.endpoint import Received

LIST_PER_FRAME = 2
HIGH_LATENCY_LIST_INTERVAL_S = 1.0

#: struct formats of the integer MAV_PARAM_TYPEs, for values encoded bytewise in the float's four bytes.
BYTEWISE_FORMATS = {
    mavlink.MAV_PARAM_TYPE_UINT8: "<B", mavlink.MAV_PARAM_TYPE_INT8: "<b",
    mavlink.MAV_PARAM_TYPE_UINT16: "<H", mavlink.MAV_PARAM_TYPE_INT16: "<h",
    mavlink.MAV_PARAM_TYPE_UINT32: "<I", mavlink.MAV_PARAM_TYPE_INT32: "<i",
}


def float32_to_decimal(value: float) -> float:
    """The shortest decimal (7 significant digits) that a float32 ``value`` stands for."""
    if not math.isfinite(value):
        return value
    return float(f"{value:.7g}")


class ParameterService:
    """Answers the parameter protocol for one vehicle; ``link`` sends and reports."""

    def __init__(self, link: GroundLink, params: Params,
                 on_params_changed: Callable[[dict], None] | None = None) -> None:
        self.link = link
        self.params = params
        self.on_params_changed = on_params_changed
        self.sets_accepted = 0
        self.sets_rejected = 0
        self.values_sent = 0

    # ------------------------------------------------------------------ encoding

    def param_value(self, index: int) -> mavlink.MAVLink_param_value_message:
        decl = self.params.declarations[index]
        return mavlink.MAVLink_param_value_message(decl.name.encode("ascii"), float(self.params[decl.name]),
                                                   mavlink.MAV_PARAM_TYPE_REAL32, len(self.params), index)

    def _targets_us(self, msg) -> bool:
        return (msg.target_system in (0, self.link.system_id)
                and msg.target_component in (0, self.link.component_id))

    # ------------------------------------------------------------------ requests

    def handle_request_list(self, state: LinkState, rx: Received, now_s: float) -> None:
        if not self._targets_us(rx.msg):
            return
        state.param_cursor = 0
        state.param_next_s = now_s

    def handle_request_read(self, state: LinkState, rx: Received, now_s: float) -> None:
        msg = rx.msg
        if not self._targets_us(msg):
            return
        if msg.param_index >= 0:
            index = msg.param_index if msg.param_index < len(self.params) else None
        else:
            index = self.params.index.get(_clean_id(msg.param_id))
        if index is not None:
            self._send(state, self.param_value(index))

    def handle_set(self, state: LinkState, rx: Received, now_s: float, *, authorised: bool, why: str) -> None:
        """Apply a PARAM_SET.  ``authorised`` is the signing policy's verdict; ``why`` explains a refusal."""
        msg = rx.msg
        if not self._targets_us(msg):
            return
        name = _clean_id(msg.param_id)
        decl = self.params.by_name.get(name)
        if decl is None:
            self.sets_rejected += 1
            if authorised:
                self.link.statustext("warning", f"PARAM_SET refused: unknown parameter {name}")
            else:
                self.link.refuse_unsigned(f"PARAM_SET {name} refused: {why}")
            return
        index = self.params.index[name]
        if not authorised:
            self.sets_rejected += 1
            self.link.refuse_unsigned(f"PARAM_SET {name} refused: {why}")
            self._broadcast(index)
            return
        value, undecodable = incoming_value(decl, msg.param_type, raw_value_bytes(rx))
        ok, reason = (False, f"{name}: {undecodable}") if undecodable else self._set_persisted(name, value)
        if ok:
            self.sets_accepted += 1
            self.link.statustext("info", f"{name} set to {self.params[name]:g}")
        else:
            self.sets_rejected += 1
            self.link.statustext("warning", f"PARAM_SET refused: {reason}")
        self._broadcast(index)

    def _set_persisted(self, name: str, value: float) -> tuple[bool, str]:
        """Set ``name`` only once the new values are stored: a value that could not be persisted is refused (and
        the PARAM_VALUE that follows tells the value still held), so nothing reverts silently at a restart."""
        coerced, reason = self.params.check(name, value, self.link.view.phase)
        if coerced is None:
            return False, reason
        if self.on_params_changed is not None and coerced != self.params[name]:
            values = self.params.non_default()
            values.pop(name, None)
            if coerced != self.params.by_name[name].default:
                values[name] = coerced
            if self.on_params_changed(values) is False:
                return False, f"{name} not stored (storage failed): unchanged"
        return self.params.set(name, coerced, self.link.view.phase)

    def _broadcast(self, index: int) -> None:
        """PARAM_VALUE for ``index`` on every link, so every ground station stays in sync."""
        self.values_sent += 1
        self.link.broadcast(self.param_value(index))

    # ------------------------------------------------------------------ streaming

    def tick(self, state: LinkState, now_s: float) -> None:
        """Send the next few parameters of a list request in progress on this link."""
        if state.param_cursor is None or now_s + 1e-9 < state.param_next_s:
            return
        if state.high_latency:
            batch = 1
            state.param_next_s = now_s + HIGH_LATENCY_LIST_INTERVAL_S
        else:
            batch = LIST_PER_FRAME
        count = len(self.params)
        for _ in range(batch):
            if state.param_cursor >= count:
                break
            self._send(state, self.param_value(state.param_cursor))
            state.param_cursor += 1
        if state.param_cursor >= count:
            state.param_cursor = None

    def _send(self, state: LinkState, msg) -> None:
        self.values_sent += 1
        self.link.send_on(state, msg)


def raw_value_bytes(rx: Received) -> bytes:
    """The four bytes of PARAM_SET's ``param_value`` exactly as received (it is the first payload field)."""
    header = 10 if rx.mavlink_version == 2 else 6
    return bytes(rx.frame[header:header + 4]).ljust(4, b"\x00")


def incoming_value(decl: ParamDecl, param_type: int, raw: bytes) -> tuple[float | None, str]:
    """The number a PARAM_SET means for ``decl`` under PARAM_ENCODE_BYTEWISE (see the module docstring), or
    ``(None, why)``; range and type checks are left to ``Params``."""
    if param_type == mavlink.MAV_PARAM_TYPE_REAL32:
        value = struct.unpack_from("<f", raw)[0]
        return (float32_to_decimal(value) if decl.kind is float else value), ""
    fmt = BYTEWISE_FORMATS.get(param_type)
    if fmt is None:
        return None, f"param_type {param_type} is not supported (REAL32 or an integer type of up to 32 bits)"
    if any(raw[struct.calcsize(fmt):]):
        return None, (f"bytes {raw.hex(' ')} are not a bytewise {_TYPE_NAMES[param_type]} (unused bytes not zero; "
                      "PARAM_ENCODE_BYTEWISE, not C cast)")
    return float(struct.unpack_from(fmt, raw)[0]), ""


_TYPE_NAMES = {mavlink.MAV_PARAM_TYPE_UINT8: "UINT8", mavlink.MAV_PARAM_TYPE_INT8: "INT8",
               mavlink.MAV_PARAM_TYPE_UINT16: "UINT16", mavlink.MAV_PARAM_TYPE_INT16: "INT16",
               mavlink.MAV_PARAM_TYPE_UINT32: "UINT32", mavlink.MAV_PARAM_TYPE_INT32: "INT32"}


def _clean_id(param_id) -> str:
    if isinstance(param_id, (bytes, bytearray)):
        param_id = param_id.split(b"\x00", 1)[0].decode("ascii", errors="replace")
    return str(param_id).split("\x00", 1)[0].strip()
