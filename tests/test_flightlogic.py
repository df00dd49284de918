"""FlightLogic with its real parts: the actuator manager on gpiozero lines that can fail, the journal on disk.

Every test runs on :class:`safety_rig.Bench` (real FlightLogic, ActuatorManager, output lines, Journal and persist
policy; a scripted estimate).  Burns are counted from the pins' rising edges, the way the hardware sees them.
The defects of issue 14 each have a test here that failed on the code before the sequences became pure state
machines fed by the actuators' reports.
"""

from __future__ import annotations

import math

import pytest

from flightsw.flightlogic import FLIGHT_PARAMS, CommandResult, Outcome
from flightsw.phase import Phase
from flightsw.rules.cutdown import FIRE_STALL_S, Stage
from safety_rig import BOARD, FRAME_S, Bench


def fail_writes(bench: Bench, role: str, count: int = 1) -> None:
    """The next ``count`` writes of output line ``role`` fail (a transient GPIO error)."""
    bench.pins.pin(getattr(BOARD.outputs, role).pin).fail_writes = count


def armed_release(bench: Bench) -> None:
    """GO, arm, and one frame for the arm to settle."""
    bench.go()
    bench.frame()
    assert bench.logic.arm("release", bench.t).outcome is Outcome.ACCEPTED
    bench.frame()


def test_outcomes_are_mav_results():
    from pymavlink.dialects.v20 import common

    for outcome in Outcome:
        assert outcome.value == getattr(common, f"MAV_RESULT_{outcome.name}")


def test_flight_params_order_and_content():
    names = [d.name for d in FLIGHT_PARAMS]
    assert len(names) == len(set(names))
    assert names[0] == "FLT_MODE"
    for name in ("TRM_EN_LINK", "REL_AUTO", "ALT_BAL_RESERVE", "PH_LAND_DWELL", "TRM_ARM_TMO_S"):
        assert name in names
    assert all(d.unit for d in FLIGHT_PARAMS if d.kind is float)


# ---------------------------------------------------------------- phases


def test_launch_sets_phase_and_latches_the_launch_in_mission_time(tmp_path):
    bench = Bench(tmp_path, phase=Phase.PREFLIGHT, altitude_m=120.0)
    bench.run(2.0)
    bench.world.rate_mps = 4.0
    bench.run(7.0)
    assert bench.state.phase is Phase.ASCENT
    latches = bench.state.latches
    assert 5.0 < latches.launch_s < 9.0 and latches.launch_latitude_deg == 40.5
    assert "phase" in bench.names()


def test_blocked_launch_is_reported_once_and_keeps_automatic_termination_on(tmp_path):
    bench = Bench(tmp_path, phase=Phase.PREFLIGHT, altitude_m=120.0,
                  params={"TRM_CEIL_ALT": 1000.0, "TRM_CEIL_DWELL": 1.0})
    fill = bench._fill_estimate
    bench._fill_estimate = lambda: (fill(), setattr(bench.state, "sensors_healthy", False))  # self-test fails
    bench.world.rate_mps = 40.0
    bench.run(40.0)
    assert bench.state.phase is not Phase.ASCENT and bench.names().count("launch_blocked") == 1
    # the label says PREFLIGHT, but the balloon climbs through the ceiling: the ceiling cuts
    assert bench.state.latches.termination_reason == "ceiling" and bench.burns("cutdown_fire") == 1


@pytest.mark.parametrize("phase, requested, outcome", [
    (Phase.PREFLIGHT, Phase.ASCENT, Outcome.ACCEPTED),
    (Phase.FLOAT, Phase.TERMINATION, Outcome.DENIED),
    (Phase.FLOAT, Phase.DESCENT, Outcome.ACCEPTED),
    (Phase.FLOAT, 99, Outcome.UNSUPPORTED),
    (Phase.LANDED, Phase.FLOAT, Outcome.DENIED),
])
def test_request_phase(tmp_path, phase, requested, outcome):
    bench = Bench(tmp_path, phase=phase)
    bench.state.link.gcs_heartbeat_s = 0.0
    result = bench.logic.request_phase(requested, bench.t)
    assert result.outcome is outcome and result.message
    if outcome is Outcome.ACCEPTED:
        assert bench.state.phase is Phase(requested) and bench.state.latches_dirty


def test_a_ground_request_can_not_label_a_flight_at_28_km_landed(tmp_path):
    """Issue 14: DO_SET_MODE could move a vehicle at 28 km to LANDED, where no automatic reason applies."""
    bench = Bench(tmp_path, phase=Phase.DESCENT, altitude_m=28000.0)
    bench.world.rate_mps = -0.1
    bench.frame()
    result = bench.logic.request_phase(int(Phase.LANDED), bench.t)
    assert result.outcome is Outcome.DENIED and "PH_LAND_MAX_ALT" in result.message
    bench.world.altitude_m, bench.world.rate_mps = 300.0, -3.0
    bench.frame()
    assert "PH_LAND_RATE" in bench.logic.request_phase(int(Phase.LANDED), bench.t).message
    bench.world.rate_mps = 0.0
    bench.frame()
    assert bench.logic.request_phase(int(Phase.LANDED), bench.t).outcome is Outcome.ACCEPTED


def test_override_only_in_preflight(tmp_path):
    assert Bench(tmp_path / "a").logic.override_preflight(1.0).outcome is Outcome.DENIED
    bench = Bench(tmp_path / "b", phase=Phase.PREFLIGHT)
    assert bench.logic.override_preflight(1.0).outcome is Outcome.ACCEPTED
    assert bench.state.latches.preflight_override and "preflight_override" in bench.names()


# ---------------------------------------------------------------- release


def test_release_two_step_fires_once_with_the_latch_on_disk_before_the_line(tmp_path):
    bench = Bench(tmp_path)
    on_disk_at_the_edge = []
    pin = bench.pins.pin(BOARD.outputs.release_fire.pin)
    record = pin.edge_sink
    pin.edge_sink = lambda edged, level: (record(edged, level), level and on_disk_at_the_edge.append(
        bench.journal.load().latches.release_fired))
    bench.frame()
    assert bench.logic.arm("release", bench.t).outcome is Outcome.DENIED  # no ground GO yet
    bench.go()
    assert bench.logic.arm("release", bench.t).outcome is Outcome.ACCEPTED
    assert bench.logic.fire_release(bench.t).outcome is Outcome.TEMPORARILY_REJECTED  # armed this frame
    bench.frame()
    assert bench.logic.fire_release(bench.t).outcome is Outcome.ACCEPTED
    assert on_disk_at_the_edge == [True]
    assert bench.logic.fire_release(bench.t).outcome is Outcome.DENIED
    bench.run(10.0)
    assert bench.burns("release_fire") == 1 and bench.world.released
    assert bench.state.latches.release_burn_confirmed and "release_fired" in bench.names()


def test_arm_denied_names_the_failing_criteria(tmp_path):
    bench = Bench(tmp_path, altitude_m=10000.0)
    bench.frame()
    result = bench.logic.arm("release", bench.t)
    assert result.outcome is Outcome.DENIED
    assert "altitude" in result.message and "ground_go" in result.message


def test_failing_criterion_while_armed_disarms_and_says_why(tmp_path):
    bench = Bench(tmp_path)
    armed_release(bench)
    assert bench.state.latches.release_armed and bench.active("release_arm")
    bench.world.rate_mps = -5.0
    bench.frame()
    assert not bench.state.latches.release_armed and not bench.active("release_arm")
    disarm = [text for _, name, text in bench.events if name == "disarm"][-1]
    assert "vertical_rate" in disarm


def test_arm_timeout_disarms(tmp_path):
    bench = Bench(tmp_path, params={"REL_ARM_TMO_S": 10.0, "REL_GO_WINDOW_S": 600.0})
    armed_release(bench)
    bench.run(11.0)
    assert not bench.state.latches.release_armed and not bench.active("release_arm")
    assert bench.logic.fire_release(bench.t).outcome is Outcome.DENIED


def test_restart_never_fires_the_release_again(tmp_path):
    bench = Bench(tmp_path)
    armed_release(bench)
    bench.logic.fire_release(bench.t)
    bench.run(6.0)
    bench.kill()
    bench.restart()
    bench.go()
    bench.frame()
    assert bench.logic.arm("release", bench.t).outcome is Outcome.DENIED
    assert bench.logic.fire_release(bench.t).outcome is Outcome.DENIED
    bench.run(5.0)
    assert bench.burns("release_fire") == 1


def test_restart_disarms_an_armed_release(tmp_path):
    bench = Bench(tmp_path)
    armed_release(bench)
    bench.kill()
    bench.restart()
    assert not bench.state.latches.release_armed and "disarm" in bench.names()
    bench.run(1.0)
    assert not bench.active("release_arm") and bench.burns("release_fire") == 0


def test_a_release_whose_latch_can_not_be_persisted_is_not_fired(tmp_path):
    bench = Bench(tmp_path)
    armed_release(bench)
    bench.journal.save = lambda latches: False  # the disk refuses every write
    result = bench.logic.fire_release(bench.t)
    assert result.outcome is Outcome.FAILED and "persisted" in result.message
    bench.run(5.0)
    assert bench.burns("release_fire") == 0 and not bench.state.latches.release_fired


def test_release_fire_line_write_error_is_retried_and_the_layers_agree(tmp_path):
    """Issue 14: after a release FIRE-line error the actuator marked the chain spent while the flight logic
    journalled "not fired", and after a restart the release fired again.  Now a write that failed with the line
    reading back inactive burned nothing: the same firing is tried the next frame and burns once; the journal
    says fired from the commit on."""
    bench = Bench(tmp_path)
    armed_release(bench)
    fail_writes(bench, "release_fire", 1)
    result = bench.logic.fire_release(bench.t)
    assert result.outcome is Outcome.ACCEPTED and "failed" in result.message
    assert bench.journal.load().latches.release_fired
    bench.run(8.0)
    assert bench.burns("release_fire") == 1 and bench.world.released
    assert "release_problem" in bench.names() and bench.state.latches.release_burn_confirmed
    bench.kill()
    bench.restart()
    bench.go()
    bench.run(5.0)
    assert bench.burns("release_fire") == 1


def test_a_release_committed_before_a_kill_is_never_fired_after_it(tmp_path):
    bench = Bench(tmp_path)
    armed_release(bench)
    fail_writes(bench, "release_fire", 1)
    bench.logic.fire_release(bench.t)  # committed and persisted; the line did not move
    bench.kill()                        # killed before the retry
    bench.restart()
    assert "release_unconfirmed" in bench.names()
    bench.go()
    bench.run(5.0)
    assert bench.logic.arm("release", bench.t).outcome is Outcome.DENIED
    assert bench.burns("release_fire") == 0 and bench.state.latches.release_fired


def test_release_arm_line_write_error_is_retried(tmp_path):
    bench = Bench(tmp_path)
    bench.go()
    bench.frame()
    fail_writes(bench, "release_arm", 1)
    result = bench.logic.arm("release", bench.t)
    assert result.outcome is Outcome.ACCEPTED and "ARM line" in result.message
    bench.run(0.2)
    assert bench.active("release_arm") and "release_problem" in bench.names()
    assert bench.logic.fire_release(bench.t).outcome is Outcome.ACCEPTED
    bench.run(5.0)
    assert bench.burns("release_fire") == 1


def test_separation_confirmed_by_lift_change(tmp_path):
    bench = Bench(tmp_path)
    armed_release(bench)
    bench.logic.fire_release(bench.t)
    bench.run(3.0)
    assert bench.state.latches.separation_confirmed and "separation_confirmed" in bench.names()


def test_separation_not_seen_is_reported(tmp_path):
    bench = Bench(tmp_path, params={"REL_SEP_LIFT": 50.0, "REL_SEP_DV": 50.0})
    armed_release(bench)
    bench.logic.fire_release(bench.t)
    bench.run(35.0)
    assert bench.state.latches.separation_timed_out and "separation_not_seen" in bench.names()
    assert not bench.state.latches.release_armed


def test_separation_window_runs_on_across_a_restart(tmp_path):
    bench = Bench(tmp_path, params={"REL_SEP_LIFT": 50.0, "REL_SEP_DV": 50.0, "REL_SEP_WIN_S": 30.0})
    armed_release(bench)
    bench.logic.fire_release(bench.t)
    fired_s = bench.t
    bench.run(10.0)
    bench.kill()
    bench.restart(down_s=5.0)
    bench.run_until(lambda: bench.state.latches.separation_timed_out, 40.0)
    assert bench.t - fired_s == pytest.approx(30.0, abs=0.2)  # not 30 s after the restart


def test_release_criteria_reported_while_unarmed_and_checked_every_frame_once_armed(tmp_path):
    bench = Bench(tmp_path)
    bench.frame()
    assert bench.state.release_failures == ("ground_go",)  # reported although nothing is armed
    bench.go()
    bench.run(1.1)
    assert bench.state.release_failures == ()  # refreshed within a second
    assert bench.logic.arm("release", bench.t).outcome is Outcome.ACCEPTED
    bench.frame()
    bench.world.rate_mps = -5.0
    bench.frame()  # armed: the very next frame sees the failing criterion
    assert not bench.state.latches.release_armed
    assert bench.state.release_failures == ("vertical_rate",)


def test_autonomous_release(tmp_path):
    bench = Bench(tmp_path, params={"REL_AUTO": 1})
    bench.go()
    bench.run(2.0)
    assert bench.state.latches.release_fired and bench.state.latches.release_reason.startswith("autonomous")
    bench.run(5.0)
    assert bench.burns("release_fire") == 1


# ---------------------------------------------------------------- termination


def test_ground_termination_sequence_with_retry_and_separation(tmp_path):
    bench = Bench(tmp_path, params={"TRM_SEP_TMO_S": 20.0})
    bench.world.cut_works = False  # the first burn does not cut
    armed_release(bench)
    assert bench.logic.terminate("range safety", bench.t).outcome is Outcome.ACCEPTED
    latches = bench.state.latches
    assert latches.termination_fired and latches.termination_reason == "ground"
    assert bench.state.phase is Phase.TERMINATION
    bench.frame()
    assert not latches.release_armed and not bench.active("release_arm")
    bench.run(7.0)
    assert latches.cutdown_attempts == 1 and bench.burns("cutdown_fire") == 1 and not bench.active("cutdown_fire")
    bench.world.cut_works = True
    bench.run(14.0)  # no separation: the timeout passes, a retry re-arms and fires
    assert latches.cutdown_attempts == 2 and bench.burns("cutdown_fire") == 2 and "cutdown_retry" in bench.names()
    bench.run(5.0)
    assert latches.termination_stage == Stage.DONE and "cutdown_separated" in bench.names()
    bench.run(30.0)  # the sequence is over: nothing more is driven
    assert bench.burns("cutdown_fire") == 2
    assert bench.logic.terminate("again", bench.t).outcome is Outcome.ACCEPTED  # one more on demand
    bench.run(2.0)
    assert latches.cutdown_attempts == 3 and bench.burns("cutdown_fire") == 3


def test_failed_cutdown_stops_the_heartbeat_then_one_more_by_ground_command(tmp_path):
    bench = Bench(tmp_path, params={"TRM_MAX_TRIES": 1, "TRM_SEP_TMO_S": 10.0})
    bench.world.cut_works = False
    bench.logic.terminate("test", bench.t)
    assert bench.logic.terminate("again", bench.t).outcome is Outcome.IN_PROGRESS
    bench.run(15.0)
    assert bench.state.latches.termination_stage == Stage.FAILED and "cutdown_failed" in bench.names()
    assert bench.logic.needs_backup_cut
    heartbeat = [t for t, role in bench.edges if role == "termination_heartbeat"]
    bench.run(3.0)
    assert [t for t, role in bench.edges if role == "termination_heartbeat"] == heartbeat  # it stopped
    assert bench.logic.terminate("again", bench.t).outcome is Outcome.ACCEPTED
    bench.run(2.0)
    assert bench.state.latches.cutdown_attempts == 2 and bench.burns("cutdown_fire") == 2


def test_lost_link_dumps_ballast_then_cuts(tmp_path):
    bench = Bench(tmp_path, params={"ALT_BAL_TOTAL": 2.0, "TRM_LINK_TMO_S": 60.0, "TRM_DUMP_MAX_S": 120.0,
                                    "TRM_DUMP_PULSE_S": 20.0})
    bench.link_alive = False
    bench.run(61.0)
    latches = bench.state.latches
    assert latches.termination_reason == "link_lost" and latches.termination_stage == Stage.DUMP
    bench.run(125.0)
    assert bench.world.ballast_open_s == pytest.approx(120.0, abs=0.5)  # the dump's time limit
    assert latches.ballast_used_kg == pytest.approx(bench.world.ballast_open_s * 0.01, abs=0.001)
    assert latches.cutdown_attempts == 1 and bench.world.separated


def test_the_cutdown_waits_for_the_arm_to_settle_and_never_commits_in_the_arming_frame(tmp_path):
    bench = Bench(tmp_path, params={"ACT_ARM_SETTLE_S": 1.2})
    bench.logic.terminate("range safety", bench.t)
    bench.logic.decide(bench.t)  # the rest of the frame the command arrived in
    assert bench.active("cutdown_arm") and bench.state.latches.cutdown_attempts == 0
    bench.run(1.0)
    assert bench.burns("cutdown_fire") == 0 and bench.journal.load().latches.cutdown_attempts == 0
    bench.run(0.5)
    assert bench.burns("cutdown_fire") == 1 and bench.journal.load().latches.cutdown_attempts == 1


def test_termination_disables_release_and_float_target(tmp_path):
    bench = Bench(tmp_path)
    bench.logic.terminate("x", bench.t)
    assert bench.logic.ground_go(bench.t).outcome is Outcome.DENIED
    assert bench.logic.arm("release", bench.t).outcome is Outcome.DENIED
    assert bench.logic.set_float_target(25000.0, bench.t).outcome is Outcome.DENIED
    assert bench.logic.disarm("cutdown", bench.t).outcome is Outcome.DENIED


# ---------------------------------------------------------------- the defects of issue 14


def test_one_transient_fire_line_write_error_does_not_block_the_cut(tmp_path):
    """Issue 14: the attempt was counted before the line moved, the logic rolled its count back, and the actuator
    refused every later fire ("already fired; a new firing needs retry") for as long as the process lived."""
    bench = Bench(tmp_path)
    fail_writes(bench, "cutdown_fire", 1)
    bench.logic.terminate("range safety", bench.t)
    bench.run(5.0)
    latches = bench.state.latches
    assert bench.burns("cutdown_fire") == 1 and bench.world.separated
    assert latches.cutdown_attempts == 1  # the failed write was not an attempt
    problems = [text for _, name, text in bench.events if name == "cutdown_problem"]
    assert len(problems) == 1 and "FIRE line write failed" in problems[0]  # reported once, not every frame
    bench.run(5.0)
    assert latches.termination_stage == Stage.DONE


def test_one_transient_arm_line_write_error_does_not_fail_the_termination(tmp_path):
    """Issue 14: one ARM-line error ended an automatic termination as FAILED after zero burns, for good."""
    bench = Bench(tmp_path, params={"TRM_LINK_TMO_S": 60.0, "TRM_DUMP_MAX_S": 0.0})
    bench.link_alive = False
    bench.run(59.0)
    fail_writes(bench, "cutdown_arm", 1)
    bench.run(10.0)
    latches = bench.state.latches
    assert latches.termination_reason == "link_lost" and latches.termination_stage != Stage.FAILED
    assert bench.burns("cutdown_fire") == 1 and bench.world.separated
    assert [name for name in bench.names() if name == "cutdown_problem"] == ["cutdown_problem"]


@pytest.mark.parametrize("escalation", ["ground", "ceiling"])
def test_a_ballast_dump_never_blocks_a_cut(tmp_path, escalation):
    """Issue 14: while a lost-link dump ran (up to TRM_DUMP_MAX_S, settable to an hour) a ground terminate
    answered IN_PROGRESS and a ceiling breach waited.  Now either cuts within a frame plus the arm settle time."""
    bench = Bench(tmp_path, params={"TRM_LINK_TMO_S": 60.0, "TRM_DUMP_MAX_S": 3600.0, "ALT_BAL_TOTAL": 50.0,
                                    "TRM_CEIL_ALT": 30000.0, "TRM_CEIL_DWELL": 0.0, "ACT_ARM_SETTLE_S": 0.04})
    bench.link_alive = False
    bench.run(70.0)
    assert bench.state.latches.termination_stage == Stage.DUMP and bench.active("ballast_valve")
    started_s = bench.t
    if escalation == "ground":
        assert bench.logic.terminate("range safety", bench.t).outcome is Outcome.ACCEPTED
    else:
        bench.world.altitude_m = 30500.0
    bench.run_until(lambda: bench.burns("cutdown_fire") == 1, 5.0)
    assert bench.t - started_s <= 2 * FRAME_S + 0.04 + 1e-9
    assert not bench.active("ballast_valve")


def test_a_failing_event_sink_never_ends_a_burn(tmp_path):
    """Issue 14: an exception in the event path after FIRE (a full disk under the log printer) made decide()
    raise, its handler forced every output safe, and the burn wire was dropped every frame."""
    bench = Bench(tmp_path)

    def broken(*args, **kwargs):
        raise OSError(28, "No space left on device")
    bench.logic._on_event = broken
    bench.world.cut_works = False  # no separation: nothing but the burn's own deadline may end it
    bench.logic.terminate("range safety", bench.t)
    bench.run(0.2)
    on_s = bench.t
    bench.run_until(lambda: not bench.active("cutdown_fire"), 20.0)
    assert bench.t - on_s == pytest.approx(bench.params["TRM_BURN_S"] - 0.1, abs=0.15)  # the whole burn
    assert bench.logic.faults > 0


def test_a_rule_that_raises_is_isolated_and_the_termination_goes_on(tmp_path):
    bench = Bench(tmp_path)
    bench.logic._altitude = lambda now_s: 1 / 0
    bench.logic.terminate("range safety", bench.t)
    bench.run(5.0)
    assert bench.world.separated and bench.names().count("logic_error") == 1
    assert not bench.logic.needs_backup_cut


def test_a_failing_termination_part_stops_the_heartbeat(tmp_path):
    bench = Bench(tmp_path)
    bench.logic._termination = lambda now_s: 1 / 0
    bench.run(1.0)
    assert bench.logic.needs_backup_cut


def test_a_fire_that_never_starts_stops_the_heartbeat_after_the_stall_time(tmp_path):
    bench = Bench(tmp_path)
    fail_writes(bench, "cutdown_fire", 10_000)
    bench.logic.terminate("range safety", bench.t)
    bench.run(FIRE_STALL_S - 0.5)
    assert not bench.logic.needs_backup_cut
    bench.run(1.0)
    assert bench.logic.needs_backup_cut and bench.burns("cutdown_fire") == 0
    assert bench.names().count("cutdown_problem") == 1  # still trying, reported once
    bench.pins.pin(25).fail_writes = 0
    bench.run(1.0)
    assert bench.burns("cutdown_fire") == 1 and not bench.logic.needs_backup_cut


def test_a_zero_ballast_flow_can_not_be_set():
    from flightsw.dictionary import all_param_decls
    from flightsw.params import Params

    params = Params(all_param_decls())
    ok, reason = params.set("BAL_FLOW_KGPS", 0.0)
    assert not ok and "BAL_FLOW_KGPS" in reason


def test_a_burn_longer_than_the_ceiling_is_refused_when_set_never_when_cutting(tmp_path):
    """Issue 21: ACT_BURN_MAX_S 5 with TRM_BURN_S 6 gave no burn at all in 30 minutes.  The inconsistent set is
    refused; a burn is capped, never refused, for its length."""
    bench = Bench(tmp_path)
    ok, reason = bench.params.set("ACT_BURN_MAX_S", 5.0)
    assert not ok and "TRM_BURN_S" in reason and "ACT_BURN_MAX_S" in reason
    assert bench.params["ACT_BURN_MAX_S"] == 10.0


# ---------------------------------------------------------------- behaviours decided the safe way


def test_a_ground_termination_in_preflight_fires_and_latches_no_launch(tmp_path):
    bench = Bench(tmp_path, phase=Phase.PREFLIGHT, altitude_m=100.0)
    assert bench.logic.terminate("range safety", bench.t).outcome is Outcome.ACCEPTED
    bench.run(3.0)
    latches = bench.state.latches
    assert bench.burns("cutdown_fire") == 1 and bench.state.phase is Phase.TERMINATION
    assert math.isnan(latches.launch_s)


def test_a_termination_lets_a_release_burn_in_progress_finish(tmp_path):
    bench = Bench(tmp_path)
    armed_release(bench)
    bench.logic.fire_release(bench.t)
    bench.frame()
    on_s = bench.t
    bench.logic.terminate("range safety", bench.t)
    bench.run_until(lambda: not bench.active("release_fire"), 10.0)
    assert bench.t - on_s == pytest.approx(bench.params["REL_BURN_S"] - FRAME_S, abs=0.11)
    assert bench.world.released and bench.burns("cutdown_fire") == 1


def test_no_automatic_cutdown_retry_once_landed(tmp_path):
    bench = Bench(tmp_path, altitude_m=200.0, params={"TRM_SEP_TMO_S": 10.0, "PH_LAND_DWELL": 5.0})
    bench.state.latches.phase = int(Phase.DESCENT)
    bench.world.cut_works = False
    bench.world.altitude_m, bench.world.rate_mps = 200.0, 0.0
    bench.run(6.0)
    assert bench.state.phase is Phase.LANDED
    bench.logic.terminate("recovery team request", bench.t)  # a ground command fires on the ground
    bench.run(30.0)
    assert bench.burns("cutdown_fire") == 1
    assert bench.state.latches.termination_stage == Stage.DONE and "cutdown_landed" in bench.names()


def test_a_cutdown_armed_by_ground_command_disarms_after_its_timeout(tmp_path):
    bench = Bench(tmp_path, phase=Phase.PREFLIGHT, params={"TRM_ARM_TMO_S": 30.0})
    assert bench.logic.arm("cutdown", bench.t).outcome is Outcome.ACCEPTED
    bench.run(29.0)
    assert bench.active("cutdown_arm")
    bench.run(2.0)
    assert not bench.active("cutdown_arm") and "disarm" in bench.names()


def test_a_retried_terminate_never_fires_a_latched_termination_again(tmp_path):
    bench = Bench(tmp_path, params={"TRM_SEP_TMO_S": 10.0})
    bench.logic.terminate("range safety", bench.t)
    bench.run(12.0)
    assert bench.state.latches.termination_stage == Stage.DONE
    result = bench.logic.terminate("range safety", bench.t, retry=True)
    assert result.outcome is Outcome.ACCEPTED and "retried" in result.message
    bench.run(5.0)
    assert bench.burns("cutdown_fire") == 1


# ---------------------------------------------------------------- valves and altitude


@pytest.mark.parametrize("phase, valve, duration, alt, outcome", [
    (Phase.FLOAT, "ballast", 5.0, 28000.0, Outcome.ACCEPTED),
    (Phase.FLOAT, "vent", 5.0, 28000.0, Outcome.ACCEPTED),
    (Phase.FLOAT, "helium", 5.0, 28000.0, Outcome.UNSUPPORTED),
    (Phase.FLOAT, "ballast", 61.0, 28000.0, Outcome.DENIED),
    (Phase.FLOAT, "ballast", 0.0, 28000.0, Outcome.DENIED),
    (Phase.DESCENT, "ballast", 5.0, 800.0, Outcome.DENIED),
    (Phase.PREFLIGHT, "ballast", 5.0, 100.0, Outcome.ACCEPTED),  # ground test
])
def test_pulse_command(tmp_path, phase, valve, duration, alt, outcome):
    bench = Bench(tmp_path, phase=phase, altitude_m=alt)
    bench.frame()
    assert bench.logic.pulse(valve, duration, bench.t).outcome is outcome


def test_a_ground_valve_pulse_whose_write_fails_is_tried_again(tmp_path):
    bench = Bench(tmp_path, phase=Phase.PREFLIGHT, altitude_m=100.0)
    fail_writes(bench, "vent_valve", 2)
    result = bench.logic.pulse("vent", 2.0, bench.t)
    assert result.outcome is Outcome.ACCEPTED and "trying again" in result.message
    bench.run(3.0)
    assert bench.burns("vent_valve") == 1 and "valve_pulse" in bench.names()


def test_ballast_is_credited_while_the_valve_is_open_and_persisted_within_a_second(tmp_path):
    bench = Bench(tmp_path, phase=Phase.PREFLIGHT, altitude_m=100.0)
    bench.logic.pulse("ballast", 30.0, bench.t)
    bench.run(10.0)
    on_disk = bench.journal.load().latches.ballast_used_kg
    assert bench.world.ballast_open_s * 0.01 - 0.011 <= on_disk <= bench.world.ballast_open_s * 0.01 + 1e-9


@pytest.mark.parametrize("target, outcome", [(25000.0, Outcome.ACCEPTED), (50000.0, Outcome.DENIED),
                                             (math.nan, Outcome.DENIED)])
def test_set_float_target(tmp_path, target, outcome):
    bench = Bench(tmp_path)
    result = bench.logic.set_float_target(target, bench.t)
    assert isinstance(result, CommandResult) and result.outcome is outcome
    if outcome is Outcome.ACCEPTED:
        assert bench.state.latches.float_target_altitude_m == target and bench.state.latches_dirty


def test_float_controller_drives_the_ballast_valve_and_reports_effort(tmp_path):
    bench = Bench(tmp_path, altitude_m=27200.0, params={"ALT_BAL_TOTAL": 10.0, "ALT_RATE_TAU": 0.0})
    bench.world.rate_mps = -1.0
    bench.frame()
    control = bench.state.control
    assert bench.active("ballast_valve")
    assert control.active and control.last_action == "ballast" and control.effort > 0.0
    bench.run(30.0)
    assert bench.burns("ballast_valve") == 1  # the interval lets the balloon respond
    assert bench.state.latches.ballast_used_kg > 0.0


def test_entering_float_latches_the_target(tmp_path):
    bench = Bench(tmp_path, phase=Phase.ASCENT, altitude_m=29500.0, params={"ALT_TARGET": 27000.0})
    assert math.isnan(bench.state.latches.float_target_altitude_m)
    bench.world.rate_mps = -0.2  # sinking slowly after the climb
    bench.run(125.0)
    latches = bench.state.latches
    assert bench.state.phase is Phase.FLOAT and latches.float_target_altitude_m == 27000.0
    assert "float_target" in bench.names()
    assert bench.params.set("ALT_TARGET", 26000.0)[0]  # a later parameter change moves the latched target
    assert latches.float_target_altitude_m == 26000.0
    assert bench.logic.set_float_target(25000.0, bench.t).outcome is Outcome.ACCEPTED
    assert latches.float_target_altitude_m == 25000.0


def test_entering_float_keeps_a_ground_target(tmp_path):
    bench = Bench(tmp_path, phase=Phase.ASCENT, params={"ALT_TARGET": 27000.0})
    bench.logic.set_float_target(25000.0, bench.t)
    assert bench.logic.request_phase(int(Phase.FLOAT), bench.t).outcome is Outcome.ACCEPTED
    assert bench.state.latches.float_target_altitude_m == 25000.0


@pytest.mark.parametrize("tau_s, pulses", [(20.0, 0), (0.0, 1)])
def test_controller_rate_is_smoothed(tmp_path, tau_s, pulses):
    # a settled balloon at the target and one noisy frame saying it sinks at 3 m/s
    bench = Bench(tmp_path, params={"ALT_BAL_TOTAL": 10.0, "ALT_RATE_TAU": tau_s})
    bench.run(60.0)
    bench.world.rate_mps = -3.0
    bench.frame()
    bench.world.rate_mps = 0.0
    bench.run(5.0)
    assert bench.burns("ballast_valve") == pulses


def test_cutdown_arm_and_disarm_by_command(tmp_path):
    bench = Bench(tmp_path, phase=Phase.PREFLIGHT)
    assert bench.logic.arm("cutdown", bench.t).outcome is Outcome.ACCEPTED and bench.active("cutdown_arm")
    assert bench.logic.disarm("cutdown", bench.t).outcome is Outcome.ACCEPTED and not bench.active("cutdown_arm")
    assert bench.logic.arm("payload", bench.t).outcome is Outcome.UNSUPPORTED
