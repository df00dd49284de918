"""The rules' shared helpers (flightsw.rules): what counts as a finite number, a condition's dwell (at, just before
and just after its time; a start in the future or unknown; a reference band), writing dwells back (a condition
that stops holding forgets its start), and clamp."""

from __future__ import annotations

import math
import uuid
from types import SimpleNamespace

import pytest

from flightsw.rules import DwellUpdate, apply_dwells, clamp, dwell, dwell_with_reference, finite, not_holding, \
    nothing_holds

NAN = math.nan


def remembering(since=None, ref=None):
    return SimpleNamespace(dwell_since_s=dict(since or {}), dwell_ref=dict(ref or {}))


# ----------------------------------------------------------------------------------------------- finite

@pytest.mark.parametrize("values, expected", [
    ((1.0,), True), ((0,), True), ((-1e300,), True), ((NAN,), False), ((math.inf,), False), ((None,), False),
    (("1.0",), False), ((10 ** 400,), False), ((1.0, 2.0, 3.0), True), ((1.0, NAN), False), ((NAN, 1.0), False),
    ((1.0, 2.0, -math.inf), False), ((1.0, None), False), ((None, 1.0), False), ((1.0, 10 ** 400), False),
])
def test_only_finite_numbers_are_finite(values, expected):
    assert finite(*values) is expected


# ----------------------------------------------------------------------------------------------- dwell

def test_a_condition_that_does_not_hold_has_not_held_and_forgets_its_start():
    held, update = dwell(remembering({"c": 10.0}), "c", False, 100.0, 5.0)
    assert held is False and update.name == "c" and math.isnan(update.since_s)
    assert update is not_holding("c")


@pytest.mark.parametrize("since_s, now_s, held", [(95.0, 99.99, False), (95.0, 100.0, True), (95.0, 100.01, True)])
def test_a_condition_has_held_once_its_dwell_is_reached(since_s, now_s, held):
    result, update = dwell(remembering({"c": since_s}), "c", True, now_s, 5.0)
    assert result is held
    assert (update.name, update.since_s) == ("c", since_s) and math.isnan(update.ref)


@pytest.mark.parametrize("since", [None, NAN, 200.0])  # never began, unknown, in the future (a clock that went back)
def test_a_condition_begins_now_when_its_start_is_not_a_time_before_now(since):
    state = remembering({} if since is None else {"c": since})
    held, update = dwell(state, "c", True, 100.0, 5.0)
    assert held is False and update.since_s == 100.0 and update.name == "c"
    held, update = dwell(state, "c", True, 100.0, 0.0)
    assert held is True and update.since_s == 100.0  # a dwell of 0 holds at once


@pytest.mark.parametrize("value, ref, since_s, restarts", [
    (10.5, 10.0, 90.0, False), (11.0, 10.0, 90.0, False), (9.0, 10.0, 90.0, False),  # within the band, its edges
    (11.01, 10.0, 90.0, True), (8.99, 10.0, 90.0, True),  # left the band
    (10.0, NAN, 90.0, True), (10.0, 10.0, NAN, True), (10.0, 10.0, 150.0, True),  # nothing usable remembered
])
def test_a_reference_dwell_restarts_when_the_value_leaves_the_band(value, ref, since_s, restarts):
    state = remembering({"c": since_s}, {"c": ref})
    held, update = dwell_with_reference(state, "c", True, value, 1.0, 100.0, 10.0)
    if restarts:
        assert (held, update) == (False, DwellUpdate("c", 100.0, value))
    else:
        assert (held, update) == (True, DwellUpdate("c", 90.0, 10.0))


@pytest.mark.parametrize("condition, value", [(False, 10.0), (True, NAN), (True, None)])
def test_a_reference_dwell_does_not_hold_without_its_condition_or_a_value(condition, value):
    held, update = dwell_with_reference(remembering({"c": 50.0}, {"c": 10.0}), "c", condition, value, 1.0, 100.0,
                                        10.0)
    assert held is False and update is not_holding("c")


@pytest.mark.parametrize("since_s, held", [(90.01, False), (90.0, True)])
def test_a_reference_dwell_has_held_once_its_dwell_is_reached(since_s, held):
    result, _ = dwell_with_reference(remembering({"c": since_s}, {"c": 10.0}), "c", True, 10.0, 1.0, 100.0, 10.0)
    assert result is held


# ----------------------------------------------------------------------------------------------- apply_dwells

def test_a_dwell_that_begins_is_remembered_with_its_reference():
    state = remembering()
    assert apply_dwells(state, [DwellUpdate("a", 5.0), DwellUpdate("b", 6.0, 2.5)]) is True
    assert state.dwell_since_s == {"a": 5.0, "b": 6.0} and state.dwell_ref == {"b": 2.5}


def test_a_dwell_that_goes_on_changes_nothing():
    state = remembering({"a": 5.0, "b": 6.0}, {"b": 2.5})
    assert apply_dwells(state, [DwellUpdate("a", 5.0), DwellUpdate("b", 6.0, 2.5)]) is False
    assert state.dwell_since_s == {"a": 5.0, "b": 6.0} and state.dwell_ref == {"b": 2.5}


def test_a_new_reference_alone_is_written_without_counting_as_a_change():
    """The journal keeps the starts; a reference that moves within a dwell is written with the next start."""
    state = remembering({"b": 6.0}, {"b": 2.5})
    assert apply_dwells(state, [DwellUpdate("b", 6.0, 3.0)]) is False
    assert state.dwell_ref == {"b": 3.0}


def test_a_dwell_without_a_reference_drops_an_old_one():
    state = remembering({"b": 6.0}, {"b": 2.5})
    apply_dwells(state, [DwellUpdate("b", 6.0)])
    assert state.dwell_ref == {}


def test_a_condition_that_stops_holding_forgets_its_start_and_reference():
    state = remembering({"a": 5.0, "b": 6.0, "other": 1.0}, {"b": 2.5})
    assert apply_dwells(state, [not_holding("a"), not_holding("b")]) is True
    assert state.dwell_since_s == {"other": 1.0} and state.dwell_ref == {}


def test_a_reference_left_over_without_a_start_is_forgotten_too():
    state = remembering({}, {"b": 2.5})
    assert apply_dwells(state, [not_holding("b")]) is True
    assert state.dwell_ref == {}


def test_nothing_holding_changes_nothing_when_nothing_was_remembered():
    state = remembering({"other": 1.0}, {"other2": 2.0})
    assert apply_dwells(state, nothing_holds(["a", "b"])) is False
    assert state.dwell_since_s == {"other": 1.0} and state.dwell_ref == {"other2": 2.0}


@pytest.mark.parametrize("since, ref", [({"a": 5.0}, {}), ({}, {"b": 2.0}), ({"a": 5.0, "b": 1.0}, {"b": 2.0})])
def test_nothing_holding_forgets_every_start_it_names(since, ref):
    state = remembering(since, ref)
    assert apply_dwells(state, nothing_holds(["a", "b"])) is True
    assert state.dwell_since_s == {} and state.dwell_ref == {}


def test_nothing_holds_is_one_not_holding_update_per_name():
    updates = nothing_holds(["a", "b", "a"])
    assert list(updates) == [not_holding("a"), not_holding("b"), not_holding("a")]
    assert updates.names == frozenset({"a", "b"})
    assert all(math.isnan(update.since_s) and math.isnan(update.ref) for update in updates)


def test_not_holding_is_one_shared_update_per_name():
    name = f"condition-{uuid.uuid4()}"  # a name never asked for before: the update is made now
    update = not_holding(name)
    assert isinstance(update, DwellUpdate) and update.name == name
    assert math.isnan(update.since_s) and math.isnan(update.ref)
    assert not_holding(name) is update


def test_a_start_that_is_not_a_finite_time_is_not_remembered():
    state = remembering({"a": 5.0})
    assert apply_dwells(state, [DwellUpdate("a", math.inf), DwellUpdate("b", -math.inf, 1.0)]) is True
    assert state.dwell_since_s == {} and state.dwell_ref == {}


def test_a_reference_dwell_that_began_this_very_frame_keeps_its_reference():
    held, update = dwell_with_reference(remembering({"c": 100.0}, {"c": 10.0}), "c", True, 10.5, 1.0, 100.0, 0.0)
    assert (held, update) == (True, DwellUpdate("c", 100.0, 10.0))


# ----------------------------------------------------------------------------------------------- clamp

@pytest.mark.parametrize("value, expected", [(0.5, 0.5), (-2.0, -1.0), (2.0, 1.0), (-1.0, -1.0), (1.0, 1.0),
                                             (NAN, 1.0)])
def test_clamp_keeps_a_value_within_its_limits(value, expected):
    assert clamp(value, -1.0, 1.0) == expected
