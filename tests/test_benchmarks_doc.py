"""docs/benchmarks.md gives each benchmark's defaults: they are the scripts' own, and `make benchmarks` runs them so."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "benchmarks.md"
SCRIPTS = sorted(path.name for path in (ROOT / "benchmarks").glob("*.py"))
OPTION = re.compile(r"--([a-z][a-z-]*) ([-\w.]+)")


def argparse_defaults(path: Path) -> dict[str, object]:
    """``--option`` -> default of every ``add_argument`` call in ``path``; a script that takes its ``main`` from a
    module of this repository (``from hil.killtest import main``) is read through to that module."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    defaults = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "add_argument" and node.args:
            name = node.args[0].value if isinstance(node.args[0], ast.Constant) else None
            default = next((k.value for k in node.keywords if k.arg == "default"), None)
            if isinstance(name, str) and isinstance(default, ast.Constant):
                defaults[name] = default.value
        if isinstance(node, ast.ImportFrom) and any(alias.name == "main" for alias in node.names):
            module = ROOT / Path(*node.module.split(".")).with_suffix(".py")
            if module.exists():
                defaults.update(argparse_defaults(module))
    return defaults


def doc_rows() -> dict[str, str]:
    rows = {}
    for line in DOC.read_text(encoding="utf-8").splitlines():
        match = re.match(r"\| `(\w+\.py)` \|", line)
        if match:
            rows[match.group(1)] = line
    return rows


def test_every_benchmark_script_has_a_row():
    assert sorted(doc_rows()) == SCRIPTS


@pytest.mark.parametrize("script", SCRIPTS)
def test_the_defaults_the_doc_gives_are_the_scripts(script):
    """Every numeric option that sets how much is measured is given in the row, with the script's default."""
    row = doc_rows()[script]
    defaults = argparse_defaults(ROOT / "benchmarks" / script)
    sizes = {name for name, value in defaults.items() if isinstance(value, (int, float)) and name != "--seed"}
    assert sizes <= {f"--{option}" for option, _ in OPTION.findall(row)}, f"{script}: give {sorted(sizes)}"
    for option, value in OPTION.findall(row):
        assert f"--{option}" in defaults, f"{script} has no option --{option}"
        assert float(value) == float(defaults[f"--{option}"]), f"{script} --{option}: doc {value}, " \
                                                               f"script {defaults[f'--{option}']}"


def test_make_benchmarks_runs_the_scripts_with_their_defaults():
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    for script in SCRIPTS:
        [line] = [line for line in makefile.splitlines() if f"benchmarks/{script}" in line]
        defaults = argparse_defaults(ROOT / "benchmarks" / script)
        for option, value in OPTION.findall(line):
            assert float(value) == float(defaults[f"--{option}"]), f"Makefile: {script} --{option} {value}"


def test_the_check_would_notice_a_wrong_default():
    defaults = argparse_defaults(ROOT / "benchmarks" / "command_latency.py")
    assert defaults["--commands"] == 200
    assert argparse_defaults(ROOT / "benchmarks" / "kill_test.py")["--kills"] == 100  # read through hil.killtest
