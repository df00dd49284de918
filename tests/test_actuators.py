"""The actuator manager on a simulated clock with fake output lines."""

from __future__ import annotations

import math

import pytest

from flightsw.actuators import ACTUATOR_PARAMS, ActuatorManager
from flightsw.params import Params
from hal.interfaces import OutputLines

FRAME_S = 0.05


class Clock:
    def __init__(self) -> None:
        self.now_s = 0.0


class FakeLine:
    """An output line whose backstop is modelled on the shared simulated clock."""

    def __init__(self, name: str, clock: Clock) -> None:
        self.name = name
        self.clock = clock
        self._on = False
        self.on_since_s = math.nan
        self.max_on_s = math.nan
        self.activations: list[tuple[float, float]] = []  # (time, max_on_s)
        self.deactivations: list[float] = []
        self.reads = 0
        self.fail = False

    def activate(self, max_on_s: float) -> None:
        if self.fail:
            raise OSError(f"{self.name}: GPIO write failed")
        # only level outputs (ARM relays, the heartbeat signal) may go without a finite backstop
        assert max_on_s > 0 and (math.isfinite(max_on_s) or "arm" in self.name or "heartbeat" in self.name)
        self._on = True
        self.on_since_s = self.clock.now_s
        self.max_on_s = max_on_s
        self.activations.append((self.clock.now_s, max_on_s))

    def deactivate(self) -> None:
        if self.fail:
            raise OSError(f"{self.name}: GPIO write failed")
        self._on = False
        self.deactivations.append(self.clock.now_s)

    @property
    def is_active(self) -> bool:
        self.reads += 1
        return self._on and self.clock.now_s < self.on_since_s + self.max_on_s

    def close(self) -> None:
        self._on = False


class Rig:
    def __init__(self, heartbeat: bool = False, **manager_kwargs) -> None:
        self.clock = Clock()
        self.lines = {name: FakeLine(name, self.clock) for name in
                      ("ballast_valve", "vent_valve", "release_arm", "release_fire", "cutdown_arm", "cutdown_fire")}
        if heartbeat:
            self.lines["termination_heartbeat"] = FakeLine("termination_heartbeat", self.clock)
        self.outputs = OutputLines(**self.lines)
        self.params = Params(ACTUATOR_PARAMS)
        self.events: list[tuple[str, dict]] = []
        self.manager = ActuatorManager(self.outputs, self.params, on_event=lambda k, d: self.events.append((k, d)),
                                       **manager_kwargs)

    def run(self, seconds: float, healthy: bool = True) -> None:
        for _ in range(round(seconds / FRAME_S)):
            self.clock.now_s = round(self.clock.now_s + FRAME_S, 9)
            self.manager.update(self.clock.now_s, healthy=healthy)

    @property
    def now_s(self) -> float:
        return self.clock.now_s

    def kinds(self) -> list[str]:
        return [kind for kind, _ in self.events]

    def last(self, kind: str) -> dict:
        return [data for k, data in self.events if k == kind][-1]


# ------------------------------------------------------------------ valves

PULSE_CASES = [
    # (requested s, accepted, expected open time s)
    (2.0, True, 2.0),
    (0.05, True, 0.2),  # lengthened to ACT_MIN_PULSE_S
    (60.0, True, 60.0),
    (60.5, False, 0.0),  # beyond ACT_MAX_PULSE_S
    (0.0, False, 0.0),
    (-1.0, False, 0.0),
    (math.nan, False, 0.0),
    (math.inf, False, 0.0),
]


@pytest.mark.parametrize("requested_s, accepted, open_s", PULSE_CASES)
def test_pulse_timing_and_limits(requested_s, accepted, open_s):
    rig = Rig()
    rig.run(1.0)
    assert rig.manager.pulse_valve("vent", requested_s, rig.now_s) is accepted
    line = rig.lines["vent_valve"]
    if not accepted:
        assert not line.activations and "pulse_refused" in rig.kinds()
        return
    assert line.activations[0][1] == pytest.approx(open_s + 1.0)  # backstop: pulse plus ACT_BACKSTOP_S
    opened_s = rig.now_s
    while rig.manager.valve_open("vent"):
        assert line.is_active
        rig.run(FRAME_S)
    assert not line.is_active
    assert line.deactivations[-1] - opened_s == pytest.approx(open_s, abs=FRAME_S + 1e-9)
    assert rig.last("pulse_end")["ballast_kg"] == 0.0


def test_new_pulse_extends_to_the_later_deadline():
    rig = Rig()
    m = rig.manager
    assert m.pulse_valve("ballast", 2.0, 0.0)
    rig.run(1.0)
    assert m.pulse_valve("ballast", 0.5, rig.now_s)  # earlier than the deadline: no change
    assert len(rig.lines["ballast_valve"].activations) == 1
    assert m.pulse_valve("ballast", 3.0, rig.now_s)  # later: deadline 4.0 s, backstop renewed
    assert rig.lines["ballast_valve"].activations[-1] == (1.0, pytest.approx(4.0))
    rig.run(2.9)
    assert m.valve_open("ballast")
    rig.run(0.2)
    assert not m.valve_open("ballast")
    assert rig.kinds().count("pulse_start") == 1 and rig.kinds().count("pulse_end") == 1


def test_ballast_accounting_and_event():
    rig = Rig(ballast_used_kg=1.5)
    rig.params.set("BAL_FLOW_KGPS", 0.05)
    m = rig.manager
    m.pulse_valve("ballast", 4.0, rig.now_s)
    rig.run(2.0)
    assert m.ballast_used_kg == 1.5  # accounted when the pulse ends
    rig.run(2.0)
    closed = rig.last("pulse_end")
    assert closed["valve"] == "ballast" and closed["open_s"] == pytest.approx(4.0)
    assert closed["ballast_kg"] == pytest.approx(0.2)
    assert m.ballast_used_kg == pytest.approx(1.7) == closed["ballast_used_kg"]
    m.pulse_valve("ballast", 10.0, rig.now_s)
    rig.run(1.0)
    m.close_valves(rig.now_s)
    assert rig.last("pulse_end")["ballast_kg"] == pytest.approx(0.05)
    m.pulse_valve("vent", 5.0, rig.now_s)
    rig.run(5.0)
    assert m.ballast_used_kg == pytest.approx(1.75)


def test_ballast_after_a_stalled_frame_loop_counts_only_until_the_backstop():
    rig = Rig()
    rig.manager.pulse_valve("ballast", 2.0, 0.0)
    rig.clock.now_s = 30.0  # the loop stalled; the line's backstop dropped it at 3 s
    rig.manager.update(30.0)
    assert rig.last("pulse_end")["open_s"] == pytest.approx(3.0)


# ------------------------------------------------------------------ chains


def test_arm_then_fire_sequence_and_timing():
    rig = Rig()
    m = rig.manager
    assert m.arm("cutdown", rig.now_s) and m.is_armed("cutdown")
    assert rig.lines["cutdown_arm"].activations[-1][1] == pytest.approx(10.0)  # ACT_ARM_HOLD_S
    assert not m.fire("cutdown", 3.0, rig.now_s)  # same frame: ARM not settled
    assert rig.last("fire_refused")["reason"] == "armed too recently"
    rig.run(FRAME_S)
    assert m.fire("cutdown", 3.0, rig.now_s) and m.is_firing("cutdown")
    fire_line = rig.lines["cutdown_fire"]
    assert fire_line.activations[-1][1] == pytest.approx(4.0)  # burn plus ACT_BACKSTOP_S
    started_s = rig.now_s
    while m.is_firing("cutdown"):
        rig.run(FRAME_S)
    assert rig.now_s - started_s == pytest.approx(3.0, abs=1e-6)
    assert not fire_line.is_active and not rig.lines["cutdown_arm"].is_active
    assert not m.is_armed("cutdown")
    fire_off = fire_line.deactivations[-1]
    assert rig.lines["cutdown_arm"].deactivations[-1] >= fire_off
    chain_events = [k for k in rig.kinds() if k in ("armed", "fire_started", "fire_ended", "fire_refused")]
    assert chain_events == ["armed", "fire_refused", "fire_started", "fire_ended"]
    assert m.outputs_safe


def test_fire_in_the_arming_frame_is_refused_even_without_settle_time():
    rig = Rig()
    rig.params.set("ACT_ARM_SETTLE_S", 0.0)
    rig.manager.arm("cutdown", rig.now_s)
    assert not rig.manager.fire("cutdown", 1.0, rig.now_s)
    rig.run(FRAME_S)
    assert rig.manager.fire("cutdown", 1.0, rig.now_s)


@pytest.mark.parametrize("burn_s", [0.0, -1.0, 10.5, math.nan])
def test_fire_refuses_bad_burn(burn_s):
    rig = Rig()
    rig.manager.arm("release", rig.now_s)
    rig.run(1.0)
    assert not rig.manager.fire("release", burn_s, rig.now_s)
    assert not rig.lines["release_fire"].activations and not rig.manager.release_fired


def test_fire_refused_unarmed_and_when_arm_line_dropped():
    rig = Rig()
    m = rig.manager
    assert not m.fire("release", 2.0, rig.now_s)
    assert rig.last("fire_refused")["reason"] == "not armed"
    m.arm("release", rig.now_s)
    rig.lines["release_arm"].deactivate()  # relay fell out behind the manager's back
    rig.run(1.0)
    assert not m.fire("release", 2.0, rig.now_s)
    assert "read back" in rig.last("fire_refused")["reason"]
    assert not rig.lines["release_fire"].activations and not m.release_fired


def test_arm_is_reasserted_and_drops_by_itself_if_the_loop_stops():
    rig = Rig()
    m = rig.manager
    m.arm("release", rig.now_s)
    rig.run(30.0)
    arm = rig.lines["release_arm"]
    assert len(arm.activations) >= 6 and arm.is_active
    rig.clock.now_s += 11.0  # no updates: the ARM backstop expires
    assert not arm.is_active


def test_release_fires_once_per_process():
    rig = Rig()
    m = rig.manager
    m.arm("release", rig.now_s)
    rig.run(FRAME_S)
    assert m.fire("release", 1.0, rig.now_s) and m.release_fired
    assert rig.last("fire_started") == {"chain": "release", "burn_s": 1.0, "attempt": 1, "line_ok": True}
    rig.run(2.0)
    assert not m.arm("release", rig.now_s)
    assert not m.fire("release", 1.0, rig.now_s, retry=True)
    assert len(rig.lines["release_fire"].activations) == 1


def test_release_never_fires_after_restart_with_journal_flag():
    rig = Rig(release_already_fired=True)
    m = rig.manager
    assert m.release_fired
    assert not m.arm("release", rig.now_s)
    rig.run(1.0)
    assert not m.fire("release", 1.0, rig.now_s)
    assert not rig.lines["release_fire"].activations and not rig.lines["release_arm"].activations


def fire_cutdown(rig: Rig, retry: bool = False) -> bool:
    rig.manager.arm("cutdown", rig.now_s)
    rig.run(FRAME_S)
    ok = rig.manager.fire("cutdown", 1.0, rig.now_s, retry=retry)
    rig.run(1.5)
    return ok


def test_cutdown_retry_needs_flag_and_is_limited():
    rig = Rig()
    rig.params.set("ACT_CUT_MAX_TRY", 3)
    assert fire_cutdown(rig)
    assert not fire_cutdown(rig)  # a second firing without retry
    assert rig.last("fire_refused")["reason"].startswith("cutdown already fired")
    assert fire_cutdown(rig, retry=True)
    assert fire_cutdown(rig, retry=True)
    assert rig.manager.cutdown_attempts == 3
    assert not rig.manager.arm("cutdown", rig.now_s)
    assert not fire_cutdown(rig, retry=True)
    assert len(rig.lines["cutdown_fire"].activations) == 3
    assert [d["attempt"] for k, d in rig.events if k == "fire_started"] == [1, 2, 3]


def test_cutdown_attempts_from_journal_count():
    rig = Rig(cutdown_attempts=2)
    rig.params.set("ACT_CUT_MAX_TRY", 3)
    assert not fire_cutdown(rig)  # fired before the restart: only a retry may fire
    assert fire_cutdown(rig, retry=True)
    assert rig.manager.cutdown_attempts == 3
    assert not fire_cutdown(rig, retry=True)


def test_disarm_while_firing_drops_fire_then_arm():
    rig = Rig()
    m = rig.manager
    m.arm("cutdown", 0.0)
    rig.run(0.1)
    m.fire("cutdown", 5.0, rig.now_s)
    rig.run(1.0)
    m.disarm("cutdown", rig.now_s)
    assert not m.is_firing("cutdown") and not m.is_armed("cutdown") and m.outputs_safe


# ------------------------------------------------------------------ safe, heartbeat, errors


def test_safe_drops_everything_fire_lines_first():
    rig = Rig(heartbeat=True)
    m = rig.manager
    order: list[str] = []
    for name, line in rig.lines.items():
        original = line.deactivate

        def recording(name=name, original=original):
            order.append(name)
            original()
        line.deactivate = recording
    m.pulse_valve("ballast", 10.0, 0.0)
    m.pulse_valve("vent", 10.0, 0.0)
    m.arm("release", 0.0)
    m.arm("cutdown", 0.0)
    rig.run(0.1)
    m.fire("release", 5.0, rig.now_s)
    m.fire("cutdown", 5.0, rig.now_s)
    assert m.any_output_active and not m.outputs_safe
    order.clear()
    m.safe(rig.now_s)
    assert m.outputs_safe and not m.any_output_active
    assert not any(line.is_active for line in rig.lines.values())
    assert order.index("release_fire") < order.index("release_arm")
    assert order.index("cutdown_fire") < order.index("cutdown_arm")
    assert max(order.index("release_fire"), order.index("cutdown_fire")) < order.index("ballast_valve")
    assert not m.valve_open("ballast") and not m.is_firing("release") and not m.is_armed("cutdown")
    rig.run(20.0, healthy=False)  # cancelled pulses and burns stay cancelled
    assert not any(line.is_active for line in rig.lines.values())
    assert rig.last("pulse_end")["reason"] == "safe"


def test_heartbeat_toggles_while_healthy_and_stops_when_not():
    rig = Rig(heartbeat=True)
    hb = rig.lines["termination_heartbeat"]
    levels = []
    for _ in range(40):  # 2 s
        rig.run(FRAME_S, healthy=True)
        levels.append(hb.is_active)
    toggles = sum(1 for a, b in zip(levels, levels[1:]) if a != b)
    assert 3 <= toggles <= 5  # ACT_HB_TOGGLE_HZ = 2
    while not hb.is_active:
        rig.run(FRAME_S, healthy=True)
    rig.run(FRAME_S, healthy=False)
    assert not hb.is_active  # dropped at once, not left to its backstop
    levels.clear()
    for _ in range(40):
        rig.run(FRAME_S, healthy=False)
        levels.append(hb.is_active)
    assert not any(levels)
    rig.run(1.0, healthy=True)
    assert hb.activations[-1][0] > 2.0  # toggling again


def test_heartbeat_is_a_level_without_a_backstop():
    rig = Rig(heartbeat=True)
    rig.run(2.0)
    hb = rig.lines["termination_heartbeat"]
    assert hb.activations and all(max_on_s == math.inf for _, max_on_s in hb.activations)


def test_read_back_once_a_frame_and_after_every_drive():
    rig = Rig(heartbeat=True)
    m = rig.manager
    rig.run(FRAME_S)
    valve = rig.lines["vent_valve"]
    reads = valve.reads
    for _ in range(3):
        assert m.outputs_safe and not m.any_output_active
    assert valve.reads == reads  # queries between updates use the frame's read-back
    rig.run(1.0)
    assert valve.reads == reads + 20  # one read per frame while nothing changes
    m.pulse_valve("vent", 2.0, rig.now_s)
    assert not m.outputs_safe  # a line the manager drove is read again at once
    m.close_valves(rig.now_s)
    assert m.outputs_safe
    valve.activate(5.0)  # a fault behind the manager's back ...
    rig.run(FRAME_S)
    assert m.any_output_active  # ... shows in the next frame's read-back


def test_update_never_raises_on_failing_lines_and_counts():
    rig = Rig(heartbeat=True)
    m = rig.manager
    m.pulse_valve("vent", 1.0, 0.0)
    rig.lines["vent_valve"].fail = True
    rig.lines["termination_heartbeat"].fail = True
    rig.run(2.0)
    assert m.line_errors["vent_valve"] >= 1 and m.line_errors["termination_heartbeat"] >= 1
    assert "output_error" in rig.kinds()
    rig.lines["vent_valve"].fail = False
    rig.run(FRAME_S)
    assert not rig.lines["vent_valve"].is_active  # deactivation retried once the line works


def test_failing_event_listener_does_not_stop_outputs():
    rig = Rig()
    rig.manager.on_event = lambda kind, data: 1 / 0
    assert rig.manager.pulse_valve("vent", 1.0, 0.0)
    rig.run(1.5)
    assert not rig.lines["vent_valve"].is_active and rig.manager.errors >= 1


@pytest.mark.parametrize("values, ceilings, flagged", [
    ({}, {"cutdown_fire": 8.0, "release_fire": 8.0}, []),                     # 6 + 1 and 5 + 1 s fit in 8 s
    ({"TRM_BURN_S": 7.5}, {"cutdown_fire": 8.0, "release_fire": 8.0}, ["TRM_BURN_S"]),
    ({"REL_BURN_S": 10.0}, {"cutdown_fire": 8.0, "release_fire": 8.0}, ["REL_BURN_S"]),
    ({"REL_BURN_S": 10.0, "ACT_BURN_MAX_S": 5.0}, {"release_fire": 8.0}, []),  # the cap shortens the burn
    ({"TRM_BURN_S": 10.0}, {"release_fire": 8.0}, []),                        # no ceiling known for the line
    ({"ACT_BACKSTOP_S": 3.0}, {"cutdown_fire": 8.0, "release_fire": 30.0}, ["TRM_BURN_S"]),
])
def test_burn_longer_than_its_line_backstop_is_flagged(values, ceilings, flagged):
    from flightsw.actuators import burn_backstop_problems
    from flightsw.dictionary import all_param_decls

    params = Params(all_param_decls())
    for name, value in values.items():
        assert params.set(name, value)[0]
    problems = burn_backstop_problems(params, ceilings)
    assert [text.split()[0] for text in problems] == flagged
