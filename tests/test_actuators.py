"""The actuator manager on a simulated clock, with fake output lines that can fail, and for a sample with the
real gpiozero output lines on mock pins whose writes fail (``hil.sim.BoardPin.fail_writes``).

What it must guarantee (issues 13, 14 and 21): a firing is data (STARTED / WRITE_FAILED / REFUSED), a write that
failed with the line inactive burned nothing and may be tried again, an attempt that started is never started
again, a burn is capped at ``ACT_BURN_MAX_S`` and never refused for its length, ballast is credited every frame,
a failing line is reported once per change and its switch-off retried every frame, and ``safe()`` never raises.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from gpiozero.pins.mock import MockFactory

from flightsw.actuators import ACTUATOR_PARAMS, ActuatorManager, FireResult, PulseResult
from flightsw.config.board import BoardConfig
from flightsw.config.loader import load_file
from flightsw.params import Params
from hal.gpio import build_output_lines
from hal.interfaces import OutputLines
from hil.sim import BoardPin

FRAME_S = 0.05
HIL_BOARD = Path(__file__).resolve().parent.parent / "config" / "boards" / "hil.yaml"


class Clock:
    def __init__(self) -> None:
        self.now_s = 0.0


class LineFault(OSError):
    pass


class FakeLine:
    """An output line whose backstop is modelled on the shared simulated clock, and which can fail.

    ``fail``: every write raises and changes nothing; ``fail_off``: only deactivation does; ``drive_then_fail``:
    activation drives the line and then raises (the error came after the level changed); ``fail_reads``: reading
    the line back raises."""

    def __init__(self, name: str, clock: Clock) -> None:
        self.name = name
        self.clock = clock
        self._on = False
        self.on_since_s = math.nan
        self.max_on_s = math.inf  # the line's own ceiling (none)
        self.last_max_on_s = math.nan  # what the last activation asked for
        self.activations: list[tuple[float, float]] = []  # (time, max_on_s) of each successful activation
        self.deactivations: list[float] = []
        self.reads = 0
        self.failures = 0  # writes and reads that raised
        self.fail = False
        self.fail_off = False
        self.drive_then_fail = False
        self.fail_reads = False

    def _raise(self, what: str) -> None:
        self.failures += 1
        raise LineFault(f"{self.name}: GPIO {what} failed")

    def activate(self, max_on_s: float) -> None:
        if self.fail:
            self._raise("write")
        # only level outputs (ARM relays, the heartbeat signal) may go without a finite backstop
        assert max_on_s > 0 and (math.isfinite(max_on_s) or "arm" in self.name or "heartbeat" in self.name)
        self._on = True
        self.on_since_s = self.clock.now_s
        self.last_max_on_s = max_on_s
        self.activations.append((self.clock.now_s, max_on_s))
        if self.drive_then_fail:
            self._raise("write")

    def deactivate(self) -> None:
        if self.fail or self.fail_off:
            self._raise("write")
        self._on = False
        self.deactivations.append(self.clock.now_s)

    @property
    def is_active(self) -> bool:
        self.reads += 1
        if self.fail_reads:
            self._raise("read")
        return self._on and self.clock.now_s < self.on_since_s + self.last_max_on_s

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
            self.frame(healthy)

    def frame(self, healthy: bool = True) -> None:
        self.clock.now_s = round(self.clock.now_s + FRAME_S, 9)
        self.manager.update(self.clock.now_s, healthy=healthy)

    @property
    def now_s(self) -> float:
        return self.clock.now_s

    def kinds(self) -> list[str]:
        return [kind for kind, _ in self.events]

    def last(self, kind: str) -> dict:
        return [data for k, data in self.events if k == kind][-1]

    def all(self, kind: str) -> list[dict]:
        return [data for k, data in self.events if k == kind]

    def armed(self, chain: str) -> "Rig":
        """Arm ``chain`` and let it settle (one frame past ACT_ARM_SETTLE_S)."""
        assert self.manager.arm(chain, self.now_s)
        self.run(max(FRAME_S, self.params["ACT_ARM_SETTLE_S"] + FRAME_S))
        return self

    def burn(self, chain: str, attempt: int, burn_s: float = 1.0) -> FireResult:
        """Arm, fire ``attempt`` and let the burn end; the fire's result."""
        if not self.manager.is_armed(chain):
            self.manager.arm(chain, self.now_s)
            self.run(FRAME_S)
        result = self.manager.fire(chain, burn_s, self.now_s, attempt=attempt)
        self.run(burn_s + 0.5)
        return result


# ------------------------------------------------------------------ valves

PULSE_CASES = [
    # (requested s, result, expected open time s)
    (2.0, PulseResult.OPEN, 2.0),
    (0.05, PulseResult.OPEN, 0.2),  # lengthened to ACT_MIN_PULSE_S
    (60.0, PulseResult.OPEN, 60.0),  # ACT_MAX_PULSE_S itself
    (60.5, PulseResult.REFUSED, 0.0),  # beyond ACT_MAX_PULSE_S
    (0.0, PulseResult.REFUSED, 0.0),
    (-1.0, PulseResult.REFUSED, 0.0),
    (math.nan, PulseResult.REFUSED, 0.0),
    (math.inf, PulseResult.REFUSED, 0.0),
    ("2", PulseResult.REFUSED, 0.0),
]


@pytest.mark.parametrize("requested_s, expected, open_s", PULSE_CASES)
def test_pulse_timing_and_limits(requested_s, expected, open_s):
    rig = Rig()
    rig.run(1.0)
    result = rig.manager.pulse_valve("vent", requested_s, rig.now_s)
    assert result is expected and bool(result) is (expected is PulseResult.OPEN)
    line = rig.lines["vent_valve"]
    if expected is PulseResult.REFUSED:
        assert not line.activations and "pulse_refused" in rig.kinds() and rig.manager.last_refusal["vent"]
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
    assert m.pulse_valve("ballast", 2.0, 0.0) is PulseResult.OPEN
    rig.run(1.0)
    assert m.pulse_valve("ballast", 0.5, rig.now_s) is PulseResult.OPEN  # earlier than the deadline: no change
    assert len(rig.lines["ballast_valve"].activations) == 1
    assert m.pulse_valve("ballast", 3.0, rig.now_s) is PulseResult.OPEN  # later: deadline 4.0 s, backstop renewed
    assert rig.lines["ballast_valve"].activations[-1] == (1.0, pytest.approx(4.0))
    rig.run(2.9)
    assert m.valve_open("ballast")
    rig.run(0.2)
    assert not m.valve_open("ballast")
    assert rig.kinds().count("pulse_start") == 1 and rig.kinds().count("pulse_end") == 1


def test_a_valve_write_that_fails_is_write_failed_leaves_the_valve_closed_and_may_be_tried_again():
    rig = Rig()
    m, line = rig.manager, rig.lines["ballast_valve"]
    line.fail = True
    assert m.pulse_valve("ballast", 2.0, rig.now_s) is PulseResult.WRITE_FAILED
    assert not m.valve_open("ballast") and "pulse_start" not in rig.kinds() and math.isnan(m.ballast_open_until_s)
    rig.run(1.0)
    assert m.ballast_used_kg == 0.0  # nothing flowed
    line.fail = False
    assert m.pulse_valve("ballast", 2.0, rig.now_s) is PulseResult.OPEN and line.is_active


def test_a_failed_extension_keeps_an_open_valve_to_its_earlier_deadline():
    rig = Rig()
    m, line = rig.manager, rig.lines["vent_valve"]
    assert m.pulse_valve("vent", 2.0, rig.now_s)
    rig.run(1.0)
    line.drive_then_fail = True
    assert m.pulse_valve("vent", 5.0, rig.now_s) is PulseResult.WRITE_FAILED
    line.drive_then_fail = False
    while rig.now_s < 2.0 - 1e-9:
        assert m.valve_open("vent") and line.is_active
        rig.frame()
    assert not m.valve_open("vent") and not line.is_active  # closed at 2 s, not 6 s


# ------------------------------------------------------------------ ballast, credited continuously


def test_ballast_is_credited_every_frame_while_the_valve_is_open():
    rig = Rig(ballast_used_kg=1.5)
    rig.params.set("BAL_FLOW_KGPS", 0.05)
    m = rig.manager
    opened_s = rig.now_s
    m.pulse_valve("ballast", 4.0, opened_s)
    assert m.ballast_used_kg == 1.5  # credited up to the last update, which was before the valve opened
    while m.valve_open("ballast"):
        rig.frame()
        assert m.ballast_used_kg == pytest.approx(1.5 + 0.05 * min(rig.now_s - opened_s, 4.0))
    closed = rig.last("pulse_end")
    assert closed["valve"] == "ballast" and closed["open_s"] == pytest.approx(4.0)
    assert closed["ballast_kg"] == pytest.approx(0.2)
    assert m.ballast_used_kg == pytest.approx(1.7) == closed["ballast_used_kg"]
    m.pulse_valve("vent", 5.0, rig.now_s)
    rig.run(6.0)
    assert m.ballast_used_kg == pytest.approx(1.7)  # the vent drops no ballast


def test_ballast_between_updates_is_what_the_last_update_saw():
    rig = Rig()
    rig.params.set("BAL_FLOW_KGPS", 0.1)
    m = rig.manager
    m.pulse_valve("ballast", 10.0, 0.0)
    rig.clock.now_s = 2.0
    assert m.ballast_used_kg == 0.0
    m.update(2.0)
    assert m.ballast_used_kg == pytest.approx(0.2)
    m.close_valves(3.0)
    assert m.ballast_used_kg == pytest.approx(0.3)


def test_ballast_after_a_stalled_frame_loop_counts_only_until_the_backstop():
    rig = Rig()
    rig.params.set("BAL_FLOW_KGPS", 0.1)
    m = rig.manager
    m.pulse_valve("ballast", 10.0, 0.0)  # backstop at 11 s
    m.update(6.0)  # a frame after a stall of 6 s: all of it counted, the valve may well have been open
    assert m.ballast_used_kg == pytest.approx(0.6) and m.valve_open("ballast")
    m.update(30.0)  # the loop stalled past the backstop, which dropped the line at 11 s
    assert rig.last("pulse_end")["open_s"] == pytest.approx(11.0)
    assert m.ballast_used_kg == pytest.approx(1.1)


def test_ballast_open_until_is_the_open_valves_backstop():
    rig = Rig()
    m = rig.manager
    assert math.isnan(m.ballast_open_until_s)
    m.pulse_valve("vent", 5.0, 0.0)
    assert math.isnan(m.ballast_open_until_s)  # the vent is not ballast
    m.pulse_valve("ballast", 2.0, 0.0)
    assert m.ballast_open_until_s == pytest.approx(3.0)  # 2 s + ACT_BACKSTOP_S
    rig.run(1.0)
    m.pulse_valve("ballast", 4.0, rig.now_s)
    assert m.ballast_open_until_s == pytest.approx(6.0)
    rig.run(5.0)
    assert not m.valve_open("ballast") and math.isnan(m.ballast_open_until_s)


def test_safe_credits_the_ballast_until_its_time():
    rig = Rig()
    rig.params.set("BAL_FLOW_KGPS", 0.1)
    m = rig.manager
    m.pulse_valve("ballast", 10.0, 0.0)
    rig.run(1.0)
    m.safe(2.5)
    assert m.ballast_used_kg == pytest.approx(0.25) and rig.last("pulse_end")["reason"] == "safe"


# ------------------------------------------------------------------ chains: arming and firing


def test_arm_then_fire_sequence_and_timing():
    rig = Rig()
    m = rig.manager
    assert m.arm("cutdown", rig.now_s) and m.is_armed("cutdown")
    assert rig.lines["cutdown_arm"].activations[-1][1] == pytest.approx(10.0)  # ACT_ARM_HOLD_S
    assert m.fire("cutdown", 3.0, rig.now_s) is FireResult.REFUSED  # same frame: ARM not settled
    assert rig.last("fire_refused")["reason"] == "armed too recently"
    rig.run(FRAME_S)
    assert m.fire("cutdown", 3.0, rig.now_s, attempt=1) is FireResult.STARTED and m.is_firing("cutdown")
    fire_line = rig.lines["cutdown_fire"]
    assert fire_line.activations[-1][1] == pytest.approx(4.0)  # burn plus ACT_BACKSTOP_S
    started_s = rig.now_s
    while m.is_firing("cutdown"):
        rig.run(FRAME_S)
    assert rig.now_s - started_s == pytest.approx(3.0, abs=1e-6)
    assert not fire_line.is_active and not rig.lines["cutdown_arm"].is_active
    assert not m.is_armed("cutdown")
    assert rig.lines["cutdown_arm"].deactivations[-1] >= fire_line.deactivations[-1]
    chain_events = [k for k in rig.kinds() if k in ("armed", "fire_started", "fire_ended", "fire_refused")]
    assert chain_events == ["armed", "fire_refused", "fire_started", "fire_ended"]
    assert rig.last("fire_started") == {"chain": "cutdown", "burn_s": 3.0, "attempt": 1, "line_ok": True}
    assert m.outputs_safe


def test_fire_in_the_arming_frame_is_refused_even_without_settle_time():
    rig = Rig()
    rig.params.set("ACT_ARM_SETTLE_S", 0.0)
    rig.manager.arm("cutdown", rig.now_s)
    assert rig.manager.fire("cutdown", 1.0, rig.now_s) is FireResult.REFUSED
    rig.run(FRAME_S)
    assert rig.manager.fire("cutdown", 1.0, rig.now_s) is FireResult.STARTED


@pytest.mark.parametrize("burn_s", [0.0, -1.0, math.nan, math.inf, "1"])
def test_fire_refuses_a_burn_that_is_not_a_positive_time(burn_s):
    rig = Rig().armed("release")
    assert rig.manager.fire("release", burn_s, rig.now_s) is FireResult.REFUSED
    assert rig.last("fire_refused")["reason"] == "burn must be a positive number of seconds"
    assert not rig.lines["release_fire"].activations and not rig.manager.release_fired


@pytest.mark.parametrize("attempt", [0, -1, 1.5, "1", None])
def test_fire_refuses_an_attempt_that_is_not_a_whole_number_from_1(attempt):
    rig = Rig().armed("cutdown")
    assert rig.manager.fire("cutdown", 1.0, rig.now_s, attempt=attempt) is FireResult.REFUSED
    assert rig.last("fire_refused")["reason"] == "attempt must be a whole number >= 1"
    assert not rig.lines["cutdown_fire"].activations


def test_the_burn_is_capped_at_act_burn_max_s_never_refused_for_its_length():
    """Issue 21: ACT_BURN_MAX_S 5 with a 6 s burn gave no burn at all."""
    rig = Rig()
    assert rig.params.set("ACT_BURN_MAX_S", 5.0)[0]
    m = rig.armed("cutdown").manager
    assert m.fire("cutdown", 6.0, rig.now_s, attempt=1) is FireResult.STARTED
    assert rig.last("burn_capped") == {"chain": "cutdown", "requested_s": 6.0, "burn_s": 5.0}
    assert rig.last("fire_started")["burn_s"] == 5.0
    started_s = rig.now_s
    fire_line = rig.lines["cutdown_fire"]
    assert fire_line.activations == [(started_s, pytest.approx(6.0))]  # 5 s plus ACT_BACKSTOP_S
    while m.is_firing("cutdown"):
        rig.frame()
    assert rig.now_s - started_s == pytest.approx(5.0, abs=1e-6)
    assert len(fire_line.activations) == 1 and "fire_refused" not in rig.kinds()


def test_a_burn_at_the_cap_is_not_capped():
    rig = Rig()
    rig.params.set("ACT_BURN_MAX_S", 5.0)
    assert rig.armed("release").manager.fire("release", 5.0, rig.now_s) is FireResult.STARTED
    assert "burn_capped" not in rig.kinds() and rig.last("fire_started")["burn_s"] == 5.0


def test_fire_refused_unarmed_and_when_the_arm_line_dropped():
    rig = Rig()
    m = rig.manager
    assert m.fire("release", 2.0, rig.now_s) is FireResult.REFUSED
    assert rig.last("fire_refused")["reason"] == "not armed"
    m.arm("release", rig.now_s)
    rig.lines["release_arm"].deactivate()  # the relay fell out behind the manager's back
    rig.run(1.0)
    assert m.fire("release", 2.0, rig.now_s) is FireResult.REFUSED
    assert "read back" in rig.last("fire_refused")["reason"]
    assert not rig.lines["release_fire"].activations and not m.release_fired


def test_arm_is_reasserted_and_drops_by_itself_if_the_loop_stops():
    rig = Rig()
    rig.manager.arm("release", rig.now_s)
    rig.run(30.0)
    arm = rig.lines["release_arm"]
    assert len(arm.activations) >= 6 and arm.is_active
    rig.clock.now_s += 11.0  # no updates: the ARM backstop expires
    assert not arm.is_active


def test_an_arm_write_that_fails_leaves_the_chain_unarmed_and_may_be_tried_again():
    rig = Rig()
    m, line = rig.manager, rig.lines["cutdown_arm"]
    line.drive_then_fail = True
    assert m.arm("cutdown", rig.now_s) is False
    assert not m.is_armed("cutdown") and not line.is_active  # driven back off
    assert m.last_refusal["cutdown"] == "ARM line write failed"
    line.drive_then_fail = False
    rig.run(FRAME_S)
    assert m.arm("cutdown", rig.now_s) and m.is_armed("cutdown")


FIRE_READY_CASES = [
    # (why, what happens after arming in the first frame, expected reason)
    ("not armed", "no arm", "not armed"),
    ("the arming frame", "same frame", "armed too recently"),
    ("before ACT_ARM_SETTLE_S", "settle 0.5 s, one frame", "armed too recently"),
    ("the ARM line reads back inactive", "arm line dropped", "ARM line does not read back active"),
    ("the ARM line can not be read", "arm line unreadable", "ARM line does not read back active"),
    ("burning", "burning", "already firing"),
    ("the release fired in an earlier process", "release spent", "release already fired"),
    ("ready", "one frame", ""),
]


@pytest.mark.parametrize("why, setup, reason", FIRE_READY_CASES, ids=[case[0] for case in FIRE_READY_CASES])
def test_fire_ready_says_why_a_fire_would_be_refused(why, setup, reason):
    rig = Rig(release_already_fired=setup == "release spent")
    m, chain = rig.manager, "release"
    if setup.startswith("settle"):
        rig.params.set("ACT_ARM_SETTLE_S", 0.5)
    if setup not in ("no arm", "release spent"):
        assert m.arm(chain, rig.now_s)
    if setup != "same frame":
        rig.frame()
    if setup == "arm line dropped":
        rig.lines["release_arm"].deactivate()
    if setup == "arm line unreadable":
        rig.lines["release_arm"].fail_reads = True
    if setup == "burning":
        assert m.fire(chain, 2.0, rig.now_s) is FireResult.STARTED
    assert m.fire_ready(chain, rig.now_s) == reason
    expected = FireResult.STARTED if reason == "" else FireResult.REFUSED
    assert m.fire(chain, 1.0, rig.now_s, attempt=2 if setup == "burning" else 1) is expected


# ------------------------------------------------------------------ fire results and attempts

FIRE_WRITE_CASES = [
    # (why, FIRE line behaviour, result, the chain burning afterwards)
    ("the write works", {}, FireResult.STARTED, True),
    ("the write fails, the line reads inactive", {"fail": True}, FireResult.WRITE_FAILED, False),
    ("the write fails after driving, the drop works: nothing burns", {"drive_then_fail": True},
     FireResult.WRITE_FAILED, False),
    ("the write fails after driving and the drop fails: it may be burning", {"drive_then_fail": True,
                                                                             "fail_off": True},
     FireResult.STARTED, True),
    ("the write and the drop fail and the line can not be read", {"fail": True, "fail_reads": True},
     FireResult.STARTED, True),
]


@pytest.mark.parametrize("why, faults, result, burning", FIRE_WRITE_CASES, ids=[c[0] for c in FIRE_WRITE_CASES])
def test_a_fire_write_error_is_write_failed_only_when_the_line_reads_back_inactive(why, faults, result, burning):
    rig = Rig().armed("cutdown")
    m, line = rig.manager, rig.lines["cutdown_fire"]
    for name, value in faults.items():
        setattr(line, name, value)
    assert m.fire("cutdown", 2.0, rig.now_s, attempt=1) is result
    assert m.is_firing("cutdown") is burning
    if result is FireResult.WRITE_FAILED:
        assert m.last_refusal["cutdown"] == "FIRE line write failed" and "fire_started" not in rig.kinds()
        assert m.is_armed("cutdown")  # the chain stays armed for the next try
    else:
        assert rig.last("fire_started")["line_ok"] is (not faults)
        assert rig.last("fire_started")["attempt"] == 1


def test_a_write_failed_attempt_is_accepted_again_next_frame():
    rig = Rig().armed("cutdown")
    m, line = rig.manager, rig.lines["cutdown_fire"]
    line.fail = True
    assert m.fire("cutdown", 2.0, rig.now_s, attempt=1) is FireResult.WRITE_FAILED
    rig.frame()
    assert m.fire("cutdown", 2.0, rig.now_s, attempt=1) is FireResult.WRITE_FAILED  # still failing: same answer
    line.fail = False
    rig.frame()
    assert m.fire("cutdown", 2.0, rig.now_s, attempt=1) is FireResult.STARTED
    assert [data["attempt"] for data in rig.all("fire_started")] == [1] and line.is_active


def test_a_fire_that_may_be_burning_keeps_its_deadline_and_is_dropped_by_it():
    rig = Rig().armed("cutdown")
    m, line = rig.manager, rig.lines["cutdown_fire"]
    line.drive_then_fail = line.fail_off = True
    started_s = rig.now_s
    assert m.fire("cutdown", 2.0, started_s, attempt=1) is FireResult.STARTED
    line.drive_then_fail = line.fail_off = False
    while m.is_firing("cutdown"):
        rig.frame()
    assert rig.now_s - started_s == pytest.approx(2.0, abs=1e-6)
    assert not line.is_active and rig.last("fire_ended")["reason"] == "burn complete"
    rig.armed("cutdown")
    assert m.fire("cutdown", 2.0, rig.now_s, attempt=1) is FireResult.REFUSED  # it counted as started


def test_an_attempt_that_started_is_never_started_again():
    rig = Rig()
    assert rig.burn("cutdown", attempt=1) is FireResult.STARTED
    assert rig.burn("cutdown", attempt=1) is FireResult.REFUSED
    assert rig.last("fire_refused")["reason"] == "attempt 1 already fired"
    assert rig.burn("cutdown", attempt=2) is FireResult.STARTED
    assert rig.burn("cutdown", attempt=1) is FireResult.REFUSED
    assert rig.burn("cutdown", attempt=2) is FireResult.REFUSED
    assert len(rig.lines["cutdown_fire"].activations) == 2
    assert [data["attempt"] for data in rig.all("fire_started")] == [1, 2]


def test_attempts_committed_before_a_restart_are_never_started_again():
    rig = Rig(cutdown_attempts=2)
    assert rig.burn("cutdown", attempt=1) is FireResult.REFUSED
    assert rig.burn("cutdown", attempt=2) is FireResult.REFUSED
    assert rig.burn("cutdown", attempt=3) is FireResult.STARTED
    assert len(rig.lines["cutdown_fire"].activations) == 1


def test_no_cutdown_attempt_beyond_act_cut_max_try():
    rig = Rig()
    rig.params.set("ACT_CUT_MAX_TRY", 3)
    assert [rig.burn("cutdown", attempt=k) for k in (1, 2, 3, 4)] == [FireResult.STARTED] * 3 + [FireResult.REFUSED]
    assert rig.last("fire_refused")["reason"] == "attempt 4 beyond ACT_CUT_MAX_TRY 3"
    assert len(rig.lines["cutdown_fire"].activations) == 3


def test_act_cut_max_try_counts_the_attempts_of_an_earlier_process():
    rig = Rig(cutdown_attempts=3)
    rig.params.set("ACT_CUT_MAX_TRY", 3)
    assert rig.burn("cutdown", attempt=4) is FireResult.REFUSED
    assert not rig.lines["cutdown_fire"].activations


def test_the_release_fires_once_per_process():
    rig = Rig()
    m = rig.manager
    assert rig.burn("release", attempt=1) is FireResult.STARTED and m.release_fired
    assert rig.last("fire_started") == {"chain": "release", "burn_s": 1.0, "attempt": 1, "line_ok": True}
    assert not m.arm("release", rig.now_s)
    assert rig.last("arm_refused")["reason"] == "release already fired"
    rig.run(1.0)
    for attempt in (1, 2):
        assert m.fire("release", 1.0, rig.now_s, attempt=attempt) is FireResult.REFUSED
    assert len(rig.lines["release_fire"].activations) == 1


def test_a_release_write_failure_with_the_line_inactive_does_not_spend_the_release():
    rig = Rig().armed("release")
    rig.lines["release_fire"].fail = True
    assert rig.manager.fire("release", 1.0, rig.now_s) is FireResult.WRITE_FAILED
    assert not rig.manager.release_fired
    rig.lines["release_fire"].fail = False
    rig.frame()
    assert rig.manager.fire("release", 1.0, rig.now_s) is FireResult.STARTED and rig.manager.release_fired


def test_the_release_never_fires_after_a_restart_with_the_journal_flag():
    rig = Rig(release_already_fired=True)
    m = rig.manager
    assert m.release_fired
    assert not m.arm("release", rig.now_s)
    rig.run(1.0)
    assert m.fire("release", 1.0, rig.now_s) is FireResult.REFUSED
    assert not rig.lines["release_fire"].activations and not rig.lines["release_arm"].activations


def test_disarm_while_firing_drops_fire_then_arm():
    rig = Rig().armed("cutdown")
    m = rig.manager
    m.fire("cutdown", 5.0, rig.now_s)
    rig.run(1.0)
    m.disarm("cutdown", rig.now_s)
    assert not m.is_firing("cutdown") and not m.is_armed("cutdown") and m.outputs_safe
    assert rig.lines["cutdown_arm"].deactivations[-1] >= rig.lines["cutdown_fire"].deactivations[-1]


# ------------------------------------------------------------------ line faults


def test_a_failing_line_is_reported_once_per_change_and_every_failure_counted():
    rig = Rig()
    m, line = rig.manager, rig.lines["vent_valve"]
    m.pulse_valve("vent", 1.0, rig.now_s)
    line.fail = True
    rig.run(2.0)  # the close at 1 s fails, and every retry after it
    assert line.failures >= 15
    assert [data["line"] for data in rig.all("output_error")] == ["vent_valve"]
    assert rig.last("output_error")["action"] == "deactivate"
    assert m.line_errors == {"vent_valve": line.failures}
    line.fail = False
    rig.run(1.0)
    assert rig.all("output_recovered") == [{"line": "vent_valve", "errors": line.failures}]
    assert not line.is_active
    line.fail = True
    m.pulse_valve("vent", 1.0, rig.now_s)
    assert len(rig.all("output_error")) == 2  # failing again is a new change
    assert m.line_errors["vent_valve"] == line.failures


def test_a_deactivate_that_fails_is_retried_every_update_until_it_works():
    rig = Rig()
    m, line = rig.manager, rig.lines["cutdown_fire"]
    rig.armed("cutdown")
    m.fire("cutdown", 1.0, rig.now_s)
    line.fail_off = True
    rig.run(1.0)  # the burn's end: the FIRE line's switch-off fails
    failures = line.failures
    assert failures >= 1 and line._on
    for _ in range(5):
        rig.frame()
        assert line.failures == failures + 1  # one try per frame
        failures = line.failures
    line.fail_off = False
    rig.frame()
    assert not line._on
    deactivations = len(line.deactivations)
    rig.run(1.0)
    assert len(line.deactivations) == deactivations  # no retry once it worked


def test_update_never_raises_on_failing_lines_and_counts():
    rig = Rig(heartbeat=True)
    m = rig.manager
    m.pulse_valve("vent", 1.0, 0.0)
    rig.lines["vent_valve"].fail = True
    rig.lines["termination_heartbeat"].fail = True
    rig.run(2.0)
    assert m.line_errors["vent_valve"] >= 1 and m.line_errors["termination_heartbeat"] >= 1
    assert {data["line"] for data in rig.all("output_error")} == {"vent_valve", "termination_heartbeat"}
    rig.lines["vent_valve"].fail = False
    rig.frame()
    assert not rig.lines["vent_valve"].is_active  # deactivation retried once the line works


def test_failing_event_listener_does_not_stop_outputs():
    rig = Rig()
    rig.manager.on_event = lambda kind, data: 1 / 0
    assert rig.manager.pulse_valve("vent", 1.0, 0.0)
    rig.run(1.5)
    assert not rig.lines["vent_valve"].is_active and rig.manager.errors >= 1


# ------------------------------------------------------------------ safe, heartbeat, read-back


def everything_on(rig: Rig) -> None:
    """Both valves open, both chains burning, the heartbeat toggling."""
    m = rig.manager
    m.pulse_valve("ballast", 10.0, rig.now_s)
    m.pulse_valve("vent", 10.0, rig.now_s)
    m.arm("release", rig.now_s)
    m.arm("cutdown", rig.now_s)
    rig.run(0.1)
    assert m.fire("release", 5.0, rig.now_s) and m.fire("cutdown", 5.0, rig.now_s)


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
    everything_on(rig)
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


class Indescribable(OSError):
    """A driver error that fails even to describe itself."""

    def __repr__(self) -> str:
        raise RuntimeError("no description")


def test_safe_falls_back_to_the_boards_force_safe_when_a_line_breaks_it():
    rig = Rig(heartbeat=True)
    m = rig.manager
    everything_on(rig)

    def broken():
        raise Indescribable("release_fire: write failed")
    rig.lines["release_fire"].deactivate = broken
    m.safe(rig.now_s)  # never raises
    assert [name for name, line in rig.lines.items() if line.is_active] == ["release_fire"]
    assert rig.last("output_error")["action"] == "safe" and m.errors >= 1


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


def test_an_unreadable_line_is_not_known_to_be_safe():
    rig = Rig()
    rig.lines["cutdown_fire"].fail_reads = True
    rig.frame()
    assert rig.manager.any_output_active and not rig.manager.outputs_safe


# ------------------------------------------------------------------ the real GPIO lines on mock pins


class PinRig(Rig):
    """The manager on the HIL board's real gpiozero output lines, on mock pins whose writes can fail."""

    def __init__(self) -> None:
        self.clock = Clock()
        self.factory = MockFactory(pin_class=BoardPin)
        board = load_file(HIL_BOARD, BoardConfig)
        self.pin_of = {role: getattr(board.outputs, role).pin for role in
                       ("ballast_valve", "vent_valve", "release_arm", "release_fire", "cutdown_arm", "cutdown_fire")}
        self.outputs = build_output_lines(board.outputs, pin_factory=self.factory)
        self.params = Params(ACTUATOR_PARAMS)
        self.events = []
        self.manager = ActuatorManager(self.outputs, self.params,
                                       on_event=lambda k, d: self.events.append((k, d)))

    def fail_writes(self, role: str, count: int) -> None:
        self.factory.pin(self.pin_of[role]).fail_writes = count

    def level(self, role: str) -> bool:
        return bool(self.factory.pin(self.pin_of[role]).state)

    def close(self) -> None:
        for line in self.outputs.all():
            line.close()
        self.factory.close()


@pytest.fixture
def pins():
    rig = PinRig()
    yield rig
    rig.close()


def test_gpio_a_failed_fire_write_is_retried_and_burns_once(pins):
    pins.armed("cutdown")
    pins.fail_writes("cutdown_fire", 1)
    assert pins.manager.fire("cutdown", 2.0, pins.now_s, attempt=1) is FireResult.WRITE_FAILED
    assert not pins.level("cutdown_fire")
    pins.frame()
    assert pins.manager.fire("cutdown", 2.0, pins.now_s, attempt=1) is FireResult.STARTED
    assert pins.level("cutdown_fire") and pins.outputs.cutdown_fire.is_active
    pins.run(2.0)
    assert not pins.level("cutdown_fire") and not pins.level("cutdown_arm")
    assert pins.manager.line_errors == {"cutdown_fire": 1}
    assert [k for k in pins.kinds() if k.startswith("output_")] == ["output_error", "output_recovered"]


def test_gpio_a_failed_arm_write_leaves_the_chain_unarmed_then_arms(pins):
    pins.fail_writes("release_arm", 1)
    assert pins.manager.arm("release", pins.now_s) is False and not pins.level("release_arm")
    pins.frame()
    assert pins.manager.arm("release", pins.now_s) and pins.level("release_arm")
    pins.run(FRAME_S)
    assert pins.manager.fire_ready("release", pins.now_s) == ""


def test_gpio_a_failed_valve_write_then_a_pulse(pins):
    pins.params.set("BAL_FLOW_KGPS", 0.1)
    pins.fail_writes("ballast_valve", 1)
    assert pins.manager.pulse_valve("ballast", 1.0, pins.now_s) is PulseResult.WRITE_FAILED
    assert not pins.level("ballast_valve")
    pins.frame()
    assert pins.manager.pulse_valve("ballast", 1.0, pins.now_s) is PulseResult.OPEN and pins.level("ballast_valve")
    pins.run(1.5)
    assert not pins.level("ballast_valve") and pins.manager.ballast_used_kg == pytest.approx(0.1)


def test_gpio_a_failing_switch_off_is_retried_each_frame_and_reported_once(pins):
    pins.manager.pulse_valve("vent", 1.0, pins.now_s)
    pins.run(0.5)
    pins.fail_writes("vent_valve", 3)
    pins.run(1.0)
    assert not pins.level("vent_valve")
    assert pins.manager.line_errors == {"vent_valve": 3}
    assert [k for k in pins.kinds() if k.startswith("output_")] == ["output_error", "output_recovered"]


def test_a_pulse_longer_than_the_valves_own_ceiling_counts_only_until_the_line_drops():
    """A valve line whose board ceiling (max_on_s) is 60 s drops a 100 s pulse at 60 s by itself: the ballast
    counted is what flowed until then, not the whole pulse."""
    rig = Rig()
    rig.lines["ballast_valve"].max_on_s = 60.0
    rig.params.set("ACT_MAX_PULSE_S", 120.0)
    m = rig.manager
    m.pulse_valve("ballast", 100.0, 0.0)
    assert rig.lines["ballast_valve"].activations[-1] == (0.0, 60.0)
    m.update(90.0)  # a stalled loop: the line dropped at 60 s
    assert m.ballast_used_kg == pytest.approx(60.0 * 0.01)
