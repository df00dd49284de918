"""Fly a scenario: the daemon on the simulated board, in lockstep with the physics.

The simulated clock is the heartbeat of a run: the executive sleeps to its next slot, the clock advances, and the
board steps the world to that instant before the frame runs.  Once a simulated second the runner samples the
truth, plays the scenario's operator actions and faults, and decides whether the flight is over.
"""

from __future__ import annotations

import dataclasses
import math
import os
import shutil
import time
from pathlib import Path

from flightsw.app import Daemon
from flightsw.clock import SimClock
from flightsw.config.flight import FlightConfig, load_flight_config
from flightsw.config.loader import replace_path
from flightsw.link.transport import LinkConfig
from flightsw.phase import Phase
from hil.faults import FaultInjector
from hil.loopback import loopback_pair
from hil.operator import ScriptedOperator, make_key
from hil.physics.balloon import BalloonWorld
from hil.physics.sun import parse_utc_s
from hil.record import PhaseSpan, RunRecord
from hil.scenario import Scenario, condition_holds
from hil.sim import SimulatedBoard

SAMPLE_INTERVAL_S = 1.0
PHASE_NAMES = [phase.name for phase in Phase]


def flight_config_for(scenario: Scenario, *, work_dir: Path, key_file: Path,
                      links: tuple[LinkConfig, ...] = ()) -> FlightConfig:
    """The scenario's flight configuration, on the HIL board, with its state and logs in ``work_dir``, serving
    ``links`` (UDP for a person's ground station) besides the scripted operator's loopback."""
    base = Path(scenario.path).parent
    config = load_flight_config(base / scenario.flight, board_override=base / scenario.board)
    params = {**config.params, **scenario.params}
    endpoints = tuple(links)
    config = dataclasses.replace(config, params=params, mission=scenario.mission or config.mission)
    config = replace_path(config, "link.endpoints", endpoints)
    config = replace_path(config, "link.signing.key_file", str(key_file))
    config = replace_path(config, "storage.state_dir", str(work_dir / "state"))
    return replace_path(config, "storage.log_dir", str(work_dir / "logs"))


class HilRun:
    """One simulated flight.  ``pace`` > 0 runs that many simulated seconds per wall second (1.0: real time);
    ``links`` are extra ground links (e.g. UDP to QGroundControl) served besides the scripted operator.
    ``resume``: keep the daemon's state and logs already in ``work_dir`` (the daemon then resumes its journal, as
    after a crash); otherwise they are cleared so every run is a new flight."""

    def __init__(self, scenario: Scenario, *, work_dir: Path, seed: int | None = None, pace: float = 0.0,
                 links: tuple[LinkConfig, ...] = (), progress=None, resume: bool = False) -> None:
        self.scenario = scenario
        self.seed = scenario.seed if seed is None else seed
        self.work_dir = Path(work_dir)
        if not resume:  # a new flight: never resume an earlier run's journal
            for owned in ("state", "logs"):
                shutil.rmtree(self.work_dir / owned, ignore_errors=True)
        (self.work_dir / "logs").mkdir(parents=True, exist_ok=True)
        self.key = make_key(self.seed)
        key_file = self.work_dir / "signing.key"
        key_file.write_bytes(self.key)
        os.chmod(key_file, 0o600)
        self.config = flight_config_for(scenario, work_dir=self.work_dir, key_file=key_file, links=links)
        start_utc_s = parse_utc_s(scenario.world.launch.start_utc)
        self.clock = SimClock(start_s=0.0, start_wall_time_s=start_utc_s)
        self.world = BalloonWorld(scenario.world, seed=self.seed)
        self.board = SimulatedBoard(self.config.board, self.world, now_s=self.clock.now_s, seed=self.seed,
                                    baro_bias_spread_pa=scenario.dispersions.sensor_noise_pa)
        self.vehicle_end, self.ground_end = loopback_pair()
        self.operator = ScriptedOperator(self.ground_end, key=self.key, target_system=self.config.link.system_id,
                                         target_component=self.config.link.component_id,
                                         wall_time_s=self.clock.wall_time_s)
        self.faults = FaultInjector(scenario.faults, board=self.board, world=self.world,
                                    vehicle_link=self.vehicle_end,
                                    storage_dirs=(self.work_dir / "state", self.work_dir / "logs"))
        self.record = RunRecord(scenario=scenario.name, seed=self.seed, float_hold_band_m=scenario.float_band_m)
        self.record.launch = {"latitude_deg": scenario.world.launch.latitude_deg,
                              "longitude_deg": scenario.world.launch.longitude_deg,
                              "altitude_m": scenario.world.launch.altitude_m,
                              "start_utc": scenario.world.launch.start_utc}
        self.record.ballast_start_kg = self.world.state.ballast_kg
        self._pending_actions = list(scenario.operator)
        self._next_sample_s = 0.0
        self._landed_at_s: float | None = None
        self._pace = pace
        self._wall_start_s = time.monotonic()
        self._progress = progress
        self._phase = -1
        self._float_in_band_s = 0.0
        self.clock.on_advance(self._on_advance)
        self.daemon = self._start_daemon()

    # ------------------------------------------------------------ daemon lifecycle

    def _start_daemon(self) -> Daemon:
        hal = self.board.build_hal()
        loopback = LinkConfig(name="hil-operator", kind="udp", listen="127.0.0.1:0", signing_link_id=4)
        return Daemon(self.config, hal, self.clock, extra_links=[(loopback, self.vehicle_end)],
                      on_event=self._on_event, sync_storage=False)

    def _on_event(self, name: str, severity: str, text: str, fields: dict) -> None:
        self.record.events.append((self.clock.now_s(), name, severity, text))

    def run(self) -> RunRecord:
        wall_start_s = time.perf_counter()
        try:
            while True:
                self.daemon.run()
                if self.faults.brownout_pending:
                    self._brownout()
                    continue
                if self.faults.crash_pending:
                    self._crash()
                    continue
                break
        except KeyboardInterrupt:
            self.record.ended_by = "interrupted"
        finally:
            try:
                self.daemon.shutdown()
            finally:
                self.faults.stop_all()
        self._finish(time.perf_counter() - wall_start_s)
        return self.record

    def _drop_daemon(self) -> None:
        """The daemon's process is gone: no shutdown, only the files a dead process's kernel closes."""
        old = self.daemon
        for writer in (old.recorder, old.event_log):
            if writer is not None:
                writer.close()
        if old.event_log is not None:
            from flightsw import logsetup

            logsetup.remove_sink(old.event_log.write)

    def _crash(self) -> None:
        """The process dies and systemd restarts it in the same boot: the lines stay as they were until
        ExecStopPost drives them safe, then the new process resumes from the journal."""
        from hal.board import safe_outputs

        from hil.faults import CRASH_HELD_S

        delay_s = self.faults.take_crash()
        self._drop_daemon()
        self.board.process_died()
        self.clock.advance(min(CRASH_HELD_S, delay_s))
        safe_outputs(self.config.board, pin_factory=self.board.pins)
        self.clock.advance(max(0.0, delay_s - CRASH_HELD_S))
        self.record.restarts += 1
        self.daemon = self._start_daemon()

    def _brownout(self) -> None:
        """The board loses power: the process dies without cleanup, outputs drop, it boots again later."""
        delay_s = self.faults.take_brownout()
        self._drop_daemon()
        self.board.power_cycle()
        self.clock.reboot()  # a new boot: the daemon can not know how long it was down (GPS time tells it)
        self.clock.advance(delay_s)
        self.record.restarts += 1
        self.daemon = self._start_daemon()

    # ------------------------------------------------------------ lockstep hook

    def _on_advance(self, now_s: float) -> None:
        self.board.advance(now_s)
        if self._pace > 0:
            target_wall_s = self._wall_start_s + now_s / self._pace
            delay_s = target_wall_s - time.monotonic()
            if delay_s > 0:
                time.sleep(delay_s)
        if now_s >= self._next_sample_s:
            self._next_sample_s += SAMPLE_INTERVAL_S
            self._once_a_second(now_s)

    def _once_a_second(self, now_s: float) -> None:
        state = self.world.state
        daemon = self.daemon
        phase = daemon.state.latches.phase
        self._track_phase(phase, now_s)
        estimate = daemon.state.estimate
        target_m = daemon.state.latches.float_target_altitude_m
        self.record.samples.append(time_s=now_s, altitude_m=state.altitude_m,
                                   estimated_altitude_m=estimate.altitude_m,
                                   vertical_rate_mps=state.vertical_rate_mps,
                                   estimated_vertical_rate_mps=estimate.vertical_rate_mps,
                                   latitude_deg=state.latitude_deg, longitude_deg=state.longitude_deg,
                                   ballast_kg=state.ballast_kg, phase=phase, float_target_m=target_m)
        if state.altitude_m > self.record.max_altitude_m:
            self.record.max_altitude_m = state.altitude_m
        if phase == Phase.FLOAT:
            self.record.float_time_s += SAMPLE_INTERVAL_S
            if math.isfinite(target_m) and abs(state.altitude_m - target_m) <= self.scenario.float_band_m:
                self._float_in_band_s += SAMPLE_INTERVAL_S
        if state.released and not self.record.release:
            self.record.release = {"time_s": now_s, "altitude_m": state.altitude_m,
                                   "latitude_deg": state.latitude_deg, "longitude_deg": state.longitude_deg,
                                   "vertical_rate_mps": state.vertical_rate_mps}
        for name, text in self.operator.heartbeat(now_s):
            self.record.events.append((now_s, name, "info", text))
        self._play_operator(now_s)
        self.faults.update(now_s, self._quantity)
        if self._progress is not None:
            self._progress.update(now_s)
        if self.faults.brownout_pending or self.faults.crash_pending:
            daemon.request_stop()
        if state.landed and self._landed_at_s is None:
            self._landed_at_s = now_s
            self.record.landing = {"time_s": now_s, "latitude_deg": state.latitude_deg,
                                   "longitude_deg": state.longitude_deg}
        if self._landed_at_s is not None and now_s - self._landed_at_s >= self.scenario.end_after_landing_s:
            self.record.ended_by = self.record.ended_by or "landed"
            daemon.request_stop()
        elif now_s >= self.scenario.max_duration_s:
            self.record.ended_by = self.record.ended_by or "time limit"
            daemon.request_stop()

    def _track_phase(self, phase: int, now_s: float) -> None:
        if phase == self._phase:
            return
        if self.record.phases:
            self.record.phases[-1].end_s = now_s
        self.record.phases.append(PhaseSpan(PHASE_NAMES[phase], now_s, now_s))
        self._phase = phase

    def _quantity(self, name: str) -> float | str:
        state = self.world.state
        if name == "phase":
            return PHASE_NAMES[self.daemon.state.latches.phase]
        return {"time_s": state.time_s, "altitude_m": state.altitude_m,
                "vertical_rate_mps": state.vertical_rate_mps, "ballast_kg": state.ballast_kg}[name]

    def _play_operator(self, now_s: float) -> None:
        for action in list(self._pending_actions):
            if now_s < action.at_s or (action.when and not condition_holds(action.when, self._quantity)):
                continue
            self._pending_actions.remove(action)
            described = self.operator.perform(action)
            self.operator.listen(now_s)
            self.record.events.append((now_s, "operator", "info", described))

    # ------------------------------------------------------------ results

    def _finish(self, wall_s: float) -> None:
        record = self.record
        now_s = self.clock.now_s()
        if record.phases:
            record.phases[-1].end_s = now_s
        record.duration_s = now_s
        record.wall_time_s = wall_s
        state = self.world.state
        record.ballast_end_kg = state.ballast_kg
        latches = self.daemon.state.latches
        record.termination_reason = latches.termination_reason
        if state.burst and not record.ended_by.startswith("burst"):
            record.ended_by = f"burst, then {record.ended_by}" if record.ended_by else "burst"
        if state.cut_down:
            record.ended_by = f"cutdown ({latches.termination_reason}), then {record.ended_by or 'in flight'}"
        if record.float_time_s > 0:
            record.float_hold_fraction = self._float_in_band_s / record.float_time_s
        record.release_fire_count = self.board.release_burns
        record.cutdown_fire_count = self.board.cutdown_burns
        record.tlog_paths = [str(path) for path in sorted((self.work_dir / "logs").glob("*.tlog"))]
