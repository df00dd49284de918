"""The whole daemon on the simulated board, driven over a real UDP socket by a pymavlink ground station.

Each test flies the nominal scenario's world in lockstep, a few hundred frames at a time, while the ground station
(pymavlink's mavutil, signing with the run's key where the test says so) talks to the daemon's UDP link.  What the
actuators do is read from the simulated world and pins, below the drivers.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

os.environ.setdefault("MAVLINK20", "1")

from pymavlink import mavutil  # noqa: E402
from pymavlink.dialects.v20 import common as M  # noqa: E402

from flightsw.link.transport import LinkConfig  # noqa: E402
from hil.runner import HilRun  # noqa: E402
from hil.scenario import load_scenario  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
FRAMES_PER_SECOND = 20


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Flight:
    """A HIL run with a UDP link and a pymavlink ground station connected to it."""

    def __init__(self, work_dir: Path, *, signed: bool = True, port: int | None = None,
                 resume: bool = False) -> None:
        self.port = port or free_udp_port()
        scenario = load_scenario(ROOT / "config" / "hil" / "nominal.yaml")
        self.run = HilRun(scenario, work_dir=work_dir, resume=resume,
                          links=(LinkConfig(name="gcs", kind="udp", listen=f"127.0.0.1:{self.port}"),))
        self.gcs = mavutil.mavlink_connection(f"udpout:127.0.0.1:{self.port}", source_system=255,
                                              source_component=190, dialect="common")
        if signed:
            self.sign(self.run.key)

    def sign(self, key: bytes | None) -> None:
        if key is None:
            self.gcs.mav.signing.sign_outgoing = False
            return
        self.gcs.setup_signing(key, sign_outgoing=True, link_id=9)

    def frames(self, count: int) -> list:
        """Run ``count`` frames, then return every message the ground station received."""
        self.run.daemon.run(max_frames=count)
        received = []
        while True:
            message = self.gcs.recv_match(blocking=False)
            if message is None:
                return received
            received.append(message)

    def hello(self) -> list:
        """A ground-station heartbeat, so the daemon (listening) knows where to reply."""
        self.gcs.mav.heartbeat_send(M.MAV_TYPE_GCS, M.MAV_AUTOPILOT_INVALID, 0, 0, M.MAV_STATE_ACTIVE)
        return self.frames(FRAMES_PER_SECOND)

    def command(self, command: int, *params: float, confirmation: int = 0) -> None:
        values = [float(p) for p in params] + [0.0] * (7 - len(params))
        self.gcs.mav.command_long_send(1, 1, command, confirmation, *values)

    def close(self) -> None:
        self.run.daemon.shutdown()
        self.gcs.close()


@pytest.fixture
def flight(tmp_path):
    flight = Flight(tmp_path)
    yield flight
    flight.close()


def of_type(messages: list, name: str) -> list:
    return [m for m in messages if m.get_type() == name]


def test_heartbeat_identifies_a_free_balloon_in_hil(flight):
    messages = flight.hello() + flight.frames(2 * FRAMES_PER_SECOND)
    heartbeats = [m for m in of_type(messages, "HEARTBEAT") if m.get_srcSystem() == 1]
    assert len(heartbeats) >= 2
    beat = heartbeats[-1]
    assert beat.type == M.MAV_TYPE_FREE_BALLOON == 8
    assert beat.autopilot == M.MAV_AUTOPILOT_GENERIC
    assert beat.base_mode & M.MAV_MODE_FLAG_CUSTOM_MODE_ENABLED
    assert beat.base_mode & M.MAV_MODE_FLAG_HIL_ENABLED
    assert beat.custom_mode == flight.run.daemon.state.latches.phase


def test_telemetry_arrives_and_changes_with_set_message_interval(flight):
    messages = flight.hello() + flight.frames(4 * FRAMES_PER_SECOND)
    for name in ("SYS_STATUS", "GLOBAL_POSITION_INT", "SCALED_PRESSURE", "BATTERY_STATUS"):
        assert of_type(messages, name), name
    default_count = len(of_type(messages, "SCALED_PRESSURE"))
    flight.command(M.MAV_CMD_SET_MESSAGE_INTERVAL, M.MAVLINK_MSG_ID_SCALED_PRESSURE, 100_000)  # 10 Hz
    flight.frames(FRAMES_PER_SECOND)
    fast = of_type(flight.frames(4 * FRAMES_PER_SECOND), "SCALED_PRESSURE")
    assert len(fast) >= 30 > default_count


def test_signed_termination_fires_the_cutdown_once_even_when_retried(flight):
    flight.hello()
    flight.command(M.MAV_CMD_DO_FLIGHTTERMINATION, 1)
    acks = of_type(flight.frames(10), "COMMAND_ACK")
    flight.command(M.MAV_CMD_DO_FLIGHTTERMINATION, 1, confirmation=1)  # the ground station's retry
    acks += of_type(flight.frames(30 * FRAMES_PER_SECOND), "COMMAND_ACK")
    results = [a.result for a in acks if a.command == M.MAV_CMD_DO_FLIGHTTERMINATION]
    assert results and results[0] in (M.MAV_RESULT_ACCEPTED, M.MAV_RESULT_IN_PROGRESS)
    assert flight.run.daemon.state.latches.termination_fired
    assert flight.run.daemon.state.latches.termination_reason == "ground"
    assert flight.run.board.cutdown_burns == 1


@pytest.mark.parametrize("how", ["unsigned", "wrong key", "mavlink1"])
def test_unauthenticated_termination_is_denied_and_nothing_fires(tmp_path, how):
    flight = Flight(tmp_path, signed=how != "unsigned")
    try:
        if how == "wrong key":
            flight.sign(bytes(32))
        if how == "mavlink1":
            flight.gcs.mav.signing.sign_outgoing = False
            flight.gcs.WIRE_PROTOCOL_VERSION = "1.0"
            flight.gcs.mav = mavutil.mavlink.MAVLink(flight.gcs, srcSystem=255, srcComponent=190)
            from pymavlink.dialects.v10 import common as mavlink1

            flight.gcs.mav = mavlink1.MAVLink(flight.gcs, srcSystem=255, srcComponent=190)
        flight.hello()
        flight.command(M.MAV_CMD_DO_FLIGHTTERMINATION, 1)
        messages = flight.frames(10 * FRAMES_PER_SECOND)
        acks = [a for a in of_type(messages, "COMMAND_ACK") if a.command == M.MAV_CMD_DO_FLIGHTTERMINATION]
        if how != "wrong key":  # a frame with a bad signature gets no answer at all is also acceptable
            assert acks and acks[0].result == M.MAV_RESULT_DENIED
        assert not flight.run.daemon.state.latches.termination_fired
        assert flight.run.board.cutdown_burns == 0
    finally:
        flight.close()


def test_parameters_list_set_reject_and_persist_across_a_restart(tmp_path):
    flight = Flight(tmp_path)
    try:
        flight.hello()
        flight.gcs.mav.param_request_list_send(1, 1)
        values = of_type(flight.frames(10 * FRAMES_PER_SECOND), "PARAM_VALUE")
        names = {v.param_id for v in values}
        count = values[0].param_count
        assert len(names) == count == len(flight.run.daemon.params)
        assert sorted({v.param_index for v in values}) == list(range(count))

        flight.gcs.mav.param_set_send(1, 1, b"ALT_TARGET", 26500.0, M.MAV_PARAM_TYPE_REAL32)
        accepted = of_type(flight.frames(10), "PARAM_VALUE")
        assert [v.param_value for v in accepted if v.param_id == "ALT_TARGET"] == [26500.0]

        flight.gcs.mav.param_set_send(1, 1, b"ALT_TARGET", 1.0, M.MAV_PARAM_TYPE_REAL32)  # below its minimum
        rejected = flight.frames(10)
        assert [v.param_value for v in of_type(rejected, "PARAM_VALUE") if v.param_id == "ALT_TARGET"] == [26500.0]
        assert any("ALT_TARGET" in t.text for t in of_type(rejected, "STATUSTEXT"))
    finally:
        flight.close()

    restarted = Flight(tmp_path, port=flight.port, resume=True)  # same state directory: a restart
    try:
        assert restarted.run.daemon.params["ALT_TARGET"] == 26500.0
        restarted.hello()
        restarted.gcs.mav.param_request_read_send(1, 1, b"ALT_TARGET", -1)
        read = of_type(restarted.frames(10), "PARAM_VALUE")
        assert [v.param_value for v in read if v.param_id == "ALT_TARGET"] == [26500.0]
    finally:
        restarted.close()


def test_a_forged_future_timestamp_does_not_lock_out_the_ground_station(flight):
    flight.hello()
    forger = mavutil.mavlink_connection(f"udpout:127.0.0.1:{flight.port}", source_system=255,
                                        source_component=190, dialect="common")
    try:
        forger.setup_signing(bytes(range(32)), sign_outgoing=True, link_id=9)  # same stream, wrong key
        forger.mav.signing.timestamp = flight.gcs.mav.signing.timestamp + 10**12  # far in the future
        forger.mav.command_long_send(1, 1, M.MAV_CMD_DO_FLIGHTTERMINATION, 0, 1, 0, 0, 0, 0, 0, 0)
        flight.frames(10)
        assert not flight.run.daemon.state.latches.termination_fired
        flight.command(M.MAV_CMD_DO_FLIGHTTERMINATION, 1)
        flight.frames(20 * FRAMES_PER_SECOND)
        assert flight.run.daemon.state.latches.termination_fired
    finally:
        forger.close()


def download(flight: Flight, log_id: int, size: int) -> bytes:
    flight.gcs.mav.log_request_data_send(1, 1, log_id, 0, 0xFFFFFFFF)
    data = bytearray()
    for _ in range(200):
        for packet in of_type(flight.frames(5), "LOG_DATA"):
            assert packet.id == log_id and packet.ofs == len(data)
            data += bytes(packet.data[:packet.count])
            if packet.count == 0:
                return bytes(data)
    raise AssertionError(f"download stopped at {len(data)} of {size} bytes")


def test_log_download_lists_fetches_and_erases_recorder_files(tmp_path):
    first = Flight(tmp_path)
    first.hello()
    first.frames(5 * FRAMES_PER_SECOND)
    first.close()
    flight = Flight(tmp_path, port=first.port, resume=True)  # a second boot: a second recorder file
    try:
        # The reboot here takes no time; a real one takes longer than the 15 s after which a ground station with a
        # correct clock is accepted again (flightsw.link.signing.DEFAULT_MAX_BEHIND_S): move its clock on by that.
        flight.gcs.mav.signing.timestamp += 20 * 100_000
        flight.hello()
        flight.gcs.mav.log_request_list_send(1, 1, 0, 0xFFFF)
        entries = of_type(flight.frames(5), "LOG_ENTRY")
        assert [e.id for e in entries] == [1, 2]
        assert all(e.num_logs == 2 and e.last_log_num == 2 for e in entries)
        closed = entries[0]
        path = tmp_path / "logs" / "flight-000001.tlog"
        assert closed.size == path.stat().st_size > 0

        data = download(flight, closed.id, closed.size)
        assert data == path.read_bytes()
        copy = tmp_path / "downloaded.tlog"
        copy.write_bytes(data)
        replay = mavutil.mavlink_connection(str(copy))
        kinds = set()
        while (message := replay.recv_match()) is not None:
            kinds.add(message.get_type())
        assert {"HEARTBEAT", "SYS_STATUS"} <= kinds

        flight.sign(None)  # an unsigned erase is refused
        flight.gcs.mav.log_erase_send(1, 1)
        refused = flight.frames(5)
        assert path.exists()
        assert any("LOG_ERASE" in t.text for t in of_type(refused, "STATUSTEXT"))
        flight.gcs.mav.signing.sign_outgoing = True
        flight.gcs.mav.log_erase_send(1, 1)
        erased = flight.frames(5)
        assert not path.exists(), [t.text for t in of_type(erased, "STATUSTEXT")]
        assert (tmp_path / "logs" / "flight-000002.tlog").exists()
    finally:
        flight.close()
