"""Values that are well-typed but wrong are refused at their line and column: polygons, the launch box against the
geofence, addresses, ground links, serial devices, pins, and parameter values a float32 cannot carry."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from flightsw.config.flight import load_flight_config
from flightsw.config.loader import ConfigError
from flightsw.config.semantic import address_problem, polygon_problems

ROOT = Path(__file__).resolve().parent.parent
BOARD = ROOT / "config" / "boards" / "pi-balloon-hat.yaml"
SQUARE = [[41.5, -108.0], [41.5, -101.0], [36.5, -101.0], [36.5, -108.0]]


def load(tmp_path: Path, body: str):
    path = tmp_path / "flight.yaml"
    path.write_text(f"board: {BOARD}\n" + textwrap.dedent(body))
    return load_flight_config(path)


def issues(tmp_path: Path, body: str) -> list:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, body)
    return caught.value.issues


def found(tmp_path: Path, body: str, key_path: str, words: str):
    hits = [i for i in issues(tmp_path, body) if i.key_path == key_path and words in i.message]
    assert hits, issues(tmp_path, body)
    return hits[0]


# ---------------------------------------------------------------- polygons


def test_the_reported_geofence_of_two_vertices_at_95_400_is_refused(tmp_path):
    problems = issues(tmp_path, "mission: {geofence: [[95, 400], [40, -100]]}\n")
    assert {(i.key_path, i.line, i.column) for i in problems} == {
        ("mission.geofence", 2, 21), ("mission.geofence[0][0]", 2, 23), ("mission.geofence[0][1]", 2, 27)}
    assert any("at least 3 vertices" in i.message for i in problems)


@pytest.mark.parametrize("polygon, key, words", [
    ([[0, 0], [1, 1], [0, 1], [1, 0]], "p[2]", "intersects itself"),  # a bow tie
    ([[0, 0], [0, 2], [2, 2], [2, 0], [1, 3]], "p[3]", "edge 3-4 crosses edge 1-2"),
    ([[0, 0], [0, 1], [0, 1], [1, 1]], "p[2]", "repeats the vertex before it"),
    ([[0, 0], [0, 2], [0, 1]], "p[1]", "intersects itself"),  # folds back on itself
    ([[0, 0], [1, 1], [2, 2], [3, 3]], "p[3]", "intersects itself"),
    ([[-90.5, 0], [0, 1], [1, 0]], "p[0][0]", "latitude -90.5 out of range"),
    ([[0, 180.5], [0, 1], [1, 0]], "p[0][1]", "longitude 180.5 out of range"),
])
def test_bad_polygons(polygon, key, words):
    problems = polygon_problems("p", [tuple(vertex) for vertex in polygon])
    assert any(k == key and words in message for k, message in problems), problems


@pytest.mark.parametrize("polygon", [
    [],
    [[0, 0], [0, 1], [1, 0]],
    SQUARE,
    [[10, 179], [10, -179], [0, -179], [0, 179]],  # straddles the antimeridian
    [[0, 0], [0, 4], [2, 2], [4, 4], [4, 0]],  # concave
])
def test_good_polygons(polygon):
    assert polygon_problems("p", [tuple(vertex) for vertex in polygon]) == []


def test_the_launch_box_must_lie_inside_the_geofence(tmp_path):
    outside = [[40.0, -110.0], [40.0, -103.0], [38.0, -103.0], [38.0, -110.0]]  # sticks out to the west
    issue = found(tmp_path, f"mission: {{launch_box: {outside}, geofence: {SQUARE}}}\n", "mission.launch_box[0]",
                  "must lie inside mission.geofence".replace("mission.", ""))
    assert issue.line == 2
    inside = [[40.0, -106.0], [40.0, -103.0], [38.0, -103.0], [38.0, -106.0]]
    assert load(tmp_path, f"mission: {{launch_box: {inside}, geofence: {SQUARE}}}\n").mission.geofence


def test_a_launch_box_whose_vertices_are_inside_but_an_edge_leaves_is_refused(tmp_path):
    notched = [[41.5, -108.0], [41.5, -101.0], [36.5, -101.0], [39.0, -104.5], [36.5, -108.0]]
    box = [[38.5, -107.5], [38.5, -101.5], [40.0, -101.5], [40.0, -107.5]]  # its bottom edge crosses the notch
    found(tmp_path, f"mission: {{launch_box: {box}, geofence: {notched}}}\n", "mission.launch_box[0]", "crosses")


def test_too_many_vertices_are_refused(tmp_path):
    ring = [[round(40 + 0.001 * i, 3), -100.0 + (i % 2) * 0.5] for i in range(300)]
    found(tmp_path, f"mission: {{geofence: {ring}}}\n", "mission.geofence", "number of items 300 out of range")


# ---------------------------------------------------------------- addresses and links


@pytest.mark.parametrize("text, listening, words", [
    ("0.0.0.0:14550", True, ""),
    ("127.0.0.1:0", True, ""),
    ("gcs.example.org:14550", False, ""),
    ("localhost:14550", False, ""),
    ("0.0.0.0:14550", False, "cannot send to 0.0.0.0"),
    ("127.0.0.1:0", False, "port '0' is not a number from 1"),
    ("14550", True, "expected 'host:port'"),
    (":14550", True, "expected 'host:port'"),
    ("host:", True, "port '' is not"),
    ("host:99999", True, "port '99999'"),
    ("1.2.3.999:14550", True, "not an IPv4 address or a host name"),
    ("[::1]:14550", True, "IPv6 is not supported"),
    ("bad_host!:14550", True, "not an IPv4 address"),
])
def test_addresses(text, listening, words):
    problem = address_problem(text, listening=listening)
    assert (words in problem) if words else problem == "", problem


@pytest.mark.parametrize("endpoint, key, words", [
    ("{name: a, kind: udp}", "link.endpoints[0]", "needs listen or send_to"),
    ("{name: a, kind: udp, send_to: nowhere}", "link.endpoints[0].send_to", "expected 'host:port'"),
    ("{name: a, kind: serial}", "link.endpoints[0]", "needs device"),
    ("{name: a, kind: serial, device: ttyUSB0}", "link.endpoints[0].device", "device path"),
    ("{name: a, kind: serial, device: /dev/ttyUSB0, listen: '0.0.0.0:1'}", "link.endpoints[0].listen",
     "for udp links"),
    ("{name: a, kind: udp, listen: '0.0.0.0:1', device: /dev/ttyUSB0}", "link.endpoints[0].device",
     "for serial links"),
    ("{name: a, kind: udp, listen: '0.0.0.0:14551', local: true}", "link.endpoints[0].local",
     "a network link cannot be local"),
    ("{name: a, kind: udp, send_to: '192.168.1.10:14550', local: true}", "link.endpoints[0].local",
     "a network link cannot be local"),
    ("{name: a, kind: serial, device: /dev/serial0}", "link.endpoints[0].device", "the board's GPS device"),
])
def test_bad_ground_links(tmp_path, endpoint, key, words):
    issue = found(tmp_path, f"link: {{endpoints: [{endpoint}]}}\n", key, words)
    assert issue.line == 2


def test_local_links_that_are_not_network_links_are_accepted(tmp_path):
    config = load(tmp_path, """\
        link:
          endpoints:
            - {name: usb, kind: serial, device: /dev/ttyACM0, local: true, signing_link_id: 1}
            - {name: loop, kind: udp, send_to: "127.0.0.1:14550", local: true, signing_link_id: 2}
        """)
    assert [link.local for link in config.link.endpoints] == [True, True]


@pytest.mark.parametrize("field, first, second, words", [
    ("name", "name: a", "name: a", "link name 'a' is also used by endpoints[0]"),
    ("device", "device: /dev/ttyUSB0", "device: /dev/ttyUSB0", "serial device '/dev/ttyUSB0' is also used"),
    ("signing_link_id", "signing_link_id: 4", "signing_link_id: 4", "signing link id 4 is also used"),
])
def test_links_share_no_name_device_or_signing_link_id(tmp_path, field, first, second, words):
    defaults = {"name": "name: x", "device": "device: /dev/ttyUSB1", "signing_link_id": "signing_link_id: 1"}
    one = ", ".join([first] + [v for k, v in defaults.items() if k != field])
    other = ", ".join([second] + [v.replace("x", "y").replace("USB1", "USB2").replace(": 1", ": 2")
                                  for k, v in defaults.items() if k != field])
    issue = found(tmp_path, f"link:\n  endpoints:\n    - {{kind: serial, {one}}}\n    - {{kind: serial, {other}}}\n",
                  f"link.endpoints[1].{field}", words)
    assert issue.line == 5  # the second link


# ---------------------------------------------------------------- board profiles


def test_a_pin_used_by_an_output_and_the_separation_switch_is_refused_where_reused(tmp_path):
    board = tmp_path / "board.yaml"
    board.write_text(BOARD.read_text().replace("separation_switch: {pin: 6", "separation_switch: {pin: 17"))
    (tmp_path / "flight.yaml").write_text("board: board.yaml\n")
    with pytest.raises(ConfigError) as caught:
        load_flight_config(tmp_path / "flight.yaml")
    [issue] = caught.value.issues
    assert (Path(issue.file).name, issue.key_path) == ("board.yaml", "separation_switch.pin")
    assert issue.message == "GPIO pin 17 is also used by outputs.ballast_valve.pin"


def test_an_i2c_address_used_twice_is_refused_where_reused(tmp_path):
    board = tmp_path / "board.yaml"
    board.write_text(BOARD.read_text().replace("address: 0x40", "address: 0x76"))
    (tmp_path / "flight.yaml").write_text("board: board.yaml\n")
    with pytest.raises(ConfigError) as caught:
        load_flight_config(tmp_path / "flight.yaml")
    [issue] = caught.value.issues
    assert issue.key_path == "power_monitors[0].address" and "0x76 is also used by barometers[1]" in issue.message


# ---------------------------------------------------------------- parameter values


@pytest.mark.parametrize("override, words", [
    ("TRM_MAX_TRIES: 2.5", "2.5 is not a whole number"),
    ("TRM_EN_CEIL: 0.9999999", "is not a whole number"),
    ("ALT_TARGET: 1.0e+39", "not representable as a float32"),
    ("ALT_KP: 1.0e-40", "not representable as a float32"),
    ("ALT_TARGET: 99999", "outside"),
])
def test_parameter_overrides_must_fit_their_declaration_and_a_float32(tmp_path, override, words):
    name = override.split(":")[0]
    issue = found(tmp_path, f"params: {{{override}}}\n", f"params.{name}", words)
    assert not issue.message.startswith(name)  # the key path names it already
