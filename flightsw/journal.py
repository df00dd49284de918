"""The flight-state journal and the parameter store: latched facts and accepted parameters, kept crash-safely.

Both are :class:`flightsw.store.MirroredStore` documents in the state directory: two slot files each, written in
place one after the other, so that once a write has returned the loss or corruption of any one file loses
nothing (see :mod:`flightsw.store` for why).  At start-up every good copy is read; each journal record is
validated field by field (:func:`flightsw.state.latch_problems`: a CRC-valid record with ``phase: 99`` or the
string ``"false"`` for a flag is rejected, loudly, never loaded and never a crash) and the valid ones are merged
(:func:`flightsw.state.merge_latches`: a fact any copy holds is kept).  Problems are returned for the daemon to
report; nothing here stops start-up.

Files of the earlier layout (``state.json`` with ``state.json.bak``, ``params.json`` with its ``.bak``) are read
as well, migrated, and removed after the first complete write of the new ones.
"""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from flightsw.state import Latches, latch_problems, latches_from_dict, merge_latches
from flightsw.store import MirroredStore, StoreFormatError, decode_document

JOURNAL_SCHEMA_VERSION = 2
PARAMS_SCHEMA_VERSION = 2
LEGACY_SCHEMA_VERSION = 1
JOURNAL_NAME = "state"
PARAMS_NAME = "params"
#: journal keys of the earlier layout that carried wall-clock times (labels now, never decisions)
_LEGACY_RENAMES = {"launch_wall_s": "launch_utc_s"}
_LEGACY_DROPPED = ("phase_since_wall_s", "release_fired_wall_s", "termination_wall_s")


@dataclass
class Restored:
    """What the journal held at start-up: the merged latches, which copies they came from (empty: none, a new
    flight), and a note about every copy that was missing, damaged or rejected."""

    latches: Latches
    sources: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    rejected: int = 0  # CRC-valid records whose fields did not validate

    @property
    def found(self) -> bool:
        return bool(self.sources)


def _legacy_documents(paths: list[Path]) -> tuple[list[tuple[str, dict]], list[str]]:
    """Good documents of the earlier one-file-plus-backup layout (newest first) and notes about bad ones."""
    found, problems = [], []
    for path in paths:
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            continue
        except OSError as error:
            problems.append(f"{path.name}: unreadable ({error.strerror or error})")
            continue
        try:
            data, sequence = decode_document(raw, schema_version=LEGACY_SCHEMA_VERSION)
        except StoreFormatError as error:
            problems.append(f"{path.name}: {error}")
            continue
        found.append((sequence, path.name, data))
    found.sort(key=lambda item: -item[0])
    return [(name, data) for _, name, data in found], problems


def _migrate_latches(data: dict) -> dict:
    """A journal record of the earlier layout in this one's terms: its facts carry over; its timers, which ran on
    the wall clock, start again (a launched flight counts from the migration)."""
    data = {_LEGACY_RENAMES.get(key, key): value for key, value in data.items() if key not in _LEGACY_DROPPED}
    if data.get("phase", 0) != 0 and "launch_s" not in data:
        data["launch_s"] = 0.0
    return data


class Journal:
    """Latched flight facts and timers (:class:`flightsw.state.Latches`) in ``<state_dir>/state-{a,b}.json``."""

    def __init__(self, state_dir: Path, *, sync: bool = True) -> None:
        state_dir = Path(state_dir)
        self.legacy_paths = [state_dir / "state.json", state_dir / "state.json.bak"]
        self.store = MirroredStore(state_dir, JOURNAL_NAME, schema_version=JOURNAL_SCHEMA_VERSION, sync=sync,
                                   legacy_paths=tuple(self.legacy_paths))
        self.writes = 0
        self.write_errors = 0  # saves that wrote no copy
        self.degraded_writes = 0  # saves that wrote one copy of two
        self.last_error = ""

    def load(self) -> Restored:
        loaded = self.store.load()
        problems = list(loaded.problems)
        records: list[Latches] = []
        sources: list[str] = []
        rejected = 0
        candidates = [(generation.source, generation.data) for generation in loaded.generations]
        legacy, legacy_problems = _legacy_documents(self.legacy_paths)
        problems += legacy_problems
        candidates += [(name, _migrate_latches(data)) for name, data in legacy]
        for source, data in candidates:
            bad = latch_problems(data)
            if bad:
                rejected += 1
                problems.append(f"{source}: record rejected: {'; '.join(bad)}")
                continue
            records.append(latches_from_dict(data))
            sources.append(source)
        latches = merge_latches(records)
        if not latches.flight_id:
            latches.flight_id = secrets.token_hex(6)
        return Restored(latches, sources, problems, rejected)

    def save(self, latches: Latches) -> bool:
        """Write the latches now, to both copies.  Returns False (and counts) when no copy could be written; one
        copy of two is counted as degraded, with the error in ``last_error``.  Never raises for an I/O error."""
        try:
            result = self.store.save(latches.to_dict())
        except OSError as error:
            self.write_errors += 1
            self.last_error = f"{error.strerror or error}"
            return False
        self.writes += 1
        if result.errors:
            self.degraded_writes += 1
            self.last_error = "; ".join(result.errors)
        return True


def _not_a_finite_number(name: str, value) -> str:
    return "" if _finite_number(value) else f"{str(name)[:32]} is not a finite number"


def _finite_number(value) -> bool:
    return type(value) in (int, float) and math.isfinite(value)


class ParamStore:
    """Parameters changed from their defaults, in ``<state_dir>/params-{a,b}.json``."""

    def __init__(self, state_dir: Path, *, sync: bool = True) -> None:
        state_dir = Path(state_dir)
        self.legacy_paths = [state_dir / "params.json", state_dir / "params.json.bak"]
        self.store = MirroredStore(state_dir, PARAMS_NAME, schema_version=PARAMS_SCHEMA_VERSION, sync=sync,
                                   legacy_paths=tuple(self.legacy_paths))
        self.write_errors = 0
        self.last_error = ""

    def load(self, problem_of: Callable[[str, object], str] | None = None) -> tuple[dict[str, float], str,
                                                                                   list[str]]:
        """``(values, source, problems)`` from the newest good copy.  ``problem_of(name, value)`` says why a stored
        value is not acceptable ("" when it is; default: it must be a finite number -- the daemon passes the
        parameter declarations' check, ranges included).  A newer copy holding a value that is not acceptable is
        rejected with a problem (the other copy holds the values); when every copy holds one, those values are
        dropped with a problem each.  ``source`` is the slot ("a", "b"), a legacy file name, or "none"."""
        problem_of = problem_of or _not_a_finite_number
        loaded = self.store.load()
        problems = list(loaded.problems)

        def acceptable(generation) -> bool:
            return not any(problem_of(name, value) for name, value in generation.data.items())

        generation = next((g for g in loaded.generations if acceptable(g)), loaded.newest)
        for newer in loaded.generations:
            if newer is generation:
                break
            bad = "; ".join(problem_of(name, value) for name, value in newer.data.items() if problem_of(name, value))
            problems.append(f"{newer.source}: record rejected: {bad[:200]}")
        data, source = (generation.data, generation.source) if generation is not None else (None, "none")
        if generation is None and all(problem.endswith(": missing") for problem in problems):
            problems = []  # a new flight: nothing stored yet
        if data is None:
            legacy, legacy_problems = _legacy_documents(self.legacy_paths)
            problems += legacy_problems
            if legacy:
                source, data = legacy[0]
        values: dict[str, float] = {}
        for name, value in (data or {}).items():
            problem = problem_of(name, value)
            if problem:
                problems.append(f"params: {problem}")
            else:
                values[name] = value
        return values, source, problems

    def save(self, values: dict[str, float]) -> bool:
        """Persist ``values``; False (and counts) when no copy could be written."""
        try:
            result = self.store.save(dict(values))
        except OSError as error:
            self.write_errors += 1
            self.last_error = f"{error.strerror or error}"
            return False
        if result.errors:
            self.last_error = "; ".join(result.errors)
        return True
