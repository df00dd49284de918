"""Interoperability with the real MAVProxy (installed headless by the Makefile), driven with pexpect.

`flightsw hil --realtime` sends its ground link to a UDP port, as ArduPilot SITL does; MAVProxy listens there.
MAVProxy loads the parameters, `param set` works once MAVProxy signs with the run's key, and a signed
`long DO_FLIGHTTERMINATION 1` terminates the simulated flight.  The HIL run's key is the SHA-256 of the passphrase
``flightsw-hil-<seed>``, which is how MAVProxy's ``signing key`` turns a passphrase into a key.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pexpect
import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
MAVPROXY = BIN / "mavproxy.py"


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def realtime_hil(tmp_path):
    port = free_udp_port()
    hil = subprocess.Popen([str(BIN / "flightsw"), "hil", "--realtime", "--udp", f"127.0.0.1:{port}",
                            "--out", str(tmp_path / "hil"), "--no-progress"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    yield port, hil, tmp_path
    if hil.poll() is None:
        hil.send_signal(signal.SIGINT)
        try:
            hil.wait(timeout=10)
        except subprocess.TimeoutExpired:
            hil.kill()


def test_mavproxy_loads_parameters_sets_one_and_terminates_with_a_signed_command(realtime_hil):
    if not MAVPROXY.exists() and shutil.which("mavproxy.py") is None:
        pytest.fail("MAVProxy is not installed: `make test` installs it (pip install --no-deps MAVProxy)")
    port, hil, work_dir = realtime_hil
    mavproxy = pexpect.spawn(str(MAVPROXY if MAVPROXY.exists() else shutil.which("mavproxy.py")),
                             ["--master", f"udpin:127.0.0.1:{port}", "--source-system", "255", "--nowait"],
                             cwd=str(work_dir), encoding="utf-8", timeout=40)
    try:
        mavproxy.expect("online system 1")
        mavproxy.expect(r"Received (\d+) parameters")
        assert int(mavproxy.match.group(1)) >= 50
        mavproxy.sendline("param show ALT_TARGET")
        mavproxy.expect(r"ALT_TARGET\s+28000")

        mavproxy.sendline("param set ALT_TARGET 26000")  # unsigned: refused, the old value comes back
        mavproxy.expect("unsigned|not signed|signature", timeout=10)

        mavproxy.sendline("signing key flightsw-hil-1")
        mavproxy.expect("Setup signing key")
        mavproxy.sendline("param set ALT_TARGET 26000")
        mavproxy.expect(r"ALT_TARGET set to 26000", timeout=10)

        mavproxy.sendline("long DO_FLIGHTTERMINATION 1")
        mavproxy.expect(r"(?i)terminat\w* .*ground", timeout=20)
        mavproxy.expect(r"(?i)cutdown fired|firing the cutdown|cutdown burn", timeout=30)
    finally:
        mavproxy.sendline("exit")
        mavproxy.close(force=True)
    hil.send_signal(signal.SIGINT)
    output, _ = hil.communicate(timeout=20)
    assert "cutdown" in output.lower() or "terminat" in output.lower(), output[-2000:]
