"""The daemon: every subsystem composed around one cyclic executive.

The task table in :meth:`Daemon.task_table` is the whole schedule, in frame order:
link rx -> sense -> estimate -> decide -> act -> persist -> telemetry tx -> health.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Callable

import structlog

from flightsw import logsetup, missiontime
from flightsw.actuators import BURN_PARAMS, ActuatorManager, board_constraints
from flightsw.clock import Clock, MissionClock
from flightsw.config.flight import FlightConfig
from flightsw.devices import DeviceReport
from flightsw.dictionary import all_param_constraints, all_param_decls
from flightsw.estimator import Estimator
from flightsw.executive import Executive, TaskSpec
from flightsw.flightlogic import FlightLogic
from flightsw.groundlink import GroundLink
from flightsw.journal import Journal, ParamStore
from flightsw.link.signing import unix_to_signing_timestamp
from flightsw.persistence import JournalKeeper
from flightsw.params import Params
from flightsw.phase import Phase
from flightsw.realtime import apply_realtime
from flightsw.rules.altitude import ballast_credit_after_restart
from flightsw.recorder import EventLogWriter, TlogWriter
from flightsw.sdnotify import SystemdNotifier, watchdog_should_ping
from flightsw.state import FlightState
from hal.interfaces import Hal

log = structlog.get_logger("daemon")

#: The actuator manager's notices the daemon reports as operator events, with their severity (the rest are logged
#: at debug level).
ACTUATOR_EVENTS = {"output_error": "error", "output_recovered": "notice", "burn_capped": "warning"}

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
        self.events: list[tuple[float, str, str, str]] = []  # (mission time, name, severity, text), the latest
        self.event_errors = 0
        state_dir = Path(state_dir if state_dir is not None else config.storage.state_dir)
        state_dir.mkdir(parents=True, exist_ok=True)

        self.params = Params(all_param_decls(), all_param_constraints())
        for constraint in board_constraints(hal.outputs):
            self.params.add_constraint(constraint)
        config_problems = self.params.load_values(config.params)  # also checked with locations at config load
        self.param_store = ParamStore(state_dir, sync=sync_storage)
        stored_params, params_source, param_problems = self.param_store.load(self.params.stored_value_problem)
        param_problems += self.params.load_values(stored_params)

        # the journal, and mission elapsed time resumed from it (flightsw.missiontime)
        self.journal = Journal(state_dir, sync=sync_storage)
        restored = self.journal.load()
        latches = restored.latches
        self.resumed = missiontime.resume(latches, found=restored.found, boot_id=clock.boot_id(),
                                          since_boot_s=clock.since_boot_s())
        self.clock = clock = MissionClock(clock, self.resumed.met_s - clock.now_s())
        now_s = clock.now_s()
        self._correct_down_time = self.resumed.correctable  # GPS time may tell the down time after a reboot
        self._start_s = now_s
        self.clean_start = latches.clean_stop
        latches.clean_stop = False
        latches.starts += 1
        credit_kg = ballast_credit_after_restart(latches, now_s, self.params["BAL_FLOW_KGPS"])
        self.state = FlightState(now_s=now_s, wall_time_s=clock.wall_time_s(), boot_s=now_s, latches=latches)
        self.state.link.gcs_heartbeat_s, self.state.link.go_s = latches.gcs_heard_s, latches.go_s
        self._utc_anchor = (latches.utc_anchor_s, latches.utc_anchor_met_s)

        self.recorder = self.event_log = None
        if record:
            log_dir = Path(log_dir if log_dir is not None else config.storage.log_dir)
            storage = config.storage
            log_dir.mkdir(parents=True, exist_ok=True)
            common = dict(max_file_bytes=int(storage.max_log_file_mb * MIB), max_file_age_s=storage.max_log_file_age_s,
                          min_free_bytes=int(storage.min_free_mb * MIB), clock_mono_s=clock.now_s)
            self.recorder = TlogWriter(log_dir, clock_wall_s=clock.wall_time_s, keep_from_id=latches.tlog_first_id,
                                       **common)
            self.event_log = EventLogWriter(log_dir, keep_from_id=latches.events_first_id, **common)
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
                               on_reboot=self._reboot, log_files=self.recorder, trusted_floor=self._trusted_floor,
                               on_signed_write=self._persist_now)
        self.notifier = notifier if notifier is not None else SystemdNotifier()
        self._last_watchdog_s: float | None = None
        self._watchdog_period_s = self.notifier.watchdog_period_s()
        self._slips_at_last_health = 0
        self.keeper = JournalKeeper(self.journal, self.state, record=self._record, on_event=self.event,
                                    on_saved=lambda: self.link.signing_persisted(self.state.latches.signing_timestamp))
        self._ready = False
        self.restart_requested = False
        self._gps_model_confirmed: bool | None = None

        if config.executive.realtime.enabled and not self.simulated:
            for warning in apply_realtime(priority=config.executive.realtime.priority,
                                          lock_memory=config.executive.realtime.lock_memory):
                log.warning("realtime_unavailable", detail=warning)
        self._report_start(restored, params_source, config_problems + param_problems, credit_kg)
        self.devices = DeviceReport(config.board, hal, event=self.event, now_s=now_s)
        self.devices.report_start()

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
        healthy = (self.executive.tasks_healthy() and self.executive.stats.last_frame_on_time
                   and not self.logic.needs_backup_cut)
        self.actuators.update(now_s, healthy=healthy)
        self.state.outputs_safe = self.actuators.outputs_safe

    def _persist(self, now_s: float) -> None:
        self.keeper.tick(now_s, extra_due=self.link.signing_jumped)

    def _record(self, now_s: float) -> None:
        """Bring the journal's record up to date: the mission clock, timers kept outside the latches, signing."""
        latches, clock = self.state.latches, self.clock
        latches.met_s = now_s
        latches.boot_id = clock.boot_id()
        latches.since_boot_s = clock.since_boot_s()
        latches.utc_anchor_s, latches.utc_anchor_met_s = self._utc_anchor
        latches.gcs_heard_s, latches.go_s = self.state.link.gcs_heartbeat_s, self.state.link.go_s
        latches.signing_timestamp = self.link.signing_timestamp
        latches.signing_streams = self.link.signing_streams()

    def _persist_now(self) -> bool:
        """Write the journal at once (before a firing line is driven, before a signed write is acted on)."""
        return self.keeper.save_now(self.clock.now_s())

    def _trusted_floor(self) -> int:
        """A signing timestamp known not to be in the future: the GPS UTC anchor carried by the mission clock
        (0 when no trusted UTC was ever known)."""
        anchor_utc_s, anchor_met_s = self._utc_anchor
        if not (math.isfinite(anchor_utc_s) and math.isfinite(anchor_met_s)):
            return 0
        return unix_to_signing_timestamp(anchor_utc_s + (self.state.now_s - anchor_met_s))

    def _trusted_time(self, now_s: float) -> None:
        """Once a second: a trusted UTC from the GPS anchors the mission clock and signing, and (once, after a
        reboot) tells the down time the mission clock did not count."""
        utc_s = missiontime.trusted_utc_s(self.state.estimate)
        if not math.isfinite(utc_s):
            return
        if self._correct_down_time:
            self._correct_down_time = False
            anchor_utc_s, anchor_met_s = self._utc_anchor
            missed_s = missiontime.missed_down_time_s(anchor_utc_s, anchor_met_s, utc_s, now_s)
            if missed_s > 0.0:
                missiontime.rebase_latches(self.state.latches, self._start_s, missed_s)
                link = self.state.link
                for name in ("gcs_heartbeat_s", "go_s"):
                    value = getattr(link, name)
                    if math.isfinite(value) and value <= self._start_s:
                        setattr(link, name, value - missed_s)
                self.state.latches_dirty = True
                self.event("down_time", "warning", f"GPS time shows {missed_s:.0f} s of down time the mission "
                                                   "clock did not count: timers moved on by it")
        self._utc_anchor = (utc_s, now_s)
        self.link.observe_trusted_utc(utc_s)

    def _telemetry(self, now_s: float) -> None:
        self.link.tx(now_s)

    def _health(self, now_s: float) -> None:
        self._trusted_time(now_s)
        sensors = self.hal.sensors()
        self.state.sensors_healthy = all(_device_healthy(device) for device in sensors)
        self.devices.update(self.state, self.params, now_s)
        self._report_gps_model()
        self._recorder_health()
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

    def _recorder_health(self) -> None:
        """Tick the recorder's writers; report their write failures (the first, then every 60th) and a log space
        that only the current flight's files fill; keep each writer's first file id in the journal."""
        latches = self.state.latches
        for writer, latch in ((self.recorder, "tlog_first_id"), (self.event_log, "events_first_id")):
            if writer is None:
                continue
            errors_before, low_before = writer.write_errors, writer.space_low
            writer.tick()
            if writer.write_errors > errors_before and (errors_before == 0 or writer.write_errors % 60 == 0):
                self.event("log_write_failed", "error", f"flight recorder: {writer.write_errors} write failures, "
                                                        f"{writer.dropped_records} records lost: {writer.last_error}")
            if writer.space_low and not low_before:
                self.event("log_space_low", "warning", "log storage below its free-space floor, and only this "
                                                       "flight's logs are left: nothing deleted")
            if writer.keep_from_id and getattr(latches, latch) != writer.keep_from_id:
                setattr(latches, latch, writer.keep_from_id)
                self.state.timers_dirty = True
        self.state.storage_errors = (self.journal.write_errors + self.journal.degraded_writes
                                     + self.param_store.write_errors
                                     + sum(w.write_errors for w in (self.recorder, self.event_log) if w is not None))

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
        """An operator-facing event: logged, sent as STATUSTEXT, kept for the HIL report.  Never raises: a
        logging failure (a broken pipe, a full disk) or a failing listener is counted in ``event_errors``."""
        self.events.append((self.clock.now_s(), name, severity, text))
        for deliver in (self._log_event, self._link_event, self._hook_event):
            try:
                deliver(name, severity, text, fields)
            except Exception:  # noqa: BLE001 - an event must never interrupt what reported it
                self.event_errors += 1

    def _log_event(self, name: str, severity: str, text: str, fields: dict) -> None:
        method = {"debug": log.debug, "info": log.info, "notice": log.info, "warning": log.warning,
                  "error": log.error, "critical": log.critical, "alert": log.critical,
                  "emergency": log.critical}.get(severity, log.info)
        method(name, text=text, phase=self.state.phase.name, **fields)

    def _link_event(self, name: str, severity: str, text: str, fields: dict) -> None:
        link = getattr(self, "link", None)
        if link is not None:
            link.statustext(severity, text)

    def _hook_event(self, name: str, severity: str, text: str, fields: dict) -> None:
        if self._on_event_hook is not None:
            self._on_event_hook(name, severity, text, fields)

    def _actuator_event(self, name: str, fields: dict) -> None:
        if name in ACTUATOR_EVENTS:
            severity = ACTUATOR_EVENTS[name]
            text = {"output_error": f"output line {fields.get('line') or '?'} failed to {fields.get('action')}: "
                                    f"{fields.get('error')}",
                    "output_recovered": f"output line {fields.get('line')} works again "
                                        f"({fields.get('errors')} errors in all)",
                    "burn_capped": f"{fields.get('chain')} burn of {fields.get('requested_s')} s cut to "
                                   f"ACT_BURN_MAX_S {fields.get('burn_s')} s"}[name]
            self.event(name, severity, text)
        else:
            log.debug(name, **fields)

    def _report_start(self, restored, params_source: str, param_problems: list[str], credit_kg: float) -> None:
        new_flight = not restored.found and all(problem.endswith(": missing") for problem in restored.problems)
        for problem in [] if new_flight else restored.problems:  # no copy usable: every fact lost, say so loudly
            severity = "critical" if "rejected" in problem or not restored.found else "warning"
            self.event("journal_problem", severity, f"state journal: {problem}")
        for problem in param_problems:
            self.event("param_problem", "warning", f"parameters: {problem}")
        latches = restored.latches
        if not restored.found:
            self.event("boot", "info", f"flightsw started, new flight {latches.flight_id} "
                                       f"({'HIL' if self.simulated else 'flight'})")
            return
        facts = [f"phase {Phase(latches.phase).name}"]
        if latches.release_fired:
            facts.append("release already fired")
        if latches.termination_fired:
            facts.append(f"terminated ({latches.termination_reason}, {latches.termination_stage})")
        if latches.ballast_used_kg:
            facts.append(f"ballast used {latches.ballast_used_kg:.2f} kg")
        if credit_kg > 0.0:
            facts.append(f"{credit_kg:.3f} kg counted for a ballast valve open at the stop")
        resumed = self.resumed.describe()
        if self.clean_start:
            self.event("boot", "info", f"flightsw started after a clean stop ({latches.starts} starts); "
                                       f"{resumed}; " + ", ".join(facts))
        else:
            self.event("restart", "warning", f"flightsw restarted after a crash or power loss ({latches.starts} "
                                             f"starts); {resumed}; resumed: " + ", ".join(facts))

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
        self.state.latches.clean_stop = True
        self.keeper.save_now(self.clock.now_s())
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
