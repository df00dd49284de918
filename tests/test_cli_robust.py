"""The commands end with a message, never a traceback: a missing GPIO pin library is explained with how to install
one, and anything unexpected is reported in one line with its place in the code (exit status 2)."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest
from test_cli import _run_config

from flightsw import cli

ROOT = Path(__file__).resolve().parent.parent
BOARD = ROOT / "config" / "boards" / "pi-balloon-hat.yaml"

# A machine without any GPIO pin library: lgpio, RPi.GPIO and pigpio are not installed, and gpiozero's own native
# driver cannot be used (it is not a Raspberry Pi).  Importing a name mapped to None raises ImportError.
_WITHOUT_PIN_LIBRARIES = textwrap.dedent("""\
    import sys
    for name in ("lgpio", "RPi", "RPi.GPIO", "pigpio", "gpiozero.pins.native"):
        sys.modules[name] = None
    from flightsw import cli
    sys.exit(cli.main(sys.argv[1:]))
""")


def run_without_pin_libraries(*argv: str, factory: str | None = None) -> subprocess.CompletedProcess:
    environment = {key: value for key, value in __import__("os").environ.items() if key != "GPIOZERO_PIN_FACTORY"}
    if factory is not None:
        environment["GPIOZERO_PIN_FACTORY"] = factory
    return subprocess.run([sys.executable, "-c", _WITHOUT_PIN_LIBRARIES, *argv], capture_output=True, text=True,
                          cwd=ROOT, env=environment, timeout=120)


def assert_explains_the_missing_pin_library(result: subprocess.CompletedProcess) -> None:
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and "BadPinFactory" not in result.stderr
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: no GPIO pin library")
    assert "pip install '.[pi]'" in line and "lgpio" in line and "GPIOZERO_PIN_FACTORY=mock" in line


@pytest.mark.parametrize("factory", [None, "lgpio"], ids=["default", "lgpio-named"])
def test_safe_outputs_without_a_pin_library_says_what_to_install(factory):
    assert_explains_the_missing_pin_library(run_without_pin_libraries("safe-outputs", "--board", str(BOARD),
                                                                      factory=factory))


def test_run_without_a_pin_library_says_what_to_install(tmp_path):
    flight = _run_config(tmp_path, 0o600)
    assert_explains_the_missing_pin_library(run_without_pin_libraries("run", "--config", str(flight)))


def test_the_pi_extra_installs_lgpio():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert any(requirement.startswith("lgpio") for requirement in extras["pi"])


def test_an_unexpected_error_is_one_located_line_with_exit_status_2(monkeypatch, capsys, tmp_path):
    from flightsw.config import check

    original = check.check_file

    def broken(path):
        if path.name == "a.yaml":
            raise RuntimeError("x" * 10_000)
        return original(path)

    monkeypatch.delenv("FLIGHTSW_TRACEBACK", raising=False)
    monkeypatch.setattr(check, "check_file", broken)
    good = ROOT / "config" / "flight.yaml"
    assert cli.main(["check-config", str(tmp_path / "a.yaml"), str(good)]) == 2
    printed = capsys.readouterr()
    assert f"ok: {good} (flight)" in printed.out  # the other files are still checked
    [line] = printed.err.splitlines()
    assert re.match(rf"error: internal error while handling {re.escape(str(tmp_path / 'a.yaml'))}: RuntimeError: "
                    r"'x+'\.\.\. at tests/test_cli_robust\.py:\d+ in broken ", line), line
    assert len(line) < 400 + len(str(tmp_path))  # the 10,000-character message is clipped


def test_the_last_resort_covers_every_command(monkeypatch, capsys):
    def broken(path):
        raise KeyError("boom")

    monkeypatch.delenv("FLIGHTSW_TRACEBACK", raising=False)
    monkeypatch.setattr("flightsw.config.check.board_for_safe_outputs", broken)
    assert cli.main(["safe-outputs", "--config", "flight.yaml"]) == 2
    assert "internal error while handling flight.yaml: KeyError" in capsys.readouterr().err


def test_an_operating_system_error_is_one_line_with_its_file(tmp_path, capsys):
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("")
    assert cli.main(["docs", "--dir", str(not_a_folder)]) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line == f"error: {not_a_folder}: File exists"  # docs --dir tried to make the folder


def test_bad_hil_arguments_are_usage_errors_not_tracebacks(capsys):
    for argv in (["hil", "--jobs", "0"], ["hil", "--runs", "-1"], ["hil", "--udp", "nowhere"],
                 ["hil", "--seed", "x"]):
        with pytest.raises(SystemExit) as stopped:
            cli.main(argv)
        assert stopped.value.code == 2
        assert "error: argument" in capsys.readouterr().err
