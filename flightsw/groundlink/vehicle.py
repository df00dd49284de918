"""What the ground link reads from the rest of the flight software, in one place.

:class:`VehicleView` wraps the flight state, parameters, flight logic, executive and HAL and answers the questions
the telemetry builders ask (time since boot, which chains are armed, which sensors are present and healthy).  The
builders never reach into those objects themselves, so a change elsewhere is absorbed here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from flightsw.clock import Clock
from flightsw.params import Params
from flightsw.phase import Phase
from flightsw.rules import finite
from flightsw.state import FlightState


@dataclass
class VehicleView:
    """Read-only access to the vehicle for the ground link.

    ``executive`` may be the :class:`flightsw.executive.Executive` (task health and stats), its
    :class:`~flightsw.executive.ExecutiveStats` alone, or ``None`` while the daemon is still being built (the
    executive's task table usually contains the ground link's own tasks, so it is created afterwards and assigned
    to ``GroundLink.executive``).  ``hal`` is a :class:`hal.interfaces.Hal` (or anything with the same
    ``barometers``/``power_monitors``/``thermometers``/``gps``/``outputs`` attributes).
    """

    state: FlightState
    params: Params
    logic: Any
    executive: Any
    hal: Any
    clock: Clock
    simulated: bool

    # ------------------------------------------------------------------ time

    def time_boot_ms(self, now_s: float) -> int:
        """Milliseconds since boot on the flight clock, wrapped to 32 bits as MAVLink's ``time_boot_ms``."""
        return int(max(0.0, now_s - self.state.boot_s) * 1000.0) & 0xFFFFFFFF

    def time_boot_us(self, now_s: float) -> int:
        return int(max(0.0, now_s - self.state.boot_s) * 1e6)

    # ------------------------------------------------------------------ flight facts

    @property
    def phase(self) -> Phase:
        return self.state.phase

    def release_armed(self) -> bool:
        """The release chain is armed: the latch says so or its ARM line is powered."""
        return bool(self.state.latches.release_armed) or _line_active(self.hal, "release_arm")

    def cutdown_armed(self) -> bool:
        """The cutdown chain's ARM line is powered."""
        return _line_active(self.hal, "cutdown_arm")

    def terminated(self) -> bool:
        return bool(self.state.latches.termination_fired) or self.state.phase is Phase.TERMINATION

    # ------------------------------------------------------------------ executive

    def executive_stats(self) -> Any:
        """The executive's :class:`ExecutiveStats`, or ``None``."""
        if self.executive is None:
            return None
        return getattr(self.executive, "stats", self.executive)

    def load_permille(self) -> int:
        """Frame load (fraction of the period spent working) in per-mille, 0..1000 as SYS_STATUS wants."""
        stats = self.executive_stats()
        load = getattr(stats, "load", 0.0) if stats is not None else 0.0
        if not isinstance(load, (int, float)) or not math.isfinite(load):
            return 0
        return int(min(max(load, 0.0), 1.0) * 1000.0)

    def slips(self) -> int:
        stats = self.executive_stats()
        return int(getattr(stats, "slips", 0)) if stats is not None else 0

    def tasks_healthy(self) -> bool:
        """False when the executive reports a task currently failing."""
        check = getattr(self.executive, "tasks_healthy", None)
        return bool(check()) if callable(check) else True

    # ------------------------------------------------------------------ sensors

    def has_barometer(self) -> bool:
        return bool(getattr(self.hal, "barometers", None))

    def has_gps(self) -> bool:
        return getattr(self.hal, "gps", None) is not None

    def has_power_monitor(self) -> bool:
        return bool(getattr(self.hal, "power_monitors", None))

    def barometer_healthy(self) -> bool:
        return bool(self.state.estimate.pressure_valid)

    def gps_healthy(self) -> bool:
        return bool(self.state.estimate.position_valid)

    def power_healthy(self) -> bool:
        return bool(self.state.estimate.power_valid)

    def sensors_ok(self) -> bool:
        """Every sensor we have is healthy and no task is failing."""
        if self.has_barometer() and not self.barometer_healthy():
            return False
        if self.has_gps() and not self.gps_healthy():
            return False
        if self.has_power_monitor() and not self.power_healthy():
            return False
        return self.tasks_healthy()

    def barometer_readings(self) -> list:
        """The newest reading of each barometer, in board order (``hal.interfaces.PressureReading``)."""
        out = []
        for baro in getattr(self.hal, "barometers", None) or []:
            try:
                out.append(baro.reading)
            except Exception:  # noqa: BLE001 - a broken driver must not take telemetry down
                continue
        return out

    def air_temperature_c(self) -> float:
        """The first valid temperature the estimator holds, or NaN."""
        est = self.state.estimate
        if est.temperature_valid:
            for value in est.temperatures_c:
                if math.isfinite(value):
                    return float(value)
        return math.nan

    # ------------------------------------------------------------------ home

    def launch_latches(self) -> tuple[float, float, float]:
        """The latched launch point as it is stored (NaN before launch): :meth:`home` depends on nothing else."""
        latches = self.state.latches
        return latches.launch_latitude_deg, latches.launch_longitude_deg, latches.launch_altitude_m

    def home(self) -> tuple[float, float, float] | None:
        """The launch point ``(latitude_deg, longitude_deg, altitude_m MSL)``, or ``None`` before launch."""
        values = self.launch_latches()
        return values if finite(*values) else None


def _line_active(hal: Any, name: str) -> bool:
    outputs = getattr(hal, "outputs", None)
    line = getattr(outputs, name, None) if outputs is not None else None
    if line is None:
        return False
    try:
        return bool(line.is_active)
    except Exception:  # noqa: BLE001
        return False
