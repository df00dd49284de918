"""Params: a read-only mapping whose values change only through validated sets."""

from __future__ import annotations

import pytest

from flightsw.dictionary import all_param_decls
from flightsw.params import Params


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
