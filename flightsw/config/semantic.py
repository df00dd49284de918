"""Checks for values that are well-typed but wrong: polygons, network addresses, ground links.

Each check returns ``(relative key path, message)`` pairs, which the configuration dataclasses yield from their
``problems()`` methods; the loader reports each at the line and column of that key.

Polygons are checked the way the flight rules read them (:mod:`flightsw.geo`): ``[latitude_deg,
longitude_deg]`` vertices, implicitly closed, edges straight in latitude/longitude with longitudes unwrapped
around the first vertex.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Sequence

from flightsw.config.issues import clip
from flightsw.geo import point_in_polygon, wrap_longitude_deg

Problems = list[tuple[str, str]]
Polygon = Sequence[tuple[float, float]]

MAX_POLYGON_VERTICES = 256
_HOST_NAME = re.compile(r"(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                        r"(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*")


# ---------------------------------------------------------------- polygons


def polygon_problems(key: str, polygon: Polygon) -> Problems:
    """An empty polygon (none) or one of at least 3 vertices in range, with an area, whose edges do not cross."""
    if not polygon:
        return []
    problems = []
    if len(polygon) < 3:
        problems.append((key, f"a polygon needs at least 3 vertices, got {len(polygon)}; write [] for none"))
    for index, (latitude_deg, longitude_deg) in enumerate(polygon):
        if not -90.0 <= latitude_deg <= 90.0:
            problems.append((f"{key}[{index}][0]", f"latitude {clip(latitude_deg)} out of range: expected between "
                                                   "-90 and 90 deg (a vertex is [latitude_deg, longitude_deg])"))
        if not -180.0 <= longitude_deg <= 180.0:
            problems.append((f"{key}[{index}][1]", f"longitude {clip(longitude_deg)} out of range: expected "
                                                   "between -180 and 180 deg"))
    if problems:
        return problems
    points = _plane(polygon)
    for index in range(len(points)):
        if points[index] == points[index - 1]:
            return [(f"{key}[{index}]", f"vertex {index} repeats the vertex before it: remove it")]
    crossing = _first_crossing(points)
    if crossing is not None:
        first, second = crossing
        return [(f"{key}[{second}]", f"edge {second}-{(second + 1) % len(points)} crosses edge "
                                     f"{first}-{(first + 1) % len(points)}: the polygon intersects itself "
                                     "(list the vertices in order around its boundary)")]
    if all(_orientation(points[0], points[1], point) == 0 for point in points[2:]):
        return [(key, "the vertices lie on one line: the polygon has no area")]
    return []


def inside_problems(inner_key: str, inner: Polygon, outer_key: str, outer: Polygon) -> Problems:
    """``inner`` lies inside ``outer`` (both valid and not empty): every vertex inside, no edges crossing."""
    for index, (latitude_deg, longitude_deg) in enumerate(inner):
        if not point_in_polygon(latitude_deg, longitude_deg, outer):
            return [(f"{inner_key}[{index}]", f"vertex {index} of {inner_key} is outside {outer_key}: "
                                              f"{inner_key} must lie inside {outer_key}")]
    centre = outer[0][1]
    inner_points, outer_points = _plane(inner, centre), _plane(outer, centre)
    for i in range(len(inner_points)):
        a, b = inner_points[i], inner_points[(i + 1) % len(inner_points)]
        for j in range(len(outer_points)):
            if _segments_cross(a, b, outer_points[j], outer_points[(j + 1) % len(outer_points)]):
                return [(f"{inner_key}[{i}]", f"edge {i} of {inner_key} crosses {outer_key}: {inner_key} must "
                                              f"lie inside {outer_key}")]
    return []


def _plane(polygon: Polygon, centre_deg: float | None = None) -> list[tuple[float, float]]:
    """(x, y) = (longitude unwrapped around the first vertex or ``centre_deg``, latitude)."""
    centre = polygon[0][1] if centre_deg is None else centre_deg
    return [(wrap_longitude_deg(lon, centre), lat) for lat, lon in polygon]


def _orientation(a, b, c) -> int:
    value = (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])
    return (value > 0) - (value < 0)


def _within(a, b, c) -> bool:
    """``c`` (collinear with a-b) lies on the segment a-b."""
    return min(a[0], b[0]) <= c[0] <= max(a[0], b[0]) and min(a[1], b[1]) <= c[1] <= max(a[1], b[1])


def _segments_cross(a, b, c, d) -> bool:
    """The closed segments a-b and c-d have a point in common."""
    o1, o2, o3, o4 = _orientation(a, b, c), _orientation(a, b, d), _orientation(c, d, a), _orientation(c, d, b)
    if o1 != o2 and o3 != o4:
        return True
    return ((o1 == 0 and _within(a, b, c)) or (o2 == 0 and _within(a, b, d))
            or (o3 == 0 and _within(c, d, a)) or (o4 == 0 and _within(c, d, b)))


def _first_crossing(points: list[tuple[float, float]]) -> tuple[int, int] | None:
    """The first pair of edges (by index) that meet other than at their shared vertex."""
    count = len(points)
    edges = [(points[i], points[(i + 1) % count]) for i in range(count)]
    for j in range(1, count):
        c, d = edges[j]
        for i in range(j):
            a, b = edges[i]
            if j == i + 1:  # consecutive: they share b == c; they must not fold back along each other
                if _orientation(a, b, d) == 0 and _within(a, b, d) or _orientation(c, d, a) == 0 and _within(c, d, a):
                    return i, j
            elif i == 0 and j == count - 1:  # the closing edge shares vertex 0 with the first edge
                if _orientation(a, b, c) == 0 and _within(a, b, c) or _orientation(c, d, b) == 0 and _within(c, d, b):
                    return i, j
            elif _segments_cross(a, b, c, d):
                return i, j
    return None


# ---------------------------------------------------------------- addresses


def address_problem(text: str, *, listening: bool) -> str:
    """"" when ``text`` is a usable ``host:port`` (IPv4 or a host name) to listen on or send to, else why not."""
    host, separator, port_text = text.strip().rpartition(":")
    example = "0.0.0.0:14550" if listening else "192.168.1.10:14550"
    if not separator or not host:
        return f"expected 'host:port' (e.g. {example}), got {clip(text)}"
    lowest = 0 if listening else 1
    if not port_text.isdigit() or len(port_text) > 5 or not lowest <= int(port_text) <= 65535:
        return f"port {clip(port_text)} is not a number from {lowest} to 65535"
    if not _is_ipv4(host) and (re.fullmatch(r"[\d.]+", host) or not _HOST_NAME.fullmatch(host)):
        return f"host {clip(host)} is not an IPv4 address or a host name (IPv6 is not supported)"
    if not listening and host == "0.0.0.0":
        return "cannot send to 0.0.0.0: give the ground station's address"
    return ""


def is_loopback(address: str) -> bool:
    host = address.strip().rpartition(":")[0]
    return host == "localhost" or (_is_ipv4(host) and ipaddress.IPv4Address(host).is_loopback)


def _is_ipv4(host: str) -> bool:
    try:
        ipaddress.IPv4Address(host)
    except ValueError:
        return False
    return True


# ---------------------------------------------------------------- ground links


def endpoint_problems(endpoints: Sequence) -> Problems:
    """Each ground link complete and consistent with its kind; names, devices and signing link ids not shared;
    ``local`` only on links that cannot be reached over a network."""
    problems: Problems = []
    for index, link in enumerate(endpoints):
        problems += [(f"endpoints[{index}]{key}", message) for key, message in _link_problems(link)]
    for field, what, also in (("name", "link name", ""), ("device", "serial device", ""),
                              ("signing_link_id", "signing link id", ": give each link its own")):
        seen: dict = {}
        for index, link in enumerate(endpoints):
            value = getattr(link, field)
            if field == "device" and (link.kind != "serial" or not value):
                continue
            if value in seen:
                problems.append((f"endpoints[{index}].{field}",
                                 f"{what} {clip(value)} is also used by endpoints[{seen[value]}]{also}"))
            seen.setdefault(value, index)
    return problems


def _link_problems(link) -> Problems:
    if link.kind == "serial":
        problems = [(f".{key}", f"{key} is for udp links: remove it or set kind: udp")
                    for key in ("listen", "send_to") if getattr(link, key)]
        if not link.device:
            problems.append(("", "a serial link needs device, e.g. /dev/ttyUSB0"))
        elif not link.device.startswith("/"):
            problems.append((".device", f"expected a device path such as /dev/ttyUSB0, got {clip(link.device)}"))
        return problems
    problems = [(".device", "device is for serial links: remove it or set kind: serial")] if link.device else []
    addresses = [(key, getattr(link, key)) for key in ("listen", "send_to") if getattr(link, key)]
    if not addresses:
        problems.append(("", "a udp link needs listen or send_to ('host:port')"))
    for key, text in addresses:
        problem = address_problem(text, listening=key == "listen")
        if problem:
            problems.append((f".{key}", problem))
    if link.local and addresses and not all(is_loopback(text) for _, text in addresses):
        problems.append((".local", "a network link cannot be local (SETUP_SIGNING without a key is accepted on "
                                   "local links): mark only a wired serial link or a 127.0.0.1 address local"))
    return problems
