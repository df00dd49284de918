"""The actuator manager at its edges: every event it journals with all its data, the interlocks and deadlines at
their boundaries (arm settle, ARM re-assertion, a pulse's deadline, the heartbeat's half period), the state it
reports (``False``, never a stand-in), every failure path counted exactly once, the fallbacks of ``safe()``, and
the board constraints a board's lines add.  test_actuators.py has the nominal behaviour."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest

from flightsw.actuators import ActuatorManager, FireResult, PulseResult, board_constraints
from hal.interfaces import OutputLines
from test_actuators import FRAME_S, Clock, FakeLine, Rig

# ACTUATOR_PARAMS defaults: ACT_MIN_PULSE_S 0.2, ACT_MAX_PULSE_S 60, ACT_BACKSTOP_S 1, ACT_ARM_HOLD_S 10,
# ACT_ARM_SETTLE_S 0.04, ACT_BURN_MAX_S 10, ACT_CUT_MAX_TRY 10, ACT_HB_TOGGLE_HZ 2, BAL_FLOW_KGPS 0.01


def at(rig: Rig, now_s: float) -> None:
    """Move the rig's clock to ``now_s`` without an update."""
    rig.clock.now_s = now_s


# ----------------------------------------------------------------------------------------------- what it reports

def test_a_new_manager_reports_everything_off_as_false_and_counts_no_error():
    m = Rig().manager
    assert (m.is_armed("release"), m.is_armed("cutdown"), m.is_firing("release"), m.is_firing("cutdown"),
            m.valve_open("ballast"), m.valve_open("vent"), m.release_fired) == (False,) * 7
    assert m.any_output_active is False and m.outputs_safe is True
    assert m.errors == 0 and m.line_errors == {} and m.last_refusal == {}
    assert m.ballast_used_kg == 0.0 and math.isnan(m.ballast_open_until_s)


def test_a_line_left_active_by_an_earlier_process_is_seen_before_the_first_update():
    rig = Rig()
    rig.lines["vent_valve"].activate(30.0)
    m = ActuatorManager(rig.outputs, rig.params)
    assert m.any_output_active is True and m.outputs_safe is False


@pytest.mark.parametrize("attempts", [0, 1, 3])
def test_attempts_committed_before_a_restart_are_never_fired_and_the_next_one_is(attempts):
    rig = Rig(cutdown_attempts=attempts)
    rig.armed("cutdown")
    for attempt in range(1, attempts + 1):
        assert rig.manager.fire("cutdown", 1.0, rig.now_s, attempt=attempt) is FireResult.REFUSED
    assert rig.manager.fire("cutdown", 1.0, rig.now_s, attempt=attempts + 1) is FireResult.STARTED


@pytest.mark.parametrize("ask", [lambda m: m.is_armed("drogue"), lambda m: m.arm("main", 0.0)])
def test_an_unknown_chain_is_named_in_the_error(ask):
    with pytest.raises(ValueError) as error:
        ask(Rig().manager)
    assert "expected one of ('release', 'cutdown')" in str(error.value) and "unknown chain '" in str(error.value)


def test_an_unknown_valve_is_named_in_the_error():
    with pytest.raises(ValueError, match=r"unknown valve 'gas'; expected one of \('ballast', 'vent'\)"):
        Rig().manager.valve_open("gas")


# ----------------------------------------------------------------------------------------------- valves

def test_a_vent_pulse_is_journalled_from_start_to_its_deadline():
    rig = Rig()
    assert rig.manager.pulse_valve("vent", 1.0, rig.now_s) is PulseResult.OPEN
    assert rig.manager.valve_open("vent") is True
    rig.run(1.5)
    assert rig.events == [("pulse_start", {"valve": "vent", "duration_s": 1.0}),
                          ("pulse_end", {"valve": "vent", "open_s": pytest.approx(1.0), "ballast_kg": 0.0,
                                         "ballast_used_kg": 0.0, "reason": "deadline"})]
    assert rig.manager.valve_open("vent") is False


def test_a_ballast_pulse_closed_early_is_journalled_with_its_ballast():
    rig = Rig(ballast_used_kg=1.0)
    rig.run(1.0)
    rig.manager.pulse_valve("ballast", 10.0, rig.now_s)
    rig.run(2.0)
    rig.manager.close_valves(rig.now_s)
    assert rig.events[-1] == ("pulse_end", {"valve": "ballast", "open_s": pytest.approx(2.0),
                                            "ballast_kg": pytest.approx(0.02), "ballast_used_kg": pytest.approx(1.02),
                                            "reason": "closed"})
    assert rig.manager.valve_open("ballast") is False


@pytest.mark.parametrize("duration_s, reason", [(0.0, "duration must be a positive number of seconds"),
                                                (math.nan, "duration must be a positive number of seconds"),
                                                (61.0, "longer than ACT_MAX_PULSE_S 60 s")])
def test_a_refused_pulse_is_journalled_with_its_reason(duration_s, reason):
    rig = Rig()
    assert rig.manager.pulse_valve("ballast", duration_s, 0.0) is PulseResult.REFUSED
    kind, data = rig.events[-1]
    assert kind == "pulse_refused" and data["valve"] == "ballast" and data["reason"] == reason
    assert data["duration_s"] == duration_s or math.isnan(data["duration_s"])
    assert rig.manager.last_refusal == {"ballast": reason}


def test_a_pulse_ending_at_the_open_valves_deadline_drives_nothing_new():
    rig = Rig()
    rig.manager.pulse_valve("vent", 2.0, 0.0)
    at(rig, 1.0)
    assert rig.manager.pulse_valve("vent", 1.0, 1.0) is PulseResult.OPEN  # ends at 2.0 too
    assert len(rig.lines["vent_valve"].activations) == 1
    assert rig.manager.pulse_valve("vent", 1.5, 1.0) is PulseResult.OPEN  # ends later: extended
    assert len(rig.lines["vent_valve"].activations) == 2


def test_a_line_without_its_own_ceiling_gets_the_pulse_plus_the_backstop():
    rig = Rig()
    line = SimpleNamespace(name="vent_valve", on=False)
    line.activate = lambda max_on_s: setattr(line, "asked", max_on_s)
    line.deactivate = lambda: None
    line.is_active = False
    outputs = OutputLines(**{**rig.lines, "vent_valve": line})
    m = ActuatorManager(outputs, rig.params)
    assert m.pulse_valve("vent", 2.0, 0.0) is PulseResult.OPEN
    assert line.asked == 3.0


def test_ballast_is_never_credited_for_a_time_before_the_valve_opened():
    rig = Rig()
    at(rig, 5.0)
    rig.manager.pulse_valve("ballast", 2.0, 5.0)
    rig.manager.safe(4.0)  # a time before the opening: nothing flowed
    assert rig.manager.ballast_used_kg == 0.0
    assert rig.last("pulse_end")["open_s"] == 0.0


def test_safe_without_a_time_credits_the_ballast_until_the_last_update():
    rig = Rig()
    rig.manager.pulse_valve("ballast", 10.0, 0.0)
    rig.run(2.0)
    rig.manager.safe()
    assert rig.manager.ballast_used_kg == pytest.approx(0.02)
    assert rig.kinds()[-1] == "safe" and "output_error" not in rig.kinds()


def test_safe_before_any_update_credits_nothing():
    rig = Rig()
    rig.manager.pulse_valve("ballast", 10.0, 0.0)
    rig.manager.safe()
    assert rig.manager.ballast_used_kg == 0.0 and "output_error" not in rig.kinds()


# ----------------------------------------------------------------------------------------------- chains

def test_arming_is_journalled_and_arming_again_is_no_new_drive():
    rig = Rig()
    assert rig.manager.arm("cutdown", 0.0) is True
    assert rig.manager.arm("cutdown", 0.0) is True
    assert rig.events == [("armed", {"chain": "cutdown"})]
    assert len(rig.lines["cutdown_arm"].activations) == 1 and rig.manager.is_armed("cutdown") is True


def test_a_spent_release_refuses_to_arm_and_says_why():
    rig = Rig(release_already_fired=True)
    assert rig.manager.arm("release", 0.0) is False
    assert rig.events == [("arm_refused", {"chain": "release", "reason": "release already fired"})]
    assert rig.manager.last_refusal == {"release": "release already fired"}
    assert rig.manager.release_fired is True


def test_disarming_an_armed_chain_is_journalled_and_drops_its_arm_line():
    rig = Rig()
    rig.manager.arm("release", 0.0)
    rig.manager.disarm("release", 0.1)
    assert rig.events[-1] == ("disarmed", {"chain": "release"})
    assert rig.manager.is_armed("release") is False and not rig.lines["release_arm"].is_active


def test_disarming_a_chain_that_is_not_armed_drops_its_line_without_an_event():
    rig = Rig()
    rig.lines["cutdown_arm"].activate(10.0)  # driven by someone else
    rig.manager.disarm("cutdown", 0.0)
    assert rig.events == [] and not rig.lines["cutdown_arm"].is_active


def test_a_burn_is_journalled_from_start_to_end_with_its_attempt():
    rig = Rig().armed("cutdown")
    assert rig.manager.fire("cutdown", 1.0, rig.now_s, attempt=2) is FireResult.STARTED
    assert rig.manager.is_firing("cutdown") is True
    rig.run(1.5)
    assert rig.events[1:] == [("fire_started", {"chain": "cutdown", "burn_s": 1.0, "attempt": 2, "line_ok": True}),
                              ("fire_ended", {"chain": "cutdown", "attempt": 2, "reason": "burn complete"})]
    assert rig.manager.is_firing("cutdown") is False and rig.manager.is_armed("cutdown") is False


def test_a_release_fire_is_attempt_one_by_default():
    rig = Rig().armed("release")
    rig.manager.fire("release", 1.0, rig.now_s)
    assert rig.last("fire_started")["attempt"] == 1


@pytest.mark.parametrize("end, reason", [(lambda m, t: m.disarm("release", t), "disarmed"),
                                         (lambda m, t: m.safe(t), "safe")])
def test_a_burn_cut_short_is_journalled_with_why(end, reason):
    rig = Rig().armed("release")
    rig.manager.fire("release", 5.0, rig.now_s)
    end(rig.manager, rig.now_s)
    assert rig.last("fire_ended") == {"chain": "release", "attempt": 1, "reason": reason}
    assert rig.manager.is_firing("release") is False and rig.manager.is_armed("release") is False


def test_a_refused_fire_is_journalled_with_its_reason_and_attempt():
    rig = Rig()
    assert rig.manager.fire("cutdown", 1.0, 0.0, attempt=3) is FireResult.REFUSED
    assert rig.events == [("fire_refused", {"chain": "cutdown", "reason": "not armed", "attempt": 3})]
    assert rig.manager.last_refusal == {"cutdown": "not armed"}


@pytest.mark.parametrize("armed_for_s, ready", [(0.5, ""), (0.49, "armed too recently"), (0.51, "")])
def test_a_chain_may_fire_once_armed_exactly_the_settle_time(armed_for_s, ready):
    """Issue 22: the arm-settle boundary is inclusive."""
    rig = Rig()
    rig.params.set("ACT_ARM_SETTLE_S", 0.5)
    at(rig, 100.0)
    rig.manager.arm("cutdown", 100.0)
    assert rig.manager.fire_ready("cutdown", 100.0 + armed_for_s) == ready


@pytest.mark.parametrize("since_s, reasserted", [(4.99, False), (5.0, True)])
def test_an_arm_line_is_reasserted_at_half_its_hold(since_s, reasserted):
    rig = Rig()
    at(rig, 100.0)
    rig.manager.arm("release", 100.0)
    at(rig, 100.0 + since_s)
    rig.manager.update(100.0 + since_s)
    assert len(rig.lines["release_arm"].activations) == (2 if reasserted else 1)


# ----------------------------------------------------------------------------------------------- line faults

def test_a_failing_activation_is_reported_with_the_line_action_and_error_then_its_recovery():
    rig = Rig()
    rig.lines["vent_valve"].fail = True
    assert rig.manager.pulse_valve("vent", 1.0, 0.0) is PulseResult.WRITE_FAILED
    rig.lines["vent_valve"].fail = False
    assert rig.manager.pulse_valve("vent", 1.0, 0.1) is PulseResult.OPEN
    errors = [data for kind, data in rig.events if kind == "output_error"]
    assert errors == [{"line": "vent_valve", "action": "activate",
                       "error": "LineFault('vent_valve: GPIO write failed')"}]
    assert rig.last("output_recovered") == {"line": "vent_valve", "errors": 2}  # the write and the switch-off
    assert rig.manager.errors == 2 and rig.manager.line_errors == {"vent_valve": 2}


def test_an_unreadable_arm_line_is_reported_as_a_read_fault():
    rig = Rig()
    rig.manager.arm("cutdown", 0.0)
    rig.lines["cutdown_arm"].fail_reads = True
    assert rig.manager.fire_ready("cutdown", 1.0) == "ARM line does not read back active"
    assert rig.last("output_error") == {"line": "cutdown_arm", "action": "read",
                                        "error": "LineFault('cutdown_arm: GPIO read failed')"}
    assert rig.manager.errors == 1


def test_a_line_without_a_name_is_reported_as_a_question_mark():
    rig = Rig()

    class Nameless:
        fail = True

        def activate(self, max_on_s):
            if self.fail:
                raise OSError("broken")

        def deactivate(self):
            if self.fail:
                raise OSError("broken")

        is_active = False

    line = Nameless()
    m = ActuatorManager(OutputLines(**{**rig.lines, "vent_valve": line}), rig.params,
                        on_event=lambda kind, data: rig.events.append((kind, data)))
    m.pulse_valve("vent", 1.0, 0.0)
    assert rig.events[0] == ("output_error", {"line": "?", "action": "activate", "error": "OSError('broken')"})
    assert m.line_errors == {"?": 2}
    line.fail = False
    m.update(0.05)
    assert rig.events[-1] == ("output_recovered", {"line": "?", "errors": 2})


def test_an_event_listener_that_raises_counts_one_error_per_event():
    rig = Rig()

    def deaf(kind, data):
        raise RuntimeError("listener")
    m = ActuatorManager(rig.outputs, rig.params, on_event=deaf)
    m.arm("cutdown", 0.0)
    assert m.errors == 1 and m.is_armed("cutdown") is True
    m.disarm("cutdown", 0.1)
    assert m.errors == 2


def test_an_update_that_raises_is_reported_counted_once_and_the_frame_goes_on():
    rig = Rig()
    rig.manager.arm("release", 0.0)
    rig.manager._chains["release"].asserted_s = None  # a corrupted timer: the update raises
    rig.manager.update(1.0)
    kind, data = rig.events[-1]
    assert kind == "output_error" and data["line"] == "" and data["action"] == "update"
    assert data["error"].startswith("TypeError(")
    assert rig.manager.errors == 1
    rig.manager.update(1.05)
    assert rig.manager.errors == 2  # each one counted


def test_a_safe_that_breaks_falls_back_reports_and_reads_the_lines_again():
    rig = Rig()
    rig.manager.pulse_valve("vent", 5.0, 0.0)
    assert rig.manager.any_output_active is True
    forced = []
    rig.outputs.force_safe = lambda: (forced.append(True), [line.close() for line in rig.lines.values()])
    rig.manager._off = _raising_off  # a fault past the lines' own error handling
    rig.manager.safe(1.0)
    assert forced == [True]
    assert rig.last("output_error") == {"line": "", "action": "safe", "error": "RuntimeError('off broke')"}
    assert rig.manager.errors == 1
    assert rig.manager.any_output_active is False  # read again after force_safe
    rig.manager.safe(1.1)
    assert rig.manager.errors == 2  # each one counted


def _raising_off(line):
    raise RuntimeError("off broke")


def test_a_safe_that_works_reports_nothing_but_safe():
    rig = Rig(heartbeat=True)
    rig.manager.arm("release", 0.0)
    rig.manager.pulse_valve("vent", 5.0, 0.0)
    rig.run(0.1)
    rig.events.clear()
    rig.manager.safe(rig.now_s)
    assert [kind for kind, _ in rig.events] == ["pulse_end", "safe"]
    assert rig.manager.errors == 0 and rig.manager.is_armed("release") is False
    assert not any(line.is_active for line in rig.lines.values())


# ----------------------------------------------------------------------------------------------- heartbeat

def heartbeat_rises(rig: Rig) -> list[float]:
    return [round(t, 6) for t, _ in rig.lines["termination_heartbeat"].activations]


def test_the_heartbeat_rises_at_the_first_update_and_toggles_every_half_period():
    rig = Rig(heartbeat=True)
    for now_s in (0.0, 0.25, 0.49, 0.5, 0.75, 1.0, 1.5):
        at(rig, now_s)
        rig.manager.update(now_s)
    hb = rig.lines["termination_heartbeat"]
    assert heartbeat_rises(rig) == [0.0, 1.0]
    assert [round(t, 6) for t in hb.deactivations] == [0.5, 1.5]


def test_a_late_update_restarts_the_heartbeat_period_from_now():
    rig = Rig(heartbeat=True)
    at(rig, 0.0)
    rig.manager.update(0.0)
    at(rig, 3.0)
    rig.manager.update(3.0)  # late: low now, next toggle half a period from now
    at(rig, 3.49)
    rig.manager.update(3.49)
    at(rig, 3.5)
    rig.manager.update(3.5)
    assert heartbeat_rises(rig) == [0.0, 3.5]


@pytest.mark.parametrize("updates, rises", [
    ((0.0, 0.52, 0.99, 1.0, 1.03), [0.0, 1.0]),  # a toggle a little late keeps the period's grid
    ((0.0, 1.0, 1.1, 1.49, 1.5), [0.0, 1.5]),  # a toggle exactly half a period late: the next half a period on
])
def test_the_heartbeat_keeps_its_period_through_late_updates(updates, rises):
    rig = Rig(heartbeat=True)
    for now_s in updates:
        at(rig, now_s)
        rig.manager.update(now_s)
    assert heartbeat_rises(rig) == rises


def test_the_heartbeat_stops_when_unhealthy_and_rises_at_once_when_healthy_again():
    rig = Rig(heartbeat=True)
    at(rig, 0.0)
    rig.manager.update(0.0)
    at(rig, 0.1)
    rig.manager.update(0.1, healthy=False)
    assert not rig.lines["termination_heartbeat"].is_active
    at(rig, 0.2)
    rig.manager.update(0.2)  # healthy by default
    assert heartbeat_rises(rig) == [0.0, 0.2]


def test_the_heartbeat_rises_at_once_after_safe():
    rig = Rig(heartbeat=True)
    at(rig, 0.0)
    rig.manager.update(0.0)
    rig.manager.safe(0.1)
    at(rig, 0.2)
    rig.manager.update(0.2)
    assert heartbeat_rises(rig) == [0.0, 0.2] and rig.manager.errors == 0


# ----------------------------------------------------------------------------------------------- board constraints

def _board(**ceilings) -> SimpleNamespace:
    return SimpleNamespace(**{role: SimpleNamespace(max_on_s=value) for role, value in ceilings.items()})


VALUES = {"TRM_BURN_S": 6.0, "REL_BURN_S": 5.0, "ACT_BURN_MAX_S": 10.0, "ACT_BACKSTOP_S": 1.0, "ACT_MAX_PULSE_S": 60.0}


def _checks(outputs) -> dict[str, object]:
    return {constraint.description: constraint for constraint in board_constraints(outputs)}


def test_a_board_without_line_ceilings_adds_no_constraint():
    assert board_constraints(_board()) == ()
    assert board_constraints(_board(cutdown_fire=math.inf, ballast_valve=None, vent_valve="60")) == ()


def test_a_burn_plus_the_backstop_must_fit_its_fire_lines_ceiling():
    checks = _checks(_board(cutdown_fire=7.0, release_fire=8.0))
    cut = checks["TRM_BURN_S + ACT_BACKSTOP_S <= the cutdown_fire line's max_on_s"]
    rel = checks["REL_BURN_S + ACT_BACKSTOP_S <= the release_fire line's max_on_s"]
    assert cut.names == ("TRM_BURN_S", "ACT_BURN_MAX_S", "ACT_BACKSTOP_S")
    assert rel.names == ("REL_BURN_S", "ACT_BURN_MAX_S", "ACT_BACKSTOP_S")
    assert cut.check(VALUES) == ""  # 6 + 1 == 7: fits exactly
    assert cut.check({**VALUES, "TRM_BURN_S": 6.5}) == (
        "TRM_BURN_S 6.5 s + ACT_BACKSTOP_S 1 s is longer than the cutdown_fire line's backstop (7 s, the board's "
        "max_on_s): the burn would be cut short")
    assert cut.check({**VALUES, "TRM_BURN_S": 9.0, "ACT_BURN_MAX_S": 6.0}) == ""  # the burn is capped to 6 s
    assert rel.check({**VALUES, "REL_BURN_S": 7.0}) == ""
    assert rel.check({**VALUES, "REL_BURN_S": 7.5}).startswith("REL_BURN_S 7.5 s + ACT_BACKSTOP_S 1 s is longer "
                                                               "than the release_fire line's backstop (8 s")


def test_a_release_line_ceiling_is_a_constraint_even_when_the_cutdown_line_has_none():
    assert list(_checks(_board(release_fire=8.0))) == [
        "REL_BURN_S + ACT_BACKSTOP_S <= the release_fire line's max_on_s"]


def test_the_longest_pulse_must_fit_the_shorter_valve_ceiling():
    checks = _checks(_board(ballast_valve=90.0, vent_valve=45))
    pulse = checks["ACT_MAX_PULSE_S <= the vent_valve line's max_on_s"]
    assert pulse.names == ("ACT_MAX_PULSE_S",)
    assert pulse.check({**VALUES, "ACT_MAX_PULSE_S": 45.0}) == ""
    assert pulse.check({**VALUES, "ACT_MAX_PULSE_S": 46.0}) == (
        "ACT_MAX_PULSE_S 46 s is longer than the vent_valve line's backstop (45 s, the board's max_on_s): a pulse "
        "would be cut short")
    only_ballast = _checks(_board(ballast_valve=30.0))
    assert list(only_ballast) == ["ACT_MAX_PULSE_S <= the ballast_valve line's max_on_s"]
