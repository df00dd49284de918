"""Gas properties and drag laws used by the balloon world."""

from __future__ import annotations

import math

from flightsw.atmosphere import R_STAR_JPMOLK

#: Molar masses (kg/mol) of the lift gases.
MOLAR_MASS_KGPMOL = {"helium": 0.0040026, "hydrogen": 0.00201588}


def gas_constant_jpkgk(gas: str) -> float:
    """Specific gas constant (J/(kg K)) of ``gas`` ("helium" or "hydrogen")."""
    return R_STAR_JPMOLK / MOLAR_MASS_KGPMOL[gas]


def air_viscosity_pas(temperature_k: float) -> float:
    """Dynamic viscosity of air (Pa s), Sutherland's law with the 1976 standard's constants."""
    return 1.458e-6 * temperature_k * math.sqrt(temperature_k) / (temperature_k + 110.4)


def sphere_drag_coefficient(reynolds: float, cd_supercritical: float, critical_reynolds: float) -> float:
    """Drag coefficient of a sphere-like balloon at Reynolds number ``reynolds``.

    A smooth two-part fit:

    * subcritical: White's correlation ``24/Re + 6/(1 + sqrt(Re)) + 0.4`` (Stokes flow up to Re ~ 2e5, about 0.42
      on the Newton plateau);
    * the drag crisis: a logistic blend in ``(Re / critical_reynolds) ** 3`` down to ``cd_supercritical``.

    With the defaults (0.25 at 4e5) a launching sounding balloon (Re ~ 5e5 .. 1e6) sees 0.26 .. 0.31 and, as
    Re falls with the thinning air, the coefficient rises to the subcritical 0.42 in the stratosphere, which is what
    keeps real ascent rates nearly constant.
    """
    if reynolds < 1e-3:
        reynolds = 1e-3
    sub = 24.0 / reynolds + 6.0 / (1.0 + reynolds ** 0.5) + 0.4
    x = reynolds / critical_reynolds
    x = x * x * x
    return sub - (sub - cd_supercritical) * x / (1.0 + x)
