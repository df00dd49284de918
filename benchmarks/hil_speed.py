"""Simulated seconds per wall second for the nominal full flight (launch to landing), on one core.

Prints the speed-up next to the reference of a physics-only run of the same flight measured in the same run (the
floor set by the balloon model alone).  Goal: >= 500x real time for the whole daemon in lockstep.

    python benchmarks/hil_speed.py [--scenario config/hil/nominal.yaml]
"""

from __future__ import annotations

import argparse
import platform
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
    args = parser.parse_args()
    logsetup.configure("error")
    scenario = load_scenario(args.scenario)
    with tempfile.TemporaryDirectory() as work_dir:
        run = HilRun(scenario, work_dir=Path(work_dir))
        record = run.run()
    simulated_s = record.duration_s
    world = BalloonWorld(scenario.world, seed=scenario.seed)
    inputs = WorldInputs()
    began = time.perf_counter()
    for _ in range(int(simulated_s / 0.05)):
        world.step(0.05, inputs)
    physics_wall_s = time.perf_counter() - began
    frames = round(simulated_s * run.config.executive.rate_hz)
    print(f"HIL speed, scenario {scenario.name!r}: {simulated_s:.0f} simulated s ({record.ended_by}), "
          f"{platform.python_implementation()} {platform.python_version()} {platform.python_compiler()}")
    print(f"  whole daemon in lockstep: {record.wall_time_s:.1f} s wall -> {simulated_s / record.wall_time_s:.0f}x "
          f"real time ({record.wall_time_s / frames * 1e6:.0f} us per {frames} frames)")
    print(f"  physics alone (reference): {physics_wall_s:.2f} s wall -> {simulated_s / physics_wall_s:.0f}x")
    print(f"  goal >= 500x: {'met' if simulated_s / record.wall_time_s >= 500 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
