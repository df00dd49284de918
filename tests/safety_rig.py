"""A bench for the safety core, built of its real parts (imported by the safety tests).

:class:`Bench` is the flight software's decision and actuation chain as the daemon composes it -- the real
:class:`~flightsw.flightlogic.FlightLogic`, the real :class:`~flightsw.actuators.ActuatorManager` driving real
``hal.gpio`` output lines on gpiozero mock pins (``hil.sim.BoardPin``: a pin can be made to fail its next writes),
the real :class:`~flightsw.journal.Journal` on disk, written by the daemon's own persist policy
(:class:`~flightsw.persistence.JournalKeeper`) -- fed with a scripted estimate instead of sensors, on a simulated
mission clock.  What is simulated is only the outside world: a balloon that climbs, separates when the cutdown wire
has burned long enough, releases its payload when the release wire has, and lands.

:meth:`Bench.kill` is a SIGKILL: the flight software is dropped where it stands, with the output pins left at the
levels it drove; :meth:`Bench.restart` is what systemd does next (``ExecStopPost`` drives every line safe after
``held_s``, the new process starts ``down_s`` after the kill and resumes from the journal).  Every rising edge of
every line is recorded when it happens (``edges``), so a test counts burns the way the hardware would see them.
"""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

from gpiozero.pins.mock import MockFactory

from flightsw.actuators import ActuatorManager, board_constraints
from flightsw.config.check import load_board_of
from flightsw.dictionary import all_param_constraints, all_param_decls
from flightsw.flightlogic import FlightLogic
from flightsw.journal import Journal
from flightsw.params import Params
from flightsw.persistence import JournalKeeper
from flightsw.phase import Phase
from flightsw.rules.altitude import ballast_credit_after_restart
from flightsw.state import FlightState
from hal.board import safe_outputs
from hal.gpio import OUTPUT_ROLES, build_output_lines
from hil.sim import BoardPin, drop_claims_keeping_levels

ROOT = Path(__file__).resolve().parent.parent
BOARD = load_board_of(ROOT / "config" / "boards" / "hil.yaml")
FRAME_S = 0.05
BOX = ((40.0, -106.0), (41.0, -106.0), (41.0, -105.0), (40.0, -105.0))
MISSION = SimpleNamespace(launch_box=BOX, geofence=())
SEPARATION_BURN_S = 2.0  # the cutdown wire cuts after burning this long (the world's burn wire)
RELEASE_BURN_S = 1.0  # the release wire lets the payload go after burning this long


class World:
    """The balloon as the bench's estimate sees it: climbs at ``ascent_rate_mps`` until the cut, then falls at
    ``descent_rate_mps`` to the ground; ``cut_works`` False makes the cutdown wire burn without cutting."""

    def __init__(self, altitude_m: float = 28000.0, ascent_rate_mps: float = 0.0) -> None:
        self.altitude_m = altitude_m
        self.rate_mps = ascent_rate_mps
        self.descent_rate_mps = -20.0
        self.cut_works = True
        self.separated = False
        self.released = False
        self.release_seen_s = math.nan
        self.burned_s = {"release_fire": 0.0, "cutdown_fire": 0.0}
        self.ballast_open_s = 0.0

    def step(self, dt_s: float, active: dict[str, bool], now_s: float) -> None:
        for role in self.burned_s:
            self.burned_s[role] = self.burned_s[role] + dt_s if active[role] else 0.0
        if active["ballast_valve"]:
            self.ballast_open_s += dt_s
        if self.burned_s["release_fire"] >= RELEASE_BURN_S and not self.released:
            self.released, self.release_seen_s = True, now_s
        if self.burned_s["cutdown_fire"] >= SEPARATION_BURN_S and self.cut_works:
            self.separated = True
        if self.separated:
            self.rate_mps = self.descent_rate_mps if self.altitude_m > 0.0 else 0.0
        self.altitude_m = max(0.0, self.altitude_m + self.rate_mps * dt_s)


class Bench:
    """The safety core of one flight (see the module documentation).

    :param phase: the phase the flight starts in (a fresh journal); ``params``: parameter values to set.
    """

    def __init__(self, tmp_path: Path, *, phase: Phase = Phase.FLOAT, altitude_m: float = 28000.0,
                 ascent_rate_mps: float = 0.0, params: dict | None = None) -> None:
        self.dir = Path(tmp_path)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.param_values = {"FLT_MODE": 1, "ALT_BAL_TOTAL": 2.0, **(params or {})}
        self.pins = MockFactory(pin_class=BoardPin)
        self.world = World(altitude_m, ascent_rate_mps)
        self.t = 0.0
        self.link_alive = True
        self.edges: list[tuple[float, str]] = []  # (time, role) of every rising edge, recorded when it happens
        self.events: list[tuple[float, str, str]] = []  # (time, name, text), over every process
        self.restarts = 0
        self._pin_roles = {getattr(BOARD.outputs, role).pin: role for role in OUTPUT_ROLES
                           if getattr(BOARD.outputs, role, None) is not None}
        self._start(initial_phase=phase)

    # ------------------------------------------------------------------ one process

    def _start(self, *, initial_phase: Phase | None = None) -> None:
        self.params = Params(all_param_decls(), all_param_constraints())
        self.outputs = build_output_lines(BOARD.outputs, pin_factory=self.pins)
        for constraint in board_constraints(self.outputs):
            self.params.add_constraint(constraint)
        assert not self.params.load_values(self.param_values)
        self._watch_edges()
        self.journal = Journal(self.dir, sync=False)
        restored = self.journal.load()
        latches = restored.latches
        if not restored.found and initial_phase is not None:
            latches.phase = int(initial_phase)
            if initial_phase is not Phase.PREFLIGHT:
                latches.launch_s = 0.0
        self.restored = restored
        self.credit_kg = ballast_credit_after_restart(latches, self.t, self.params["BAL_FLOW_KGPS"])  # as the daemon
        self.state = FlightState(now_s=self.t, latches=latches)
        self.state.link.gcs_heartbeat_s, self.state.link.go_s = latches.gcs_heard_s, latches.go_s
        self.actuators = ActuatorManager(self.outputs, self.params, release_already_fired=latches.release_fired,
                                         cutdown_attempts=latches.cutdown_attempts,
                                         ballast_used_kg=latches.ballast_used_kg)
        self.keeper = JournalKeeper(self.journal, self.state, record=self._record, on_event=self._event)
        self.logic = FlightLogic(self.state, self.params, self.actuators, MISSION, on_event=self._event,
                                 persist=lambda: self.keeper.save_now(self.t))
        self._fill_estimate()

    def _record(self, now_s: float) -> None:
        self.state.latches.met_s = now_s
        self.state.latches.gcs_heard_s = self.state.link.gcs_heartbeat_s
        self.state.latches.go_s = self.state.link.go_s

    def _event(self, name: str, severity: str, text: str, **fields) -> None:
        self.events.append((self.t, name, text))

    def _watch_edges(self) -> None:
        outputs = BOARD.outputs
        roles = {self.pins.pin(number).info.name: role for number, role in self._pin_roles.items()}

        def on_edge(pin, level: bool) -> None:
            role = roles[pin.info.name]
            if level == getattr(outputs, role).active_high:
                self.edges.append((self.t, role))

        for number in roles:
            self.pins.pin(number).edge_sink = on_edge

    def active(self, role: str) -> bool:
        line = getattr(BOARD.outputs, role)
        return bool(self.pins.pin(line.pin).state) == line.active_high

    def _fill_estimate(self) -> None:
        est, world = self.state.estimate, self.world
        est.altitude_m, est.altitude_valid = world.altitude_m, True
        est.vertical_rate_mps, est.vertical_rate_valid = world.rate_mps, True
        est.latitude_deg, est.longitude_deg, est.position_valid = 40.5, -105.5, True
        est.fix_type, est.satellites = 3, 10
        est.bus_voltage_v, est.power_valid = 7.6, True
        est.temperatures_c, est.temperature_valid = (10.0,), True
        recent = world.released and self.t - world.release_seen_s < 3.0
        est.lift_change_mps2 = 1.0 if recent else 0.0
        self.state.sensors_healthy = True

    # ------------------------------------------------------------------ frames

    def frame(self) -> None:
        """One frame: the world moves, then the daemon's tasks in their order (link, estimate, decide, act,
        persist)."""
        self.t += FRAME_S
        self.world.step(FRAME_S, {role: self.active(role) for role in ("release_fire", "cutdown_fire",
                                                                      "ballast_valve")}, self.t)
        state = self.state
        state.now_s = self.t
        if self.link_alive:
            state.link.gcs_heartbeat_s = self.t
        self._fill_estimate()
        self.logic.decide(self.t)
        self.actuators.update(self.t, healthy=not self.logic.needs_backup_cut)
        state.outputs_safe = self.actuators.outputs_safe
        self.keeper.tick(self.t)

    def run(self, seconds: float) -> None:
        for _ in range(int(round(seconds / FRAME_S))):
            self.frame()

    def run_until(self, condition, limit_s: float) -> bool:
        """Frames until ``condition()`` holds (True) or ``limit_s`` passes (False)."""
        end_s = self.t + limit_s
        while self.t < end_s:
            if condition():
                return True
            self.frame()
        return condition()

    # ------------------------------------------------------------------ kills

    def kill(self) -> None:
        """SIGKILL: the process is gone; the pins keep the levels it drove (a Raspberry Pi's do)."""
        drop_claims_keeping_levels(self.pins, self._pin_roles)
        self._watch_edges()
        self.logic = self.actuators = None

    def restart(self, *, held_s: float = 0.5, down_s: float = 2.0) -> None:
        """After :meth:`kill`: the world goes on with the lines as they were for ``held_s``, ExecStopPost drives
        them safe, and the new process starts ``down_s`` after the kill."""
        self._idle(held_s)
        safe_outputs(BOARD, pin_factory=self.pins)
        self._idle(down_s - held_s)
        self.restarts += 1
        self._start()

    def _idle(self, seconds: float) -> None:
        for _ in range(int(round(seconds / FRAME_S))):
            self.t += FRAME_S
            self.world.step(FRAME_S, {role: self.active(role) for role in ("release_fire", "cutdown_fire",
                                                                          "ballast_valve")}, self.t)

    # ------------------------------------------------------------------ what happened

    def burns(self, role: str) -> int:
        return sum(1 for _, edge_role in self.edges if edge_role == role)

    def names(self) -> list[str]:
        return [name for _, name, _ in self.events]

    def go(self) -> None:
        """The ground's GO for release (a command, as the ground link would call it)."""
        self.logic.ground_go(self.t)
