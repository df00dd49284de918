"""Per-frame work time of the whole daemon on the simulated HAL.

Flies the nominal scenario for a stretch of simulated time (ascent: every task busy, telemetry flowing) and prints
p50 / p99 / max of the executive's measured frame work (all tasks of a frame, real CPU time on this machine), next
to the cost of an empty frame measured in the same run as the reference floor.  Goal: p99 <= 1 ms.

    python benchmarks/frame_cost.py [--sim-seconds 1200]
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from flightsw import logsetup  # noqa: E402
from flightsw.clock import SimClock  # noqa: E402
from flightsw.executive import Executive, TaskSpec  # noqa: E402
from hil.runner import HilRun  # noqa: E402
from hil.scenario import load_scenario  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(fraction * len(ordered)) - 1)]


def empty_frame_costs(frames: int) -> list[float]:
    executive = Executive(SimClock(), [TaskSpec("empty", lambda now_s: None)], manage_gc=False)
    executive.stats.work_log = []
    executive.run(max_frames=frames)
    return executive.stats.work_log


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sim-seconds", type=float, default=1200.0)
    args = parser.parse_args()
    logsetup.configure("error")
    scenario = load_scenario(ROOT / "config" / "hil" / "nominal.yaml")
    scenario = dataclasses.replace(scenario, max_duration_s=args.sim_seconds)
    with tempfile.TemporaryDirectory() as work_dir:
        run = HilRun(scenario, work_dir=Path(work_dir))
        run.daemon.executive.stats.work_log = []
        run.run()
        work_s = run.daemon.executive.stats.work_log[20:]  # skip start-up frames
        tasks = run.daemon.executive.task_stats
    empty_s = empty_frame_costs(len(work_s))
    print(f"frame cost: {len(work_s)} frames of the nominal flight on the simulated HAL")
    print(f"{'':<26}{'p50 us':>10}{'p99 us':>10}{'max us':>10}")
    for name, values in (("full frame", work_s), ("empty frame (reference)", empty_s)):
        print(f"{name:<26}{percentile(values, 0.5) * 1e6:>10.1f}{percentile(values, 0.99) * 1e6:>10.1f}"
              f"{max(values) * 1e6:>10.1f}")
    print("per task mean / max us: " + ", ".join(
        f"{name} {stats.mean_s * 1e6:.0f}/{stats.max_s * 1e6:.0f}" for name, stats in tasks.items()))
    print(f"goal: full-frame p99 <= 1000 us -> {'met' if percentile(work_s, 0.99) <= 1e-3 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
