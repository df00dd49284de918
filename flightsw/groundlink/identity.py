"""Who we are on the link: HEARTBEAT, AUTOPILOT_VERSION and, on high-latency links, HIGH_LATENCY2.

HEARTBEAT
    ``type`` MAV_TYPE_FREE_BALLOON, ``autopilot`` MAV_AUTOPILOT_GENERIC, ``custom_mode`` the flight phase number
    (:class:`flightsw.phase.Phase`).  ``base_mode`` always has CUSTOM_MODE_ENABLED, plus SAFETY_ARMED while the
    release or the cutdown chain is armed and HIL_ENABLED when flying the simulated board.  ``system_status``:

    ================== ===============================================================================
    BOOT               PREFLIGHT, within the first 10 s after the link started, sensors not yet healthy
    STANDBY            PREFLIGHT or LANDED, everything healthy
    ACTIVE             ASCENT, FLOAT or DESCENT, everything healthy
    CRITICAL           a sensor we have is unhealthy or an executive task is failing
    EMERGENCY          airborne without a valid altitude estimate (the altitude rules cannot run)
    FLIGHT_TERMINATION termination fired or the phase is TERMINATION
    ================== ===============================================================================

AVAILABLE_MODES / CURRENT_MODE are not sent: the ``common`` dialect of the pymavlink release we depend on does
not define them (they are still in ``development``); ground stations get the phase from ``custom_mode``.

HIGH_LATENCY2 field use (see ``docs/ground.md``): ``altitude`` and ``target_altitude`` are int16 metres, so any
altitude at or above 32,767 m is sent as 32,767 (and below -32,768 as -32,768); ``climb_rate`` is int8 in dm/s, so
vertical rates beyond +12.7 / -12.8 m/s are sent as 127 / -128.  ``groundspeed`` is uint8 in 0.2 m/s steps
(clamped at 51 m/s) and ``windspeed``/``wind_heading`` repeat ground speed and course, because a free balloon
drifts with the wind.  ``custom0`` = MAV_STATE, ``custom1`` = flags (bit 0 release armed, bit 1 cutdown armed,
bit 2 release fired, bit 3 termination fired, bit 4 simulated), ``custom2`` = ballast remaining in percent of
the ballast carried (-1 when none is declared).
"""

from __future__ import annotations

import importlib.metadata
import math

from pymavlink.dialects.v20 import common as mavlink

from flightsw.groundlink.vehicle import VehicleView
from flightsw.phase import Phase

BOOT_GRACE_S = 10.0

#: What AUTOPILOT_VERSION advertises.  Every bit is something this link actually does: MAVLink 2 framing (and
#: signing), COMMAND_INT, flight termination, and parameter values encoded bytewise, the one encoding PARAM_SET is
#: decoded by (every value goes out as a REAL32 float of the same number; see :mod:`.parameters`).
CAPABILITIES = (mavlink.MAV_PROTOCOL_CAPABILITY_MAVLINK2
                | mavlink.MAV_PROTOCOL_CAPABILITY_COMMAND_INT
                | mavlink.MAV_PROTOCOL_CAPABILITY_FLIGHT_TERMINATION
                | mavlink.MAV_PROTOCOL_CAPABILITY_PARAM_ENCODE_BYTEWISE)


def base_mode(view: VehicleView) -> int:
    mode = mavlink.MAV_MODE_FLAG_CUSTOM_MODE_ENABLED
    if view.release_armed() or view.cutdown_armed():
        mode |= mavlink.MAV_MODE_FLAG_SAFETY_ARMED
    if view.simulated:
        mode |= mavlink.MAV_MODE_FLAG_HIL_ENABLED
    return mode


def system_status(view: VehicleView, now_s: float, link_started_s: float) -> int:
    """The MAV_STATE for HEARTBEAT (see the module docstring for the table)."""
    phase = view.phase
    if view.terminated():
        return mavlink.MAV_STATE_FLIGHT_TERMINATION
    if phase.airborne and not view.state.estimate.altitude_valid:
        return mavlink.MAV_STATE_EMERGENCY
    healthy = view.sensors_ok()
    if phase is Phase.PREFLIGHT and not healthy and now_s - link_started_s < BOOT_GRACE_S:
        return mavlink.MAV_STATE_BOOT
    if not healthy:
        return mavlink.MAV_STATE_CRITICAL
    if phase in (Phase.PREFLIGHT, Phase.LANDED):
        return mavlink.MAV_STATE_STANDBY
    return mavlink.MAV_STATE_ACTIVE


def heartbeat(view: VehicleView, now_s: float, link_started_s: float) -> mavlink.MAVLink_heartbeat_message:
    return mavlink.MAVLink_heartbeat_message(
        mavlink.MAV_TYPE_FREE_BALLOON, mavlink.MAV_AUTOPILOT_GENERIC, base_mode(view), int(view.phase),
        system_status(view, now_s, link_started_s), 3)


def software_version() -> int:
    """Our version as AUTOPILOT_VERSION's ``flight_sw_version``: major, minor, patch bytes, then the release
    type (FIRMWARE_VERSION_TYPE_OFFICIAL; DEV with version 0.0.0 when the package is not installed)."""
    try:
        text = importlib.metadata.version("flightsw")
        release_type = mavlink.FIRMWARE_VERSION_TYPE_OFFICIAL
    except importlib.metadata.PackageNotFoundError:
        text, release_type = "0.0.0", mavlink.FIRMWARE_VERSION_TYPE_DEV
    numbers = []
    for part in text.split(".")[:3]:
        digits = "".join(ch for ch in part if ch.isdigit()) or "0"
        numbers.append(min(int(digits), 255))
    while len(numbers) < 3:
        numbers.append(0)
    return (numbers[0] << 24) | (numbers[1] << 16) | (numbers[2] << 8) | release_type


def autopilot_version(system_id: int) -> mavlink.MAVLink_autopilot_version_message:
    """AUTOPILOT_VERSION with :data:`CAPABILITIES`.  ``uid`` is the system id (we have no hardware serial)."""
    return mavlink.MAVLink_autopilot_version_message(
        CAPABILITIES, software_version(), 0, 0, 0, [0] * 8, [0] * 8, [0] * 8, 0, 0, int(system_id), [0] * 18)


def clamp_int(value: float, low: int, high: int, default: int = 0) -> int:
    """``value`` rounded to the nearest integer and clamped to ``low..high``; ``default`` for NaN, infinities and
    anything that is not a number."""
    if isinstance(value, (int, float)) and math.isfinite(value):
        rounded = round(value)
        return int(low if rounded < low else high if rounded > high else rounded)  # min/max cost more
    return default


def high_latency2(view: VehicleView, now_s: float, link_started_s: float,
                  ballast_left_fraction: float | None) -> mavlink.MAVLink_high_latency2_message:
    """One HIGH_LATENCY2 summary (field use and clamping in the module docstring).  ``ballast_left_fraction``:
    ballast still on board as a fraction of what was carried, or None when that is not known."""
    est = view.state.estimate
    latches = view.state.latches
    lat = clamp_int(est.latitude_deg * 1e7, -900_000_000, 900_000_000) if est.position_valid else 0
    lon = clamp_int(est.longitude_deg * 1e7, -1_800_000_000, 1_800_000_000) if est.position_valid else 0
    altitude = clamp_int(est.altitude_m, -32768, 32767) if est.altitude_valid else 0
    target = clamp_int(latches.float_target_altitude_m, -32768, 32767)
    course = est.course_deg if est.position_valid and math.isfinite(est.course_deg) else 0.0
    heading = clamp_int((course % 360.0) / 2.0, 0, 179)
    speed = clamp_int(est.ground_speed_mps * 5.0, 0, 255) if est.position_valid else 0
    climb = clamp_int(est.vertical_rate_mps * 10.0, -128, 127) if est.vertical_rate_valid else 0
    temperature = clamp_int(view.air_temperature_c(), -128, 127)
    failures = 0
    if view.has_gps() and not view.gps_healthy():
        failures |= mavlink.HL_FAILURE_FLAG_GPS
    if view.has_barometer() and not view.barometer_healthy():
        failures |= mavlink.HL_FAILURE_FLAG_ABSOLUTE_PRESSURE
    if view.has_power_monitor() and not view.power_healthy():
        failures |= mavlink.HL_FAILURE_FLAG_BATTERY
    if not est.altitude_valid:
        failures |= mavlink.HL_FAILURE_FLAG_ESTIMATOR
    flags = ((1 if view.release_armed() else 0) | (2 if view.cutdown_armed() else 0)
             | (4 if latches.release_fired else 0) | (8 if latches.termination_fired else 0)
             | (16 if view.simulated else 0))
    ballast_pct = -1 if ballast_left_fraction is None else clamp_int(ballast_left_fraction * 100.0, 0, 100, -1)
    return mavlink.MAVLink_high_latency2_message(
        view.time_boot_ms(now_s), mavlink.MAV_TYPE_FREE_BALLOON, mavlink.MAV_AUTOPILOT_GENERIC,
        int(view.phase) & 0xFFFF, lat, lon, altitude, target, heading, 0, 0, 0, 0, 0, speed, speed, heading,
        0, 0, temperature, climb, -1, 0, failures, system_status(view, now_s, link_started_s), flags, ballast_pct)
