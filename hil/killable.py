"""A HIL flight that can be killed with SIGKILL and started again: the child process of the kill test.

``python -m hil.killable --work-dir DIR --scenario FILE`` flies a lockstep flight as :class:`hil.runner.HilRun`
does (the daemon's own state and logs in ``DIR`` are resumed, never cleared), and in addition:

* writes a snapshot of the world at the start of every frame (the end of the previous one) to
  ``DIR/world.pickle``: the balloon world, the board's scalar state (cumulative burn-wire activations, battery
  charge, ...), the output pin levels, the scripted operator's progress and the run record.  The file holds two
  copies written in place alternately, each with a sequence number and a CRC-32: a kill in the middle of a write
  leaves the other copy, one frame older.  SIGKILL loses nothing in the page cache, so nothing is fsync-ed;
* writes a small progress record the parent polls (:func:`read_progress`);
* at start, restores that snapshot.  If the parent recorded a stop (:func:`record_stop`, systemd's ``ExecStopPost``
  after the kill), the world first flies on for ``held_s`` with the outputs as the dead process left them (a burn
  wire keeps burning), then ``hal.board.safe_outputs`` drops them and the world flies on until
  ``restart_delay_s`` after the kill, when the new daemon starts and resumes from its own journal.

After a restart the scripted operator does what a ground crew does: a release sequence (GO, arm, fire) the
journal does not show as fired is flown again, a termination the journal does not show is commanded again, and
every action still to come waits ``REPLAY_DELAY_S`` (+ ``REPLAY_SPACING_S`` each) for the daemon's fix and
estimates.  ``--slow-save-ms LO HI`` makes ``flightsw.store`` write ``b"J"`` to ``--notify-fd`` and pause LO..HI ms
before each of its renames (after the temporary file is written), so the parent can kill inside a journal write.
Scenarios with injected faults are refused (faults are not restored).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import operator
import os
import pickle
import random
import struct
import sys
import time
import types
import zlib
from pathlib import Path

from hal.board import safe_outputs
from hal.gpio import OUTPUT_ROLES
from hil.record import RunRecord, Samples
from hil.runner import SAMPLE_INTERVAL_S, HilRun
from hil.scenario import Scenario

SNAPSHOT_NAME = "world.pickle"
PROGRESS_NAME = "progress.json"
RESULT_NAME = "result.json"
STATE_DIR_NAME = "state"
REPLAY_DELAY_S = 15.0
REPLAY_SPACING_S = 8.0
RELEASE_SEQUENCE = ("go", "arm_release", "fire_release")

_REGION_BYTES = 1 << 20
_HEADER = struct.Struct("<4sQII")  # magic, sequence, payload length, CRC-32 of the payload
_MAGIC = b"KSN1"
_PROGRESS_BYTES = 1024
#: World slots not snapshotted: the configuration and its parts (rebuilt identically from the scenario) and the
#: wind field (snapshotted separately, only when the world refreshed it).
_WORLD_SKIP = frozenset({"config", "_b", "_p", "_wind"})
_SCALARS = (int, float, bool)


# ---------------------------------------------------------------------------------------------- snapshot file

class SnapshotFile:
    """Two fixed regions of one file written alternately with ``pwrite``; the newest intact one is the snapshot."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._sequence, newest, _ = max(_regions(self.path), default=(0, 1, b""))
        self._region = 1 - newest
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)

    def write(self, payload: bytes) -> None:
        if len(payload) + _HEADER.size > _REGION_BYTES:
            raise ValueError(f"snapshot of {len(payload)} bytes does not fit a {_REGION_BYTES}-byte region")
        self._sequence += 1
        header = _HEADER.pack(_MAGIC, self._sequence, len(payload), zlib.crc32(payload))
        os.pwritev(self._fd, (header, payload), self._region * _REGION_BYTES)
        self._region ^= 1

    def close(self) -> None:
        os.close(self._fd)


def _regions(path: Path) -> list[tuple[int, int, bytes]]:
    """``(sequence, region, payload)`` of every intact region of ``path``."""
    found = []
    try:
        with open(path, "rb") as file:
            for region in (0, 1):
                file.seek(region * _REGION_BYTES)
                raw = file.read(_HEADER.size)
                if len(raw) == _HEADER.size:
                    magic, sequence, length, crc = _HEADER.unpack(raw)
                    payload = file.read(length) if magic == _MAGIC and length < _REGION_BYTES else None
                    if payload is not None and len(payload) == length and zlib.crc32(payload) == crc:
                        found.append((sequence, region, payload))
    except FileNotFoundError:
        pass
    return found


def read_snapshot(work_dir: Path) -> dict | None:
    """The newest intact snapshot in ``work_dir`` (a dict, see :meth:`KillableRun.snapshot`), or None."""
    regions = _regions(Path(work_dir) / SNAPSHOT_NAME)
    return pickle.loads(max(regions)[2]) if regions else None


def record_stop(work_dir: Path, *, held_s: float, restart_delay_s: float) -> bool:
    """After a kill: the outputs stayed as the dead process left them for ``held_s`` seconds, then
    ``safe-outputs`` dropped them, and the next process starts ``restart_delay_s`` after the kill.  A stop not yet
    consumed (the previous process died before its first frame) is extended.  False when no snapshot exists."""
    snapshot = read_snapshot(work_dir)
    if snapshot is None:
        return False
    previous = snapshot.get("stop")
    if previous:
        held_s = previous["held_s"]
        restart_delay_s += previous["restart_delay_s"]
    snapshot["stop"] = {"held_s": float(held_s), "restart_delay_s": float(max(held_s, restart_delay_s))}
    file = SnapshotFile(Path(work_dir) / SNAPSHOT_NAME)
    try:
        file.write(pickle.dumps(snapshot, protocol=pickle.HIGHEST_PROTOCOL))
    finally:
        file.close()
    return True


# ---------------------------------------------------------------------------------------------- progress file

def write_progress(fd: int, data: dict) -> None:
    """One fixed-size record at offset 0: ``<crc32 hex> <json>`` padded with spaces."""
    body = json.dumps(data, separators=(",", ":")).encode()
    line = b"%08x " % zlib.crc32(body) + body
    os.pwrite(fd, line.ljust(_PROGRESS_BYTES), 0)


def read_progress(work_dir: Path) -> dict | None:
    """The child's last progress record, or None (none yet, or caught half written)."""
    try:
        raw = (Path(work_dir) / PROGRESS_NAME).read_bytes().rstrip()
    except FileNotFoundError:
        return None
    crc, _, body = raw.partition(b" ")
    try:
        if int(crc, 16) != zlib.crc32(body):
            return None
        return json.loads(body)
    except ValueError:
        return None


# ---------------------------------------------------------------------------------------------- slow journal

def install_slow_store(pause_s: tuple[float, float], notify_fd: int | None, seed: int = 0) -> None:
    """Make this process's ``flightsw.store`` write ``b"J"`` to ``notify_fd`` and pause ``pause_s`` (min, max)
    seconds before each of its renames: the store sees a copy of ``os`` whose ``replace`` does that first."""
    import flightsw.store

    rng = random.Random(seed)

    def replace(src, dst) -> None:
        if notify_fd is not None:
            try:
                os.write(notify_fd, b"J")
            except OSError:
                pass
        time.sleep(rng.uniform(*pause_s))
        os.replace(src, dst)

    names = {name: getattr(os, name) for name in dir(os) if not name.startswith("__")}
    flightsw.store.os = types.SimpleNamespace(**{**names, "replace": replace})


# ---------------------------------------------------------------------------------------------- the run

class _Layout:
    """Reads an object's fields fast: ``capture`` gives ``(names, values)``, a dataclass field as a tuple of its
    own values; ``apply`` writes such a capture back (a dataclass field is updated in place)."""

    def __init__(self, obj, *, skip=frozenset(), scalars_only: bool = False) -> None:
        if hasattr(obj, "__dict__"):
            items = list(vars(obj).items())
        else:
            names = [name for cls in type(obj).__mro__ for name in getattr(cls, "__slots__", ())]
            items = [(name, getattr(obj, name)) for name in names if hasattr(obj, name)]
        items = [(name, value) for name, value in items if name not in skip
                 and (type(value) in _SCALARS or not scalars_only and not callable(value))]
        self.names = tuple(name for name, _ in items)
        self.size = len(vars(obj)) if hasattr(obj, "__dict__") else len(items)
        self._get = operator.attrgetter(*self.names, *self.names[:1])  # two or more names: always a tuple
        self._nested = [(index, operator.attrgetter(*(f.name for f in dataclasses.fields(value))))
                        for index, (_, value) in enumerate(items) if dataclasses.is_dataclass(value)]

    def capture(self, obj) -> tuple:
        values = self._get(obj)[:-1]
        if self._nested:
            values = list(values)
            for index, getter in self._nested:
                values[index] = getter(values[index])
        return self.names, tuple(values)

    @staticmethod
    def apply(obj, captured: tuple) -> None:
        for name, value in zip(*captured):
            current = getattr(obj, name, None)
            if dataclasses.is_dataclass(current) and type(value) is tuple:
                for field, item in zip(dataclasses.fields(current), value):
                    setattr(current, field.name, item)
            else:
                setattr(obj, name, value)


def _effect_lost(command: str, latches) -> bool:
    """After a restart: must the operator send this already-sent command again?"""
    if command == "terminate":
        return not latches.termination_fired
    if command in RELEASE_SEQUENCE:
        return not (latches.release_fired or latches.termination_fired)
    return False


class KillableRun(HilRun):
    """A :class:`~hil.runner.HilRun` that snapshots its world every frame and resumes from ``work_dir``'s
    snapshot.  ``scenario`` must not inject faults."""

    def __init__(self, scenario: Scenario, *, work_dir: Path, seed: int | None = None) -> None:
        if scenario.faults:
            raise ValueError(f"scenario {scenario.name!r} injects faults; the kill test can not restore them")
        work_dir = Path(work_dir)
        work_dir.mkdir(parents=True, exist_ok=True)
        self._restore_from = read_snapshot(work_dir)
        self._restoring = False
        self._index_of = {id(action): index for index, action in enumerate(scenario.operator)}
        self._watch: dict[str, int | None] = {"release_burns_at_release": None, "cutdown_burns_at_cut": None}
        self._wind_cache: tuple = (object(), b"")
        self._record_cache: tuple = (object(), b"")
        self._pins: list | None = None
        self._board_scalars: _Layout | None = None
        self._world_fields: _Layout | None = None
        self._snapshots = SnapshotFile(work_dir / SNAPSHOT_NAME)
        self._progress_fd = os.open(work_dir / PROGRESS_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
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
            self._world_fields = _Layout(world, skip=_WORLD_SKIP)
        if self._board_scalars is None or self._board_scalars.size != len(vars(self.board)):
            self._board_scalars = _Layout(self.board, scalars_only=True)  # the board gained attributes
        wind_key = (getattr(world, "_wind_t", None), getattr(world, "_wind_z", None))
        if wind_key[0] is None or wind_key != self._wind_cache[0]:
            self._wind_cache = (wind_key, pickle.dumps(getattr(world, "_wind", None), protocol=5))
        record_key = (self._next_sample_s, len(record.events), len(record.phases), record.restarts)
        if record_key != self._record_cache[0]:
            bare = dataclasses.replace(record, samples=Samples())
            self._record_cache = (record_key, pickle.dumps(bare, protocol=5))
        pending = {self._index_of[id(action)] for action in self._pending_actions}
        return {
            "time_s": world.state.time_s,
            "world": self._world_fields.capture(world),
            "wind": self._wind_cache[1],
            "board": self._board_scalars.capture(self.board),
            "outputs": self.output_levels(),
            "run": {"next_sample_s": self._next_sample_s, "landed_at_s": self._landed_at_s, "phase": self._phase,
                    "float_in_band_s": self._float_in_band_s,
                    "done": [index for index in range(len(self.scenario.operator)) if index not in pending]},
            "record": self._record_cache[1],
            "watch": dict(self._watch),
            "stop": None,
        }

    def _save_snapshot(self) -> None:
        self._snapshots.write(pickle.dumps(self.snapshot(), protocol=5))

    def _restore(self, snap: dict) -> None:
        world, board = self.world, self.board
        _Layout.apply(world, snap["world"])
        wind = pickle.loads(snap["wind"]) if snap["wind"] else None
        if wind is not None:
            world._wind = wind
        _Layout.apply(board, snap["board"])
        for role, pin, active_high in self._output_pins():
            pin.function = "output"
            pin.state = active_high if snap["outputs"].get(role, False) else not active_high
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
        done = set(run["done"])
        self._pending_actions = [a for index, a in enumerate(self.scenario.operator) if index not in done]
        self._watch.update(snap["watch"])

    def _replay_after_restart(self, latches) -> None:
        """Queue what the ground does after a restart (see the module documentation)."""
        now_s = self.clock.now_s()
        pending = {self._index_of[id(action)] for action in self._pending_actions}
        queue = []
        for index, action in enumerate(self.scenario.operator):
            if index in pending or _effect_lost(action.command, latches):
                floor_s = now_s + REPLAY_DELAY_S + REPLAY_SPACING_S * len(queue)
                replay = dataclasses.replace(action, at_s=max(action.at_s, floor_s))
                self._index_of[id(replay)] = index
                queue.append(replay)
        self._pending_actions = queue

    # ------------------------------------------------------------ hooks into HilRun

    def _start_daemon(self):
        snap, self._restore_from = self._restore_from, None
        if snap is None:
            return super()._start_daemon()
        self._restore(snap)
        self._save_snapshot()  # the stop is spent: a kill before the first frame must not replay it
        daemon = super()._start_daemon()
        self._replay_after_restart(daemon.state.latches)
        return daemon

    def _on_advance(self, now_s: float) -> None:
        if self._restoring:
            self.board.advance(now_s)
            return
        self._save_snapshot()  # the end of the frame that just ran
        super()._on_advance(now_s)
        state, board, watch = self.world.state, self.board, self._watch
        if state.released and watch["release_burns_at_release"] is None:
            watch["release_burns_at_release"] = board.release_burns
        if state.cut_down and watch["cutdown_burns_at_cut"] is None:
            watch["cutdown_burns_at_cut"] = board.cutdown_burns
        self._write_progress(now_s)

    def _write_progress(self, now_s: float) -> None:
        latches, state = self.daemon.state.latches, self.world.state
        write_progress(self._progress_fd, {
            "pid": os.getpid(), "time_s": now_s, "release_armed": latches.release_armed,
            "release_fired": latches.release_fired, "termination_fired": latches.termination_fired,
            "cutdown_line": self.output_levels().get("cutdown_fire", False), "released": state.released,
            "cut_down": state.cut_down, "landed": state.landed, "release_burns": self.board.release_burns})

    def result(self, record: RunRecord) -> dict:
        """What the parent checks once the flight is over (``record`` evaluated against the expectations)."""
        state, board = self.world.state, self.board
        return {"expectations": [list(item) for item in record.expectations],
                "release_burns": board.release_burns, "cutdown_burns": board.cutdown_burns,
                "released": state.released, "cut_down": state.cut_down, "landed": state.landed,
                "restarts": record.restarts, "duration_s": record.duration_s, "ended_by": record.ended_by,
                "termination_reason": record.termination_reason, "watch": dict(self._watch),
                "latches": self.daemon.state.latches.to_dict()}

    def close(self) -> None:
        self._snapshots.close()
        os.close(self._progress_fd)


# ---------------------------------------------------------------------------------------------- command line

def main(argv: list[str] | None = None) -> int:
    from flightsw import logsetup
    from hil.expect import evaluate
    from hil.scenario import load_scenario

    parser = argparse.ArgumentParser(prog="python -m hil.killable", description=__doc__.splitlines()[0])
    parser.add_argument("--work-dir", type=Path, required=True, help="snapshot, progress, result, state, logs")
    parser.add_argument("--scenario", type=Path, required=True, help="scenario file (config/hil/*.yaml)")
    parser.add_argument("--seed", type=int, default=None, help="world and signing-key seed (default: scenario's)")
    parser.add_argument("--slow-save-ms", type=float, nargs=2, metavar=("LO", "HI"), default=None)
    parser.add_argument("--notify-fd", type=int, default=None)
    args = parser.parse_args(argv)
    logsetup.configure("error")
    if args.slow_save_ms:
        install_slow_store(tuple(sorted(ms / 1000.0 for ms in args.slow_save_ms)), args.notify_fd, os.getpid())
    scenario = load_scenario(args.scenario)
    run = KillableRun(scenario, work_dir=args.work_dir, seed=args.seed)
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
