"""docs/guides/scenarios.md: its tables of expectation kinds, fault kinds, operator commands and event names are
generated from the declarations and kept current by `flightsw docs`."""

from __future__ import annotations

from pathlib import Path

from flightsw.docs_gen import write_docs
from hil.docs import daemon_events, render_guide
from hil.expect import EXPECTATION_DOCS
from hil.scenario import EXPECTATION_KINDS, FAULT_KINDS, OPERATOR_COMMANDS

DOCS = Path(__file__).resolve().parent.parent / "docs"
GUIDE = DOCS / "guides" / "scenarios.md"


def test_every_generated_doc_is_current():
    assert write_docs(DOCS, check=True) == [], "run `flightsw docs`"


def test_every_kind_command_and_event_is_in_the_guide():
    text = GUIDE.read_text(encoding="utf-8")
    assert "UNDOCUMENTED" not in text
    for name in (*EXPECTATION_KINDS, *FAULT_KINDS, *OPERATOR_COMMANDS):
        assert f"| `{name}` |" in text, name
    for name, _, _ in daemon_events():
        assert f"| `{name}` |" in text, name


def test_every_declared_kind_has_a_description_and_no_more():
    assert sorted(EXPECTATION_DOCS) == sorted(EXPECTATION_KINDS)
    from hil.scenario import FAULTS

    assert all(FAULTS[kind].doc for kind in FAULT_KINDS)


def test_event_names_are_read_from_the_daemons_source(tmp_path):
    source = tmp_path / "flightsw"
    source.mkdir()
    (source / "mod.py").write_text("def f(self, ok):\n"
                                   "    self.event('alpha', 'warning', 'text')\n"
                                   "    self._event('beta', 'info' if ok else 'error', 'text')\n"
                                   "    self._emit('pulse_start')\n    self._emit('output_error')\n"
                                   "    log.info('not_an_event', text='x')\n")
    assert daemon_events(source) == [("alpha", "warning", "flightsw/mod.py"),
                                     ("beta", "error, info", "flightsw/mod.py"),
                                     ("output_error", "error", "flightsw/mod.py")]
    names = [name for name, _, _ in daemon_events()]
    assert {"boot", "restart", "device", "preflight", "termination", "cutdown_fired", "release_fired"} <= set(names)


def test_a_stale_section_is_rewritten():
    text = GUIDE.read_text(encoding="utf-8")
    begin = "<!-- scenario-faults:begin -->\n"
    start, stop = text.index(begin) + len(begin), text.index("<!-- scenario-faults:end -->")
    stale = text[:start] + "| `old_fault` | gone |\n" + text[stop:]
    assert render_guide(stale) == text
