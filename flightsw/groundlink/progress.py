"""Finishing commands the flight logic answers IN_PROGRESS.

The flight logic answers IN_PROGRESS while the termination sequence runs (a repeated DO_FLIGHTTERMINATION or
DO_PARACHUTE release, or a cutdown arm/disarm while the sequence owns the chain).  The ground then gets
IN_PROGRESS ACKs with the sequence's progress every second and one final ACK when the sequence ends: ACCEPTED when
separation was seen (stage ``done``), FAILED when the attempts ran out (stage ``failed``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from pymavlink.dialects.v20 import common as mavlink

from flightsw.groundlink.commands import PROGRESS_UNKNOWN, Reply

if TYPE_CHECKING:
    from flightsw.groundlink.link import GroundLink

#: Termination stage (``latches.termination_stage``) -> progress percentage shown while it runs.
STAGE_PROGRESS = {"dump": 10, "arm": 30, "fire": 50, "wait": 70}
STAGE_DONE = "done"
STAGE_FAILED = "failed"


def progress_watcher(link: GroundLink, command: int) -> Callable[[float], Reply | None]:
    """A poll function for an IN_PROGRESS ``command``: returns the final :class:`Reply` once the termination
    sequence has ended, else ``None``.  Its ``progress`` attribute is the current percentage."""
    latches = link.view.state.latches

    def poll(now_s: float) -> Reply | None:
        stage = latches.termination_stage
        if stage == STAGE_DONE:
            return Reply(mavlink.MAV_RESULT_ACCEPTED, "termination sequence done: separation seen")
        if stage == STAGE_FAILED:
            return Reply(mavlink.MAV_RESULT_FAILED, "termination sequence failed: cutdown attempts used up")
        if not latches.termination_fired:
            return Reply(mavlink.MAV_RESULT_FAILED, "termination sequence not running")
        poll.progress = STAGE_PROGRESS.get(stage, PROGRESS_UNKNOWN)
        return None

    poll.progress = STAGE_PROGRESS.get(latches.termination_stage, PROGRESS_UNKNOWN)
    return poll
