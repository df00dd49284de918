"""Fuzz: hundreds of malformed files, made at test time from the shipped configs, boards and scenarios.

Every mutation below makes a file invalid by construction (a byte that is not UTF-8, a control character, a flow
collection cut short, a value of the wrong type or missing, a key given twice, a YAML tag or alias that cannot
stand there, an encoding other than UTF-8), so each mutant must be *refused*: a non-empty list of problems, each
located (``file:line:col: key: message`` with a line inside the file), no exception, within 2 s and 200 MB.
Most cases call the checker in-process (time and traced memory per case); a sample runs through the real
``flightsw check-config`` in a subprocess (exit status 1, no traceback, CPU time and peak RSS per process).
"""

from __future__ import annotations

import os
import random
import re
import shutil
import subprocess
import sys
import threading
import time
import tracemalloc
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from flightsw.config.check import check_file
from flightsw.config.source import compose_text

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "config"
SOURCES = sorted([*CONFIG.glob("*.yaml"), *(CONFIG / "boards").glob("*.yaml"), *(CONFIG / "hil").glob("*.yaml")])
MUTANTS_PER_SOURCE = 24
SUBPROCESS_SAMPLE = 12
MAX_SECONDS = 2.0
MAX_BYTES = 200 * 1024 * 1024
LOCATED = re.compile(r"^(?P<file>.+?):(?P<line>\d+):(?P<column>\d+): (?P<key>\S+): (?P<message>.+)$")

BAD_TAGGED_VALUES = ("!!float abc", "!!int 1.5", "!!bool maybe", "!!timestamp never", "!!binary AAAA",
                     "!custom 1", "!!null ''", "!!set {a: null}", '!!python/object/apply:os.system ["true"]',
                     "!!python/name:os.system ''")
BAD_BYTES = bytes([*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F])
ALIAS_BOMB = "".join(
    [f"lol0: &l0 [{', '.join(['lol'] * 9)}]\n"] +
    [f"lol{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]\n" for i in range(1, 9)])


@dataclass(frozen=True)
class Mutant:
    source: Path
    operator: str
    data: bytes


# ---------------------------------------------------------------- mutation operators (each makes the file invalid)


def _scalars(text: str) -> list[yaml.ScalarNode]:
    """The scalar value nodes (mapping values and sequence items, not keys) of a document, in order."""
    found: list[yaml.ScalarNode] = []

    def walk(node: yaml.Node) -> None:
        if isinstance(node, yaml.MappingNode):
            for _, value in node.value:
                walk(value)
        elif isinstance(node, yaml.SequenceNode):
            for item in node.value:
                walk(item)
        else:
            found.append(node)

    walk(compose_text(text, "source"))
    return found


def _mappings(text: str) -> list[yaml.MappingNode]:
    found: list[yaml.MappingNode] = []

    def walk(node: yaml.Node) -> None:
        if isinstance(node, yaml.MappingNode):
            found.append(node)
            for _, value in node.value:
                walk(value)
        elif isinstance(node, yaml.SequenceNode):
            for item in node.value:
                walk(item)

    walk(compose_text(text, "source"))
    return found


def _replace(text: str, node: yaml.Node, new: str) -> str:
    return text[:node.start_mark.index] + new + text[node.end_mark.index:]


def flip_high_bit(text: str, rng: random.Random) -> bytes:
    data = bytearray(text.encode("ascii"))
    data[rng.randrange(len(data))] |= 0x80  # a lone byte >= 0x80 between ASCII bytes is never UTF-8
    return bytes(data)


def insert_control_byte(text: str, rng: random.Random) -> bytes:
    data = text.encode("ascii")
    at = rng.randrange(len(data) + 1)
    return data[:at] + bytes([rng.choice(BAD_BYTES)]) + data[at:]


def truncate_inside_a_flow_collection(text: str, rng: random.Random) -> bytes:
    openings = [m.start() for m in re.finditer(r"[\[{]", text)]
    start = rng.choice(openings)
    depth, end = 0, start
    for end in range(start, len(text)):
        depth += {"[": 1, "{": 1, "]": -1, "}": -1}.get(text[end], 0)
        if depth == 0:
            break
    return text[:rng.randrange(start + 1, end + 1)].encode()  # cut after the bracket opens, before it closes


def swap_type(text: str, rng: random.Random) -> bytes:
    node = rng.choice(_scalars(text))
    kind = node.tag.rsplit(":", 1)[-1]
    new = {"int": '"fuzz"', "float": '"fuzz"', "bool": "2", "str": "[fuzz]"}.get(kind, "{fuzz: 1}")
    return _replace(text, node, new).encode()


def delete_value(text: str, rng: random.Random) -> bytes:
    return _replace(text, rng.choice(_scalars(text)), "").encode()


def duplicate_key(text: str, rng: random.Random) -> bytes:
    mapping = rng.choice([m for m in _mappings(text) if m.value])
    key = rng.choice(mapping.value)[0]
    at = key.start_mark.index
    copy = f"{key.value}: 0, " if mapping.flow_style else f"{key.value}: 0\n" + " " * key.start_mark.column
    return (text[:at] + copy + text[at:]).encode()


def bad_tag(text: str, rng: random.Random) -> bytes:
    return _replace(text, rng.choice(_scalars(text)), rng.choice(BAD_TAGGED_VALUES)).encode()


def bad_alias(text: str, rng: random.Random) -> bytes:
    choice = rng.randrange(3)
    if choice == 0:
        return _replace(text, rng.choice(_scalars(text)), "*no_such_anchor").encode()
    if choice == 1:
        return _replace(text, rng.choice(_scalars(text)), "&loop [1, *loop]").encode()
    return (ALIAS_BOMB + text).encode()


def other_encoding(text: str, rng: random.Random) -> bytes:
    choice = rng.randrange(6)
    if choice == 0:
        return text.encode("utf-16")
    if choice == 1:
        return text.encode("utf-16-le")  # no byte order mark: NUL bytes
    if choice == 2:
        return text.encode("utf-32")
    if choice == 3:
        return text.encode("cp500")  # EBCDIC
    word = rng.choice(["café", "Zürich", "“quoted”"])
    at = rng.randrange(len(text) + 1)
    return (text[:at] + word + text[at:]).encode("cp1252")  # Latin-1 / Windows-1252


OPERATORS = (flip_high_bit, insert_control_byte, truncate_inside_a_flow_collection, swap_type, delete_value,
             duplicate_key, bad_tag, bad_alias, other_encoding)


def mutants_of(source: Path) -> list[Mutant]:
    text = source.read_text(encoding="ascii")
    rng = random.Random(source.name)
    return [Mutant(source, operator.__name__, operator(text, rng))
            for operator in (OPERATORS[i % len(OPERATORS)] for i in range(MUTANTS_PER_SOURCE))]


# ---------------------------------------------------------------- checking


@pytest.fixture(scope="module")
def config_copy(tmp_path_factory) -> Path:
    """A copy of config/ so mutants sit next to the files they name (relative paths resolve as in the original)."""
    copy = tmp_path_factory.mktemp("fuzz") / "config"
    shutil.copytree(CONFIG, copy)
    return copy


def write_mutant(config_copy: Path, mutant: Mutant, index: int) -> Path:
    folder = config_copy / mutant.source.parent.relative_to(CONFIG)
    path = folder / f"mutant-{mutant.source.stem}-{index:02d}-{mutant.operator}.yaml"
    path.write_bytes(mutant.data)
    return path


def assert_refused_with_located_problems(path: Path, lines: list[str], data: bytes) -> None:
    assert lines, f"{path.name}: accepted (exit 0) although malformed"
    line_count = data.count(b"\n") + 2
    mine = []
    for text in lines:
        match = LOCATED.match(text)
        assert match, f"{path.name}: problem without file:line:col and key path: {text!r}"
        assert "internal error" not in text and "Traceback" not in text, text
        if match["file"] == str(path):
            mine.append(match)
    assert mine, f"{path.name}: no problem reported in the mutated file: {lines}"
    assert all(1 <= int(match["line"]) <= line_count for match in mine), lines


def test_at_least_500_malformed_files_with_every_kind_of_mutation():
    mutants = [mutant for source in SOURCES for mutant in mutants_of(source)]
    assert len(mutants) >= 500
    assert {mutant.operator for mutant in mutants} == {operator.__name__ for operator in OPERATORS}
    assert len({mutant.data for mutant in mutants}) > 0.95 * len(mutants)  # few duplicates
    kinds = {source.parent.name for source in SOURCES}
    assert kinds == {"config", "boards", "hil"}


@pytest.mark.parametrize("source", SOURCES, ids=lambda path: f"{path.parent.name}/{path.name}")
def test_every_mutant_is_refused_in_process_located_fast_and_small(source, config_copy):
    tracemalloc.start()
    try:
        for index, mutant in enumerate(mutants_of(source)):
            path = write_mutant(config_copy, mutant, index)
            tracemalloc.reset_peak()
            started = time.perf_counter()
            issues, kind = check_file(path)
            elapsed_s = time.perf_counter() - started
            peak_bytes = tracemalloc.get_traced_memory()[1]
            assert kind == "invalid", f"{path.name}: accepted as {kind}"
            assert_refused_with_located_problems(path, [str(issue) for issue in issues], mutant.data)
            assert elapsed_s <= MAX_SECONDS, f"{path.name}: {elapsed_s:.2f} s"
            assert peak_bytes <= MAX_BYTES, f"{path.name}: {peak_bytes / 2**20:.0f} MiB"
    finally:
        tracemalloc.stop()


def run_measured(argv: list[str], workdir: Path) -> tuple[int, str, str, float, int]:
    """Run a command; its exit status, stdout, stderr, CPU seconds and peak resident memory in bytes (this
    process alone: ``wait4`` on it)."""
    with open(workdir / "out", "w+") as out, open(workdir / "err", "w+") as err:
        process = subprocess.Popen(argv, stdout=out, stderr=err, text=True, cwd=ROOT)
        watchdog = threading.Timer(60.0, process.kill)
        watchdog.start()
        try:
            _, status, usage = os.wait4(process.pid, 0)
        finally:
            watchdog.cancel()
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return (process.returncode, out.read(), err.read(), usage.ru_utime + usage.ru_stime,
                usage.ru_maxrss * 1024)


def test_a_sample_is_refused_by_the_real_check_config_command(config_copy, tmp_path):
    rng = random.Random(15)
    everything = [(index, mutant) for source in SOURCES for index, mutant in enumerate(mutants_of(source))]
    by_operator: dict[str, list] = {}
    for entry in everything:
        by_operator.setdefault(entry[1].operator, []).append(entry)
    sample = [rng.choice(entries) for entries in by_operator.values()]  # one of each kind of mutation...
    sample += rng.sample(everything, SUBPROCESS_SAMPLE - len(sample))  # ...and a few more
    for index, mutant in sample:
        path = write_mutant(config_copy, mutant, index)
        status, stdout, stderr, cpu_s, peak_bytes = run_measured(
            [sys.executable, "-m", "flightsw.cli", "check-config", str(path)], tmp_path)
        assert status == 1, f"{path.name}: exit {status}\n{stderr}"
        assert "Traceback" not in stderr and stdout == ""
        assert all(line.startswith("error: ") for line in stderr.splitlines()), stderr
        assert_refused_with_located_problems(path, [line.removeprefix("error: ") for line in stderr.splitlines()],
                                             mutant.data)
        assert cpu_s <= MAX_SECONDS, f"{path.name}: {cpu_s:.2f} s of CPU"
        assert peak_bytes <= MAX_BYTES, f"{path.name}: {peak_bytes / 2**20:.0f} MiB"
