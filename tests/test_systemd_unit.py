"""The systemd unit: required settings, `systemd-analyze verify` clean, `systemd-analyze security` exposure <= 2.0.

The systemd-analyze tests are skipped only when systemd-analyze is not installed (Debian package ``systemd``).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SYSTEMD_DIR = Path(__file__).resolve().parent.parent / "systemd"
UNIT = SYSTEMD_DIR / "flightsw.service"
REALTIME_DROP_IN = SYSTEMD_DIR / "flightsw-realtime.conf"
SYSUSERS = SYSTEMD_DIR / "flightsw.sysusers"
INSTALLED_BINARY = "/opt/flightsw/venv/bin/flightsw"
MAX_EXPOSURE = 2.0

needs_analyze = pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                                   reason="systemd-analyze is not installed")


def parse_unit(text: str) -> list[tuple[str, str, str]]:
    """(section, key, value) for every assignment, in order; repeated keys are kept as systemd keeps them."""
    section, entries = "", []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        key, _, value = line.partition("=")
        entries.append((section, key.strip(), value.strip()))
    return entries


def values(entries, section: str, key: str) -> list[str]:
    return [v for s, k, v in entries if s == section and k == key]


def make_testable_copy(tmp_path: Path, *, with_realtime: bool = False, extra: str = "") -> Path:
    """The unit in a temporary directory with the installed binary replaced by one that exists here."""
    text = UNIT.read_text().replace(INSTALLED_BINARY, sys.executable)
    unit = tmp_path / "flightsw.service"
    unit.write_text(text + extra)
    if with_realtime:
        drop_in_dir = tmp_path / "flightsw.service.d"
        drop_in_dir.mkdir()
        shutil.copy(REALTIME_DROP_IN, drop_in_dir / "realtime.conf")
    return unit


def analyze(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["systemd-analyze", *args], capture_output=True, text=True, timeout=60)


def complaints(output: str, tmp_path: Path) -> list[str]:
    """Every output line, except lines about other units' files (the host's own units are not ours to fix)."""
    found = []
    for line in output.splitlines():
        if not line.strip():
            continue
        other_file = re.match(r"(/\S+?):", line)
        if other_file and not other_file.group(1).startswith(str(tmp_path)):
            continue
        found.append(line)
    return found


def exposure(output: str) -> float:
    match = re.search(r"Overall exposure level for \S+: (\d+(?:\.\d+)?)", output)
    assert match, output
    return float(match.group(1))


# ------------------------------------------------------------------ contents


def test_unit_declares_the_service_contract():
    entries = parse_unit(UNIT.read_text())
    service = "Service"
    assert values(entries, service, "Type") == ["notify"]
    assert values(entries, service, "NotifyAccess") == ["main"]
    assert values(entries, service, "Restart") == ["always"]
    assert values(entries, service, "WatchdogSec") and values(entries, service, "RestartSec")
    assert values(entries, service, "ExecStart") == [
        f"{INSTALLED_BINARY} run --config /etc/flightsw/flight.yaml"]
    assert values(entries, service, "ExecStopPost") == [
        f"{INSTALLED_BINARY} safe-outputs --config /etc/flightsw/flight.yaml"]
    assert values(entries, service, "User") == ["flightsw"]
    assert values(entries, service, "Group") == ["flightsw"]
    assert values(entries, service, "SupplementaryGroups") == ["i2c gpio dialout"]
    assert values(entries, service, "StateDirectory") == ["flightsw"]
    assert values(entries, service, "LogsDirectory") == ["flightsw"]
    assert values(entries, "Unit", "StartLimitIntervalSec") == ["0"]


def test_unit_limits_devices_and_privileges():
    entries = parse_unit(UNIT.read_text())
    service = "Service"
    assert values(entries, service, "DevicePolicy") == ["closed"]
    allowed = {v.split()[0] for v in values(entries, service, "DeviceAllow")}
    assert allowed == {"char-i2c", "char-gpiochip", "char-ttyAMA", "char-ttyS", "char-ttyUSB", "char-ttyACM"}
    assert values(entries, service, "CapabilityBoundingSet") == [""]
    assert values(entries, service, "RestrictAddressFamilies") == ["AF_UNIX AF_INET AF_INET6"]
    for key, expected in [("ProtectSystem", "strict"), ("ProtectHome", "yes"), ("PrivateTmp", "yes"),
                          ("NoNewPrivileges", "yes")]:
        assert values(entries, service, key) == [expected], key
    assert values(entries, service, "SystemCallFilter")


def test_realtime_drop_in_only_touches_scheduling():
    entries = parse_unit(REALTIME_DROP_IN.read_text())
    keys = {k for _, k, _ in entries}
    assert {"LimitRTPRIO", "LimitMEMLOCK", "CPUSchedulingPolicy", "RestrictRealtime"} <= keys
    assert not keys & {"ExecStart", "User", "CapabilityBoundingSet", "DevicePolicy", "ProtectSystem"}


def test_sysusers_creates_the_user_and_groups():
    entries = [line.split() for line in SYSUSERS.read_text().splitlines() if line and not line.startswith("#")]
    assert ["u", "flightsw"] == entries[[e[0] for e in entries].index("u")][:2]
    groups = {e[1] for e in entries if e[0] == "g"}
    assert groups == {"i2c", "gpio", "dialout"}


@pytest.mark.skipif(shutil.which("systemd-sysusers") is None, reason="systemd-sysusers is not installed")
def test_sysusers_dry_run(tmp_path):
    result = subprocess.run(["systemd-sysusers", "--dry-run", f"--root={tmp_path}", str(SYSUSERS)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "Creating user 'flightsw'" in result.stdout + result.stderr


# ------------------------------------------------------------------ systemd-analyze


@needs_analyze
@pytest.mark.parametrize("with_realtime", [False, True], ids=["base", "realtime-drop-in"])
def test_verify_prints_no_warning(tmp_path, with_realtime):
    unit = make_testable_copy(tmp_path, with_realtime=with_realtime)
    result = analyze("verify", "--man=no", str(unit))
    problems = complaints(result.stdout + result.stderr, tmp_path)
    assert result.returncode == 0 and problems == [], result.stdout + result.stderr


@needs_analyze
def test_verify_check_catches_an_unknown_key(tmp_path):
    """The check above would notice a mistyped setting (verify only warns and still exits 0)."""
    unit = make_testable_copy(tmp_path, extra="WatchdogSecs=5s\n")
    result = analyze("verify", "--man=no", str(unit))
    assert any("WatchdogSecs" in line for line in complaints(result.stdout + result.stderr, tmp_path))


@needs_analyze
@pytest.mark.parametrize("with_realtime", [False, True], ids=["base", "realtime-drop-in"])
def test_security_exposure_at_most_two(tmp_path, with_realtime):
    unit = make_testable_copy(tmp_path, with_realtime=with_realtime)
    result = analyze("security", "--offline=true", str(unit))
    assert exposure(result.stdout + result.stderr) <= MAX_EXPOSURE, result.stdout
    checks = json.loads(analyze("security", "--offline=true", "--json=short", str(unit)).stdout)
    [realtime] = [check for check in checks if check["name"] == "RestrictRealtime="]
    assert realtime["set"] is not with_realtime   # the drop-in was applied


@needs_analyze
def test_security_check_detects_a_weak_unit(tmp_path):
    weak = tmp_path / "weak.service"
    weak.write_text(f"[Service]\nType=notify\nExecStart={sys.executable}\n")
    result = analyze("security", "--offline=true", str(weak))
    assert exposure(result.stdout + result.stderr) > MAX_EXPOSURE
