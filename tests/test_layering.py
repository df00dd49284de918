"""Layering: the flight software never imports the simulator.

``hil`` depends on ``flightsw``, never the other way round.  The one exception is the composition root: the CLI's
``hil`` subcommand imports ``hil`` lazily to fly the daemon on the simulated board.  Scenario files reach
``flightsw check-config`` and ``flightsw docs`` through the ``flightsw.file_kinds`` entry point that ``hil``
registers.
"""

from __future__ import annotations

import ast
import importlib.metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ALLOWED = {("flightsw/cli.py", "_cmd_hil")}  # (module, function) pairs that may import hil


def hil_imports(path: Path) -> list[tuple[int, str]]:
    """(line, enclosing function) of every import of ``hil`` or ``hil.*`` in a module."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []

    def visit(node: ast.AST, function: str) -> None:
        for child in ast.iter_child_nodes(node):
            name = child.name if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) else function
            modules = []
            if isinstance(child, ast.Import):
                modules = [alias.name for alias in child.names]
            elif isinstance(child, ast.ImportFrom) and child.level == 0 and child.module:
                modules = [child.module]
            if any(module == "hil" or module.startswith("hil.") for module in modules):
                found.append((child.lineno, function))
            visit(child, name)

    visit(tree, "<module>")
    return found


def test_no_flightsw_module_imports_hil_except_the_cli_hil_subcommand():
    offenders = []
    for path in sorted((ROOT / "flightsw").rglob("*.py")):
        relative = path.relative_to(ROOT).as_posix()
        for line, function in hil_imports(path):
            if (relative, function) not in ALLOWED:
                offenders.append(f"{relative}:{line} (in {function})")
    assert offenders == []


def test_the_scan_finds_a_hil_import(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("import os\n\ndef f():\n    from hil.scenario import load_scenario\nimport hil\n")
    assert hil_imports(module) == [(4, "f"), (5, "<module>")]


def test_hil_registers_its_scenarios_as_a_file_kind():
    [entry] = [e for e in importlib.metadata.entry_points(group="flightsw.file_kinds") if e.name == "scenario"]
    kind = entry.load()
    assert kind.name == "scenario" and {"world", "expect", "flight"} <= kind.marker_keys
