"""FlightLogic: the glue between the rules, a (fake) actuator manager and the latches, and the command handlers."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest

from flightsw.dictionary import all_param_decls
from flightsw.flightlogic import FLIGHT_PARAMS, CommandResult, FlightLogic, Outcome
from flightsw.params import Params
from flightsw.phase import Phase
from flightsw.rules.termination import Stage
from flightsw.state import FlightState

WALL0 = 1.7e9
BOX = ((40.0, -106.0), (41.0, -106.0), (41.0, -105.0), (40.0, -105.0))
MISSION = SimpleNamespace(launch_box=BOX, geofence=())
FLOW = 0.01


class FakeActuators:
    """The ActuatorManager API with its interlocks: fire needs an arm from an earlier frame, release fires once,
    a cutdown after the first needs ``retry``; a burn disarms its chain when it ends."""

    def __init__(self) -> None:
        self.now = 0.0
        self.calls: list[tuple] = []
        self.armed = {"release": False, "cutdown": False}
        self.armed_s = {"release": math.nan, "cutdown": math.nan}
        self.fire_until = {"release": -math.inf, "cutdown": -math.inf}
        self.attempts = {"release": 0, "cutdown": 0}
        self.valve_until = {"ballast": -math.inf, "vent": -math.inf}
        self.valve_from = {"ballast": 0.0, "vent": 0.0}
        self.ballast_used_kg = 0.0
        self.outputs_safe = True
        self.refuse_fire = False
        self.safe_calls = 0
        self.on_fire = None  # callback(chain) run when a fire is accepted, before "driving the line"

    def pulse_valve(self, valve, duration_s, now_s):
        self.calls.append(("pulse", valve, duration_s))
        if not 0 < duration_s <= 60.0:
            return False
        if self.valve_until[valve] <= now_s:
            self.valve_from[valve] = now_s
        self.valve_until[valve] = max(self.valve_until[valve], now_s + duration_s)
        return True

    def close_valves(self, now_s):
        self.calls.append(("close_valves",))
        for valve in self.valve_until:
            if self.valve_until[valve] > now_s:
                self._account(valve, now_s)

    def _account(self, valve, end_s):
        if valve == "ballast":
            self.ballast_used_kg += (end_s - self.valve_from[valve]) * FLOW
        self.valve_until[valve] = -math.inf

    def update(self, now_s, healthy=True):
        self.now = now_s
        for valve, until in self.valve_until.items():
            if math.isfinite(until) and until <= now_s:
                self._account(valve, until)
        for chain, until in self.fire_until.items():
            if math.isfinite(until) and until <= now_s:
                self.fire_until[chain] = -math.inf
                self.armed[chain] = False

    def arm(self, chain, now_s):
        self.calls.append(("arm", chain))
        if not self.armed[chain]:
            self.armed[chain], self.armed_s[chain] = True, now_s
        return True

    def disarm(self, chain, now_s):
        self.calls.append(("disarm", chain))
        self.armed[chain] = False
        self.fire_until[chain] = -math.inf

    def fire(self, chain, burn_s, now_s, retry=False):
        self.calls.append(("fire", chain, burn_s, retry))
        if self.refuse_fire or not self.armed[chain] or not now_s > self.armed_s[chain]:
            return False
        if self.attempts[chain] and (chain == "release" or not retry):
            return False
        if self.on_fire is not None:
            self.on_fire(chain)
        self.attempts[chain] += 1
        self.fire_until[chain] = now_s + burn_s
        return True

    def is_armed(self, chain):
        return self.armed[chain]

    def is_firing(self, chain):
        return self.fire_until[chain] > self.now

    def valve_open(self, valve):
        return self.valve_until[valve] > self.now

    def safe(self, now_s=None):
        self.safe_calls += 1
        self.armed = {"release": False, "cutdown": False}
        self.valve_until = {"ballast": -math.inf, "vent": -math.inf}

    def count(self, kind, *args):
        return sum(1 for c in self.calls if c[0] == kind and c[1:1 + len(args)] == args)


class Rig:
    def __init__(self, phase=Phase.FLOAT, *, latches=None, persist=None, **param_values):
        self.params = Params(all_param_decls())
        values = {"FLT_MODE": 1, "BAL_FLOW_KGPS": FLOW, **param_values}
        for name, value in values.items():
            ok, reason = self.params.set(name, value)
            assert ok, reason
        self.state = FlightState(now_s=0.0, wall_time_s=WALL0)
        if latches is not None:
            self.state.latches = latches
        else:
            self.state.latches.phase = int(phase)
        est = self.state.estimate
        est.altitude_m, est.altitude_valid = 28000.0, True
        est.vertical_rate_mps, est.vertical_rate_valid = 0.0, True
        est.latitude_deg, est.longitude_deg, est.position_valid = 40.5, -105.5, True
        est.fix_type, est.satellites = 3, 10
        est.bus_voltage_v, est.power_valid = 7.6, True
        est.temperatures_c, est.temperature_valid = (10.0,), True
        self.state.sensors_healthy = True
        self.state.link.gcs_heartbeat_s = 0.0
        self.act = FakeActuators()
        self.events: list[tuple[str, str, str, dict]] = []
        self.logic = FlightLogic(self.state, self.params, self.act, MISSION,
                                 on_event=lambda n, s, t, **f: self.events.append((n, s, t, f)), persist=persist)
        self.t = 0.0
        self.link_alive = True

    def frame(self, dt=0.5):
        self.t += dt
        self.state.now_s, self.state.wall_time_s = self.t, WALL0 + self.t
        if self.link_alive:
            self.state.link.gcs_heartbeat_s = self.t
        self.logic.decide(self.t)
        self.act.update(self.t)

    def run(self, seconds, dt=0.5):
        for _ in range(int(round(seconds / dt))):
            self.frame(dt)

    def names(self):
        return [e[0] for e in self.events]


def test_outcomes_are_mav_results():
    from pymavlink.dialects.v20 import common

    for outcome in Outcome:
        assert outcome.value == getattr(common, f"MAV_RESULT_{outcome.name}")


def test_flight_params_order_and_content():
    names = [d.name for d in FLIGHT_PARAMS]
    assert len(names) == len(set(names))
    assert names[0] == "FLT_MODE"
    for name in ("TRM_EN_LINK", "REL_AUTO", "ALT_BAL_RESERVE", "PH_LAND_DWELL"):
        assert name in names
    assert all(d.unit for d in FLIGHT_PARAMS if d.kind is float)


# ---------------------------------------------------------------- phases

def test_launch_sets_phase_and_launch_latches():
    rig = Rig(Phase.PREFLIGHT)
    rig.state.estimate.altitude_m = 120.0
    rig.run(2.0)
    rig.state.estimate.vertical_rate_mps = 4.0
    rig.run(6.0)
    assert rig.state.phase is Phase.ASCENT
    latches = rig.state.latches
    assert latches.launch_wall_s > WALL0 and latches.launch_latitude_deg == 40.5
    assert latches.launch_altitude_m == pytest.approx(120.0)
    assert rig.state.latches_dirty and "phase" in rig.names()
    assert math.isfinite(rig.state.airborne_since_s)


def test_blocked_launch_is_reported_once():
    rig = Rig(Phase.PREFLIGHT)
    rig.state.sensors_healthy = False
    rig.state.estimate.vertical_rate_mps = 4.0
    rig.run(10.0)
    assert rig.state.phase is Phase.PREFLIGHT
    assert rig.names().count("launch_blocked") == 1
    assert rig.state.selftest_failures == ("sensors",)
    assert rig.logic.override_preflight(rig.t).outcome is Outcome.ACCEPTED
    rig.frame()
    assert rig.state.phase is Phase.ASCENT


@pytest.mark.parametrize("phase, requested, outcome", [
    (Phase.PREFLIGHT, Phase.ASCENT, Outcome.ACCEPTED),
    (Phase.FLOAT, Phase.TERMINATION, Outcome.DENIED),
    (Phase.FLOAT, Phase.DESCENT, Outcome.ACCEPTED),
    (Phase.FLOAT, 99, Outcome.UNSUPPORTED),
    (Phase.LANDED, Phase.FLOAT, Outcome.DENIED),
])
def test_request_phase(phase, requested, outcome):
    rig = Rig(phase)
    result = rig.logic.request_phase(requested, 1.0)
    assert result.outcome is outcome and result.message
    if outcome is Outcome.ACCEPTED:
        assert rig.state.phase is Phase(requested) and rig.state.latches_dirty


def test_override_only_in_preflight():
    assert Rig(Phase.FLOAT).logic.override_preflight(1.0).outcome is Outcome.DENIED
    rig = Rig(Phase.PREFLIGHT)
    assert rig.logic.override_preflight(1.0).outcome is Outcome.ACCEPTED
    assert rig.state.latches.preflight_override and "preflight_override" in rig.names()


# ---------------------------------------------------------------- release

def test_release_two_step_fires_once_latched_before_the_line():
    rig = Rig()
    seen = []
    rig.act.on_fire = lambda chain: seen.append((chain, rig.state.latches.release_fired))
    rig.frame()
    assert rig.logic.arm("release", rig.t).outcome is Outcome.DENIED  # no ground GO yet
    assert rig.logic.ground_go(rig.t).outcome is Outcome.ACCEPTED
    assert rig.logic.arm("release", rig.t).outcome is Outcome.ACCEPTED
    assert rig.logic.fire_release(rig.t).outcome is Outcome.TEMPORARILY_REJECTED
    rig.frame()
    assert rig.logic.fire_release(rig.t).outcome is Outcome.ACCEPTED
    assert seen == [("release", True)]
    assert rig.state.latches_dirty and "release_fired" in rig.names()
    assert rig.logic.fire_release(rig.t).outcome is Outcome.DENIED
    assert rig.act.count("fire", "release") == 1


def test_arm_denied_names_the_failing_criteria():
    rig = Rig()
    rig.state.estimate.altitude_m = 10000.0
    result = rig.logic.arm("release", 1.0)
    assert result.outcome is Outcome.DENIED
    assert "altitude" in result.message and "ground_go" in result.message


def test_failing_criterion_while_armed_disarms_and_says_why():
    rig = Rig()
    rig.logic.ground_go(0.0)
    assert rig.logic.arm("release", 0.0).outcome is Outcome.ACCEPTED
    rig.frame()
    assert rig.state.latches.release_armed
    rig.state.estimate.vertical_rate_mps = -5.0
    rig.frame()
    assert not rig.state.latches.release_armed and not rig.act.armed["release"]
    disarm = [e for e in rig.events if e[0] == "disarm"][-1]
    assert "vertical_rate" in disarm[2]


def test_arm_timeout_disarms():
    rig = Rig(REL_ARM_TMO_S=10.0, REL_GO_WINDOW_S=600.0)
    rig.logic.ground_go(0.0)
    rig.logic.arm("release", 0.0)
    rig.run(11.0)
    assert not rig.state.latches.release_armed
    assert rig.logic.fire_release(rig.t).outcome is Outcome.DENIED


def test_restart_never_fires_release_again():
    rig = Rig()
    rig.state.latches.release_fired = True
    rig.state.latches.release_armed = True
    again = Rig(latches=rig.state.latches)
    again.logic.ground_go(0.0)
    assert again.logic.arm("release", 0.0).outcome is Outcome.DENIED
    assert again.logic.fire_release(1.0).outcome is Outcome.DENIED
    again.run(2.0)
    assert again.act.count("fire") == 0


def test_restart_disarms_an_armed_release():
    rig = Rig()
    rig.state.latches.release_armed = True
    again = Rig(latches=rig.state.latches)
    assert not again.state.latches.release_armed and again.state.latches_dirty
    assert "disarm" in again.names()


def test_persist_runs_before_the_line_and_refusal_rolls_back():
    order = []
    rig = Rig(persist=lambda: order.append(("persist", rig.state.latches.release_fired)))
    rig.act.on_fire = lambda chain: order.append(("fire", chain))
    rig.logic.ground_go(0.0)
    rig.logic.arm("release", 0.0)
    rig.frame()
    rig.act.refuse_fire = True
    assert rig.logic.fire_release(rig.t).outcome is Outcome.FAILED
    assert not rig.state.latches.release_fired
    rig.act.refuse_fire = False
    assert rig.logic.fire_release(rig.t).outcome is Outcome.ACCEPTED
    assert order[-2:] == [("persist", True), ("fire", "release")]


def test_separation_confirmed_by_lift_change():
    rig = Rig()
    rig.logic.ground_go(0.0)
    rig.logic.arm("release", 0.0)
    rig.frame()
    rig.logic.fire_release(rig.t)
    rig.frame()
    assert not rig.state.latches.separation_confirmed
    rig.state.estimate.lift_change_mps2 = 1.5
    rig.frame()
    assert rig.state.latches.separation_confirmed and "separation_confirmed" in rig.names()


def test_separation_not_seen_is_reported():
    rig = Rig()
    rig.logic.ground_go(0.0)
    rig.logic.arm("release", 0.0)
    rig.frame()
    rig.logic.fire_release(rig.t)
    rig.run(40.0)
    assert rig.state.latches.separation_timed_out and "separation_not_seen" in rig.names()
    assert not rig.state.latches.release_armed


def test_release_criteria_reported_while_unarmed_and_checked_every_frame_once_armed():
    rig = Rig()
    rig.frame(dt=0.05)
    assert rig.state.release_failures == ("ground_go",)  # reported although nothing is armed
    rig.logic.ground_go(rig.t)
    rig.run(1.0, dt=0.05)
    assert rig.state.release_failures == ()  # refreshed within a second
    assert rig.logic.arm("release", rig.t).outcome is Outcome.ACCEPTED
    rig.frame(dt=0.05)
    rig.state.estimate.vertical_rate_mps = -5.0
    rig.frame(dt=0.05)  # armed: the very next frame sees the failing criterion
    assert not rig.state.latches.release_armed
    assert rig.state.release_failures == ("vertical_rate",)


def test_autonomous_release():
    rig = Rig(REL_AUTO=1)
    rig.logic.ground_go(0.0)
    rig.run(2.0)
    assert rig.state.latches.release_fired
    assert rig.state.latches.release_reason.startswith("autonomous")
    assert rig.act.count("fire", "release") == 1


# ---------------------------------------------------------------- termination

def test_ground_termination_sequence_with_retry_and_separation():
    rig = Rig(TRM_SEP_TMO_S=20.0)
    rig.logic.ground_go(0.0)
    rig.logic.arm("release", 0.0)
    result = rig.logic.terminate("range safety", 0.0)
    assert result.outcome is Outcome.ACCEPTED
    latches = rig.state.latches
    assert latches.termination_fired and latches.termination_reason == "ground"
    assert rig.state.phase is Phase.TERMINATION and not latches.release_armed
    assert rig.act.armed["cutdown"] and latches.termination_stage == Stage.FIRE  # armed at once
    rig.frame()
    assert latches.cutdown_attempts == 1 and ("fire", "cutdown", 6.0, False) in rig.act.calls
    rig.run(21.0)  # no separation: the burn ends, the timeout passes, a retry re-arms and fires
    rig.run(1.0)
    assert latches.cutdown_attempts == 2 and ("fire", "cutdown", 6.0, True) in rig.act.calls
    assert "cutdown_retry" in rig.names()
    rig.state.estimate.vertical_rate_mps = -30.0
    rig.run(4.0)
    assert latches.termination_stage == Stage.DONE and "cutdown_separated" in rig.names()
    calls = len(rig.act.calls)
    rig.run(30.0)  # the sequence is over: nothing more is driven
    assert len(rig.act.calls) == calls and latches.termination_stage == Stage.DONE
    assert rig.logic.terminate("again", rig.t).outcome is Outcome.ACCEPTED  # one more on demand
    rig.run(2.0)
    assert latches.cutdown_attempts == 3 and rig.act.count("fire", "cutdown") == 3


def test_failed_cutdown_then_one_more_by_ground_command():
    rig = Rig(TRM_MAX_TRIES=1, TRM_SEP_TMO_S=10.0)
    rig.logic.terminate("test", 0.0)
    assert rig.logic.terminate("again", 0.0).outcome is Outcome.IN_PROGRESS
    rig.run(15.0)
    assert rig.state.latches.termination_stage == Stage.FAILED and "cutdown_failed" in rig.names()
    assert rig.logic.terminate("again", rig.t).outcome is Outcome.ACCEPTED
    rig.run(2.0)
    assert rig.state.latches.cutdown_attempts == 2
    rig.run(15.0)
    assert rig.state.latches.termination_stage == Stage.FAILED
    assert rig.act.count("fire", "cutdown") == 2


def test_lost_link_dumps_ballast_then_cuts():
    rig = Rig(ALT_BAL_TOTAL=2.0, TRM_LINK_TMO_S=60.0, TRM_DUMP_MAX_S=120.0, TRM_DUMP_PULSE_S=20.0)
    rig.link_alive = False
    rig.run(62.0)
    latches = rig.state.latches
    assert latches.termination_reason == "link_lost" and latches.termination_stage == Stage.DUMP
    assert latches.ballast_dump_started
    rig.run(125.0)
    pulses = [c[2] for c in rig.act.calls if c[:2] == ("pulse", "ballast")]
    assert pulses and max(pulses) <= 20.0
    assert rig.state.latches.ballast_used_kg == pytest.approx(1.2, abs=0.03)  # 120 s at 0.01 kg/s
    assert latches.cutdown_attempts == 1 and latches.termination_stage == Stage.WAIT


def test_restart_after_a_fire_waits_before_any_retry():
    rig = Rig(Phase.TERMINATION)
    latches = rig.state.latches
    latches.termination_fired, latches.termination_stage, latches.cutdown_attempts = True, Stage.FIRE, 1
    again = Rig(latches=latches, TRM_SEP_TMO_S=30.0)
    assert again.state.latches.termination_stage == Stage.WAIT
    again.run(10.0)
    assert again.act.count("fire") == 0
    again.run(25.0)
    assert ("fire", "cutdown", 6.0, True) in again.act.calls


def test_ground_termination_does_not_fire_in_the_arming_frame():
    # the command handler arms the chain; the same frame's decide must not latch (and journal) an attempt that
    # the actuators' interlock is bound to refuse: a kill between the two writes would cost an attempt
    journal: list[int] = []
    holder: dict[str, Rig] = {}
    rig = holder["rig"] = Rig(persist=lambda: journal.append(holder["rig"].state.latches.cutdown_attempts))
    latches = rig.state.latches
    assert rig.logic.terminate("range safety", 0.0).outcome is Outcome.ACCEPTED
    rig.logic.decide(0.0)  # the rest of the frame the command arrived in
    assert rig.act.armed["cutdown"] and latches.termination_stage == Stage.FIRE
    assert rig.act.count("fire") == 0 and latches.cutdown_attempts == 0 and journal == []
    assert "cutdown_refused" not in rig.names()
    rig.frame()
    assert journal == [1] and latches.cutdown_attempts == 1 and rig.act.count("fire", "cutdown") == 1
    assert "cutdown_fired" in rig.names()


def test_cutdown_waits_for_the_arm_to_settle():
    rig = Rig(ACT_ARM_SETTLE_S=1.2)
    rig.logic.terminate("range safety", 0.0)
    rig.run(1.0)
    assert rig.act.count("fire") == 0 and rig.state.latches.cutdown_attempts == 0
    rig.run(0.5)
    assert rig.act.count("fire", "cutdown") == 1 and rig.state.latches.cutdown_attempts == 1


def test_termination_disables_release_and_float_target():
    rig = Rig()
    rig.logic.terminate("x", 0.0)
    assert rig.logic.ground_go(0.0).outcome is Outcome.DENIED
    assert rig.logic.arm("release", 0.0).outcome is Outcome.DENIED
    assert rig.logic.set_float_target(25000.0, 0.0).outcome is Outcome.DENIED
    assert rig.logic.disarm("cutdown", 0.0).outcome is Outcome.DENIED


# ---------------------------------------------------------------- safety on errors

def test_exception_in_decide_makes_outputs_safe_and_propagates():
    rig = Rig()

    def broken(valve):
        raise RuntimeError("bus fault")
    rig.act.valve_open = broken
    with pytest.raises(RuntimeError):
        rig.frame()
    assert rig.act.safe_calls == 1


def test_exception_in_a_command_makes_outputs_safe_and_fails():
    rig = Rig()

    def broken(*args):
        raise RuntimeError("gpio")
    rig.act.pulse_valve = broken
    result = rig.logic.pulse("vent", 2.0, 0.0)
    assert result.outcome is Outcome.FAILED and rig.act.safe_calls == 1


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
def test_pulse_command(phase, valve, duration, alt, outcome):
    rig = Rig(phase)
    rig.state.estimate.altitude_m = alt
    assert rig.logic.pulse(valve, duration, 0.0).outcome is outcome


@pytest.mark.parametrize("target, outcome", [(25000.0, Outcome.ACCEPTED), (50000.0, Outcome.DENIED),
                                             (math.nan, Outcome.DENIED)])
def test_set_float_target(target, outcome):
    rig = Rig()
    result = rig.logic.set_float_target(target, 0.0)
    assert isinstance(result, CommandResult) and result.outcome is outcome
    if outcome is Outcome.ACCEPTED:
        assert rig.state.latches.float_target_altitude_m == target and rig.state.latches_dirty


def test_float_controller_drives_the_ballast_valve_and_reports_effort():
    rig = Rig(ALT_BAL_TOTAL=10.0)
    rig.state.estimate.altitude_m = 27200.0
    rig.state.estimate.vertical_rate_mps = -1.0
    rig.frame()
    assert rig.act.count("pulse", "ballast") == 1
    control = rig.state.control
    assert control.active and control.last_action == "ballast" and control.effort > 0.0
    rig.run(30.0)
    assert rig.act.count("pulse", "ballast") == 1  # the interval lets the balloon respond
    assert rig.state.latches.ballast_used_kg > 0.0 and rig.state.latches_dirty


def test_entering_float_latches_the_target():
    rig = Rig(Phase.ASCENT, ALT_TARGET=27000.0)
    assert math.isnan(rig.state.latches.float_target_altitude_m)
    rig.state.estimate.altitude_m, rig.state.estimate.vertical_rate_mps = 29500.0, -1.2  # sinking after the climb
    rig.run(125.0)
    latches = rig.state.latches
    assert rig.state.phase is Phase.FLOAT and latches.float_target_altitude_m == 27000.0
    assert "float_target" in rig.names()
    assert rig.params.set("ALT_TARGET", 26000.0)[0]  # a later parameter change moves the latched target
    assert latches.float_target_altitude_m == 26000.0
    assert rig.logic.set_float_target(25000.0, rig.t).outcome is Outcome.ACCEPTED
    assert latches.float_target_altitude_m == 25000.0


def test_entering_float_keeps_a_ground_target():
    rig = Rig(Phase.ASCENT, ALT_TARGET=27000.0)
    rig.logic.set_float_target(25000.0, 0.0)
    assert rig.logic.request_phase(int(Phase.FLOAT), 0.0).outcome is Outcome.ACCEPTED
    assert rig.state.latches.float_target_altitude_m == 25000.0


def test_parameter_before_the_float_latches_nothing():
    rig = Rig(Phase.ASCENT)
    rig.params.set("ALT_TARGET", 26000.0)
    assert math.isnan(rig.state.latches.float_target_altitude_m)


@pytest.mark.parametrize("tau_s, pulses", [(20.0, 0), (0.0, 1)])
def test_controller_rate_is_smoothed(tau_s, pulses):
    # a settled balloon at the target and one noisy frame saying it sinks at 3 m/s
    rig = Rig(ALT_BAL_TOTAL=10.0, ALT_RATE_TAU=tau_s)
    rig.run(60.0)
    rig.state.estimate.vertical_rate_mps = -3.0
    rig.frame()
    rig.state.estimate.vertical_rate_mps = 0.0
    rig.run(5.0)
    assert rig.act.count("pulse", "ballast") == pulses


def test_smoothed_rate_follows_a_real_sink():
    rig = Rig(ALT_BAL_TOTAL=10.0, ALT_RATE_TAU=20.0)
    rig.state.estimate.vertical_rate_mps = -1.0
    rig.run(60.0)
    assert rig.act.count("pulse", "ballast") == 1


def test_cutdown_arm_and_disarm_by_command():
    rig = Rig(Phase.PREFLIGHT)
    assert rig.logic.arm("cutdown", 0.0).outcome is Outcome.ACCEPTED and rig.act.armed["cutdown"]
    assert rig.logic.disarm("cutdown", 0.0).outcome is Outcome.ACCEPTED and not rig.act.armed["cutdown"]
    assert rig.logic.arm("payload", 0.0).outcome is Outcome.UNSUPPORTED


def test_cutdown_chain_refusing_to_arm_fails_loudly():
    rig = Rig()
    rig.act.arm = lambda chain, now_s: False
    rig.logic.terminate("test", 0.0)
    assert rig.state.latches.termination_stage == Stage.FAILED and "cutdown_failed" in rig.names()
    rig.run(2.0)
    assert rig.names().count("cutdown_failed") == 1
