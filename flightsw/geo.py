"""Small geodesy helpers for the flight rules: polygons on latitude/longitude, great-circle distance, time of day.

Polygons are sequences of ``(latitude_deg, longitude_deg)`` vertices (the order ``MissionConfig`` uses), implicitly
closed, with edges taken as straight lines in latitude/longitude.  That is exact enough for launch boxes and
geofences of up to a few hundred kilometres away from the poles.  Longitudes are unwrapped around the first
vertex, so a polygon may straddle the antimeridian (but not enclose a pole).
"""

from __future__ import annotations

import math
from typing import Sequence

EARTH_RADIUS_M = 6371008.8  # mean earth radius (IUGG)
SECONDS_PER_DAY = 86400.0

Polygon = Sequence[tuple[float, float]]


def wrap_longitude_deg(longitude_deg: float, centre_deg: float = 0.0) -> float:
    """``longitude_deg`` moved by whole turns into ``[centre_deg - 180, centre_deg + 180)``."""
    return (longitude_deg - centre_deg + 180.0) % 360.0 - 180.0 + centre_deg


def point_in_polygon(latitude_deg: float, longitude_deg: float, polygon: Polygon) -> bool:
    """True when the point lies inside ``polygon`` (even-odd rule; a point exactly on an edge may go either way).

    A polygon with fewer than three vertices contains nothing; a NaN coordinate is never inside.
    """
    if len(polygon) < 3 or not (math.isfinite(latitude_deg) and math.isfinite(longitude_deg)):
        return False
    centre = polygon[0][1]
    x = wrap_longitude_deg(longitude_deg, centre)
    y = latitude_deg
    inside = False
    lat_a, lon_a = polygon[-1]  # each edge runs from the previous vertex (the last one closes the polygon)
    xa = wrap_longitude_deg(lon_a, centre)
    for lat_b, lon_b in polygon:
        xb = wrap_longitude_deg(lon_b, centre)
        if (lat_a > y) != (lat_b > y):
            x_cross = xa + (y - lat_a) * (xb - xa) / (lat_b - lat_a)
            if x < x_cross:
                inside = not inside
        lat_a, xa = lat_b, xb
    return inside


def distance_m(lat_a_deg: float, lon_a_deg: float, lat_b_deg: float, lon_b_deg: float) -> float:
    """Great-circle (haversine) distance between two points on a spherical earth, metres."""
    phi_a = math.radians(lat_a_deg)
    phi_b = math.radians(lat_b_deg)
    d_phi = phi_b - phi_a
    d_lambda = math.radians(lon_b_deg - lon_a_deg)
    h = math.sin(d_phi / 2.0) ** 2 + math.cos(phi_a) * math.cos(phi_b) * math.sin(d_lambda / 2.0) ** 2
    return 2.0 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def distance_to_polygon_edge_m(latitude_deg: float, longitude_deg: float, polygon: Polygon) -> float:
    """Approximate distance from the point to the nearest edge of ``polygon``, metres (NaN for no polygon).

    Uses a local equirectangular projection around the point, good to a fraction of a percent over tens of km.
    """
    if len(polygon) < 2 or not (math.isfinite(latitude_deg) and math.isfinite(longitude_deg)):
        return math.nan
    cos_lat = math.cos(math.radians(latitude_deg))
    scale = math.radians(1.0) * EARTH_RADIUS_M

    def local(vertex: tuple[float, float]) -> tuple[float, float]:
        lat, lon = vertex
        return (wrap_longitude_deg(lon, longitude_deg) - longitude_deg) * cos_lat * scale, (lat - latitude_deg) * scale

    best = math.inf
    count = len(polygon)
    for i in range(count):
        ax, ay = local(polygon[i])
        bx, by = local(polygon[(i + 1) % count])
        dx, dy = bx - ax, by - ay
        length_sq = dx * dx + dy * dy
        t = 0.0 if length_sq == 0.0 else max(0.0, min(1.0, -(ax * dx + ay * dy) / length_sq))
        best = min(best, math.hypot(ax + t * dx, ay + t * dy))
    return best


def seconds_of_day(utc_time_s: float) -> float:
    """Seconds since UTC midnight for a Unix time (NaN in, NaN out)."""
    if not math.isfinite(utc_time_s):
        return math.nan
    return utc_time_s % SECONDS_PER_DAY


def in_daily_window(utc_time_s: float, start_s: float, end_s: float) -> bool:
    """True when the UTC time of day lies in ``[start_s, end_s]`` seconds after midnight.  A window whose start
    is after its end wraps over midnight (e.g. 79200..7200 is 22:00 to 02:00)."""
    tod = seconds_of_day(utc_time_s)
    if not math.isfinite(tod):
        return False
    if start_s <= end_s:
        return start_s <= tod <= end_s
    return tod >= start_s or tod <= end_s
