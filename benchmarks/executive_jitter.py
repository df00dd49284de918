"""Executive wake-up lateness against a C loop sleeping with clock_nanosleep(TIMER_ABSTIME), in the same run.

Runs the flight executive at 20 Hz on the monotonic clock with a realistic load (a frame's worth of estimator-like
arithmetic and short-lived allocations) while a tiny C program, compiled on the fly with the system compiler,
sleeps to absolute deadlines at the same rate.  Both run at the same time, so they see the same machine.  Prints
p50 / p99 / max lateness of each and the ratio of the p99s.  Goal: executive p99 <= 1.3x the C loop's.

    python benchmarks/executive_jitter.py [--seconds 30] [--rate-hz 20]
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from flightsw.clock import MonotonicClock  # noqa: E402
from flightsw.executive import Executive, TaskSpec  # noqa: E402

C_LOOP = r"""
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
int main(int argc, char **argv) {
    long period_ns = atol(argv[1]);
    long frames = atol(argv[2]);
    struct timespec next, now;
    clock_gettime(CLOCK_MONOTONIC, &next);
    for (long i = 0; i < frames; i++) {
        next.tv_nsec += period_ns;
        while (next.tv_nsec >= 1000000000L) { next.tv_nsec -= 1000000000L; next.tv_sec++; }
        clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL);
        clock_gettime(CLOCK_MONOTONIC, &now);
        long late = (now.tv_sec - next.tv_sec) * 1000000000L + (now.tv_nsec - next.tv_nsec);
        printf("%ld\n", late);
    }
    return 0;
}
"""


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(fraction * len(ordered)) - 1)]


def realistic_load(now_s: float) -> None:
    """About what a frame does: some floating-point work and a few short-lived objects."""
    total = 0.0
    for i in range(300):
        total += math.sqrt(i + now_s) * 1.0001
    readings = [{"pressure_pa": total + i, "healthy": True} for i in range(20)]
    statistics.median(r["pressure_pa"] for r in readings)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--rate-hz", type=float, default=20.0)
    args = parser.parse_args()
    compiler = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if compiler is None:
        print("no C compiler found: cannot measure the reference loop", file=sys.stderr)
        return 2
    frames = int(args.seconds * args.rate_hz)
    period_ns = int(1e9 / args.rate_hz)
    with tempfile.TemporaryDirectory() as scratch:
        source = Path(scratch) / "loop.c"
        binary = Path(scratch) / "loop"
        source.write_text(C_LOOP)
        subprocess.run([compiler, "-O2", "-o", str(binary), str(source)], check=True)
        c_process = subprocess.Popen([str(binary), str(period_ns), str(frames)], stdout=subprocess.PIPE, text=True)

        executive = Executive(MonotonicClock(), [TaskSpec("load", realistic_load, budget_s=0.01)],
                              rate_hz=args.rate_hz)
        executive.stats.lateness_log = []
        executive.run(max_frames=frames)
        c_output, _ = c_process.communicate()

    python_ms = [late * 1e3 for late in executive.stats.lateness_log[1:]]
    c_ms = [int(line) / 1e6 for line in c_output.split()][1:]
    rows = [("executive (Python)", python_ms), ("C clock_nanosleep", c_ms)]
    print(f"executive jitter: {frames} frames at {args.rate_hz:g} Hz, both loops at once "
          f"({os.cpu_count()} CPUs)")
    print(f"{'loop':<22}{'p50 ms':>10}{'p99 ms':>10}{'max ms':>10}")
    for name, values in rows:
        print(f"{name:<22}{percentile(values, 0.5):>10.3f}{percentile(values, 0.99):>10.3f}{max(values):>10.3f}")
    ratio = percentile(python_ms, 0.99) / max(percentile(c_ms, 0.99), 1e-9)
    print(f"p99 ratio executive / C: {ratio:.2f}  (goal <= 1.3)")
    print(f"executive slips: {executive.stats.slips}, load mean {executive.stats.load_mean:.3f}, "
          f"max {executive.stats.load_max:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
