"""Simulated seconds per wall second for the nominal full flight (launch to landing), on one core.

Prints the speed-up next to the reference of a physics-only run of the same flight measured in the same run (the
floor set by the balloon model alone).  Goal: >= 500x real time for the whole daemon in lockstep.

    python benchmarks/hil_speed.py [--scenario config/hil/nominal.yaml] [--runs 3]

The figure is the median of ``--runs`` flights (the same flight each time: a run is reproducible from its seed);
every run's figure is printed after it, since a shared machine's speed wanders from minute to minute.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from flightsw import logsetup  # noqa: E402
from hil.physics.balloon import BalloonWorld, WorldInputs  # noqa: E402
from hil.runner import HilRun  # noqa: E402
from hil.scenario import load_scenario  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", type=Path, default=ROOT / "config" / "hil" / "nominal.yaml")
    parser.add_argument("--runs", type=int, default=3, help="flights to fly; the median is the figure (default 3)")
    args = parser.parse_args()
    if args.runs < 1:
        parser.error("--runs must be >= 1")
    logsetup.configure("error")
    scenario = load_scenario(args.scenario)
    wall_times_s, durations_s = [], set()
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory() as work_dir:
            run = HilRun(scenario, work_dir=Path(work_dir))
            record = run.run()
        wall_times_s.append(record.wall_time_s)
        durations_s.add(record.duration_s)
    if len(durations_s) > 1:  # a run is reproducible from its seed: runs of different length are not one flight
        print(f"HIL speed: the runs flew different durations {sorted(durations_s)} s; no figure", file=sys.stderr)
        return 1
    simulated_s = record.duration_s
    wall_s = statistics.median(wall_times_s)
    world = BalloonWorld(scenario.world, seed=scenario.seed)
    inputs = WorldInputs()
    began = time.perf_counter()
    for _ in range(int(simulated_s / 0.05)):
        world.step(0.05, inputs)
    physics_wall_s = time.perf_counter() - began
    frames = round(simulated_s * run.config.executive.rate_hz)
    speeds = sorted(simulated_s / wall for wall in wall_times_s)
    print(f"HIL speed, scenario {scenario.name!r}: {simulated_s:.0f} simulated s ({record.ended_by}), "
          f"{platform.python_implementation()} {platform.python_version()} {platform.python_compiler()}")
    print(f"  whole daemon in lockstep, median of {args.runs}: {wall_s:.1f} s wall -> {simulated_s / wall_s:.0f}x "
          f"real time ({wall_s / frames * 1e6:.0f} us per {frames} frames); runs: "
          + ", ".join(f"{speed:.0f}x" for speed in speeds))
    print(f"  physics alone (reference): {physics_wall_s:.2f} s wall -> {simulated_s / physics_wall_s:.0f}x")
    print(f"  goal >= 500x: {'met' if simulated_s / wall_s >= 500 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
