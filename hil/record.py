"""What a HIL run records: time series sampled once a simulated second, events, and the outcome.

The runner fills a :class:`RunRecord`; the report (``hil.report``) and the expectations (``hil.expect``) read it.
"""

from __future__ import annotations

import math
from array import array
from dataclasses import dataclass, field


@dataclass
class Samples:
    """Parallel columns, one row per sample.  Truth comes from the simulated world, the rest from the daemon."""

    time_s: array = field(default_factory=lambda: array("d"))
    altitude_m: array = field(default_factory=lambda: array("d"))  # truth
    estimated_altitude_m: array = field(default_factory=lambda: array("d"))
    vertical_rate_mps: array = field(default_factory=lambda: array("d"))  # truth
    estimated_vertical_rate_mps: array = field(default_factory=lambda: array("d"))
    latitude_deg: array = field(default_factory=lambda: array("d"))
    longitude_deg: array = field(default_factory=lambda: array("d"))
    ballast_kg: array = field(default_factory=lambda: array("d"))  # truth: ballast still on board
    phase: array = field(default_factory=lambda: array("b"))
    float_target_m: array = field(default_factory=lambda: array("d"))

    def append(self, **row: float) -> None:
        for name, value in row.items():
            getattr(self, name).append(value)

    def __len__(self) -> int:
        return len(self.time_s)


@dataclass
class PhaseSpan:
    phase: str
    start_s: float
    end_s: float


@dataclass
class RunRecord:
    scenario: str
    seed: int
    samples: Samples = field(default_factory=Samples)
    events: list[tuple[float, str, str, str]] = field(default_factory=list)  # (time, name, severity, text)
    phases: list[PhaseSpan] = field(default_factory=list)
    duration_s: float = 0.0
    wall_time_s: float = 0.0
    max_altitude_m: float = -math.inf
    ended_by: str = ""  # "burst", "cutdown", "landed", "time limit", ...
    termination_reason: str = ""
    release: dict = field(default_factory=dict)  # conditions at release: time_s, altitude_m, latitude_deg, ...
    landing: dict = field(default_factory=dict)  # time_s, latitude_deg, longitude_deg
    launch: dict = field(default_factory=dict)  # latitude_deg, longitude_deg, altitude_m, start_utc
    ballast_start_kg: float = 0.0
    ballast_end_kg: float = 0.0
    float_hold_fraction: float = math.nan  # share of float time within +/- band of the target
    float_hold_band_m: float = 500.0
    float_time_s: float = 0.0
    restarts: int = 0
    release_fire_count: int = 0  # release burn-wire activations seen by the world (must be <= 1)
    cutdown_fire_count: int = 0
    expectations: list[tuple[str, bool, str]] = field(default_factory=list)  # (expectation, passed, detail)
    tlog_paths: list[str] = field(default_factory=list)  # every .tlog the flight recorder wrote, oldest first

    @property
    def passed(self) -> bool:
        return all(passed for _, passed, _ in self.expectations)

    def phase_at(self, time_s: float) -> str:
        for span in self.phases:
            if span.start_s <= time_s < span.end_s:
                return span.phase
        return self.phases[-1].phase if self.phases else ""
