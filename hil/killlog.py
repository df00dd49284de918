"""The kill test's flight log: what the killable child did, written the moment it happened, in a file a SIGKILL
cannot lose.

The child (``hil.killable``) appends one line per fact to ``<work dir>/flight.log``, opened with ``O_APPEND``,
each line one ``os.write`` with no buffering in between: the kernel has the line once the call returns, and a
kill only ever comes before or after it.  Lines (space separated, times in simulated seconds)::

    E <pid> <time_s> <role> <0|1>                 an output line's level changed (1: now active)
    S <pid> <time_s> <token> <command> <0|1>      the operator sent an action (1: as a retry)
    A <pid> <time_s> <token> <command> <result>   the daemon answered it (COMMAND_ACK result, e.g. ACCEPTED)
    P <pid> <time_s> <token> <command> <at_s>     the operator planned a new action (sent from ``at_s`` on)

Edges come from the simulated pins themselves (:meth:`hil.sim.SimulatedBoard.set_edge_sink`); the lines that
``ExecStopPost`` drops after a kill are not recorded (the child installs the sink after that).  The parent
(``hil.killtest``) counts firing-line activations from here, never from the world snapshot, which is one frame
old at a kill; the child reads it back after a restart to learn what its operator sent and heard, and how the
dead process left its lines.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

LOG_NAME = "flight.log"
ACKNOWLEDGED = ("ACCEPTED", "IN_PROGRESS")  # results that say the daemon took the command


class FlightLogWriter:
    """Appends records to ``path`` (created if missing); one ``os.write`` per record."""

    def __init__(self, path: Path) -> None:
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        self._pid = os.getpid()

    def _write(self, kind: str, time_s: float, *fields) -> None:
        os.write(self._fd, f"{kind} {self._pid} {time_s:.3f} {' '.join(map(str, fields))}\n".encode())

    def edge(self, role: str, active: bool, time_s: float) -> None:
        self._write("E", time_s, role, int(active))

    def sent(self, token: int, command: str, retry: bool, time_s: float) -> None:
        self._write("S", time_s, token, command, int(retry))

    def acknowledged(self, token: int, command: str, result: str, time_s: float) -> None:
        self._write("A", time_s, token, command, result)

    def planned(self, token: int, command: str, at_s: float, time_s: float) -> None:
        self._write("P", time_s, token, command, f"{at_s:.3f}")

    def close(self) -> None:
        os.close(self._fd)


@dataclass(frozen=True, slots=True)
class Edge:
    pid: int
    time_s: float
    role: str
    active: bool


@dataclass
class FlightLog:
    """A flight log read back: every record in order, and any line that could not be read (a problem: the
    writer never leaves one)."""

    edges: list[Edge] = field(default_factory=list)
    sent: dict[int, list[tuple[int, float, bool]]] = field(default_factory=dict)  # token -> (pid, time, retry)
    answers: dict[int, list[tuple[int, float, str, str]]] = field(default_factory=dict)  # token -> (pid, t, cmd, res)
    planned: dict[int, tuple[str, float]] = field(default_factory=dict)  # token -> (command, at_s)
    problems: list[str] = field(default_factory=list)

    def activations(self, role: str, *, after_s: float = -1.0) -> list[Edge]:
        """Every edge of ``role`` to active (after simulated time ``after_s``)."""
        return [edge for edge in self.edges if edge.role == role and edge.active and edge.time_s > after_s]

    def levels_left_by(self, pid: int) -> dict[str, bool]:
        """The output lines process ``pid`` drove, as it left them (role -> active at its death)."""
        levels: dict[str, bool] = {}
        for edge in self.edges:
            if edge.pid == pid:
                levels[edge.role] = edge.active
        return levels

    def acknowledged(self, command: str) -> list[int]:
        """Tokens of ``command`` actions the daemon answered ACCEPTED or IN_PROGRESS."""
        return [token for token, answers in self.answers.items()
                if any(cmd == command and result in ACKNOWLEDGED for _, _, cmd, result in answers)]


def read_flight_log(work_dir: Path) -> FlightLog:
    """Read ``work_dir``'s flight log (empty if there is none yet)."""
    log = FlightLog()
    try:
        text = (Path(work_dir) / LOG_NAME).read_text(encoding="ascii")
    except FileNotFoundError:
        return log
    for number, line in enumerate(text.splitlines(), 1):
        try:
            kind, pid, time_s, *rest = line.split(" ")
            pid, time_s = int(pid), float(time_s)
            if kind == "E":
                role, active = rest
                log.edges.append(Edge(pid, time_s, role, active == "1"))
            elif kind == "S":
                token, _command, retry = rest
                log.sent.setdefault(int(token), []).append((pid, time_s, retry == "1"))
            elif kind == "A":
                token, command, result = rest
                log.answers.setdefault(int(token), []).append((pid, time_s, command, result))
            elif kind == "P":
                token, command, at_s = rest
                log.planned[int(token)] = (command, float(at_s))
            else:
                raise ValueError(kind)
        except ValueError:
            log.problems.append(f"{LOG_NAME} line {number} unreadable: {line[:80]!r}")
    if text and not text.endswith("\n"):
        log.problems.append(f"{LOG_NAME} ends in a partial line")
    return log
