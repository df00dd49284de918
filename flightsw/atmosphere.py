"""US Standard Atmosphere 1976, 0 to 86 km geometric altitude.

The lower atmosphere of the standard is seven layers in *geopotential* altitude ``H``, each with a base
temperature and a constant lapse rate of the molecular-scale temperature.  Geometric altitude ``Z`` (what a GPS
reports above mean sea level) converts with ``H = r0 * Z / (r0 + Z)``.  Inside a layer the hydrostatic equation
integrates in closed form:

* lapse rate ``L != 0``: ``T = Tb + L (H - Hb)``, ``p = pb (Tb / T) ** (g0 M0 / (R* L))``
* isothermal layer:     ``p = pb exp(-g0 M0 (H - Hb) / (R* Tb))``

and the density follows from the perfect gas law ``rho = p M0 / (R* T)``.  The layer base pressures are
derived once at import from the sea-level pressure, exactly as the standard defines them.

Temperatures returned are the molecular-scale temperature ``TM``.  Below 80 km it equals the kinetic temperature;
between 80 and 86 km the standard's kinetic temperature is lower by the molecular-weight ratio, at most
0.042 % at 86 km.  Pressure and density are exact in the whole range (the density formula with ``TM`` and ``M0``
is the standard's own definition).

Outside the defined range (documented extrapolation, continuous at the edges):

* below 0 m the troposphere's lapse rate continues (the standard itself tabulates it down to -5 km); inputs below
  -40 km are clamped there so the temperature stays positive;
* above 86 km (geopotential 84 852 m) the atmosphere is continued *isothermal* at 186.946 K, which is what the
  1976 standard does between 86 and 91 km; it is a rough model only far above that.

Everything is plain ``math`` so the flight software's estimator and the simulation can call it at a high rate.
NaN in gives NaN out; :func:`altitude_from_pressure_m` returns NaN for a non-positive pressure.
"""

from __future__ import annotations

import math

#: Standard gravity, m/s^2.
G0_MPS2 = 9.80665
#: Effective earth radius used for geopotential altitude, m.
R0_M = 6356766.0
#: Universal gas constant as used by the 1976 standard, J/(mol K).
R_STAR_JPMOLK = 8.31432
#: Mean molecular weight of sea-level air, kg/mol.
M0_KGPMOL = 0.0289644
#: Specific gas constant of air, J/(kg K).
R_AIR_JPKGK = R_STAR_JPMOLK / M0_KGPMOL
#: Sea-level pressure, Pa, and temperature, K.
P0_PA = 101325.0
T0_K = 288.15
#: Upper edge of the model: 86 km geometric is 84 852 m geopotential.
TOP_GEOMETRIC_M = 86000.0
BOTTOM_CLAMP_M = -40000.0

_GMR = G0_MPS2 * M0_KGPMOL / R_STAR_JPMOLK   # K/m, the hydrostatic constant (0.034163195)

# (base geopotential altitude m', lapse rate K/m') of the seven layers; base temperatures follow from the lapses.
_LAYER_DEFS = ((0.0, -0.0065), (11000.0, 0.0), (20000.0, 0.001), (32000.0, 0.0028),
               (47000.0, 0.0), (51000.0, -0.0028), (71000.0, -0.002))
_H_TOP = R0_M * TOP_GEOMETRIC_M / (R0_M + TOP_GEOMETRIC_M)


def _build_layers():
    """Base (H, T, p, lapse, exponent) per layer plus the isothermal continuation above the top."""
    layers = []
    t_b, p_b = T0_K, P0_PA
    bounds = [d[0] for d in _LAYER_DEFS[1:]] + [_H_TOP]
    for (h_b, lapse), h_next in zip(_LAYER_DEFS, bounds):
        expo = _GMR / lapse if lapse != 0.0 else 0.0
        layers.append((h_b, t_b, p_b, lapse, expo))
        t_n = t_b + lapse * (h_next - h_b)
        p_b = p_b * (t_b / t_n) ** expo if lapse != 0.0 else p_b * math.exp(-_GMR * (h_next - h_b) / t_b)
        t_b = t_n
    layers.append((_H_TOP, t_b, p_b, 0.0, 0.0))
    return tuple(layers)


_LAYERS = _build_layers()
# Unpacked constants for the hot path (attribute-free local lookups are much faster than tuple indexing).
(_H0, _T0, _P0, _L0, _E0), (_H1, _T1, _P1, _L1, _E1), (_H2, _T2, _P2, _L2, _E2), (_H3, _T3, _P3, _L3, _E3), \
    (_H4, _T4, _P4, _L4, _E4), (_H5, _T5, _P5, _L5, _E5), (_H6, _T6, _P6, _L6, _E6), \
    (_H7, _T7, _P7, _L7, _E7) = _LAYERS
_K1, _K4, _K7 = _GMR / _T1, _GMR / _T4, _GMR / _T7
_INV_E0, _INV_E2, _INV_E3, _INV_E5, _INV_E6 = 1.0 / _E0, 1.0 / _E2, 1.0 / _E3, 1.0 / _E5, 1.0 / _E6
_INV_R_AIR = 1.0 / R_AIR_JPKGK


def geopotential_m(altitude_m: float) -> float:
    """Geopotential altitude (m') of a geometric altitude ``altitude_m`` (m above mean sea level)."""
    return R0_M * altitude_m / (R0_M + altitude_m)


def geometric_m(geopotential_altitude_m: float) -> float:
    """Geometric altitude (m) of a geopotential altitude (m')."""
    return R0_M * geopotential_altitude_m / (R0_M - geopotential_altitude_m)


def properties(altitude_m: float) -> tuple[float, float, float]:
    """``(temperature_k, pressure_pa, density_kgpm3)`` at geometric altitude ``altitude_m`` (m MSL)."""
    if altitude_m < BOTTOM_CLAMP_M:
        altitude_m = BOTTOM_CLAMP_M
    h = R0_M * altitude_m / (R0_M + altitude_m)
    if h < _H1:
        t = _T0 + _L0 * h
        p = _P0 * (_T0 / t) ** _E0
    elif h < _H2:
        t = _T1
        p = _P1 * math.exp(-_K1 * (h - _H1))
    elif h < _H3:
        t = _T2 + _L2 * (h - _H2)
        p = _P2 * (_T2 / t) ** _E2
    elif h < _H4:
        t = _T3 + _L3 * (h - _H3)
        p = _P3 * (_T3 / t) ** _E3
    elif h < _H5:
        t = _T4
        p = _P4 * math.exp(-_K4 * (h - _H4))
    elif h < _H6:
        t = _T5 + _L5 * (h - _H5)
        p = _P5 * (_T5 / t) ** _E5
    elif h < _H7:
        t = _T6 + _L6 * (h - _H6)
        p = _P6 * (_T6 / t) ** _E6
    elif h >= _H7:
        t = _T7
        p = _P7 * math.exp(-_K7 * (h - _H7))
    else:
        return math.nan, math.nan, math.nan
    return t, p, p * _INV_R_AIR / t


def temperature_k(altitude_m: float) -> float:
    """Air temperature (K) at geometric altitude ``altitude_m`` (m MSL)."""
    if altitude_m < BOTTOM_CLAMP_M:
        altitude_m = BOTTOM_CLAMP_M
    h = R0_M * altitude_m / (R0_M + altitude_m)
    if h < _H1:
        return _T0 + _L0 * h
    if h < _H2:
        return _T1
    if h < _H3:
        return _T2 + _L2 * (h - _H2)
    if h < _H4:
        return _T3 + _L3 * (h - _H3)
    if h < _H5:
        return _T4
    if h < _H6:
        return _T5 + _L5 * (h - _H5)
    if h < _H7:
        return _T6 + _L6 * (h - _H6)
    return _T7 if h >= _H7 else math.nan


def pressure_pa(altitude_m: float) -> float:
    """Static air pressure (Pa) at geometric altitude ``altitude_m`` (m MSL)."""
    return properties(altitude_m)[1]


def density_kgpm3(altitude_m: float) -> float:
    """Air density (kg/m^3) at geometric altitude ``altitude_m`` (m MSL)."""
    return properties(altitude_m)[2]


def altitude_from_pressure_m(pressure_pa: float) -> float:
    """Geometric altitude (m MSL) where the standard atmosphere has static pressure ``pressure_pa`` (Pa).

    Closed-form inverse per layer (no iteration).  NaN for a non-positive or NaN pressure.
    """
    p = pressure_pa
    if not p > 0.0:
        return math.nan
    if p > _P1:
        h = (_T0 * (_P0 / p) ** _INV_E0 - _T0) / _L0
    elif p > _P2:
        h = _H1 + math.log(_P1 / p) / _K1
    elif p > _P3:
        h = _H2 + (_T2 * (_P2 / p) ** _INV_E2 - _T2) / _L2
    elif p > _P4:
        h = _H3 + (_T3 * (_P3 / p) ** _INV_E3 - _T3) / _L3
    elif p > _P5:
        h = _H4 + math.log(_P4 / p) / _K4
    elif p > _P6:
        h = _H5 + (_T5 * (_P5 / p) ** _INV_E5 - _T5) / _L5
    elif p > _P7:
        h = _H6 + (_T6 * (_P6 / p) ** _INV_E6 - _T6) / _L6
    else:
        h = _H7 + math.log(_P7 / p) / _K7
    return R0_M * h / (R0_M - h)
