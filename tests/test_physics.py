"""Balloon world physics: ascent, burst, parachute descent, float, valves, burn wires, winds, day and night."""

from __future__ import annotations

import dataclasses
import math

import pytest

from flightsw import atmosphere as atm
from hil.physics import (BalloonConfig, BalloonWorld, LaunchConfig, PayloadConfig, WindConfig, WindLayer,
                         WorldConfig, WorldInputs)
from hil.physics.aero import sphere_drag_coefficient
from hil.physics.sun import parse_utc_s, solar_elevation_deg
from hil.physics.wind import WindField, wind_components_mps

G = 9.80665
CALM = WindConfig(layers=(WindLayer(altitude_m=0.0, speed_mps=0.0, direction_deg=0.0),), perturbation_sigma_mps=0.0)


def latex_world(seed=1, start="2024-06-21T22:00:00Z", spread=0.0, **payload):
    cfg = WorldConfig(balloon=BalloonConfig(burst_diameter_spread=spread), payload=PayloadConfig(**payload),
                      wind=CALM, launch=LaunchConfig(start_utc=start))
    return BalloonWorld(cfg, seed=seed)


def zero_pressure_world(start="2024-06-21T12:00:00Z", ballast_kg=2.0):
    cfg = WorldConfig(
        balloon=BalloonConfig(kind="zero_pressure", envelope_mass_kg=2.0, full_volume_m3=1000.0,
                              fill_mode="free_lift", free_lift_kg=1.0, vent_area_m2=0.01),
        payload=PayloadConfig(payload_mass_kg=3.0, ballast_mass_kg=ballast_kg, ballast_flow_kgps=0.01),
        wind=CALM, launch=LaunchConfig(start_utc=start))
    return BalloonWorld(cfg, seed=3)


def run_until(world, inputs, predicate, max_s, dt_s=1.0):
    end = world.state.time_s + max_s
    while world.state.time_s < end:
        world.step(dt_s, inputs)
        if predicate(world.state):
            return True
    return False


def run_for(world, inputs, seconds, dt_s=1.0):
    run_until(world, inputs, lambda s: False, seconds, dt_s)


def reach_float(world, inputs):
    """Run a zero-pressure balloon until it is full and has settled."""
    assert run_until(world, inputs, lambda s: s.volume_m3 >= 999.9, 4 * 3600)
    run_for(world, inputs, 1200)


# ------------------------------------------------------------------ latex flight


@pytest.mark.parametrize("start", ["2024-06-21T22:00:00Z", "2024-06-21T08:00:00Z"])
def test_latex_1200g_bursts_near_calculator_altitude(start):
    world, inputs = latex_world(start=start), WorldInputs()
    assert world.burst_diameter_m == 8.63
    assert run_until(world, inputs, lambda s: s.burst, 3 * 3600)
    assert 32000.0 <= world.state.altitude_m <= 35500.0


def test_latex_ascent_rate_near_target_low_down():
    world, inputs = latex_world(), WorldInputs()
    rates = []
    while world.state.altitude_m < 1500.0:
        world.step(0.05, inputs)
        if world.state.altitude_m > 300.0:
            rates.append(world.state.vertical_rate_mps)
    assert 4.7 <= sum(rates) / len(rates) <= 5.4


def test_free_lift_fill_mode():
    cfg = WorldConfig(balloon=BalloonConfig(fill_mode="free_lift", free_lift_kg=0.8), wind=CALM)
    world = BalloonWorld(cfg, seed=0)
    assert world.state.free_lift_n / G == pytest.approx(0.8, rel=1e-6)
    assert world.state.altitude_m == 0.0 and not world.state.landed


def test_burst_diameter_spread_is_seeded():
    diameters = {latex_world(seed=s, spread=0.05).burst_diameter_m for s in range(20)}
    assert len(diameters) == 20
    assert all(8.63 * 0.85 <= d <= 8.63 * 1.15 for d in diameters)
    assert latex_world(seed=7, spread=0.05).burst_diameter_m == latex_world(seed=7, spread=0.05).burst_diameter_m


def test_parachute_descent_scales_with_inverse_sqrt_density():
    world, inputs = latex_world(), WorldInputs()
    assert run_until(world, inputs, lambda s: s.burst, 3 * 3600)
    samples = {}
    for target in (18000.0, 4000.0):
        assert run_until(world, inputs, lambda s: s.altitude_m <= target, 3600, dt_s=0.1)
        samples[target] = (-world.state.vertical_rate_mps, world.state.air_density_kgpm3)
    (v_hi, rho_hi), (v_lo, rho_lo) = samples[18000.0], samples[4000.0]
    assert v_hi / v_lo == pytest.approx(math.sqrt(rho_lo / rho_hi), rel=0.03)
    # and the absolute figure is the parachute terminal velocity of the 1 kg train
    assert v_lo == pytest.approx(math.sqrt(2 * 1.0 * G / (rho_lo * 1.5 * 0.45)), rel=0.02)
    assert run_until(world, inputs, lambda s: s.landed, 3 * 3600)
    assert world.state.altitude_m == 0.0 and world.state.vertical_rate_mps == 0.0


def test_drag_coefficient_fit_has_a_drag_crisis():
    assert sphere_drag_coefficient(1e4, 0.25, 4e5) == pytest.approx(0.46, abs=0.02)
    assert sphere_drag_coefficient(1.0, 0.25, 4e5) > 24.0
    assert sphere_drag_coefficient(5e6, 0.25, 4e5) == pytest.approx(0.25, abs=0.01)
    assert sphere_drag_coefficient(1e5, 0.25, 4e5) > sphere_drag_coefficient(8e5, 0.25, 4e5)


# ------------------------------------------------------------------ burn wires


def test_release_needs_cumulative_burn_time():
    world, inputs = latex_world(release_mass_kg=0.5, release_burn_time_s=3.0), WorldInputs()
    run_for(world, inputs, 600)
    lift_before = world.state.free_lift_n
    inputs.release_burn_on = True
    run_for(world, inputs, 2.0, dt_s=0.05)
    assert not world.state.released
    inputs.release_burn_on = False
    run_for(world, inputs, 10.0, dt_s=0.05)
    assert not world.state.released
    assert world.state.free_lift_n == pytest.approx(lift_before, abs=0.1)
    inputs.release_burn_on = True
    run_for(world, inputs, 0.9, dt_s=0.05)
    assert not world.state.released
    run_for(world, inputs, 0.2, dt_s=0.05)
    assert world.state.released
    assert world.state.free_lift_n - lift_before == pytest.approx(0.5 * G, rel=0.05)


def test_cutdown_leads_to_parachute_descent_and_landing():
    world, inputs = latex_world(cutdown_burn_time_s=2.0), WorldInputs()
    assert run_until(world, inputs, lambda s: s.altitude_m > 10000.0, 3 * 3600)
    inputs.cutdown_burn_on = True
    run_for(world, inputs, 1.5, dt_s=0.05)
    assert not world.state.cut_down
    run_for(world, inputs, 1.0, dt_s=0.05)
    assert world.state.cut_down and not world.state.burst
    assert world.state.gas_mass_kg == 0.0
    run_for(world, inputs, 60)
    assert world.state.vertical_rate_mps < -5.0
    assert run_until(world, inputs, lambda s: s.landed, 2 * 3600)
    landed_time = world.state.time_s
    position = (world.state.latitude_deg, world.state.longitude_deg)
    run_for(world, inputs, 100)
    assert world.state.landed and world.state.altitude_m == 0.0
    assert world.state.time_s == pytest.approx(landed_time + 100)
    assert (world.state.latitude_deg, world.state.longitude_deg) == position


def test_burst_now_fault():
    world, inputs = latex_world(), WorldInputs()
    run_for(world, inputs, 300)
    world.burst_now()
    run_for(world, inputs, 30)
    assert world.state.burst and world.state.vertical_rate_mps < 0.0


# ------------------------------------------------------------------ zero pressure


def test_zero_pressure_floats_and_holds():
    world, inputs = zero_pressure_world(), WorldInputs()
    reach_float(world, inputs)
    float_alt = world.state.altitude_m
    assert 25000.0 < float_alt < 40000.0
    for _ in range(6):
        run_for(world, inputs, 600)
        assert abs(world.state.altitude_m - float_alt) < 300.0
        assert abs(world.state.vertical_rate_mps) < 0.3


def test_zero_pressure_ballast_climbs_and_vent_descends():
    world, inputs = zero_pressure_world(), WorldInputs()
    reach_float(world, inputs)
    start_alt, start_gas = world.state.altitude_m, world.state.gas_mass_kg
    inputs.ballast_valve_open = True
    run_for(world, inputs, 60)
    inputs.ballast_valve_open = False
    assert world.state.ballast_kg == pytest.approx(2.0 - 0.6, abs=1e-6)
    run_for(world, inputs, 900)
    assert world.state.altitude_m > start_alt + 300.0
    assert world.state.gas_mass_kg < start_gas          # excess vented through the duct
    high_alt = world.state.altitude_m
    inputs.vent_valve_open = True
    run_for(world, inputs, 300)
    inputs.vent_valve_open = False
    run_for(world, inputs, 600)
    assert world.state.vertical_rate_mps < -0.5
    assert world.state.altitude_m < high_alt - 300.0


def test_ballast_stops_at_zero_and_when_jammed():
    world, inputs = zero_pressure_world(ballast_kg=0.5), WorldInputs()
    run_for(world, inputs, 60)
    world.jam_ballast(True)
    inputs.ballast_valve_open = True
    run_for(world, inputs, 20)
    assert world.state.ballast_jammed and world.state.ballast_kg == 0.5
    world.jam_ballast(False)
    run_for(world, inputs, 20)
    assert not world.state.ballast_jammed
    assert world.state.ballast_kg == pytest.approx(0.3, abs=1e-9)
    run_for(world, inputs, 100)
    assert world.state.ballast_kg == 0.0


def test_zero_pressure_sinks_after_sunset_and_recovers_after_sunrise():
    world, inputs = zero_pressure_world(), WorldInputs()
    reach_float(world, inputs)
    float_alt = world.state.altitude_m
    # Evening: the gas cools with the sun gone and the balloon starts to sink.
    assert run_until(world, inputs, lambda s: s.sun_elevation_deg < -6.0, 12 * 3600)
    assert world.state.vertical_rate_mps < -1.0
    assert world.state.gas_temperature_k < world.state.air_temperature_k
    sunk_alt = world.state.altitude_m
    assert sunk_alt < float_alt - 2000.0
    # Night: one-second ballast pulses while it falls fast only slow the fall; a slack zero-pressure balloon has no
    # restoring force of its own.
    previous = world.state.sun_elevation_deg
    while not (previous < world.state.sun_elevation_deg > -7.0):    # until dawn: rising, 7 deg below the horizon
        previous = world.state.sun_elevation_deg
        inputs.ballast_valve_open = world.state.vertical_rate_mps < -0.5
        run_for(world, inputs, 1)
        inputs.ballast_valve_open = False
        run_for(world, inputs, 59)
        assert not world.state.landed
    dawn_alt, dawn_rate = world.state.altitude_m, world.state.vertical_rate_mps
    assert dawn_alt < float_alt - 2000.0 and world.state.ballast_kg > 0.0
    # Morning: the sun warms the gas again; it climbs faster and back to a full envelope at a float.
    assert run_until(world, inputs, lambda s: s.sun_elevation_deg > 0.0, 2 * 3600)
    assert world.state.vertical_rate_mps > dawn_rate + 1.0
    assert world.state.gas_temperature_k > world.state.air_temperature_k
    assert run_until(world, inputs, lambda s: s.volume_m3 >= 999.0, 3 * 3600)
    run_for(world, inputs, 1800)
    assert world.state.altitude_m > dawn_alt + 2000.0
    assert abs(world.state.vertical_rate_mps) < 0.5


# ------------------------------------------------------------------ superpressure


def superpressure_world(margin_pa):
    cfg = WorldConfig(
        balloon=BalloonConfig(kind="superpressure", envelope_mass_kg=4.0, full_volume_m3=1000.0,
                              fill_mode="free_lift", free_lift_kg=3.0, superpressure_burst_margin_pa=margin_pa),
        payload=PayloadConfig(payload_mass_kg=2.0), wind=CALM,
        launch=LaunchConfig(start_utc="2024-06-21T21:30:00Z"))
    return BalloonWorld(cfg, seed=5)


def test_superpressure_holds_volume_day_and_night():
    world, inputs = superpressure_world(800.0), WorldInputs()
    assert run_until(world, inputs, lambda s: s.volume_m3 >= 1000.0, 3 * 3600)
    run_for(world, inputs, 1800)
    night = (world.state.altitude_m, world.state.superpressure_pa)
    assert world.state.sun_elevation_deg < -6.0
    assert run_until(world, inputs, lambda s: s.sun_elevation_deg > 30.0, 24 * 3600)
    day = (world.state.altitude_m, world.state.superpressure_pa)
    assert world.state.volume_m3 == 1000.0 and not world.state.burst
    assert day[0] == pytest.approx(night[0], abs=50.0)
    assert day[1] > night[1] + 30.0 > 30.0


def test_superpressure_bursts_beyond_margin():
    world, inputs = superpressure_world(230.0), WorldInputs()
    assert run_until(world, inputs, lambda s: s.volume_m3 >= 1000.0, 3 * 3600)
    run_for(world, inputs, 1800)
    assert not world.state.burst and world.state.superpressure_pa < 230.0
    assert run_until(world, inputs, lambda s: s.burst, 24 * 3600)
    assert world.state.sun_elevation_deg > -6.0       # the morning sun did it
    assert run_until(world, inputs, lambda s: s.landed, 4 * 3600)


# ------------------------------------------------------------------ winds, sun, determinism


def test_wind_moves_balloon_expected_direction_and_distance():
    wind = WindConfig(layers=(WindLayer(altitude_m=0.0, speed_mps=10.0, direction_deg=270.0),),
                      perturbation_sigma_mps=0.0)
    cfg = WorldConfig(balloon=BalloonConfig(burst_diameter_spread=0.0), wind=wind,
                      launch=LaunchConfig(latitude_deg=45.0, longitude_deg=10.0))
    world, inputs = BalloonWorld(cfg, seed=0), WorldInputs()
    run_for(world, inputs, 1000)
    s = world.state
    radius = 6371000.0 + 2500.0                      # about the mean altitude flown
    east_m = math.radians(s.longitude_deg - 10.0) * radius * math.cos(math.radians(45.0))
    assert east_m == pytest.approx(10000.0, rel=0.01)
    assert s.latitude_deg == pytest.approx(45.0, abs=1e-6)
    assert s.course_deg == pytest.approx(90.0, abs=1e-6) and s.ground_speed_mps == pytest.approx(10.0)


def test_wind_profile_interpolates_components():
    east, north = wind_components_mps(10.0, 0.0)    # from the north: blows toward the south
    assert east == pytest.approx(0.0, abs=1e-12) and north == pytest.approx(-10.0)
    cfg = WindConfig(layers=(WindLayer(altitude_m=1000.0, speed_mps=10.0, direction_deg=270.0),
                             WindLayer(altitude_m=0.0, speed_mps=0.0, direction_deg=0.0)),
                     perturbation_sigma_mps=0.0)
    field = WindField(cfg, seed=0)
    assert field.profile_mps(500.0) == pytest.approx((5.0, 0.0))
    assert field.profile_mps(5000.0) == pytest.approx((10.0, 0.0))
    assert field.at(-50.0, 0.0) == pytest.approx((0.0, 0.0))


def test_solar_elevation_reference_values():
    noon = parse_utc_s("2024-06-21T12:00:00Z")
    assert solar_elevation_deg(noon, 52.2, 0.1) == pytest.approx(90.0 - 52.2 + 23.44, abs=0.3)
    midnight = parse_utc_s("2024-12-21T00:00:00Z")
    assert solar_elevation_deg(midnight, 52.2, 0.1) == pytest.approx(-(90.0 - 52.2 + 23.44), abs=0.3)
    equinox = parse_utc_s("2024-03-20T06:00:00")    # about sunrise on the equator at Greenwich
    assert abs(solar_elevation_deg(equinox, 0.0, 0.0)) < 2.5


def trajectory(seed, steps=4000):
    cfg = WorldConfig(wind=WindConfig(perturbation_sigma_mps=2.0, perturbation_time_constant_s=60.0),
                      payload=PayloadConfig(ballast_mass_kg=0.3))
    world, inputs = BalloonWorld(cfg, seed=seed), WorldInputs()
    for i in range(steps):
        inputs.ballast_valve_open = 1000 <= i < 1200
        world.step(0.05 if i % 2 else 0.5, inputs)
    return dataclasses.astuple(world.state)


def test_deterministic_with_seed():
    assert trajectory(42) == trajectory(42)
    assert trajectory(42) != trajectory(43)


def test_state_is_consistent_with_standard_atmosphere():
    world, inputs = latex_world(), WorldInputs()
    run_for(world, inputs, 1200)
    s = world.state
    t, p, rho = atm.properties(s.altitude_m)
    assert s.pressure_pa == pytest.approx(p, rel=1e-3)
    assert s.air_temperature_k == pytest.approx(t, rel=1e-3)
    assert s.volume_m3 == pytest.approx(math.pi / 6.0 * s.diameter_m ** 3, rel=1e-9)


def test_every_config_field_is_specified():
    for cls in (BalloonConfig, PayloadConfig, WindLayer, WindConfig, LaunchConfig, WorldConfig):
        for f in dataclasses.fields(cls):
            assert f.metadata.get("doc"), (cls.__name__, f.name)
