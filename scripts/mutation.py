"""Mutation testing of the safety modules (`make mutation`; see docs/testing.md).

Each safety module is mutated by mutmut against the fast unit tests that cover it, in a copy of the source tree of
its own (``build/mutation/<module>/``), and the score is printed per module with every surviving mutant's diff.
The score counts the mutants the tests kill among the non-equivalent ones: mutants no input can tell apart from the
original are listed, each with its reason, in ``scripts/mutation_equivalents.toml``.

    python scripts/mutation.py                  # every module
    python scripts/mutation.py termination      # one or more modules by name
    python scripts/mutation.py --list           # the modules, what is mutated and the tests run
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "build" / "mutation"
EQUIVALENTS = ROOT / "scripts" / "mutation_equivalents.toml"
COPIED = ("flightsw", "hal", "hil", "config", "tests")
#: the bar of issue 22: at least this share of the non-equivalent mutants killed, per module
GOAL = 0.95


@dataclass(frozen=True)
class Module:
    name: str
    path: str
    tests: tuple[str, ...]
    #: the functions mutated (mutmut mutant-name patterns without the module prefix); empty: the whole module
    functions: tuple[str, ...] = ()

    @property
    def dotted(self) -> str:
        return self.path.removesuffix(".py").removesuffix("/__init__").replace("/", ".")

    def patterns(self) -> list[str]:
        return [f"{self.dotted}.{function}__mutmut_*" for function in self.functions] or [f"{self.dotted}.*"]


MODULES = (
    Module("termination", "flightsw/rules/termination.py",
           ("tests/test_rules_termination.py", "tests/test_termination_edges.py",
            "tests/test_termination_properties.py")),
    Module("dwell", "flightsw/rules/__init__.py", ("tests/test_rules_termination.py", "tests/test_rules_dwell.py")),
    Module("cutdown", "flightsw/rules/cutdown.py",
           ("tests/test_rules_cutdown.py", "tests/test_cutdown_edges.py", "tests/test_cutdown_properties.py")),
    Module("release", "flightsw/rules/release.py",
           ("tests/test_rules_release.py", "tests/test_release_edges.py", "tests/test_release_properties.py")),
    Module("altitude", "flightsw/rules/altitude.py", ("tests/test_rules_altitude.py", "tests/test_altitude_edges.py")),
    Module("actuators", "flightsw/actuators.py", ("tests/test_actuators.py", "tests/test_actuators_edges.py")),
    Module("journal", "flightsw/journal.py", ("tests/test_journal.py", "tests/test_journal_edges.py")),
    Module("state", "flightsw/state.py", ("tests/test_journal.py", "tests/test_state_merge.py"),
           ("x__check_*", "x__stream_key", "x_latch_problems", "x__short", "x__known", "x_merge_latches")),
    Module("store", "flightsw/store.py", ("tests/test_store.py", "tests/test_store_edges.py")),
    Module("signing", "flightsw/link/signing.py", ("tests/test_signing.py", "tests/test_signing_edges.py"),
           ("x_unix_to_signing_timestamp", "x_signature", "x_signature_fields", "x__block_fields",
            "x__is_signed_v2", "xǁSignatureVerifierǁ*", "xǁSigningClockǁ*")),
    Module("missiontime", "flightsw/missiontime.py", ("tests/test_missiontime.py", "tests/test_missiontime_edges.py")),
)

#: mutmut's exit codes of a mutant's test run (mutmut.stats.status_by_exit_code)
KILLED_CODES = {1, 3, 37}
TIMEOUT_CODES = {24, -24, 152, 255, 36}


def _pyproject(module: Module, tests: list[str]) -> str:
    """The copy's pyproject.toml: the project's own, with mutmut told what to mutate and which tests to run."""
    text = (ROOT / "pyproject.toml").read_text()
    text = text.split("[tool.pytest.ini_options]")[0]
    return text + (
        '[tool.pytest.ini_options]\ntestpaths = ["tests"]\n\n'
        "[tool.mutmut]\n"
        'source_paths = ["flightsw"]\n'
        'also_copy = ["hal", "hil", "config"]\n'
        f"only_mutate = [{json.dumps(module.path)}]\n"
        f"pytest_add_cli_args_test_selection = {json.dumps(tests)}\n"
        "use_git_change_detection = false\n"
    )


def _prepare(module: Module) -> Path:
    work = WORK / module.name
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in COPIED:
        shutil.copytree(ROOT / name, work / name, ignore=ignore)
    tests = [test for test in module.tests if (ROOT / test).exists()]
    (work / "pyproject.toml").write_text(_pyproject(module, tests))
    return work


def _mutmut(work: Path, *args: str, log=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mutmut", *args], cwd=work, text=True,
                          stdout=log or subprocess.PIPE, stderr=subprocess.STDOUT if log else subprocess.PIPE)


_DIFFS = """
import json, sys
from mutmut.mutation.diff_apply import get_diff_for_mutant
diffs = {}
for name in sys.argv[1:]:
    try:
        diffs[name] = get_diff_for_mutant(name)
    except Exception as error:  # a mutant mutmut can no longer show: say so, the rest of the report goes on
        diffs[name] = f"(no diff: {error!r})"
print(json.dumps(diffs))
"""


def _diffs(work: Path, names: list[str]) -> dict[str, str]:
    """Each mutant's diff (what ``mutmut show`` prints), in one process."""
    if not names:
        return {}
    done = subprocess.run([sys.executable, "-c", _DIFFS, *names], cwd=work, text=True, capture_output=True,
                          check=True)
    return json.loads(done.stdout)


def _exit_codes(work: Path, module: Module) -> dict[str, int | None]:
    meta = json.loads((work / "mutants" / (module.path + ".meta")).read_text())
    patterns = module.patterns()
    return {name: code for name, code in meta["exit_code_by_key"].items()
            if any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)}


def _squeezed(text: str) -> str:
    return " ".join(text.split())


def _added_lines(diff: str) -> list[str]:
    """The lines a mutant's diff adds, with runs of white space made one space."""
    return [_squeezed(line[1:]) for line in diff.splitlines() if line.startswith("+") and not line.startswith("+++")]


def load_equivalents() -> dict[str, dict]:
    """Mutant name -> {"change": the mutated line as the mutant has it, "reason": why no input tells it apart}."""
    if not EQUIVALENTS.exists():
        return {}
    entries = tomllib.loads(EQUIVALENTS.read_text()).get("equivalent", [])
    return {entry["mutant"]: entry for entry in entries}


def run_module(module: Module, max_children: int, equivalents: dict[str, dict], *, run: bool = True) -> dict:
    started = time.monotonic()
    work = WORK / module.name
    if run:
        work = _prepare(module)
        with open(work / "mutmut.log", "w") as log:
            _mutmut(work, "run", "--max-children", str(max_children), *module.patterns(), log=log)
    elapsed_s = time.monotonic() - started
    try:
        codes = _exit_codes(work, module)
    except FileNotFoundError:
        sys.exit(f"mutmut did not test {module.path}: see {work / 'mutmut.log'}")
    survivors, equivalent, stale, timeouts = [], [], [], []
    killed = 0
    diffs = _diffs(work, [name for name, code in codes.items() if code not in KILLED_CODES | TIMEOUT_CODES])
    for name, code in sorted(codes.items(), key=lambda item: _natural(item[0])):
        if code in KILLED_CODES:
            killed += 1
            continue
        if code in TIMEOUT_CODES:  # a mutant that never ends (an endless loop) is caught by any test run
            timeouts.append(name)
            killed += 1
            continue
        diff = diffs[name]
        entry = equivalents.get(name)
        if entry is not None:
            if _squeezed(entry["change"]) in _added_lines(diff):
                equivalent.append(name)
                continue
            stale.append(name)
        survivors.append((name, code, diff))
    considered = len(codes) - len(equivalent)
    return {"module": module, "total": len(codes), "killed": killed, "equivalent": equivalent, "stale": stale,
            "survivors": survivors, "timeouts": timeouts, "considered": considered,
            "score": killed / considered if considered else 1.0, "seconds": elapsed_s, "ran": run}


def _natural(name: str):
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def _seconds(result: dict) -> str:
    return f"{result['seconds']:>6.0f}s" if result["ran"] else "      -"


def report(results: list[dict]) -> bool:
    ok = True
    for result in results:
        for name, code, diff in result["survivors"]:
            why = {None: "not tested (the run stopped)", 5: "no test covers it", 33: "no test covers it"}.get(
                code, f"exit {code}")
            print(f"--- survived ({why}): {name}")
            print(diff)
        for name in result["stale"]:
            print(f"!!! {name} is listed as equivalent but its change is not the one listed: look at it again")
    print()
    print(f"{'module':<12} {'file':<32} {'mutants':>7} {'equiv':>5} {'killed':>6} {'survived':>8} {'score':>7} "
          f"{'time':>7}")
    for result in results:
        module = result["module"]
        score = result["score"]
        ok = ok and score >= GOAL and not result["stale"]
        print(f"{module.name:<12} {module.path:<32} {result['total']:>7} {len(result['equivalent']):>5} "
              f"{result['killed']:>6} {len(result['survivors']):>8} {score:>7.1%} {_seconds(result)}")
    total = sum(r["considered"] for r in results)
    killed = sum(r["killed"] for r in results)
    seconds = sum(r["seconds"] for r in results)
    if len(results) > 1 and total:
        print(f"{'all':<12} {'':<32} {sum(r['total'] for r in results):>7} "
              f"{sum(len(r['equivalent']) for r in results):>5} {killed:>6} "
              f"{sum(len(r['survivors']) for r in results):>8} {killed / total:>7.1%} "
              f"{f'{seconds:>6.0f}s' if any(r['ran'] for r in results) else '      -'}")
    print(f"score: killed / (mutants - equivalent); goal {GOAL:.0%} per module: {'met' if ok else 'NOT met'}")
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="*", help="module names (default: all)")
    parser.add_argument("--list", action="store_true", help="list the modules and exit")
    parser.add_argument("--report-only", action="store_true",
                        help="report the last run's results again (with the equivalents as they are now)")
    parser.add_argument("--max-children", type=int, default=os.cpu_count() or 1,
                        help="mutants tested at once (default: the number of cores)")
    args = parser.parse_args(argv)
    by_name = {module.name: module for module in MODULES}
    if args.list:
        for module in MODULES:
            what = ", ".join(module.functions) if module.functions else "the whole module"
            print(f"{module.name:<12} {module.path}: {what}\n{'':<13}tests: {' '.join(module.tests)}")
        return 0
    unknown = [name for name in args.modules if name not in by_name]
    if unknown:
        parser.error(f"unknown module(s) {', '.join(unknown)}; known: {', '.join(by_name)}")
    equivalents = load_equivalents()
    results = []
    for module in [by_name[name] for name in args.modules] or MODULES:
        print(f"{'mutating' if not args.report_only else 'the last run of'} {module.path} ...", flush=True)
        results.append(run_module(module, args.max_children, equivalents, run=not args.report_only))
    return 0 if report(results) else 1


if __name__ == "__main__":
    sys.exit(main())
