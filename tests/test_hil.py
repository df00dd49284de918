"""The HIL harness as a user runs it: `flightsw hil`, lockstep reproducibility, real time over UDP, Monte Carlo."""

from __future__ import annotations

import dataclasses
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("MAVLINK20", "1")

from pymavlink import mavutil  # noqa: E402

from flightsw import logsetup  # noqa: E402
from hil.cli import disperse  # noqa: E402
from hil.runner import HilRun  # noqa: E402
from hil.scenario import FaultSpec, load_scenario  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
FLIGHTSW = str(Path(sys.executable).parent / "flightsw")


def short(name: str, seconds: float):
    return dataclasses.replace(load_scenario(ROOT / "config" / "hil" / f"{name}.yaml"), max_duration_s=seconds)


def fly(scenario, work_dir: Path, seed: int | None = None):
    logsetup.configure("error")
    return HilRun(scenario, work_dir=work_dir, seed=seed).run()


def test_flightsw_hil_flies_the_default_flight_from_launch_to_landing(tmp_path):
    result = subprocess.run([FLIGHTSW, "hil", "--out", str(tmp_path / "out"), "--no-progress"],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    report = result.stdout
    for words in ("Max altitude", "ASCENT", "DESCENT", "LANDED", "Ended by", "RESULT: PASS"):
        assert words in report
    written = {path.name for path in (tmp_path / "out").iterdir()}
    assert {"report.txt", "report.json", "track.kml", "flight.png", "logs"} <= written
    assert list((tmp_path / "out" / "logs").glob("*.tlog"))


def test_a_run_is_reproducible_from_its_seed(tmp_path):
    scenario = short("nominal", 400)
    first = fly(scenario, tmp_path / "a")
    second = fly(scenario, tmp_path / "b")
    other = fly(scenario, tmp_path / "c", seed=99)
    assert list(first.samples.altitude_m) == list(second.samples.altitude_m)
    assert list(first.samples.estimated_altitude_m) == list(second.samples.estimated_altitude_m)
    assert list(first.samples.longitude_deg) != list(other.samples.longitude_deg)  # seeded winds


def test_monte_carlo_dispersions_differ_per_run_and_repeat_per_index():
    scenario = load_scenario(ROOT / "config" / "hil" / "nominal.yaml")
    first, seed_a = disperse(scenario, 0)
    again, seed_b = disperse(scenario, 0)
    second, _ = disperse(scenario, 1)
    assert first == again and seed_a == seed_b
    assert first.world.balloon.target_ascent_rate_mps != second.world.balloon.target_ascent_rate_mps


def test_exit_status_is_non_zero_when_the_flight_did_not_go_as_expected(tmp_path):
    scenario = (ROOT / "config" / "hil" / "nominal.yaml").read_text()
    wrong = scenario.replace("{kind: max_altitude_m, min: 31000, max: 35500}", "{kind: max_altitude_m, min: 40000}")
    wrong = wrong.replace("max_duration_s: 14400", "max_duration_s: 300")
    wrong = wrong.replace("flight: ../flight-hil.yaml", f"flight: {ROOT / 'config' / 'flight-hil.yaml'}")
    wrong += f"board: {ROOT / 'config' / 'boards' / 'hil.yaml'}\n"
    path = tmp_path / "wrong.yaml"
    path.write_text(wrong)
    result = subprocess.run([FLIGHTSW, "hil", "--scenario", str(path), "--no-progress"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 1
    assert "FAIL  max altitude" in result.stdout and "RESULT: FAIL" in result.stdout


def test_realtime_run_sends_its_ground_link_over_udp(tmp_path):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    ground = mavutil.mavlink_connection(f"udpin:127.0.0.1:{port}", dialect="common")
    hil = subprocess.Popen([FLIGHTSW, "hil", "--realtime", "--udp", f"127.0.0.1:{port}", "--no-progress"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        heartbeat = ground.recv_match(type="HEARTBEAT", blocking=True, timeout=20)
        assert heartbeat is not None
        assert heartbeat.type == 8 and heartbeat.get_srcSystem() == 1
        started = time.monotonic()
        times = []
        while time.monotonic() - started < 3.5:
            message = ground.recv_match(type="GLOBAL_POSITION_INT", blocking=True, timeout=2)
            if message is not None:
                times.append(message.time_boot_ms)
        # paced to the wall clock: about one simulated second per second
        assert len(times) >= 2 and 900 <= (times[-1] - times[0]) / (len(times) - 1) <= 1500
    finally:
        hil.send_signal(signal.SIGINT)
        hil.communicate(timeout=30)
        ground.close()


def test_monte_carlo_runs_in_parallel_workers_and_summarises(tmp_path):
    result = subprocess.run([FLIGHTSW, "hil", "--scenario", str(ROOT / "config" / "hil" / "max-duration.yaml"),
                             "--runs", "2", "--jobs", "2", "--out", str(tmp_path)],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Monte Carlo: 2 runs, 2 passed" in result.stdout
    assert "terminated (max_duration)" in result.stdout and "2/2 (100 %)" in result.stdout
    assert sorted(path.name for path in tmp_path.iterdir()) == ["run-0000", "run-0001"]


def test_daemon_refuses_a_burn_that_outlasts_its_line_backstop(tmp_path):
    """TRM_BURN_S 9.5 s + ACT_BACKSTOP_S 1 s does not fit the HIL board's 8 s FIRE-line backstop: the value is
    refused with the reason (the burn would be cut short), and the flight keeps the burn that fits."""
    scenario = short("nominal", 5)
    fine = fly(scenario, tmp_path / "a")
    too_long = fly(dataclasses.replace(scenario, params={**scenario.params, "TRM_BURN_S": 9.5}), tmp_path / "b")
    assert not [e for e in fine.events if e[1] == "param_problem"]
    refusals = [text for _, name, _, text in too_long.events if name == "param_problem"]
    assert len(refusals) == 1 and "TRM_BURN_S 9.5 s" in refusals[0] and "cutdown_fire" in refusals[0]


def test_the_record_names_every_tlog_the_flight_wrote(tmp_path):
    """The recorder rotates its .tlog files (by age here, every 10 s): the report lists them all, oldest first."""
    flight = (ROOT / "config" / "flight-hil.yaml").read_text()
    flight = flight.replace("board: boards/hil.yaml", f"board: {ROOT / 'config' / 'boards' / 'hil.yaml'}")
    flight = flight.replace("  max_log_file_mb: 64\n", "  max_log_file_mb: 64\n  max_log_file_age_s: 10\n")
    (tmp_path / "flight.yaml").write_text(flight)
    scenario = dataclasses.replace(short("nominal", 35), flight=str(tmp_path / "flight.yaml"),
                                   board=str(ROOT / "config" / "boards" / "hil.yaml"), expect=())
    record = fly(scenario, tmp_path / "run")
    written = sorted(str(path) for path in (tmp_path / "run" / "logs").glob("*.tlog"))
    assert len(written) >= 3
    assert record.tlog_paths == written


def test_the_operator_can_send_every_command_a_scenario_may_name():
    from hil.operator import OPERATOR_COMMANDS
    from hil.scenario import OPERATOR_COMMANDS as SCENARIO_COMMANDS

    assert sorted(OPERATOR_COMMANDS) == sorted(SCENARIO_COMMANDS)


def test_a_start_after_a_clean_stop_is_a_boot_and_one_after_a_crash_is_a_restart(tmp_path):
    """Issue 21: every second start after a clean stop logged a "restart" warning, so the checklist step that
    expects "boot" was wrong.  The journal now records a clean stop; only a crash or a power loss is a restart."""
    scenario = short("nominal", 5)
    first = fly(scenario, tmp_path)
    logsetup.configure("error")
    second = HilRun(scenario, work_dir=tmp_path, resume=True).run()  # after the first one's clean shutdown
    names = [[name for _, name, _, _ in record.events if name in ("boot", "restart")] for record in (first, second)]
    assert names == [["boot"], ["boot"]]
    assert "clean stop" in next(text for _, name, _, text in second.events if name == "boot")
    crashed = fly(dataclasses.replace(scenario, max_duration_s=40.0,
                                      faults=(FaultSpec(kind="crash", at_s=20.0, magnitude=2.0),)), tmp_path / "c")
    assert [name for _, name, _, _ in crashed.events if name in ("boot", "restart")] == ["boot", "restart"]
