"""The kill test at size: SIGKILL the daemon at >= 100 instants of HIL flights, restart it, check nothing fires twice.

Runs :func:`hil.killtest.run_kill_test` on config/hil/kill-test.yaml and prints the kills per window (aimed and
observed), the burn-wire activations per flight and the result.  Goal: 0 problems over >= 100 kills.

    python benchmarks/kill_test.py [--kills 100] [--seed 1] [--per-flight 20] [--work-dir DIR]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hil.killtest import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
