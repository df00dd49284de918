"""Cost of one ``BalloonWorld.step(0.05, ...)`` and of the standard-atmosphere calls, in microseconds.

Run from the repository root: ``python benchmarks/physics_step.py``.
"""

from __future__ import annotations

import os
import sys
import time
import timeit

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from flightsw import atmosphere  # noqa: E402
from hil.physics import BalloonConfig, BalloonWorld, PayloadConfig, WorldConfig, WorldInputs  # noqa: E402

DT_S = 0.05


def per_step_us(config: WorldConfig, sim_seconds: float) -> tuple[float, str]:
    world, inputs = BalloonWorld(config, seed=1), WorldInputs()
    steps = int(sim_seconds / DT_S)
    start = time.perf_counter()
    for _ in range(steps):
        world.step(DT_S, inputs)
    elapsed = time.perf_counter() - start
    s = world.state
    summary = f"t={s.time_s:.0f} s alt={s.altitude_m:.0f} m burst={s.burst} landed={s.landed}"
    return elapsed / steps * 1e6, summary


def main() -> None:
    for name, fn, arg in (("properties", atmosphere.properties, 25000.0),
                          ("altitude_from_pressure_m", atmosphere.altitude_from_pressure_m, 2500.0),
                          ("temperature_k", atmosphere.temperature_k, 25000.0)):
        n = 200_000
        cost = timeit.timeit(lambda: fn(arg), number=n) / n * 1e6
        print(f"atmosphere.{name}: {cost:.2f} us/call (incl. lambda overhead)")
    latex = WorldConfig()
    cost, summary = per_step_us(latex, 9000.0)
    print(f"latex flight, step({DT_S}): {cost:.2f} us/step  [{summary}]")
    zp = WorldConfig(balloon=BalloonConfig(kind="zero_pressure", envelope_mass_kg=2.0, full_volume_m3=1000.0,
                                           fill_mode="free_lift", free_lift_kg=1.0),
                     payload=PayloadConfig(payload_mass_kg=3.0, ballast_mass_kg=2.0))
    cost, summary = per_step_us(zp, 4 * 3600.0)
    print(f"zero-pressure flight to float, step({DT_S}): {cost:.2f} us/step  [{summary}]")


if __name__ == "__main__":
    main()
