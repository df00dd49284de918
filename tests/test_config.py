"""Configuration: valid files load; every kind of mistake is reported with file:line:col and the key path."""

import textwrap
from pathlib import Path

import pytest

from flightsw.config.board import BoardConfig
from flightsw.config.flight import load_flight_config
from flightsw.config.loader import ConfigError, load_file

ROOT = Path(__file__).resolve().parent.parent
BOARD_OK = textwrap.dedent("""\
    name: test-board
    barometers:
      - {chip: ms5611, address: 0x77}
    outputs:
      ballast_valve: {pin: 17}
      vent_valve: {pin: 27}
      release_arm: {pin: 22}
      release_fire: {pin: 23, max_on_s: 8}
      cutdown_arm: {pin: 24}
      cutdown_fire: {pin: 25, max_on_s: 8}
    """)


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def issues_of(path: Path, cls=BoardConfig):
    with pytest.raises(ConfigError) as caught:
        load_file(path, cls)
    return caught.value.issues


@pytest.mark.parametrize("name", ["flight.yaml"])
def test_shipped_flight_config_loads(name):
    config = load_flight_config(ROOT / "config" / name)
    assert config.board.outputs.cutdown_fire.max_on_s == 8.0
    assert config.executive.rate_hz == 20


@pytest.mark.parametrize("board", sorted((ROOT / "config" / "boards").glob("*.yaml")))
def test_shipped_board_profiles_load(board):
    assert load_file(board, BoardConfig).outputs is not None


def test_valid_board_loads_with_defaults(tmp_path):
    board = load_file(write(tmp_path, "b.yaml", BOARD_OK), BoardConfig)
    assert board.i2c_bus == 1
    assert board.barometers[0].oversampling == 4096
    assert board.outputs.ballast_valve.active_high is True


@pytest.mark.parametrize("replace, expected_line, expected_col, key_path, words", [
    ("  - {chip: ms5612, address: 0x77}", 3, 12, "barometers[0].chip", "expected one of"),
    ("  - {chip: ms5611, address: 0x99}", 3, 29, "barometers[0].address", "out of range"),
    ("  - {chip: ms5611, address: seven}", 3, 29, "barometers[0].address", "expected an integer"),
    ("  - {chip: ms5611, adress: 0x77}", 3, 20, "barometers[0].adress", "unknown key"),
    ("  - {chip: ms5611}", 3, 5, "barometers[0].address", "required key is missing"),
])
def test_board_errors_name_file_line_column_and_key_path(tmp_path, replace, expected_line, expected_col, key_path,
                                                         words):
    text = BOARD_OK.replace("  - {chip: ms5611, address: 0x77}", replace)
    path = write(tmp_path, "board.yaml", text)
    issue = issues_of(path)[0]
    assert (issue.file, issue.line, issue.column, issue.key_path) == (str(path), expected_line, expected_col,
                                                                       key_path)
    assert words in issue.message
    assert str(issue).startswith(f"{path}:{expected_line}:{expected_col}: {key_path}: ")


def test_wrong_types_and_several_errors_are_all_reported(tmp_path):
    path = write(tmp_path, "b.yaml", BOARD_OK.replace("name: test-board", "name: [a, b]")
                 .replace("ballast_valve: {pin: 17}", "ballast_valve: {pin: 17, active_high: yes please}")
                 .replace("cutdown_fire: {pin: 25, max_on_s: 8}", "cutdown_fire: {pin: 25, max_on_s: -1}"))
    issues = issues_of(path)
    assert [(i.line, i.key_path) for i in issues] == [
        (1, "name"), (5, "outputs.ballast_valve.active_high"), (10, "outputs.cutdown_fire.max_on_s")]
    assert "expected a string" in issues[0].message
    assert "true or false" in issues[1].message
    assert "out of range" in issues[2].message


def test_cross_field_rule_duplicate_pin_is_reported(tmp_path):
    path = write(tmp_path, "b.yaml", BOARD_OK.replace("vent_valve: {pin: 27}", "vent_valve: {pin: 17}"))
    [issue] = issues_of(path)
    assert (issue.line, issue.key_path) == (6, "outputs.vent_valve.pin")  # where the pin is used the second time
    assert issue.message == "GPIO pin 17 is also used by outputs.ballast_valve.pin"


def test_cross_field_rule_duplicate_device_name_is_reported(tmp_path):
    # the second barometer is explicitly given the name the first one goes by by default
    path = write(tmp_path, "b.yaml", BOARD_OK.replace(
        "  - {chip: ms5611, address: 0x77}", "  - {chip: ms5611, address: 0x77}\n  - {chip: bmp388, address: 0x76, name: ms5611@0x77}"))
    [issue] = issues_of(path)
    assert (issue.line, issue.key_path) == (4, "barometers[1].name")
    assert issue.message == "device name ms5611@0x77 is also used by barometers[0].name"


def test_invalid_yaml_reports_position(tmp_path):
    path = write(tmp_path, "b.yaml", "name: x\nbarometers: [\n  {chip: ms5611\n")
    issues = issues_of(path)
    assert issues[0].file == str(path) and issues[0].line >= 2 and "invalid YAML" in issues[0].message


def test_missing_file_is_a_config_error(tmp_path):
    issues = issues_of(tmp_path / "absent.yaml")
    assert "cannot read file" in issues[0].message


def test_flight_config_errors_include_board_file_errors(tmp_path):
    write(tmp_path, "board.yaml", BOARD_OK.replace("pin: 23", "pin: 99"))
    flight = write(tmp_path, "flight.yaml", """\
        board: board.yaml
        executive: {rate_hz: 0}
        logging: {level: loud}
        """)
    with pytest.raises(ConfigError) as caught:
        load_flight_config(flight)
    found = {(Path(i.file).name, i.line, i.key_path) for i in caught.value.issues}
    assert found == {("board.yaml", 8, "outputs.release_fire.pin"), ("flight.yaml", 2, "executive.rate_hz"),
                     ("flight.yaml", 3, "logging.level")}


def test_flight_config_without_board_is_an_error(tmp_path):
    flight = write(tmp_path, "flight.yaml", "logging: {level: info}\n")
    with pytest.raises(ConfigError) as caught:
        load_flight_config(flight)
    assert caught.value.issues[0].key_path == "board"


@pytest.mark.parametrize("params, key, words", [
    ("ACT_BURN_MAX_S: 5\n  TRM_BURN_S: 6", "params.TRM_BURN_S", "TRM_BURN_S 6 is above ACT_BURN_MAX_S 5"),
    ("TRM_BURN_S: 7.5", "params.TRM_BURN_S", "cutdown_fire line's backstop (8 s"),  # the board's FIRE line
    ("REL_ALT_MIN: 33000", "params.REL_ALT_MIN", "REL_ALT_MIN 33000 is above REL_ALT_MAX 32000"),
])
def test_parameters_that_break_a_rule_between_them_are_located(tmp_path, params, key, words):
    """Issue 21: an inconsistent parameter set (a burn above its ceiling or its line's backstop) is refused in the
    configuration file too, with its location, not only from the ground."""
    text = (ROOT / "config" / "flight-hil.yaml").read_text()
    text = text.replace("board: boards/hil.yaml", f"board: {ROOT / 'config' / 'boards' / 'hil.yaml'}")
    text = text.replace("params:", f"params:\n  {params}", 1)
    path = tmp_path / "flight.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as raised:
        load_flight_config(path)
    [issue] = [issue for issue in raised.value.issues if issue.key_path == key]
    assert words in issue.message and issue.line > 0
    raising_both = text.replace("ACT_BURN_MAX_S: 5", "ACT_BURN_MAX_S: 7") if "ACT_BURN_MAX_S" in params else None
    if raising_both is not None:
        path.write_text(raising_both)
        assert load_flight_config(path).params["TRM_BURN_S"] == 6  # a ceiling raised with the value under it
