"""The generated docs in docs/ match what the declarations render (regenerate with ``flightsw docs``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from flightsw.config.docs import (CONFIGURATION_FILE, HARDWARE_FILE, load_wiring_board, render_wiring,
                                  rendered_sections, replace_section)
from flightsw.dictionary import all_param_decls
from flightsw.docs_gen import (FLIGHT_RULES_FILE, PARAMETERS_FILE, render_flight_rules, render_parameters,
                               rendered_docs, write_docs)
from flightsw.flightlogic import FLIGHT_PARAMS
from flightsw.params import ParamDecl

DOCS = Path(__file__).resolve().parent.parent / "docs"


@pytest.mark.parametrize("name", [FLIGHT_RULES_FILE, PARAMETERS_FILE, CONFIGURATION_FILE])
def test_committed_docs_are_up_to_date(name):
    path = DOCS / name
    assert path.exists(), f"{path} missing: run `flightsw docs`"
    assert path.read_text(encoding="utf-8") == rendered_docs()[name], f"{name} is stale: run `flightsw docs`"


def test_flight_rules_document_every_rule_parameter():
    text = render_flight_rules()
    for title in ("## Phases", "## Termination", "## Release", "## Float altitude control"):
        assert title in text
    for decl in FLIGHT_PARAMS:
        assert f"| `{decl.name}` |" in text


def test_parameters_doc_lists_every_parameter_in_protocol_order():
    text = render_parameters(all_param_decls())
    rows = [line for line in text.splitlines() if line.startswith("| ") and line[2].isdigit()]
    assert [row.split("|")[2].strip().strip("`") for row in rows] == [d.name for d in all_param_decls()]


def test_parameter_row_shows_unit_range_and_default():
    decl = ParamDecl("TEST_P", float, 1.5, 0.0, 10.0, "m/s", "a | piped description", group="g")
    row = render_parameters([decl]).splitlines()[-1]
    assert row == "| 0 | `TEST_P` | float | 1.5 | 0 | 10 | m/s | g | any | a \\| piped description |"


def test_write_docs_reports_only_stale_files(tmp_path):
    assert sorted(write_docs(tmp_path)) == sorted([FLIGHT_RULES_FILE, PARAMETERS_FILE, CONFIGURATION_FILE])
    assert write_docs(tmp_path, check=True) == []
    (tmp_path / PARAMETERS_FILE).write_text("old", encoding="utf-8")
    assert write_docs(tmp_path, check=True) == [PARAMETERS_FILE]
    assert (tmp_path / PARAMETERS_FILE).read_text(encoding="utf-8") == "old"


def test_generated_sections_of_hand_written_docs_are_up_to_date():
    for file_name, sections in rendered_sections().items():
        text = (DOCS / file_name).read_text(encoding="utf-8")
        for name, content in sections.items():
            assert replace_section(text, name, content) == text, f"{file_name} section {name} is stale: run `flightsw docs`"


def test_wiring_table_lists_every_output_of_the_shipped_profile():
    board = load_wiring_board()
    table = render_wiring(board)
    for role in ("ballast_valve", "vent_valve", "release_arm", "release_fire", "cutdown_arm", "cutdown_fire"):
        config = getattr(board.outputs, role)
        assert f"| `{role}` | {config.pin} |" in table
    assert f"{board.barometers[0].address:#04x}" in table


def test_write_docs_updates_only_the_marked_section_of_an_existing_hand_written_doc(tmp_path):
    write_docs(tmp_path)
    path = tmp_path / HARDWARE_FILE
    path.write_text("# Hand-written\n\n<!-- wiring:begin -->\nold table\n<!-- wiring:end -->\n\nmore prose\n",
                    encoding="utf-8")
    assert write_docs(tmp_path, check=True) == [HARDWARE_FILE]
    assert "old table" in path.read_text(encoding="utf-8")
    assert write_docs(tmp_path) == [HARDWARE_FILE]
    text = path.read_text(encoding="utf-8")
    assert text.startswith("# Hand-written\n\n<!-- wiring:begin -->\n") and text.endswith("<!-- wiring:end -->\n\nmore prose\n")
    assert "old table" not in text and "| `cutdown_fire` |" in text
    assert write_docs(tmp_path, check=True) == []


def test_replace_section_refuses_missing_markers():
    with pytest.raises(ValueError):
        replace_section("no markers here", "wiring", "table")


def test_configuration_doc_has_a_row_for_every_field_of_every_config_file():
    import dataclasses
    import typing

    from flightsw.config.board import BoardConfig
    from flightsw.config.docs import render_configuration
    from flightsw.config.flight import _FlightFile
    from hil.scenario import Scenario

    text = render_configuration()
    keys = {line.split("|")[1].strip().strip("`") for line in text.splitlines() if line.startswith("| `")}
    last_parts = {key.rsplit(".", 1)[-1] for key in keys}
    seen: set[type] = set()

    def walk(cls: type) -> None:
        if cls in seen:
            return
        seen.add(cls)
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            if f.name in ("source", "path"):
                continue
            assert f.name in last_parts, f"{cls.__name__}.{f.name} missing from configuration.md"
            for arg in (hints[f.name], *typing.get_args(hints[f.name])):
                if dataclasses.is_dataclass(arg):
                    walk(arg)

    for cls in (_FlightFile, BoardConfig, Scenario):
        walk(cls)
    assert "board" in keys and "link.endpoints[].baud" in keys and "world.wind.layers[].speed_mps" in keys
    assert "| `storage.max_log_file_mb` | float | 16 | 0.01 to 4096 | MiB | rotate a log file at this size |" in text
    assert "| `barometers[].address` | int | required | 0x03 to 0x77 |" in text


def test_configuration_renderer_does_not_import_hil_at_module_level():
    import subprocess
    import sys

    code = "import sys, flightsw.config.docs, flightsw.docs_gen; assert 'hil' not in sys.modules, 'hil imported'"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_flightsw_docs_regenerates_the_ground_doc_tables_and_check_reports_them_stale(tmp_path):
    """`flightsw docs` (and `make docs`) keep docs/ground.md's generated tables current, like the other docs."""
    import shutil
    import subprocess
    import sys

    for path in DOCS.glob("*.md"):
        shutil.copy(path, tmp_path / path.name)
    ground = tmp_path / "ground.md"
    text = ground.read_text(encoding="utf-8")
    start = text.index("<!-- commands:begin -->\n") + len("<!-- commands:begin -->\n")
    ground.write_text(text[:start] + "| stale | table |\n" + text[text.index("<!-- commands:end -->"):],
                      encoding="utf-8")
    flightsw = [sys.executable, "-m", "flightsw.cli", "docs", "--dir", str(tmp_path)]
    check = subprocess.run([*flightsw, "--check"], capture_output=True, text=True, timeout=120)
    assert check.returncode == 1 and "out of date" in check.stdout and "ground.md" in check.stdout, check.stdout
    assert "| stale | table |" in ground.read_text(encoding="utf-8")
    written = subprocess.run(flightsw, capture_output=True, text=True, timeout=120)
    assert written.returncode == 0 and "ground.md" in written.stdout
    assert ground.read_text(encoding="utf-8") == text
    assert subprocess.run([*flightsw, "--check"], capture_output=True, text=True, timeout=120).returncode == 0
