"""Ground link identity and telemetry: HEARTBEAT, streamed messages and their rates, the 500 B/s budget,
HIGH_LATENCY2, STATUSTEXT chunking, and the small connect-time protocols (TIMESYNC, missions, FTP)."""

from __future__ import annotations

import math
import random
import socket

import pytest
from pymavlink.dialects.v20 import common as mavlink
from test_groundlink_harness import FRAME_S, FakeBaro, FakeHal, Harness, of_type

from flightsw.groundlink import identity
from flightsw.groundlink.services import ftp_reply
from flightsw.groundlink.statustext import split_utf8
from flightsw.groundlink.telemetry import TELEMETRY, TelemetrySchedule
from flightsw.phase import Phase


@pytest.fixture
def h(tmp_path):
    harness = Harness(tmp_path)
    harness.start()
    yield harness
    harness.close()


# ---------------------------------------------------------------------------------------------- HEARTBEAT


def test_heartbeat_identity_fields(h):
    beat = h.until(lambda m: m.get_type() == "HEARTBEAT")[0]
    assert beat.type == mavlink.MAV_TYPE_FREE_BALLOON
    assert beat.autopilot == mavlink.MAV_AUTOPILOT_GENERIC
    assert beat.base_mode == mavlink.MAV_MODE_FLAG_CUSTOM_MODE_ENABLED | mavlink.MAV_MODE_FLAG_HIL_ENABLED
    assert beat.custom_mode == Phase.PREFLIGHT
    assert beat.system_status == mavlink.MAV_STATE_STANDBY
    assert beat.mavlink_version == 3


def test_heartbeat_follows_phase_arming_health_and_termination(h):
    def next_beat():
        return h.until(lambda m: m.get_type() == "HEARTBEAT", max_frames=25)[0]

    h.state.latches.phase = Phase.ASCENT
    h.hal.outputs.cutdown_arm.is_active = True
    beat = next_beat()
    assert beat.custom_mode == Phase.ASCENT
    assert beat.base_mode & mavlink.MAV_MODE_FLAG_SAFETY_ARMED
    assert beat.system_status == mavlink.MAV_STATE_ACTIVE

    h.hal.outputs.cutdown_arm.is_active = False
    h.state.estimate.position_valid = False  # the GPS we have went bad
    beat = next_beat()
    assert not beat.base_mode & mavlink.MAV_MODE_FLAG_SAFETY_ARMED
    assert beat.system_status == mavlink.MAV_STATE_CRITICAL

    h.state.estimate.altitude_valid = False
    assert next_beat().system_status == mavlink.MAV_STATE_EMERGENCY

    h.state.latches.termination_fired = True
    h.state.latches.phase = Phase.TERMINATION
    beat = next_beat()
    assert beat.system_status == mavlink.MAV_STATE_FLIGHT_TERMINATION
    assert beat.custom_mode == Phase.TERMINATION


def test_heartbeat_without_hil_flag_on_the_real_board(tmp_path):
    h = Harness(tmp_path, simulated=False)
    try:
        beat = h.until(lambda m: m.get_type() == "HEARTBEAT")[0]
        assert not beat.base_mode & mavlink.MAV_MODE_FLAG_HIL_ENABLED
    finally:
        h.close()


def test_autopilot_version_capabilities_are_honest(h):
    h.command(mavlink.MAV_CMD_REQUEST_MESSAGE, mavlink.MAVLINK_MSG_ID_AUTOPILOT_VERSION)
    versions = of_type(h.run(0.5), "AUTOPILOT_VERSION")
    assert len(versions) == 1
    caps = versions[0].capabilities
    for bit in (mavlink.MAV_PROTOCOL_CAPABILITY_MAVLINK2, mavlink.MAV_PROTOCOL_CAPABILITY_FLIGHT_TERMINATION,
                mavlink.MAV_PROTOCOL_CAPABILITY_PARAM_ENCODE_BYTEWISE, mavlink.MAV_PROTOCOL_CAPABILITY_COMMAND_INT):
        assert caps & bit
    for bit in (mavlink.MAV_PROTOCOL_CAPABILITY_PARAM_ENCODE_C_CAST, mavlink.MAV_PROTOCOL_CAPABILITY_FTP,
                mavlink.MAV_PROTOCOL_CAPABILITY_MISSION_INT):
        assert not caps & bit


# ---------------------------------------------------------------------------------------------- streaming


def counts(messages: list) -> dict[str, int]:
    out: dict[str, int] = {}
    for m in messages:
        out[m.get_type()] = out.get(m.get_type(), 0) + 1
    return out


def test_default_rates_and_contents(h):
    got = h.run(20.0)
    n = counts(got)
    assert 19 <= n["HEARTBEAT"] <= 21
    assert 19 <= n["GLOBAL_POSITION_INT"] <= 21
    assert 9 <= n["SYS_STATUS"] <= 11
    assert 9 <= n["GPS_RAW_INT"] <= 11
    assert 9 <= n["SCALED_PRESSURE"] <= 11 and 9 <= n["SCALED_PRESSURE2"] <= 11
    assert "SCALED_PRESSURE3" not in n  # two barometers fitted
    assert 3 <= n["BATTERY_STATUS"] <= 5 and 3 <= n["SYSTEM_TIME"] <= 5
    assert "HOME_POSITION" not in n  # not launched: no home yet

    status = of_type(got, "SYS_STATUS")[-1]
    ours = (mavlink.MAV_SYS_STATUS_SENSOR_ABSOLUTE_PRESSURE | mavlink.MAV_SYS_STATUS_SENSOR_GPS
            | mavlink.MAV_SYS_STATUS_SENSOR_BATTERY)
    assert status.onboard_control_sensors_present == ours
    assert status.onboard_control_sensors_enabled == ours
    assert status.onboard_control_sensors_health == 0xFFFFFFFF  # ours healthy, the rest healthy-not-present
    assert status.load == 250
    assert status.voltage_battery == 12100

    position = of_type(got, "GLOBAL_POSITION_INT")[-1]
    assert position.lat == 520000000 and position.lon == 50000000
    assert position.alt == 1_000_000
    assert position.vz == -500  # climbing 5 m/s, NED down positive
    assert position.vy == 500 and abs(position.vx) <= 1  # 5 m/s due east

    pressure = of_type(got, "SCALED_PRESSURE2")[-1]
    assert pressure.press_abs == pytest.approx(1013.0)
    assert pressure.temperature == -4000

    named = {m.name: m.value for m in of_type(got, "NAMED_VALUE_FLOAT")}
    assert named["EXEC_SLIP"] == 3.0
    assert named["BAL_LEFT"] == pytest.approx(10.0)
    assert "SIG_GOOD" in named and "SIG_BAD" in named and "SIG_UNSGN" in named and "SIG_RPLY" in named


def test_unhealthy_barometer_clears_its_health_bit(h):
    h.state.estimate.pressure_valid = False
    status = h.until(lambda m: m.get_type() == "SYS_STATUS", max_frames=50)[0]
    assert status.onboard_control_sensors_present & mavlink.MAV_SYS_STATUS_SENSOR_ABSOLUTE_PRESSURE
    assert not status.onboard_control_sensors_health & mavlink.MAV_SYS_STATUS_SENSOR_ABSOLUTE_PRESSURE
    assert status.onboard_control_sensors_health & mavlink.MAV_SYS_STATUS_SENSOR_GPS


def test_set_message_interval_changes_only_that_message(h):
    h.command(mavlink.MAV_CMD_SET_MESSAGE_INTERVAL, mavlink.MAVLINK_MSG_ID_GLOBAL_POSITION_INT, 200_000)
    assert h.ack(mavlink.MAV_CMD_SET_MESSAGE_INTERVAL) == mavlink.MAV_RESULT_ACCEPTED
    n = counts(h.run(10.0))
    assert 48 <= n["GLOBAL_POSITION_INT"] <= 52
    assert 9 <= n["HEARTBEAT"] <= 11

    h.command(mavlink.MAV_CMD_SET_MESSAGE_INTERVAL, mavlink.MAVLINK_MSG_ID_GLOBAL_POSITION_INT, -1)
    assert h.ack(mavlink.MAV_CMD_SET_MESSAGE_INTERVAL) == mavlink.MAV_RESULT_ACCEPTED
    assert "GLOBAL_POSITION_INT" not in counts(h.run(5.0))

    h.command(mavlink.MAV_CMD_GET_MESSAGE_INTERVAL, mavlink.MAVLINK_MSG_ID_GLOBAL_POSITION_INT)
    interval = h.until(lambda m: m.get_type() == "MESSAGE_INTERVAL")[0]
    assert interval.interval_us == -1

    h.command(mavlink.MAV_CMD_SET_MESSAGE_INTERVAL, mavlink.MAVLINK_MSG_ID_GLOBAL_POSITION_INT, 0)
    assert h.ack(mavlink.MAV_CMD_SET_MESSAGE_INTERVAL) == mavlink.MAV_RESULT_ACCEPTED
    assert 9 <= counts(h.run(10.0))["GLOBAL_POSITION_INT"] <= 11


def test_set_message_interval_refusals(h):
    h.command(mavlink.MAV_CMD_SET_MESSAGE_INTERVAL, mavlink.MAVLINK_MSG_ID_HEARTBEAT, -1)
    assert h.ack(mavlink.MAV_CMD_SET_MESSAGE_INTERVAL) == mavlink.MAV_RESULT_DENIED
    h.command(mavlink.MAV_CMD_SET_MESSAGE_INTERVAL, mavlink.MAVLINK_MSG_ID_ATTITUDE, 100_000)
    assert h.ack(mavlink.MAV_CMD_SET_MESSAGE_INTERVAL) == mavlink.MAV_RESULT_DENIED
    assert 9 <= counts(h.run(10.0))["HEARTBEAT"] <= 11


def test_request_message_answers_once(h):
    h.command(mavlink.MAV_CMD_SET_MESSAGE_INTERVAL, mavlink.MAVLINK_MSG_ID_BATTERY_STATUS, -1)
    h.run(0.5)
    h.command(mavlink.MAV_CMD_REQUEST_MESSAGE, mavlink.MAVLINK_MSG_ID_BATTERY_STATUS)
    got = h.run(3.0)
    assert [m.result for m in of_type(got, "COMMAND_ACK")] == [mavlink.MAV_RESULT_ACCEPTED]
    battery = of_type(got, "BATTERY_STATUS")
    assert len(battery) == 1 and battery[0].voltages[0] == 12100


def test_request_data_stream_is_ignored(h):
    h.send(mavlink.MAVLink_request_data_stream_message(1, 1, mavlink.MAV_DATA_STREAM_ALL, 50, 1))
    n = counts(h.run(10.0))
    assert 9 <= n["GLOBAL_POSITION_INT"] <= 11
    assert h.link.counters["data_stream_requests_ignored"] == 1


def test_default_telemetry_stays_under_500_bytes_per_second(tmp_path):
    """Count every byte the ground receives over 60 simulated seconds (signed frames, three barometers)."""
    hal = FakeHal(barometers=[FakeBaro("b1", 1000.0), FakeBaro("b2", 1001.0), FakeBaro("b3", 999.0)])
    h = Harness(tmp_path, hal=hal)
    h.state.latches.launch_latitude_deg, h.state.latches.launch_longitude_deg = 52.0, 5.0
    h.state.latches.launch_altitude_m = 10.0
    raw = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    raw.bind(("127.0.0.1", 0))
    raw.setblocking(False)
    h.link.links[0].endpoint.transport.peer = raw.getsockname()  # the byte counter replaces the ground station
    total_bytes = 0
    heartbeats = 0
    seconds = 60.0
    try:
        for _ in range(int(seconds / FRAME_S)):
            h.link.rx(h.now_s)
            h.link.tx(h.now_s)
            h.clock.advance(FRAME_S)
            while True:
                try:
                    datagram = raw.recv(65535)
                except BlockingIOError:
                    break
                total_bytes += len(datagram)
                heartbeats += datagram[7] == 0 and datagram[8] == 0 and datagram[9] == 0
    finally:
        raw.close()
        h.close()
    assert 59 <= heartbeats <= 61
    assert total_bytes / seconds <= 500.0
    assert total_bytes / seconds > 150.0  # and it is really streaming


def test_home_position_sent_when_it_changes_and_on_request(h):
    h.command(mavlink.MAV_CMD_GET_HOME_POSITION)
    assert h.ack(mavlink.MAV_CMD_GET_HOME_POSITION) == mavlink.MAV_RESULT_FAILED
    latches = h.state.latches
    latches.launch_latitude_deg, latches.launch_longitude_deg, latches.launch_altitude_m = 52.1, 5.2, 12.5
    homes = of_type(h.run(1.0), "HOME_POSITION")
    assert len(homes) == 1
    assert homes[0].latitude == 521000000 and homes[0].altitude == 12500
    assert not of_type(h.run(3.0), "HOME_POSITION")
    h.command(mavlink.MAV_CMD_GET_HOME_POSITION)
    got = h.run(0.5)
    assert [m.result for m in of_type(got, "COMMAND_ACK")] == [mavlink.MAV_RESULT_ACCEPTED]
    assert len(of_type(got, "HOME_POSITION")) == 1


def test_schedule_matches_a_plain_rescan_of_the_table_through_interval_changes():
    """due() skips frames before earliest_due_s and gathers the next earliest time while rescheduling; a plain
    scan of every row every frame, with the earliest time taken afterwards, gives the same rows and times."""
    rng = random.Random(5)
    fast = TelemetrySchedule(100.0)
    intervals = dict(fast.interval_s)
    next_due = dict(fast.next_due_s)
    now_s = 100.0
    for frame in range(4000):
        now_s += FRAME_S
        if frame % 97 == 0:  # SET_MESSAGE_INTERVAL now and then: off, default, or anything from 20 ms to 3 s
            entry = rng.choice(TELEMETRY)
            request_us = rng.choice([-1, 0, rng.uniform(20_000, 3_000_000)])
            ok, _ = fast.set_interval_us(entry.msg_id, request_us, now_s)
            if ok:
                intervals[entry.msg_id] = fast.interval_s[entry.msg_id]
                if intervals[entry.msg_id] is not None:
                    next_due[entry.msg_id] = min(next_due[entry.msg_id], now_s + intervals[entry.msg_id])
        expected = []
        for entry in TELEMETRY:
            interval_s = intervals[entry.msg_id]
            if interval_s is not None and now_s + 1e-9 >= next_due[entry.msg_id]:
                expected.append(entry)
                next_s = next_due[entry.msg_id] + interval_s
                next_due[entry.msg_id] = next_s if next_s > now_s else now_s + interval_s
        assert fast.due(now_s) == expected
        assert fast.next_due_s == next_due
        assert fast.earliest_due_s == min((next_due[m] for m, i in intervals.items() if i is not None),
                                          default=math.inf)


def test_home_change_detection_matches_recomputing_home_every_frame(h):
    """tx recomputes home() only when the latched launch values changed; the HOME_POSITIONs sent are those a
    comparison of home() every frame gives, through NaN, equal values in new objects, moves and losses."""
    nan = math.nan
    steps = [(nan, nan, nan), (52.1, nan, 12.5), (52.1, 5.2, 12.5), (float("52.1"), 5.2, 12.5), (52.1, 5.2, 13.0),
             (52.1, 5.2, 13.0), (math.inf, 5.2, 13.0), (nan, nan, nan), (52.1, 5.2, 13.0), (-0.0, 0.0, 0.0),
             (0.0, -0.0, 0.0)]
    latches = h.state.latches
    previous = h.link.view.home()
    for values in steps:
        latches.launch_latitude_deg, latches.launch_longitude_deg, latches.launch_altitude_m = values
        home = h.link.view.home()
        expected = home is not None and home != previous
        previous = home
        homes = of_type(h.frame() + h.run(0.2), "HOME_POSITION")
        assert len(homes) == (1 if expected else 0), values


# ---------------------------------------------------------------------------------------------- STATUSTEXT


def test_long_statustext_is_chunked_and_reassembles(h):
    text = "termination: " + "geofence left for 30 s, dumping ballast then cutting down; " * 2
    h.link.statustext("critical", text)
    h.link.statustext("info", "short one")
    got = of_type(h.run(0.5), "STATUSTEXT")
    chunks = [m for m in got if m.id != 0]
    assert len(chunks) == 3
    assert {m.severity for m in chunks} == {mavlink.MAV_SEVERITY_CRITICAL}
    assert [m.chunk_seq for m in chunks] == [0, 1, 2]
    assert len({m.id for m in chunks}) == 1
    assert "".join(m.text for m in chunks) == text
    short = [m for m in got if m.id == 0]
    assert [(m.text, m.severity) for m in short] == [("short one", mavlink.MAV_SEVERITY_INFO)]


def test_split_utf8_never_cuts_a_character():
    pieces = split_utf8("é" * 60)
    assert all(len(p) <= 50 for p in pieces)
    assert b"".join(pieces).decode("utf-8") == "é" * 60


# ---------------------------------------------------------------------------------------------- connect-time


def test_timesync_answered_per_spec(h):
    h.send(mavlink.MAVLink_timesync_message(0, 123456789), h.plain)
    reply = h.until(lambda m: m.get_type() == "TIMESYNC")[0]
    assert reply.ts1 == 123456789
    assert reply.tc1 == pytest.approx(h.now_s * 1e9, abs=0.2e9)
    h.send(mavlink.MAVLink_timesync_message(5, 6), h.plain)  # a response, not a request: ignored
    assert not of_type(h.run(0.5), "TIMESYNC")


@pytest.mark.parametrize("mission_type", [mavlink.MAV_MISSION_TYPE_MISSION, mavlink.MAV_MISSION_TYPE_FENCE,
                                          mavlink.MAV_MISSION_TYPE_RALLY])
def test_mission_list_is_empty_for_every_type(h, mission_type):
    h.send(mavlink.MAVLink_mission_request_list_message(1, 1, mission_type), h.plain)
    count = h.until(lambda m: m.get_type() == "MISSION_COUNT")[0]
    assert count.count == 0 and count.mission_type == mission_type
    assert count.target_system == 255


def test_ftp_requests_get_an_immediate_nak(h):
    request = bytearray(251)
    request[0:2] = (41).to_bytes(2, "little")
    request[3] = 4  # OpenFileRO
    h.send(mavlink.MAVLink_file_transfer_protocol_message(0, 1, 1, list(request)), h.plain)
    reply = h.until(lambda m: m.get_type() == "FILE_TRANSFER_PROTOCOL")[0]
    payload = bytes(reply.payload)
    assert int.from_bytes(payload[0:2], "little") == 42
    assert payload[3] == 129 and payload[5] == 4 and payload[4] == 1 and payload[12] == 7


def test_ftp_reply_codes():
    write = bytearray(251)
    write[3] = 7  # WriteFile
    assert ftp_reply(write)[12] == 9  # FileProtected
    reset = bytearray(251)
    reset[3] = 2
    assert ftp_reply(reset)[3] == 128  # ResetSessions: ACK


# ---------------------------------------------------------------------------------------------- HIGH_LATENCY2


def test_high_latency_link_sends_only_high_latency2(tmp_path):
    h = Harness(tmp_path, high_latency=True)
    try:
        est = h.state.estimate
        est.altitude_m, est.vertical_rate_mps = 36_500.0, -31.0
        h.state.latches.phase = Phase.DESCENT
        h.link.statustext("info", "not for the satellite")
        h.link.statustext("critical", "but this is")
        got = h.run(12.0)
        assert not of_type(got, "HEARTBEAT") and not of_type(got, "GLOBAL_POSITION_INT")
        summaries = of_type(got, "HIGH_LATENCY2")
        assert len(summaries) == 3  # t = 0, 5, 10 s
        hl = summaries[-1]
        assert hl.altitude == 32767  # clamped
        assert hl.climb_rate == -128  # -31 m/s does not fit int8 dm/s
        assert hl.custom_mode == Phase.DESCENT
        assert hl.type == mavlink.MAV_TYPE_FREE_BALLOON
        assert hl.latitude == 520000000 and hl.groundspeed == 25
        assert hl.custom2 == 100  # no ballast used of the 10 kg carried
        assert [m.text for m in of_type(got, "STATUSTEXT")] == ["but this is"]

        h.command(mavlink.MAV_CMD_CONTROL_HIGH_LATENCY, 0)
        assert h.ack(mavlink.MAV_CMD_CONTROL_HIGH_LATENCY) == mavlink.MAV_RESULT_ACCEPTED
        assert not of_type(h.run(11.0), "HIGH_LATENCY2")
        h.command(mavlink.MAV_CMD_CONTROL_HIGH_LATENCY, 1)
        assert h.ack(mavlink.MAV_CMD_CONTROL_HIGH_LATENCY) == mavlink.MAV_RESULT_ACCEPTED
        assert of_type(h.run(6.0), "HIGH_LATENCY2")
    finally:
        h.close()


def test_control_high_latency_fails_without_such_a_link(h):
    h.command(mavlink.MAV_CMD_CONTROL_HIGH_LATENCY, 1)
    assert h.ack(mavlink.MAV_CMD_CONTROL_HIGH_LATENCY) == mavlink.MAV_RESULT_FAILED


def test_high_latency2_clamps_climb_rate_upwards_and_negative_altitude(h):
    est = h.state.estimate
    est.vertical_rate_mps, est.altitude_m = 15.0, -40_000.0
    hl = identity.high_latency2(h.link.view, h.now_s, h.link.started_s, 0.25)
    assert hl.climb_rate == 127 and hl.altitude == -32768
    assert hl.custom2 == 25
    est.vertical_rate_valid = False
    hl = identity.high_latency2(h.link.view, h.now_s, h.link.started_s, None)
    assert hl.climb_rate == 0 and hl.custom2 == -1
    assert not math.isnan(hl.temperature_air)
