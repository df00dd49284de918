"""The hardware abstraction layer's contracts.

Every device the flight software touches is reached through one of these small protocols.  Real drivers
(``hal.ms5611``, ``hal.ublox`` ...) and the simulated world (``hil``) both satisfy them, so the code that flies is
the code that is tested.

Rules every implementation keeps:

* ``update(now_s)`` does a bounded, non-blocking amount of bus work (start a conversion, read a finished one,
  drain the serial buffer) and **never raises**: a bus error becomes an unhealthy reading plus a counter.
* Readings are immutable, carry SI units in their field names, the clock time they were taken (``time_s``,
  the flight software's monotonic clock) and a ``healthy`` flag.  They are named tuples, built positionally: a
  driver makes one at every measurement (a barometer 10 to 20 times a second), and a tuple is built in well under
  half the time of a frozen dataclass (``_replace`` derives a changed copy; unpacking one reads every field at
  once).
* Output lines start inactive and can always be forced inactive.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple, Protocol, runtime_checkable

NAN = float("nan")


@dataclass(slots=True)
class DeviceStats:
    """Counters every device keeps; the health task reports them."""

    reads: int = 0
    errors: int = 0
    consecutive_errors: int = 0
    reinits: int = 0
    out_of_range: int = 0
    last_error: str = ""

    def record_ok(self) -> None:
        self.reads += 1
        self.consecutive_errors = 0

    def record_error(self, what: str) -> None:
        self.errors += 1
        self.consecutive_errors += 1
        self.last_error = what


# ---------------------------------------------------------------- readings


class PressureReading(NamedTuple):
    """Static pressure and the sensor's die temperature."""

    pressure_pa: float = NAN
    temperature_c: float = NAN
    time_s: float = NAN
    healthy: bool = False


class PowerReading(NamedTuple):
    """Bus voltage, current and power seen by a power monitor."""

    bus_voltage_v: float = NAN
    current_a: float = NAN
    power_w: float = NAN
    time_s: float = NAN
    healthy: bool = False


class TemperatureReading(NamedTuple):
    temperature_c: float = NAN
    time_s: float = NAN
    healthy: bool = False


class FixType:
    """GPS fix types, numbered as MAVLink's GPS_FIX_TYPE."""

    NO_GPS = 0
    NO_FIX = 1
    FIX_2D = 2
    FIX_3D = 3


class GpsFix(NamedTuple):
    """One navigation solution.  ``altitude_m`` is above mean sea level."""

    latitude_deg: float = NAN
    longitude_deg: float = NAN
    altitude_m: float = NAN
    ground_speed_mps: float = NAN
    course_deg: float = NAN
    fix_type: int = FixType.NO_FIX
    satellites: int = 0
    hdop: float = NAN
    vdop: float = NAN
    utc_time_s: float = NAN  # seconds since the Unix epoch, from the receiver
    time_s: float = NAN
    healthy: bool = False


# ---------------------------------------------------------------- sensors


@runtime_checkable
class Barometer(Protocol):
    """A static-pressure sensor.  ``rated_pressure_pa`` is the (min, max) the datasheet guarantees; the
    estimator excludes readings outside it."""

    name: str
    rated_pressure_pa: tuple[float, float]
    stats: DeviceStats

    def update(self, now_s: float) -> None: ...

    @property
    def reading(self) -> PressureReading: ...


@runtime_checkable
class PowerMonitor(Protocol):
    name: str
    stats: DeviceStats

    def update(self, now_s: float) -> None: ...

    @property
    def reading(self) -> PowerReading: ...


@runtime_checkable
class Thermometer(Protocol):
    name: str
    stats: DeviceStats

    def update(self, now_s: float) -> None: ...

    @property
    def reading(self) -> TemperatureReading: ...


@runtime_checkable
class Gps(Protocol):
    """A GNSS receiver.  ``fix`` is the newest solution; it goes unhealthy when the receiver is silent or
    reports no fix (the estimator also judges staleness from ``time_s``)."""

    name: str
    stats: DeviceStats

    def update(self, now_s: float) -> None: ...

    @property
    def fix(self) -> GpsFix: ...


# ---------------------------------------------------------------- outputs and inputs


@runtime_checkable
class OutputLine(Protocol):
    """One digital output that powers something (a valve, a burn wire, an arming relay).

    ``activate(max_on_s)`` powers the load; the implementation must guarantee the line drops after at most
    ``max_on_s`` even if nobody calls ``deactivate`` (a backstop independent of the frame loop).  Pass
    ``math.inf`` for a level output such as an arming relay.  ``max_on_s`` (the attribute) is the line's own
    ceiling: no activation keeps it on longer, whatever was asked (``math.inf``: none).
    """

    name: str
    max_on_s: float

    def activate(self, max_on_s: float) -> None: ...

    def deactivate(self) -> None: ...

    @property
    def is_active(self) -> bool: ...

    def close(self) -> None: ...


@runtime_checkable
class InputLine(Protocol):
    """A digital input such as a separation switch."""

    name: str

    @property
    def is_active(self) -> bool: ...

    def close(self) -> None: ...


@dataclass
class OutputLines:
    """Every output the flight software drives.  Release and cutdown are two-line chains: the ARM line enables
    the firing circuit, the FIRE line powers the burn wire or pyro."""

    ballast_valve: OutputLine
    vent_valve: OutputLine
    release_arm: OutputLine
    release_fire: OutputLine
    cutdown_arm: OutputLine
    cutdown_fire: OutputLine
    termination_heartbeat: OutputLine | None = None

    def all(self) -> list[OutputLine]:
        lines = [self.ballast_valve, self.vent_valve, self.release_fire, self.cutdown_fire,
                 self.release_arm, self.cutdown_arm]
        if self.termination_heartbeat is not None:
            lines.append(self.termination_heartbeat)
        return lines

    def force_safe(self) -> None:
        """Drive every line inactive, fire lines before arm lines.  Never raises."""
        for line in self.all():
            try:
                line.deactivate()
            except Exception:  # noqa: BLE001 - a failing line must not stop the others being made safe
                pass


@dataclass
class Hal:
    """Everything the flight software may touch, as built from a board profile (real) or a scenario (HIL)."""

    barometers: list[Barometer]
    power_monitors: list[PowerMonitor]
    thermometers: list[Thermometer]
    gps: Gps | None
    outputs: OutputLines
    separation_switch: InputLine | None = None
    simulated: bool = False
    extra_closers: list = field(default_factory=list)

    def sensors(self) -> list:
        devices: list = [*self.barometers, *self.power_monitors, *self.thermometers]
        if self.gps is not None:
            devices.append(self.gps)
        return devices

    def close(self) -> None:
        self.outputs.force_safe()
        for line in self.outputs.all():
            try:
                line.close()
            except Exception:  # noqa: BLE001
                pass
        if self.separation_switch is not None:
            self.separation_switch.close()
        for closer in self.extra_closers:
            try:
                closer()
            except Exception:  # noqa: BLE001
                pass
