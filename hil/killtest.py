"""The kill test: SIGKILL the daemon at aimed instants of HIL flights, restart it as systemd would, check nothing
fires twice and nothing latched is forgotten.

Each flight runs ``python -m hil.killable`` in its own work directory.  The parent kills it with SIGKILL, then
does what systemd does: ``ExecStopPost`` makes the outputs safe after ``held_s`` (until then they stay as the dead
process left them) and the service starts again ``RESTART_SEC_S`` + ``START_S`` after that
(:func:`hil.killsnap.record_stop`); the new process resumes from the daemon's own journal.

Kills are aimed at (:data:`KINDS`): ``uniform`` (a random simulated time, a random instant inside the frame);
``journal_write`` (inside a journal slot write, the slot torn, or between the two slot writes); ``latch_drive``
(after the journal write that commits a release or a cutdown attempt, before its line is driven);
``release_armed`` (armed, not fired); ``ballast_pulse`` (the ballast valve open); ``dump`` (the termination's
ballast dump); ``cutdown_burn`` (the cutdown wire powered); ``restart_loop`` (:data:`RESTART_LOOP_KILLS` kills in a
row, each soon after the restart: a crash loop); and, only when asked for (``--aim terminate_ack``),
``terminate_ack`` (just after the daemon acknowledged a ground termination).  The first three, the restart loop
and ``terminate_ack`` stop the child where it must die (:mod:`hil.killhooks`); the others poll its progress.
Each kill is also classified by the windows it actually hit, from what the dead process left behind.

Checked (:mod:`hil.killcheck`): after every kill, before the next child starts, the journal the restart will
resume from against the parent's own record (flight log edges, the operator's acknowledged commands, the world's
ballast); while the child flies, the journal polled for facts going backwards; at the end of each flight, at
most one release activation and none after the release, cutdown activations within the journal's attempts and
limit and none after the separation, the operator never re-sent an acknowledged command, the flight landed and
passed its scenario's expectations.  ``python -m hil.killtest --kills 100`` prints the figures.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from hil.killflight import (AIMED_ORDER, KINDS, OPT_IN_KINDS, RESTART_LOOP_KILLS, FlightOutcome, FlightPlan,
                            KilledFlight)
from hil.scenario import load_scenario

DEFAULT_SCENARIO = Path(__file__).resolve().parent.parent / "config" / "hil" / "kill-test.yaml"
OBSERVED = ("journal_write", "latch_drive", "release_armed", "release_burn", "ballast_pulse", "dump",
            "cutdown_burn", "restart_loop", "terminate_ack", "other")
JOURNAL_SHARE = 0.3  # of the timed kills


@dataclass
class KillTestResult:
    scenario: str
    seed: int
    flights: list[FlightOutcome] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    wall_s: float = 0.0

    @property
    def kills(self) -> list:
        return [kill for flight in self.flights for kill in flight.kills]

    @property
    def passed(self) -> bool:
        return not self.problems and all(not flight.problems for flight in self.flights)

    def count(self, aimed: str | None = None, observed: str | None = None) -> int:
        """Kills aimed at ``aimed`` (any if None) that landed in window ``observed`` (any if None)."""
        return sum(1 for kill in self.kills
                   if aimed in (None, kill.aimed) and (observed is None or observed in kill.observed))

    def total(self, name: str) -> int:
        return sum(getattr(flight, name) for flight in self.flights)

    def summary(self, max_problems: int = 8) -> str:
        lines = [f"Kill test, scenario {self.scenario!r}, seed {self.seed}: {len(self.kills)} kills over "
                 f"{len(self.flights)} flights, {self.total('restarts')} restarts, in {self.wall_s:.0f} s wall",
                 f"  journal checked after every kill: {self.total('journal_checks')} times; polled "
                 f"{self.total('journal_reads')} times; release activations {self.total('release_activations')}, "
                 f"cutdown activations {self.total('cutdown_activations')}",
                 f"  {'aimed at':<15}{'kills':>7}{'in window':>11}"]
        lines += [f"  {kind:<15}{self.count(kind):>7}{'' if kind == 'uniform' else self.count(kind, kind):>11}"
                  for kind in KINDS]
        lines.append("  windows hit (a kill may hit several): "
                     + ", ".join(f"{name} {self.count(observed=name)}" for name in OBSERVED))
        loops = [span for flight in self.flights for span in flight.loop_spans_s]
        if loops:
            lines.append(f"  restart loops: {len(loops)}, {RESTART_LOOP_KILLS} kills each within "
                         f"{min(loops):.1f}..{max(loops):.1f} s of flight time")
        for flight in self.flights:
            result, latches = flight.result, flight.result.get("latches", {})
            lines.append(f"  flight {flight.index} (seed {flight.seed}): {len(flight.kills)} kills, "
                         f"{flight.restarts} restarts, {'landed' if result.get('landed') else 'NOT LANDED'}"
                         f" after {result.get('duration_s', float('nan')):.0f} s; release activations "
                         f"{flight.release_activations}; cutdown activations {flight.cutdown_activations} "
                         f"(attempts {latches.get('cutdown_attempts')}, limit {latches.get('cutdown_attempt_limit')})"
                         + (f"; aims unused: {', '.join(flight.unused)}" if flight.unused else ""))
            for label, items in (("PROBLEM", flight.problems), ("waived", flight.waived)):
                lines += [f"    {label}: {item}" for item in items[:max_problems]]
                lines += [f"    ... {len(items) - max_problems} more"] if len(items) > max_problems else []
        lines += [f"  PROBLEM: {problem}" for problem in self.problems]
        lines.append(f"RESULT: {'PASS' if self.passed else 'FAIL'}")
        return "\n".join(lines)


def make_plan(kills: int, rng: random.Random, flight_s: float) -> FlightPlan:
    """A flight's ``kills``: a restart loop when there are 11 or more; two thirds of the rest aimed at windows in
    the order they open (all of :data:`AIMED_ORDER` from 20 kills on); the others at random times of
    ``flight_s``, ``JOURNAL_SHARE`` of them in journal writes.  Half the flights let the release's commit through
    before their first ``latch_drive`` kill (then it hits a cutdown attempt's)."""
    loop = kills >= RESTART_LOOP_KILLS + 6
    budget = kills - (RESTART_LOOP_KILLS if loop else 0)
    aimed = list(AIMED_ORDER[:min(len(AIMED_ORDER), budget * 2 // 3)])
    rest = budget - len(aimed)
    journal = max(1 if rest >= 2 else 0, round(rest * JOURNAL_SHARE))
    kinds = ["restart_loop"] * loop + ["journal_write"] * journal + ["uniform"] * (rest - journal)
    timed = sorted((rng.uniform(1.0, flight_s), kind) for kind in kinds)
    return FlightPlan(aimed, timed, latch_skips=rng.randint(0, 1))


def run_kill_test(scenario_path: Path | str = DEFAULT_SCENARIO, *, kills: int = 100, seed: int = 1,
                  work_dir: Path | str, kills_per_flight: int = 20, plan: FlightPlan | None = None,
                  defect: str | None = None, extra_aims: tuple[str, ...] = ()) -> KillTestResult:
    """Fly ``scenario_path`` as often as needed for ``kills`` SIGKILLs (``kills_per_flight`` planned per flight,
    or ``plan`` for every flight) in ``work_dir``; ``seed`` fixes the plans, delays and the flights' world seeds.
    ``defect``: a defect the child builds into the flight software (see ``hil.killhooks.DEFECTS``);
    ``extra_aims``: windows aimed at in every flight besides the plan's (e.g. :data:`OPT_IN_KINDS`)."""
    scenario_path = Path(scenario_path).resolve()
    scenario = load_scenario(scenario_path)
    rng = random.Random(seed)
    result = KillTestResult(scenario.name, seed)
    began = time.perf_counter()
    # timed kills are spread over the shortest flight the scenario expects, then over the last flight's length
    flight_s = next((expectation.min for expectation in scenario.expect
                     if expectation.kind == "duration_s" and expectation.min > 0), scenario.max_duration_s)
    index = 0
    while len(result.kills) < kills:
        wanted = min(kills_per_flight, kills - len(result.kills))
        flight_plan = plan.copy() if plan is not None else make_plan(wanted, rng, flight_s)
        flight_plan.aimed += extra_aims
        flight = KilledFlight(scenario_path, Path(work_dir) / f"flight-{index:03d}", index, seed * 1000 + index,
                              rng, flight_plan, defect=defect)
        outcome = flight.fly()
        result.flights.append(outcome)
        flight_s = 0.95 * outcome.result.get("duration_s", flight_s)
        if not outcome.kills:
            result.problems.append(f"flight {index} ended before any planned kill; stopping")
            break
        index += 1
    result.wall_s = time.perf_counter() - began
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hil.killtest", description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--per-flight", type=int, default=20, help="kills planned per flight")
    parser.add_argument("--scenario", type=Path, default=DEFAULT_SCENARIO)
    parser.add_argument("--work-dir", type=Path, default=None, help="keep the flights here (default: temporary)")
    parser.add_argument("--aim", choices=KINDS, action="append", default=[],
                        help=f"also aim at this window in every flight (the default plans leave out "
                             f"{', '.join(OPT_IN_KINDS)})")
    args = parser.parse_args(argv)
    options = dict(kills=args.kills, seed=args.seed, kills_per_flight=args.per_flight, extra_aims=tuple(args.aim))
    if args.work_dir is not None:
        result = run_kill_test(args.scenario, work_dir=args.work_dir, **options)
    else:
        with tempfile.TemporaryDirectory(prefix="killtest-") as work_dir:
            result = run_kill_test(args.scenario, work_dir=work_dir, **options)
    print(result.summary())
    return 0 if result.passed else 1


if __name__ == "__main__":
    sys.exit(main())
