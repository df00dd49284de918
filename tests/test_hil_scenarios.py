"""Every shipped HIL scenario flies and meets its own expectations.

`nominal.yaml` is flown by `tests/test_hil.py` through the `flightsw hil` command; the 48-hour float is flown here
shortened to its first hours (`test_float_48h_first_hours_hold_the_target`; the whole flight is measured with
`flightsw hil --scenario config/hil/float-48h.yaml`, see docs/benchmarks.md).  Each run checks the scenario's expectations plus
the safety invariants every run checks (a release line fires at most once).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from flightsw import logsetup
from hil.expect import evaluate
from hil.runner import HilRun
from hil.scenario import load_scenario

SCENARIOS = Path(__file__).resolve().parent.parent / "config" / "hil"
SHIPPED = sorted(path.name for path in SCENARIOS.glob("*.yaml"))
# the first ~22 min of float are the sink back from the 30.5 km overshoot, out of the band by nature
FIRST_HOURS_HOLD_MIN = 0.8
FLOWN_ELSEWHERE = {"nominal.yaml", "float-48h.yaml", "fault-crash-loop.yaml"}  # the last: test_crash_loop.py


def fly(scenario, tmp_path):
    logsetup.configure("silent")
    record = HilRun(scenario, work_dir=tmp_path).run()
    evaluate(scenario.expect, record)
    return record


def describe(record) -> str:
    failed = [f"{name}: {detail}" for name, ok, detail in record.expectations if not ok]
    return f"{record.scenario} ended by {record.ended_by}; failed: {failed}"


@pytest.mark.parametrize("name", sorted(set(SHIPPED) - FLOWN_ELSEWHERE))
def test_shipped_scenario_meets_its_expectations(name, tmp_path):
    record = fly(load_scenario(SCENARIOS / name), tmp_path)
    assert record.expectations, "a scenario without expectations proves nothing"
    assert record.passed, describe(record)


def test_every_scenario_is_covered():
    assert {"nominal.yaml", "float-48h.yaml"} <= set(SHIPPED)
    kinds = {fault.kind for name in SHIPPED for fault in load_scenario(SCENARIOS / name).faults}
    from hil.scenario import FAULT_KINDS

    assert kinds >= set(FAULT_KINDS) - {"balloon_burst"}  # a burst is every latex flight's end


def test_float_48h_first_hours_hold_the_target(tmp_path):
    """The float scenario's first four hours: ascent, the overshoot to full volume, and the controller bringing the
    balloon back into the band and holding it there with ballast to spare."""
    scenario = dataclasses.replace(load_scenario(SCENARIOS / "float-48h.yaml"), max_duration_s=4 * 3600)
    logsetup.configure("silent")
    record = HilRun(scenario, work_dir=tmp_path).run()
    assert "FLOAT" in [span.phase for span in record.phases]
    assert not record.termination_reason
    assert record.float_time_s > 2 * 3600
    assert record.float_hold_fraction >= FIRST_HOURS_HOLD_MIN, record.float_hold_fraction
    samples = record.samples
    last_hour = [abs(alt - target) for t, alt, target in zip(samples.time_s, samples.altitude_m,
                                                              samples.float_target_m) if t >= 3 * 3600]
    assert max(last_hour) <= 500.0  # settled: the fourth hour is wholly inside the band
    assert samples.ballast_kg[-1] >= 20.0 - 18.0  # the controller never touched the 2 kg reserve
