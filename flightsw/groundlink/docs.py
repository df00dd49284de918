"""The generated parts of ``docs/ground.md``: the command table and the telemetry table.

Both are rendered from the declaration tables (:data:`~flightsw.groundlink.command_table.COMMANDS`,
:data:`~flightsw.groundlink.telemetry.TELEMETRY`) and live in the hand-written document between marker comments
(``<!-- commands:begin -->`` ... ``<!-- commands:end -->``, likewise ``telemetry``).  :func:`update_ground_doc`
rewrites those sections in place; :func:`ground_doc_is_current` checks them.
"""

from __future__ import annotations

import re
from pathlib import Path

from pymavlink.dialects.v20 import common as mavlink

from flightsw.groundlink.command_table import COMMANDS
from flightsw.groundlink.telemetry import TELEMETRY

GROUND_DOC = "ground.md"


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _command_name(command: int) -> str:
    names = [name for name, value in vars(mavlink).items()
             if name.startswith("MAV_CMD_") and value == command and isinstance(value, int)]
    return names[0] if names else str(command)


def render_command_table() -> str:
    lines = ["| MAV_CMD | Id | Signature required | What it does |", "|---|---:|:---:|---|"]
    for spec in COMMANDS:
        lines.append(f"| `{_command_name(spec.command)}` | {spec.command} | "
                     f"{'yes' if spec.requires_signature else 'no'} | {_cell(spec.description)} |")
    return "\n".join(lines) + "\n"


def render_telemetry_table() -> str:
    lines = ["| Message | Id | Default rate | Contents |", "|---|---:|---:|---|"]
    for entry in TELEMETRY:
        rate = f"{entry.rate_hz:g} Hz" if entry.rate_hz > 0 else "on change / request"
        lines.append(f"| `{entry.name}` | {entry.msg_id} | {rate} | {_cell(entry.description)} |")
    return "\n".join(lines) + "\n"


SECTIONS = {"commands": render_command_table, "telemetry": render_telemetry_table}


def _pattern(name: str) -> re.Pattern[str]:
    return re.compile(rf"(<!-- {name}:begin -->\n)(.*?)(<!-- {name}:end -->)", re.DOTALL)


def render_ground_doc(text: str) -> str:
    """``text`` with every generated section replaced by its current rendering."""
    for name, render in SECTIONS.items():
        pattern = _pattern(name)
        if not pattern.search(text):
            raise ValueError(f"{GROUND_DOC}: markers for the {name} section are missing")
        text = pattern.sub(lambda m, r=render: m.group(1) + r() + m.group(3), text)
    return text


def ground_doc_is_current(path: Path | str) -> bool:
    text = Path(path).read_text(encoding="utf-8")
    return render_ground_doc(text) == text


def update_ground_doc(path: Path | str) -> bool:
    """Rewrite the generated sections of ``path``; returns True if the file changed."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    new = render_ground_doc(text)
    if new == text:
        return False
    path.write_text(new, encoding="utf-8")
    return True


if __name__ == "__main__":
    import sys

    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[2] / "docs" / GROUND_DOC
    print(f"{target}: {'updated' if update_ground_doc(target) else 'already current'}")
