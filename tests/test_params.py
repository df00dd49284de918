"""Params: a read-only mapping whose values change only through validated sets, and the constraints between
parameters (issue 14): a set or a batch that would break one is refused with a reason naming the parameters, a
value at a constraint's boundary is accepted, and no parameter that divides may be 0."""

from __future__ import annotations

import math
import types
from pathlib import Path

import pytest

from flightsw.actuators import BURN_PARAMS, board_constraints
from flightsw.dictionary import all_param_constraints, all_param_decls
from flightsw.params import ParamDecl, Params, at_most


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


# ------------------------------------------------------------------ constraints between parameters


def dictionary_params(*extra_constraints) -> Params:
    return Params(all_param_decls(), (*all_param_constraints(), *extra_constraints))


#: (constraint, values loaded first, a set that breaks it, a set at its boundary) -- each declared constraint,
#: from each side where the ranges allow
CONSTRAINT_CASES = [
    ("ACT_MIN_PULSE_S <= ACT_MAX_PULSE_S", {"TRM_DUMP_PULSE_S": 1.0, "ALT_PULSE_MAX": 1.0, "GND_PULSE_MAX_S": 1.0,
                                            "ACT_MAX_PULSE_S": 4.0},
     ("ACT_MIN_PULSE_S", 4.5), ("ACT_MIN_PULSE_S", 4.0)),
    ("ACT_MIN_PULSE_S <= ACT_MAX_PULSE_S", {"TRM_DUMP_PULSE_S": 1.0, "ALT_PULSE_MAX": 1.0, "GND_PULSE_MAX_S": 1.0,
                                            "ACT_MIN_PULSE_S": 3.0},
     ("ACT_MAX_PULSE_S", 2.5), ("ACT_MAX_PULSE_S", 3.0)),
    ("TRM_BURN_S <= ACT_BURN_MAX_S", {"ACT_BURN_MAX_S": 8.0}, ("TRM_BURN_S", 8.5), ("TRM_BURN_S", 8.0)),
    ("TRM_BURN_S <= ACT_BURN_MAX_S", {}, ("ACT_BURN_MAX_S", 5.5), ("ACT_BURN_MAX_S", 6.0)),
    ("TRM_DUMP_PULSE_S <= ACT_MAX_PULSE_S", {}, ("TRM_DUMP_PULSE_S", 61.0), ("TRM_DUMP_PULSE_S", 60.0)),
    ("TRM_DUMP_PULSE_S <= ACT_MAX_PULSE_S", {"ALT_PULSE_MAX": 10.0, "GND_PULSE_MAX_S": 10.0},
     ("ACT_MAX_PULSE_S", 19.5), ("ACT_MAX_PULSE_S", 20.0)),
    ("TRM_DUMP_PULSE_S <= TRM_DUMP_MAX_S", {"TRM_DUMP_MAX_S": 30.0},
     ("TRM_DUMP_PULSE_S", 31.0), ("TRM_DUMP_PULSE_S", 30.0)),
    ("TRM_DUMP_PULSE_S <= TRM_DUMP_MAX_S", {}, ("TRM_DUMP_MAX_S", 19.0), ("TRM_DUMP_MAX_S", 20.0)),
    ("TRM_DUMP_PULSE_S <= TRM_DUMP_MAX_S", {}, ("TRM_DUMP_MAX_S", 19.0), ("TRM_DUMP_MAX_S", 0.0)),  # dump off
    ("REL_BURN_S <= ACT_BURN_MAX_S", {"ACT_BURN_MAX_S": 6.0}, ("REL_BURN_S", 6.5), ("REL_BURN_S", 6.0)),
    ("REL_BURN_S <= ACT_BURN_MAX_S", {"TRM_BURN_S": 2.0}, ("ACT_BURN_MAX_S", 4.5), ("ACT_BURN_MAX_S", 5.0)),
    ("REL_ALT_MIN <= REL_ALT_MAX", {}, ("REL_ALT_MIN", 32001.0), ("REL_ALT_MIN", 32000.0)),
    ("REL_ALT_MIN <= REL_ALT_MAX", {}, ("REL_ALT_MAX", 24999.0), ("REL_ALT_MAX", 25000.0)),
    ("REL_RATE_MIN <= REL_RATE_MAX", {}, ("REL_RATE_MIN", 6.5), ("REL_RATE_MIN", 6.0)),
    ("REL_RATE_MIN <= REL_RATE_MAX", {}, ("REL_RATE_MAX", -1.5), ("REL_RATE_MAX", -1.0)),
    ("REL_VOLT_MIN <= REL_VOLT_MAX", {}, ("REL_VOLT_MIN", 30.5), ("REL_VOLT_MIN", 30.0)),
    ("REL_VOLT_MIN <= REL_VOLT_MAX", {}, ("REL_VOLT_MAX", 6.5), ("REL_VOLT_MAX", 6.6)),
    ("REL_TEMP_MIN <= REL_TEMP_MAX", {}, ("REL_TEMP_MIN", 61.0), ("REL_TEMP_MIN", 60.0)),
    ("REL_TEMP_MIN <= REL_TEMP_MAX", {}, ("REL_TEMP_MAX", -41.0), ("REL_TEMP_MAX", -40.0)),
    ("ALT_PULSE_MIN <= ALT_PULSE_MAX", {}, ("ALT_PULSE_MIN", 30.5), ("ALT_PULSE_MIN", 30.0)),
    ("ALT_PULSE_MIN <= ALT_PULSE_MAX", {"ALT_PULSE_MIN": 5.0}, ("ALT_PULSE_MAX", 4.5), ("ALT_PULSE_MAX", 5.0)),
    ("ALT_PULSE_MAX <= ACT_MAX_PULSE_S", {}, ("ALT_PULSE_MAX", 61.0), ("ALT_PULSE_MAX", 60.0)),
    ("ALT_PULSE_MAX <= ACT_MAX_PULSE_S", {"TRM_DUMP_PULSE_S": 10.0, "GND_PULSE_MAX_S": 10.0},
     ("ACT_MAX_PULSE_S", 29.5), ("ACT_MAX_PULSE_S", 30.0)),
    ("GND_PULSE_MAX_S <= ACT_MAX_PULSE_S", {}, ("GND_PULSE_MAX_S", 61.0), ("GND_PULSE_MAX_S", 60.0)),
    ("GND_PULSE_MAX_S <= ACT_MAX_PULSE_S", {"TRM_DUMP_PULSE_S": 10.0, "ALT_PULSE_MAX": 10.0,
                                            "GND_PULSE_MAX_S": 40.0},
     ("ACT_MAX_PULSE_S", 39.5), ("ACT_MAX_PULSE_S", 40.0)),
]


def _constraint(params: Params, description: str):
    [constraint] = [c for c in params.constraints if c.description.startswith(description)]
    return constraint


def test_every_declared_constraint_has_its_cases():
    described = {case[0] for case in CONSTRAINT_CASES}
    for constraint in all_param_constraints():
        assert any(constraint.description.startswith(description) for description in described), \
            constraint.description


@pytest.mark.parametrize("description, setup, breaking, boundary", CONSTRAINT_CASES,
                         ids=[f"{case[0]}: {case[2][0]}" for case in CONSTRAINT_CASES])
def test_each_constraint_refuses_a_set_that_breaks_it_naming_both_and_accepts_its_boundary(
        description, setup, breaking, boundary):
    params = dictionary_params()
    assert params.load_values(setup) == []
    constraint = _constraint(params, description)
    before = dict(params)
    name, value = breaking
    ok, reason = params.set(name, value)
    assert not ok and params.check(name, value) == (None, reason)
    assert reason == constraint.check({**params, name: value})  # this constraint's reason, and only it
    assert all(parameter in reason for parameter in constraint.names)
    assert dict(params) == before
    assert params.set(*boundary) == (True, "")
    assert params[boundary[0]] == boundary[1]


def test_load_values_accepts_a_ceiling_raised_with_the_value_under_it():
    params = dictionary_params()
    assert not params.set("ALT_PULSE_MAX", 100.0)[0]  # alone it breaks ALT_PULSE_MAX <= ACT_MAX_PULSE_S
    assert params.load_values({"ALT_PULSE_MAX": 100.0, "ACT_MAX_PULSE_S": 120.0}) == []
    assert (params["ALT_PULSE_MAX"], params["ACT_MAX_PULSE_S"]) == (100.0, 120.0)


def test_load_values_accepts_a_ceiling_lowered_with_the_values_under_it():
    params = dictionary_params()
    assert params.load_values({"ACT_BURN_MAX_S": 4.0, "TRM_BURN_S": 4.0, "REL_BURN_S": 3.0}) == []
    assert (params["ACT_BURN_MAX_S"], params["TRM_BURN_S"], params["REL_BURN_S"]) == (4.0, 4.0, 3.0)


def test_load_values_refuses_a_breaking_batch_and_applies_the_rest():
    params = dictionary_params()
    heard = []
    params.on_change(lambda name, value: heard.append(name))
    problems = params.load_values({"ACT_MAX_PULSE_S": 120.0, "ALT_PULSE_MAX": 130.0, "ALT_TARGET": 30000.0})
    assert problems == ["ALT_PULSE_MAX 130 is above ACT_MAX_PULSE_S 120: the actuators would refuse the "
                        "controller's longer pulses"]
    assert (params["ACT_MAX_PULSE_S"], params["ALT_PULSE_MAX"], params["ALT_TARGET"]) == (60.0, 30.0, 30000.0)
    assert heard == ["ALT_TARGET"]


def test_load_values_refuses_a_value_whose_partner_was_out_of_range():
    params = dictionary_params()
    problems = params.load_values({"ALT_PULSE_MAX": 100.0, "ACT_MAX_PULSE_S": 99999.0})
    assert len(problems) == 2 and "outside" in problems[0] and "ALT_PULSE_MAX 100" in problems[1]
    assert (params["ALT_PULSE_MAX"], params["ACT_MAX_PULSE_S"]) == (30.0, 60.0)


def test_a_constraint_naming_an_undeclared_parameter_is_refused():
    with pytest.raises(ValueError, match="NO_SUCH_PARAM"):
        Params(all_param_decls(), [at_most("ALT_PULSE_MIN", "NO_SUCH_PARAM")])


def test_constraint_problems_checks_only_the_constraints_a_change_touches():
    params = Params(all_param_decls())  # no constraints yet: an inconsistent set can be made
    assert params.set("REL_ALT_MIN", 40000.0)[0]
    params.add_constraint(at_most("REL_ALT_MIN", "REL_ALT_MAX"))
    assert params.constraint_problems() == ["REL_ALT_MIN 40000 is above REL_ALT_MAX 32000"]
    assert params.constraint_problems({"ALT_TARGET": 30000.0}) == []
    assert params.constraint_problems({"REL_ALT_MAX": 45000.0}) == []


# ------------------------------------------------------------------ the board's burn-time ceilings


@pytest.fixture
def hil_board_lines():
    from gpiozero.pins.mock import MockFactory

    from flightsw.config.board import BoardConfig
    from flightsw.config.loader import load_file
    from hal.gpio import build_output_lines

    board = load_file(Path(__file__).resolve().parent.parent / "config" / "boards" / "hil.yaml", BoardConfig)
    assert board.outputs.cutdown_fire.max_on_s == 8.0 and board.outputs.release_fire.max_on_s == 8.0
    factory = MockFactory()
    lines = build_output_lines(board.outputs, pin_factory=factory)
    yield lines
    for line in lines.all():
        line.close()
    factory.close()


@pytest.mark.parametrize("burn", ["TRM_BURN_S", "REL_BURN_S"])
def test_a_burn_that_does_not_fit_the_fire_lines_backstop_is_refused(hil_board_lines, burn):
    params = dictionary_params(*board_constraints(hil_board_lines))
    assert params["ACT_BACKSTOP_S"] == 1.0
    ok, reason = params.set(burn, 7.5)
    role = BURN_PARAMS[burn]
    assert not ok
    assert reason == (f"{burn} 7.5 s + ACT_BACKSTOP_S 1 s is longer than the {role} line's backstop (8 s, the "
                      f"board's max_on_s): the burn would be cut short")
    assert params.set(burn, 7.0) == (True, "")  # 7 + 1 s fits 8 s exactly


def test_a_backstop_margin_that_makes_a_burn_overrun_its_line_is_refused(hil_board_lines):
    params = dictionary_params(*board_constraints(hil_board_lines))
    ok, reason = params.set("ACT_BACKSTOP_S", 2.5)  # TRM_BURN_S 6 + 2.5 > 8
    assert not ok and "TRM_BURN_S 6 s + ACT_BACKSTOP_S 2.5 s" in reason and "REL_BURN_S" not in reason
    assert params.set("ACT_BACKSTOP_S", 2.0) == (True, "")


@pytest.mark.parametrize("values, ceilings, flagged", [
    ({}, {"cutdown_fire": 8.0, "release_fire": 8.0}, []),  # 6 + 1 and 5 + 1 s fit in 8 s
    ({"TRM_BURN_S": 7.5}, {"cutdown_fire": 8.0, "release_fire": 8.0}, ["TRM_BURN_S"]),
    ({"REL_BURN_S": 10.0}, {"cutdown_fire": 8.0, "release_fire": 8.0}, ["REL_BURN_S"]),
    ({"REL_BURN_S": 10.0, "ACT_BURN_MAX_S": 5.0}, {"release_fire": 8.0}, []),  # the cap shortens the burn
    ({"TRM_BURN_S": 10.0}, {"release_fire": 8.0}, []),  # no ceiling known for the line
    ({"TRM_BURN_S": 10.0}, {"cutdown_fire": math.inf, "release_fire": 8.0}, []),  # a level: no ceiling
    ({"ACT_BACKSTOP_S": 3.0}, {"cutdown_fire": 8.0, "release_fire": 30.0}, ["TRM_BURN_S"]),
])
def test_board_constraints_flag_a_burn_longer_than_its_lines_backstop(values, ceilings, flagged):
    params = Params(all_param_decls())  # no constraints while the values are made up
    for name, value in values.items():
        assert params.set(name, value)[0]
    outputs = types.SimpleNamespace(**{role: types.SimpleNamespace(max_on_s=ceiling)
                                       for role, ceiling in ceilings.items()})
    for constraint in board_constraints(outputs):
        params.add_constraint(constraint)
    assert [text.split()[0] for text in params.constraint_problems()] == flagged


# ------------------------------------------------------------------ parameters that divide


@pytest.mark.parametrize("name", ["BAL_FLOW_KGPS", "ALT_VENT_FLOW", "PH_GROUND_TAU", "ACT_HB_TOGGLE_HZ"])
def test_a_parameter_that_divides_may_not_be_zero(name):
    params = dictionary_params()
    assert params.by_name[name].min > 0.0
    ok, reason = params.set(name, 0.0)
    assert not ok and reason.startswith(f"{name}: 0 outside")
    assert params.load_values({name: 0.0}) == [reason]
    assert params[name] == params.by_name[name].default


def test_a_valve_pulse_longer_than_the_valve_lines_backstop_is_refused(hil_board_lines):
    params = dictionary_params(*board_constraints(hil_board_lines))
    ok, reason = params.set("ACT_MAX_PULSE_S", 61.0)
    assert not ok and "ACT_MAX_PULSE_S 61 s" in reason and "valve line's backstop (60 s" in reason
    assert params.set("ACT_MAX_PULSE_S", 60.0) == (True, "")


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
