"""Optional real-time set-up: SCHED_FIFO priority and locked memory.

Both need privileges (CAP_SYS_NICE / CAP_IPC_LOCK, or ``LimitRTPRIO`` / ``LimitMEMLOCK`` in the systemd unit).
When they are not permitted the daemon runs on and says so clearly; it never refuses to fly for this.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

MCL_CURRENT = 1
MCL_FUTURE = 2


def apply_realtime(*, priority: int, lock_memory: bool) -> list[str]:
    """Try to switch this process to SCHED_FIFO at ``priority`` and lock its memory.  Returns warnings (empty
    when everything was applied)."""
    warnings = []
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
    except (PermissionError, OSError, AttributeError) as error:
        warnings.append(f"SCHED_FIFO priority {priority} not permitted ({error}); running with normal "
                        "scheduling: grant LimitRTPRIO or CAP_SYS_NICE (systemd/flightsw-realtime.conf)")
    if lock_memory:
        libc_name = ctypes.util.find_library("c")
        libc = ctypes.CDLL(libc_name, use_errno=True) if libc_name else None
        if libc is None or libc.mlockall(MCL_CURRENT | MCL_FUTURE) != 0:
            errno = ctypes.get_errno()
            warnings.append(f"mlockall failed ({os.strerror(errno) if errno else 'no libc'}); memory may be "
                            "paged: grant LimitMEMLOCK=infinity or CAP_IPC_LOCK")
    return warnings
