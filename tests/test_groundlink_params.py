"""Ground link parameter protocol: list, read, set, rejected sets, type coercion, persistence callback."""

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


def test_integer_sent_as_real32_is_coerced(h):
    param_set(h, "TRM_MAX_TRIES", 5.0, REAL32)  # what MAVProxy sends
    values, _ = values_after(h)
    assert h.params["TRM_MAX_TRIES"] == 5 and isinstance(h.params["TRM_MAX_TRIES"], int)
    assert values[0].param_type == REAL32 and values[0].param_value == 5.0
    param_set(h, "TRM_MAX_TRIES", 6.0, INT32)  # C-cast encoding with the INT32 type
    values_after(h)
    assert h.params["TRM_MAX_TRIES"] == 6


@pytest.mark.parametrize("param_type, fmt", [(INT32, "<i"), (mavlink.MAV_PARAM_TYPE_UINT8, "<B"),
                                             (mavlink.MAV_PARAM_TYPE_INT16, "<h")])
def test_integer_encoded_bytewise_is_understood(h, param_type, fmt):
    """What MAVSDK and PX4-style ground stations send: the integer's bytes inside the float field."""
    raw = struct.pack(fmt, 7).ljust(4, b"\x00")
    bytewise_float = struct.unpack("<f", raw)[0]
    param_set(h, "TRM_MAX_TRIES", bytewise_float, param_type)
    values, texts = values_after(h)
    assert h.params["TRM_MAX_TRIES"] == 7
    assert values[0].param_value == 7.0


def test_bytewise_looking_value_of_a_float_type_is_refused(h):
    tiny = struct.unpack("<f", struct.pack("<i", 7))[0]
    param_set(h, "TRM_MAX_TRIES", tiny, REAL32)  # REAL32 says it is the number itself: about 0
    values, texts = values_after(h)
    assert h.params["TRM_MAX_TRIES"] == 3
    assert any("TRM_MAX_TRIES: 0 outside" in text for text in texts)


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
