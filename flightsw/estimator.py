"""The state estimator: turns the devices' latest readings into one :class:`~flightsw.state.Estimate` per frame.

It reads readings only (the sense task calls the devices' ``update``) and never raises on bad data.

Altitude
    Every barometer's pressure is converted through the standard atmosphere.  A barometer is *excluded* when its
    reading is unhealthy, older than ``EST_BARO_STALE_S``, outside the sensor's ``rated_pressure_pa``, or *frozen*:
    its pressure bit-identical over ``EST_BARO_FRZ_S`` of readings (a live sensor at these resolutions changes by a
    few counts of noise every sample; a hung converter or a stuck register does not).  The rest are *voted*: with
    three or more, a sensor further than ``EST_BARO_REJ_M`` (and ``EST_BARO_REJ_PA``) from the median is rejected;
    with two that disagree, the one nearer a reference (a fresh 3D GPS altitude, else the filter's prediction) is
    kept.  Two sensors with no reference are averaged.  The used altitude is the median (mean of the middle two)
    of the accepted sensors.  When a single barometer is left, a fresh 3D GPS altitude
    further than ``EST_BARO_XCHK_M`` from it rejects it too (GPS takes over).  That threshold is large on purpose:
    the real atmosphere departs from the standard one by hundreds of metres at 30 km, so only a gross failure
    (a sensor stuck kilometres away) may be judged this way.  Above the barometers' range, or when they all fail, a
    fresh 3D GPS altitude takes over; the barometers take back over once usable for ``EST_SRC_HOLD_S`` (at once
    if the GPS is lost).

Vertical rate
    A critically damped alpha-beta filter on the selected altitude, updated once per new measurement with the
    measurement's own time step: both poles sit at ``exp(-dt / tau)``, i.e. ``alpha = 1 - rho**2`` and
    ``beta = (1 - rho)**2``, stable for any step.  The rate responds to a step of true rate as
    ``1 - (1 + t/tau) exp(-t/tau)``; white altitude noise ``sigma`` gives a rate noise of about
    ``sigma * sqrt(dt / (4 tau**3))``.  On barometers the time constant is ``EST_RATE_TAU_S``, lengthened where
    the pressure noise ``EST_BARO_SD_PA`` (divided by the square root of the sensors used) is worth so many
    metres that the rate noise would exceed ``EST_RATE_SD_MPS``: one pascal is ~0.1 m at sea level, ~5 m at
    30 km and ~25 m at 40 km, so above ~20 km ``tau = (sigma_m**2 dt / (4 EST_RATE_SD_MPS**2))**(1/3)``
    (at most ``RATE_TAU_MAX_S``).  On a change of altitude source the filter's altitude is re-seeded on the
    new source and its rate kept, so the offset between barometric and GPS altitude never shows as a rate spike.
    After a loss of every source the filter restarts from zero rate; the rate is valid again after five time
    constants (the start-up error has then decayed to 4 %).

``lift_change_mps2``
    The vertical acceleration (derivative of the filtered rate) averaged over ``EST_LIFT_WIN_S`` minus the same
    averaged over ``EST_LIFT_BASE_S``: a sudden gain of lift (payload released) shows as a positive value.
"""

from __future__ import annotations

import math

from hal.interfaces import FixType, Hal
from flightsw.atmosphere import altitude_from_pressure_m
from flightsw.params import ParamDecl, bool_param
from flightsw.state import AltitudeSource, Estimate

NAN = math.nan
GROUP = "estimator"
RATE_SETTLE_TIME_CONSTANTS = 5.0  # rate valid this many time constants after a restart (start error x 4 %)
RATE_TAU_MAX_S = 20.0  # longest barometric time constant the noise adaptation may choose
MAX_NOISE_STEP_S = 1.0  # measurement interval used at most in the noise adaptation

ESTIMATOR_PARAMS: tuple[ParamDecl, ...] = (
    ParamDecl("EST_BARO_STALE_S", float, 1.0, 0.1, 10.0, "s",
              "A barometer reading older than this is excluded.", group=GROUP),
    ParamDecl("EST_BARO_REJ_M", float, 150.0, 5.0, 5000.0, "m",
              "A barometer this far (in altitude) from the others' consensus is rejected as an outlier, if its "
              "pressure also differs by more than EST_BARO_REJ_PA.", group=GROUP),
    ParamDecl("EST_BARO_REJ_PA", float, 20.0, 0.0, 10000.0, "Pa",
              "Pressure difference below which a barometer is never rejected (keeps sensors within their absolute "
              "accuracy at altitude, where one pascal is several metres).", group=GROUP),
    ParamDecl("EST_GPS_STALE_S", float, 2.0, 0.2, 30.0, "s",
              "A GPS fix older than this gives neither position nor altitude.", group=GROUP),
    bool_param("EST_GPS_ALLOW_2D", False, "Accept a 2D fix as a valid position (altitude always needs 3D).",
               group=GROUP),
    ParamDecl("EST_GPS_MAX_HDOP", float, 10.0, 0.5, 99.0, "",
              "A fix with a larger horizontal dilution of precision is not a valid position.", group=GROUP),
    ParamDecl("EST_RATE_TAU_S", float, 1.2, 0.2, 20.0, "s",
              "Time constant of the vertical-rate filter on barometric altitude (longer: less noise, slower).",
              group=GROUP),
    ParamDecl("EST_GPS_TAU_S", float, 3.0, 0.2, 30.0, "s",
              "Time constant of the vertical-rate filter on GPS altitude.", group=GROUP),
    ParamDecl("EST_SRC_HOLD_S", float, 2.0, 0.0, 60.0, "s",
              "Barometers must be usable this long before altitude switches back to them from GPS.", group=GROUP),
    ParamDecl("EST_LIFT_WIN_S", float, 2.0, 0.2, 30.0, "s",
              "Short averaging window of the vertical acceleration for lift_change_mps2.", group=GROUP),
    ParamDecl("EST_LIFT_BASE_S", float, 30.0, 1.0, 600.0, "s",
              "Baseline averaging window of the vertical acceleration for lift_change_mps2.", group=GROUP),
    ParamDecl("EST_AUX_STALE_S", float, 5.0, 0.2, 60.0, "s",
              "Power-monitor and thermometer readings older than this are not valid.", group=GROUP),
    ParamDecl("EST_BARO_FRZ_S", float, 4.0, 0.0, 60.0, "s",
              "A barometer whose pressure stays bit-identical over this much time of new readings is excluded "
              "as frozen (live sensors change by a few counts of noise every sample); 0: never.", group=GROUP),
    ParamDecl("EST_BARO_XCHK_M", float, 1500.0, 50.0, 20000.0, "m",
              "With a single usable barometer, a fresh 3D GPS altitude further than this from it rejects it and "
              "GPS takes over.  Large: the real atmosphere differs from the standard one by hundreds of metres "
              "at 30 km.", group=GROUP),
    ParamDecl("EST_BARO_SD_PA", float, 1.3, 0.0, 100.0, "Pa",
              "Pressure noise of one barometer reading (1 sigma; MS5611 at OSR 4096: 1.2 Pa plus its 1 Pa "
              "step), used to lengthen the rate filter's time constant at altitude; 0: never lengthen.",
              group=GROUP),
    ParamDecl("EST_RATE_SD_MPS", float, 0.12, 0.01, 5.0, "m/s",
              "Vertical-rate noise the barometric rate filter aims at when the pressure noise is worth many "
              "metres (high altitude): its time constant grows above EST_RATE_TAU_S to keep to this.",
              group=GROUP),
)


class BaroStatus:
    """Why a barometer was or was not used in the last update."""

    USED = "used"
    UNHEALTHY = "unhealthy"
    STALE = "stale"
    OUT_OF_RANGE = "out_of_range"
    FROZEN = "frozen"
    REJECTED = "rejected"


class RateFilter:
    """Critically damped alpha-beta filter on altitude (m) giving vertical rate (m/s).

    ``reset(altitude_m, time_s)`` starts it with zero rate; ``update(altitude_m, time_s, tau_s)`` applies one
    measurement taken at ``time_s`` with time constant ``tau_s``; ``reseed(altitude_m, time_s)`` moves the
    altitude to a new reference keeping the rate (change of source).
    """

    __slots__ = ("altitude_m", "rate_mps", "time_s", "started_s", "accel_fast_mps2", "accel_base_mps2",
                 "_dt_s", "_tau_s", "_alpha", "_beta")

    def __init__(self) -> None:
        self.altitude_m = NAN
        self.rate_mps = 0.0
        self.time_s = NAN
        self.started_s = NAN
        self.accel_fast_mps2 = 0.0
        self.accel_base_mps2 = 0.0
        self._dt_s = NAN
        self._tau_s = NAN
        self._alpha = 0.0
        self._beta = 0.0

    @property
    def running(self) -> bool:
        return self.time_s == self.time_s  # not NaN

    def stop(self) -> None:
        self.time_s = NAN

    def reset(self, altitude_m: float, time_s: float) -> None:
        self.altitude_m = altitude_m
        self.rate_mps = 0.0
        self.time_s = time_s
        self.started_s = time_s
        self.accel_fast_mps2 = 0.0
        self.accel_base_mps2 = 0.0

    def reseed(self, altitude_m: float, time_s: float) -> None:
        self.altitude_m = altitude_m
        self.time_s = time_s

    def update(self, altitude_m: float, time_s: float, tau_s: float, lift_win_s: float, lift_base_s: float) -> None:
        dt_s = time_s - self.time_s
        if not dt_s > 0.0:
            return
        if dt_s != self._dt_s or tau_s != self._tau_s:
            rho = math.exp(-dt_s / tau_s)
            self._alpha = 1.0 - rho * rho
            self._beta = (1.0 - rho) * (1.0 - rho)
            self._dt_s = dt_s
            self._tau_s = tau_s
        residual_m = altitude_m - (self.altitude_m + self.rate_mps * dt_s)
        self.altitude_m += self.rate_mps * dt_s + self._alpha * residual_m
        delta_rate_mps = self._beta * residual_m / dt_s
        self.rate_mps += delta_rate_mps
        self.time_s = time_s
        accel_mps2 = delta_rate_mps / dt_s
        self.accel_fast_mps2 += (accel_mps2 - self.accel_fast_mps2) * min(1.0, dt_s / lift_win_s)
        self.accel_base_mps2 += (accel_mps2 - self.accel_base_mps2) * min(1.0, dt_s / lift_base_s)


class _BaroTrack:
    """One barometer's last reading that passed the health, staleness and range checks, with that reading's
    pressure (Pa), altitude (m) and time (s), and ``same_since_s``: the time of the reading in which the pressure
    first had its present bit-identical value (frozen when that is ``EST_BARO_FRZ_S`` ago).  Re-reading one reading
    does not age it; a gap longer than ``EST_BARO_STALE_S`` between such readings starts over, so a sensor coming
    back into range on the value it left with is not taken for frozen."""

    __slots__ = ("name", "reading", "pressure_pa", "altitude_m", "time_s", "same_since_s")

    def __init__(self, name: str) -> None:
        self.name = name
        self.reading = None
        self.pressure_pa = self.altitude_m = self.time_s = self.same_since_s = NAN

    def observe(self, reading, stale_s: float) -> None:
        """Take ``reading`` (one not observed last) as the barometer's newest."""
        pressure_pa = reading.pressure_pa
        time_s = reading.time_s
        if pressure_pa != self.pressure_pa:
            self.altitude_m = altitude_from_pressure_m(pressure_pa)
            self.same_since_s = time_s
        elif not time_s - self.time_s <= stale_s:
            self.same_since_s = time_s
        self.reading = reading
        self.pressure_pa = pressure_pa
        self.time_s = time_s


class Estimator:
    """Fills an :class:`Estimate` from a :class:`Hal`'s latest readings; see the module docstring.

    :param params: the parameter values (anything indexable by name, e.g. :class:`flightsw.params.Params`);
        read again when it reports a change through ``on_change``, else at every update.

    Counters, per barometer name: ``rejections`` (updates in which it was voted out or failed the GPS
    cross-check), ``exclusions`` (updates in which it was unhealthy, stale, out of range or frozen), ``frozen``
    (updates in which it was frozen); ``status`` holds the last :class:`BaroStatus`.
    ``disagreements`` counts updates where two barometers disagreed with no reference to choose between them;
    ``source_switches`` counts changes of altitude source.
    """

    def __init__(self, params) -> None:
        self.params = params
        self.rejections: dict[str, int] = {}
        self.exclusions: dict[str, int] = {}
        self.frozen: dict[str, int] = {}
        self.status: dict[str, str] = {}
        self._tracks: dict[str, _BaroTrack] = {}  # per barometer name: its last reading that was frozen-checked
        self.baro_tau_s = NAN  # the barometric time constant in use (s)
        self.disagreements = 0
        self.source_switches = 0
        self.filter = RateFilter()
        self._source = AltitudeSource.NONE
        self._baro_time_s = NAN  # time of the last barometric measurement applied
        self._gps_time_s = NAN
        self._baro_usable_since_s = NAN
        self._static_params = False
        on_change = getattr(params, "on_change", None)
        if on_change is not None:
            on_change(self._on_param_change)
            self._static_params = True
        self._load_params()

    def _on_param_change(self, _name: str, _value: float) -> None:
        self._load_params()

    def _load_params(self) -> None:
        p = self.params
        self._baro_stale_s = float(p["EST_BARO_STALE_S"])
        self._rej_m = float(p["EST_BARO_REJ_M"])
        self._rej_pa = float(p["EST_BARO_REJ_PA"])
        self._gps_stale_s = float(p["EST_GPS_STALE_S"])
        self._min_position_fix = FixType.FIX_2D if p["EST_GPS_ALLOW_2D"] else FixType.FIX_3D
        self._max_hdop = float(p["EST_GPS_MAX_HDOP"])
        self._baro_tau_s = float(p["EST_RATE_TAU_S"])
        self._gps_tau_s = float(p["EST_GPS_TAU_S"])
        self._hold_s = float(p["EST_SRC_HOLD_S"])
        self._lift_win_s = float(p["EST_LIFT_WIN_S"])
        self._lift_base_s = float(p["EST_LIFT_BASE_S"])
        self._aux_stale_s = float(p["EST_AUX_STALE_S"])
        self._frozen_s = float(p["EST_BARO_FRZ_S"])
        self._xchk_m = float(p["EST_BARO_XCHK_M"])
        self._baro_sd_pa = float(p["EST_BARO_SD_PA"])
        self._rate_sd_mps = float(p["EST_RATE_SD_MPS"])

    @property
    def altitude_source(self) -> str:
        return self._source

    # ------------------------------------------------------------ the frame's work

    def update(self, hal: Hal, now_s: float, estimate: Estimate) -> None:
        """Fill ``estimate`` from ``hal``'s latest readings at flight-clock time ``now_s`` (s).  Never raises on
        bad data: a bad reading is excluded and counted."""
        if not self._static_params:
            self._load_params()
        gps = hal.gps
        fix = gps.fix if gps is not None else None
        gps_fresh = fix is not None and fix.healthy and now_s - fix.time_s <= self._gps_stale_s
        gps_alt_ok = gps_fresh and fix.fix_type >= FixType.FIX_3D and fix.altitude_m == fix.altitude_m
        self._fill_gps(estimate, fix, gps_fresh, now_s)

        baro_alt_m, baro_p_pa, baro_time_s, used = self._vote(hal.barometers, now_s,
                                                             fix.altitude_m if gps_alt_ok else NAN)
        estimate.barometers_used = used
        estimate.pressure_pa = baro_p_pa
        estimate.pressure_valid = used > 0
        if used:
            if self._baro_usable_since_s != self._baro_usable_since_s:
                self._baro_usable_since_s = now_s
        else:
            self._baro_usable_since_s = NAN
        self._select_and_filter(now_s, used, baro_alt_m, baro_p_pa, baro_time_s, gps_alt_ok, fix)
        self._fill_altitude(estimate, now_s)
        self._fill_power_and_temperature(hal, now_s, estimate)

    def _vote(self, barometers, now_s: float, gps_altitude_m: float) -> tuple[float, float, float, int]:
        """Altitude (m), pressure (Pa), newest reading time (s) and count of the barometers used."""
        used: list[_BaroTrack] = []
        stale_s = self._baro_stale_s
        frozen_s = self._frozen_s
        status = self.status
        tracks = self._tracks
        for baro in barometers:
            name = baro.name
            reading = baro.reading
            if not reading.healthy:
                why = BaroStatus.UNHEALTHY
            elif not now_s - reading.time_s <= stale_s:
                why = BaroStatus.STALE
            else:
                low, high = baro.rated_pressure_pa
                if not low <= reading.pressure_pa <= high:
                    why = BaroStatus.OUT_OF_RANGE
                else:
                    track = tracks.get(name)
                    if track is None:
                        track = tracks[name] = _BaroTrack(name)
                    if reading is not track.reading:
                        track.observe(reading, stale_s)
                    if frozen_s > 0.0 and track.time_s - track.same_since_s >= frozen_s:
                        why = BaroStatus.FROZEN
                        self.frozen[name] = self.frozen.get(name, 0) + 1
                    else:
                        used.append(track)
                        status[name] = BaroStatus.USED
                        continue
            status[name] = why
            self.exclusions[name] = self.exclusions.get(name, 0) + 1
        n = len(used)
        if n == 0:
            return NAN, NAN, NAN, 0
        keep = self._consensus(used, gps_altitude_m) if n > 1 else used
        if len(keep) == 1 and abs(keep[0].altitude_m - gps_altitude_m) > self._xchk_m:  # False when GPS is NaN
            keep = []  # a single barometer far from a fresh GPS altitude: GPS takes over
        if len(keep) < n:
            for track in used:
                if track not in keep:
                    name = track.name
                    status[name] = BaroStatus.REJECTED
                    self.rejections[name] = self.rejections.get(name, 0) + 1
            if not keep:
                return NAN, NAN, NAN, 0
        return _combine(keep)

    def _consensus(self, used: list[_BaroTrack], gps_altitude_m: float) -> list[_BaroTrack]:
        """The barometers that agree with the consensus."""
        rej_m, rej_pa = self._rej_m, self._rej_pa
        if len(used) == 2:
            a, b = used
            if abs(a.altitude_m - b.altitude_m) <= rej_m or abs(a.pressure_pa - b.pressure_pa) <= rej_pa:
                return used
            keep: list[_BaroTrack] = []
        else:
            center_m = _median([track.altitude_m for track in used])
            center_pa = _median([track.pressure_pa for track in used])
            keep = [track for track in used
                    if abs(track.altitude_m - center_m) <= rej_m or abs(track.pressure_pa - center_pa) <= rej_pa]
            if keep:
                return keep
        reference_m = gps_altitude_m
        if reference_m != reference_m and self._source == AltitudeSource.BARO and self.filter.running:
            reference_m = self.filter.altitude_m
        if reference_m != reference_m:
            self.disagreements += 1
            return used
        best = min(used, key=lambda track: abs(track.altitude_m - reference_m))
        return [track for track in used if abs(track.altitude_m - best.altitude_m) <= rej_m
                or abs(track.pressure_pa - best.pressure_pa) <= rej_pa]

    def _select_and_filter(self, now_s: float, used: int, baro_alt_m: float, baro_p_pa: float,
                           baro_time_s: float, gps_alt_ok: bool, fix) -> None:
        baro_ok = used > 0
        source = self._source
        if baro_ok and (source != AltitudeSource.GPS or not gps_alt_ok
                        or now_s - self._baro_usable_since_s >= self._hold_s):
            new_source = AltitudeSource.BARO
        elif gps_alt_ok:
            new_source = AltitudeSource.GPS
        else:
            new_source = AltitudeSource.NONE
        flt = self.filter
        if new_source == AltitudeSource.BARO:
            z_m, t_s = baro_alt_m, baro_time_s
            last_s = self._baro_time_s
            tau_s = self.baro_tau_s
            if t_s != last_s or tau_s != tau_s:
                tau_s = self.baro_tau_s = self._baro_tau_for(baro_p_pa, t_s - last_s, used)
        elif new_source == AltitudeSource.GPS:
            z_m, t_s, tau_s = fix.altitude_m, fix.time_s, self._gps_tau_s
            last_s = self._gps_time_s
        else:
            if source != AltitudeSource.NONE:
                self.source_switches += 1
            self._source = AltitudeSource.NONE
            flt.stop()
            return
        if new_source != source:
            if source != AltitudeSource.NONE:
                self.source_switches += 1
            if flt.running:
                flt.reseed(z_m, t_s)
            else:
                flt.reset(z_m, t_s)
            self._source = new_source
        elif t_s != last_s:
            flt.update(z_m, t_s, tau_s, self._lift_win_s, self._lift_base_s)
        if new_source == AltitudeSource.BARO:
            self._baro_time_s = t_s
        else:
            self._gps_time_s = t_s

    def _baro_tau_for(self, pressure_pa: float, dt_s: float, used: int) -> float:
        """The barometric time constant (s) for a measurement of ``pressure_pa`` (Pa) from ``used`` sensors coming
        ``dt_s`` (s) after the previous one: ``EST_RATE_TAU_S``, or longer where the pressure noise is worth so
        many metres that the rate noise would exceed ``EST_RATE_SD_MPS``."""
        tau_s = self._baro_tau_s
        if self._baro_sd_pa > 0.0 and pressure_pa > 1.0 and dt_s > 0.0:
            metres_per_pa = altitude_from_pressure_m(pressure_pa - 0.5) - altitude_from_pressure_m(pressure_pa + 0.5)
            sigma_m = self._baro_sd_pa * metres_per_pa / math.sqrt(used)
            rate_sd = self._rate_sd_mps
            tau_noise_s = (sigma_m * sigma_m * min(dt_s, MAX_NOISE_STEP_S) / (4.0 * rate_sd * rate_sd)) ** (1 / 3)
            if tau_noise_s > tau_s:
                tau_s = min(tau_noise_s, RATE_TAU_MAX_S)
        return tau_s

    # ------------------------------------------------------------ outputs

    def _fill_altitude(self, estimate: Estimate, now_s: float) -> None:
        flt = self.filter
        estimate.altitude_source = self._source
        if self._source == AltitudeSource.NONE:
            estimate.altitude_m = NAN
            estimate.altitude_valid = False
            estimate.vertical_rate_mps = NAN
            estimate.vertical_rate_valid = False
            estimate.lift_change_mps2 = 0.0
            return
        age_s = now_s - flt.time_s
        estimate.altitude_m = flt.altitude_m + flt.rate_mps * (age_s if age_s > 0.0 else 0.0)
        estimate.altitude_valid = True
        tau_s = self._gps_tau_s
        if self._source == AltitudeSource.BARO:
            tau_s = self.baro_tau_s if self.baro_tau_s == self.baro_tau_s else self._baro_tau_s
        settled = flt.time_s - flt.started_s >= RATE_SETTLE_TIME_CONSTANTS * tau_s
        estimate.vertical_rate_mps = flt.rate_mps
        estimate.vertical_rate_valid = settled
        estimate.lift_change_mps2 = flt.accel_fast_mps2 - flt.accel_base_mps2 if settled else 0.0

    def _fill_gps(self, estimate: Estimate, fix, fresh: bool, now_s: float) -> None:
        if fix is None:
            estimate.latitude_deg = estimate.longitude_deg = estimate.gps_altitude_m = NAN
            estimate.ground_speed_mps = estimate.course_deg = estimate.hdop = estimate.gps_utc_time_s = NAN
            estimate.fix_type = FixType.NO_GPS
            estimate.satellites = 0
            estimate.position_valid = False
            return
        estimate.latitude_deg = fix.latitude_deg
        estimate.longitude_deg = fix.longitude_deg
        estimate.gps_altitude_m = fix.altitude_m
        estimate.ground_speed_mps = fix.ground_speed_mps
        estimate.course_deg = fix.course_deg
        estimate.fix_type = fix.fix_type
        estimate.satellites = fix.satellites
        estimate.hdop = fix.hdop
        # The UTC time of the fix carried forward to now on the flight clock; NaN once the fix is stale.
        estimate.gps_utc_time_s = fix.utc_time_s + (now_s - fix.time_s) if fresh else NAN
        hdop = fix.hdop
        estimate.position_valid = (fresh and fix.fix_type >= self._min_position_fix
                                   and not hdop > self._max_hdop
                                   and -90.0 <= fix.latitude_deg <= 90.0 and -180.0 <= fix.longitude_deg <= 180.0)

    def _fill_power_and_temperature(self, hal: Hal, now_s: float, estimate: Estimate) -> None:
        stale_s = self._aux_stale_s
        if hal.power_monitors:
            power = hal.power_monitors[0].reading
            ok = power.healthy and now_s - power.time_s <= stale_s
            estimate.bus_voltage_v = power.bus_voltage_v if ok else NAN
            estimate.current_a = power.current_a if ok else NAN
            estimate.power_valid = ok
        else:
            estimate.bus_voltage_v = estimate.current_a = NAN
            estimate.power_valid = False
        sources = hal.thermometers if hal.thermometers else hal.barometers
        temperatures = []
        valid = False
        for device in sources:
            reading = device.reading
            t_c = reading.temperature_c
            if reading.healthy and now_s - reading.time_s <= stale_s and t_c == t_c:
                temperatures.append(t_c)
                valid = True
            else:
                temperatures.append(NAN)
        estimate.temperatures_c = tuple(temperatures)
        estimate.temperature_valid = valid


def _combine(tracks: list[_BaroTrack]) -> tuple[float, float, float, int]:
    """Median altitude (m), median pressure (Pa), newest reading time (s) and count of ``tracks``."""
    n = len(tracks)
    if n == 1:
        track = tracks[0]
        return track.altitude_m, track.pressure_pa, track.time_s, 1
    if n == 2:
        a, b = tracks
        return 0.5 * (a.altitude_m + b.altitude_m), 0.5 * (a.pressure_pa + b.pressure_pa), max(a.time_s, b.time_s), 2
    return (_median([track.altitude_m for track in tracks]), _median([track.pressure_pa for track in tracks]),
            max([track.time_s for track in tracks]), n)


def _median(values: list[float]) -> float:
    n = len(values)
    if n == 1:
        return values[0]
    if n == 2:
        return 0.5 * (values[0] + values[1])
    ordered = sorted(values)
    mid = n // 2
    return ordered[mid] if n % 2 else 0.5 * (ordered[mid - 1] + ordered[mid])
