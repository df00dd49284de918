"""Cost of a filtered-out debug call, next to an empty function call measured in the same run.

structlog is configured as the daemon configures it (level info): ``log.debug(...)`` must cost well under a
microsecond, so tasks may keep debug calls in the frame.

    python benchmarks/log_cost.py
"""

from __future__ import annotations

import io
import sys
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import structlog  # noqa: E402

from flightsw import logsetup  # noqa: E402

CALLS = 1_000_000


def nothing(*_args, **_kwargs) -> None:
    return None


def main() -> int:
    logsetup.configure("info", stream=io.StringIO(), force_json=True)
    log = structlog.get_logger("bench")
    log.debug("warm_up")  # the proxy caches the bound logger on first use
    log = structlog.get_logger("bench").bind()
    debug_s = min(timeit.repeat(lambda: log.debug("frame", altitude_m=1.0), number=CALLS, repeat=3)) / CALLS
    empty_s = min(timeit.repeat(lambda: nothing("frame", altitude_m=1.0), number=CALLS, repeat=3)) / CALLS
    print(f"filtered-out log.debug: {debug_s * 1e9:.0f} ns per call")
    print(f"empty function call (reference): {empty_s * 1e9:.0f} ns per call")
    print(f"a filtered-out debug call costs {(debug_s - empty_s) * 1e9:.0f} ns more than an empty call; "
          f"goal well under 1000 ns per call: {'met' if debug_s < 1e-6 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
