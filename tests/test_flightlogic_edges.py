"""The two boundaries the flight logic decides before it hands them to the cutdown sequence, on the safety bench:
the dump altitude (ballast is dumped before a cut only strictly above TRM_DUMP_MIN_ALT) and separation (sinking
strictly faster than TRM_SEP_RATE for TRM_SEP_DWELL)."""

from __future__ import annotations

import pytest

from flightsw.rules.cutdown import Stage
from safety_rig import Bench


@pytest.mark.parametrize("altitude_m, dumps", [(3000.0, False), (2999.5, False), (3000.5, True)])
def test_a_cut_that_may_dump_dumps_ballast_only_above_the_dump_altitude(tmp_path, altitude_m, dumps):
    bench = Bench(tmp_path, altitude_m=altitude_m, params={"TRM_GND_DUMP": 1, "TRM_DUMP_MIN_ALT": 3000.0})
    bench.frame()
    bench.logic.terminate("range safety", bench.t)
    bench.logic.decide(bench.t)
    assert (bench.state.latches.termination_stage == Stage.DUMP) is dumps


@pytest.mark.parametrize("rate_mps, separated", [(-5.0, False), (-4.9, False), (-5.1, True)])
def test_separation_is_sinking_faster_than_the_separation_rate_for_its_dwell(tmp_path, rate_mps, separated):
    bench = Bench(tmp_path, params={"TRM_SEP_RATE": 5.0, "TRM_SEP_DWELL": 1.0, "TRM_SEP_TMO_S": 60.0})
    bench.world.cut_works = False  # the wire burns; the test moves the balloon
    bench.logic.terminate("range safety", bench.t)
    assert bench.run_until(lambda: bench.state.latches.termination_stage == Stage.WAIT, 5.0)
    bench.world.rate_mps = rate_mps
    bench.run(1.5)
    assert (bench.state.latches.termination_stage == Stage.DONE) is separated
