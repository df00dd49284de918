"""The flight-state journal and the parameter store: latched facts and accepted parameters, kept crash-safely.

Both are :class:`flightsw.store.AtomicStore` documents in the state directory (temp file + fsync + rename +
directory fsync, a checksum, and the previous generation as a backup).  A damaged or missing file falls back to the
backup and then to defaults, with the problems returned for the daemon to report loudly; it never stops start-up.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from flightsw.state import Latches
from flightsw.store import AtomicStore

JOURNAL_SCHEMA_VERSION = 1
PARAMS_SCHEMA_VERSION = 1


@dataclass
class Restored:
    latches: Latches
    source: str  # "primary", "backup" or "none"
    problems: list[str] = field(default_factory=list)


class Journal:
    """Latched flight facts (``flightsw.state.Latches``) in ``<state_dir>/state.json``."""

    def __init__(self, state_dir: Path, *, sync: bool = True) -> None:
        self.store = AtomicStore(Path(state_dir) / "state.json", schema_version=JOURNAL_SCHEMA_VERSION, sync=sync)
        self.writes = 0
        self.write_errors = 0
        self.last_error = ""

    def load(self) -> Restored:
        result = self.store.load()
        if result.data is None:
            return Restored(Latches(), result.source, result.problems)
        try:
            return Restored(Latches.from_dict(result.data), result.source, result.problems)
        except (TypeError, ValueError) as error:
            return Restored(Latches(), "none", [*result.problems, f"state.json: unusable content ({error})"])

    def save(self, latches: Latches) -> bool:
        """Write the latches now.  Returns False (and counts) on an I/O error; never raises for one."""
        try:
            self.store.save(latches.to_dict())
        except OSError as error:
            self.write_errors += 1
            self.last_error = f"{error.strerror or error}"
            return False
        self.writes += 1
        return True


class ParamStore:
    """Parameters changed from their defaults, in ``<state_dir>/params.json``."""

    def __init__(self, state_dir: Path, *, sync: bool = True) -> None:
        self.store = AtomicStore(Path(state_dir) / "params.json", schema_version=PARAMS_SCHEMA_VERSION, sync=sync)
        self.write_errors = 0
        self.last_error = ""

    def load(self) -> tuple[dict[str, float], str, list[str]]:
        """``(values, source, problems)``; values that are not numbers are dropped with a problem."""
        result = self.store.load()
        values: dict[str, float] = {}
        problems = list(result.problems)
        for name, value in (result.data or {}).items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                values[name] = value
            else:
                problems.append(f"params.json: {name} is not a number")
        return values, result.source, problems

    def save(self, values: dict[str, float]) -> bool:
        try:
            self.store.save(dict(values))
        except OSError as error:
            self.write_errors += 1
            self.last_error = f"{error.strerror or error}"
            return False
        return True
