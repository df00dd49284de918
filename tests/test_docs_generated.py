"""The generated docs in docs/ match what the declarations render (regenerate with ``flightsw docs``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from flightsw.dictionary import all_param_decls
from flightsw.docs_gen import (FLIGHT_RULES_FILE, PARAMETERS_FILE, render_flight_rules, render_parameters,
                               rendered_docs, write_docs)
from flightsw.flightlogic import FLIGHT_PARAMS
from flightsw.params import ParamDecl

DOCS = Path(__file__).resolve().parent.parent / "docs"


@pytest.mark.parametrize("name", [FLIGHT_RULES_FILE, PARAMETERS_FILE])
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
    assert sorted(write_docs(tmp_path)) == sorted([FLIGHT_RULES_FILE, PARAMETERS_FILE])
    assert write_docs(tmp_path, check=True) == []
    (tmp_path / PARAMETERS_FILE).write_text("old", encoding="utf-8")
    assert write_docs(tmp_path, check=True) == [PARAMETERS_FILE]
    assert (tmp_path / PARAMETERS_FILE).read_text(encoding="utf-8") == "old"
