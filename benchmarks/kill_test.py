"""The kill test at size: SIGKILL the daemon at >= 100 instants of HIL flights, restart it, check nothing fires twice
and nothing latched is forgotten.

Runs :func:`hil.killtest.run_kill_test` on config/hil/kill-test.yaml and prints the figures: kills by the window
aimed at and by the windows actually hit, restarts, restart loops and their spans, release and cutdown line
activations (from the flight log), journal checks after kills and journal polls, the wall time, each flight's
outcome and every problem.  Goal: 0 problems over >= 100 kills (``--kills 1000`` for the long run).

    python benchmarks/kill_test.py [--kills 100] [--seed 1] [--per-flight 20] [--work-dir DIR]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hil.killtest import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
