"""``flightsw safe-outputs`` always works: it needs only the board profile, so a flight configuration broken in
any way (wrong values, invalid YAML, not even UTF-8) still names the board whose lines go safe.  The systemd
unit's ExecStopPost is run as written, on a broken configuration, and the lines end inactive.

Pins are gpiozero MockFactory pins, left driven active as a killed daemon would leave them.
"""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
from test_cli import ACTIVE_LOW_BOARD, ACTIVE_LOW_PINS, run_on_lines_left_active, run_with_mock_pins
from test_systemd_unit import INSTALLED_BINARY, UNIT, parse_unit, values

from flightsw import cli

GOOD_FLIGHT = "board: boards/active-low.yaml\nexecutive: {rate_hz: 20}\n"
BROKEN_FLIGHTS = {
    "a value out of range": GOOD_FLIGHT.replace("rate_hz: 20", "rate_hz: 0"),
    "a geofence of two vertices": GOOD_FLIGHT + "mission: {geofence: [[95, 400], [1, 2]]}\n",
    "invalid YAML": GOOD_FLIGHT.replace("rate_hz: 20}", "rate_hz: 20\nlogging: [\n"),
    "not UTF-8": GOOD_FLIGHT + "# caf\xe9\n",
    "an alias bomb": GOOD_FLIGHT + "a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n" + "".join(
        f"{c}: &{c} [{', '.join([f'*{p}'] * 10)}]\n" for p, c in zip("abcdefgh", "bcdefghi")),
}


def write_setup(directory: Path, flight_text: str) -> Path:
    (directory / "boards").mkdir(parents=True, exist_ok=True)
    (directory / "boards" / "active-low.yaml").write_text(ACTIVE_LOW_BOARD, encoding="utf-8")
    flight = directory / "flight.yaml"
    flight.write_bytes(flight_text.encode("latin-1"))
    return flight


@pytest.mark.parametrize("broken", sorted(BROKEN_FLIGHTS))
def test_a_broken_flight_config_still_makes_every_line_safe(tmp_path, capsys, broken):
    flight = write_setup(tmp_path, BROKEN_FLIGHTS[broken])
    assert cli.main(["check-config", str(flight)]) == 1  # the configuration really is broken
    status, levels = run_on_lines_left_active(["safe-outputs", "--config", str(flight)])
    assert status == 0
    assert capsys.readouterr().out.splitlines()[-1].startswith("safe: ")
    for pin, active_high in ACTIVE_LOW_PINS.items():
        assert levels[pin] is (not active_high), f"GPIO{pin} left active"


def test_the_board_profile_can_be_named_directly(tmp_path, capsys):
    write_setup(tmp_path, "this is not a flight configuration at all: [")
    status, levels = run_on_lines_left_active(["safe-outputs", "--board", str(tmp_path / "boards" /
                                                                                  "active-low.yaml")])
    assert status == 0
    assert all(levels[pin] is (not active_high) for pin, active_high in ACTIVE_LOW_PINS.items())


def test_without_a_board_line_it_says_so_with_the_location(tmp_path, capsys):
    flight = write_setup(tmp_path, "executive: {rate_hz: 20}\n")
    status, levels = run_on_lines_left_active(["safe-outputs", "--config", str(flight)])
    assert status == 2
    assert f"error: {flight}:1:1: board: required" in capsys.readouterr().err


def test_a_broken_board_profile_is_refused_with_its_errors(tmp_path, capsys):
    flight = write_setup(tmp_path, GOOD_FLIGHT)
    (tmp_path / "boards" / "active-low.yaml").write_text(ACTIVE_LOW_BOARD.replace("pin: 23", "pin: 99"))
    status, _ = run_on_lines_left_active(["safe-outputs", "--config", str(flight)])
    assert status == 2
    assert "active-low.yaml:6:" in capsys.readouterr().err


def test_the_systemd_stop_step_makes_the_lines_safe_with_a_broken_flight_config(tmp_path):
    """ExecStopPost exactly as the unit has it, with /etc/flightsw in a temporary folder holding a flight
    configuration that is not even valid YAML."""
    [stop_post] = values(parse_unit(UNIT.read_text()), "Service", "ExecStopPost")
    etc = tmp_path / "etc-flightsw"
    write_setup(etc, BROKEN_FLIGHTS["invalid YAML"])
    argv = [str(etc) + arg[len("/etc/flightsw"):] if arg.startswith("/etc/flightsw") else arg
            for arg in shlex.split(stop_post)]
    assert argv[0] == INSTALLED_BINARY and argv[1] == "safe-outputs"
    report, printed = run_with_mock_pins(*argv[1:])
    assert report["status"] == 0 and printed.startswith("safe: ")
    for pin, active_high in ACTIVE_LOW_PINS.items():
        assert report["pins"][f"GPIO{pin}"][1] is (not active_high), pin
