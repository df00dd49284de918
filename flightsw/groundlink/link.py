"""The ground link: MAVLink 2 to MAVProxy, QGroundControl and MAVSDK over every configured endpoint.

:class:`GroundLink` owns the endpoints and runs two executive tasks:

* :meth:`GroundLink.rx` (every frame): polls each endpoint with its byte budget and handles each frame;
* :meth:`GroundLink.tx` (every frame): telemetry that is due, parameter streams, command progress, STATUSTEXT.

Signing policy (when a key is configured): a write -- every COMMAND_LONG/COMMAND_INT marked ``requires_signature``
in the command table, PARAM_SET -- is carried out only when its frame has a GOOD signature with our key (not a
replay, not too old).  With ``require_signed_commands: false`` unsigned writes are allowed, but a frame whose
signature is bad, replayed or too old never is.  MAVLink 1 frames cannot be signed, so they can only read.  A
refused command is ACKed DENIED; refusals are reported in a STATUSTEXT at most every
:data:`REFUSAL_REPORT_INTERVAL_S`.  SETUP_SIGNING has its own rule (:func:`.services.setup_signing_refusal`).

Only HEARTBEATs from ``gcs_system_id`` (authorised by the same policy) refresh ``state.link.gcs_heartbeat_s``;
``state.link.connected`` is true while the last one is at most :data:`GCS_TIMEOUT_S` old.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

from pymavlink.dialects.v20 import common as mavlink

from flightsw.clock import Clock
from flightsw.config.flight import GroundLinkConfig
from flightsw.groundlink import identity, statustext
from flightsw.groundlink.command_table import COMMANDS
from flightsw.groundlink.commands import CommandDispatcher
from flightsw.groundlink.logs import LogService
from flightsw.groundlink.parameters import ParameterService
from flightsw.groundlink.progress import progress_watcher
from flightsw.groundlink.services import Services
from flightsw.groundlink.telemetry import TELEMETRY, TelemetrySchedule
from flightsw.groundlink.vehicle import VehicleView
from flightsw.link.endpoint import Endpoint, Received
from flightsw.link.signing import SignatureResult, SigningPolicy, load_key_file
from flightsw.link.transport import LinkConfig, Transport, make_transport
from flightsw.params import Params
from flightsw.state import FlightState

HIGH_LATENCY_INTERVAL_S = 5.0
STATUSTEXT_PER_FRAME = 2
REFUSAL_REPORT_INTERVAL_S = 5.0
GCS_TIMEOUT_S = 5.0

_REFUSAL_WHY = {
    SignatureResult.BAD_SIGNATURE: "bad signature",
    SignatureResult.REPLAY: "replayed signature",
    SignatureResult.TOO_OLD: "signature timestamp too old",
    SignatureResult.NOT_CHECKED: "signature not checked",
}


@dataclass
class LinkState:
    """One endpoint and what the ground link keeps per link."""

    name: str
    endpoint: Endpoint
    high_latency: bool
    local: bool
    max_rx_bytes: int
    schedule: TelemetrySchedule
    param_cursor: int | None = None
    param_next_s: float = 0.0
    high_latency_next_s: float = 0.0


class GroundLink:
    """The vehicle's MAVLink presence (see the module docstring for the policy).

    :param config: the ``link:`` section of the flight configuration.
    :param state: the shared :class:`FlightState`; :param params: the :class:`Params`;
    :param logic: the :class:`flightsw.flightlogic.FlightLogic` (command handlers).
    :param executive: the :class:`flightsw.executive.Executive` (or its stats, or None; may be set later).
    :param hal: the :class:`hal.interfaces.Hal`; :param clock: the flight clock.
    :param simulated: flying the simulated board (HEARTBEAT gets HIL_ENABLED).
    :param recorder: called with every raw frame sent and received (the ``.tlog``).
    :param on_params_changed: called with ``params.non_default()`` after every accepted PARAM_SET.
    :param endpoints: endpoints to use instead of building them from ``config.endpoints``; each is matched to a
        configured link of the same name for its ``high_latency``/``local``/byte-budget settings (defaults when
        none matches).  The signing policy is then the first endpoint's that has one; if none has one and a key
        file is configured, the policy built from it is installed on every given endpoint.
    :param on_reboot: called (after the ACK went out) when the ground asks for a restart on the ground.
    :param trusted_floor: returns a signing timestamp known not to be in the future (GPS time carried by the
        mission clock; 0 when unknown): the replay window for signing streams never seen before.
    :param on_signed_write: called before a signed write (a command or PARAM_SET) is acted on, to persist the
        signing streams (so the frame can not be replayed after a restart), and after a write command changed a
        latched fact or a timer, before its ACK goes out; its answer is not waited on.
    :param log_files: the flight recorder (``list_logs()``, ``flush()``, ``current_id``) whose ``.tlog`` files the
        MAVLink log-download protocol serves; None: no log download.
    :raises flightsw.link.signing.KeyFileError: the configured key file is missing, too open or malformed.
    :raises ValueError: a configured endpoint is inconsistent.
    """

    def __init__(self, config: GroundLinkConfig, *, state: FlightState, params: Params, logic: Any,
                 executive: Any, hal: Any, clock: Clock, simulated: bool,
                 recorder: Callable[[bytes], None] | None = None,
                 on_params_changed: Callable[[dict], None] | None = None,
                 endpoints: list[Endpoint] | None = None,
                 extra_links: list[tuple[LinkConfig, Transport]] | None = None,
                 on_reboot: Callable[[], None] | None = None, log_files: Any = None,
                 trusted_floor: Callable[[], int] | None = None,
                 on_signed_write: Callable[[], object] | None = None) -> None:
        self.config = config
        self.system_id = config.system_id
        self.component_id = config.component_id
        self.clock = clock
        self.view = VehicleView(state, params, logic, executive, hal, clock, simulated)
        self.on_reboot = on_reboot
        self.started_s = clock.now_s()
        self.high_latency_enabled = True
        self.trusted_floor = trusted_floor or (lambda: 0)
        self.on_signed_write = on_signed_write
        self.signing: SigningPolicy | None = None
        if endpoints is None:
            self.signing = self._load_policy(config, state)
            endpoints = self._build_endpoints(config, recorder, extra_links or [])
        else:
            self.signing = next((ep.signing for ep in endpoints if ep.signing is not None), None)
            if self.signing is None and config.signing.key_file:
                self.signing = self._load_policy(config, state)
                for endpoint in endpoints:
                    endpoint.set_signing(self.signing)
            elif self.signing is not None:
                self.signing.trusted_floor = self.trusted_floor
        self.require_signed = self.signing is not None and config.signing.require_signed_commands
        by_name = {lc.name: lc for lc in config.endpoints}
        by_name.update({lc.name: lc for lc, _ in extra_links or []})
        self.links: list[LinkState] = [self._link_state(ep, by_name.get(ep.name)) for ep in endpoints]
        self.statustexts = statustext.StatusTextQueue()
        self.parameters = ParameterService(self, params, on_params_changed)
        self.commands = CommandDispatcher(self, COMMANDS)
        self.services = Services(self)
        self._handlers = {
            "HEARTBEAT": self._on_heartbeat,
            "COMMAND_LONG": self._on_command,
            "COMMAND_INT": self._on_command,
            "PARAM_REQUEST_LIST": self.parameters.handle_request_list,
            "PARAM_REQUEST_READ": self.parameters.handle_request_read,
            "PARAM_SET": self._on_param_set,
            "TIMESYNC": self.services.timesync,
            "MISSION_REQUEST_LIST": self.services.mission_request_list,
            "MISSION_COUNT": self.services.mission_upload,
            "MISSION_CLEAR_ALL": self.services.mission_clear_all,
            "FILE_TRANSFER_PROTOCOL": self.services.file_transfer,
            "SETUP_SIGNING": self.services.setup_signing,
            "REQUEST_DATA_STREAM": self.services.request_data_stream,
        }
        self.logs: LogService | None = None
        if log_files is not None:
            self.logs = LogService(self, list_logs=log_files.list_logs, flush=log_files.flush,
                                   current_id=lambda: log_files.current_id)
            self._handlers.update({
                "LOG_REQUEST_LIST": self.logs.request_list,
                "LOG_REQUEST_DATA": self.logs.request_data,
                "LOG_REQUEST_END": self.logs.request_end,
                "LOG_ERASE": self.logs.erase,
            })
        self._now_s = self.started_s
        self._refusals_unreported = 0
        self._last_refusal_report_s = -math.inf
        self._last_launch = self.view.launch_latches()
        self._last_home: tuple | None = self.view.home()
        self._stats = {"rx_frames": 0, "tx_frames": 0, "tx_failures": 0, "handler_errors": 0,
                       "gcs_heartbeats": 0, "unsigned_refused": 0, "high_latency_sent": 0,
                       "telemetry_errors": 0}
        self.last_error = ""

    # ------------------------------------------------------------------ construction

    def _load_policy(self, config: GroundLinkConfig, state: FlightState) -> SigningPolicy | None:
        """The policy for the configured key file (None without one); our timestamp and the streams' timestamps
        resume from the journal."""
        if not config.signing.key_file:
            return None
        key = load_key_file(config.signing.key_file)
        latches = state.latches
        return SigningPolicy.create(key, stored_timestamp=latches.signing_timestamp or None,
                                    streams=latches.signing_streams, wall_clock=self.clock.wall_time_s,
                                    trusted_floor=self.trusted_floor)

    def _build_endpoints(self, config: GroundLinkConfig, recorder: Callable[[bytes], None] | None,
                         extra_links: list[tuple[LinkConfig, Transport]]) -> list[Endpoint]:
        links = [(lc, make_transport(lc, clock=self.clock.now_s)) for lc in config.endpoints] + list(extra_links)
        return [Endpoint(transport, system_id=config.system_id, component_id=config.component_id,
                         signing=self.signing, recorder=recorder, link_id=lc.signing_link_id)
                for lc, transport in links]

    def _link_state(self, endpoint: Endpoint, lc: LinkConfig | None) -> LinkState:
        lc = lc or LinkConfig(name=endpoint.name)
        return LinkState(name=endpoint.name, endpoint=endpoint, high_latency=lc.high_latency, local=lc.local,
                         max_rx_bytes=lc.max_rx_bytes_per_frame, schedule=TelemetrySchedule(self.started_s),
                         high_latency_next_s=self.started_s)

    def install_signing(self, policy: SigningPolicy) -> None:
        """Use ``policy`` (a new key from SETUP_SIGNING) on every endpoint from now on."""
        policy.trusted_floor = self.trusted_floor
        self.signing = policy
        self.require_signed = self.config.signing.require_signed_commands
        for state in self.links:
            state.endpoint.set_signing(policy)

    # ------------------------------------------------------------------ public properties

    @property
    def state(self) -> FlightState:
        return self.view.state

    @property
    def logic(self) -> Any:
        return self.view.logic

    @property
    def executive(self) -> Any:
        return self.view.executive

    @executive.setter
    def executive(self, value: Any) -> None:
        self.view.executive = value

    @property
    def signing_timestamp(self) -> int:
        """Our newest outgoing signing timestamp (10 us units since 2015), to persist every ``PERSIST_INTERVAL_S``.
        Without signing, the stored value is passed through unchanged."""
        if self.signing is None:
            return int(self.view.state.latches.signing_timestamp)
        return self.signing.clock.value_to_persist

    @property
    def signing_jumped(self) -> bool:
        """Our signing timestamp moved on by more than the boot margin covers: persist now."""
        return self.signing is not None and self.signing.clock.jumped

    def signing_persisted(self, timestamp: int) -> None:
        """The journal stored ``timestamp``."""
        if self.signing is not None:
            self.signing.clock.persisted(timestamp)

    def signing_streams(self) -> dict[str, int]:
        """Every signing stream's newest accepted timestamp (to persist); the stored ones without signing."""
        if self.signing is None:
            return dict(self.view.state.latches.signing_streams)
        return self.signing.verifier.streams()

    def observe_trusted_utc(self, utc_s: float) -> None:
        """A trusted UTC (GPS): our outgoing timestamp never falls behind it."""
        if self.signing is not None:
            self.signing.clock.observe_unix_time(utc_s)

    @property
    def counters(self) -> dict[str, int]:
        """Counters for telemetry and the health report (a fresh dict each call)."""
        out = dict(self._stats)
        c = self.commands
        out.update(commands_received=c.received, command_retries=c.retries_answered,
                   commands_foreign=c.ignored_foreign, commands_unsupported=c.unsupported,
                   commands_refused_unsigned=c.refused_unsigned)
        out.update({f"commands_{name.lower()}": count for name, count in c.results.items()})
        p = self.parameters
        out.update(param_sets_accepted=p.sets_accepted, param_sets_rejected=p.sets_rejected,
                   param_values_sent=p.values_sent)
        s = self.services
        out.update(timesync_answered=s.timesync_answered, mission_answered=s.mission_answered,
                   ftp_naks=s.ftp_naks, data_stream_requests_ignored=s.data_stream_requests_ignored,
                   signing_setups=s.signing_setups, signing_setups_refused=s.signing_setups_refused)
        out.update(statustext_queued=self.statustexts.queued, statustext_dropped=self.statustexts.dropped)
        out.update(self.signature_counts())
        out["rx_errors"] = self.receive_errors()
        return out

    def signature_counts(self) -> dict[str, int]:
        """Received frames by signature verdict, over every endpoint."""
        counts = {"sig_good": 0, "sig_bad": 0, "sig_unsigned": 0, "sig_replay": 0, "sig_too_old": 0}
        for state in self.links:
            stats = state.endpoint.stats
            counts["sig_good"] += stats.sig_good
            counts["sig_bad"] += stats.sig_bad
            counts["sig_unsigned"] += stats.unsigned
            counts["sig_replay"] += stats.sig_replay
            counts["sig_too_old"] += stats.sig_too_old
        return counts

    def receive_errors(self) -> int:
        """Frames lost to bad CRCs, unknown ids or malformed contents, over every endpoint."""
        errors = 0
        for state in self.links:
            stats = state.endpoint.stats
            errors += stats.bad_crc + stats.malformed + stats.unknown_msg
        return errors

    def named_values(self) -> list[tuple[str, float]]:
        """NAMED_VALUE_FLOAT contents: (name of at most 10 characters, value)."""
        view, state = self.view, self.view.state
        values: list[tuple[str, float]] = [("BAL_USED", state.latches.ballast_used_kg)]
        left_kg = self.ballast_left_kg()
        if left_kg is not None:
            values.append(("BAL_LEFT", left_kg))
        control = state.control
        values += [("LIFT_KG", control.lift_change_kg), ("CTRL_EFF", control.effort),
                   ("EXEC_SLIP", float(view.slips())), ("STOR_ERR", float(state.storage_errors))]
        sig = self.signature_counts()
        values += [("SIG_GOOD", float(sig["sig_good"])), ("SIG_BAD", float(sig["sig_bad"])),
                   ("SIG_UNSGN", float(sig["sig_unsigned"])),
                   ("SIG_RPLY", float(sig["sig_replay"] + sig["sig_too_old"]))]
        return values

    # ------------------------------------------------------------------ sending

    def send_on(self, state: LinkState, msg) -> bool:
        ok = state.endpoint.send(msg)
        self._stats["tx_frames" if ok else "tx_failures"] += 1
        return ok

    def broadcast(self, msg, *, high_latency: bool = True) -> None:
        """Send ``msg`` on every link (``high_latency=False``: skip high-latency links)."""
        for state in self.links:
            if high_latency or not state.high_latency:
                self.send_on(state, msg)

    def statustext(self, severity: str, text: str) -> None:
        """Queue an operator-facing event (``severity`` as the daemon's event names: "info", "warning", ...)."""
        self.statustexts.put(statustext.severity_of(severity), str(text))

    def refuse_unsigned(self, text: str) -> None:
        """Count a refused unauthenticated write and report it, at most once per REFUSAL_REPORT_INTERVAL_S."""
        self._stats["unsigned_refused"] += 1
        self._refusals_unreported += 1
        if self._now_s - self._last_refusal_report_s >= REFUSAL_REPORT_INTERVAL_S:
            more = self._refusals_unreported - 1
            self.statustext("warning", text + (f" (+{more} more refused)" if more > 0 else ""))
            self._refusals_unreported = 0
            self._last_refusal_report_s = self._now_s

    def ballast_left_kg(self) -> float | None:
        """Ballast still on board (``ALT_BAL_TOTAL`` minus used), or None when no total is declared."""
        params = self.view.params
        if "ALT_BAL_TOTAL" not in params.by_name or params["ALT_BAL_TOTAL"] <= 0:
            return None
        return max(0.0, params["ALT_BAL_TOTAL"] - self.view.state.latches.ballast_used_kg)

    def high_latency2(self, now_s: float):
        left_kg = self.ballast_left_kg()
        fraction = None if left_kg is None else left_kg / self.view.params["ALT_BAL_TOTAL"]
        return identity.high_latency2(self.view, now_s, self.started_s, fraction)

    def progress_watcher(self, command: int):
        """The poll function that finishes an IN_PROGRESS command (see :mod:`.progress`)."""
        return progress_watcher(self, command)

    # ------------------------------------------------------------------ receiving

    def authorise(self, rx: Received) -> tuple[bool, str]:
        """Whether ``rx`` may change anything, and why not."""
        if self.signing is None:
            return True, ""
        if rx.signature is SignatureResult.GOOD:
            return True, ""
        if rx.signature is SignatureResult.UNSIGNED:
            if not self.require_signed:
                return True, ""
            return False, "MAVLink 1 frames cannot be signed" if rx.mavlink_version == 1 else "not signed"
        return False, _REFUSAL_WHY.get(rx.signature, "signature not accepted")

    def rx(self, now_s: float) -> None:
        """Poll every endpoint (bounded by its byte budget) and handle every frame that arrived."""
        self._now_s = now_s
        for state in self.links:
            for rx in state.endpoint.poll(state.max_rx_bytes):
                self._stats["rx_frames"] += 1
                handler = self._handlers.get(rx.msg.get_type())
                if handler is None:
                    continue
                try:
                    handler(state, rx, now_s)
                except Exception as error:  # noqa: BLE001 - one bad frame must not stop the others
                    self._stats["handler_errors"] += 1
                    self.last_error = f"{rx.msg.get_type()}: {type(error).__name__}: {error}"
        link = self.view.state.link
        link.connected = math.isfinite(link.gcs_heartbeat_s) and now_s - link.gcs_heartbeat_s <= GCS_TIMEOUT_S

    def _on_heartbeat(self, state: LinkState, rx: Received, now_s: float) -> None:
        if rx.msg.get_srcSystem() != self.config.gcs_system_id:
            return
        if not self.authorise(rx)[0]:
            return
        self._stats["gcs_heartbeats"] += 1
        self.view.state.link.gcs_heartbeat_s = now_s

    def _before_signed_write(self, rx: Received) -> None:
        """A signed frame is about to change something: its stream's timestamp is persisted first, so that the
        frame is a replay after a restart."""
        if rx.signature is SignatureResult.GOOD and self.on_signed_write is not None:
            try:
                self.on_signed_write()
            except Exception:  # noqa: BLE001 - reported by the journal; the write goes on
                self._stats["handler_errors"] += 1

    def persist_before_ack(self) -> None:
        """A write command was carried out: persist what it changed before its ACK is sent."""
        flight = self.view.state
        if (flight.latches_dirty or flight.timers_dirty) and self.on_signed_write is not None:
            try:
                self.on_signed_write()
            except Exception:  # noqa: BLE001 - reported by the journal; the ACK goes out all the same
                self._stats["handler_errors"] += 1

    def _on_command(self, state: LinkState, rx: Received, now_s: float) -> None:
        ok, why = self.authorise(rx)
        if ok and self.commands.is_write(rx.msg):
            self._before_signed_write(rx)
        self.commands.handle(state, rx, now_s, authorised=ok, why=why)

    def _on_param_set(self, state: LinkState, rx: Received, now_s: float) -> None:
        ok, why = self.authorise(rx)
        if ok:
            self._before_signed_write(rx)
        self.parameters.handle_set(state, rx, now_s, authorised=ok, why=why)

    # ------------------------------------------------------------------ transmitting

    def tx(self, now_s: float) -> None:
        """Send what is due at ``now_s``: telemetry, HIGH_LATENCY2, parameter streams, command progress and
        STATUSTEXT."""
        self._now_s = now_s
        home_changed = self._home_changed()
        built: dict[int, list] = {}
        for state in self.links:
            if state.high_latency:
                self._tx_high_latency(state, now_s)
            else:
                if now_s + 1e-9 >= state.schedule.earliest_due_s:  # most frames: nothing due
                    for entry in state.schedule.due(now_s):
                        if entry.msg_id not in built:
                            built[entry.msg_id] = self._build(entry, now_s)
                        for msg in built[entry.msg_id]:
                            self.send_on(state, msg)
                if home_changed:
                    for msg in self._build(TELEMETRY_HOME, now_s):
                        self.send_on(state, msg)
            if state.param_cursor is not None:
                self.parameters.tick(state, now_s)
            if self.logs is not None and self.logs.transfers:
                self.logs.tick(state)
        self.commands.tick(now_s)
        if self.statustexts:
            for _ in range(STATUSTEXT_PER_FRAME):
                msg = self.statustexts.pop()
                if msg is None:
                    break
                self.broadcast(msg, high_latency=msg.severity <= mavlink.MAV_SEVERITY_CRITICAL)

    def _home_changed(self) -> bool:
        """Whether the launch point became known or moved since the last frame (HOME_POSITION is then sent).

        :meth:`VehicleView.home` is recomputed only when the latched values it depends on changed."""
        launch = self.view.launch_latches()
        if launch == self._last_launch:
            return False
        self._last_launch = launch
        home = self.view.home()
        changed = home != self._last_home
        self._last_home = home
        return changed and home is not None

    def _build(self, entry, now_s: float) -> list:
        """A table row's messages; a builder that fails is counted and skipped, the rest of the frame goes on."""
        try:
            return entry.builder(self, now_s)
        except Exception as error:  # noqa: BLE001 - one broken builder must not silence the link
            self._stats["telemetry_errors"] += 1
            self.last_error = f"{entry.name}: {type(error).__name__}: {error}"
            return []

    def _tx_high_latency(self, state: LinkState, now_s: float) -> None:
        if not self.high_latency_enabled or now_s + 1e-9 < state.high_latency_next_s:
            return
        state.high_latency_next_s = now_s + HIGH_LATENCY_INTERVAL_S
        self._stats["high_latency_sent"] += 1
        self.send_on(state, self.high_latency2(now_s))

    def close(self) -> None:
        """Close every endpoint (and its transport).  Safe to call more than once."""
        for state in self.links:
            state.endpoint.close()


TELEMETRY_HOME = next(entry for entry in TELEMETRY if entry.name == "HOME_POSITION")
