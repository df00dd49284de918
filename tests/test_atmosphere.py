"""US Standard Atmosphere 1976 against published table values."""

from __future__ import annotations

import math

import pytest

from flightsw import atmosphere as atm

# Source: R. L. Carmichael, Public Domain Aeronautical Software, "A Table of the Standard Atmosphere to 86 km in SI
# units" (U.S. Standard Atmosphere 1976, geometric altitude, 2 km steps), columns sigma = rho/rho0,
# delta = p/p0, theta = T/T0 with rho0 = 1.225 kg/m^3, p0 = 101325 Pa, T0 = 288.15 K.
# (altitude km, sigma, delta, theta) -- covers every one of the seven layers and the -2 km extension.
TABLE_RATIOS = (
    (-2, 1.2067e0, 1.2611e0, 1.0451),
    (0, 1.0000e0, 1.0000e0, 1.0000),
    (2, 8.2168e-1, 7.8462e-1, 0.9549),
    (4, 6.6885e-1, 6.0854e-1, 0.9098),
    (6, 5.3887e-1, 4.6600e-1, 0.8648),
    (8, 4.2921e-1, 3.5185e-1, 0.8198),
    (10, 3.3756e-1, 2.6153e-1, 0.7748),
    (12, 2.5464e-1, 1.9146e-1, 0.7519),
    (14, 1.8600e-1, 1.3985e-1, 0.7519),
    (16, 1.3589e-1, 1.0217e-1, 0.7519),
    (18, 9.9302e-2, 7.4662e-2, 0.7519),
    (20, 7.2578e-2, 5.4569e-2, 0.7519),
    (22, 5.2660e-2, 3.9945e-2, 0.7585),
    (24, 3.8316e-2, 2.9328e-2, 0.7654),
    (26, 2.7964e-2, 2.1597e-2, 0.7723),
    (28, 2.0470e-2, 1.5950e-2, 0.7792),
    (30, 1.5028e-2, 1.1813e-2, 0.7861),
    (32, 1.1065e-2, 8.7740e-3, 0.7930),
    (34, 8.0709e-3, 6.5470e-3, 0.8112),
    (36, 5.9245e-3, 4.9198e-3, 0.8304),
    (38, 4.3806e-3, 3.7218e-3, 0.8496),
    (40, 3.2615e-3, 2.8337e-3, 0.8688),
    (42, 2.4445e-3, 2.1708e-3, 0.8880),
    (44, 1.8438e-3, 1.6727e-3, 0.9072),
    (46, 1.3992e-3, 1.2961e-3, 0.9263),
    (48, 1.0748e-3, 1.0095e-3, 0.9393),
    (50, 8.3819e-4, 7.8728e-4, 0.9393),
    (52, 6.5759e-4, 6.1395e-4, 0.9336),
    (54, 5.2158e-4, 4.7700e-4, 0.9145),
    (56, 4.1175e-4, 3.6869e-4, 0.8954),
    (58, 3.2344e-4, 2.8344e-4, 0.8763),
    (60, 2.5276e-4, 2.1668e-4, 0.8573),
    (62, 1.9647e-4, 1.6468e-4, 0.8382),
    (64, 1.5185e-4, 1.2439e-4, 0.8191),
    (66, 1.1668e-4, 9.3354e-5, 0.8001),
    (68, 8.9101e-5, 6.9593e-5, 0.7811),
    (70, 6.7601e-5, 5.1515e-5, 0.7620),
    (72, 5.0905e-5, 3.7852e-5, 0.7436),
    (74, 3.7856e-5, 2.7635e-5, 0.7300),
    (76, 2.8001e-5, 2.0061e-5, 0.7164),
    (78, 2.0597e-5, 1.4477e-5, 0.7029),
    (80, 1.5063e-5, 1.0384e-5, 0.6893),
    (82, 1.0950e-5, 7.4002e-6, 0.6758),
    (84, 7.9106e-6, 5.2391e-6, 0.6623),
    (86, 5.6777e-6, 3.6835e-6, 0.6488),
)

# Source: U.S. Standard Atmosphere 1976 (NOAA/NASA/USAF), Table I, geometric altitude, as printed
# (temperature K, pressure Pa).
TABLE_1976_ANCHORS = (
    (5000.0, 255.676, 5.4048e4),
    (10000.0, 223.252, 2.6500e4),
    (15000.0, 216.650, 1.2112e4),
    (20000.0, 216.650, 5.5293e3),
    (25000.0, 221.552, 2.5492e3),
    (30000.0, 226.509, 1.1970e3),
)

# Source: U.S. Standard Atmosphere 1976, Table 4: pressure at the base of each layer, at geopotential altitude.
LAYER_BASE_PRESSURES = (
    (0.0, 101325.0), (11000.0, 22632.06), (20000.0, 5474.889), (32000.0, 868.0187),
    (47000.0, 110.9063), (51000.0, 66.93887), (71000.0, 3.956420), (84852.0, 0.3733834),
)

REL_TOL = 1e-3   # 0.1 %


@pytest.mark.parametrize("alt_km,sigma,delta,theta", TABLE_RATIOS)
def test_table_values_every_layer(alt_km, sigma, delta, theta):
    z = alt_km * 1000.0
    t, p, rho = atm.properties(z)
    assert t == pytest.approx(theta * 288.15, rel=REL_TOL)
    assert p == pytest.approx(delta * 101325.0, rel=REL_TOL)
    assert rho == pytest.approx(sigma * 1.225, rel=REL_TOL)
    assert atm.temperature_k(z) == t
    assert atm.pressure_pa(z) == p
    assert atm.density_kgpm3(z) == rho


@pytest.mark.parametrize("z_m,t_k,p_pa", TABLE_1976_ANCHORS)
def test_printed_table_anchor_rows(z_m, t_k, p_pa):
    assert atm.temperature_k(z_m) == pytest.approx(t_k, abs=0.001)
    assert atm.pressure_pa(z_m) == pytest.approx(p_pa, rel=1e-4)


@pytest.mark.parametrize("h_m,p_pa", LAYER_BASE_PRESSURES)
def test_layer_base_pressures(h_m, p_pa):
    assert atm.pressure_pa(atm.geometric_m(h_m)) == pytest.approx(p_pa, rel=2e-5)


def test_sea_level_density_and_gas_constant():
    assert atm.density_kgpm3(0.0) == pytest.approx(1.2250, abs=1e-4)
    assert atm.R_AIR_JPKGK == pytest.approx(287.0531, abs=1e-3)


def test_geopotential_conversion_round_trip():
    for z in (-3000.0, 0.0, 11019.1, 33000.0, 86000.0):
        assert atm.geometric_m(atm.geopotential_m(z)) == pytest.approx(z, abs=1e-6)
    assert atm.geopotential_m(86000.0) == pytest.approx(84852.0, abs=0.5)


def test_inverse_round_trips_everywhere():
    z = -5000.0
    while z <= 100000.0:
        p = atm.pressure_pa(z)
        assert atm.altitude_from_pressure_m(p) == pytest.approx(z, abs=1e-4)
        z += 137.0


def test_inverse_at_layer_boundaries():
    for h, p in LAYER_BASE_PRESSURES:
        assert atm.altitude_from_pressure_m(p) == pytest.approx(atm.geometric_m(h), abs=1.0)


def test_continuity_at_layer_boundaries():
    for h, _ in LAYER_BASE_PRESSURES[1:]:
        z = atm.geometric_m(h)
        below, above = atm.properties(z - 1e-6), atm.properties(z + 1e-6)
        for a, b in zip(below, above):
            assert a == pytest.approx(b, rel=1e-6)


def test_monotonic_pressure():
    last = math.inf
    for z in range(-5000, 120001, 250):
        p = atm.pressure_pa(float(z))
        assert p < last
        last = p


def test_extrapolation_documented_behaviour():
    # Below 0 m: tropospheric lapse continues.
    assert atm.temperature_k(-1000.0) == pytest.approx(288.15 + 6.5 * atm.geopotential_m(1000.0) / 1000.0, rel=1e-4)
    # Above 86 km: isothermal continuation.
    assert atm.temperature_k(95000.0) == atm.temperature_k(86000.0)
    assert atm.pressure_pa(95000.0) < atm.pressure_pa(90000.0) < atm.pressure_pa(86000.0)
    # Far below: clamped, stays finite and positive.
    t, p, rho = atm.properties(-1e6)
    assert t > 0 and p > 0 and rho > 0 and math.isfinite(p)


def test_invalid_inputs_give_nan():
    assert math.isnan(atm.altitude_from_pressure_m(0.0))
    assert math.isnan(atm.altitude_from_pressure_m(-5.0))
    assert math.isnan(atm.altitude_from_pressure_m(math.nan))
    assert all(math.isnan(v) for v in atm.properties(math.nan))
    assert math.isnan(atm.temperature_k(math.nan))
