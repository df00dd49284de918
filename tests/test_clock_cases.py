"""No clock can cut a flight: the daemon's decisions run on mission elapsed time, never on the wall clock.

A HIL flight with a 10-minute maximum duration is flown with the system clock misbehaving the ways a board without
a real-time clock makes it misbehave -- booting in 1970 and being set from GPS or NTP mid-ascent, a year behind
then stepped forward, stepped back a day, and a brown-out that reboots the board into 1970 -- and compared with the
same flight on a right clock: the same decisions in the same order, and the maximum-duration cut at launch + 600 s
of true (simulated) time within a second.  Times here are the simulation's, the truth.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from flightsw import logsetup
from flightsw.clock import SimClock
from hil.physics.sun import parse_utc_s
from hil.runner import HilRun
from hil.scenario import FaultSpec, load_scenario

ROOT = Path(__file__).resolve().parent.parent
MAX_FLIGHT_S = 600.0
STEP_AT_S = 300.0  # the clock misbehaves at this simulated time (some 4 min after launch)
DAY_S = 86400.0
BOOKKEEPING = {"boot", "restart", "down_time", "journal_problem", "param_problem", "log_write_failed", "device",
               "devices", "preflight",
               "gps_airborne_model", "gps_airborne_model_lost"}


def scenario(*, brownout: bool = False):
    base = load_scenario(ROOT / "config" / "hil" / "max-duration.yaml")
    faults = (FaultSpec(kind="brownout", at_s=STEP_AT_S, magnitude=15.0),) if brownout else ()
    return dataclasses.replace(base, params={**base.params, "TRM_MAX_FLT_S": MAX_FLIGHT_S}, faults=faults,
                               max_duration_s=MAX_FLIGHT_S + 200.0)


def fly(work_dir: Path, *, start_wall_s: float | None = None, step_to_s=None, brownout_wall_s=None):
    """One flight; ``start_wall_s``: what the system clock reads at boot; ``step_to_s(true_utc_s)``: what it is
    set to at STEP_AT_S; ``brownout_wall_s``: a brown-out at STEP_AT_S that reboots the board with this clock."""
    logsetup.configure("silent")
    run = HilRun(scenario(brownout=brownout_wall_s is not None), work_dir=work_dir)
    true_start_s = parse_utc_s(run.scenario.world.launch.start_utc)
    clock = run.clock
    if start_wall_s is not None:
        clock.set_wall_time(start_wall_s)
    if step_to_s is not None:
        def step(now_s: float, done=[]) -> None:
            if now_s >= STEP_AT_S and not done:
                done.append(True)
                clock.set_wall_time(step_to_s(true_start_s + now_s))
        clock.on_advance(step)
    if brownout_wall_s is not None:
        clock.reboot = lambda **_: SimClock.reboot(clock, wall_time_s=brownout_wall_s)
    record = run.run()
    return record


def decisions(record) -> list[str]:
    return [f"{name}: {text}" if name == "phase" else name for _, name, _, text in record.events
            if name not in BOOKKEEPING and name != "operator"]


def launch_and_cut_s(record) -> tuple[float, float]:
    launch_s = next(t for t, name, _, text in record.events if name == "phase" and "-> ASCENT" in text)
    cut_s = next(t for t, name, _, _ in record.events if name == "termination")
    return launch_s, cut_s


@pytest.fixture(scope="module")
def right_clock(tmp_path_factory):
    record = fly(tmp_path_factory.mktemp("right"))
    assert record.termination_reason == "max_duration"
    return record


CASES = {
    "boot at 1970, then GPS time": dict(start_wall_s=1000.0, step_to_s=lambda true_s: true_s),
    "a year behind, then stepped forward": dict(start_wall_s=None, step_to_s=lambda true_s: true_s + 365 * DAY_S),
    "stepped back a day": dict(step_to_s=lambda true_s: true_s - DAY_S),
    "rebooted into 1970": dict(brownout_wall_s=1000.0),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_no_clock_changes_a_decision(tmp_path, right_clock, case):
    kwargs = dict(CASES[case])
    if case.startswith("a year behind"):
        kwargs["start_wall_s"] = parse_utc_s(scenario().world.launch.start_utc) - 365 * DAY_S
    record = fly(tmp_path, **kwargs)
    assert record.termination_reason == "max_duration", record.ended_by
    launch_s, cut_s = launch_and_cut_s(record)
    assert MAX_FLIGHT_S <= cut_s - launch_s <= MAX_FLIGHT_S + 1.0, f"cut {cut_s - launch_s:.2f} s after launch"
    reference = decisions(right_clock)
    if case == "rebooted into 1970":
        assert record.restarts == 1
        assert decisions(record)[-len(reference) + 2:] == reference[-len(reference) + 2:]
    else:
        assert decisions(record) == reference
        assert launch_and_cut_s(record) == pytest.approx(launch_and_cut_s(right_clock), abs=0.06)


def test_the_right_clock_cuts_at_the_maximum_duration(right_clock):
    launch_s, cut_s = launch_and_cut_s(right_clock)
    assert MAX_FLIGHT_S <= cut_s - launch_s <= MAX_FLIGHT_S + 1.0
