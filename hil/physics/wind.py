"""Horizontal wind: a piecewise-linear profile in altitude plus a seeded random perturbation.

The profile interpolates the east and north components (not speed and direction, which would swing through
calm the wrong way).  Below the lowest and above the highest layer the end value holds.  The perturbation is a
first-order Gauss-Markov process per component with standard deviation ``sigma`` and correlation time ``tau``,
advanced in whole update intervals so the same seed gives the same winds whatever the caller's step.
"""

from __future__ import annotations

import bisect
import math
import random

from hil.physics.config import WindConfig

_DEG = math.pi / 180.0


def wind_components_mps(speed_mps: float, direction_from_deg: float) -> tuple[float, float]:
    """``(east, north)`` velocity (m/s) of air blowing at ``speed_mps`` FROM ``direction_from_deg``."""
    toward = (direction_from_deg + 180.0) * _DEG
    return speed_mps * math.sin(toward), speed_mps * math.cos(toward)


class WindField:
    """Wind at an altitude and time.  ``seed`` drives the perturbation only."""

    __slots__ = ("_alts", "_east", "_north", "_sigma", "_decay", "_drive", "_rng", "_pert_e", "_pert_n",
                 "_next_update_s", "update_interval_s")

    def __init__(self, config: WindConfig, *, seed: int, update_interval_s: float = 5.0):
        layers = sorted(config.layers, key=lambda layer: layer.altitude_m)
        self._alts = [float(layer.altitude_m) for layer in layers]
        comps = [wind_components_mps(layer.speed_mps, layer.direction_deg) for layer in layers]
        self._east = [c[0] for c in comps]
        self._north = [c[1] for c in comps]
        self.update_interval_s = update_interval_s
        self._sigma = config.perturbation_sigma_mps
        self._decay = math.exp(-update_interval_s / config.perturbation_time_constant_s)
        self._drive = self._sigma * math.sqrt(1.0 - self._decay * self._decay)
        self._rng = random.Random(seed)
        if self._sigma > 0.0:
            self._pert_e = self._rng.gauss(0.0, self._sigma)
            self._pert_n = self._rng.gauss(0.0, self._sigma)
        else:
            self._pert_e = self._pert_n = 0.0
        self._next_update_s = update_interval_s

    def profile_mps(self, altitude_m: float) -> tuple[float, float]:
        """Unperturbed ``(east, north)`` wind (m/s) at geometric altitude ``altitude_m`` (m)."""
        alts = self._alts
        if not alts:
            return 0.0, 0.0
        if altitude_m <= alts[0]:
            return self._east[0], self._north[0]
        if altitude_m >= alts[-1]:
            return self._east[-1], self._north[-1]
        i = bisect.bisect_right(alts, altitude_m)
        a0, a1 = alts[i - 1], alts[i]
        f = (altitude_m - a0) / (a1 - a0)
        e0, n0 = self._east[i - 1], self._north[i - 1]
        return e0 + f * (self._east[i] - e0), n0 + f * (self._north[i] - n0)

    def at(self, altitude_m: float, time_s: float) -> tuple[float, float]:
        """Perturbed ``(east, north)`` wind (m/s) at ``altitude_m`` (m) and simulation time ``time_s`` (s).

        ``time_s`` must not decrease between calls (the perturbation advances with it).
        """
        if self._sigma > 0.0:
            while time_s >= self._next_update_s:
                self._pert_e = self._pert_e * self._decay + self._drive * self._rng.gauss(0.0, 1.0)
                self._pert_n = self._pert_n * self._decay + self._drive * self._rng.gauss(0.0, 1.0)
                self._next_update_s += self.update_interval_s
        east, north = self.profile_mps(altitude_m)
        return east + self._pert_e, north + self._pert_n
