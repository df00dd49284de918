"""HIL scenarios are checked before anything flies: the files they name (each path relative to the file that
holds it), fault targets on the emulated board, the two new fault kinds, times within the scenario's length,
ISO 8601 UTC start times, conditions and expectations.  ``flightsw hil`` reports a broken scenario at its lines
and exits 2, never with a traceback."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from flightsw.config.check import check_file
from flightsw.config.loader import ConfigError
from hil.scenario import DEFAULT_BOARD, DEFAULT_FLIGHT, FaultSpec, load_scenario, utc_time_problem

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "config"


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return path


def scenario_issues(path: Path) -> list:
    with pytest.raises(ConfigError) as caught:
        load_scenario(path)
    return caught.value.issues


def one(path: Path, key_path: str, words: str):
    hits = [i for i in scenario_issues(path) if i.key_path == key_path and words in i.message]
    assert hits, scenario_issues(path)
    return hits[0]


# ---------------------------------------------------------------- files and paths


def test_a_scenario_in_my_own_folder_naming_the_flight_config_by_absolute_path_loads(tmp_path):
    """Issue 21: the flight configuration's board was looked for next to the scenario."""
    path = write(tmp_path / "mine", "s.yaml", f"name: mine\nflight: {CONFIG / 'flight-hil.yaml'}\n")
    scenario = load_scenario(path)
    assert Path(scenario.flight) == CONFIG / "flight-hil.yaml" and Path(scenario.board) == DEFAULT_BOARD
    assert check_file(path) == ([], "scenario")


def test_every_relative_path_resolves_against_the_file_that_holds_it(tmp_path):
    write(tmp_path / "flights" / "boards", "b.yaml", (CONFIG / "boards" / "hil.yaml").read_text())
    flight = write(tmp_path / "flights", "f.yaml", (CONFIG / "flight-hil.yaml").read_text().replace(
        "board: boards/hil.yaml", "board: boards/b.yaml"))
    write(tmp_path / "scenarios" / "boards", "mine.yaml", (CONFIG / "boards" / "hil.yaml").read_text())
    path = write(tmp_path / "scenarios", "s.yaml", "name: s\nflight: ../flights/f.yaml\nboard: boards/mine.yaml\n")
    scenario = load_scenario(path)
    assert Path(scenario.flight) == flight.resolve()
    assert Path(scenario.board) == (tmp_path / "scenarios" / "boards" / "mine.yaml").resolve()
    assert check_file(flight) == ([], "flight")  # the flight config's own board: next to the flight config


def test_without_flight_or_board_the_shipped_hil_files_are_used(tmp_path):
    scenario = load_scenario(write(tmp_path, "s.yaml", "name: s\n"))
    assert (Path(scenario.flight), Path(scenario.board)) == (DEFAULT_FLIGHT, DEFAULT_BOARD)


@pytest.mark.parametrize("key", ["flight", "board"])
def test_a_missing_file_is_reported_at_its_key(tmp_path, key):
    issue = one(write(tmp_path, "s.yaml", f"name: s\n{key}: nowhere.yaml\n"), key, "file not found")
    assert issue.line == 2 and str(tmp_path / "nowhere.yaml") in issue.message


def test_a_broken_flight_config_is_reported_in_its_own_file_and_at_the_flight_key(tmp_path):
    shutil.copytree(CONFIG / "boards", tmp_path / "boards")
    write(tmp_path, "flight.yaml", "board: boards/hil.yaml\nexecutive: {rate_hz: 0}\n")
    path = write(tmp_path / "hil", "s.yaml", "name: s\nflight: ../flight.yaml\n")
    found = {(Path(i.file).name, i.line, i.key_path) for i in scenario_issues(path)}
    assert found == {("s.yaml", 2, "flight"), ("flight.yaml", 2, "executive.rate_hz")}


# ---------------------------------------------------------------- faults


@pytest.mark.parametrize("fault, key, words", [
    ("{kind: baro_stuck, target: baro7}", "faults[0].target", "no barometer named 'baro7' on the board"),
    ("{kind: gps_loss, target: baro0}", "faults[0].target", "not used by a gps_loss fault"),
    ("{kind: gps_loss, magnitude: 3}", "faults[0].magnitude", "not used by a gps_loss fault"),
    ("{kind: balloon_burst, duration_s: 10}", "faults[0].duration_s", "not used by a balloon_burst fault"),
    ("{kind: brownout, at_s: 100, magnitude: 1.0e+300}", "faults[0].magnitude", "after the end of the scenario"),
    ("{kind: brownout, magnitude: -1}", "faults[0].magnitude", "out of range"),
    ("{kind: gps_jump, magnitude: 90}", "faults[0].magnitude", "out of range"),
    ("{kind: baro_drift, magnitude: 1.0e+300}", "faults[0].magnitude", "out of range"),
    ("{kind: i2c_nack, at_s: 3600.5}", "faults[0].at_s", "after the end of the scenario"),
    ("{kind: i2c_nack, duration_s: 7200}", "faults[0].duration_s", "longer than the scenario"),
    ("{kind: i2c_nack, when: 'altitude_m > nan'}", "faults[0].when", "not a finite number"),
    ("{kind: i2c_nack, when: 'height > 3'}", "faults[0].when", "unknown quantity 'height'"),
    ("{kind: line_write_error}", "faults[0].line", "expected an output line"),
    ("{kind: line_write_error, line: valve}", "faults[0].line", "expected an output line"),
    ("{kind: line_write_error, line: vent_valve, count: 0}", "faults[0].count", "out of range"),
    ("{kind: line_write_error, line: vent_valve, count: 1.5}", "faults[0].count", "expected an integer"),
    ("{kind: disk_full, count: 2}", "faults[0].count", "not used by a disk_full fault"),
    ("{kind: disk_full, line: vent_valve}", "faults[0].line", "not used by a disk_full fault"),
    ("{kind: power_cut}", "faults[0].kind", "expected one of"),
])
def test_bad_faults_are_refused_at_their_key(tmp_path, fault, key, words):
    issue = one(write(tmp_path, "s.yaml", f"name: s\nmax_duration_s: 3600\nfaults:\n  - {fault}\n"), key, words)
    assert issue.line == 4


def test_the_two_new_fault_kinds_load_with_their_fields(tmp_path):
    scenario = load_scenario(write(tmp_path, "s.yaml", """\
        name: s
        faults:
          - {kind: disk_full, at_s: 600}
          - {kind: disk_full, at_s: 900, duration_s: 120}
          - {kind: line_write_error, line: cutdown_fire, at_s: 60, count: 3}
          - {kind: line_write_error, line: termination_heartbeat}
        """))
    assert scenario.faults == (FaultSpec(kind="disk_full", at_s=600.0),
                               FaultSpec(kind="disk_full", at_s=900.0, duration_s=120.0),
                               FaultSpec(kind="line_write_error", line="cutdown_fire", at_s=60.0, count=3),
                               FaultSpec(kind="line_write_error", line="termination_heartbeat"))


def test_a_line_the_board_does_not_have_is_refused(tmp_path):
    heartbeat = "  termination_heartbeat: {pin: 5, active_high: true}\n"
    board = (CONFIG / "boards" / "hil.yaml").read_text().replace(heartbeat, "")
    write(tmp_path, "board.yaml", board)
    path = write(tmp_path, "s.yaml", "name: s\nboard: board.yaml\nfaults:\n"
                                     "  - {kind: line_write_error, line: termination_heartbeat}\n")
    assert one(path, "faults[0].line", "the board has no termination_heartbeat line").line == 4


# ---------------------------------------------------------------- times, operator, expectations


@pytest.mark.parametrize("text, ok", [
    ("2024-06-21T08:00:00Z", True), ("2024-06-21T08:00:00+00:00", True), ("2024-06-21T08:00:00", True),
    ("2024-06-21", True), ("2024-06-21T10:00:00+02:00", False), ("2024-13-01T00:00:00Z", False),
    ("yesterday", False), ("1800-01-01T00:00:00Z", False),
])
def test_start_times_are_iso_8601_utc(text, ok):
    assert (utc_time_problem(text) == "") is ok


def test_a_bad_start_time_is_refused_at_its_key(tmp_path):
    path = write(tmp_path, "s.yaml", "name: s\nworld:\n  launch: {start_utc: '2024-06-21T10:00:00+02:00'}\n")
    assert one(path, "world.launch.start_utc", "not UTC").line == 3


def test_an_unquoted_start_time_is_read_as_the_text_it_is(tmp_path):
    path = write(tmp_path, "s.yaml", "name: s\nworld:\n  launch: {start_utc: 2024-06-21T08:00:00Z}\n")
    assert load_scenario(path).world.launch.start_utc == "2024-06-21T08:00:00Z"


@pytest.mark.parametrize("body, key, words", [
    ("operator:\n  - {at_s: 99999, command: terminate}\n", "operator[0].at_s", "after the end of the scenario"),
    ("operator:\n  - {command: set_param, name: ALT_TARGT, value: 1}\n", "operator[0].name", "unknown parameter"),
    ("operator:\n  - {command: terminate, name: ALT_TARGET}\n", "operator[0].name", "name is for set_param"),
    ("expect:\n  - {kind: phase_reached, phase: ORBIT}\n", "expect[0].phase", "expected a phase"),
    ("expect:\n  - {kind: event}\n", "expect[0].name", "needs the event's name"),
    ("expect:\n  - {kind: max_altitude_m, min: 3, max: 2}\n", "expect[0].min", "above max"),
])
def test_operator_and_expectation_mistakes_are_refused(tmp_path, body, key, words):
    one(write(tmp_path, "s.yaml", "name: s\nmax_duration_s: 3600\n" + body), key, words)


def test_every_shipped_scenario_is_valid():
    for path in sorted((CONFIG / "hil").glob("*.yaml")):
        assert check_file(path) == ([], "scenario"), path


def test_flightsw_hil_reports_a_broken_scenario_and_exits_2(tmp_path):
    path = write(tmp_path, "s.yaml", "name: s\nfaults:\n  - {kind: brownout, at_s: 10, magnitude: 1.0e+300}\n"
                                     "  - {kind: baro_stuck, target: nope}\n")
    result = subprocess.run([sys.executable, "-m", "flightsw.cli", "hil", "--scenario", str(path), "--no-progress"],
                            capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"error: {path}:3:43: faults[0].magnitude: restart delay 1e+300 s is after the end" in result.stderr
