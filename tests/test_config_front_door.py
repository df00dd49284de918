"""The front door for every file: bytes, UTF-8, YAML with limits, then the schema.  Whatever the bytes, the answer
is a ConfigError whose problems name file:line:col and the key path, never another exception, and never an
unbounded value in a message.  Each check runs on both YAML event sources (libyaml, and PyYAML's own parser)."""

from __future__ import annotations

import textwrap
import tracemalloc
from pathlib import Path

import pytest
import yaml

from flightsw.config import source
from flightsw.config.board import BoardConfig
from flightsw.config.flight import load_flight_config
from flightsw.config.issues import MAX_ISSUES
from flightsw.config.loader import ConfigError, load_file

ROOT = Path(__file__).resolve().parent.parent
BOARD = ROOT / "config" / "boards" / "pi-balloon-hat.yaml"
LOADERS = [source._PurePythonLoader] + ([source._LibyamlLoader] if hasattr(source, "_LibyamlLoader") else [])

# The 556-byte alias bomb of the report, in a parameter value: 9**8 "lol"s once expanded.
ALIAS_BOMB = (f"board: {BOARD}\n"
              "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
              + "".join(f"{c}: &{c} [{', '.join([f'*{p}'] * 9)}]\n" for p, c in zip("abcdefg", "bcdefgh"))
              + "params: {ALT_TARGET: *h}\n")


@pytest.fixture(params=LOADERS, ids=lambda loader: loader.__name__.strip("_"))
def loader(request, monkeypatch):
    monkeypatch.setattr(source, "_Loader", request.param)
    return request.param


def problems(tmp_path: Path, content: str | bytes, cls=None) -> list:
    path = tmp_path / "f.yaml"
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    with pytest.raises(ConfigError) as caught:
        if cls is None:
            load_flight_config(path)
        else:
            load_file(path, cls)
    for issue in caught.value.issues:
        assert issue.line >= 1 and issue.column >= 1 and len(str(issue)) < 600
    return caught.value.issues


def only(issues: list):
    assert len(issues) == 1, issues
    return issues[0]


# ---------------------------------------------------------------- YAML limits


def test_the_556_byte_alias_bomb_fails_at_once_in_little_memory(tmp_path, loader):
    assert len(ALIAS_BOMB.encode()) - len(f"board: {BOARD}\n") <= 556
    tracemalloc.start()
    try:
        issue = only(problems(tmp_path, ALIAS_BOMB))
        peak_bytes = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "aliases are expanded" in issue.message and issue.line <= 10
    assert peak_bytes < 20 * 2**20


@pytest.mark.parametrize("text, words, line", [
    ("a: &x [1, *x]\n", "recursive alias", 1),
    ("a: 1\nb: *nowhere\n", "undefined alias", 2),
    ("a: 1\n---\nb: 2\n", "single document", 2),
])
def test_alias_and_document_errors_are_located(tmp_path, loader, text, words, line):
    issue = only(problems(tmp_path, text))
    assert words in issue.message and issue.line == line and issue.key_path == ""


def test_nesting_deeper_than_the_limit_is_refused_where_it_happens(tmp_path, loader):
    deep = "params: " + "[" * (source.MAX_DEPTH + 5) + "]" * (source.MAX_DEPTH + 5) + "\n"
    issue = only(problems(tmp_path, deep))
    assert issue.line == 1 and "deep" in issue.message


def test_nesting_up_to_the_limit_reaches_the_schema(tmp_path, loader):
    allowed = "params: " + "[" * (source.MAX_DEPTH - 1) + "]" * (source.MAX_DEPTH - 1) + "\n"
    assert any(i.key_path == "params" and "expected a mapping" in i.message for i in problems(tmp_path, allowed))


def test_a_file_over_the_size_limit_is_refused_before_parsing(tmp_path):
    issue = only(problems(tmp_path, "#" * source.MAX_FILE_BYTES + "\n"))
    assert "larger than 64 KiB" in issue.message


def test_a_directory_or_a_device_is_not_read(tmp_path):
    assert "cannot read file: Is a directory" in only(problems_of(tmp_path)).message
    assert "not a regular file" in only(problems_of(Path("/dev/zero"))).message  # never read: it has no end


def problems_of(path: Path) -> list:
    with pytest.raises(ConfigError) as caught:
        load_file(path, BoardConfig)
    return caught.value.issues


# ---------------------------------------------------------------- bytes and characters


@pytest.mark.parametrize("content, words, line, column", [
    ("board: x\nlogging: {level: caf\xe9}\n".encode("latin-1"), "byte 0xe9 is not UTF-8", 2, 21),
    ("a: 1\n".encode("utf-16"), "UTF-16", 1, 1),
    ("a: 1\n".encode("utf-32"), "UTF-32", 1, 1),
    ("a: 1\n".encode("utf-16-le"), "U+0000", 1, 2),
    (b"board: x\nlogging: {level: in\x01fo}\n", "control character U+0001", 2, 20),
    (b"\x7fboard: x\n", "control character U+007F", 1, 1),
    (bytes(range(256)) * 4, "byte 0x80 is not UTF-8", 2, 118),
])
def test_bytes_that_are_not_utf8_yaml_text_are_located(tmp_path, loader, content, words, line, column):
    issue = only(problems(tmp_path, content))
    assert words in issue.message and (issue.line, issue.column) == (line, column), issue


def test_a_utf8_byte_order_mark_is_accepted(tmp_path):
    path = tmp_path / "b.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + BOARD.read_bytes())
    assert load_file(path, BoardConfig).name == "pi-balloon-hat-v1"


# ---------------------------------------------------------------- tags, keys, documents


@pytest.mark.parametrize("value, words", [
    ("!!float abc", "'abc' is not a valid number"),
    ("!!int 1.5", "'1.5' is not a valid integer"),
    ("!!bool maybe", "not a valid true or false"),
    ("!!timestamp never", "not a valid date and time"),
    ("!!binary AAAA", "tag '!!binary' is not allowed"),
    ("!!python/object/apply:os.system [x]", "expected a number, got a list"),
    ("!!python/name:os.system ''", "tag '!!python/name:os.system' is not allowed"),
    ("!local 5", "tag '!local' is not allowed"),
    (".nan", "expected a finite number"),
    ("1" * 5000, "not a valid integer"),
    ("1" * 4000, "got an integer of about 3999 digits"),
])
def test_tags_and_values_that_cannot_stand_there_are_located_errors(tmp_path, loader, value, words):
    issue = only(problems(tmp_path, f"board: {BOARD}\nexecutive: {{rate_hz: {value}}}\n"))
    assert (issue.line, issue.column, issue.key_path) == (2, 22, "executive.rate_hz")
    assert words in issue.message
    assert len(issue.message) < 200  # a 5000-digit value is not repeated


@pytest.mark.parametrize("text, key_path, words", [
    (f"board: {BOARD}\n? [a, b]\n: 1\n", "", "plain word"),
    (f"board: {BOARD}\nlogging: {{level: info}}\nlogging: {{level: info}}\n", "logging", "given twice"),
    (f"board: {BOARD}\nparams: {{ALT_TARGET: 30000, ALT_TARGET: 31000}}\n", "params.ALT_TARGET", "given twice"),
    (f"board: {BOARD}\nboard: {BOARD}\n", "board", "given twice"),
    (f"board: {BOARD}\nbase: &b {{level: info}}\nlogging: {{<<: *b}}\n", "base", "unknown key"),
    (f"board: {BOARD}\nlogging: {{<<: {{level: info}}}}\n", "logging.<<", "merge keys"),
    ("- board\n- x\n", "", "expected a mapping"),
    ("just words\n", "", "expected a mapping"),
    ("", "board", "required"),
    (f"board: {BOARD}\n'{'k' * 1000}': 1\n", "'kkkk", "unknown key"),
    (f"board: {BOARD}\n'two words': 1\n", "'two\\x20words'", "unknown key"),
])
def test_keys_and_documents_that_do_not_fit_are_located_errors(tmp_path, loader, text, key_path, words):
    issues = problems(tmp_path, text)
    assert any(i.key_path.startswith(key_path) and words in i.message for i in issues), issues
    assert all(" " not in i.key_path for i in issues)


def test_an_unquoted_value_for_a_string_gets_a_hint(tmp_path):
    issue = only(problems(tmp_path, f"board: {BOARD}\nlogging: {{level: 5}}\n"))
    assert issue.message == "expected a string, got 5 (put it in quotes)"


def test_an_exponent_yaml_reads_as_text_gets_a_hint(tmp_path):
    issue = only(problems(tmp_path, f"board: {BOARD}\nparams: {{ALT_TARGET: 3e4}}\n"))
    assert "write 3.0e+04" in issue.message


def test_at_most_max_issues_problems_are_kept(tmp_path):
    many = f"board: {BOARD}\n" + "".join(f"unknown{i}: 1\n" for i in range(3 * MAX_ISSUES))
    issues = problems(tmp_path, many)
    assert len(issues) == MAX_ISSUES
    assert issues[-1].message.startswith(f"{3 * MAX_ISSUES - MAX_ISSUES + 1} more problems not shown")


def test_a_long_string_value_is_clipped_in_the_message(tmp_path):
    issue = only(problems(tmp_path, f"board: {BOARD}\nlogging: {{level: {'x' * 10000}}}\n"))
    assert "expected one of" in issue.message and len(issue.message) < 150


def test_the_two_event_sources_build_the_same_tree():
    text = textwrap.dedent("""\
        a: {b: [1, 2.5, "x", null, true], c: &c {d: e}}
        f: *c
        g: 2024-06-21T08:00:00Z
        """)
    trees = []
    for loader_class in LOADERS:
        loader = loader_class(text)
        try:
            trees.append(yaml.serialize(loader.get_single_node()))
        finally:
            loader.dispose()
    assert len(set(trees)) == 1
