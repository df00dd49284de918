"""A crash loop never disables a timer: the daemon, crashing every minute and restarted by systemd in the same boot
(``config/hil/fault-crash-loop.yaml``), still cuts at its lost-link timeout -- 600 s after the ground fell silent --
within one restart interval.  Before every timer ran on persisted mission time, each restart began the lost-link
timer again and a crash loop kept the flight from ever being terminated.  (The last time the ground was heard is
written every PERSIST_INTERVAL_S, so a crash may make the cut that much earlier, never later.)"""

from __future__ import annotations

from pathlib import Path

from flightsw import logsetup
from flightsw.link.signing import PERSIST_INTERVAL_S
from hil.expect import evaluate
from hil.runner import HilRun
from hil.scenario import load_scenario

SCENARIO = Path(__file__).resolve().parent.parent / "config" / "hil" / "fault-crash-loop.yaml"
SILENT_FROM_S = 1200.0
TIMEOUT_S = 600.0
RESTART_INTERVAL_S = 60.0


def test_lost_link_cuts_at_its_timeout_through_a_crash_every_minute(tmp_path):
    logsetup.configure("silent")
    scenario = load_scenario(SCENARIO)
    record = HilRun(scenario, work_dir=tmp_path).run()
    evaluate(scenario.expect, record)
    assert record.passed, [item for item in record.expectations if not item[1]]
    cut_s = next(t for t, name, _, _ in record.events if name == "termination")
    crashes_before_the_cut = sum(1 for fault in scenario.faults if fault.kind == "crash" and fault.at_s < cut_s)
    assert crashes_before_the_cut >= 15
    assert SILENT_FROM_S + TIMEOUT_S - PERSIST_INTERVAL_S <= cut_s <= SILENT_FROM_S + TIMEOUT_S + RESTART_INTERVAL_S
