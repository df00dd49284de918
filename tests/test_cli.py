"""The ``flightsw`` board-level commands: ``check-config``, ``safe-outputs`` and ``docs --check``.

Most tests run the command in a subprocess (``python -m flightsw.cli``), as systemd and operators do.
``safe-outputs`` needs GPIO: the subprocess runs it with gpiozero's mock pin factory
(``GPIOZERO_PIN_FACTORY=mock``) and reports the final pin levels; one test also runs it in-process on a
``MockFactory`` whose pins a "dead process" left driven active.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from gpiozero import Device
from gpiozero.pins.mock import MockFactory

from flightsw import cli

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "config"
ERROR_LINE = re.compile(r"^error: (?P<file>.+?):(?P<line>\d+):(?P<column>\d+): (?P<key>\S+): (?P<message>.+)$")
OUTPUT_ROLES = ("ballast_valve", "vent_valve", "release_arm", "release_fire", "cutdown_arm", "cutdown_fire",
                "termination_heartbeat")


def run_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    environment = dict(os.environ)
    environment.update(env or {})
    return subprocess.run([sys.executable, "-m", "flightsw.cli", *args], capture_output=True, text=True,
                          cwd=ROOT, env=environment, timeout=120)


def errors_of(stderr: str) -> list[dict]:
    """Every ``error:`` line parsed; fails on a line that lacks file:line:col or a key path."""
    errors = []
    for line in stderr.splitlines():
        if not line.strip():
            continue
        match = ERROR_LINE.match(line)
        assert match, f"error line without file:line:col and key path: {line!r}"
        errors.append(match.groupdict())
    return errors


def find(errors: list[dict], file: Path, key: str) -> dict:
    hits = [e for e in errors if e["file"] == str(file) and e["key"] == key]
    assert hits, f"no error for {file.name} {key} in {errors}"
    return hits[0]


# ---------------------------------------------------------------- check-config


def test_check_config_accepts_the_shipped_configs():
    files = {CONFIG / "flight.yaml": "flight", CONFIG / "flight-hil.yaml": "flight",
             CONFIG / "boards" / "pi-balloon-hat.yaml": "board", CONFIG / "boards" / "hil.yaml": "board",
             CONFIG / "hil" / "nominal.yaml": "scenario"}
    result = run_cli("check-config", *map(str, files))
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    for path, kind in files.items():
        assert f"ok: {path} ({kind})" in result.stdout.splitlines()


BAD_BOARD = """\
name: bad-board
i2c_bus: 1
barometers:
  - {chip: ms5612, address: 0x77}
outputs:
  ballast_valve: {pin: 17}
  vent_valve: {pin: 27, colour: red}
  release_arm: {pin: 22}
  release_fire: {pin: 60, max_on_s: 8.0}
  cutdown_arm: {pin: 24}
  cutdown_fire: {pin: 25, max_on_s: 0}
"""

BAD_FLIGHT = """\
board: boards/bad.yaml
executive:
  rate_hz: 0
logging: {level: verbose}
"""

BAD_SCENARIO = """\
name: bad
world:
  balloon: {kind: latex, colour: red}
"""

INVALID_YAML = """\
board: boards/bad.yaml
executive: {rate_hz: 20
logging: {level: info}
"""


@pytest.fixture()
def bad_files(tmp_path: Path) -> dict[str, Path]:
    (tmp_path / "boards").mkdir()
    files = {"board": tmp_path / "boards" / "bad.yaml", "flight": tmp_path / "flight.yaml",
             "scenario": tmp_path / "scenario.yaml", "yaml": tmp_path / "broken.yaml"}
    files["board"].write_text(BAD_BOARD, encoding="utf-8")
    files["flight"].write_text(BAD_FLIGHT, encoding="utf-8")
    files["scenario"].write_text(BAD_SCENARIO, encoding="utf-8")
    files["yaml"].write_text(INVALID_YAML, encoding="utf-8")
    return files


def test_check_config_prints_every_error_with_position_and_key_path(bad_files):
    board, flight, scenario, broken = (bad_files[k] for k in ("board", "flight", "scenario", "yaml"))
    result = run_cli("check-config", str(board), str(flight), str(scenario), str(broken),
                     str(CONFIG / "flight.yaml"))
    assert result.returncode == 1
    assert f"ok: {CONFIG / 'flight.yaml'} (flight)" in result.stdout  # a good file among bad ones is still ok
    for path in (board, flight, scenario, broken):
        assert f"ok: {path}" not in result.stdout
    errors = errors_of(result.stderr)

    # The board profile on its own: a chip not in the choices, an unknown key, two values out of range.
    assert find(errors, board, "barometers[0].chip")["line"] == "4"
    unknown = find(errors, board, "outputs.vent_valve.colour")
    assert (unknown["line"], unknown["column"]) == ("7", "25") and "unknown key" in unknown["message"]
    pin = find(errors, board, "outputs.release_fire.pin")
    assert (pin["line"], pin["column"]) == ("9", "23") and "out of range" in pin["message"]
    assert "out of range" in find(errors, board, "outputs.cutdown_fire.max_on_s")["message"]

    # The flight config: its own errors and those of the board profile it names, each in its own file.
    rate = find(errors, flight, "executive.rate_hz")
    assert (rate["line"], rate["column"]) == ("3", "12")
    assert "expected one of" in find(errors, flight, "logging.level")["message"]
    board_errors_via_flight = [e for e in errors if e["file"] == str(board)]
    assert len(board_errors_via_flight) == 2 * 4  # the board's four errors, once for itself, once via the flight

    # The scenario: an unknown key deep in the world.
    colour = find(errors, scenario, "world.balloon.colour")
    assert (colour["line"], colour["column"]) == ("3", "26") and "unknown key" in colour["message"]

    # Invalid YAML: reported at the place the parser gave up, for the whole document.
    syntax = [e for e in errors if e["file"] == str(broken)]
    assert len(syntax) == 1 and syntax[0]["key"] == "<document>" and "invalid YAML" in syntax[0]["message"]
    assert int(syntax[0]["line"]) >= 2


def test_check_config_reports_a_missing_file(tmp_path):
    missing = tmp_path / "nowhere.yaml"
    result = run_cli("check-config", str(missing))
    assert result.returncode == 1
    [error] = errors_of(result.stderr)
    assert error["file"] == str(missing) and "cannot read file" in error["message"]


# ---------------------------------------------------------------- safe-outputs


ACTIVE_LOW_BOARD = """\
name: active-low
outputs:
  ballast_valve: {pin: 17, active_high: false}
  vent_valve: {pin: 27, active_high: true}
  release_arm: {pin: 22, active_high: false}
  release_fire: {pin: 23, active_high: false, max_on_s: 8.0}
  cutdown_arm: {pin: 24, active_high: true}
  cutdown_fire: {pin: 25, active_high: false, max_on_s: 8.0}
  termination_heartbeat: {pin: 5, active_high: false}
"""
ACTIVE_LOW_PINS = {17: False, 27: True, 22: False, 23: False, 24: True, 25: False, 5: False}  # pin -> active_high

# Runs `flightsw ARGS...` in-process on the mock pin factory that GPIOZERO_PIN_FACTORY selects, then prints
# the exit status, and every pin's function and level.
_MOCK_PINS_SCRIPT = textwrap.dedent("""\
    import json, sys
    from gpiozero import Device
    from flightsw import cli
    status = cli.main(sys.argv[1:])
    pins = {pin.info.name: [pin.function, bool(pin.state)] for pin in Device.pin_factory.pins.values()}
    print(json.dumps({"status": status, "factory": type(Device.pin_factory).__name__, "pins": pins}))
""")


def run_with_mock_pins(*argv: str) -> tuple[dict, str]:
    """``flightsw ARGV`` in a subprocess on mock pins: the report (exit status, pins) and what it printed."""
    environment = dict(os.environ, GPIOZERO_PIN_FACTORY="mock")
    result = subprocess.run([sys.executable, "-c", _MOCK_PINS_SCRIPT, *argv], capture_output=True,
                            text=True, cwd=ROOT, env=environment, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    *printed, report = result.stdout.strip().splitlines()
    return json.loads(report), "\n".join(printed)


def run_safe_outputs_with_mock_pins(config: Path) -> tuple[dict, str]:
    return run_with_mock_pins("safe-outputs", "--config", str(config))


def test_safe_outputs_on_the_shipped_board_profile_leaves_every_line_low():
    report, printed = run_safe_outputs_with_mock_pins(CONFIG / "boards" / "pi-balloon-hat.yaml")
    assert report["status"] == 0 and report["factory"] == "MockFactory"
    assert printed.startswith("safe: ") and all(role in printed for role in OUTPUT_ROLES)
    for pin in (17, 27, 22, 23, 24, 25, 5):  # every output of the profile, all active high
        assert report["pins"][f"GPIO{pin}"][1] is False, pin
    assert "GPIO6" not in report["pins"]  # the separation-switch input is not touched


def test_safe_outputs_through_a_flight_config_drives_active_low_lines_high(tmp_path):
    (tmp_path / "boards").mkdir()
    (tmp_path / "boards" / "active-low.yaml").write_text(ACTIVE_LOW_BOARD, encoding="utf-8")
    flight = tmp_path / "flight.yaml"
    flight.write_text("board: boards/active-low.yaml\n", encoding="utf-8")
    report, printed = run_safe_outputs_with_mock_pins(flight)
    assert report["status"] == 0 and printed.startswith("safe: ")
    for pin, active_high in ACTIVE_LOW_PINS.items():
        function, level = report["pins"][f"GPIO{pin}"]
        assert level is (not active_high), f"GPIO{pin} left {'high' if level else 'low'}"
        assert function == "input"  # released after being driven inactive


def run_on_lines_left_active(argv: list[str]) -> tuple[int, dict[int, bool]]:
    """``flightsw ARGV`` in-process on mock pins that a killed daemon left driven active: the exit status and
    every ACTIVE_LOW_PINS pin's level after it."""
    factory = MockFactory()
    for pin, active_high in ACTIVE_LOW_PINS.items():
        mock_pin = factory.pin(pin)
        mock_pin.function = "output"
        mock_pin.state = active_high
    previous = Device.pin_factory
    Device.pin_factory = factory
    try:
        status = cli.main(argv)
        return status, {pin: bool(factory.pin(pin).state) for pin in ACTIVE_LOW_PINS}
    finally:
        Device.pin_factory = previous
        factory.close()


def test_safe_outputs_in_process_makes_lines_a_dead_process_left_active_safe(tmp_path, capsys):
    board = tmp_path / "active-low.yaml"
    board.write_text(ACTIVE_LOW_BOARD, encoding="utf-8")
    status, levels = run_on_lines_left_active(["safe-outputs", "--config", str(board)])
    assert status == 0
    assert capsys.readouterr().out.startswith("safe: ")
    for pin, active_high in ACTIVE_LOW_PINS.items():
        assert levels[pin] is (not active_high), pin


def test_safe_outputs_refuses_an_invalid_config_with_its_errors(tmp_path):
    board = tmp_path / "board.yaml"
    board.write_text(ACTIVE_LOW_BOARD.replace("pin: 23", "pin: 99"), encoding="utf-8")
    result = run_cli("safe-outputs", "--config", str(board), env={"GPIOZERO_PIN_FACTORY": "mock"})
    assert result.returncode == 2
    [error] = errors_of(result.stderr)
    assert error["key"] == "outputs.release_fire.pin" and error["line"] == "6"


# ---------------------------------------------------------------- docs


def test_docs_check_passes_on_the_committed_docs():
    result = run_cli("docs", "--check")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""


def test_docs_check_reports_stale_docs_without_writing(tmp_path):
    result = run_cli("docs", "--check", "--dir", str(tmp_path))
    assert result.returncode == 1
    assert "out of date" in result.stdout and "configuration.md" in result.stdout
    assert list(tmp_path.iterdir()) == []


def _run_config(tmp_path: Path, key_mode: int) -> Path:
    key = tmp_path / "signing.key"
    key.write_bytes(os.urandom(32))
    key.chmod(key_mode)
    flight = tmp_path / "flight.yaml"
    flight.write_text(textwrap.dedent(f"""\
        board: {ROOT / 'config' / 'boards' / 'pi-balloon-hat.yaml'}
        storage: {{state_dir: {tmp_path / 'state'}, log_dir: {tmp_path / 'logs'}}}
        link:
          signing: {{key_file: {key}}}
          endpoints: [{{name: bench, kind: udp, listen: "127.0.0.1:0"}}]
        """))
    return flight


def test_run_on_a_board_without_its_chips_flies_and_stops_cleanly_on_sigterm(tmp_path):
    """The daemon on the real HAL with mock pins and no I2C bus or GPS: missing hardware is unhealthy data, not a
    crash; SIGTERM stops it with exit 0 after the journal and the recorder were written."""
    import signal
    import time

    flight = _run_config(tmp_path, 0o600)
    environment = dict(os.environ, GPIOZERO_PIN_FACTORY="mock")
    daemon = subprocess.Popen([sys.executable, "-m", "flightsw.cli", "run", "--config", str(flight)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=environment)
    time.sleep(3.0)
    daemon.send_signal(signal.SIGTERM)
    output, _ = daemon.communicate(timeout=20)
    assert daemon.returncode == 0, output
    assert '"event": "boot"' in output and "stop_requested" in output
    assert (tmp_path / "state" / "state-a.json").exists() and (tmp_path / "state" / "state-b.json").exists()
    assert list((tmp_path / "logs").glob("flight-*.tlog"))


def test_run_refuses_a_key_file_others_can_read(tmp_path):
    flight = _run_config(tmp_path, 0o644)
    result = run_cli("run", "--config", str(flight), env={"GPIOZERO_PIN_FACTORY": "mock"})
    assert result.returncode == 2
    [error] = errors_of(result.stderr)
    assert (error["file"], error["line"], error["key"]) == (str(flight), "4", "link.signing.key_file")
