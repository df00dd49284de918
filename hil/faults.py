"""Scheduled faults: each starts at its time or condition, lasts its duration, and is undone when it ends.

Faults act below the drivers (chip models, the GPS stream, the radio link, the output pins, the file system, the
world), never on the flight software itself — except the brown-out, which kills the process the way a power cut
would.
"""

from __future__ import annotations

import math
from typing import Callable

from hil.diskfull import DiskFull
from hil.scenario import FaultSpec, condition_holds

DEFAULT_RESTART_DELAY_S = 15.0
DEFAULT_CRASH_RESTART_S = 2.0  # systemd's RestartSec plus the process's start
CRASH_HELD_S = 0.5  # ExecStopPost's start: the lines stay as the dead process left them meanwhile
DEFAULT_BATTERY_SAG_V = 4.0  # one failed cell of a lithium pack


class FaultInjector:
    def __init__(self, faults: tuple[FaultSpec, ...], *, board, world, vehicle_link,
                 storage_dirs: tuple = ()) -> None:
        self.pending = list(faults)
        self.storage_dirs = tuple(storage_dirs)  # what a disk_full fault fills (the daemon's state and log dirs)
        self.disk_full: DiskFull | None = None
        self.active: list[tuple[FaultSpec, float]] = []  # (fault, end time)
        self.board = board
        self.world = world
        self.vehicle_link = vehicle_link
        self.log: list[tuple[float, str]] = []
        self._brownouts: list[float] = []
        self._crashes: list[float] = []

    @property
    def brownout_pending(self) -> bool:
        return bool(self._brownouts)

    def take_brownout(self) -> float:
        """The restart delay of the pending brown-out (and forget it)."""
        return self._brownouts.pop(0)

    @property
    def crash_pending(self) -> bool:
        return bool(self._crashes)

    def take_crash(self) -> float:
        """The restart delay of the pending crash (and forget it)."""
        return self._crashes.pop(0)

    def update(self, now_s: float, quantity: Callable[[str], float | str]) -> None:
        for fault in list(self.pending):
            if now_s < fault.at_s or (fault.when and not condition_holds(fault.when, quantity)):
                continue
            self.pending.remove(fault)
            self._start(fault, now_s)
            end_s = now_s + fault.duration_s if fault.duration_s > 0 else math.inf
            self.active.append((fault, end_s))
            self.log.append((now_s, f"fault {fault.kind} {fault.target} started".replace("  ", " ")))
        for fault, end_s in list(self.active):
            if now_s >= end_s:
                self.active.remove((fault, end_s))
                self._stop(fault)
                self.log.append((now_s, f"fault {fault.kind} {fault.target} ended".replace("  ", " ")))

    def _chips(self, fault: FaultSpec) -> list:
        chips = self.board.barometer_chips
        if fault.target:
            if fault.target not in chips:
                raise ValueError(f"fault {fault.kind}: no barometer named {fault.target!r} "
                                 f"(have {', '.join(chips)})")
            return [chips[fault.target]]
        return list(chips.values())

    def _start(self, fault: FaultSpec, now_s: float) -> None:
        kind = fault.kind
        gps = self.board.gps_port
        if kind == "i2c_nack":
            for chip in self._chips(fault):
                chip.faults.nack = True
        elif kind == "baro_stuck":
            for chip in self._chips(fault):
                chip.faults.stuck = True
        elif kind == "baro_drift":
            for chip in self._chips(fault):
                chip.faults.drift_pa_per_s = fault.magnitude or 5.0
                chip.faults.drift_start_s = now_s
        elif kind == "baro_out_of_range":
            for chip in self._chips(fault):
                chip.faults.out_of_range = True
        elif kind == "gps_loss":
            gps.silence = True
        elif kind == "gps_jump":
            jump_deg = fault.magnitude or 0.5
            gps.position_jump(jump_deg, jump_deg, fault.duration_s or math.inf)
        elif kind == "radio_blackout":
            self.vehicle_link.blackout = True
        elif kind == "ballast_jam":
            self.world.jam_ballast(True)
        elif kind == "cutdown_fail_first":
            self.board.fail_cutdown_burns = self.board.cutdown_burns + 1
        elif kind == "balloon_burst":
            self.world.burst_now()
        elif kind == "brownout":
            self._brownouts.append(fault.magnitude or DEFAULT_RESTART_DELAY_S)
        elif kind == "crash":
            self._crashes.append(fault.magnitude or DEFAULT_CRASH_RESTART_S)
        elif kind == "battery_sag":
            self.board.battery_sag_v = fault.magnitude or DEFAULT_BATTERY_SAG_V
        elif kind == "line_write_error":
            self.board.fail_line_writes(fault.line, fault.count)
        elif kind == "disk_full" and self.disk_full is None:
            self.disk_full = DiskFull(list(self.storage_dirs))
            self.disk_full.start()

    def stop_all(self) -> None:
        """Undo every fault that reaches outside the simulated world (the file system) at the end of a run."""
        if self.disk_full is not None:
            self.disk_full.stop()
            self.disk_full = None

    def _stop(self, fault: FaultSpec) -> None:
        kind = fault.kind
        if kind in ("i2c_nack", "baro_stuck", "baro_drift", "baro_out_of_range"):
            for chip in self._chips(fault):
                chip.faults.clear()
        elif kind == "gps_loss":
            self.board.gps_port.silence = False
        elif kind == "radio_blackout":
            self.vehicle_link.blackout = False
        elif kind == "ballast_jam":
            self.world.jam_ballast(False)
        elif kind == "battery_sag":
            self.board.battery_sag_v = 0.0
        elif kind == "disk_full":
            self.stop_all()

