"""Check a run against its scenario's expectations."""

from __future__ import annotations

import math

from hil.record import RunRecord
from hil.scenario import Expectation


#: What each expectation kind checks at the end of a run (the fields it reads in brackets).
EXPECTATION_DOCS = {
    "phase_reached": "the daemon was in phase `phase` at some time",
    "phase_not_reached": "the daemon was never in phase `phase`",
    "terminated": "the flight was terminated, for a reason containing `reason` (any reason when empty)",
    "not_terminated": "the flight was not terminated",
    "released": "the payload release fired, and its burn wire burned exactly once",
    "never_released": "the payload release never fired and its burn wire never burned",
    "released_altitude_m": "the release fired at a true altitude within [`min`, `max`] m",
    "max_altitude_m": "the highest true altitude is within [`min`, `max`] m",
    "landed": "the balloon (or what hangs below it) landed",
    "float_hold_fraction": "the share of FLOAT time within the scenario's `float_band_m` of the target is within "
                           "[`min`, `max`]",
    "event": "the daemon (or the run) logged event `name` at least once",
    "no_event": "event `name` was never logged",
    "restarts": "the number of daemon restarts (brown-outs) is within [`min`, `max`]",
    "ballast_left_kg": "the ballast still on board at the end is within [`min`, `max`] kg",
    "duration_s": "the simulated duration is within [`min`, `max`] s",
    "cutdown_fires": "the number of cutdown burns is within [`min`, `max`]",
    "altitude_error_p99_m": "the 99th percentile of the altitude estimate's error while airborne is within "
                            "[`min`, `max`] m",
}


def _between(value: float, expectation: Expectation) -> bool:
    return math.isfinite(value) and expectation.min <= value <= expectation.max


def _bounds(expectation: Expectation) -> str:
    low = "" if expectation.min <= -1e12 else f"{expectation.min:g}"
    high = "" if expectation.max >= 1e12 else f"{expectation.max:g}"
    return f"[{low}, {high}]"


def check(expectation: Expectation, record: RunRecord) -> tuple[str, bool, str]:
    """``(description, passed, detail)`` for one expectation."""
    kind = expectation.kind
    phases = [span.phase for span in record.phases]
    event_names = [name for _, name, _, _ in record.events]
    released = bool(record.release)
    if kind == "phase_reached":
        return f"phase {expectation.phase} reached", expectation.phase in phases, f"phases: {' > '.join(phases)}"
    if kind == "phase_not_reached":
        return (f"phase {expectation.phase} not reached", expectation.phase not in phases,
                f"phases: {' > '.join(phases)}")
    if kind == "terminated":
        ok = bool(record.termination_reason) and expectation.reason in record.termination_reason
        return f"terminated ({expectation.reason or 'any reason'})", ok, record.termination_reason or "not terminated"
    if kind == "not_terminated":
        return "not terminated", not record.termination_reason, record.termination_reason or "not terminated"
    if kind == "released":
        ok = released and record.release_fire_count == 1
        return "released exactly once", ok, f"release burns: {record.release_fire_count}"
    if kind == "never_released":
        ok = not released and record.release_fire_count == 0
        return "never released", ok, f"release burns: {record.release_fire_count}"
    if kind == "released_altitude_m":
        altitude_m = record.release.get("altitude_m", math.nan)
        return (f"released at altitude {_bounds(expectation)} m", released and _between(altitude_m, expectation),
                f"{altitude_m:.0f} m" if released else "not released")
    if kind == "max_altitude_m":
        return (f"max altitude {_bounds(expectation)} m", _between(record.max_altitude_m, expectation),
                f"{record.max_altitude_m:.0f} m")
    if kind == "landed":
        return "landed", bool(record.landing), "landed" if record.landing else "still flying"
    if kind == "float_hold_fraction":
        return (f"float hold fraction {_bounds(expectation)}", _between(record.float_hold_fraction, expectation),
                f"{record.float_hold_fraction:.3f} over {record.float_time_s / 3600:.1f} h")
    if kind == "event":
        return f"event {expectation.name}", expectation.name in event_names, _count(event_names, expectation.name)
    if kind == "no_event":
        return (f"no event {expectation.name}", expectation.name not in event_names,
                _count(event_names, expectation.name))
    if kind == "restarts":
        return f"restarts {_bounds(expectation)}", _between(record.restarts, expectation), f"{record.restarts}"
    if kind == "ballast_left_kg":
        return (f"ballast left {_bounds(expectation)} kg", _between(record.ballast_end_kg, expectation),
                f"{record.ballast_end_kg:.2f} kg")
    if kind == "cutdown_fires":
        return (f"cutdown burns {_bounds(expectation)}", _between(record.cutdown_fire_count, expectation),
                f"{record.cutdown_fire_count}")
    if kind == "altitude_error_p99_m":
        error_m = altitude_error_p99_m(record)
        return (f"altitude estimate error p99 {_bounds(expectation)} m", _between(error_m, expectation),
                f"{error_m:.1f} m")
    if kind == "duration_s":
        return (f"duration {_bounds(expectation)} s", _between(record.duration_s, expectation),
                f"{record.duration_s:.0f} s")
    raise ValueError(f"unknown expectation kind {kind!r}")


def altitude_error_p99_m(record: RunRecord) -> float:
    """99th percentile of |estimate - truth| while airborne (ASCENT, FLOAT, DESCENT, TERMINATION)."""
    samples = record.samples
    errors = sorted(abs(estimated - true) for estimated, true, phase in
                    zip(samples.estimated_altitude_m, samples.altitude_m, samples.phase)
                    if phase in (1, 2, 3, 5) and math.isfinite(estimated))
    if not errors:
        return math.nan
    return errors[min(len(errors) - 1, int(0.99 * len(errors)))]


def _count(names: list[str], name: str) -> str:
    return f"{names.count(name)} times"


def evaluate(expectations: tuple[Expectation, ...], record: RunRecord) -> None:
    """Fill ``record.expectations``.  Safety invariants are always checked too: a release or cutdown line never
    burns more often than the flight allows."""
    results = [check(expectation, record) for expectation in expectations]
    results.append(("release fired at most once", record.release_fire_count <= 1,
                    f"release burns: {record.release_fire_count}"))
    record.expectations = results
