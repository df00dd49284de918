"""Ground link commands: every mapped command's ACK and the flight logic call behind it, retries, IN_PROGRESS."""

from __future__ import annotations

import math

import pytest
from pymavlink.dialects.v20 import common as mavlink
from test_groundlink_harness import KEY, Harness, of_type, statustexts

from flightsw.flightlogic import CommandResult, Outcome
from flightsw.groundlink import COMMANDS
from flightsw.phase import Phase

ACCEPTED = mavlink.MAV_RESULT_ACCEPTED
DENIED = mavlink.MAV_RESULT_DENIED
FAILED = mavlink.MAV_RESULT_FAILED


@pytest.fixture
def h(tmp_path):
    harness = Harness(tmp_path)
    harness.start()
    yield harness
    harness.close()


@pytest.mark.parametrize("command, params, result, calls", [
    (mavlink.MAV_CMD_DO_FLIGHTTERMINATION, (1,), ACCEPTED, [("terminate", "ground command DO_FLIGHTTERMINATION")]),
    (mavlink.MAV_CMD_DO_FLIGHTTERMINATION, (0,), FAILED, []),
    (mavlink.MAV_CMD_COMPONENT_ARM_DISARM, (1,), ACCEPTED, [("arm", "release")]),
    (mavlink.MAV_CMD_COMPONENT_ARM_DISARM, (1, 0, 1), ACCEPTED, [("arm", "cutdown")]),
    (mavlink.MAV_CMD_COMPONENT_ARM_DISARM, (0, 0, 1), ACCEPTED, [("disarm", "cutdown")]),
    (mavlink.MAV_CMD_COMPONENT_ARM_DISARM, (0,), ACCEPTED, [("disarm", "release")]),
    (mavlink.MAV_CMD_COMPONENT_ARM_DISARM, (1, 0, 7), DENIED, []),
    (mavlink.MAV_CMD_COMPONENT_ARM_DISARM, (0.5,), DENIED, []),
    (mavlink.MAV_CMD_DO_GRIPPER, (1, mavlink.GRIPPER_ACTION_RELEASE), ACCEPTED, [("fire_release",)]),
    (mavlink.MAV_CMD_DO_GRIPPER, (1, mavlink.GRIPPER_ACTION_GRAB), DENIED, []),
    (mavlink.MAV_CMD_DO_PARACHUTE, (mavlink.PARACHUTE_RELEASE,), ACCEPTED,
     [("terminate", "ground command DO_PARACHUTE release")]),
    (mavlink.MAV_CMD_DO_PARACHUTE, (mavlink.PARACHUTE_ENABLE,), ACCEPTED, []),
    (mavlink.MAV_CMD_DO_PARACHUTE, (mavlink.PARACHUTE_DISABLE,), ACCEPTED, []),
    (mavlink.MAV_CMD_DO_SET_ACTUATOR, (2.5,), ACCEPTED, [("pulse", "ballast", 2.5)]),
    (mavlink.MAV_CMD_DO_SET_ACTUATOR, (0, 4), ACCEPTED, [("pulse", "vent", 4.0)]),
    (mavlink.MAV_CMD_DO_SET_ACTUATOR, (1, 2), ACCEPTED, [("pulse", "ballast", 1.0), ("pulse", "vent", 2.0)]),
    (mavlink.MAV_CMD_DO_SET_ACTUATOR, (0, 0), DENIED, []),
    (mavlink.MAV_CMD_DO_SET_ACTUATOR, (-1,), DENIED, []),
    (mavlink.MAV_CMD_DO_CHANGE_ALTITUDE, (30000, mavlink.MAV_FRAME_GLOBAL), ACCEPTED,
     [("set_float_target", 30000.0)]),
    (mavlink.MAV_CMD_DO_CHANGE_ALTITUDE, (30000, mavlink.MAV_FRAME_LOCAL_NED), DENIED, []),
    (mavlink.MAV_CMD_DO_SET_MODE, (mavlink.MAV_MODE_FLAG_CUSTOM_MODE_ENABLED, Phase.FLOAT), ACCEPTED,
     [("request_phase", Phase.FLOAT)]),
    (mavlink.MAV_CMD_DO_SET_MODE, (mavlink.MAV_MODE_FLAG_CUSTOM_MODE_ENABLED, 9), DENIED, []),
    (mavlink.MAV_CMD_DO_SET_MODE, (0, Phase.FLOAT), DENIED, []),
    (mavlink.MAV_CMD_USER_1, (), ACCEPTED, [("ground_go",)]),
    (mavlink.MAV_CMD_COMPONENT_ARM_DISARM, (1, 21196, 2), ACCEPTED, [("override_preflight",)]),
    (mavlink.MAV_CMD_COMPONENT_ARM_DISARM, (0, 0, 2), DENIED, []),
    (mavlink.MAV_CMD_USER_2, (), mavlink.MAV_RESULT_UNSUPPORTED, []),
    (mavlink.MAV_CMD_REQUEST_AUTOPILOT_CAPABILITIES, (1,), ACCEPTED, []),
    (mavlink.MAV_CMD_PREFLIGHT_REBOOT_SHUTDOWN, (2,), DENIED, []),
    (mavlink.MAV_CMD_PREFLIGHT_REBOOT_SHUTDOWN, (1,), DENIED, []),  # no restart hook in this harness
    (mavlink.MAV_CMD_REQUEST_MESSAGE, (mavlink.MAVLINK_MSG_ID_ATTITUDE,), DENIED, []),
    (mavlink.MAV_CMD_NAV_TAKEOFF, (), mavlink.MAV_RESULT_UNSUPPORTED, []),
])
def test_command_mapping(h, command, params, result, calls):
    h.command(command, *params)
    assert h.ack(command) == result
    assert h.logic.calls == calls


def test_every_table_command_is_exercised():
    tested = {mavlink.MAV_CMD_DO_FLIGHTTERMINATION, mavlink.MAV_CMD_COMPONENT_ARM_DISARM, mavlink.MAV_CMD_DO_GRIPPER,
              mavlink.MAV_CMD_DO_PARACHUTE, mavlink.MAV_CMD_DO_SET_ACTUATOR, mavlink.MAV_CMD_DO_CHANGE_ALTITUDE,
              mavlink.MAV_CMD_DO_SET_MODE, mavlink.MAV_CMD_USER_1,
              mavlink.MAV_CMD_REQUEST_AUTOPILOT_CAPABILITIES, mavlink.MAV_CMD_PREFLIGHT_REBOOT_SHUTDOWN,
              mavlink.MAV_CMD_REQUEST_MESSAGE, mavlink.MAV_CMD_SET_MESSAGE_INTERVAL,
              mavlink.MAV_CMD_GET_MESSAGE_INTERVAL, mavlink.MAV_CMD_GET_HOME_POSITION,
              mavlink.MAV_CMD_CONTROL_HIGH_LATENCY}  # the last four in test_groundlink_telemetry
    assert {spec.command for spec in COMMANDS} == tested


def test_logic_refusal_is_acked_and_explained(h):
    h.logic.results["fire_release"] = CommandResult(Outcome.DENIED, "release not armed")
    h.command(mavlink.MAV_CMD_DO_GRIPPER, 1, mavlink.GRIPPER_ACTION_RELEASE)
    got = h.run(0.5)
    assert [m.result for m in of_type(got, "COMMAND_ACK")] == [DENIED]
    assert any("release not armed" in text for text in statustexts(got))


def test_ballast_refused_means_no_vent_pulse(h):
    h.logic.results["pulse"] = CommandResult(Outcome.TEMPORARILY_REJECTED, "valve busy")
    h.command(mavlink.MAV_CMD_DO_SET_ACTUATOR, 1, 2)
    assert h.ack(mavlink.MAV_CMD_DO_SET_ACTUATOR) == mavlink.MAV_RESULT_TEMPORARILY_REJECTED
    assert h.logic.calls == [("pulse", "ballast", 1.0)]


def test_change_altitude_relative_to_launch(h):
    h.command(mavlink.MAV_CMD_DO_CHANGE_ALTITUDE, 25000, mavlink.MAV_FRAME_GLOBAL_RELATIVE_ALT)
    assert h.ack(mavlink.MAV_CMD_DO_CHANGE_ALTITUDE) == mavlink.MAV_RESULT_TEMPORARILY_REJECTED
    latches = h.state.latches
    latches.launch_latitude_deg, latches.launch_longitude_deg, latches.launch_altitude_m = 52.0, 5.0, 120.0
    h.command(mavlink.MAV_CMD_DO_CHANGE_ALTITUDE, 25000, mavlink.MAV_FRAME_GLOBAL_RELATIVE_ALT)
    assert h.ack(mavlink.MAV_CMD_DO_CHANGE_ALTITUDE) == ACCEPTED
    assert h.logic.calls == [("set_float_target", 25120.0)]


def test_command_int_uses_its_frame(h):
    h.command_int(mavlink.MAV_CMD_DO_CHANGE_ALTITUDE, 27000, frame=mavlink.MAV_FRAME_GLOBAL_INT)
    assert h.ack(mavlink.MAV_CMD_DO_CHANGE_ALTITUDE) == ACCEPTED
    assert h.logic.calls == [("set_float_target", 27000.0)]


def test_commands_for_other_systems_or_components_are_ignored(h):
    h.command(mavlink.MAV_CMD_DO_FLIGHTTERMINATION, 1, target_system=7)
    h.command(mavlink.MAV_CMD_DO_FLIGHTTERMINATION, 1, target_component=100)
    assert not of_type(h.run(0.5), "COMMAND_ACK")
    assert h.logic.calls == []
    assert h.link.counters["commands_foreign"] == 2


def test_broadcast_target_is_accepted(h):
    h.command(mavlink.MAV_CMD_USER_1, target_system=0, target_component=0)
    assert h.ack(mavlink.MAV_CMD_USER_1) == ACCEPTED


def test_reboot_on_the_ground_and_not_airborne(tmp_path):
    restarts = []
    h = Harness(tmp_path, on_reboot=lambda: restarts.append(True))
    try:
        h.start()
        h.state.latches.phase = Phase.FLOAT
        h.command(mavlink.MAV_CMD_PREFLIGHT_REBOOT_SHUTDOWN, 1)
        assert h.ack(mavlink.MAV_CMD_PREFLIGHT_REBOOT_SHUTDOWN) == DENIED
        assert restarts == []
        h.state.latches.phase = Phase.LANDED
        h.command(mavlink.MAV_CMD_PREFLIGHT_REBOOT_SHUTDOWN, 1)
        assert h.ack(mavlink.MAV_CMD_PREFLIGHT_REBOOT_SHUTDOWN) == ACCEPTED
        assert restarts == [True]
    finally:
        h.close()


# ---------------------------------------------------------------------------------------------- retries


def test_retry_with_confirmation_is_acked_again_but_acted_on_once(h):
    acks = []
    for confirmation in (0, 1, 2):
        h.command(mavlink.MAV_CMD_DO_FLIGHTTERMINATION, 1, confirmation=confirmation)
        acks += h.acks(mavlink.MAV_CMD_DO_FLIGHTTERMINATION, max_frames=2)
    assert [a.result for a in acks] == [ACCEPTED, ACCEPTED, ACCEPTED]
    assert h.logic.names() == ["terminate"]
    assert h.link.counters["command_retries"] == 2


def test_retry_gets_the_first_result_even_if_the_logic_would_now_answer_otherwise(h):
    h.logic.results["fire_release"] = CommandResult(Outcome.DENIED, "not armed")
    h.command(mavlink.MAV_CMD_DO_GRIPPER, 1, 0)
    acks = h.acks(mavlink.MAV_CMD_DO_GRIPPER, max_frames=2)
    h.logic.results["fire_release"] = CommandResult(Outcome.ACCEPTED, "fired")
    h.command(mavlink.MAV_CMD_DO_GRIPPER, 1, 0, confirmation=1)
    acks += h.acks(mavlink.MAV_CMD_DO_GRIPPER)
    assert [a.result for a in acks] == [DENIED, DENIED]
    assert h.logic.names() == ["fire_release"]


def test_identical_command_int_is_a_retry(h):
    h.command_int(mavlink.MAV_CMD_USER_1)
    acks = h.acks(mavlink.MAV_CMD_USER_1, max_frames=2)
    h.command_int(mavlink.MAV_CMD_USER_1)
    acks += h.acks(mavlink.MAV_CMD_USER_1)
    assert [a.result for a in acks] == [ACCEPTED, ACCEPTED]
    assert h.logic.names() == ["ground_go"]


def test_new_command_after_the_window_or_with_other_params_acts_again(h):
    h.command(mavlink.MAV_CMD_DO_SET_ACTUATOR, 1.0)
    h.frame()
    h.command(mavlink.MAV_CMD_DO_SET_ACTUATOR, 2.0, confirmation=1)  # other parameters: not a retry
    h.run(6.0)
    h.command(mavlink.MAV_CMD_DO_SET_ACTUATOR, 1.0, confirmation=1)  # same as the first, but 6 s later
    h.run(0.5)
    assert h.logic.calls == [("pulse", "ballast", 1.0), ("pulse", "ballast", 2.0), ("pulse", "ballast", 1.0)]


def test_confirmation_zero_repeat_is_a_new_command(h):
    h.command(mavlink.MAV_CMD_USER_1)
    h.frame()
    h.command(mavlink.MAV_CMD_USER_1)
    h.run(0.5)
    assert h.logic.names() == ["ground_go", "ground_go"]


# ---------------------------------------------------------------------------------------------- IN_PROGRESS


def test_in_progress_then_exactly_one_final_ack(h):
    latches = h.state.latches
    latches.termination_fired, latches.termination_stage = True, "wait"
    h.logic.results["terminate"] = CommandResult(Outcome.IN_PROGRESS, "termination in progress (wait)")
    h.command(mavlink.MAV_CMD_DO_FLIGHTTERMINATION, 1)
    acks = h.acks(mavlink.MAV_CMD_DO_FLIGHTTERMINATION, max_frames=50)
    assert acks and all(a.result == mavlink.MAV_RESULT_IN_PROGRESS for a in acks)
    assert acks[0].progress == 70
    assert len(acks) >= 2  # repeated while it runs
    h.command(mavlink.MAV_CMD_DO_FLIGHTTERMINATION, 1, confirmation=1)  # a retry meanwhile: progress again
    retry = h.acks(mavlink.MAV_CMD_DO_FLIGHTTERMINATION, max_frames=2)
    assert retry[0].result == mavlink.MAV_RESULT_IN_PROGRESS
    latches.termination_stage = "done"
    final = [a for a in h.acks(mavlink.MAV_CMD_DO_FLIGHTTERMINATION, max_frames=60)
             if a.result != mavlink.MAV_RESULT_IN_PROGRESS]
    assert [a.result for a in final] == [ACCEPTED]
    assert h.logic.names() == ["terminate"]
    assert not h.acks(mavlink.MAV_CMD_DO_FLIGHTTERMINATION, max_frames=40)


def test_in_progress_that_fails(h):
    latches = h.state.latches
    latches.termination_fired, latches.termination_stage = True, "fire"
    h.logic.results["arm"] = CommandResult(Outcome.IN_PROGRESS, "the termination sequence controls the cutdown")
    h.command(mavlink.MAV_CMD_COMPONENT_ARM_DISARM, 1, 0, 1)
    h.run(0.2)
    latches.termination_stage = "failed"
    acks = h.acks(mavlink.MAV_CMD_COMPONENT_ARM_DISARM, max_frames=30)
    assert acks[-1].result == FAILED
    assert sum(a.result != mavlink.MAV_RESULT_IN_PROGRESS for a in acks) == 1


def test_gcs_heartbeat_refreshes_link_only_from_our_ground_station(h):
    beat = mavlink.MAVLink_heartbeat_message(mavlink.MAV_TYPE_GCS, mavlink.MAV_AUTOPILOT_INVALID, 0, 0, 4, 3)
    h.send(beat, h.packer(KEY, sysid=42))
    h.run(0.2)
    assert math.isnan(h.state.link.gcs_heartbeat_s)
    h.send(beat)
    h.frame()
    assert h.state.link.gcs_heartbeat_s == pytest.approx(h.now_s - 0.05)
    assert h.state.link.connected
    h.run(6.0)
    assert not h.state.link.connected


def test_retried_read_is_answered_again(h):
    h.command(mavlink.MAV_CMD_REQUEST_MESSAGE, mavlink.MAVLINK_MSG_ID_AUTOPILOT_VERSION)
    got = h.frame()
    h.command(mavlink.MAV_CMD_REQUEST_MESSAGE, mavlink.MAVLINK_MSG_ID_AUTOPILOT_VERSION, confirmation=1)
    got += h.run(0.5)
    assert len(of_type(got, "AUTOPILOT_VERSION")) == 2


def test_failing_telemetry_builder_is_counted_and_the_rest_still_flows(h):
    class BrokenBaro:
        name = "broken"

        @property
        def reading(self):
            raise RuntimeError("driver bug")

    h.hal.barometers = [BrokenBaro()]
    h.link.view.barometer_readings = lambda: 1 / 0  # a builder that raises
    got = h.run(3.0)
    assert h.link.counters["telemetry_errors"] >= 1
    assert of_type(got, "HEARTBEAT") and of_type(got, "GLOBAL_POSITION_INT")


def test_what_a_write_changed_is_persisted_before_its_ack_goes_out(tmp_path):
    """A ground station that heard ACCEPTED never sends the command again, so the vehicle may not forget it: the
    flight logic's changes are written (``on_signed_write``) before the ACK is on the wire, and reads persist
    nothing."""
    order: list[str] = []
    holder = {}
    h = holder["h"] = Harness(tmp_path, on_signed_write=lambda: order.append(
        "persisted the change" if holder["h"].state.latches_dirty else "persisted the signing streams"))
    h.start()
    sent = h.link.links[0].endpoint.send

    def send(msg):
        if msg.get_type() == "COMMAND_ACK":
            order.append(f"ack {msg.command}")
        return sent(msg)
    h.link.links[0].endpoint.send = send
    h.logic.results["terminate"] = CommandResult(Outcome.ACCEPTED, "termination started")
    original = h.logic.terminate
    h.logic.terminate = lambda *args, **kwargs: (setattr(h.state, "latches_dirty", True), original(*args, **kwargs))[1]
    order.clear()
    h.send(h.signer.command_long_encode(1, 1, mavlink.MAV_CMD_DO_FLIGHTTERMINATION, 0, 1, 0, 0, 0, 0, 0, 0))
    h.frame()
    termination = mavlink.MAV_CMD_DO_FLIGHTTERMINATION
    assert order == ["persisted the signing streams", "persisted the change", f"ack {termination}"]
    order.clear()
    h.state.latches_dirty = False
    h.send(h.signer.command_long_encode(1, 1, mavlink.MAV_CMD_REQUEST_MESSAGE, 0, 0, 0, 0, 0, 0, 0, 0))
    h.frame()
    assert not [entry for entry in order if entry.startswith("persisted")]
    h.close()
