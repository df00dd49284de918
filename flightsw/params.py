"""Parameters: declared once, next to the subsystem that uses them, collected here.

A :class:`ParamDecl` gives a parameter's MAVLink name (at most 16 characters), type, unit, range, default and
description, and the phases in which the ground may change it.  That one declaration drives

* validation of ``params:`` overrides in ``config/flight.yaml`` and of PARAM_SET from the ground,
  together with the :class:`ParamConstraint` rules that relate parameters to each other (a burn time within the
  burn ceiling, a minimum below its maximum), declared next to the parameters they relate,
* the MAVLink parameter protocol (stable index order = declaration order),
* ``docs/parameters.md`` and ``docs/flight-rules.md`` (``flightsw docs``).

:class:`Params` holds the current values.  Rules read them with ``params["NAME"]``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterable, Mapping

from flightsw.phase import Phase

MAX_NAME_LENGTH = 16


@dataclass(frozen=True)
class ParamDecl:
    name: str
    kind: type  # int or float (bool parameters are ints 0/1)
    default: float
    min: float
    max: float
    unit: str
    description: str
    group: str = ""
    settable_in: frozenset[Phase] | None = None  # None: any phase

    def __post_init__(self) -> None:
        if not 0 < len(self.name) <= MAX_NAME_LENGTH or not self.name.replace("_", "").isalnum():
            raise ValueError(f"parameter name {self.name!r}: 1..16 characters of A-Z, 0-9 and _")
        if self.name.upper() != self.name:
            raise ValueError(f"parameter name {self.name!r} must be upper case")
        if self.kind not in (int, float):
            raise ValueError(f"parameter {self.name}: kind must be int or float")
        if not self.min <= self.default <= self.max:
            raise ValueError(f"parameter {self.name}: default {self.default} outside [{self.min}, {self.max}]")

    def coerce(self, value: float) -> tuple[float | int | None, str]:
        """``(value, "")`` converted to this parameter's type, or ``(None, reason)`` if not acceptable.

        Every value travels as a MAVLink REAL32, so it must be one a float32 holds: an integer parameter takes
        only an exact whole number (``1.0``, never ``1.4e-45`` or ``2.5``) of at most 2**24 in magnitude; a float
        parameter takes zero or a finite number of 1.2e-38 to 3.4e38 in magnitude.  Then the range applies."""
        number = _finite_number(value)
        if number is None:
            return None, f"{self.name}: not a finite number"
        if self.kind is int:
            if not number.is_integer():
                return None, f"{self.name}: {number:.9g} is not a whole number"
            if abs(number) > FLOAT32_EXACT_INT:
                return None, f"{self.name}: {int(number)} is beyond +-2**24, more than a REAL32 value holds exactly"
            value = int(number)
        else:
            if number != 0.0 and not FLOAT32_MIN_NORMAL <= abs(number) <= FLOAT32_MAX:
                return None, f"{self.name}: {number:g} is not representable as a float32"
            value = number
        if not self.min <= value <= self.max:
            return None, f"{self.name}: {value:g} outside {self.min:g}..{self.max:g} {self.unit}".rstrip()
        return value, ""


@dataclass(frozen=True)
class ParamConstraint:
    """A rule between parameters: ``check(values)`` returns "" when ``values`` (every parameter by name) keep it,
    else why not.  A set or a configuration that would break it is refused with that reason."""

    names: tuple[str, ...]
    check: Callable[[Mapping[str, float]], str]
    description: str


def at_most(smaller: str, larger: str, *, why: str = "") -> ParamConstraint:
    """``smaller`` may not be set above ``larger``."""
    def check(values: Mapping[str, float]) -> str:
        if values[smaller] <= values[larger]:
            return ""
        return f"{smaller} {values[smaller]:g} is above {larger} {values[larger]:g}" + (f": {why}" if why else "")
    return ParamConstraint((smaller, larger), check, f"{smaller} <= {larger}" + (f" ({why})" if why else ""))


FLOAT32_MAX = 3.4028234663852886e38
FLOAT32_MIN_NORMAL = 1.1754943508222875e-38
FLOAT32_EXACT_INT = 2 ** 24


def _finite_number(value: object) -> float | None:
    """``value`` as a finite float (booleans as 0 / 1), or None for anything else (NaN, infinities, integers too
    large for a float, strings)."""
    if not isinstance(value, (int, float)):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def bool_param(name: str, default: bool, description: str, **extra) -> ParamDecl:
    return ParamDecl(name, int, int(default), 0, 1, "bool", description, **extra)


class Params(dict):
    """Current parameter values, validated against their declarations.

    A read-only mapping of name to value (rules read ``params["NAME"]`` at the speed of a dict lookup); values
    change only through :meth:`set` and :meth:`load_values`, which validate them and tell the listeners."""

    def __init__(self, declarations: Iterable[ParamDecl], constraints: Iterable[ParamConstraint] = ()) -> None:
        super().__init__()
        self.declarations: tuple[ParamDecl, ...] = tuple(declarations)
        self.constraints: list[ParamConstraint] = []
        self.by_name = {decl.name: decl for decl in self.declarations}
        if len(self.by_name) != len(self.declarations):
            seen: set[str] = set()
            dupes = [d.name for d in self.declarations if d.name in seen or seen.add(d.name)]
            raise ValueError(f"parameters declared twice: {dupes}")
        self.index = {decl.name: i for i, decl in enumerate(self.declarations)}
        dict.update(self, ((decl.name, decl.default) for decl in self.declarations))
        self._listeners: list[Callable[[str, float | int], None]] = []
        for constraint in constraints:
            self.add_constraint(constraint)

    def _read_only(self, *args, **kwargs):
        raise TypeError("parameters change only through Params.set (validated)")

    __setitem__ = __delitem__ = update = pop = popitem = clear = setdefault = __ior__ = _read_only

    def __eq__(self, other: object) -> bool:
        return self is other

    __hash__ = object.__hash__

    def on_change(self, listener: Callable[[str, float | int], None]) -> None:
        self._listeners.append(listener)

    def add_constraint(self, constraint: ParamConstraint) -> None:
        """Keep ``constraint`` from now on (its parameters must be declared)."""
        unknown = [name for name in constraint.names if name not in self.by_name]
        if unknown:
            raise ValueError(f"constraint {constraint.description!r} names undeclared parameters {unknown}")
        self.constraints.append(constraint)

    def constraint_problems(self, changes: Mapping[str, float] | None = None) -> list[str]:
        """Why the current values with ``changes`` applied would break a constraint (empty: they would not).
        Only constraints naming a changed parameter are checked when ``changes`` is given."""
        values = dict(self)
        if changes:
            values.update(changes)
        problems = []
        for constraint in self.constraints:
            if changes is None or any(name in changes for name in constraint.names):
                problem = constraint.check(values)
                if problem:
                    problems.append(problem)
        return problems

    def check(self, name: str, value: float, phase: Phase | None = None) -> tuple[float | int | None, str]:
        """Validate a new value without applying it: ``(coerced, "")`` or ``(None, reason)``; the value must keep
        every constraint with the other parameters as they are."""
        decl = self.by_name.get(name)
        if decl is None:
            return None, f"unknown parameter {name}"
        if phase is not None and decl.settable_in is not None and phase not in decl.settable_in:
            allowed = ", ".join(p.name for p in sorted(decl.settable_in))
            return None, f"{name} cannot be changed in {phase.name} (only in {allowed})"
        coerced, reason = decl.coerce(value)
        if coerced is None:
            return None, reason
        problems = self.constraint_problems({name: coerced})
        if problems:
            return None, "; ".join(problems)
        return coerced, ""

    def set(self, name: str, value: float, phase: Phase | None = None) -> tuple[bool, str]:
        """Apply a value if valid.  Returns ``(True, "")`` or ``(False, reason)``; a rejected set changes nothing."""
        coerced, reason = self.check(name, value, phase)
        if coerced is None:
            return False, reason
        if self[name] != coerced:
            dict.__setitem__(self, name, coerced)
            for listener in self._listeners:
                listener(name, coerced)
        return True, ""

    def load_values(self, values: dict[str, float]) -> list[str]:
        """Apply stored or configured values together; returns the reasons for any that were refused (those keep
        their current value).  The constraints are checked on all of them at once (raising a ceiling and the
        value under it in one configuration is fine); the values of a constraint they break are all refused."""
        problems = []
        accepted: dict[str, float | int] = {}
        for name, value in values.items():
            decl = self.by_name.get(name)
            coerced, reason = (None, f"unknown parameter {name}") if decl is None else decl.coerce(value)
            if coerced is None:
                problems.append(reason)
            else:
                accepted[name] = coerced
        while True:
            merged = {**self, **accepted}
            broken = [c for c in self.constraints if any(n in accepted for n in c.names) and c.check(merged)]
            if not broken:
                break
            constraint = broken[0]
            problems.append(constraint.check(merged))
            for name in constraint.names:
                accepted.pop(name, None)
        for name, coerced in accepted.items():
            if self[name] != coerced:
                dict.__setitem__(self, name, coerced)
                for listener in self._listeners:
                    listener(name, coerced)
        return problems

    def stored_value_problem(self, name: str, value: object) -> str:
        """Why a stored ``value`` can not be ``name``'s (unknown name, not a number, out of range, not whole);
        "" when it can (constraints between parameters are checked when the values are loaded together)."""
        decl = self.by_name.get(name)
        if decl is None:
            return f"unknown parameter {str(name)[:32]}"
        if type(value) not in (int, float):
            return f"{name}: not a number"
        return decl.coerce(value)[1]

    def non_default(self) -> dict[str, float | int]:
        return {d.name: self[d.name] for d in self.declarations if self[d.name] != d.default}
