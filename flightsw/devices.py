"""What the daemon tells the operator about its hardware: a device report at start and a preflight summary.

At start (:meth:`DeviceReport.report_start`) every device of the board profile is probed with its driver's own
protocol (``hal.probe``) and reported, one ``device`` event each (logged, and sent as STATUSTEXT), then a
``devices`` event with the count: a missing I2C bus, a chip that does not answer or a GPS port that does not open
is said at once, never a traceback.

Once the sensors have had :data:`PREFLIGHT_SUMMARY_AFTER_S` to start, and again whenever it changes (at most every
:data:`PREFLIGHT_REPEAT_S`), the daemon sends a ``preflight`` event while in PREFLIGHT: every device with its
health, and the verdict of the pre-flight self-test.  The failing devices, with the reason, are also kept in
``FlightState.sensor_faults``, which the self-test's own report names (the ``launch_blocked`` event, the answer
to a phase request and to the self-test override).
"""

from __future__ import annotations

from typing import Any, Callable

from flightsw.phase import Phase
from flightsw.rules.phases import selftest
from hal.interfaces import Hal
from hal.probe import ProbeResult, probe_hal

#: seconds after start before the first preflight summary (the HEARTBEAT reports BOOT for as long)
PREFLIGHT_SUMMARY_AFTER_S = 10.0
#: shortest time between two preflight summaries (a flapping sensor must not flood the radio)
PREFLIGHT_REPEAT_S = 10.0

EventSink = Callable[..., None]  # event(name, severity, text, **fields)


def device_places(board: Any) -> dict[str, str]:
    """Device name -> where the board profile puts it, e.g. ``"ms5611 at i2c-1 0x77"``, ``"u-blox on /dev/serial0"``."""
    from hal.board import device_name

    places = {device_name(chip): f"{chip.chip} at i2c-{board.i2c_bus} {chip.address:#04x}"
              for chip in (*board.barometers, *board.power_monitors)}
    if board.gps is not None:
        places["gps"] = f"u-blox on {board.gps.device}"
    return places


def describe_probe(result: ProbeResult, place: str = "") -> str:
    """One line for the log and the ground: ``baro1 (bmp388 at i2c-1 0x76): not responding, NACK (errno 121)``."""
    where = f" ({place})" if place else ""
    return f"{result.name}{where}: {result.status}" + (f", {result.detail}" if result.detail else "")


def device_problem(device: Any) -> str:
    """Why a device has no healthy reading ("" when it has one): its last error, or that it has not read yet."""
    reading = getattr(device, "reading", None)
    if reading is None:
        reading = getattr(device, "fix", None)
    if reading is not None and reading.healthy:
        return ""
    stats = getattr(device, "stats", None)
    last_error = getattr(stats, "last_error", "") if stats is not None else ""
    if getattr(stats, "out_of_range", 0) and not last_error:
        return "out of range"
    return last_error or ("no fix" if hasattr(device, "fix") else "no reading yet")


class DeviceReport:
    """The device report of one daemon.  ``board`` is the board profile, ``hal`` what was built from it,
    ``event`` the daemon's operator-event sink and ``now_s`` the flight-clock time of the start."""

    def __init__(self, board: Any, hal: Hal, *, event: EventSink, now_s: float) -> None:
        self.board = board
        self.hal = hal
        self._event = event
        self._start_s = now_s
        self._places = device_places(board)
        self.probes: list[ProbeResult] = []
        self._last_summary: tuple | None = None
        self._last_summary_s = -float("inf")

    # ------------------------------------------------------------------ at start

    def report_start(self) -> list[ProbeResult]:
        """Probe every device, report each and the count.  Returns the probe results."""
        self.probes = probe_hal(self.hal)
        for result in self.probes:
            self._event("device", "error" if result.failed else "info",
                        describe_probe(result, self._places.get(result.name, "")),
                        device=result.name, status=result.status)
        failed = [result for result in self.probes if result.failed]
        text = f"devices: {len(self.probes) - len(failed)} of {len(self.probes)} answer"
        if failed:
            text += "; " + ", ".join(f"{result.name} {result.status}" for result in failed)
        self._event("devices", "warning" if failed else "info", text, failed=[r.name for r in failed])
        return self.probes

    # ------------------------------------------------------------------ every second

    def update(self, state: Any, params: Any, now_s: float) -> None:
        """Keep ``state.sensor_faults`` current and send the preflight summary when it is due (PREFLIGHT only)."""
        problems = [(device.name, device_problem(device)) for device in self.hal.sensors()]
        faults = tuple(f"{name} ({problem})" for name, problem in problems if problem)
        if faults != state.sensor_faults:
            state.sensor_faults = faults
        if state.phase is not Phase.PREFLIGHT or now_s - self._start_s < PREFLIGHT_SUMMARY_AFTER_S:
            return
        check = selftest(state, params, now_s)
        signature = (tuple(bool(problem) for _, problem in problems), tuple(f.name for f in check.failures))
        if signature == self._last_summary or now_s - self._last_summary_s < PREFLIGHT_REPEAT_S:
            return
        self._last_summary, self._last_summary_s = signature, now_s
        self._event("preflight", "notice" if check.ok else "warning", preflight_text(problems, check),
                    selftest_ok=check.ok, failing=[name for name, problem in problems if problem])


def preflight_text(problems: list[tuple[str, str]], check: Any) -> str:
    """``preflight: baro0 ok, gps FAIL (no fix); self-test FAILS: sensors, link (ground station never heard)``
    (the sensors item without its reason: the failing devices are listed already)."""
    devices = ", ".join(f"{name} FAIL ({problem})" if problem else f"{name} ok" for name, problem in problems)
    failures = [failure.name if failure.name == "sensors" else f"{failure.name} ({failure.reason})"
                for failure in check.failures]
    verdict = "self-test passes" if check.ok else "self-test FAILS: " + ", ".join(failures)
    return f"preflight: {devices or 'no sensors'}; {verdict}"
