"""Params: a read-only mapping whose values change only through validated sets."""

from __future__ import annotations

import pytest

from flightsw.dictionary import all_param_decls
from flightsw.params import ParamDecl, Params


def test_values_read_like_a_dict_and_start_at_their_defaults():
    params = Params(all_param_decls())
    for decl in params.declarations:
        assert params[decl.name] == decl.default
    assert len(params) == len(params.declarations)
    assert params.non_default() == {}


@pytest.mark.parametrize("write", [
    lambda p: p.__setitem__("ALT_TARGET", 1.0),
    lambda p: p.update(ALT_TARGET=1.0),
    lambda p: p.pop("ALT_TARGET"),
    lambda p: p.setdefault("NEW_PARAM", 1.0),
    lambda p: p.clear(),
    lambda p: p.popitem(),
    lambda p: p.__delitem__("ALT_TARGET"),
])
def test_direct_writes_are_refused_and_change_nothing(write):
    params = Params(all_param_decls())
    with pytest.raises(TypeError):
        write(params)
    assert params["ALT_TARGET"] == 28000.0
    assert len(params) == len(params.declarations)


def test_set_validates_and_tells_listeners_once():
    params = Params(all_param_decls())
    heard = []
    params.on_change(lambda name, value: heard.append((name, value)))
    assert params.set("ALT_TARGET", 30000.0) == (True, "")
    assert params.set("ALT_TARGET", 30000.0) == (True, "")  # unchanged: no second call
    ok, reason = params.set("ALT_TARGET", 1.0e9)
    assert not ok and "outside" in reason
    assert params["ALT_TARGET"] == 30000.0
    assert heard == [("ALT_TARGET", 30000.0)]
    assert params.non_default() == {"ALT_TARGET": 30000.0}


@pytest.mark.parametrize("value, accepted", [
    (1, 1), (1.0, 1), (True, 1), (0, 0),
    (1.4e-45, None), (0.5, None), (2 ** 24 + 1, None), (float("nan"), None), (float("inf"), None),
    (10 ** 400, None), ("1", None),
])
def test_integer_parameters_take_only_exact_whole_numbers_a_real32_holds(value, accepted):
    """No tolerance: 1.4e-45 (the bytes 01 00 00 00 read as a float) is not 0 nor 1."""
    wide = ParamDecl("WIDE", int, 0, -2 ** 30, 2 ** 30, "", "an integer parameter with a wide range")
    assert wide.coerce(value)[0] == accepted


def test_float_parameters_take_finite_float32_values():
    gain = ParamDecl("GAIN", float, 1.0, -1e39, 1e39, "", "a float parameter with a very wide range")
    assert gain.coerce(0.0) == (0.0, "") and gain.coerce(3.0e38) == (3.0e38, "")
    for value in (3.5e38, 1e-39, float("nan"), 10 ** 400):
        assert gain.coerce(value)[0] is None, value
