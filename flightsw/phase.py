"""Flight phases.  The number is the HEARTBEAT ``custom_mode`` the ground sees."""

from __future__ import annotations

import enum


class Phase(enum.IntEnum):
    PREFLIGHT = 0
    ASCENT = 1
    FLOAT = 2
    DESCENT = 3
    LANDED = 4
    TERMINATION = 5

    @property
    def airborne(self) -> bool:
        return self in (Phase.ASCENT, Phase.FLOAT, Phase.DESCENT, Phase.TERMINATION)
