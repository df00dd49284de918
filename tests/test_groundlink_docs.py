"""docs/ground.md: its generated command and telemetry tables match the declaration tables."""

from __future__ import annotations

from pathlib import Path

from flightsw.groundlink import COMMANDS, TELEMETRY
from flightsw.groundlink.docs import ground_doc_is_current, render_command_table, render_ground_doc

GROUND_DOC = Path(__file__).resolve().parent.parent / "docs" / "ground.md"


def test_ground_doc_tables_are_current():
    assert ground_doc_is_current(GROUND_DOC), "regenerate: python -m flightsw.groundlink.docs docs/ground.md"


def test_command_table_has_every_command_once():
    table = render_command_table()
    for spec in COMMANDS:
        assert table.count(f"| {spec.command} |") == 1
    assert len(table.strip().splitlines()) == len(COMMANDS) + 2


def test_every_streamed_message_is_documented():
    text = GROUND_DOC.read_text(encoding="utf-8")
    for entry in TELEMETRY:
        assert f"`{entry.name}`" in text


def test_stale_section_is_detected():
    stale = "<!-- commands:begin -->\nold\n<!-- commands:end -->\n<!-- telemetry:begin -->\n<!-- telemetry:end -->\n"
    rendered = render_ground_doc(stale)
    assert rendered != stale and "old" not in rendered and "DO_FLIGHTTERMINATION" in rendered
