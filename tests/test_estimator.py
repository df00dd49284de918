"""The estimator: barometer voting, GPS takeover, vertical-rate filter, position and housekeeping values."""

from __future__ import annotations

import math
import random
import statistics

import pytest

from flightsw import atmosphere as atm
from flightsw.estimator import ESTIMATOR_PARAMS, BaroStatus, Estimator
from flightsw.params import Params
from flightsw.state import Estimate
from hal.interfaces import DeviceStats, FixType, GpsFix, Hal, PowerReading, PressureReading, TemperatureReading

RATED_PA = (1000.0, 120000.0)
FRAME_S = 0.05
UTC_S = 1.7e9  # an arbitrary UTC time for fixes


class FakeBaro:
    def __init__(self, name: str, rated_pressure_pa: tuple[float, float] = RATED_PA) -> None:
        self.name = name
        self.rated_pressure_pa = rated_pressure_pa
        self.stats = DeviceStats()
        self.reading = PressureReading()

    def update(self, now_s: float) -> None:
        pass

    def set_altitude(self, altitude_m: float, time_s: float, healthy: bool = True, temperature_c: float = 15.0):
        self.reading = PressureReading(atm.pressure_pa(altitude_m), temperature_c, time_s, healthy)


class FakeGps:
    name = "gps"

    def __init__(self) -> None:
        self.stats = DeviceStats()
        self.fix = GpsFix()

    def update(self, now_s: float) -> None:
        pass

    def set(self, altitude_m: float, time_s: float, fix_type: int = FixType.FIX_3D, healthy: bool = True,
            hdop: float = 1.2, latitude_deg: float = 44.5, longitude_deg: float = 11.3, utc_time_s: float = UTC_S):
        self.fix = GpsFix(latitude_deg, longitude_deg, altitude_m, 8.0, 270.0, fix_type, 11, hdop, 1.8,
                          utc_time_s, time_s, healthy)


class FakeReader:
    """A power monitor or thermometer: only ``reading`` matters to the estimator."""

    def __init__(self, name: str, reading) -> None:
        self.name = name
        self.stats = DeviceStats()
        self.reading = reading

    def update(self, now_s: float) -> None:
        pass


def make(n_baros: int = 2, gps: bool = True, **param_values):
    params = Params(ESTIMATOR_PARAMS)
    assert not params.load_values(param_values)
    baros = [FakeBaro(f"baro{i}") for i in range(n_baros)]
    hal = Hal(barometers=baros, power_monitors=[], thermometers=[], gps=FakeGps() if gps else None,
              outputs=None)
    return Estimator(params), hal, Estimate()


# ------------------------------------------------------------------ voting

# (case, per-sensor altitude offsets / faults, expected used count, expected rejected names, expected excluded)
# A fault is: a number (altitude offset, m), "unhealthy", "stale", "low" (pressure below the rated range).
VOTING_CASES = [
    ("one good", [0.0], 1, [], []),
    ("two good", [0.0, 4.0], 2, [], []),
    ("three good", [0.0, 4.0, -3.0], 3, [], []),
    ("three, one stuck far", [0.0, 4.0, -2500.0], 2, ["baro2"], []),
    ("three, one high outlier", [0.0, 900.0, 5.0], 2, ["baro1"], []),
    ("three, one unhealthy", [0.0, "unhealthy", 5.0], 2, [], ["baro1"]),
    ("three, one stale", ["stale", 0.0, 5.0], 2, [], ["baro0"]),
    ("two, one out of range", [0.0, "low"], 1, [], ["baro1"]),
    ("two, one unhealthy", ["unhealthy", 2.0], 1, [], ["baro0"]),
    ("one, unhealthy", ["unhealthy"], 0, [], ["baro0"]),
]


@pytest.mark.parametrize("case, faults, used, rejected, excluded", VOTING_CASES, ids=[c[0] for c in VOTING_CASES])
def test_barometer_voting(case, faults, used, rejected, excluded):
    est, hal, e = make(len(faults), gps=False)
    truth_m = 12000.0
    now_s = 100.0
    for baro, fault in zip(hal.barometers, faults):
        if fault == "unhealthy":
            baro.set_altitude(truth_m, now_s, healthy=False)
        elif fault == "stale":
            baro.set_altitude(truth_m, now_s - 5.0)
        elif fault == "low":
            baro.reading = PressureReading(500.0, 15.0, now_s, True)
        else:
            baro.set_altitude(truth_m + fault, now_s)
    est.update(hal, now_s, e)
    assert e.barometers_used == used
    assert sorted(n for n, c in est.rejections.items() if c) == rejected
    assert sorted(n for n, c in est.exclusions.items() if c) == excluded
    if used:
        assert e.altitude_source == "baro" and e.altitude_valid and e.pressure_valid
        assert abs(e.altitude_m - truth_m) < 10.0
        for name in rejected:
            assert est.status[name] == BaroStatus.REJECTED
    else:
        assert e.altitude_source == "none" and not e.altitude_valid and not e.pressure_valid
        assert math.isnan(e.altitude_m)


def test_two_disagreeing_barometers_use_gps_as_reference():
    est, hal, e = make(2)
    hal.barometers[0].set_altitude(15000.0 + 800.0, 10.0)  # stuck high
    hal.barometers[1].set_altitude(15000.0, 10.0)
    hal.gps.set(15060.0, 10.0)  # the real atmosphere differs a little from the standard one
    est.update(hal, 10.0, e)
    assert e.barometers_used == 1
    assert est.rejections == {"baro0": 1}
    assert abs(e.altitude_m - 15000.0) < 1.0


def test_two_disagreeing_barometers_without_reference_are_averaged_and_counted():
    est, hal, e = make(2, gps=False)
    hal.barometers[0].set_altitude(15000.0 + 800.0, 10.0)
    hal.barometers[1].set_altitude(15000.0, 10.0)
    est.update(hal, 10.0, e)
    assert e.barometers_used == 2
    assert est.disagreements == 1
    assert abs(e.altitude_m - 15400.0) < 5.0


def test_two_barometers_one_jumps_the_filter_prediction_decides():
    est, hal, e = make(2, gps=False, EST_BARO_FRZ_S=0.0)  # noise-free fakes would otherwise look frozen
    now_s = 0.0
    for _ in range(100):
        now_s += FRAME_S
        for baro in hal.barometers:
            baro.set_altitude(8000.0, now_s)
        est.update(hal, now_s, e)
    hal.barometers[1].set_altitude(3000.0, now_s + FRAME_S)
    hal.barometers[0].set_altitude(8000.0, now_s + FRAME_S)
    est.update(hal, now_s + FRAME_S, e)
    assert est.rejections.get("baro1") == 1 and not est.rejections.get("baro0")
    assert abs(e.altitude_m - 8000.0) < 1.0


def test_drifting_barometer_is_rejected_once_beyond_threshold_and_never_pulls_altitude_far():
    est, hal, e = make(3, gps=False, EST_BARO_FRZ_S=0.0)  # noise-free fakes would otherwise look frozen
    worst_error_m = 0.0
    first_rejected_offset_m = None
    for k in range(400):
        now_s = k * FRAME_S
        drift_m = 2.0 * k  # 40 m/s of drift on baro2
        hal.barometers[0].set_altitude(5000.0, now_s)
        hal.barometers[1].set_altitude(5003.0, now_s)
        hal.barometers[2].set_altitude(5000.0 + drift_m, now_s)
        est.update(hal, now_s, e)
        worst_error_m = max(worst_error_m, abs(e.altitude_m - 5001.5))
        if first_rejected_offset_m is None and est.rejections.get("baro2"):
            first_rejected_offset_m = drift_m
    assert first_rejected_offset_m is not None and 150.0 < first_rejected_offset_m < 160.0
    assert worst_error_m < 5.0
    assert est.status["baro2"] == BaroStatus.REJECTED


def test_pressure_floor_keeps_sensors_within_absolute_accuracy_at_altitude():
    # At 32 km, 15 Pa is about 110 m: beyond the altitude threshold for a 100 m setting, within the pressure floor.
    est, hal, e = make(3, gps=False, EST_BARO_REJ_M=100.0, EST_BARO_REJ_PA=20.0)
    p_pa = atm.pressure_pa(29000.0)
    for baro, offset_pa in zip(hal.barometers, (0.0, 15.0, -2.0)):
        baro.reading = PressureReading(p_pa + offset_pa, -40.0, 1.0, True)
    est.update(hal, 1.0, e)
    assert e.barometers_used == 3 and not any(est.rejections.values())


# ------------------------------------------------------------------ GPS takeover


def fly_profile(est, hal, e, altitudes, gps_offset_m=150.0, gps_every=4, noise_m=0.0, gps_ok=lambda t: True,
                seed=3):
    """Step a flight through ``altitudes`` (one per frame); returns per-frame (t, truth, estimate copy)."""
    rng = random.Random(seed)
    log = []
    for k, truth_m in enumerate(altitudes):
        now_s = k * FRAME_S
        for baro in hal.barometers:
            baro.set_altitude(truth_m + rng.gauss(0.0, noise_m), now_s)
        if hal.gps is not None and k % gps_every == 0:
            if gps_ok(now_s):
                hal.gps.set(truth_m + gps_offset_m, now_s)
        est.update(hal, now_s, e)
        log.append((now_s, truth_m, e.altitude_source, e.altitude_m, e.vertical_rate_mps, e.vertical_rate_valid))
    return log


def test_gps_takes_over_above_barometer_range_and_hands_back_without_rate_spike():
    est, hal, e = make(2)
    top_m = atm.altitude_from_pressure_m(RATED_PA[0])  # ~31.2 km
    climb = [top_m - 600.0 + 5.0 * k * FRAME_S for k in range(int(240 / FRAME_S))]  # 5 m/s, 1.2 km
    descent = [climb[-1] - 5.0 * k * FRAME_S for k in range(1, int(240 / FRAME_S))]
    log = fly_profile(est, hal, e, climb + descent)
    sources = [entry[2] for entry in log]
    assert sources[0] == "baro" and "gps" in sources and sources[-1] == "baro"
    switches = sum(1 for a, b in zip(sources, sources[1:]) if a != b)
    assert switches == 2 and est.source_switches == 2
    for now_s, truth_m, source, altitude_m, rate_mps, rate_valid in log:
        expected_rate = 5.0 if now_s < 240.0 else -5.0
        if rate_valid and abs(now_s - 240.0) > 20.0:  # away from the turn-around (GPS tau 3 s)
            assert abs(rate_mps - expected_rate) < 0.5, (now_s, source, rate_mps)
        if source == "gps":
            assert truth_m > top_m - 20.0
            assert abs(altitude_m - (truth_m + 150.0)) < 25.0  # GPS filter lag at the turn-around


def test_gps_lost_above_range_then_barometer_back_when_in_range():
    est, hal, e = make(1)
    top_m = atm.altitude_from_pressure_m(RATED_PA[0])
    descent = [top_m + 300.0 - 5.0 * k * FRAME_S for k in range(int(120 / FRAME_S))]
    log = fly_profile(est, hal, e, descent, gps_ok=lambda t: t < 20.0)
    by_time = {round(t, 2): source for t, _, source, *_ in log}
    assert by_time[10.0] == "gps"
    assert by_time[25.0] == "none"  # above range, GPS stale: no altitude rather than a wrong one
    assert by_time[119.0] == "baro"


def test_gps_lost_while_barometers_usable_switches_back_at_once():
    est, hal, e = make(1)
    hal.barometers[0].reading = PressureReading(math.nan, 15.0, 0.0, False)
    hal.gps.set(20000.0, 0.0)
    est.update(hal, 0.0, e)
    assert e.altitude_source == "gps"
    hal.barometers[0].set_altitude(19900.0, 0.05)
    hal.gps.set(20000.0, 0.05, healthy=False)
    est.update(hal, 0.05, e)
    assert e.altitude_source == "baro" and abs(e.altitude_m - 19900.0) < 1.0


def test_no_source_then_rate_valid_only_after_settling():
    est, hal, e = make(1, gps=False)
    est.update(hal, 0.0, e)
    assert e.altitude_source == "none" and not e.vertical_rate_valid and math.isnan(e.vertical_rate_mps)
    log = fly_profile(est, hal, e, [1000.0 + 3.0 * k * FRAME_S for k in range(200)])
    valid_from = next(t for t, *_, valid in log if valid)
    assert valid_from == pytest.approx(5 * 1.2, abs=2 * FRAME_S)


# ------------------------------------------------------------------ vertical rate


@pytest.mark.parametrize("baro_period_frames", [1, 2])
def test_rate_noise_of_a_few_metres_of_baro_noise_stays_small(baro_period_frames):
    est, hal, e = make(2, gps=False)
    rng = random.Random(7)
    errors = []
    for k in range(int(120 / FRAME_S)):
        now_s = k * FRAME_S
        if k % baro_period_frames == 0:
            for baro in hal.barometers:
                baro.set_altitude(18000.0 + 4.0 * now_s + rng.gauss(0.0, 3.0), now_s)
        est.update(hal, now_s, e)
        if now_s > 20.0:
            errors.append(e.vertical_rate_mps - 4.0)
    assert abs(statistics.mean(errors)) < 0.1
    assert statistics.pstdev(errors) < 0.5
    assert max(abs(x) for x in errors) < 1.5


def test_burst_is_seen_within_a_few_seconds():
    # The base filter (EST_RATE_TAU_S); the lengthening for pressure noise at altitude is tested below.
    est, hal, e = make(2, gps=False, EST_BARO_SD_PA=0.0)
    altitude_m, rate_mps = 30000.0, 5.0
    rng = random.Random(11)
    seen = {}
    for k in range(int(80 / FRAME_S)):
        now_s = k * FRAME_S
        if now_s >= 60.0:
            rate_mps = max(-25.0, rate_mps - 9.8 * FRAME_S)  # burst: free fall until drag limits it
        altitude_m += rate_mps * FRAME_S
        for baro in hal.barometers:
            baro.set_altitude(altitude_m + rng.gauss(0.0, 3.0), now_s)
        est.update(hal, now_s, e)
        if now_s < 60.0:
            assert e.vertical_rate_mps > 3.0 or not e.vertical_rate_valid
        for level in (0.0, -10.0, -20.0):
            if level not in seen and e.vertical_rate_mps < level:
                seen[level] = now_s - 60.0
    assert seen[0.0] < 2.5
    assert seen[-10.0] < 4.0
    assert seen[-20.0] < 7.0


def test_lift_change_shows_a_sudden_upward_acceleration():
    est, hal, e = make(2, gps=False)
    rng = random.Random(5)
    altitude_m, rate_mps = 25000.0, 0.0
    quiet, after = [], []
    for k in range(int(70 / FRAME_S)):
        now_s = k * FRAME_S
        if now_s >= 60.0:
            rate_mps = min(4.0, rate_mps + 1.0 * FRAME_S)  # payload released: 1 m/s^2 up to a 4 m/s climb
        altitude_m += rate_mps * FRAME_S
        for baro in hal.barometers:
            baro.set_altitude(altitude_m + rng.gauss(0.0, 2.0), now_s)
        est.update(hal, now_s, e)
        if 20.0 < now_s < 60.0:
            quiet.append(e.lift_change_mps2)
        elif 60.0 <= now_s < 68.0:
            after.append(e.lift_change_mps2)
    assert max(abs(x) for x in quiet) < 0.25
    assert max(after) > 0.5


# ------------------------------------------------------------------ position, time, power, temperatures

POSITION_CASES = [
    ("fresh 3D", dict(), {}, True),
    ("2D refused", dict(fix_type=FixType.FIX_2D), {}, False),
    ("2D allowed", dict(fix_type=FixType.FIX_2D), {"EST_GPS_ALLOW_2D": 1}, True),
    ("no fix", dict(fix_type=FixType.NO_FIX), {"EST_GPS_ALLOW_2D": 1}, False),
    ("unhealthy", dict(healthy=False), {}, False),
    ("stale", dict(age_s=3.0), {}, False),
    ("poor HDOP", dict(hdop=15.0), {}, False),
    ("garbage latitude", dict(latitude_deg=123.0), {}, False),
]


@pytest.mark.parametrize("case, fix, params, valid", POSITION_CASES, ids=[c[0] for c in POSITION_CASES])
def test_position_validity(case, fix, params, valid):
    est, hal, e = make(1, **params)
    age_s = fix.pop("age_s", 0.0)
    hal.gps.set(1200.0, 50.0 - age_s, **fix)
    est.update(hal, 50.0, e)
    assert e.position_valid is valid
    assert e.fix_type == hal.gps.fix.fix_type and e.satellites == 11
    assert e.ground_speed_mps == 8.0 and e.course_deg == 270.0


def test_gps_utc_time_is_carried_to_now_and_dropped_when_stale():
    est, hal, e = make(1)
    hal.gps.set(500.0, 10.0, utc_time_s=1.7e9)
    est.update(hal, 10.5, e)
    assert e.gps_utc_time_s == pytest.approx(1.7e9 + 0.5)
    est.update(hal, 20.0, e)
    assert math.isnan(e.gps_utc_time_s) and not e.position_valid


def test_no_gps_receiver():
    est, hal, e = make(1, gps=False)
    est.update(hal, 1.0, e)
    assert e.fix_type == FixType.NO_GPS and not e.position_valid and math.isnan(e.latitude_deg)


def test_power_and_temperatures():
    est, hal, e = make(2, gps=False)
    hal.barometers[0].set_altitude(100.0, 1.0, temperature_c=21.0)
    hal.barometers[1].set_altitude(100.0, 1.0, healthy=False, temperature_c=99.0)
    hal.power_monitors.append(FakeReader("pm0", PowerReading(12.1, 0.35, 4.2, 1.0, True)))
    est.update(hal, 1.0, e)
    assert e.power_valid and e.bus_voltage_v == 12.1 and e.current_a == 0.35
    assert e.temperatures_c[0] == 21.0 and math.isnan(e.temperatures_c[1]) and e.temperature_valid
    hal.thermometers.append(FakeReader("t0", TemperatureReading(-30.0, 1.0, True)))
    hal.thermometers.append(FakeReader("t1", TemperatureReading(-31.0, -20.0, True)))  # stale
    hal.power_monitors[0].reading = PowerReading(12.1, 0.35, 4.2, 1.0, False)
    est.update(hal, 1.0, e)
    assert not e.power_valid and math.isnan(e.bus_voltage_v)
    assert e.temperatures_c[0] == -30.0 and math.isnan(e.temperatures_c[1]) and len(e.temperatures_c) == 2


def test_parameter_change_takes_effect():
    est, hal, e = make(1, gps=False)
    hal.barometers[0].set_altitude(100.0, 1.0)
    est.update(hal, 1.6, e)
    assert e.altitude_valid  # 0.6 s old, within the default 1 s
    est.params.set("EST_BARO_STALE_S", 0.5)
    est.update(hal, 1.6, e)
    assert not e.altitude_valid and est.status["baro0"] == BaroStatus.STALE


# ------------------------------------------------------------------ frozen barometers, GPS cross-check


def ms5611_pressure_pa(altitude_m: float, rng: random.Random, sigma_pa: float = 1.2) -> float:
    """What an MS5611 at OSR 4096 reports: gaussian noise, then its 1 Pa output step."""
    return float(round(atm.pressure_pa(altitude_m) + rng.gauss(0.0, sigma_pa)))


def test_frozen_barometer_is_excluded_after_the_frozen_time_and_back_when_it_changes():
    est, hal, e = make(2, gps=False, EST_BARO_FRZ_S=4.0)
    rng = random.Random(2)
    baro0, baro1 = hal.barometers
    frozen_from = None
    for k in range(int(12 / FRAME_S)):
        now_s = k * FRAME_S
        if k % 2 == 0:  # new readings at 10 Hz; the estimator re-reads them in between
            stuck_pa = 50000.0 if now_s >= 2.0 else ms5611_pressure_pa(5500.0, rng)
            baro0.reading = PressureReading(stuck_pa, 15.0, now_s, True)
            baro1.reading = PressureReading(ms5611_pressure_pa(5500.0, rng), 15.0, now_s, True)
        est.update(hal, now_s, e)
        if frozen_from is None and est.status["baro0"] == BaroStatus.FROZEN:
            frozen_from = now_s
        if now_s < 6.0 - 1e-9:
            assert est.status["baro0"] == BaroStatus.USED and e.barometers_used == 2
    assert frozen_from == pytest.approx(6.0)  # bit-identical from t = 2 s, for 4 s of readings
    assert e.barometers_used == 1 and est.status["baro1"] == BaroStatus.USED
    assert est.frozen["baro0"] == est.exclusions["baro0"] > 0 and not est.frozen.get("baro1")
    assert abs(e.altitude_m - 5500.0) < 5.0
    baro0.reading = PressureReading(50001.0, 15.0, 12.0, True)  # it moves again: usable at once
    est.update(hal, 12.0, e)
    assert est.status["baro0"] == BaroStatus.USED


def test_rereading_one_reading_never_ages_it_and_zero_disables_the_check():
    est, hal, e = make(1, gps=False, EST_BARO_FRZ_S=1.0)
    hal.barometers[0].reading = PressureReading(90000.0, 15.0, 0.0, True)
    for k in range(15):  # the same reading, read within its staleness limit
        est.update(hal, k * FRAME_S, e)
    assert est.status["baro0"] == BaroStatus.USED
    # out of range (or unhealthy) for a while, then back on the very value it left with: not frozen
    for time_s, pressure_pa in ((10.0, 1000.0), (10.1, 900.0), (12.0, 900.0), (16.0, 1000.0), (16.1, 1000.0)):
        hal.barometers[0].reading = PressureReading(pressure_pa, -50.0, time_s, True)
        est.update(hal, time_s, e)
    assert est.status["baro0"] == BaroStatus.USED and not est.frozen
    off, hal_off, e_off = make(1, gps=False, EST_BARO_FRZ_S=0.0)
    for k in range(200):
        hal_off.barometers[0].reading = PressureReading(90000.0, 15.0, k * FRAME_S, True)
        off.update(hal_off, k * FRAME_S, e_off)
    assert off.status["baro0"] == BaroStatus.USED and not off.frozen


def test_rereading_a_reading_gives_what_a_new_copy_of_it_gives():
    """What the estimator works out from a barometer reading is kept until the reading object changes: re-reading
    the same objects must give the same estimates, statuses and counters as new copies every frame, through
    new, re-read, frozen, rejected, out-of-range, unhealthy and stale readings and a parameter change."""
    kept, hal, e = make(3, EST_BARO_FRZ_S=1.0)
    copied, hal_copied, e_copied = make(3, EST_BARO_FRZ_S=1.0)
    rng = random.Random(5)
    for k in range(int(40 / FRAME_S)):
        now_s = k * FRAME_S
        truth_m = 9000.0 + 5.0 * now_s
        for i, baro in enumerate(hal.barometers):
            if k % (i + 2) or (i == 0 and 22.0 <= now_s < 25.0):  # 10, 6.7 and 5 Hz; baro0 goes quiet (stale)
                continue
            pressure_pa = ms5611_pressure_pa(truth_m, rng)
            if i == 2 and 8.0 <= now_s < 14.0:
                pressure_pa = 50000.0  # stuck far off: rejected, then frozen
            elif i == 1 and 16.0 <= now_s < 18.0:
                pressure_pa = 500.0  # below its rated range
            baro.reading = PressureReading(pressure_pa, 15.0, now_s, not (i == 0 and 20.0 <= now_s < 21.0))
        if k % 20 == 0:
            hal.gps.set(truth_m + rng.gauss(0.0, 3.0), now_s)
        if k == 600:
            for est in (kept, copied):
                est.params.set("EST_BARO_FRZ_S", 0.5)
        for baro, copy in zip(hal.barometers, hal_copied.barometers):
            copy.reading = baro.reading._replace()  # an equal reading, a new object
        hal_copied.gps.fix = hal.gps.fix._replace()
        kept.update(hal, now_s, e)
        copied.update(hal_copied, now_s, e_copied)
        assert repr(e) == repr(e_copied), now_s
        assert (kept.status, kept.exclusions, kept.rejections, kept.frozen) == \
            (copied.status, copied.exclusions, copied.rejections, copied.frozen), now_s
    assert kept.frozen["baro2"] and kept.rejections["baro2"]
    assert kept.exclusions["baro0"] > kept.exclusions.get("baro1", 0) > 0


# (case, barometer altitude offset from GPS m, GPS usable, expected source, expected rejections of baro0)
CROSS_CHECK_CASES = [
    ("agrees", 300.0, True, "baro", 0),
    ("atmosphere off by 1 km", -1000.0, True, "baro", 0),
    ("stuck 8 km low", -8500.0, True, "gps", 1),
    ("stuck far, no GPS", -8500.0, False, "baro", 0),
]


@pytest.mark.parametrize("case, offset_m, gps_ok, source, rejected", CROSS_CHECK_CASES,
                         ids=[c[0] for c in CROSS_CHECK_CASES])
def test_single_barometer_is_cross_checked_against_gps(case, offset_m, gps_ok, source, rejected):
    est, hal, e = make(1, gps=gps_ok)
    hal.barometers[0].set_altitude(14000.0 + offset_m, 10.0)
    if gps_ok:
        hal.gps.set(14000.0, 10.0)
    est.update(hal, 10.0, e)
    assert e.altitude_source == source
    assert est.rejections.get("baro0", 0) == rejected
    if source == "gps":
        assert e.altitude_m == pytest.approx(14000.0) and e.barometers_used == 0
        assert est.status["baro0"] == BaroStatus.REJECTED


def test_stuck_barometer_then_the_other_leaves_its_range_gps_takes_over():
    """The fault-baro-stuck flight: baro0 freezes at 4.5 km; baro1 (rated to 30 kPa) leaves its range at ~9 km;
    the altitude must follow GPS, not the frozen sensor."""
    params = Params(ESTIMATOR_PARAMS)
    baros = [FakeBaro("baro0"), FakeBaro("baro1", rated_pressure_pa=(30000.0, 125000.0))]
    hal = Hal(barometers=baros, power_monitors=[], thermometers=[], gps=FakeGps(), outputs=None)
    est, e = Estimator(params), Estimate()
    rng = random.Random(4)
    stuck_pa = None
    worst_error_m = 0.0
    for k in range(int(2400 / FRAME_S)):  # 4 km to 16 km at 5 m/s
        now_s = k * FRAME_S
        truth_m = 4000.0 + 5.0 * now_s
        if k % 2 == 0:
            if truth_m >= 4500.0 and stuck_pa is None:
                stuck_pa = ms5611_pressure_pa(truth_m, rng)
            p0 = stuck_pa if stuck_pa is not None else ms5611_pressure_pa(truth_m, rng)
            baros[0].reading = PressureReading(p0, 15.0, now_s, True)
            baros[1].reading = PressureReading(atm.pressure_pa(truth_m) + rng.gauss(0.0, 1.3), 15.0, now_s, True)
        if k % 20 == 0:
            hal.gps.set(truth_m + rng.gauss(0.0, 3.0), now_s)
        est.update(hal, now_s, e)
        if now_s > 120.0:
            worst_error_m = max(worst_error_m, abs(e.altitude_m - truth_m))
    assert e.altitude_source == "gps" and est.frozen["baro0"] > 0
    assert est.status["baro0"] == BaroStatus.FROZEN and est.status["baro1"] == BaroStatus.OUT_OF_RANGE
    assert worst_error_m < 30.0


# ------------------------------------------------------------------ rate filter against pressure noise at altitude


WIDE_RATED_PA = (100.0, 120000.0)  # a sensor rated below the MS5611's 10 hPa (~31 km), to fly higher


def test_time_constant_is_the_base_one_low_and_lengthened_high():
    est, hal, e = make(1, gps=False)
    hal.barometers[0].rated_pressure_pa = WIDE_RATED_PA
    rng = random.Random(8)
    taus = {}
    for altitude_m in (2000.0, 15000.0, 28000.0, 33000.0, 40000.0):
        for k in range(4):
            now_s = 100.0 * altitude_m + k * 0.1
            hal.barometers[0].reading = PressureReading(ms5611_pressure_pa(altitude_m, rng), 15.0, now_s, True)
            est.update(hal, now_s, e)
        taus[altitude_m] = est.baro_tau_s
    assert taus[2000.0] == taus[15000.0] == 1.2
    assert 1.2 < taus[28000.0] < taus[33000.0] < taus[40000.0] <= 20.0


# (altitude m, true rate m/s): MS5611 noise at 10 Hz; the rate must stay inside the float-detection band
RATE_NOISE_CASES = [(20000.0, 0.0), (28000.0, 0.0), (29000.0, 5.0), (38000.0, 0.0)]


@pytest.mark.parametrize("altitude_m, rate_mps", RATE_NOISE_CASES)
def test_rate_noise_of_ms5611_noise_at_altitude_stays_inside_the_float_band(altitude_m, rate_mps):
    est, hal, e = make(1, gps=False)
    hal.barometers[0].rated_pressure_pa = WIDE_RATED_PA
    rng = random.Random(int(altitude_m))
    errors = []
    for k in range(int(400 / FRAME_S)):
        now_s = k * FRAME_S
        if k % 2 == 0:
            truth_m = altitude_m + rate_mps * now_s
            hal.barometers[0].reading = PressureReading(ms5611_pressure_pa(truth_m, rng), 15.0, now_s, True)
        est.update(hal, now_s, e)
        if now_s > 100.0:
            errors.append(e.vertical_rate_mps - rate_mps)
    assert abs(statistics.mean(errors)) < 0.1
    assert statistics.pstdev(errors) < 0.16
    assert max(abs(x) for x in errors) < 0.5  # PH_FLOAT_RATE: 300 s of float detection must be possible


def test_burst_at_30_km_with_ms5611_noise_is_seen_and_nothing_false_before():
    est, hal, e = make(1, gps=False)
    rng = random.Random(12)
    altitude_m, rate_mps = 30000.0, 5.0
    seen = {}
    for k in range(int(160 / FRAME_S)):
        now_s = k * FRAME_S
        if now_s >= 120.0:
            rate_mps = max(-40.0, rate_mps - 9.8 * FRAME_S)  # thin air: the fall builds up fast
        altitude_m = min(altitude_m + rate_mps * FRAME_S, 31000.0)  # stays inside the rated range
        if k % 2 == 0:
            hal.barometers[0].reading = PressureReading(ms5611_pressure_pa(altitude_m, rng), 15.0, now_s, True)
        est.update(hal, now_s, e)
        if 40.0 < now_s < 120.0:
            assert 4.0 < e.vertical_rate_mps < 6.0
        for level in (0.0, -8.0, -20.0):
            if level not in seen and now_s >= 120.0 and e.vertical_rate_mps < level:
                seen[level] = now_s - 120.0
    assert seen[0.0] < 8.0
    assert seen[-8.0] < 12.0
    assert seen[-20.0] < 16.0
