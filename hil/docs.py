"""The generated sections of ``docs/guides/scenarios.md``: every expectation kind, fault kind, operator command
and event name a scenario may use, rendered from their declarations so the guide cannot drift from the code.

* expectation kinds: ``hil.scenario.EXPECTATION_KINDS``, described by ``hil.expect.EXPECTATION_DOCS``;
* fault kinds: ``hil.scenario.FAULTS`` (each with its description);
* operator commands: ``hil.scenario.OPERATOR_COMMANDS``, with what ``hil.operator.OPERATOR_COMMANDS`` sends;
* event names: every ``event("name", "severity", ...)`` / ``_event(...)`` call in the daemon's source
  (``flightsw/``), found by reading it (:func:`daemon_events`), plus the names the HIL run adds itself.

The sections sit between ``<!-- name:begin -->`` and ``<!-- name:end -->`` markers; ``flightsw docs`` rewrites
them and ``flightsw docs --check`` reports them stale.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

GUIDE = "guides/scenarios.md"
FLIGHTSW_DIR = Path(__file__).resolve().parent.parent / "flightsw"

#: Event names the HIL run records besides the daemon's own.
RUN_EVENTS = {
    "operator": "the scripted operator sent a command (text: what it sent)",
    "statustext": "the operator heard a STATUSTEXT while listening after a command (text: the message)",
    "ack:<COMMAND>:<RESULT>": "the operator heard a COMMAND_ACK, e.g. `ack:DO_FLIGHTTERMINATION:ACCEPTED`",
}

_EVENT_METHODS = ("event", "_event")
_EVENT_RECORDS = ("Event",)  # the sequences' events: ``Event(name, severity, text)``


def daemon_events(source_dir: Path = FLIGHTSW_DIR) -> list[tuple[str, str, str]]:
    """``(name, severities, module)`` for every literal event name the daemon's code emits, sorted by name; a name
    emitted at several severities or from several modules lists them all (comma-separated)."""
    from flightsw.app import ACTUATOR_EVENTS

    found: dict[str, tuple[set[str], set[str]]] = {}
    for path in sorted(source_dir.rglob("*.py")):
        module = path.relative_to(source_dir.parent).as_posix()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Call) and node.args):
                continue
            name = node.args[0]
            called = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if called == "_emit" and isinstance(name, ast.Constant) and name.value in ACTUATOR_EVENTS:
                severity = ast.Constant(ACTUATOR_EVENTS[name.value])  # a notice the daemon forwards as an event
            elif called in _EVENT_METHODS + _EVENT_RECORDS and len(node.args) >= 2:
                severity = node.args[1]
            else:
                continue
            if isinstance(name, ast.Constant) and isinstance(name.value, str):
                severities, modules = found.setdefault(name.value, (set(), set()))
                branches = (severity.body, severity.orelse) if isinstance(severity, ast.IfExp) else (severity,)
                severities.update(b.value if isinstance(b, ast.Constant) else "varies" for b in branches)
                modules.add(module)
    return [(name, ", ".join(sorted(sev)), ", ".join(sorted(mods))) for name, (sev, mods) in sorted(found.items())]


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def render_expectations() -> str:
    from hil.expect import EXPECTATION_DOCS
    from hil.scenario import EXPECTATION_KINDS

    rows = [f"| `{kind}` | {_cell(EXPECTATION_DOCS.get(kind, 'UNDOCUMENTED'))} |" for kind in EXPECTATION_KINDS]
    return "\n".join(["| kind | passes when |", "|---|---|", *rows]) + "\n"


def render_faults() -> str:
    from hil.scenario import FAULTS, FAULT_KINDS

    rows = [f"| `{kind}` | {_cell(FAULTS[kind].doc)} |" for kind in FAULT_KINDS]
    return "\n".join(["| kind | what breaks |", "|---|---|", *rows]) + "\n"


def _mav_cmd_name(command: int) -> str:
    from pymavlink.dialects.v20 import common as mavlink

    names = [name for name, value in vars(mavlink).items() if name.startswith("MAV_CMD_") and value == command]
    return names[0] if names else str(command)


def render_operator_commands() -> str:
    from hil.operator import OPERATOR_COMMANDS as SENT, VALUE
    from hil.scenario import OPERATOR_COMMANDS

    rows = []
    for name in OPERATOR_COMMANDS:
        command, params, description = SENT.get(name, (None, (), "UNDOCUMENTED"))
        if command is None:
            message = "PARAM_SET"
        else:
            shown = ", ".join("`value`" if param == VALUE else f"{param:g}" for param in params)
            message = f"`{_mav_cmd_name(command)}` ({shown})"
        rows.append(f"| `{name}` | {message} | {_cell(description)} |")
    return "\n".join(["| command | sends (COMMAND_LONG params from param1) | asks for |", "|---|---|---|",
                      *rows]) + "\n"


def render_events() -> str:
    rows = [f"| `{name}` | {severities} | `{modules}` |" for name, severities, modules in daemon_events()]
    rows += [f"| `{name}` | - | HIL run: {_cell(text)} |" for name, text in RUN_EVENTS.items()]
    return "\n".join(["| event | severity | emitted by |", "|---|---|---|", *rows]) + "\n"


SECTIONS = {"scenario-expectations": render_expectations, "scenario-faults": render_faults,
            "scenario-operator": render_operator_commands, "scenario-events": render_events}


def render_guide(text: str) -> str:
    """``text`` with every generated section replaced by its current rendering (ValueError when markers miss)."""
    for name, render in SECTIONS.items():
        pattern = re.compile(rf"(<!-- {name}:begin -->\n)(.*?)(<!-- {name}:end -->)", re.DOTALL)
        if not pattern.search(text):
            raise ValueError(f"{GUIDE}: markers for the {name} section are missing")
        text = pattern.sub(lambda m, r=render: m.group(1) + r() + m.group(3), text)
    return text


#: What ``flightsw docs`` regenerates from this module (registered as an entry point in pyproject.toml).
GENERATED_GUIDE = (GUIDE, render_guide)
