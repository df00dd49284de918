"""Commands from the ground: COMMAND_LONG / COMMAND_INT -> validate, dispatch, acknowledge.

:data:`COMMANDS` (in :mod:`.command_table`) is the one declaration of every command we accept; the dispatcher and
the command table in ``docs/ground.md`` both come from it.  The actions themselves live in the flight logic; this
module only checks who sent the command, de-duplicates retries, and turns the outcome into a COMMAND_ACK.

Rules, in order:

1. A command whose ``target_system`` is neither ours nor 0, or whose ``target_component`` is neither ours nor 0,
   is ignored (no ACK: it is for someone else).
2. An unknown command gets ACK UNSUPPORTED.
3. A command whose row says ``requires_signature`` is refused with ACK DENIED (and a rate-limited STATUSTEXT) unless
   the link's signing policy authorises the frame; nothing else happens.
4. A retry of a write (a row with ``requires_signature``) is answered from memory: a COMMAND_LONG with
   ``confirmation`` > 0, or any COMMAND_INT (it has no confirmation field), identical (command, parameters,
   frame) to one from the same sender system and component within :data:`RETRY_WINDOW_S`, is re-ACKed with the
   first result and never acted on twice.  Reads (REQUEST_MESSAGE ...) simply run again: the retry may mean the
   answer was lost.
5. Otherwise the handler runs; whatever a write changed is persisted before its ACK goes out (a ground station that
   heard ACCEPTED never sends the command again, so the vehicle must not forget it).  Exactly one final ACK is sent; an action that takes time is first ACKed
   IN_PROGRESS (with ``progress`` 0..100, or 255 when unknown) and later with its final result, when the
   handler's ``poll`` reports completion (at most :data:`IN_PROGRESS_TIMEOUT_S` later, then FAILED).
"""

from __future__ import annotations

import struct
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

from pymavlink.dialects.v20 import common as mavlink

if TYPE_CHECKING:
    from flightsw.groundlink.link import GroundLink, LinkState
    from flightsw.link.endpoint import Received

RETRY_WINDOW_S = 5.0
IN_PROGRESS_REPEAT_S = 1.0   # an IN_PROGRESS ACK is repeated this often while the action runs
IN_PROGRESS_TIMEOUT_S = 900.0  # a termination with a ballast dump first can take many minutes
MAX_REMEMBERED = 32
PROGRESS_UNKNOWN = 255

#: Flight logic outcome names -> MAV_RESULT.
OUTCOME_RESULT = {
    "ACCEPTED": mavlink.MAV_RESULT_ACCEPTED,
    "DENIED": mavlink.MAV_RESULT_DENIED,
    "FAILED": mavlink.MAV_RESULT_FAILED,
    "TEMPORARILY_REJECTED": mavlink.MAV_RESULT_TEMPORARILY_REJECTED,
    "IN_PROGRESS": mavlink.MAV_RESULT_IN_PROGRESS,
    "UNSUPPORTED": mavlink.MAV_RESULT_UNSUPPORTED,
}
RESULT_NAME = {value: name for name, value in OUTCOME_RESULT.items()}


@dataclass(frozen=True)
class CommandRequest:
    """A command as the handlers see it: ``params`` are param1..param7 (for COMMAND_INT, param5/6 are ``x``/``y``
    as numbers and param7 is ``z``); ``frame`` is COMMAND_INT's frame (None for COMMAND_LONG)."""

    command: int
    params: tuple[float, float, float, float, float, float, float]
    frame: int | None
    confirmation: int
    source_system: int
    source_component: int
    is_int: bool

    def p(self, index: int) -> float:
        """Parameter ``index`` (1..7)."""
        return self.params[index - 1]


@dataclass
class Reply:
    """A handler's answer.  ``result`` is a MAV_RESULT; ``text`` is said to the operator in a STATUSTEXT when the
    result is not ACCEPTED; ``after`` are messages sent on the requesting link after the ACK; ``poll`` (for
    IN_PROGRESS) is called every telemetry frame with the time and returns the final :class:`Reply` or ``None``
    while still running; ``progress`` is the percentage for IN_PROGRESS; ``then`` runs after the ACK was sent."""

    result: int
    text: str = ""
    after: list = field(default_factory=list)
    poll: Callable[[float], "Reply | None"] | None = None
    progress: int = PROGRESS_UNKNOWN
    then: Callable[[], None] | None = None


Handler = Callable[["GroundLink", "LinkState", CommandRequest, float], Reply]


@dataclass(frozen=True)
class CommandSpec:
    """One row of the command table."""

    command: int
    name: str
    requires_signature: bool
    handler: Handler
    description: str


@dataclass
class _Memory:
    """What was answered to a command, for retries: the latest ACK, and the running action if any."""

    first_s: float
    reply: Reply
    state: LinkState | None = None
    request: CommandRequest | None = None
    last_progress_s: float = 0.0
    finished: bool = True


def request_from(msg) -> CommandRequest:
    """Normalise a decoded COMMAND_LONG or COMMAND_INT."""
    if msg.get_type() == "COMMAND_INT":
        params = (msg.param1, msg.param2, msg.param3, msg.param4, float(msg.x), float(msg.y), msg.z)
        return CommandRequest(msg.command, params, msg.frame, 0, msg.get_srcSystem(), msg.get_srcComponent(), True)
    params = (msg.param1, msg.param2, msg.param3, msg.param4, msg.param5, msg.param6, msg.param7)
    return CommandRequest(msg.command, params, None, msg.confirmation, msg.get_srcSystem(), msg.get_srcComponent(),
                          False)


def _retry_key(request: CommandRequest) -> tuple:
    packed = struct.pack("<7d", *request.params)  # bytes, so NaN parameters compare equal to themselves
    return (request.source_system, request.source_component, request.is_int, request.command, request.frame, packed)


class CommandDispatcher:
    """Dispatches commands through a table of :class:`CommandSpec`; acknowledges through ``link``."""

    def __init__(self, link: GroundLink, table: tuple[CommandSpec, ...]) -> None:
        self.link = link
        self.table = {spec.command: spec for spec in table}
        self._memory: OrderedDict[tuple, _Memory] = OrderedDict()
        self.received = 0
        self.retries_answered = 0
        self.ignored_foreign = 0
        self.unsupported = 0
        self.refused_unsigned = 0
        self.results: dict[str, int] = {name: 0 for name in OUTCOME_RESULT}

    # ------------------------------------------------------------------ receive

    def is_write(self, msg) -> bool:
        """Whether ``msg`` (COMMAND_LONG / COMMAND_INT) is a command that changes something (needs a signature)."""
        spec = self.table.get(getattr(msg, "command", None))
        return spec is not None and spec.requires_signature

    def handle(self, state: LinkState, rx: Received, now_s: float, *, authorised: bool, why: str) -> None:
        msg = rx.msg
        if msg.target_system not in (0, self.link.system_id) or \
                msg.target_component not in (0, self.link.component_id):
            self.ignored_foreign += 1
            return
        self.received += 1
        request = request_from(msg)
        spec = self.table.get(request.command)
        if spec is None:
            self.unsupported += 1
            self._ack(state, request, Reply(mavlink.MAV_RESULT_UNSUPPORTED))
            return
        if spec.requires_signature and not authorised:
            self.refused_unsigned += 1
            self.link.refuse_unsigned(f"{spec.name} refused: {why}")
            self._ack(state, request, Reply(mavlink.MAV_RESULT_DENIED))
            return
        self._forget_old(now_s)
        key = _retry_key(request)
        remembered = self._memory.get(key)
        if remembered is not None and spec.requires_signature and (request.is_int or request.confirmation > 0):
            self.retries_answered += 1
            self._ack(state, request, remembered.reply)
            return
        reply = spec.handler(self.link, state, request, now_s)
        if spec.requires_signature:
            self.link.persist_before_ack()  # what the command changed is on disk before the ground hears "done"
        memory = _Memory(first_s=now_s, reply=reply)
        if reply.result == mavlink.MAV_RESULT_IN_PROGRESS and reply.poll is not None:
            memory.state, memory.request, memory.last_progress_s, memory.finished = state, request, now_s, False
        self._memory[key] = memory
        self._memory.move_to_end(key)
        while len(self._memory) > MAX_REMEMBERED:
            self._drop_oldest()
        self._finish(state, request, spec, reply)

    def _finish(self, state: LinkState, request: CommandRequest, spec: CommandSpec, reply: Reply) -> None:
        self._ack(state, request, reply)
        self.results[RESULT_NAME.get(reply.result, "FAILED")] += 1
        if reply.text and reply.result not in (mavlink.MAV_RESULT_ACCEPTED, mavlink.MAV_RESULT_IN_PROGRESS):
            self.link.statustext("warning", f"{spec.name}: {reply.text}")
        for message in reply.after:
            self.link.send_on(state, message)
        if reply.then is not None:
            reply.then()

    def _ack(self, state: LinkState, request: CommandRequest, reply: Reply) -> None:
        progress = reply.progress if reply.result == mavlink.MAV_RESULT_IN_PROGRESS else 0
        self.link.send_on(state, mavlink.MAVLink_command_ack_message(
            request.command, reply.result, progress, 0, request.source_system, request.source_component))

    # ------------------------------------------------------------------ time

    def tick(self, now_s: float) -> None:
        """Poll actions in progress: send their final ACK when done, repeat IN_PROGRESS meanwhile."""
        if not self._memory:
            return  # most frames: no command answered lately
        for memory in list(self._memory.values()):
            if memory.finished or memory.state is None or memory.request is None:
                continue
            running = memory.reply
            final = running.poll(now_s) if running.poll is not None else None
            if final is None and now_s - memory.first_s > IN_PROGRESS_TIMEOUT_S:
                final = Reply(mavlink.MAV_RESULT_FAILED, f"no final result within {IN_PROGRESS_TIMEOUT_S:.0f} s")
            spec = self.table[memory.request.command]
            if final is not None:
                final.poll = None
                memory.reply, memory.finished = final, True
                memory.first_s = now_s  # retries within the window after the end get the final result
                self._finish(memory.state, memory.request, spec, final)
            elif now_s - memory.last_progress_s >= IN_PROGRESS_REPEAT_S:
                memory.last_progress_s = now_s
                running.progress = getattr(running.poll, "progress", running.progress)
                self._ack(memory.state, memory.request, running)

    def _forget_old(self, now_s: float) -> None:
        for key in [k for k, m in self._memory.items() if m.finished and now_s - m.first_s > RETRY_WINDOW_S]:
            del self._memory[key]

    def _drop_oldest(self) -> None:
        for key, memory in self._memory.items():
            if memory.finished:
                del self._memory[key]
                return
        self._memory.popitem(last=False)
