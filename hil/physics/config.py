"""Configuration of the simulated balloon world (frozen dataclasses, fields declared with ``spec``).

Defaults describe a small latex sounding flight: a 1200 g latex balloon filled with helium for a 5 m/s ascent,
1 kg payload under a small parachute, launched at sea level.  Every field's unit is in its name and in its spec.
"""

from __future__ import annotations

from dataclasses import dataclass

from flightsw.config.spec import spec


@dataclass(frozen=True)
class BalloonConfig:
    """The envelope, its lift gas, its fill, its valve and the recovery parachute."""

    kind: str = spec("latex", choices=("latex", "zero_pressure", "superpressure"),
                     doc="latex: extensible, bursts at its burst diameter; zero_pressure: fixed full volume, open "
                         "duct vents excess gas; superpressure: sealed fixed volume, bursts beyond its margin")
    gas: str = spec("helium", choices=("helium", "hydrogen"), doc="lift gas")
    envelope_mass_kg: float = spec(1.2, min=0.01, max=5000.0, unit="kg", doc="mass of the envelope (and fittings)")
    burst_diameter_m: float = spec(8.63, min=0.5, max=100.0, unit="m",
                                   doc="latex: nominal diameter at which the envelope bursts")
    burst_diameter_spread: float = spec(0.05, min=0.0, max=0.5, unit="fraction",
                                        doc="latex: 1-sigma relative spread of the burst diameter, drawn once per "
                                            "run from the seed (clipped to +-3 sigma); 0 disables it")
    full_volume_m3: float = spec(3000.0, min=0.1, max=2.0e6, unit="m^3",
                                 doc="zero_pressure / superpressure: volume of the fully inflated envelope")
    superpressure_burst_margin_pa: float = spec(800.0, min=1.0, max=1.0e5, unit="Pa",
                                                doc="superpressure: gas minus air pressure at which the envelope "
                                                    "bursts")
    fill_mode: str = spec("ascent_rate", choices=("ascent_rate", "free_lift"),
                          doc="how the launch fill is given: a target ascent rate (the fill is computed so the "
                              "launch terminal velocity equals it) or the free lift")
    free_lift_kg: float = spec(1.0, min=0.0, max=10000.0, unit="kg",
                               doc="fill_mode free_lift: neck free lift at launch, buoyancy minus the weight of "
                                   "gas, envelope and everything below it, expressed in kg")
    target_ascent_rate_mps: float = spec(5.0, min=0.1, max=20.0, unit="m/s",
                                         doc="fill_mode ascent_rate: terminal ascent rate wanted at launch")
    drag_model: str = spec("reynolds", choices=("reynolds", "constant"),
                           doc="reynolds: sphere drag coefficient from the Reynolds number (drag crisis included); "
                               "constant: drag_coefficient")
    drag_coefficient: float = spec(0.3, min=0.01, max=3.0, doc="balloon drag coefficient for drag_model constant")
    drag_coefficient_supercritical: float = spec(0.25, min=0.01, max=3.0,
                                                 doc="reynolds model: drag coefficient well above the drag crisis")
    critical_reynolds: float = spec(4.0e5, min=1.0e4, max=1.0e7,
                                    doc="reynolds model: Reynolds number at the middle of the drag crisis")
    vent_area_m2: float = spec(0.01, min=0.0, max=10.0, unit="m^2",
                               doc="effective (discharge coefficient times geometric) area of the vent valve")
    parachute_cd: float = spec(1.5, min=0.1, max=3.0, doc="parachute drag coefficient (on parachute_area_m2)")
    parachute_area_m2: float = spec(0.45, min=0.01, max=1000.0, unit="m^2", doc="parachute reference area")
    solar_superheat_k: float = spec(20.0, min=0.0, max=80.0, unit="K",
                                    doc="gas temperature above air temperature in full sun at float altitude "
                                        "(scaled down in dense air, where convection cools the film)")
    night_cooling_k: float = spec(3.0, min=0.0, max=40.0, unit="K",
                                  doc="gas temperature below air temperature at night (infrared cooling)")
    thermal_time_constant_s: float = spec(600.0, min=1.0, max=1.0e5, unit="s",
                                          doc="first-order time constant of the gas temperature at rest (it "
                                              "shrinks as 1 / (1 + |vertical rate| / 1 m/s) while moving)")


@dataclass(frozen=True)
class PayloadConfig:
    """What hangs below the balloon."""

    payload_mass_kg: float = spec(1.0, min=0.0, max=10000.0, unit="kg",
                                  doc="mass that stays attached to the end (flight computer, parachute, rigging)")
    release_mass_kg: float = spec(0.0, min=0.0, max=10000.0, unit="kg",
                                  doc="mass dropped when the release burn wire cuts (rocket, satellite)")
    ballast_mass_kg: float = spec(0.0, min=0.0, max=10000.0, unit="kg", doc="ballast carried at launch")
    ballast_flow_kgps: float = spec(0.01, min=0.0, max=100.0, unit="kg/s",
                                    doc="ballast mass flow while the ballast valve is open")
    release_burn_time_s: float = spec(3.0, min=0.0, max=600.0, unit="s",
                                      doc="powered time (cumulative) the release burn wire needs to cut")
    cutdown_burn_time_s: float = spec(3.0, min=0.0, max=600.0, unit="s",
                                      doc="powered time (cumulative) the cutdown burn wire needs to cut")


@dataclass(frozen=True)
class WindLayer:
    """One point of the piecewise-linear wind profile."""

    altitude_m: float = spec(0.0, min=-1000.0, max=100000.0, unit="m", doc="geometric altitude MSL")
    speed_mps: float = spec(0.0, min=0.0, max=200.0, unit="m/s", doc="horizontal wind speed")
    direction_deg: float = spec(270.0, min=0.0, max=360.0, unit="deg",
                                doc="direction the wind blows FROM, clockwise from true north")


DEFAULT_WIND_LAYERS = (
    WindLayer(altitude_m=0.0, speed_mps=4.0, direction_deg=250.0),
    WindLayer(altitude_m=11000.0, speed_mps=25.0, direction_deg=270.0),
    WindLayer(altitude_m=18000.0, speed_mps=6.0, direction_deg=280.0),
    WindLayer(altitude_m=25000.0, speed_mps=4.0, direction_deg=90.0),
    WindLayer(altitude_m=35000.0, speed_mps=10.0, direction_deg=90.0),
)


@dataclass(frozen=True)
class WindConfig:
    """Wind profile (interpolated linearly in its east/north components) and its random perturbation."""

    layers: tuple[WindLayer, ...] = spec(default_factory=lambda: DEFAULT_WIND_LAYERS,
                         doc="WindLayer points; sorted by altitude when used; constant beyond the ends")
    perturbation_sigma_mps: float = spec(0.5, min=0.0, max=50.0, unit="m/s",
                                         doc="1-sigma random perturbation per component (seeded Gauss-Markov)")
    perturbation_time_constant_s: float = spec(600.0, min=1.0, max=1.0e6, unit="s",
                                               doc="correlation time of the perturbation")


@dataclass(frozen=True)
class LaunchConfig:
    """Where and when the flight starts."""

    latitude_deg: float = spec(52.2, min=-90.0, max=90.0, unit="deg", doc="launch latitude, north positive")
    longitude_deg: float = spec(0.1, min=-180.0, max=180.0, unit="deg", doc="launch longitude, east positive")
    altitude_m: float = spec(0.0, min=-500.0, max=6000.0, unit="m", doc="launch (= ground) altitude MSL")
    start_utc: str = spec("2024-06-21T08:00:00Z", min=10, max=40,
                          doc="UTC time of the start of the simulation, ISO 8601")


@dataclass(frozen=True)
class WorldConfig:
    """Everything the balloon world needs."""

    balloon: BalloonConfig = spec(default_factory=BalloonConfig, doc="envelope, gas, fill, valve, parachute")
    payload: PayloadConfig = spec(default_factory=PayloadConfig, doc="suspended masses and burn wires")
    wind: WindConfig = spec(default_factory=WindConfig, doc="wind profile")
    launch: LaunchConfig = spec(default_factory=LaunchConfig, doc="launch site and time")
