"""Telemetry: the one table of streamed messages, their builders, and the per-link scheduler.

:data:`TELEMETRY` declares every streamed message once (name, MAVLink message id, default rate, builder).  The
scheduler, SET_MESSAGE_INTERVAL, GET_MESSAGE_INTERVAL, REQUEST_MESSAGE and ``docs/ground.md`` all read it.

Rates are per link (as ArduPilot does per channel): a SET_MESSAGE_INTERVAL received on one link changes that link
only.  High-latency links stream nothing from this table (they get HIGH_LATENCY2, see :mod:`.identity`).

The default rates keep a normal link under 500 bytes/s even with every frame signed and three barometers.

A builder gets the :class:`~flightsw.groundlink.link.GroundLink` and the frame time and returns the messages to
send (an empty list when there is nothing meaningful to say, e.g. SCALED_PRESSURE2 on a board with one barometer).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from pymavlink.dialects.v20 import common as mavlink

from flightsw.groundlink import identity
from flightsw.groundlink.identity import clamp_int

if TYPE_CHECKING:
    from flightsw.groundlink.link import GroundLink

UINT16_MAX = 0xFFFF
INT16_MAX = 0x7FFF
MIN_INTERVAL_S = 0.05  # faster requests are served at this interval (one message per 20 Hz frame)

#: SYS_STATUS sensor bits we report.  Sensors we have are present+enabled with their health; every other bit
#: is reported healthy and not present, so ground stations raise no alarms for hardware a balloon does not carry.
SENSOR_BARO = mavlink.MAV_SYS_STATUS_SENSOR_ABSOLUTE_PRESSURE
SENSOR_GPS = mavlink.MAV_SYS_STATUS_SENSOR_GPS
SENSOR_BATTERY = mavlink.MAV_SYS_STATUS_SENSOR_BATTERY
ALL_SENSOR_BITS = 0xFFFFFFFF

Builder = Callable[["GroundLink", float], list]


@dataclass(frozen=True)
class TelemetryMessage:
    """One streamed message: ``rate_hz`` 0 means not streamed by default (sent on change or on request)."""

    name: str
    msg_id: int
    rate_hz: float
    builder: Builder
    description: str

    @property
    def default_interval_s(self) -> float | None:
        return 1.0 / self.rate_hz if self.rate_hz > 0 else None


def _finite(value: float) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


# ---------------------------------------------------------------------------------------------- builders


def build_heartbeat(link: GroundLink, now_s: float) -> list:
    return [identity.heartbeat(link.view, now_s, link.started_s)]


def build_sys_status(link: GroundLink, now_s: float) -> list:
    view = link.view
    present = health_bad = 0
    for have, healthy, bit in ((view.has_barometer(), view.barometer_healthy(), SENSOR_BARO),
                               (view.has_gps(), view.gps_healthy(), SENSOR_GPS),
                               (view.has_power_monitor(), view.power_healthy(), SENSOR_BATTERY)):
        if have:
            present |= bit
            if not healthy:
                health_bad |= bit
    est = view.state.estimate
    voltage_mv = clamp_int(est.bus_voltage_v * 1000.0, 0, UINT16_MAX - 1, UINT16_MAX) if est.power_valid \
        else UINT16_MAX
    current_ca = clamp_int(est.current_a * 100.0, -1, INT16_MAX, -1) if est.power_valid else -1
    errors_comm = min(link.receive_errors(), UINT16_MAX)
    return [mavlink.MAVLink_sys_status_message(
        present, present, ALL_SENSOR_BITS & ~health_bad, view.load_permille(), voltage_mv, current_ca, -1,
        0, errors_comm, 0, 0, 0, 0, 0, 0, ALL_SENSOR_BITS)]


def build_global_position_int(link: GroundLink, now_s: float) -> list:
    view = link.view
    est = view.state.estimate
    lat = clamp_int(est.latitude_deg * 1e7, -900_000_000, 900_000_000, 0) if est.position_valid else 0
    lon = clamp_int(est.longitude_deg * 1e7, -1_800_000_000, 1_800_000_000, 0) if est.position_valid else 0
    alt_mm = clamp_int(est.altitude_m * 1000.0, -(2 ** 31), 2 ** 31 - 1, 0) if est.altitude_valid else 0
    home = view.home()
    relative_mm = clamp_int((est.altitude_m - home[2]) * 1000.0, -(2 ** 31), 2 ** 31 - 1, 0) \
        if home is not None and est.altitude_valid else 0
    vx = vy = 0
    heading = UINT16_MAX
    if est.position_valid and _finite(est.ground_speed_mps) and _finite(est.course_deg):
        course_rad = math.radians(est.course_deg)
        vx = clamp_int(est.ground_speed_mps * math.cos(course_rad) * 100.0, -32768, 32767, 0)
        vy = clamp_int(est.ground_speed_mps * math.sin(course_rad) * 100.0, -32768, 32767, 0)
        heading = clamp_int((est.course_deg % 360.0) * 100.0, 0, 35999, UINT16_MAX)
    vz = clamp_int(-est.vertical_rate_mps * 100.0, -32768, 32767, 0) if est.vertical_rate_valid else 0
    return [mavlink.MAVLink_global_position_int_message(
        view.time_boot_ms(now_s), lat, lon, alt_mm, relative_mm, vx, vy, vz, heading)]


def build_gps_raw_int(link: GroundLink, now_s: float) -> list:
    view = link.view
    if not view.has_gps():
        return []
    est = view.state.estimate
    time_us = int(est.gps_utc_time_s * 1e6) if _finite(est.gps_utc_time_s) else view.time_boot_us(now_s)
    valid = est.position_valid
    return [mavlink.MAVLink_gps_raw_int_message(
        time_us, int(est.fix_type) & 0xFF,
        clamp_int(est.latitude_deg * 1e7, -900_000_000, 900_000_000, 0) if valid else 0,
        clamp_int(est.longitude_deg * 1e7, -1_800_000_000, 1_800_000_000, 0) if valid else 0,
        clamp_int(est.gps_altitude_m * 1000.0, -(2 ** 31), 2 ** 31 - 1, 0) if valid else 0,
        clamp_int(est.hdop * 100.0, 0, UINT16_MAX - 1, UINT16_MAX), UINT16_MAX,
        clamp_int(est.ground_speed_mps * 100.0, 0, UINT16_MAX - 1, UINT16_MAX) if valid else UINT16_MAX,
        clamp_int((est.course_deg % 360.0) * 100.0, 0, 35999, UINT16_MAX) if valid and _finite(est.course_deg)
        else UINT16_MAX,
        min(max(int(est.satellites), 0), 255))]


def _scaled_pressure(index: int, message: type) -> Builder:
    def build(link: GroundLink, now_s: float) -> list:
        readings = link.view.barometer_readings()
        if index >= len(readings):
            return []
        reading = readings[index]
        pressure_hpa = reading.pressure_pa / 100.0 if reading.healthy and _finite(reading.pressure_pa) else 0.0
        temperature_cdeg = clamp_int(reading.temperature_c * 100.0, -32768, 32767, 0) if reading.healthy else 0
        return [message(link.view.time_boot_ms(now_s), pressure_hpa, 0.0, temperature_cdeg, 0)]
    return build


def build_battery_status(link: GroundLink, now_s: float) -> list:
    view = link.view
    if not view.has_power_monitor():
        return []
    est = view.state.estimate
    voltages = [UINT16_MAX] * 10
    if est.power_valid and _finite(est.bus_voltage_v):
        millivolts = max(int(round(est.bus_voltage_v * 1000.0)), 0)
        if millivolts > UINT16_MAX - 1:  # the spec's overflow rule: cell 0 saturates, cell 1 holds the rest
            voltages[0], voltages[1] = UINT16_MAX - 1, min(millivolts - (UINT16_MAX - 1), UINT16_MAX - 1)
        else:
            voltages[0] = millivolts
    current_ca = clamp_int(est.current_a * 100.0, -1, INT16_MAX, -1) if est.power_valid else -1
    return [mavlink.MAVLink_battery_status_message(
        0, mavlink.MAV_BATTERY_FUNCTION_ALL, mavlink.MAV_BATTERY_TYPE_UNKNOWN, INT16_MAX, voltages, current_ca,
        -1, -1, -1, 0, mavlink.MAV_BATTERY_CHARGE_STATE_UNDEFINED, [0] * 4, 0, 0)]


def build_system_time(link: GroundLink, now_s: float) -> list:
    wall_s = link.clock.wall_time_s()
    return [mavlink.MAVLink_system_time_message(int(max(wall_s, 0.0) * 1e6), link.view.time_boot_ms(now_s))]


def build_home_position(link: GroundLink, now_s: float) -> list:
    home = link.view.home()
    if home is None:
        return []
    latitude_deg, longitude_deg, altitude_m = home
    return [mavlink.MAVLink_home_position_message(
        int(round(latitude_deg * 1e7)), int(round(longitude_deg * 1e7)), int(round(altitude_m * 1000.0)),
        0.0, 0.0, 0.0, [1.0, 0.0, 0.0, 0.0], 0.0, 0.0, 0.0, link.view.time_boot_us(now_s))]


def build_named_values(link: GroundLink, now_s: float) -> list:
    time_ms = link.view.time_boot_ms(now_s)
    return [mavlink.MAVLink_named_value_float_message(time_ms, name.encode("ascii")[:10], float(value))
            for name, value in link.named_values() if _finite(value)]


# ---------------------------------------------------------------------------------------------- the table

TELEMETRY: tuple[TelemetryMessage, ...] = (
    TelemetryMessage("HEARTBEAT", mavlink.MAVLINK_MSG_ID_HEARTBEAT, 1.0, build_heartbeat,
                     "identity, phase (custom_mode), armed state and system status"),
    TelemetryMessage("SYS_STATUS", mavlink.MAVLINK_MSG_ID_SYS_STATUS, 0.5, build_sys_status,
                     "sensor presence/health (barometer, GPS, power), frame load, bus voltage and current"),
    TelemetryMessage("GLOBAL_POSITION_INT", mavlink.MAVLINK_MSG_ID_GLOBAL_POSITION_INT, 1.0,
                     build_global_position_int, "fused position, MSL and above-launch altitude, velocity"),
    TelemetryMessage("GPS_RAW_INT", mavlink.MAVLINK_MSG_ID_GPS_RAW_INT, 0.5, build_gps_raw_int,
                     "the GNSS receiver's own solution"),
    TelemetryMessage("SCALED_PRESSURE", mavlink.MAVLINK_MSG_ID_SCALED_PRESSURE, 0.5,
                     _scaled_pressure(0, mavlink.MAVLink_scaled_pressure_message), "barometer 1"),
    TelemetryMessage("SCALED_PRESSURE2", mavlink.MAVLINK_MSG_ID_SCALED_PRESSURE2, 0.5,
                     _scaled_pressure(1, mavlink.MAVLink_scaled_pressure2_message), "barometer 2 (if fitted)"),
    TelemetryMessage("SCALED_PRESSURE3", mavlink.MAVLINK_MSG_ID_SCALED_PRESSURE3, 0.5,
                     _scaled_pressure(2, mavlink.MAVLink_scaled_pressure3_message), "barometer 3 (if fitted)"),
    TelemetryMessage("BATTERY_STATUS", mavlink.MAVLINK_MSG_ID_BATTERY_STATUS, 0.2, build_battery_status,
                     "bus voltage (cell 0) and current of the first power monitor"),
    TelemetryMessage("SYSTEM_TIME", mavlink.MAVLINK_MSG_ID_SYSTEM_TIME, 0.2, build_system_time,
                     "UTC and time since boot"),
    TelemetryMessage("HOME_POSITION", mavlink.MAVLINK_MSG_ID_HOME_POSITION, 0.0, build_home_position,
                     "the launch point: sent when it changes and on request"),
    TelemetryMessage("NAMED_VALUE_FLOAT", mavlink.MAVLINK_MSG_ID_NAMED_VALUE_FLOAT, 0.2, build_named_values,
                     "values no standard message carries (one message per value, see docs/ground.md)"),
)

BY_ID: dict[int, TelemetryMessage] = {entry.msg_id: entry for entry in TELEMETRY}
NEVER_OFF = frozenset({mavlink.MAVLINK_MSG_ID_HEARTBEAT})  # a link without heartbeats looks dead


class TelemetrySchedule:
    """When each table message is next due on one link.

    ``start_s`` is the flight-clock time streaming starts; first transmissions are staggered by one 50 ms slot
    per table row so a link never sends the whole table in one frame.  ``earliest_due_s`` is when the next streamed
    message is due (inf when every stream is off); change intervals through :meth:`set_interval_us` so it stays
    true.
    """

    def __init__(self, start_s: float) -> None:
        self.interval_s: dict[int, float | None] = {e.msg_id: e.default_interval_s for e in TELEMETRY}
        self.next_due_s: dict[int, float] = {e.msg_id: start_s + i * MIN_INTERVAL_S for i, e in enumerate(TELEMETRY)}
        self.earliest_due_s = self._earliest()

    def _earliest(self) -> float:
        """When the next streamed message is due (inf when every stream is off)."""
        next_due_s = self.next_due_s
        return min([next_due_s[msg_id] for msg_id, interval_s in self.interval_s.items() if interval_s is not None],
                   default=math.inf)

    def set_interval_us(self, msg_id: int, interval_us: float, now_s: float) -> tuple[bool, str]:
        """Apply SET_MESSAGE_INTERVAL: ``interval_us`` > 0 sets it, 0 restores the default, -1 stops the stream.

        Returns ``(False, reason)`` for a message not in :data:`TELEMETRY` or a value the spec does not define.
        """
        entry = BY_ID.get(msg_id)
        if entry is None:
            return False, f"message {msg_id} is not streamed by this vehicle"
        if not _finite(interval_us) or (interval_us < 0 and round(interval_us) != -1):
            return False, f"interval {interval_us} us not valid"
        if round(interval_us) == -1:
            if msg_id in NEVER_OFF:
                return False, f"{entry.name} cannot be switched off"
            interval_s: float | None = None
        elif interval_us == 0:
            interval_s = entry.default_interval_s
        else:
            interval_s = max(interval_us / 1e6, MIN_INTERVAL_S)
        self.interval_s[msg_id] = interval_s
        if interval_s is not None:
            self.next_due_s[msg_id] = min(self.next_due_s.get(msg_id, now_s), now_s + interval_s)
        self.earliest_due_s = self._earliest()
        return True, ""

    def interval_us(self, msg_id: int) -> int:
        """For MESSAGE_INTERVAL: the current interval in us, -1 when off, 0 when not a streamed message."""
        if msg_id not in self.interval_s:
            return 0
        interval_s = self.interval_s[msg_id]
        return -1 if interval_s is None else int(round(interval_s * 1e6))

    def due(self, now_s: float) -> list[TelemetryMessage]:
        """The table rows due at ``now_s``; each is rescheduled one interval on (or from now, if it fell behind)."""
        if now_s + 1e-9 < self.earliest_due_s:
            return []  # most frames: nothing due
        out = []
        intervals_s, next_due_s, horizon_s = self.interval_s, self.next_due_s, now_s + 1e-9
        earliest_s = math.inf  # _earliest(), gathered on the way
        for entry in TELEMETRY:
            msg_id = entry.msg_id
            interval_s = intervals_s[msg_id]
            if interval_s is None:
                continue
            due_s = next_due_s[msg_id]
            if horizon_s >= due_s:
                out.append(entry)
                next_s = due_s + interval_s
                due_s = next_due_s[msg_id] = next_s if next_s > now_s else now_s + interval_s
            if due_s < earliest_s:
                earliest_s = due_s
        self.earliest_due_s = earliest_s
        return out
