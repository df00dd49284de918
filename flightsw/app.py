"""The daemon: every subsystem composed around one cyclic executive.

The task table in :meth:`Daemon.task_table` is the whole schedule, in frame order:
link rx -> sense -> estimate -> decide -> act -> persist -> telemetry tx -> health.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Callable

import structlog

from flightsw import logsetup
from flightsw.actuators import BURN_PARAMS, ActuatorManager, burn_backstop_problems
from flightsw.clock import Clock
from flightsw.config.flight import FlightConfig
from flightsw.devices import DeviceReport
from flightsw.dictionary import all_param_decls
from flightsw.estimator import Estimator
from flightsw.executive import Executive, TaskSpec
from flightsw.flightlogic import FlightLogic
from flightsw.groundlink import GroundLink
from flightsw.journal import Journal, ParamStore
from flightsw.link.signing import PERSIST_INTERVAL_S as SIGNING_PERSIST_INTERVAL_S
from flightsw.params import Params
from flightsw.phase import Phase
from flightsw.realtime import apply_realtime
from flightsw.recorder import EventLogWriter, TlogWriter
from flightsw.sdnotify import SystemdNotifier, watchdog_should_ping
from flightsw.state import FlightState
from hal.interfaces import Hal

log = structlog.get_logger("daemon")

PERSIST_RETRY_INTERVAL_S = 1.0
MIB = 1 << 20


class Daemon:
    """flightsw on a HAL (real or simulated) and a clock.

    :param state_dir: where the journal and parameter store live (default: the config's ``storage.state_dir``).
    :param log_dir: the flight recorder's directory (default: ``storage.log_dir``); None with ``record=False``.
    :param extra_links: ``(LinkConfig, Transport)`` pairs to serve besides the configured links (the HIL's
        loopback to its scripted ground station).
    :param sync_storage: ``fsync`` journal and parameter writes (a simulated flight, whose restarts end the
        process and not the machine, may skip it).
    """

    def __init__(self, config: FlightConfig, hal: Hal, clock: Clock, *, state_dir: Path | None = None,
                 log_dir: Path | None = None, record: bool = True, extra_links: list | None = None,
                 notifier: SystemdNotifier | None = None, sync_storage: bool = True,
                 on_event: Callable[[str, str, str, dict], None] | None = None) -> None:
        self.config = config
        self.hal = hal
        self.clock = clock
        self.simulated = hal.simulated
        self._on_event_hook = on_event
        self.events: list[tuple[float, str, str, str]] = []  # (flight-clock time, name, severity, text)
        state_dir = Path(state_dir if state_dir is not None else config.storage.state_dir)
        state_dir.mkdir(parents=True, exist_ok=True)

        self.params = Params(all_param_decls())
        self.params.load_values(config.params)  # validated with locations when the config was loaded
        self.param_store = ParamStore(state_dir, sync=sync_storage)
        stored_params, params_source, param_problems = self.param_store.load()
        param_problems += self.params.load_values(stored_params)

        self.journal = Journal(state_dir, sync=sync_storage)
        restored = self.journal.load()
        now_s = clock.now_s()
        self.state = FlightState(now_s=now_s, wall_time_s=clock.wall_time_s(), boot_s=now_s,
                                 latches=restored.latches, phase_since_s=now_s)

        self.recorder = self.event_log = None
        if record:
            log_dir = Path(log_dir if log_dir is not None else config.storage.log_dir)
            storage = config.storage
            log_dir.mkdir(parents=True, exist_ok=True)
            common = dict(max_file_bytes=int(storage.max_log_file_mb * MIB), max_file_age_s=storage.max_log_file_age_s,
                          min_free_bytes=int(storage.min_free_mb * MIB), clock_mono_s=clock.now_s)
            self.recorder = TlogWriter(log_dir, clock_wall_s=clock.wall_time_s, **common)
            self.event_log = EventLogWriter(log_dir, **common)
            logsetup.add_sink(self.event_log.write)

        self.estimator = Estimator(self.params)
        self.actuators = ActuatorManager(hal.outputs, self.params, on_event=self._actuator_event,
                                         release_already_fired=restored.latches.release_fired,
                                         cutdown_attempts=restored.latches.cutdown_attempts,
                                         ballast_used_kg=restored.latches.ballast_used_kg)
        self.logic = FlightLogic(self.state, self.params, self.actuators, config.mission, on_event=self.event,
                                 separation_switch=hal.separation_switch, persist=self._persist_now)
        self.executive = Executive(clock, self.task_table(), rate_hz=config.executive.rate_hz)
        self.link = GroundLink(config.link, state=self.state, params=self.params, logic=self.logic,
                               executive=self.executive, hal=hal, clock=clock, simulated=self.simulated,
                               recorder=self.recorder.write if self.recorder else None,
                               on_params_changed=self.param_store.save, extra_links=extra_links,
                               on_reboot=self._reboot, log_files=self.recorder)
        self.notifier = notifier if notifier is not None else SystemdNotifier()
        self._last_watchdog_s: float | None = None
        self._watchdog_period_s = self.notifier.watchdog_period_s()
        self._slips_at_last_health = 0
        self._last_signing_persist_s = now_s
        self._last_persist_attempt_s = -math.inf
        self._ready = False
        self.restart_requested = False
        self._gps_model_confirmed: bool | None = None

        if config.executive.realtime.enabled and not self.simulated:
            for warning in apply_realtime(priority=config.executive.realtime.priority,
                                          lock_memory=config.executive.realtime.lock_memory):
                log.warning("realtime_unavailable", detail=warning)
        self._report_start(restored, params_source, param_problems)
        self.devices = DeviceReport(config.board, hal, event=self.event, now_s=now_s)
        self.devices.report_start()
        self._check_burn_backstops()
        self.params.on_change(self._on_param_change)

    # ------------------------------------------------------------------ the schedule

    def task_table(self) -> list[TaskSpec]:
        rate_hz = self.config.executive.rate_hz
        once_per_second = max(1, round(rate_hz))
        slow_sensors = max(1, round(rate_hz / 4))
        return [
            #        name          run                    divisor           offset budget_s
            TaskSpec("link_rx",    self._link_rx,         1,                0,     0.002),
            TaskSpec("sense",      self._sense,           1,                0,     0.002),
            TaskSpec("sense_slow", self._sense_slow,      slow_sensors,     0,     0.002),
            TaskSpec("estimate",   self._estimate,        1,                0,     0.0005),
            TaskSpec("decide",     self._decide,          1,                0,     0.0005),
            TaskSpec("act",        self._act,             1,                0,     0.0003),
            TaskSpec("persist",    self._persist,         1,                0,     0.01),
            TaskSpec("telemetry",  self._telemetry,       1,                0,     0.002),
            TaskSpec("health",     self._health,          once_per_second,  once_per_second // 2, 0.002),
        ]

    def _link_rx(self, now_s: float) -> None:
        self.state.now_s = now_s
        self.state.wall_time_s = self.clock.wall_time_s()
        self.link.rx(now_s)

    def _sense(self, now_s: float) -> None:
        for barometer in self.hal.barometers:
            barometer.update(now_s)
        if self.hal.gps is not None:
            self.hal.gps.update(now_s)

    def _sense_slow(self, now_s: float) -> None:
        for device in (*self.hal.power_monitors, *self.hal.thermometers):
            device.update(now_s)

    def _estimate(self, now_s: float) -> None:
        self.estimator.update(self.hal, now_s, self.state.estimate)

    def _decide(self, now_s: float) -> None:
        self.logic.decide(now_s)

    def _act(self, now_s: float) -> None:
        healthy = self.executive.tasks_healthy() and self.executive.stats.last_frame_on_time
        self.actuators.update(now_s, healthy=healthy)
        self.state.outputs_safe = self.actuators.outputs_safe

    def _persist(self, now_s: float) -> None:
        latches = self.state.latches
        if now_s - self._last_signing_persist_s >= SIGNING_PERSIST_INTERVAL_S:
            latches.signing_timestamp = self.link.signing_timestamp
            self._last_signing_persist_s = now_s
            self.state.latches_dirty = True
        if not self.state.latches_dirty:
            return
        if now_s - self._last_persist_attempt_s < PERSIST_RETRY_INTERVAL_S and self.journal.write_errors:
            return  # the disk is failing: retry once a second, not every frame
        self._last_persist_attempt_s = now_s
        if self.journal.save(latches):
            self.state.latches_dirty = False
        elif self.journal.write_errors == 1 or self.journal.write_errors % 60 == 0:
            self.event("journal_write_failed", "error", f"state journal write failed: {self.journal.last_error}")

    def _persist_now(self) -> bool:
        """Write the latches at once (the flight logic calls this before it drives a firing line)."""
        saved = self.journal.save(self.state.latches)
        if saved:
            self.state.latches_dirty = False
        return saved

    def _telemetry(self, now_s: float) -> None:
        self.link.tx(now_s)

    def _health(self, now_s: float) -> None:
        sensors = self.hal.sensors()
        self.state.sensors_healthy = all(_device_healthy(device) for device in sensors)
        self.devices.update(self.state, self.params, now_s)
        self._report_gps_model()
        for writer in (self.recorder, self.event_log):
            if writer is not None:
                writer.tick()
        slips = self.executive.stats.slips
        frames_on_time = slips == self._slips_at_last_health
        self._slips_at_last_health = slips
        if self._watchdog_period_s and watchdog_should_ping(frames_on_time, self.executive.tasks_healthy(),
                                                            self._last_watchdog_s, now_s,
                                                            self._watchdog_period_s):
            self.notifier.watchdog()
            self._last_watchdog_s = now_s
        if not self._ready:
            self._ready = True
            self.notifier.ready(f"phase {self.state.phase.name}")
        else:
            self.notifier.status(f"phase {self.state.phase.name}, altitude {self.state.estimate.altitude_m:.0f} m")

    def _report_gps_model(self) -> None:
        """Tell the ground when the receiver's Airborne <1g model is confirmed, and when it is lost (a receiver
        reset): without it a u-blox receiver stops reporting above about 12-18 km."""
        confirmed = getattr(self.hal.gps, "dynamic_model_confirmed", None)
        if confirmed is None or confirmed == self._gps_model_confirmed:
            return
        if confirmed:
            self.event("gps_airborne_model", "info", "GPS airborne <1g dynamic model confirmed")
        elif self._gps_model_confirmed:
            self.event("gps_airborne_model_lost", "warning", "GPS dynamic model lost (receiver reset?): re-asserting")
        self._gps_model_confirmed = confirmed

    # ------------------------------------------------------------------ events

    def event(self, name: str, severity: str, text: str, **fields) -> None:
        """An operator-facing event: logged, sent as STATUSTEXT, kept for the HIL report."""
        self.events.append((self.clock.now_s(), name, severity, text))
        method = {"debug": log.debug, "info": log.info, "notice": log.info, "warning": log.warning,
                  "error": log.error, "critical": log.critical, "alert": log.critical,
                  "emergency": log.critical}.get(severity, log.info)
        method(name, text=text, phase=self.state.phase.name, **fields)
        link = getattr(self, "link", None)
        if link is not None:
            link.statustext(severity, text)
        if self._on_event_hook is not None:
            self._on_event_hook(name, severity, text, fields)

    def _actuator_event(self, name: str, fields: dict) -> None:
        severity = "error" if "fail" in name or "error" in name else "debug"
        if severity == "error":
            self.event(name, severity, f"actuator {name}: {fields}")
        else:
            log.debug(name, **fields)

    def _check_burn_backstops(self) -> None:
        """Warn when a burn time is longer than its FIRE line's own backstop allows (the line would drop early)."""
        ceilings = {}
        for role in BURN_PARAMS.values():
            max_on_s = getattr(getattr(self.hal.outputs, role, None), "max_on_s", None)
            if isinstance(max_on_s, (int, float)):
                ceilings[role] = float(max_on_s)
        for problem in burn_backstop_problems(self.params, ceilings):
            self.event("burn_backstop", "warning", problem)

    def _on_param_change(self, name: str, value: float) -> None:
        if name in BURN_PARAMS or name in ("ACT_BURN_MAX_S", "ACT_BACKSTOP_S"):
            self._check_burn_backstops()

    def _report_start(self, restored, params_source: str, param_problems: list[str]) -> None:
        for problem in restored.problems if restored.source != "primary" and restored.problems else []:
            if restored.source == "backup" or "missing" not in problem:
                self.event("journal_problem", "warning", f"state journal: {problem}")
        for problem in param_problems:
            if "missing" not in problem:
                self.event("param_store_problem", "warning", f"parameters: {problem}")
        latches = restored.latches
        if restored.source == "none":
            self.event("boot", "info", f"flightsw started ({'HIL' if self.simulated else 'flight'})")
            return
        facts = [f"phase {Phase(latches.phase).name}"]
        if latches.release_fired:
            facts.append("release already fired")
        if latches.termination_fired:
            facts.append(f"terminated ({latches.termination_reason})")
        if latches.ballast_used_kg:
            facts.append(f"ballast used {latches.ballast_used_kg:.2f} kg")
        self.event("restart", "warning", "flightsw restarted, resumed: " + ", ".join(facts))

    # ------------------------------------------------------------------ running

    def run(self, *, max_frames: int | None = None) -> None:
        self.executive.run(max_frames=max_frames)

    def request_stop(self) -> None:
        self.executive.request_stop()

    def _reboot(self) -> None:
        """The ground asked for a restart (only accepted on the ground): stop; systemd starts us again."""
        self.restart_requested = True
        self.executive.request_stop()

    def shutdown(self) -> None:
        """Outputs safe first, then persist and close everything.  Safe to call more than once."""
        try:
            self.actuators.safe()
        finally:
            self.hal.outputs.force_safe()
        self.notifier.stopping("stopping: outputs safe")
        self.state.latches.signing_timestamp = self.link.signing_timestamp
        self.journal.save(self.state.latches)
        self.link.close()
        for writer in (self.recorder, self.event_log):
            if writer is not None:
                writer.close()
        if self.event_log is not None:
            logsetup.remove_sink(self.event_log.write)
        self.hal.close()
        self.notifier.close()


def _device_healthy(device) -> bool:
    reading = getattr(device, "reading", None)
    if reading is None:
        reading = getattr(device, "fix", None)
    return bool(reading is not None and reading.healthy)
