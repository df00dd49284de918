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
        return self in AIRBORNE


#: The phases in the air.
AIRBORNE = frozenset((Phase.ASCENT, Phase.FLOAT, Phase.DESCENT, Phase.TERMINATION))

# The members as module names too, for code that runs every frame: on Python 3.11 every ``Phase.NAME`` goes
# through the enum metaclass's ``__getattr__`` hook and costs about as much as a function call.
PREFLIGHT, ASCENT, FLOAT, DESCENT, LANDED, TERMINATION = (Phase.PREFLIGHT, Phase.ASCENT, Phase.FLOAT, Phase.DESCENT,
                                                          Phase.LANDED, Phase.TERMINATION)
