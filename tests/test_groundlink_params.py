"""Ground link parameter protocol: list, read, set, rejected sets, the declared value encoding (bytewise) as
MAVProxy and MAVSDK use it, persistence callback."""

from __future__ import annotations

import struct

import pytest
from pymavlink.dialects.v20 import common as mavlink
from test_groundlink_harness import PARAM_DECLS, Harness, of_type, statustexts

from flightsw.groundlink.parameters import LIST_PER_FRAME
from flightsw.phase import Phase

INT32 = mavlink.MAV_PARAM_TYPE_INT32
REAL32 = mavlink.MAV_PARAM_TYPE_REAL32


@pytest.fixture
def h(tmp_path):
    harness = Harness(tmp_path)
    harness.start()
    yield harness
    harness.close()


def param_set(h: Harness, name: str, value: float, param_type: int = REAL32, packer=None) -> None:
    h.send(mavlink.MAVLink_param_set_message(1, 1, name.encode(), value, param_type), packer)


def values_after(h: Harness, seconds: float = 0.3) -> tuple[list, list]:
    got = h.run(seconds)
    return of_type(got, "PARAM_VALUE"), statustexts(got)


def test_request_list_streams_every_parameter_a_few_per_frame(h):
    h.send(mavlink.MAVLink_param_request_list_message(1, 1), h.plain)
    per_frame = []
    values = []
    for _ in range(10):
        got = of_type(h.frame(), "PARAM_VALUE")
        per_frame.append(len(got))
        values += got
    assert max(per_frame) <= LIST_PER_FRAME
    assert [v.param_index for v in values] == list(range(len(PARAM_DECLS)))
    assert {v.param_count for v in values} == {len(PARAM_DECLS)}
    by_name = {v.param_id: v for v in values}
    assert by_name["ALT_TARGET"].param_value == 28000.0 and by_name["ALT_TARGET"].param_type == REAL32
    # integers go out as REAL32 whole numbers: the same under C-cast and bytewise decoding
    assert by_name["TRM_MAX_TRIES"].param_value == 3.0 and by_name["TRM_MAX_TRIES"].param_type == REAL32


def test_request_read_by_name_and_by_index(h):
    h.send(mavlink.MAVLink_param_request_read_message(1, 1, b"TRM_MAX_TRIES", -1), h.plain)
    by_name = h.until(lambda m: m.get_type() == "PARAM_VALUE")[0]
    assert (by_name.param_id, by_name.param_index, by_name.param_value) == ("TRM_MAX_TRIES", 2, 3.0)
    h.send(mavlink.MAVLink_param_request_read_message(1, 1, b"", 4), h.plain)
    by_index = h.until(lambda m: m.get_type() == "PARAM_VALUE")[0]
    assert by_index.param_id == "ALT_BAL_TOTAL"
    h.send(mavlink.MAVLink_param_request_read_message(1, 1, b"NO_SUCH", -1), h.plain)
    h.send(mavlink.MAVLink_param_request_read_message(1, 1, b"", 99), h.plain)
    assert not of_type(h.run(0.5), "PARAM_VALUE")


def test_set_accepted_answers_new_value_and_persists(h):
    param_set(h, "ALT_TARGET", 30500.0)
    values, _ = values_after(h)
    assert [(v.param_id, v.param_value, v.param_index) for v in values] == [("ALT_TARGET", 30500.0, 0)]
    assert h.params["ALT_TARGET"] == 30500.0
    assert h.persisted[-1] == {"ALT_TARGET": 30500.0}


def test_float_set_through_float32_keeps_the_decimal_value(h):
    param_set(h, "ALT_KP", 0.1)  # at the upper bound: float32(0.1) is 0.100000001
    values, texts = values_after(h)
    assert h.params["ALT_KP"] == 0.1
    assert values[0].param_value == pytest.approx(0.1)


def mavproxy_value(value: str, advertised_type: int) -> float:
    """What MAVProxy's ``param set NAME VALUE`` puts in param_value: MAVProxy's own encoder, given the type the
    vehicle advertised for the parameter in PARAM_VALUE."""
    from MAVProxy.modules.mavproxy_param import ParamState

    encoder = ParamState.ParamSet(None, "X", value, param_type=advertised_type)
    return encoder.normalize_parameter_for_param_set_send("X", value, advertised_type)


def mavsdk_value(value: int) -> float:
    """What MAVSDK's ``set_param_int`` puts in param_value for a vehicle that is not ArduPilot (bytewise): the
    int32's four bytes, sent with MAV_PARAM_TYPE_INT32."""
    return struct.unpack("<f", struct.pack("<i", value))[0]


def test_autopilot_version_declares_the_one_encoding_sets_are_decoded_by(h):
    h.command(mavlink.MAV_CMD_REQUEST_MESSAGE, mavlink.MAVLINK_MSG_ID_AUTOPILOT_VERSION)
    [version] = of_type(h.run(0.5), "AUTOPILOT_VERSION")
    assert version.capabilities & mavlink.MAV_PROTOCOL_CAPABILITY_PARAM_ENCODE_BYTEWISE
    assert not version.capabilities & mavlink.MAV_PROTOCOL_CAPABILITY_PARAM_ENCODE_C_CAST


def test_integer_set_the_way_mavproxy_sends_it(h):
    """We advertise every parameter as REAL32, so MAVProxy sends the number itself with REAL32."""
    param_set(h, "TRM_MAX_TRIES", mavproxy_value("5", REAL32), REAL32)
    values, _ = values_after(h)
    assert h.params["TRM_MAX_TRIES"] == 5 and isinstance(h.params["TRM_MAX_TRIES"], int)
    assert [(v.param_type, v.param_value) for v in values] == [(REAL32, 5.0)]
    # Had it cached an integer type, MAVProxy would encode bytewise -- which is what we declare and decode.
    param_set(h, "TRM_MAX_TRIES", mavproxy_value("6", INT32), INT32)
    values_after(h)
    assert h.params["TRM_MAX_TRIES"] == 6


def test_integer_set_the_way_mavsdk_sends_it(h):
    param_set(h, "TRM_MAX_TRIES", mavsdk_value(7), INT32)
    values, texts = values_after(h)
    assert h.params["TRM_MAX_TRIES"] == 7
    assert [(v.param_type, v.param_value) for v in values] == [(REAL32, 7.0)]
    assert h.persisted[-1] == {"TRM_MAX_TRIES": 7}


@pytest.mark.parametrize("param_type, fmt", [(INT32, "<i"), (mavlink.MAV_PARAM_TYPE_UINT8, "<B"),
                                             (mavlink.MAV_PARAM_TYPE_INT16, "<h"),
                                             (mavlink.MAV_PARAM_TYPE_UINT32, "<I")])
def test_integer_encoded_bytewise_in_any_integer_type_is_understood(h, param_type, fmt):
    raw = struct.pack(fmt, 7).ljust(4, b"\x00")
    param_set(h, "TRM_MAX_TRIES", struct.unpack("<f", raw)[0], param_type)
    values, texts = values_after(h)
    assert h.params["TRM_MAX_TRIES"] == 7
    assert values[0].param_value == 7.0


@pytest.fixture
def with_ceiling_switch(monkeypatch, tmp_path):
    """The harness with the real boolean TRM_EN_CEIL (on by default) among its parameters."""
    import test_groundlink_harness

    from flightsw.rules.termination import TERMINATION_PARAMS

    [ceiling] = [decl for decl in TERMINATION_PARAMS if decl.name == "TRM_EN_CEIL"]
    monkeypatch.setattr(test_groundlink_harness, "PARAM_DECLS", (*PARAM_DECLS, ceiling))
    harness = Harness(tmp_path)
    harness.start()
    yield harness
    harness.close()


def test_bytes_01_00_00_00_for_a_boolean_are_never_stored_as_zero(with_ceiling_switch):
    """The reported bug: ``01 00 00 00`` (1, bytewise) sent as REAL32 is the float 1.4e-45, which a whole-number
    tolerance turned into 0 and switched the ceiling rule off.  As REAL32 it is now refused; as INT32 it is 1."""
    h = with_ceiling_switch
    one_bytewise = struct.unpack("<f", b"\x01\x00\x00\x00")[0]
    param_set(h, "TRM_EN_CEIL", one_bytewise, REAL32)
    values, texts = values_after(h)
    assert h.params["TRM_EN_CEIL"] == 1 and h.persisted == []
    assert [v.param_value for v in values] == [1.0]
    assert any("TRM_EN_CEIL" in text and "not a whole number" in text for text in texts)
    param_set(h, "TRM_EN_CEIL", 0.0, REAL32)
    values_after(h)
    assert h.params["TRM_EN_CEIL"] == 0
    param_set(h, "TRM_EN_CEIL", one_bytewise, INT32)  # the same bytes, typed as the integer they are
    values_after(h)
    assert h.params["TRM_EN_CEIL"] == 1


@pytest.mark.parametrize("value, param_type, why", [
    (6.0, INT32, "1086324736 is beyond"),  # C cast with an integer type: the bytes of 6.0f read as an integer
    (1.0, mavlink.MAV_PARAM_TYPE_UINT8, "unused bytes not zero"),  # 00 00 80 3f: not a bytewise UINT8
    (5.0, mavlink.MAV_PARAM_TYPE_INT64, "not supported"),
])
def test_values_not_encoded_bytewise_are_refused(h, value, param_type, why):
    param_set(h, "TRM_MAX_TRIES", value, param_type)
    values, texts = values_after(h)
    assert h.params["TRM_MAX_TRIES"] == 3
    assert [v.param_value for v in values] == [3.0]
    assert any(why in text for text in texts), texts


@pytest.mark.parametrize("name, value, why", [
    ("ALT_TARGET", 99999.0, "outside"),
    ("TRM_MAX_TRIES", 2.5, "whole number"),
])
def test_rejected_set_answers_the_unchanged_value_and_says_why(h, name, value, why):
    before = h.params[name]
    param_set(h, name, value)
    values, texts = values_after(h)
    assert [(v.param_id, v.param_value) for v in values] == [(name, float(before))]
    assert h.params[name] == before
    assert any(why in text for text in texts)
    assert h.persisted == []


def test_set_not_allowed_in_this_phase(h):
    h.state.latches.phase = Phase.FLOAT
    param_set(h, "FLT_MODE", 2.0)
    values, texts = values_after(h)
    assert [(v.param_id, v.param_value) for v in values] == [("FLT_MODE", 1.0)]
    assert any("cannot be changed in FLOAT" in text for text in texts)
    h.state.latches.phase = Phase.PREFLIGHT
    param_set(h, "FLT_MODE", 2.0)
    values_after(h)
    assert h.params["FLT_MODE"] == 2


def test_unknown_parameter_gets_only_a_statustext(h):
    param_set(h, "NO_SUCH_PARAM", 1.0)
    values, texts = values_after(h)
    assert values == []
    assert any("unknown parameter NO_SUCH_PARAM" in text for text in texts)


def test_unsigned_set_is_refused_with_the_old_value(h):
    param_set(h, "ALT_TARGET", 30500.0, packer=h.plain)
    values, texts = values_after(h)
    assert [(v.param_id, v.param_value) for v in values] == [("ALT_TARGET", 28000.0)]
    assert h.params["ALT_TARGET"] == 28000.0
    assert any("refused" in text for text in texts)
    assert h.persisted == []


def test_set_for_another_system_is_ignored(h):
    h.send(mavlink.MAVLink_param_set_message(9, 1, b"ALT_TARGET", 30000.0, REAL32))
    values, _ = values_after(h)
    assert values == [] and h.params["ALT_TARGET"] == 28000.0


def test_a_set_that_can_not_be_stored_is_refused_with_the_value_still_held(h):
    """Issue 13: on a full disk a parameter set was reported as set but never persisted, and silently reverted
    at the next restart.  Now the set is stored before it is applied: when the store fails, the PARAM_VALUE tells
    the value still held and a STATUSTEXT says why."""
    h.link.parameters.on_params_changed = lambda values: False  # the parameter store could not be written
    param_set(h, "ALT_TARGET", 30500.0)
    values, texts = values_after(h)
    assert [(v.param_id, v.param_value) for v in values] == [("ALT_TARGET", 28000.0)]
    assert h.params["ALT_TARGET"] == 28000.0
    assert any("not stored" in text for text in texts)
