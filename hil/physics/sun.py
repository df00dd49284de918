"""Low-precision solar position (about 0.01 deg, 1950-2050) and the sun's effect on a balloon's gas.

The formula is the Astronomical Almanac's low-precision one: mean longitude and anomaly of the sun from the days
since J2000.0, ecliptic longitude with the two-term equation of centre, obliquity, right ascension and declination,
then the local hour angle from Greenwich mean sidereal time.  Refraction is ignored.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone

_DEG = math.pi / 180.0
_J2000_UNIX_S = 946728000.0   # 2000-01-01T12:00:00Z
_EARTH_RADIUS_M = 6371000.0


def parse_utc_s(iso_utc: str) -> float:
    """Seconds since the Unix epoch of an ISO 8601 UTC time such as ``2024-06-21T08:00:00Z``.

    A time without an offset is taken as UTC.
    """
    text = iso_utc.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def solar_elevation_deg(unix_time_s: float, latitude_deg: float, longitude_deg: float) -> float:
    """Geometric elevation of the sun's centre above the astronomical horizon, degrees.

    ``unix_time_s``: UTC seconds since 1970-01-01; ``latitude_deg`` north positive; ``longitude_deg`` east positive.
    """
    n = (unix_time_s - _J2000_UNIX_S) / 86400.0
    mean_lon = (280.460 + 0.9856474 * n) % 360.0
    anomaly = ((357.528 + 0.9856003 * n) % 360.0) * _DEG
    ecl_lon = (mean_lon + 1.915 * math.sin(anomaly) + 0.020 * math.sin(2.0 * anomaly)) * _DEG
    obliquity = (23.439 - 0.0000004 * n) * _DEG
    sin_lon = math.sin(ecl_lon)
    right_ascension = math.atan2(math.cos(obliquity) * sin_lon, math.cos(ecl_lon))
    declination = math.asin(math.sin(obliquity) * sin_lon)
    gmst_deg = (280.46061837 + 360.98564736629 * n) % 360.0
    hour_angle = (gmst_deg + longitude_deg) * _DEG - right_ascension
    lat = latitude_deg * _DEG
    sin_elev = math.sin(lat) * math.sin(declination) + math.cos(lat) * math.cos(declination) * math.cos(hour_angle)
    return math.asin(max(-1.0, min(1.0, sin_elev))) / _DEG


def horizon_dip_deg(altitude_m: float) -> float:
    """How far below the astronomical horizon the sun is still visible from ``altitude_m`` (m), degrees."""
    if altitude_m <= 0.0:
        return 0.0
    return math.acos(_EARTH_RADIUS_M / (_EARTH_RADIUS_M + altitude_m)) / _DEG


def sunlight_fraction(elevation_deg: float, altitude_m: float) -> float:
    """0 (night) .. 1 (full sun) illumination of the envelope.

    Zero while the sun is below the visible horizon (astronomical horizon lowered by the dip at altitude), rising as
    ``sin`` of the apparent elevation to full sun 15 degrees above the visible horizon.
    """
    apparent = elevation_deg + horizon_dip_deg(altitude_m)
    if apparent <= 0.0:
        return 0.0
    if apparent >= 15.0:
        return 1.0
    return math.sin(apparent * 6.0 * _DEG)


def gas_superheat_k(sun_fraction: float, air_density_kgpm3: float, solar_superheat_k: float,
                    night_cooling_k: float) -> float:
    """Equilibrium gas-minus-air temperature (K).

    In full sun the gas is ``solar_superheat_k`` warmer than the air at float densities; dense low air cools the
    film by convection, so the daytime excess is scaled by ``1 / (1 + rho / 0.1 kg/m^3)`` and normalised to 1 at
    stratospheric density (about 15 % of it at sea level).  At night the gas is ``night_cooling_k`` colder (infrared
    loss to the cold sky); twilight blends the two linearly with ``sun_fraction``.
    """
    convective = 1.01 / (1.0 + air_density_kgpm3 * 10.0)
    if convective > 1.0:
        convective = 1.0
    return sun_fraction * solar_superheat_k * convective - (1.0 - sun_fraction) * night_cooling_k
