"""Ground link signing policy: only frames signed with our key (and not replayed) may change anything."""

from __future__ import annotations

import math
import time

import pytest
from pymavlink.dialects.v20 import common as mavlink
from test_groundlink_harness import KEY, SIGNING_EPOCH_S, WRONG_KEY, Harness, of_type, statustexts

ACCEPTED = mavlink.MAV_RESULT_ACCEPTED
DENIED = mavlink.MAV_RESULT_DENIED
TERMINATE = mavlink.MAV_CMD_DO_FLIGHTTERMINATION


@pytest.fixture
def h(tmp_path):
    harness = Harness(tmp_path)
    harness.start()
    yield harness
    harness.close()


def now_timestamp() -> int:
    return int((time.time() - SIGNING_EPOCH_S) * 1e5)


def refused_with_no_action(h: Harness, command: int = TERMINATE) -> None:
    got = h.run(0.5)
    assert [m.result for m in of_type(got, "COMMAND_ACK") if m.command == command] == [DENIED]
    assert h.logic.calls == []
    assert any("refused" in text for text in statustexts(got))


def test_signed_command_is_accepted(h):
    h.command(TERMINATE, 1)
    assert h.ack(TERMINATE) == ACCEPTED
    assert h.logic.names() == ["terminate"]


def test_unsigned_command_is_refused(h):
    h.command(TERMINATE, 1, packer=h.plain)
    refused_with_no_action(h)
    assert h.link.counters["commands_refused_unsigned"] == 1


def test_wrong_key_is_refused(h):
    h.command(TERMINATE, 1, packer=h.packer(WRONG_KEY))
    refused_with_no_action(h)
    assert h.link.counters["sig_bad"] == 1


def test_replayed_frame_is_refused(h):
    frame = h.command(TERMINATE, 1)
    assert h.ack(TERMINATE) == ACCEPTED
    h.send_raw(frame)  # the very same bytes again
    got = h.run(0.5)
    assert [m.result for m in of_type(got, "COMMAND_ACK")] == [DENIED]
    assert h.logic.names() == ["terminate"]
    assert h.link.counters["sig_replay"] == 1


def test_mavlink1_downgrade_is_refused(h):
    h.command(TERMINATE, 1, packer=h.plain, mavlink1=True)
    refused_with_no_action(h)


def test_forged_future_timestamp_does_not_lock_out_the_ground_station(h):
    year_ahead = now_timestamp() + 365 * 86400 * 100_000
    h.command(TERMINATE, 1, packer=h.packer(WRONG_KEY, timestamp=year_ahead))
    refused_with_no_action(h)
    h.command(mavlink.MAV_CMD_USER_1)  # correctly signed, current time
    assert h.ack(mavlink.MAV_CMD_USER_1) == ACCEPTED
    assert h.logic.names() == ["ground_go"]


def test_refusal_reports_are_rate_limited(h):
    for _ in range(5):
        h.command(TERMINATE, 1, packer=h.plain)
        h.frame()
    h.run(1.0)
    texts = [m.text for m in h.received if m.get_type() == "STATUSTEXT" and "refused" in m.text]
    assert len(texts) == 1
    h.run(5.0)
    h.command(TERMINATE, 1, packer=h.plain)
    got = h.run(0.5)
    later = [text for text in statustexts(got) if "refused" in text]
    assert len(later) == 1 and "+4 more" in later[0]
    assert h.logic.calls == []


def test_unsigned_reads_are_answered(h):
    h.command(mavlink.MAV_CMD_REQUEST_MESSAGE, mavlink.MAVLINK_MSG_ID_AUTOPILOT_VERSION, packer=h.plain)
    got = h.run(0.5)
    assert [m.result for m in of_type(got, "COMMAND_ACK")] == [ACCEPTED]
    assert of_type(got, "AUTOPILOT_VERSION")
    h.send(mavlink.MAVLink_param_request_read_message(1, 1, b"ALT_TARGET", -1), h.plain)
    assert h.until(lambda m: m.get_type() == "PARAM_VALUE")


def test_unsigned_write_commands_change_nothing_even_rates(h):
    h.command(mavlink.MAV_CMD_SET_MESSAGE_INTERVAL, mavlink.MAVLINK_MSG_ID_HEARTBEAT, 50_000, packer=h.plain)
    assert h.ack(mavlink.MAV_CMD_SET_MESSAGE_INTERVAL) == DENIED
    beats = of_type(h.run(5.0), "HEARTBEAT")
    assert 4 <= len(beats) <= 6


def test_unsigned_heartbeats_do_not_count_as_our_ground_station(h):
    beat = mavlink.MAVLink_heartbeat_message(mavlink.MAV_TYPE_GCS, mavlink.MAV_AUTOPILOT_INVALID, 0, 0, 4, 3)
    h.send(beat, h.plain)
    h.send(beat, h.packer(WRONG_KEY))
    h.send(beat, h.plain, mavlink1=True)
    h.run(0.2)
    assert math.isnan(h.state.link.gcs_heartbeat_s)
    h.send(beat)
    h.run(0.1)
    assert math.isfinite(h.state.link.gcs_heartbeat_s)


def test_signing_not_required_allows_unsigned_but_never_bad_signatures(tmp_path):
    h = Harness(tmp_path, require_signed=False)
    try:
        h.start()
        h.command(mavlink.MAV_CMD_USER_1, packer=h.plain)
        assert h.ack(mavlink.MAV_CMD_USER_1) == ACCEPTED
        h.command(TERMINATE, 1, packer=h.packer(WRONG_KEY))
        assert h.ack(TERMINATE) == DENIED
        assert h.logic.names() == ["ground_go"]
    finally:
        h.close()


def test_no_key_means_no_signing_policy(tmp_path):
    h = Harness(tmp_path, key=None)
    try:
        h.start()
        h.command(TERMINATE, 1, packer=h.plain)
        assert h.ack(TERMINATE) == ACCEPTED
        assert h.link.signing_timestamp == 0
    finally:
        h.close()


def test_signing_timestamp_is_exposed_and_moves_forward(h):
    first = h.link.signing_timestamp
    assert first > 0
    h.run(1.0)
    assert h.link.signing_timestamp > first


# SETUP_SIGNING: tests/test_groundlink_setup_signing.py


def test_injected_endpoints_without_policy_get_the_configured_key(tmp_path):
    """How the HIL runner builds the daemon: its own endpoint, the key from the configuration."""
    from flightsw.groundlink import GroundLink
    from flightsw.link.endpoint import Endpoint
    from flightsw.link.transport import UdpTransport

    h = Harness(tmp_path)
    transport = UdpTransport(listen=("127.0.0.1", 0), send_to=None, name="injected")
    endpoint = Endpoint(transport, system_id=1, component_id=1, signing=None, recorder=None, link_id=5)
    link = GroundLink(h.config, state=h.state, params=h.params, logic=h.logic, executive=h.executive, hal=h.hal,
                      clock=h.clock, simulated=True, endpoints=[endpoint])
    try:
        assert link.signing is not None and endpoint.signing is link.signing
        assert link.signing.key == KEY and link.require_signed
        assert link.links[0].name == "injected" and not link.links[0].local  # no configured link of that name
    finally:
        link.close()
        h.close()
