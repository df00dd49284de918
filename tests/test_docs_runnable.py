"""The shell blocks the docs mark runnable (a fenced block with the info string ``sh runnable``) run as written.

Each document's runnable blocks run in order, in one ``bash`` with ``set -euo pipefail``, in a fresh temporary
directory that stands for a checkout: it links to the repository's files and to the virtualenv this suite runs in
(``.venv``), so ``.venv/bin/flightsw ... config/...`` works and everything a block writes stays in the temporary
directory.  ``HOME`` is that directory too (MAVProxy writes its settings there).  A block that starts a process in
the background must stop it itself; the test ends the session's whole process group afterwards in any case.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = sorted([*(ROOT / "docs").glob("*.md"), *(ROOT / "docs" / "guides").glob("*.md")])
FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
MARKER = "sh runnable"
LINKED = ("config", "flightsw", "hal", "hil", "benchmarks", "docs", "systemd", "tests", "Makefile", "pyproject.toml",
          "README.md")
TIMEOUT_S = 90


def runnable_blocks(text: str) -> list[str]:
    """The bodies of the fenced blocks whose info string is exactly ``sh runnable``, in document order."""
    return [body for info, body in FENCE.findall(text) if info.strip() == MARKER]


def documents_with_blocks() -> list[Path]:
    return [path for path in DOCS if runnable_blocks(path.read_text(encoding="utf-8"))]


def checkout(directory: Path) -> None:
    for name in LINKED:
        (directory / name).symlink_to(ROOT / name)
    (directory / ".venv").symlink_to(Path(sys.prefix))  # the virtualenv running this suite


def test_the_marker_finds_only_marked_blocks():
    text = "```sh\nnot me\n```\n\n```sh runnable\necho one\n```\n\n```yaml\nx: 1\n```\n```sh runnable\necho two\n```\n"
    assert runnable_blocks(text) == ["echo one\n", "echo two\n"]


def test_every_guide_has_runnable_blocks_and_the_convention_is_documented():
    guides = sorted((ROOT / "docs" / "guides").glob("*.md"))
    assert len(guides) >= 6
    without = [path.name for path in guides if path.name != "README.md"
               and not runnable_blocks(path.read_text(encoding="utf-8"))]
    assert without == []
    assert f"```{MARKER}" in (ROOT / "docs" / "guides" / "README.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("doc", documents_with_blocks(), ids=lambda path: str(path.relative_to(ROOT / "docs")))
def test_runnable_blocks_run_as_written(doc, tmp_path):
    checkout(tmp_path)
    script = "set -euo pipefail\n" + "\n".join(runnable_blocks(doc.read_text(encoding="utf-8")))
    venv_bin = str(Path(sys.executable).parent)
    env = {**os.environ, "HOME": str(tmp_path), "PATH": venv_bin + os.pathsep + os.environ.get("PATH", ""),
           "MPLBACKEND": "Agg"}
    process = subprocess.Popen(["bash", "-c", script], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        output, _ = process.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        pytest.fail(f"{doc.name}: runnable blocks did not finish in {TIMEOUT_S} s\n{output[-4000:]}")
    finally:
        try:
            os.killpg(process.pid, signal.SIGKILL)  # anything a block left running in the background
        except ProcessLookupError:
            pass
    assert process.returncode == 0, f"{doc.name}: exit {process.returncode}\n{output[-6000:]}"
