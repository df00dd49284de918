"""``flightsw hil``: one flight (lockstep or real time) or a Monte-Carlo batch."""

from __future__ import annotations

import argparse
import dataclasses
import random
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from hil.expect import evaluate
from hil.record import RunRecord
from hil.scenario import Scenario, load_scenario


def fly(scenario: Scenario, *, seed: int | None = None, work_dir: Path, pace: float = 0.0,
        links: tuple = (), progress: bool = False) -> RunRecord:
    """Fly ``scenario`` once and check its expectations."""
    from hil.report import ProgressBar
    from hil.runner import HilRun

    bar = ProgressBar(scenario.max_duration_s, enabled=None if progress else False)
    try:
        run = HilRun(scenario, work_dir=work_dir, seed=seed, pace=pace, links=links, progress=bar)
        record = run.run()
    finally:
        bar.close()
    evaluate(scenario.expect, record)
    return record


def disperse(scenario: Scenario, run_index: int) -> tuple[Scenario, int]:
    """The scenario with its Monte-Carlo dispersions drawn for run ``run_index``, and that run's seed."""
    seed = scenario.seed * 1000 + run_index
    rng = random.Random(seed)
    spread = scenario.dispersions
    world = scenario.world
    balloon = world.balloon
    balloon = dataclasses.replace(
        balloon,
        target_ascent_rate_mps=balloon.target_ascent_rate_mps * max(0.5, 1 + rng.gauss(0, spread.lift_fraction)),
        free_lift_kg=balloon.free_lift_kg * max(0.5, 1 + rng.gauss(0, spread.lift_fraction)),
        burst_diameter_spread=spread.burst_diameter_fraction)
    wind_scale = max(0.0, 1 + rng.gauss(0, spread.wind_fraction))
    layers = tuple(dataclasses.replace(layer, speed_mps=layer.speed_mps * wind_scale) for layer in world.wind.layers)
    world = dataclasses.replace(world, balloon=balloon, wind=dataclasses.replace(world.wind, layers=layers))
    return dataclasses.replace(scenario, world=world), seed


def _fly_one(args: tuple[Scenario, int, str]) -> RunRecord:
    scenario, run_index, work_root = args
    dispersed, seed = disperse(scenario, run_index)
    from flightsw import logsetup

    logsetup.configure("silent")  # the summary reports the runs
    return fly(dispersed, seed=seed, work_dir=Path(work_root) / f"run-{run_index:04d}")


def monte_carlo(scenario: Scenario, runs: int, *, jobs: int | None, work_root: Path) -> list[RunRecord]:
    tasks = [(scenario, index, str(work_root)) for index in range(runs)]
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        return list(pool.map(_fly_one, tasks))


def summarise(records: list[RunRecord]) -> str:
    lines = [f"Monte Carlo: {len(records)} runs, {sum(r.passed for r in records)} passed"]
    names = [name for name, _, _ in records[0].expectations] if records else []
    for index, name in enumerate(names):
        passed = sum(1 for r in records if r.expectations[index][1])
        lines.append(f"  {name:<45} {passed}/{len(records)} ({100 * passed / len(records):.0f} %)")
    altitudes = sorted(r.max_altitude_m for r in records)
    if altitudes:
        lines.append(f"  max altitude m: min {altitudes[0]:.0f}  median {altitudes[len(altitudes) // 2]:.0f}  "
                     f"max {altitudes[-1]:.0f}")
    lines.append(f"RESULT: {'PASS' if all(r.passed for r in records) else 'FAIL'}")
    return "\n".join(lines)


def run_hil(args: argparse.Namespace, *, default_scenario: Path) -> int:
    from hil.report import format_summary, write_report

    scenario = load_scenario(args.scenario or default_scenario)
    out_dir = args.out
    temp = None
    if out_dir is None:
        temp = tempfile.TemporaryDirectory(prefix="flightsw-hil-")
        out_dir = Path(temp.name)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        print(f"error: {out_dir}: cannot create the output folder: {error.strerror or error}", file=sys.stderr)
        return 2
    try:
        if args.runs > 1:
            records = monte_carlo(scenario, args.runs, jobs=args.jobs, work_root=out_dir)
            print(summarise(records))
            return 0 if all(r.passed for r in records) else 1
        if args.realtime:
            print(f"real time: ground link on UDP to {args.udp} "
                  f"(mavproxy.py --master=udpin:0.0.0.0:{args.udp.rsplit(':', 1)[-1]})", file=sys.stderr)
        links = ()
        if args.realtime:
            from flightsw.link.transport import LinkConfig

            # Like ArduPilot SITL: send to a ground station on this machine; replies come back to our port.
            links = (LinkConfig(name="udp", kind="udp", send_to=args.udp, local=True, signing_link_id=3),)
        record = fly(scenario, seed=args.seed, work_dir=out_dir, pace=1.0 if args.realtime else 0.0,
                     links=links, progress=not args.no_progress)
        print(format_summary(record))
        if args.out is not None:
            try:
                written = write_report(record, out_dir)
            except OSError as error:  # a full disk, a read-only folder: say so, the flight's result stands
                print(f"error: {error.filename or out_dir}: the report could not be written: "
                      f"{error.strerror or error}", file=sys.stderr)
                return 2
            print(f"report: {', '.join(str(path) for path in written)}")
        return 0 if record.passed else 1
    finally:
        if temp is not None:
            temp.cleanup()
