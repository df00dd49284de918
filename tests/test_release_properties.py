"""Invariants of the release for any run of frames and ground requests (hypothesis): a release is committed at most
once and only with every criterion holding, in ASCENT or FLOAT; a fire command comes only with that commit or for
a committed release whose burn has not started; nothing is armed or fired after a termination; a committed release
never goes back."""

from __future__ import annotations

from hypothesis import given, settings, strategies as st

from flightsw.phase import Phase
from flightsw.rules.release import ReleaseInputs, ReleaseReport, ReleaseState, release_criteria, release_request, \
    release_step
from test_rules_release import MISSION, NOW, good_state, make_params

PARAMS = make_params(REL_AUTO=1)
PHASES = list(Phase)


@st.composite
def frames(draw):
    return dict(dt=draw(st.sampled_from([0.05, 1.0, 60.0, 130.0])), phase=draw(st.sampled_from(PHASES)),
                altitude_m=draw(st.sampled_from([20000.0, 28000.0, float("nan")])),
                terminated=draw(st.integers(0, 9)) == 0, request=draw(st.sampled_from([None, None, "arm", "fire",
                                                                                       "disarm"])),
                armed=draw(st.booleans()), ready=draw(st.sampled_from(["", "armed too recently"])),
                fire_answer=draw(st.sampled_from(["started", "write_failed", "refused"])),
                switch=draw(st.integers(0, 9)) == 0)


@settings(max_examples=60, deadline=None)
@given(st.lists(frames(), min_size=1, max_size=40))
def test_a_release_is_committed_at_most_once_and_only_when_every_criterion_holds(run):
    state, now_s, terminated, commits, fired_last = ReleaseState(), NOW, False, 0, False
    for frame in run:
        now_s += frame["dt"]
        terminated = terminated or frame["terminated"]
        world = good_state(frame["phase"])
        world.estimate.altitude_m = frame["altitude_m"]
        world.link.gcs_heartbeat_s, world.link.go_s = now_s - 1.0, now_s - 1.0
        fired = state.fired
        criteria = None if (fired or terminated) else release_criteria(world, PARAMS, now_s, MISSION)
        report = ReleaseReport(armed=frame["armed"], ready=frame["ready"] if frame["armed"] else "not armed",
                               fire_result=frame["fire_answer"] if fired_last else "")
        inputs = ReleaseInputs(now_s, criteria, terminated=terminated, report=report, switch_active=frame["switch"],
                               vertical_rate_mps=0.3, vertical_rate_valid=True)
        before = state
        state, commands, _ = release_step(state, inputs, PARAMS)
        kinds = [command.kind for command in commands]
        if frame["request"]:
            _, state, asked, _ = release_request(state, inputs, PARAMS, frame["request"], "ground")
            kinds += [command.kind for command in asked]
        fired_last = "fire" in kinds
        if state.fired and not before.fired:
            commits += 1
            assert criteria is not None and criteria.ok and frame["phase"] in (Phase.ASCENT, Phase.FLOAT)
            assert not terminated
        if "fire" in kinds:
            assert state.fired and (state.pending or not before.fired)
        if terminated and not before.armed:
            assert "arm" not in kinds or before.pending
        assert state.fired or not before.fired
        assert commits <= 1
