"""A HIL flight that can be killed with SIGKILL and started again: the child process of the kill test.

``python -m hil.killable --work-dir DIR --scenario FILE`` flies a lockstep flight as :class:`hil.runner.HilRun`
does (the daemon's own state and logs in ``DIR`` are resumed, never cleared), and in addition:

* appends to ``DIR/flight.log`` (:mod:`hil.killlog`), the moment each happens: every level change of an output
  line (from the simulated pins), every operator action sent, every answer to one (heard as the daemon sends it)
  and every action the operator plans.  Each record is one ``os.write`` to an ``O_APPEND`` file: a kill can not
  lose a record of something that happened;
* writes a snapshot of the world at the end of every frame's world step (:mod:`hil.killsnap`): the balloon
  world, the board's scalar state, the output pin levels, the run record and the runner's bookkeeping;
* writes a small progress record the parent polls (:func:`hil.killsnap.read_progress`);
* at start, restores that snapshot, with the output lines as the dead process left them (the snapshot's levels,
  overridden by the dead process's last edges in the flight log: a line driven in its last frame counts).  If
  the parent recorded a stop (:func:`hil.killsnap.record_stop`, systemd's ``ExecStopPost`` after the kill), the
  world first flies on for ``held_s`` with those outputs (a burn wire keeps burning), then
  ``hal.board.safe_outputs`` drops them and the world flies on until ``restart_delay_s`` after the kill, when the
  edge recording resumes and the new daemon starts from its own journal.

The operator after a restart (:class:`OperatorLedger`) knows only what it sent and heard, from the flight log,
never the journal: an action sent and never answered is sent again as a retry (MAVLink ``confirmation`` 1), an
action never sent is still to come, an answered one is never sent again.  A ``fire_release`` the daemon refused
(a restart disarms the release) makes it fly the release procedure again (GO, arm, fire: new commands), at most
``MAX_RELEASE_PROCEDURES`` times, and not after the daemon refused a GO (it says released or terminated).  A
balloon still not cut down ``CUT_OVERDUE_S`` after a termination was acknowledged makes it send a new termination
command (a failed cutdown fires once more on a ground command), at most ``MAX_TERMINATIONS_AGAIN`` times.  It
sends one action at a time, ``SEND_SPACING_S`` apart, and after a restart waits ``REPLAY_DELAY_S`` for the
daemon's fix.

Aiming (:mod:`hil.killhooks`; marks on ``--notify-fd``, each pause held until a byte on ``--resume-fd``):
``--pause-journal-from-s T`` pauses inside and between
journal slot writes from simulated time T on, ``--pause-latch`` after the journal write that commits a fire,
``--halt-at-s T`` stops the child (mark ``H``) at the first frame boundary at or after T until it is killed,
``--pause-ack`` pauses (mark ``A``) as soon as the daemon acknowledged a ground termination;
``--defect drive-before-latch`` drives the release line before persisting its latch (the kill test's own test).
Scenarios with injected faults are refused (faults are not restored).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import pickle
import sys
import time
from pathlib import Path

from hal.board import safe_outputs
from hal.gpio import OUTPUT_ROLES
from hil import killhooks
from hil.killlog import ACKNOWLEDGED, LOG_NAME, FlightLog, FlightLogWriter, read_flight_log
from hil.killsnap import (PROGRESS_NAME, SNAPSHOT_NAME, Layout, SnapshotFile, read_snapshot, write_progress)
from hil.record import RunRecord, Samples
from hil.runner import SAMPLE_INTERVAL_S, HilRun
from hil.scenario import OperatorAction, Scenario, condition_holds

RESULT_NAME = "result.json"
STATE_DIR_NAME = "state"
REPLAY_DELAY_S = 15.0
SEND_SPACING_S = 4.0
RELEASE_PROCEDURE = ("go", "arm_release", "fire_release")
MAX_RELEASE_PROCEDURES = 5
CUT_OVERDUE_S = 180.0  # a termination acknowledged this long ago and still no cut: the ground terminates again
MAX_TERMINATIONS_AGAIN = 3
#: World slots not snapshotted: the configuration and its parts (rebuilt identically from the scenario) and the
#: wind field (snapshotted separately, only when the world refreshed it).
_WORLD_SKIP = frozenset({"config", "_b", "_p", "_wind"})


class OperatorLedger:
    """The operator's actions by token (the scenario's in order, then the ones it planned) and which are still to
    be sent; what was sent and answered is in the flight log (see the module documentation)."""

    def __init__(self, actions: tuple[OperatorAction, ...]) -> None:
        self.actions: dict[int, OperatorAction] = dict(enumerate(actions))
        self.queue: list[tuple[int, OperatorAction, bool]] = [(token, action, False)
                                                             for token, action in self.actions.items()]
        self.procedures = 0  # release procedures planned again
        self.go_denied = False
        self.terminations = 0  # terminations planned again
        self.terminated_s = math.inf  # when a termination was last acknowledged (or planned again)
        self.hold_until_s = -math.inf  # nothing is sent before

    def due(self, now_s: float, quantity) -> tuple[int, OperatorAction, bool] | None:
        """Take the first action due now, ``(token, action, retry)``, if it is time to send one."""
        if now_s < self.hold_until_s:
            return None
        for item in self.queue:
            action = item[1]
            if now_s >= action.at_s and not (action.when and not condition_holds(action.when, quantity)):
                self.queue.remove(item)
                self.hold_until_s = now_s + SEND_SPACING_S
                return item
        return None

    def answered(self, token: int, result: str, now_s: float) -> bool:
        """Note an answer; True when the release procedure must be flown again."""
        command = self.actions[token].command
        if command == "go" and result == "DENIED":
            self.go_denied = True
        if command == "terminate" and result in ACKNOWLEDGED and not math.isfinite(self.terminated_s):
            self.terminated_s = now_s
        return (command == "fire_release" and result not in ACKNOWLEDGED and not self.go_denied
                and self.procedures < MAX_RELEASE_PROCEDURES)

    def cut_overdue(self, now_s: float) -> bool:
        """Is it time to terminate again (the caller knows the balloon is still not cut down)?"""
        return now_s - self.terminated_s >= CUT_OVERDUE_S and self.terminations < MAX_TERMINATIONS_AGAIN

    def plan_termination(self, now_s: float) -> tuple[int, OperatorAction]:
        """Queue a new termination command now; returns it."""
        self.terminations += 1
        self.terminated_s = now_s
        token, action = max(self.actions) + 1, OperatorAction(at_s=now_s, command="terminate")
        self.actions[token] = action
        self.queue.insert(0, (token, action, False))
        return token, action

    def plan_release_procedure(self, now_s: float) -> list[tuple[int, OperatorAction]]:
        """Queue GO, arm and fire again as new actions; returns them."""
        self.procedures += 1
        planned = []
        for step, command in enumerate(RELEASE_PROCEDURE):
            token = max(self.actions) + 1
            action = OperatorAction(at_s=now_s + REPLAY_DELAY_S + SEND_SPACING_S * step, command=command)
            self.actions[token] = action
            self.queue.append((token, action, False))
            planned.append((token, action))
        return planned

    def resume(self, log: FlightLog, now_s: float) -> None:
        """After a restart: what is still to send, from what the flight log says was sent and answered."""
        for token, (command, at_s) in sorted(log.planned.items()):
            self.actions[token] = OperatorAction(at_s=at_s, command=command)
        planned = [command for command, _ in log.planned.values()]
        self.procedures, self.terminations = planned.count(RELEASE_PROCEDURE[0]), planned.count("terminate")
        answers = [(answer_s, self.actions[token].command, result)
                   for token, answered in log.answers.items() for _, answer_s, _, result in answered]
        self.go_denied = any(command == "go" and result == "DENIED" for _, command, result in answers)
        self.terminated_s = max([answer_s for answer_s, command, result in answers
                                 if command == "terminate" and result in ACKNOWLEDGED]
                                + [at_s for command, at_s in log.planned.values() if command == "terminate"],
                                default=math.inf)
        self.queue = []
        for token, action in sorted(self.actions.items()):
            if token in log.answers:
                continue
            retry = token in log.sent  # sent, never answered: sent again as a retry, its trigger spent
            self.queue.append((token, dataclasses.replace(action, when="") if retry else action, retry))
        self.hold_until_s = now_s + REPLAY_DELAY_S


class KillableRun(HilRun):
    """A :class:`~hil.runner.HilRun` that logs its edges and operator, snapshots its world every frame, and
    resumes from ``work_dir``'s snapshot.  ``scenario`` must not inject faults.  ``halt_at_s``: stop at the
    first frame boundary at or after this simulated time (with ``notifier``'s mark ``H``) until killed."""

    def __init__(self, scenario: Scenario, *, work_dir: Path, seed: int | None = None, halt_at_s: float = math.inf,
                 notifier: killhooks.Notifier | None = None, pause_after_ack: bool = False) -> None:
        if scenario.faults:
            raise ValueError(f"scenario {scenario.name!r} injects faults; the kill test can not restore them")
        work_dir = Path(work_dir)
        work_dir.mkdir(parents=True, exist_ok=True)
        self._restore_from = read_snapshot(work_dir)
        self._restoring = False
        self._halt_at_s = halt_at_s
        self._pause_after_ack = pause_after_ack
        self._notifier = notifier or killhooks.Notifier(None, None, 0)
        self._watch: dict[str, float | None] = {"released_s": None, "cut_down_s": None}
        self._wind_cache: tuple = (object(), b"")
        self._record_cache: tuple = (object(), b"")
        self._pins: list | None = None
        self._board_scalars: Layout | None = None
        self._world_fields: Layout | None = None
        self._snapshots = SnapshotFile(work_dir / SNAPSHOT_NAME)
        self._progress_fd = os.open(work_dir / PROGRESS_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        self.log = FlightLogWriter(work_dir / LOG_NAME)
        self.ledger = OperatorLedger(scenario.operator)
        # resume: the daemon's state and logs are its own; a new flight is a new (empty) work directory
        super().__init__(scenario, work_dir=work_dir, seed=seed, resume=True)

    # ------------------------------------------------------------ snapshot

    def _output_pins(self) -> list:
        if self._pins is None:
            outputs = self.config.board.outputs
            self._pins = [(role, self.board.pins.pin(getattr(outputs, role).pin), getattr(outputs, role).active_high)
                          for role in OUTPUT_ROLES if getattr(outputs, role, None) is not None]
        return self._pins

    def output_levels(self) -> dict[str, bool]:
        """Every output line's role -> active now, as the pins show it."""
        return {role: bool(pin.state) == active_high for role, pin, active_high in self._output_pins()}

    def snapshot(self) -> dict:
        """The world, board, outputs and runner bookkeeping at this instant."""
        world, record = self.world, self.record
        if self._world_fields is None:
            self._world_fields = Layout(world, skip=_WORLD_SKIP)
        if self._board_scalars is None or self._board_scalars.size != len(vars(self.board)):
            self._board_scalars = Layout(self.board, scalars_only=True)  # the board gained attributes
        wind_key = (getattr(world, "_wind_t", None), getattr(world, "_wind_z", None))
        if wind_key[0] is None or wind_key != self._wind_cache[0]:
            self._wind_cache = (wind_key, pickle.dumps(getattr(world, "_wind", None), protocol=5))
        record_key = (self._next_sample_s, len(record.events), len(record.phases), record.restarts)
        if record_key != self._record_cache[0]:
            bare = dataclasses.replace(record, samples=Samples())
            self._record_cache = (record_key, pickle.dumps(bare, protocol=5))
        return {
            "pid": os.getpid(),
            "time_s": world.state.time_s,
            "ballast_kg": world.state.ballast_kg,
            "world": self._world_fields.capture(world),
            "wind": self._wind_cache[1],
            "board": self._board_scalars.capture(self.board),
            "outputs": self.output_levels(),
            "run": {"next_sample_s": self._next_sample_s, "landed_at_s": self._landed_at_s, "phase": self._phase,
                    "float_in_band_s": self._float_in_band_s},
            "record": self._record_cache[1],
            "watch": dict(self._watch),
            "stop": None,
        }

    def _save_snapshot(self) -> None:
        self._snapshots.write(pickle.dumps(self.snapshot(), protocol=5))

    def _restore(self, snap: dict) -> None:
        world, board = self.world, self.board
        Layout.apply(world, snap["world"])
        wind = pickle.loads(snap["wind"]) if snap["wind"] else None
        if wind is not None:
            world._wind = wind
        Layout.apply(board, snap["board"])
        flight_log = read_flight_log(self.work_dir)
        left = {**snap["outputs"], **flight_log.levels_left_by(snap["pid"])}  # as the dead process left them
        for role, pin, active_high in self._output_pins():
            pin.function = "output"
            pin.state = active_high if left.get(role, False) else not active_high
        stop = snap.get("stop") or {"held_s": 0.0, "restart_delay_s": 0.0}
        kill_s = snap["time_s"]
        self._restoring = True
        try:
            self.clock.sleep_until(kill_s)
            self.clock.sleep_until(kill_s + stop["held_s"])  # the lines stay as the dead process left them
            safe_outputs(self.config.board, pin_factory=board.pins)  # ExecStopPost
            self.clock.sleep_until(kill_s + stop["restart_delay_s"])
        finally:
            self._restoring = False
        self.record = pickle.loads(snap["record"])
        self.record.restarts += 1 if snap.get("stop") else 0
        run = snap["run"]
        self._landed_at_s, self._phase = run["landed_at_s"], run["phase"]
        self._float_in_band_s = run["float_in_band_s"]
        now_s, next_s = self.clock.now_s(), run["next_sample_s"]
        first_s = SAMPLE_INTERVAL_S * (math.floor(now_s / SAMPLE_INTERVAL_S) + 1)  # after the gap
        self._next_sample_s = next_s if next_s > now_s else first_s
        self._watch.update(snap["watch"])
        self.ledger.resume(flight_log, now_s)

    # ------------------------------------------------------------ hooks into HilRun

    def _start_daemon(self):
        snap, self._restore_from = self._restore_from, None
        if snap is not None:
            self._restore(snap)
            self._save_snapshot()  # the stop is spent: a kill before the first frame must not replay it
        self.board.set_edge_sink(self.log.edge)  # after ExecStopPost: its drops are not the daemon's edges
        self.operator.on_ack = self._on_ack
        self.vehicle_end._write = self._to_ground  # the operator hears each answer as it is sent
        return super()._start_daemon()

    def _to_ground(self, data: bytes) -> bool:
        self.operator.receive(data, self.clock.now_s())
        return True

    def _on_ack(self, token: int, command: str, result: str) -> None:
        now_s = self.clock.now_s()
        self.log.acknowledged(token, self.ledger.actions[token].command, result, now_s)
        if self.ledger.answered(token, result, now_s):
            for planned, action in self.ledger.plan_release_procedure(now_s):
                self.log.planned(planned, action.command, action.at_s, now_s)
        if self._pause_after_ack and self.ledger.actions[token].command == "terminate" and result in ACKNOWLEDGED:
            self._notifier.pause(killhooks.MARK_ACK)  # the answer is out; the daemon's frame is not over

    def _play_operator(self, now_s: float) -> None:
        if not self.world.state.cut_down and self.ledger.cut_overdue(now_s):
            token, action = self.ledger.plan_termination(now_s)
            self.log.planned(token, action.command, action.at_s, now_s)
        due = self.ledger.due(now_s, self._quantity)
        if due is not None:
            token, action, retry = due
            self.log.sent(token, action.command, retry, now_s)  # before it is on the link
            described = self.operator.perform(action, token=token, retry=retry)
            self.operator.listen(now_s)
            self.record.events.append((now_s, "operator", "info", described))

    def _on_advance(self, now_s: float) -> None:
        if self._restoring:
            self.board.advance(now_s)
            return
        super()._on_advance(now_s)
        state, watch = self.world.state, self._watch
        if state.released and watch["released_s"] is None:
            watch["released_s"] = now_s
        if state.cut_down and watch["cut_down_s"] is None:
            watch["cut_down_s"] = now_s
        self._save_snapshot()  # the world at the start of the frame about to run
        self._write_progress(now_s)
        if now_s >= self._halt_at_s:
            self._notifier.mark(killhooks.MARK_HALT)
            while True:
                time.sleep(1.0)  # until the parent kills us

    def _write_progress(self, now_s: float) -> None:
        latches, state, levels = self.daemon.state.latches, self.world.state, self.output_levels()
        write_progress(self._progress_fd, {
            "pid": os.getpid(), "time_s": now_s, "release_armed": latches.release_armed,
            "release_fired": latches.release_fired, "termination_fired": latches.termination_fired,
            "termination_stage": latches.termination_stage, "release_line": levels.get("release_fire", False),
            "cutdown_line": levels.get("cutdown_fire", False), "ballast_line": levels.get("ballast_valve", False),
            "released": state.released, "cut_down": state.cut_down, "landed": state.landed})

    def result(self, record: RunRecord) -> dict:
        """What the parent checks once the flight is over (``record`` evaluated against the expectations)."""
        state, board = self.world.state, self.board
        return {"expectations": [list(item) for item in record.expectations],
                "release_burns": board.release_burns, "cutdown_burns": board.cutdown_burns,
                "released": state.released, "cut_down": state.cut_down, "landed": state.landed,
                "ballast_kg": state.ballast_kg, "restarts": record.restarts, "duration_s": record.duration_s,
                "ended_by": record.ended_by, "termination_reason": record.termination_reason,
                "watch": dict(self._watch), "latches": self.daemon.state.latches.to_dict()}

    def close(self) -> None:
        self._snapshots.close()
        self.log.close()
        os.close(self._progress_fd)


# ---------------------------------------------------------------------------------------------- command line

def main(argv: list[str] | None = None) -> int:
    from flightsw import logsetup
    from hil.expect import evaluate
    from hil.scenario import load_scenario

    parser = argparse.ArgumentParser(prog="python -m hil.killable", description=__doc__.splitlines()[0])
    parser.add_argument("--work-dir", type=Path, required=True, help="snapshot, logs, progress, result, state")
    parser.add_argument("--scenario", type=Path, required=True, help="scenario file (config/hil/*.yaml)")
    parser.add_argument("--seed", type=int, default=None, help="world and signing-key seed (default: scenario's)")
    parser.add_argument("--notify-fd", type=int, default=None, help="pipe for the marks of the pauses")
    parser.add_argument("--resume-fd", type=int, default=None, help="pipe the parent lets a pause go on with")
    parser.add_argument("--pause-journal-from-s", type=float, default=None, metavar="T")
    parser.add_argument("--pause-latch", action="store_true")
    parser.add_argument("--halt-at-s", type=float, default=math.inf, metavar="T")
    parser.add_argument("--pause-ack", action="store_true", help="pause after a termination is acknowledged")
    parser.add_argument("--defect", choices=killhooks.DEFECTS, default=None)
    args = parser.parse_args(argv)
    logsetup.configure("error")
    notifier = killhooks.Notifier(args.notify_fd, args.resume_fd, os.getpid())
    if args.pause_latch:
        killhooks.pause_latch_drive(notifier)
    if args.defect == "drive-before-latch":
        killhooks.drive_before_latch(notifier)
    scenario = load_scenario(args.scenario)
    run = KillableRun(scenario, work_dir=args.work_dir, seed=args.seed, halt_at_s=args.halt_at_s, notifier=notifier,
                      pause_after_ack=args.pause_ack)
    if args.pause_journal_from_s is not None:  # the daemon writes its journal from its first frame on
        killhooks.pause_journal_writes(notifier, run.clock.now_s, args.pause_journal_from_s)
    try:
        record = run.run()
        evaluate(scenario.expect, record)
        result = run.result(record)
    finally:
        run.close()
    temp = args.work_dir / (RESULT_NAME + ".tmp")
    temp.write_text(json.dumps(result, indent=1))
    os.replace(temp, args.work_dir / RESULT_NAME)
    return 0


if __name__ == "__main__":
    sys.exit(main())
