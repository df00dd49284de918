"""Invariants of the cutdown sequence over any run of frames (hypothesis): an attempt is committed only within its
limit, an attempt whose burn started is never fired again, nothing latched goes back, a dump never fires, and once
a termination is latched a ground request always leads to a fire command."""

from __future__ import annotations

from hypothesis import given, settings, strategies as st

from flightsw.rules.cutdown import CutdownState, Inputs, Report, Stage, cutdown_step
from test_rules_cutdown import params

PARAMS = params()
REASONS = ["", "", "", "ceiling", "link_lost", "max_duration", "battery", "float_floor", "geofence"]


@st.composite
def frames(draw):
    """What the world and the actuators say in one frame (the actuators' answer to a fire is drawn below)."""
    return dict(dt=draw(st.sampled_from([0.05, 0.05, 1.0, 30.0, 61.0])), reason=draw(st.sampled_from(REASONS)),
                ground=draw(st.booleans().map(lambda b: b and draw(st.integers(0, 5)) == 0)),
                high_enough=draw(st.booleans()), ballast_kg=draw(st.sampled_from([0.0, 0.3, 5.0])),
                separated=draw(st.integers(0, 9)) == 0, landed=draw(st.integers(0, 9)) == 0,
                armed=draw(st.booleans()), ready=draw(st.sampled_from(["", "", "armed too recently"])),
                arm_failed=draw(st.integers(0, 5)) == 0,
                fire_answer=draw(st.sampled_from(["started", "started", "write_failed", "refused"])),
                valve_open=draw(st.booleans()), dump_answer=draw(st.sampled_from(["", "open", "write_failed",
                                                                                  "refused"])))


@settings(max_examples=60, deadline=None)
@given(st.lists(frames(), min_size=1, max_size=60))
def test_attempts_stay_within_their_limit_and_a_started_burn_is_never_fired_again(run):
    state, now_s, fired_last, started = CutdownState(), 1000.0, 0, set()
    burning_until = 0.0
    for frame in run:
        now_s += frame["dt"]
        report = Report(armed=frame["armed"], ready=frame["ready"] if frame["armed"] else "not armed",
                        firing=now_s < burning_until, arm_failed=frame["arm_failed"],
                        fire_result=frame["fire_answer"] if fired_last else "",
                        fire_reason="beyond ACT_CUT_MAX_TRY" if frame["fire_answer"] == "refused" else "",
                        valve_open=frame["valve_open"], dump_result=frame["dump_answer"])
        if fired_last and frame["fire_answer"] == "started":
            started.add(fired_last)
            burning_until = now_s + 6.0
        inputs = Inputs(now_s=now_s, reason=frame["reason"], reason_text="why", ground=frame["ground"],
                        high_enough=frame["high_enough"], ballast_remaining_kg=frame["ballast_kg"],
                        separated=frame["separated"], landed=frame["landed"], report=report)
        before = state
        state, commands, events = cutdown_step(state, inputs, PARAMS)
        fires = [int(command.value) for command in commands if command.kind == "fire"]
        fired_last = fires[-1] if fires else 0
        assert len(fires) <= 1
        for attempt in fires:
            assert attempt not in started, "an attempt whose burn started was fired again"
            assert attempt <= state.attempt_limit
            assert attempt == state.attempts == state.pending
            assert state.commit_s == now_s
        assert state.attempts >= before.attempts
        assert state.attempts <= state.attempt_limit
        assert state.fired or not before.fired
        assert state.stage in Stage.ALL
        if state.fired and before.fired:
            assert state.reason == before.reason
        if state.stage == Stage.DUMP:
            assert not fires
            assert {command.kind for command in commands} <= {"dump_pulse"}


@settings(max_examples=20, deadline=None)
@given(st.sampled_from(Stage.ALL[1:]))
def test_a_ground_request_on_a_latched_termination_always_leads_to_a_fire(stage):
    """Whatever stage the sequence is in (done, failed, dumping, waiting), a ground termination request, repeated
    while the chain is armed and ready, fires within a few frames."""
    state = CutdownState(fired=True, reason="link_lost", stage=stage, stage_s=900.0, attempts=3, attempt_limit=3)
    now_s = 1000.0
    ready = Report(armed=True, ready="")
    for _ in range(5):
        now_s += 0.05
        state, commands, _ = cutdown_step(state, Inputs(now_s=now_s, ground=True, high_enough=True,
                                                        ballast_remaining_kg=5.0, report=ready), PARAMS)
        if any(command.kind == "fire" for command in commands):
            assert state.attempts == 4 and state.attempt_limit >= 4
            return
    raise AssertionError(f"no fire in five frames from {stage}")
