"""The HIL flight report: text summary, JSON results, KML track, PNG plots and the progress bar."""

from __future__ import annotations

import io
import json
import math
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from flightsw.geo import distance_m
from hil.record import PhaseSpan, RunRecord
from hil.report import (KML_MAX_POINTS, KML_NAMESPACE, ProgressBar, bearing_deg, downsample_indices, format_hms,
                        format_summary, kml_document, phase_spans, termination_event, write_report)

LAUNCH_LAT, LAUNCH_LON, LAUNCH_ALT = 44.5, 11.3, 120.0
NS = {"k": KML_NAMESPACE}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def synthetic_record(scenario: str = "nominal <float> & release", float_phase: bool = True) -> RunRecord:
    """A 1 Hz record: 100 s preflight, ascent at 6 m/s, 1000 s float at 15 km, burst, descent at 8 m/s, landed."""
    record = RunRecord(scenario=scenario, seed=7)
    segments = [("PREFLIGHT", 100, 0.0), ("ASCENT", 2500, 6.0)]
    if float_phase:
        segments.append(("FLOAT", 1000, 0.0))
    segments += [("DESCENT", 1900, -8.0), ("LANDED", 100, 0.0)]
    phase_number = {"PREFLIGHT": 0, "ASCENT": 1, "FLOAT": 2, "DESCENT": 3, "LANDED": 4}
    t, altitude, ballast = 0, LAUNCH_ALT, 3.0
    for name, length, rate in segments:
        record.phases.append(PhaseSpan(name, float(t), float(t + length)))
        for _ in range(length):
            lat = LAUNCH_LAT + 1e-5 * t
            lon = LAUNCH_LON + 4e-5 * t
            if name == "FLOAT" and t % 100 == 0:
                ballast -= 0.125
            wobble = 300.0 * math.sin(t / 60.0) if name == "FLOAT" else 0.0
            record.samples.append(time_s=float(t), altitude_m=altitude + wobble, estimated_altitude_m=altitude + 15.0,
                                  vertical_rate_mps=rate, estimated_vertical_rate_mps=rate + 0.2,
                                  latitude_deg=lat, longitude_deg=lon, ballast_kg=ballast,
                                  phase=phase_number[name], float_target_m=15000.0 if float_phase else math.nan)
            altitude = max(LAUNCH_ALT, altitude + rate)
            t += 1
    record.duration_s = float(t)
    record.wall_time_s = 5.6
    record.max_altitude_m = max(record.samples.altitude_m)
    burst_t = 2600.0 + (1000.0 if float_phase else 0.0)
    record.events = [(100.0, "launch", "INFO", "lift-off detected"), (burst_t, "burst", "WARNING", "balloon burst")]
    record.ended_by = "burst"
    record.termination_reason = "balloon burst at float"
    record.release = {"time_s": 3000.0, "altitude_m": 15010.0, "latitude_deg": 44.53, "longitude_deg": 11.42,
                      "vertical_rate_mps": 0.35}
    last = len(record.samples) - 1
    record.landing = {"time_s": float(t - 100), "latitude_deg": record.samples.latitude_deg[last],
                      "longitude_deg": record.samples.longitude_deg[last]}
    record.launch = {"latitude_deg": LAUNCH_LAT, "longitude_deg": LAUNCH_LON, "altitude_m": LAUNCH_ALT,
                     "start_utc": "2024-06-01T06:00:00Z"}
    record.ballast_start_kg, record.ballast_end_kg = 3.0, ballast
    if float_phase:
        record.float_hold_fraction, record.float_time_s = 0.875, 1000.0
    record.release_fire_count = 1
    record.expectations = [("reached float", True, "max 15,220 m >= 14,000 m"),
                           ("released once", True, "1 fire"),
                           ("landed in zone", False, "landing 31.2 km outside the zone")]
    record.tlog_paths = ["logs/flight-000001.tlog", "logs/flight-000002.tlog", "logs/flight-000003.tlog"]
    return record


@pytest.fixture(scope="module")
def record() -> RunRecord:
    return synthetic_record()


@pytest.fixture(scope="module")
def written(record, tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("report")
    return out_dir, write_report(record, out_dir)


def landing_km(record: RunRecord) -> float:
    return distance_m(LAUNCH_LAT, LAUNCH_LON, record.landing["latitude_deg"], record.landing["longitude_deg"]) / 1e3


def test_summary_has_key_figures_and_verdict(record):
    text = format_summary(record)
    lines = text.splitlines()
    assert len(lines) < 40
    assert "nominal <float> & release" in lines[0] and "seed 7" in lines[0]
    assert "1:33:20" in text  # 5600 s simulated
    assert "x1,000" in text  # 5600 s in 5.6 s wall
    assert f"{record.max_altitude_m:,.0f} m" in text
    float_line = next(line for line in lines if line.strip().startswith("FLOAT "))
    assert float_line.split()[1:] == ["0:43:20", "1:00:00", "0:16:40"]
    assert "burst (balloon burst at float)" in text
    assert "alt 15,010 m" in text and "44.53000, 11.42000" in text and "+0.35 m/s" in text
    assert "87.5% of 0:16:40 within +/-500 m" in text
    assert "1.250 kg (3.000 -> 1.750 kg)" in text
    assert f"{landing_km(record):.1f} km at" in text
    assert "    PASS  reached float " in text
    assert "    FAIL  landed in zone  landing 31.2 km outside the zone" in text
    assert lines[-1] == "RESULT: FAIL"


def test_every_tlog_of_the_flight_is_named_in_the_summary_and_the_json(record, written):
    lines = format_summary(record).splitlines()
    first = lines.index("  Telemetry logs    logs/flight-000001.tlog")
    assert lines[first + 1:first + 3] == ["                    logs/flight-000002.tlog",
                                          "                    logs/flight-000003.tlog"]
    out_dir, _ = written
    data = json.loads((out_dir / "report.json").read_text())
    assert data["tlog_paths"] == record.tlog_paths


def test_summary_passes_and_omits_float_without_float_phase():
    rec = synthetic_record(float_phase=False)
    rec.expectations = [(name, True, detail) for name, _, detail in rec.expectations]
    text = format_summary(rec)
    assert "Float hold" not in text
    assert text.splitlines()[-1] == "RESULT: PASS"


def test_json_round_trips_figures(record, written):
    out_dir, paths = written
    assert out_dir / "report.json" in paths
    data = json.loads((out_dir / "report.json").read_text())
    assert data["scenario"] == record.scenario and data["seed"] == 7 and data["passed"] is False
    assert data["max_altitude_m"] == record.max_altitude_m
    assert data["duration_s"] == 5600.0 and data["speedup"] == pytest.approx(1000.0)
    assert data["release"] == record.release
    assert data["ballast_used_kg"] == pytest.approx(1.25)
    assert data["float_hold_fraction"] == 0.875
    assert data["landing_distance_km"] == pytest.approx(landing_km(record))
    assert 0.0 < data["landing_bearing_deg"] < 90.0  # north-east drift
    assert data["termination_time_s"] == 3600.0
    assert [p["phase"] for p in data["phases"]] == ["PREFLIGHT", "ASCENT", "FLOAT", "DESCENT", "LANDED"]
    assert data["expectations"][2] == {"name": "landed in zone", "passed": False,
                                       "detail": "landing 31.2 km outside the zone"}


def test_json_writes_nan_as_null(tmp_path):
    rec = synthetic_record(float_phase=False)
    rec.wall_time_s = 0.0
    write_report(rec, tmp_path)
    data = json.loads((tmp_path / "report.json").read_text())
    assert data["float_hold_fraction"] is None and data["speedup"] is None


def test_kml_parses_with_track_and_placemarks(record, written):
    out_dir, paths = written
    root = ET.parse(out_dir / "track.kml").getroot()
    assert root.tag == f"{{{KML_NAMESPACE}}}kml"
    assert root.find("k:Document/k:name", NS).text == "nominal <float> & release (seed 7)"
    marks = {m.find("k:name", NS).text: m for m in root.iterfind("k:Document/k:Placemark", NS)}
    assert sorted(marks) == ["Burst", "Flight path", "Landing", "Launch", "Release"]
    line = marks["Flight path"].find("k:LineString", NS)
    assert line.find("k:altitudeMode", NS).text == "absolute"
    coords = [tuple(map(float, c.split(","))) for c in line.find("k:coordinates", NS).text.split()]
    assert len(coords) == len(downsample_indices(len(record.samples), KML_MAX_POINTS))
    assert coords[0] == pytest.approx((LAUNCH_LON, LAUNCH_LAT, LAUNCH_ALT))  # lon,lat,alt order
    assert coords[-1][2] == pytest.approx(record.samples.altitude_m[-1], abs=0.1)
    lon, lat, alt = map(float, marks["Release"].find("k:Point/k:coordinates", NS).text.split(","))
    assert (lon, lat, alt) == pytest.approx((11.42, 44.53, 15010.0))
    burst_alt = float(marks["Burst"].find("k:Point/k:coordinates", NS).text.split(",")[2])
    assert burst_alt == pytest.approx(record.samples.altitude_m[3600], abs=0.1)


def test_kml_keeps_every_sample_when_allowed(record):
    root = ET.fromstring(kml_document(record, max_points=len(record.samples)))
    text = root.find("k:Document/k:Placemark/k:LineString/k:coordinates", NS).text
    assert len(text.split()) == len(record.samples)


def test_png_plots_written(written):
    out_dir, paths = written
    assert out_dir / "flight.png" in paths
    assert (out_dir / "flight.png").read_bytes()[:8] == PNG_SIGNATURE
    assert "Plots: flight.png" in (out_dir / "report.txt").read_text()


def test_report_without_matplotlib_skips_plots(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    paths = write_report(synthetic_record(), tmp_path)
    assert [p.name for p in paths] == ["report.txt", "report.json", "track.kml"]
    assert not list(tmp_path.glob("*.png"))
    assert "Plots: skipped (matplotlib is not installed" in (tmp_path / "report.txt").read_text()


def test_phase_spans_rebuilt_from_samples(record):
    rec = synthetic_record()
    rec.phases = []
    assert [(s.phase, s.start_s) for s in phase_spans(rec)] == [(s.phase, s.start_s) for s in record.phases]


def test_burst_without_event_placed_at_highest_sample():
    rec = synthetic_record(float_phase=False)
    rec.events = []
    label, time_s = termination_event(rec)
    assert label == "Burst"
    assert rec.samples.altitude_m[int(time_s)] == rec.max_altitude_m
    rec.ended_by = "time limit"
    assert termination_event(rec) is None


def test_helpers():
    assert format_hms(0) == "0:00:00" and format_hms(172800) == "48:00:00" and format_hms(math.nan) == "-"
    assert downsample_indices(0, 10) == []
    assert downsample_indices(5, 10) == [0, 1, 2, 3, 4]
    picked = downsample_indices(172800, 4000)
    assert len(picked) <= 4001 and picked[0] == 0 and picked[-1] == 172799
    assert bearing_deg(0.0, 0.0, 0.0, 1.0) == pytest.approx(90.0)
    assert bearing_deg(10.0, 5.0, 9.0, 5.0) == pytest.approx(180.0)


class FakeClock:
    def __init__(self) -> None:
        self.now_s = 100.0

    def __call__(self) -> float:
        return self.now_s


def test_progress_bar_disabled_writes_nothing():
    stream = io.StringIO()
    bar = ProgressBar(3600.0, stream=stream, enabled=False)
    bar.update(1800.0)
    bar.close()
    assert stream.getvalue() == ""
    default = ProgressBar(3600.0, stream=stream)  # a StringIO is not a TTY
    default.update(10.0)
    default.close()
    assert stream.getvalue() == ""


def test_progress_bar_enabled_draws_and_throttles():
    stream, clock = io.StringIO(), FakeClock()
    bar = ProgressBar(3600.0, stream=stream, enabled=True, clock=clock)
    clock.now_s += 2.0
    bar.update(1800.0)
    first = stream.getvalue()
    assert first.startswith("\r[") and "50.0%" in first and "sim 0:30:00 / 1:00:00" in first and "x900" in first
    clock.now_s += 0.05
    bar.update(1900.0)
    assert stream.getvalue() == first  # too soon to redraw
    clock.now_s += 1.0
    bar.update(3600.0)
    assert "100.0%" in stream.getvalue().split("\r")[-1]
    bar.close()
    assert stream.getvalue().endswith("\n")
    size = len(stream.getvalue())
    bar.update(3600.0)
    assert len(stream.getvalue()) == size


def test_the_report_json_guide_documents_exactly_the_keys_written(record, written):
    """docs/guides/report-json.md has one table row per key of report.json, at every level."""
    import re
    from pathlib import Path

    guide = (Path(__file__).resolve().parent.parent / "docs" / "guides" / "report-json.md").read_text()
    sections = re.split(r"^## ", guide, flags=re.MULTILINE)
    documented = {section.splitlines()[0].strip("` []"): set(re.findall(r"^\| `(\w+)` \|", section, re.MULTILINE))
                  for section in sections[1:]}
    out_dir, _ = written
    data = json.loads((out_dir / "report.json").read_text())
    assert documented["Top level"] == set(data)
    for nested in ("phases", "expectations", "events"):
        assert data[nested], nested
        assert documented[nested] == set(data[nested][0]), nested


def test_a_full_disk_under_the_report_is_a_clear_error(tmp_path, capsys):
    """Issue 13: the HIL report writer died with a traceback on ENOSPC.  ``/dev/full`` answers every write with
    ENOSPC; the report file is made to point there."""
    from flightsw.cli import main

    root = Path(__file__).resolve().parent.parent
    scenario = tmp_path / "short.yaml"
    text = (root / "config" / "hil" / "kill-test.yaml").read_text()
    scenario.write_text(text.replace("max_duration_s: 3600", "max_duration_s: 10")
                        .replace("flight: ../flight-hil.yaml", f"flight: {root / 'config' / 'flight-hil.yaml'}"))
    out = tmp_path / "out"
    out.mkdir()
    (out / "report.txt").symlink_to("/dev/full")
    code = main(["hil", "--scenario", str(scenario), "--out", str(out), "--no-progress", "--log-level", "error"])
    err = capsys.readouterr().err
    assert code == 2
    assert "the report could not be written: No space left on device" in err and "Traceback" not in err
