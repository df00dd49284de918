"""The balloon world: vertical dynamics, lift gas, valves, burn wires, parachute, wind drift, day and night.

Model (SI units throughout; altitude is geometric, above mean sea level):

* Air from the US Standard Atmosphere 1976 (:mod:`flightsw.atmosphere`); gravity falls off as ``(r0/(r0+z))^2``.
* Lift gas is ideal: ``V = m R_gas T_gas / p``.  Latex: the gas is at air pressure (the small elastic
  overpressure of the rubber is neglected) and the envelope bursts when its diameter reaches the burst diameter,
  drawn once per run from the configured spread.  Zero pressure: once ``V`` would exceed the full volume the excess
  gas leaves through the open duct at once, so it floats.  Superpressure: once full the volume stays fixed and the
  gas pressure rises above the air pressure (``m R T / V_full - p``); beyond the margin it bursts.  A slack
  zero-pressure or superpressure envelope behaves like latex (equivalent sphere).
* Vertical force: buoyancy ``rho V g`` minus the weight of envelope, gas, payload, release mass and ballast, minus
  drag ``0.5 rho v|v| Cd pi D^2/4``; the inertia includes an added mass of half the displaced air.  ``Cd`` is
  constant or follows :func:`hil.physics.aero.sphere_drag_coefficient` of the Reynolds number.  Velocity is
  integrated semi-implicitly in the drag, so the terminal velocity is exact and stable at any step.
* Gas temperature relaxes (first order) to air temperature plus a sun-dependent superheat
  (:func:`hil.physics.sun.gas_superheat_k`).  The time constant is ``thermal_time_constant_s`` at rest and shrinks
  as ``1 / (1 + |v| / 1 m/s)`` with the vertical speed ``v`` (forced convection), so an ascending balloon tracks
  the air within a few kelvin while a floating one responds over minutes.  Adiabatic expansion is not modelled
  separately (it is folded into the relaxation).
* Vent valve: orifice flow ``mdot = A_eff sqrt(2 rho_gas dp)`` with ``dp`` the hydrostatic head of the gas column
  ``(rho_air - rho_gas) g D`` at the crown, plus the superpressure of a full superpressure balloon.
* Ballast leaves at the configured mass flow while the valve is open, unless jammed, until none is left.
* Burn wires cut once powered for their burn time (cumulative).  Release drops the release mass.  Cut-down and burst
  separate the balloon (its remnants are not carried); the payload train then descends under the parachute alone.
* Horizontally the balloon moves with the wind (no slip); latitude and longitude integrate on a sphere.
* Landing when the altitude comes back to the launch (ground) altitude after having left it; everything stops.

Slowly changing inputs are cached: the wind is re-evaluated every 5 s or 20 m, the sun every 10 s.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from flightsw.atmosphere import G0_MPS2, R0_M, properties
from hil.physics.aero import air_viscosity_pas, gas_constant_jpkgk, sphere_drag_coefficient
from hil.physics.config import WorldConfig
from hil.physics.sun import gas_superheat_k, parse_utc_s, solar_elevation_deg, sunlight_fraction
from hil.physics.wind import WindField

#: Largest internal integration step, s (a caller's step is split evenly into pieces no longer than this).
MAX_SUBSTEP_S = 0.5
EARTH_RADIUS_M = 6371000.0
_RAD2DEG = 180.0 / math.pi
_SIX_OVER_PI = 6.0 / math.pi
_WIND_REFRESH_S, _WIND_REFRESH_M, _SUN_REFRESH_S = 5.0, 20.0, 10.0
#: Forced convection: the gas temperature time constant is divided by ``1 + |vertical rate| / this``.
_THERMAL_REF_SPEED_MPS = 1.0


@dataclass(slots=True)
class WorldInputs:
    """Actuator lines as the simulated GPIO drives them each frame."""

    ballast_valve_open: bool = False
    vent_valve_open: bool = False
    release_burn_on: bool = False
    cutdown_burn_on: bool = False


@dataclass(slots=True)
class WorldState:
    """Truth of the simulated world.

    One instance per world, updated in place at the end of every :meth:`BalloonWorld.step` (copy it with
    ``dataclasses.replace`` to keep a snapshot).
    """

    time_s: float = 0.0               # simulated time since start, s
    utc_s: float = 0.0                # simulated UTC, s since the Unix epoch
    altitude_m: float = 0.0           # geometric altitude MSL, m
    vertical_rate_mps: float = 0.0    # up positive, m/s
    latitude_deg: float = 0.0
    longitude_deg: float = 0.0
    velocity_north_mps: float = 0.0
    velocity_east_mps: float = 0.0
    ground_speed_mps: float = 0.0
    course_deg: float = 0.0           # direction of travel, clockwise from true north, 0..360
    pressure_pa: float = 0.0          # static air pressure
    air_temperature_k: float = 0.0
    air_density_kgpm3: float = 0.0
    gas_temperature_k: float = 0.0
    gas_mass_kg: float = 0.0
    volume_m3: float = 0.0
    diameter_m: float = 0.0           # equivalent-sphere diameter
    superpressure_pa: float = 0.0     # gas minus air pressure of a full superpressure envelope
    ballast_kg: float = 0.0
    sun_elevation_deg: float = 0.0
    free_lift_n: float = 0.0          # buoyancy minus total weight of what flies, N
    burst: bool = False
    released: bool = False
    cut_down: bool = False
    landed: bool = False
    ballast_jammed: bool = False


def _cd_at(cfg, rho, speed, diameter, temperature):
    """Balloon drag coefficient for air density rho, speed m/s, diameter m, air temperature K."""
    if cfg.drag_model == "constant":
        return cfg.drag_coefficient
    re = rho * speed * diameter / air_viscosity_pas(temperature)
    return sphere_drag_coefficient(re, cfg.drag_coefficient_supercritical, cfg.critical_reynolds)


def launch_gas_mass_kg(config: WorldConfig) -> float:
    """Lift gas mass (kg) of the launch fill, at ground air temperature and pressure.

    ``fill_mode`` free_lift: buoyancy minus all weights equals ``free_lift_kg``.  ``ascent_rate``: the free lift
    equals the drag at the target speed (fixed-point iteration, the drag area grows with the fill).
    """
    b, p = config.balloon, config.payload
    t_air, p_air, rho_air = properties(config.launch.altitude_m)
    rho_gas = p_air / (gas_constant_jpkgk(b.gas) * t_air)
    suspended = b.envelope_mass_kg + p.payload_mass_kg + p.release_mass_kg + p.ballast_mass_kg
    lift_per_gas_kg = rho_air / rho_gas - 1.0
    if b.fill_mode == "free_lift":
        return (b.free_lift_kg + suspended) / lift_per_gas_kg
    speed = b.target_ascent_rate_mps
    free_lift = 1.0
    for _ in range(60):
        gas = (free_lift + suspended) / lift_per_gas_kg
        diameter = (gas / rho_gas * _SIX_OVER_PI) ** (1.0 / 3.0)
        cd = _cd_at(b, rho_air, speed, diameter, t_air)
        free_lift = 0.5 * rho_air * speed * speed * cd * math.pi * 0.25 * diameter * diameter / G0_MPS2
    return (free_lift + suspended) / lift_per_gas_kg


class BalloonWorld:
    """The simulated flight.  ``seed`` fixes the burst diameter draw and the wind perturbation."""

    __slots__ = ("config", "state", "_b", "_p", "_kind", "_rg", "_ground_m", "_burst_d_m", "_utc0_s",
                 "_z", "_vz", "_lat", "_lon", "_m_gas", "_t_gas", "_ballast", "_t", "_airborne",
                 "_release_burn_s", "_cutdown_burn_s", "_wind", "_wind_e", "_wind_n", "_wind_z", "_wind_t",
                 "_dlat_per_s", "_dlon_per_s", "_wind_next_t", "_wind_z_low", "_wind_z_high", "_h", "_alpha0",
                 "_alpha_per_mps", "_sun_t", "_sun_frac", "_sun_elev", "_superheat",
                 "_reynolds", "_cd_const")

    def __init__(self, config: WorldConfig, *, seed: int):
        self.config = config
        b, p, launch = config.balloon, config.payload, config.launch
        self._b, self._p, self._kind = b, p, b.kind
        rng = random.Random(seed)
        draw = max(-3.0, min(3.0, rng.gauss(0.0, 1.0)))
        self._burst_d_m = b.burst_diameter_m * (1.0 + b.burst_diameter_spread * draw)
        self._wind = WindField(config.wind, seed=rng.getrandbits(32), update_interval_s=_WIND_REFRESH_S)
        self._rg = gas_constant_jpkgk(b.gas)
        self._reynolds = b.drag_model == "reynolds"
        self._cd_const = b.drag_coefficient
        self._ground_m = launch.altitude_m
        self._utc0_s = parse_utc_s(launch.start_utc)
        self._z, self._vz, self._t = launch.altitude_m, 0.0, 0.0
        self._lat, self._lon = launch.latitude_deg, launch.longitude_deg
        self._m_gas = launch_gas_mass_kg(config)
        self._t_gas = properties(launch.altitude_m)[0]
        self._ballast = p.ballast_mass_kg
        self._airborne = False
        self._release_burn_s = self._cutdown_burn_s = 0.0
        self._h = self._alpha0 = self._alpha_per_mps = 0.0
        self.state = WorldState(ballast_jammed=False)
        self._refresh_wind()
        self._refresh_sun(properties(self._z)[2])
        ratio = R0_M / (R0_M + self._z)
        self._publish(*properties(self._z), G0_MPS2 * ratio * ratio)

    # ------------------------------------------------------------------ faults

    def jam_ballast(self, jammed: bool) -> None:
        """Jam (True) or free (False) the ballast valve; a jammed valve passes no ballast whatever its command."""
        self.state.ballast_jammed = bool(jammed)

    def burst_now(self) -> None:
        """Burst the envelope immediately (the payload train falls under its parachute)."""
        self._detach("burst")

    @property
    def burst_diameter_m(self) -> float:
        """The burst diameter drawn for this run, m (latex)."""
        return self._burst_d_m

    # ------------------------------------------------------------------ internals

    def _detach(self, how: str) -> None:
        st = self.state
        if st.burst or st.cut_down:
            return
        if how == "burst":
            st.burst = True
        else:
            st.cut_down = True
        self._m_gas = 0.0

    def _refresh_wind(self) -> None:
        east, north = self._wind.at(self._z, self._t)
        self._wind_e, self._wind_n, self._wind_z, self._wind_t = east, north, self._z, self._t
        # refresh again after _WIND_REFRESH_S or beyond _WIND_REFRESH_M of climb or sink
        self._wind_next_t = self._t + _WIND_REFRESH_S
        self._wind_z_low, self._wind_z_high = self._z - _WIND_REFRESH_M, self._z + _WIND_REFRESH_M
        st = self.state
        if not st.landed:  # drifting with the wind (the state's velocity changes only here and on landing)
            st.velocity_east_mps, st.velocity_north_mps = east, north
            st.ground_speed_mps = math.hypot(east, north)
            st.course_deg = math.atan2(east, north) * _RAD2DEG % 360.0
        radius = EARTH_RADIUS_M + self._z
        coslat = max(1e-6, math.cos(self._lat / _RAD2DEG))
        self._dlat_per_s = north / radius * _RAD2DEG
        self._dlon_per_s = east / (radius * coslat) * _RAD2DEG

    def _refresh_sun(self, rho_air: float) -> None:
        self._sun_t = self._t
        self._sun_elev = solar_elevation_deg(self._utc0_s + self._t, self._lat, self._lon)
        self._sun_frac = sunlight_fraction(self._sun_elev, self._z)
        b = self._b
        self._superheat = gas_superheat_k(self._sun_frac, rho_air, b.solar_superheat_k, b.night_cooling_k)

    def _publish(self, t_air, p_air, rho_air, g) -> None:
        """Write the state from the integration variables and the air at the balloon."""
        st, b = self.state, self._b
        attached = not (st.burst or st.cut_down)
        rg_tg = self._rg * self._t_gas
        volume, superpressure = 0.0, 0.0
        if attached and self._m_gas > 0.0:
            volume = self._m_gas * rg_tg / p_air
            if self._kind != "latex" and volume > b.full_volume_m3:
                if self._kind == "superpressure":
                    superpressure = self._m_gas * rg_tg / b.full_volume_m3 - p_air
                volume = b.full_volume_m3
        train = self._p.payload_mass_kg + self._ballast + (0.0 if st.released else self._p.release_mass_kg)
        mass = train + (b.envelope_mass_kg + self._m_gas if attached else 0.0)
        st.time_s, st.utc_s = self._t, self._utc0_s + self._t
        st.altitude_m, st.vertical_rate_mps = self._z, self._vz
        st.latitude_deg, st.longitude_deg = self._lat, self._lon
        if st.landed:
            st.velocity_east_mps = st.velocity_north_mps = st.ground_speed_mps = 0.0
        st.pressure_pa, st.air_temperature_k, st.air_density_kgpm3 = p_air, t_air, rho_air
        st.gas_temperature_k, st.gas_mass_kg = self._t_gas, self._m_gas
        st.volume_m3, st.superpressure_pa = volume, superpressure
        st.diameter_m = (volume * _SIX_OVER_PI) ** (1.0 / 3.0)
        st.ballast_kg, st.sun_elevation_deg = self._ballast, self._sun_elev
        st.free_lift_n = (rho_air * volume - mass) * g

    # ------------------------------------------------------------------ integration

    def step(self, dt_s: float, inputs: WorldInputs) -> None:
        """Advance the world by ``dt_s`` seconds with the actuator lines in ``inputs`` held for the whole step."""
        if not dt_s > 0.0:
            return
        n = 1 if dt_s <= MAX_SUBSTEP_S else int(math.ceil(dt_s / MAX_SUBSTEP_S))
        h = dt_s / n
        st, b, p = self.state, self._b, self._p
        if st.landed:
            self._t += dt_s
            st.time_s, st.utc_s = self._t, self._utc0_s + self._t
            return
        if h != self._h:  # the gas temperature's relaxation per step, at rest and per m/s of vertical speed
            self._h, self._alpha0 = h, h / b.thermal_time_constant_s
            self._alpha_per_mps = self._alpha0 / _THERMAL_REF_SPEED_MPS
        alpha0, alpha_per_mps = self._alpha0, self._alpha_per_mps
        kind, rg, reynolds = self._kind, self._rg, self._reynolds
        ground = self._ground_m
        z, vz, t, m_gas, t_gas, ballast = self._z, self._vz, self._t, self._m_gas, self._t_gas, self._ballast
        lat, lon = self._lat, self._lon
        ballast_flow = 0.0
        if inputs.ballast_valve_open and not st.ballast_jammed:
            ballast_flow = p.ballast_flow_kgps * h
        vent_area = b.vent_area_m2 if inputs.vent_valve_open else 0.0
        full = b.full_volume_m3
        critical_re, cd_super = b.critical_reynolds, b.drag_coefficient_supercritical
        t_air = p_air = rho_air = g = 0.0
        t_start = t
        for _ in range(n):
            if inputs.release_burn_on and not st.released:
                self._release_burn_s += h
                if self._release_burn_s >= p.release_burn_time_s:
                    st.released = True
            if inputs.cutdown_burn_on and not st.cut_down:
                self._cutdown_burn_s += h
                if self._cutdown_burn_s >= p.cutdown_burn_time_s:
                    self._detach("cutdown")
            if ballast_flow > 0.0 and ballast > 0.0:
                ballast = ballast - ballast_flow if ballast > ballast_flow else 0.0
            t_air, p_air, rho_air = properties(z)
            r = R0_M / (R0_M + z)
            g = G0_MPS2 * r * r
            train = p.payload_mass_kg + ballast + (0.0 if st.released else p.release_mass_kg)
            if train < 1e-3:
                train = 1e-3
            speed = vz if vz >= 0.0 else -vz
            attached = not (st.burst or st.cut_down)
            if attached:
                alpha = alpha0 + alpha_per_mps * speed
                if alpha > 1.0:
                    alpha = 1.0
                t_gas += (t_air + self._superheat - t_gas) * alpha
                rg_tg = rg * t_gas
                volume = m_gas * rg_tg / p_air
                over = 0.0
                if kind != "latex" and volume > full:
                    if kind == "zero_pressure":
                        m_gas = p_air * full / rg_tg
                    else:
                        over = m_gas * rg_tg / full - p_air
                    volume = full
                diameter = (volume * _SIX_OVER_PI) ** 0.3333333333333333
                if (kind == "latex" and diameter >= self._burst_d_m) or \
                        (kind == "superpressure" and over > b.superpressure_burst_margin_pa):
                    self._detach("burst")
                    attached = False
            if attached:
                if vent_area > 0.0 and m_gas > 0.0:
                    rho_gas = m_gas / volume
                    head = (rho_air - rho_gas) * g * diameter + over
                    if head > 0.0:
                        m_gas -= vent_area * math.sqrt(2.0 * rho_gas * head) * h
                        if m_gas < 0.0:
                            m_gas = 0.0
                mass = b.envelope_mass_kg + m_gas + train
                m_eff = mass + 0.5 * rho_air * volume
                if reynolds:
                    cd = sphere_drag_coefficient(rho_air * speed * diameter / air_viscosity_pas(t_air), cd_super,
                                                 critical_re)
                else:
                    cd = self._cd_const
                accel = (rho_air * volume - mass) * g / m_eff
                k = 0.5 * rho_air * cd * 0.7853981633974483 * diameter * diameter / m_eff
            else:
                m_gas = 0.0
                accel = -g
                k = 0.5 * rho_air * b.parachute_cd * b.parachute_area_m2 / train
            vz = (vz + accel * h) / (1.0 + k * speed * h)
            z += vz * h
            t += h
            lat += self._dlat_per_s * h
            lon += self._dlon_per_s * h
            if z <= ground:
                z, vz = ground, 0.0
                if self._airborne or not attached:
                    st.landed = True
                    break
            elif z > ground + 2.0:
                self._airborne = True
            if t >= self._wind_next_t or not self._wind_z_low < z < self._wind_z_high:
                self._z, self._t, self._lat = z, t, lat
                self._refresh_wind()
        t = t_start + dt_s
        if lon >= 180.0 or lon < -180.0:
            lon = (lon + 180.0) % 360.0 - 180.0
        self._z, self._vz, self._t, self._m_gas, self._t_gas, self._ballast = z, vz, t, m_gas, t_gas, ballast
        self._lat, self._lon = lat, lon
        if t - self._sun_t >= _SUN_REFRESH_S:
            self._refresh_sun(rho_air)
        self._publish(t_air, p_air, rho_air, g)
