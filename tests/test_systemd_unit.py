"""The systemd unit: required settings, `systemd-analyze verify` clean, `systemd-analyze security` exposure <= 2.0.

The systemd-analyze tests are skipped only when systemd-analyze is not installed (Debian package ``systemd``).
"""

from __future__ import annotations

import json
import os
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
TMPFILES = SYSTEMD_DIR / "flightsw.tmpfiles"
ROOT = SYSTEMD_DIR.parent
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


def state_directory() -> str:
    entries = parse_unit(UNIT.read_text())
    [name] = values(entries, "Service", "StateDirectory")
    return f"/var/lib/{name}"


def tmpfiles_lines() -> list[list[str]]:
    return [line.split() for line in TMPFILES.read_text().splitlines() if line.strip() and not line.startswith("#")]


def test_tmpfiles_creates_the_state_directory_as_the_unit_owns_it():
    """The directory the signing key goes in exists before the service first starts, owned and protected as the
    unit's StateDirectory= keeps it (so systemd has nothing to change at the first start)."""
    entries = parse_unit(UNIT.read_text())
    [mode] = values(entries, "Service", "StateDirectoryMode")
    [user], [group] = values(entries, "Service", "User"), values(entries, "Service", "Group")
    assert tmpfiles_lines() == [["d", state_directory(), mode, user, group, "-"]]


def test_sysusers_home_is_the_state_directory():
    [user_line] = [e for e in (line.split() for line in SYSUSERS.read_text().splitlines() if line[:1] == "u")]
    assert state_directory() in user_line


def flight_key_file() -> str:
    import yaml

    return yaml.safe_load((ROOT / "config" / "flight.yaml").read_text())["link"]["signing"]["key_file"]


def test_the_signing_key_lives_in_the_writable_state_directory():
    """A key installed from the ground (SETUP_SIGNING) is saved to key_file: it must be writable by the service,
    so in the StateDirectory, never under the read-only ConfigurationDirectory."""
    entries = parse_unit(UNIT.read_text())
    key_file = Path(flight_key_file())
    assert key_file.parent == Path(state_directory())
    [config_dir] = values(entries, "Service", "ConfigurationDirectory")
    assert not key_file.is_relative_to(f"/etc/{config_dir}")
    assert values(entries, "Service", "ProtectSystem") == ["strict"]  # only the service's directories are writable


@pytest.mark.parametrize("doc", ["docs/deploy.md", "docs/ground.md", "docs/guides/bench-flight.md"])
def test_docs_name_the_one_key_location(doc):
    text = (ROOT / doc).read_text(encoding="utf-8")
    paths = set(re.findall(r"(?<![\w$}])/[\w/.-]*signing\.key", text))  # absolute paths, not $PWD/...
    assert paths == {flight_key_file()}, f"{doc} names {sorted(paths)}"


@pytest.mark.skipif(shutil.which("systemd-tmpfiles") is None or shutil.which("systemd-sysusers") is None,
                    reason="systemd-tmpfiles or systemd-sysusers is not installed")
@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="creating files for another user needs root")
def test_sysusers_then_tmpfiles_create_the_state_directory_in_a_new_root(tmp_path):
    (tmp_path / "etc").mkdir()
    for command in (["systemd-sysusers", f"--root={tmp_path}", str(SYSUSERS)],
                    ["systemd-tmpfiles", "--create", f"--root={tmp_path}", str(TMPFILES)]):
        result = subprocess.run(command, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stdout + result.stderr
    [uid] = [line.split(":")[2] for line in (tmp_path / "etc" / "passwd").read_text().splitlines()
             if line.startswith("flightsw:")]
    made = (tmp_path / state_directory().lstrip("/")).stat()
    assert (oct(made.st_mode & 0o7777), made.st_uid) == ("0o750", int(uid))


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
