"""The HIL flight report: a text summary, a JSON result file, a KML track, PNG plots and a console progress bar.

:func:`format_summary` is what ``flightsw hil`` prints at the end of a run; :func:`write_report` writes
``report.txt``, ``report.json``, ``track.kml`` and (when matplotlib is importable) ``flight.png`` into a
directory.  Long records are thinned before plotting and before the KML track so a 48 h flight (172,800 samples)
is written in well under two seconds.
"""

from __future__ import annotations

import bisect
import json
import math
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any, Callable, TextIO

from flightsw.geo import distance_m
from flightsw.phase import Phase
from hil.record import PhaseSpan, RunRecord

PLOT_MAX_POINTS = 4000  # samples per plotted line
KML_MAX_POINTS = 5000  # vertices of the KML flight path
KML_NAMESPACE = "http://www.opengis.net/kml/2.2"
_PHASE_NAMES = {phase.value: phase.name for phase in Phase}
_PHASE_COLOURS = {"PREFLIGHT": "#9e9e9e", "ASCENT": "#4c9be8", "FLOAT": "#59b85c", "DESCENT": "#f0a030",
                  "LANDED": "#8d6e63", "TERMINATION": "#e04848"}
_KML_STYLES = {"path": ("LineStyle", "ff2020e0"), "launch": ("IconStyle", "ff3c8b2e"),
               "release": ("IconStyle", "ff9b27b0"), "termination": ("IconStyle", "ff2828c6"),
               "landing": ("IconStyle", "ff636e8d")}
_MARKERS = {"release": ("*", "#b0279b"), "termination": ("X", "#c62828")}  # on the altitude plot
_COMPASS = ("N", "NNE", "NE", "ENE", "E", "ESE", "SE", "SSE", "S", "SSW", "SW", "WSW", "W", "WNW", "NW", "NNW")


def format_hms(seconds: float) -> str:
    """``seconds`` as ``h:mm:ss`` (hours may exceed 24); ``-`` when not finite."""
    if not math.isfinite(seconds):
        return "-"
    sign = "-" if seconds < 0 else ""
    total = int(round(abs(seconds)))
    return f"{sign}{total // 3600}:{total // 60 % 60:02d}:{total % 60:02d}"


def downsample_indices(count: int, max_points: int) -> list[int]:
    """Indices of at most about ``max_points`` evenly strided rows out of ``count``, always keeping the last row."""
    if count <= 0:
        return []
    stride = max(1, math.ceil(count / max(1, max_points)))
    indices = list(range(0, count, stride))
    if indices[-1] != count - 1:
        indices.append(count - 1)
    return indices


def bearing_deg(lat_a_deg: float, lon_a_deg: float, lat_b_deg: float, lon_b_deg: float) -> float:
    """Initial great-circle bearing from A to B, degrees clockwise from true north in ``[0, 360)``."""
    phi_a, phi_b = math.radians(lat_a_deg), math.radians(lat_b_deg)
    d_lambda = math.radians(lon_b_deg - lon_a_deg)
    y = math.sin(d_lambda) * math.cos(phi_b)
    x = math.cos(phi_a) * math.sin(phi_b) - math.sin(phi_a) * math.cos(phi_b) * math.cos(d_lambda)
    return math.degrees(math.atan2(y, x)) % 360.0


def phase_spans(record: RunRecord) -> list[PhaseSpan]:
    """The record's phase spans, or spans rebuilt from the sampled phase column when the runner left none."""
    if record.phases:
        return list(record.phases)
    s = record.samples
    spans: list[PhaseSpan] = []
    for time_s, number in zip(s.time_s, s.phase):
        name = _PHASE_NAMES.get(number, str(number))
        if spans:
            spans[-1].end_s = time_s
        if not spans or spans[-1].phase != name:
            spans.append(PhaseSpan(name, time_s, time_s))
    return spans


def _f(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _fmt(value: Any, spec: str, unit: str = "") -> str:
    number = _f(value)
    return f"{number:{spec}}{unit}" if math.isfinite(number) else "-"


def _launch_point(record: RunRecord) -> tuple[float, float, float]:
    """(latitude_deg, longitude_deg, altitude_m) of the launch: the launch dict, else the first sample."""
    s = record.samples
    lat, lon, alt = (_f(record.launch.get(k, math.nan)) for k in ("latitude_deg", "longitude_deg", "altitude_m"))
    if len(s):
        lat = lat if math.isfinite(lat) else s.latitude_deg[0]
        lon = lon if math.isfinite(lon) else s.longitude_deg[0]
        alt = alt if math.isfinite(alt) else s.altitude_m[0]
    return lat, lon, alt


def landing_geometry(record: RunRecord) -> tuple[float, float] | None:
    """(distance_km, bearing_deg) of the landing point from the launch point; None without both positions."""
    lat0, lon0, _ = _launch_point(record)
    lat1, lon1 = _f(record.landing.get("latitude_deg")), _f(record.landing.get("longitude_deg"))
    if not all(math.isfinite(v) for v in (lat0, lon0, lat1, lon1)):
        return None
    return distance_m(lat0, lon0, lat1, lon1) / 1000.0, bearing_deg(lat0, lon0, lat1, lon1)


def _sample_at(record: RunRecord, time_s: float) -> int | None:
    """Index of the first sample at or after ``time_s`` (the last one if the time is past the end)."""
    count = len(record.samples)
    if count == 0 or not math.isfinite(time_s):
        return None
    return min(bisect.bisect_left(record.samples.time_s, time_s), count - 1)


def termination_event(record: RunRecord) -> tuple[str, float] | None:
    """(label, time_s) of the flight-ending event: the TERMINATION phase start, else the burst or cutdown event.

    A burst without an event is placed at the highest truth altitude sample.  None when the flight did not end by
    termination, burst or cutdown.
    """
    ended = record.ended_by.lower()
    key = "burst" if "burst" in ended else "cutdown" if "cutdown" in ended else ""
    label = key.capitalize() or "Termination"
    for span in phase_spans(record):
        if span.phase.upper() == "TERMINATION":
            return label, span.start_s
    if not key:
        return None
    for time_s, name, _severity, text in record.events:
        if key in name.lower() or key in text.lower():
            return label, time_s
    if key == "burst" and len(record.samples):
        altitude = record.samples.altitude_m
        return label, record.samples.time_s[altitude.index(max(altitude))]
    return None


def format_summary(record: RunRecord) -> str:
    """A short, aligned plain-text report of the run, ending with ``RESULT: PASS`` or ``RESULT: FAIL``."""
    speedup = record.duration_s / record.wall_time_s if record.wall_time_s > 0 else math.nan
    lines = [f"HIL flight report: scenario {record.scenario!r}, seed {record.seed}",
             f"  Simulated         {format_hms(record.duration_s)} in {record.wall_time_s:.1f} s wall "
             f"(x{_fmt(speedup, ',.0f')})",
             f"  Max altitude      {_fmt(record.max_altitude_m, ',.0f', ' m')}"]
    spans = phase_spans(record)
    if spans:
        lines.append(f"  {'Phase':<16}  {'start':>9}  {'end':>9}  {'duration':>9}")
        lines += [f"  {span.phase:<16}  {format_hms(span.start_s):>9}  {format_hms(span.end_s):>9}  "
                  f"{format_hms(span.end_s - span.start_s):>9}" for span in spans]
    ended = record.ended_by or "-"
    lines.append(f"  Ended by          {ended}" + (f" ({record.termination_reason})" if record.termination_reason
                                                  else ""))
    if record.release:
        r = record.release
        lines.append(f"  Release           t={format_hms(_f(r.get('time_s')))}  "
                     f"alt {_fmt(r.get('altitude_m'), ',.0f', ' m')}  at {_fmt(r.get('latitude_deg'), '.5f')}, "
                     f"{_fmt(r.get('longitude_deg'), '.5f')}  vz {_fmt(r.get('vertical_rate_mps'), '+.2f', ' m/s')}")
    else:
        lines.append("  Release           none")
    had_float = record.float_time_s > 0 or any(span.phase.upper() == "FLOAT" for span in spans)
    if had_float:
        fraction = _fmt(100.0 * record.float_hold_fraction, ".1f", "%")
        lines.append(f"  Float hold        {fraction} of {format_hms(record.float_time_s)} within "
                     f"+/-{record.float_hold_band_m:.0f} m of target")
    lines.append(f"  Ballast used      {record.ballast_start_kg - record.ballast_end_kg:.3f} kg "
                 f"({record.ballast_start_kg:.3f} -> {record.ballast_end_kg:.3f} kg)")
    geometry = landing_geometry(record)
    if record.landing:
        where = f"{_fmt(record.landing.get('latitude_deg'), '.5f')}, {_fmt(record.landing.get('longitude_deg'), '.5f')}"
        if geometry:
            distance_km, bearing = geometry
            where += f"  {distance_km:.1f} km at {bearing:03.0f} deg ({_COMPASS[round(bearing / 22.5) % 16]})" \
                     " from launch"
        lines.append(f"  Landing           {where}")
    else:
        lines.append("  Landing           none")
    lines.append(f"  Restarts          {record.restarts}   release fires {record.release_fire_count}   "
                 f"cutdown fires {record.cutdown_fire_count}")
    for index, path in enumerate(record.tlog_paths):
        lines.append(f"  {'Telemetry logs' if index == 0 else '':<16}  {path}")
    lines.append(f"  Expectations      {sum(p for _, p, _ in record.expectations)}/{len(record.expectations)} passed")
    width = max((len(name) for name, _, _ in record.expectations), default=0)
    lines += [f"    {'PASS' if passed else 'FAIL'}  {name:<{width}}  {detail}".rstrip()
              for name, passed, detail in record.expectations]
    lines.append(f"RESULT: {'PASS' if record.passed else 'FAIL'}")
    return "\n".join(lines)


def _json_safe(value: Any) -> Any:
    """``value`` with non-finite floats as None, tuples as lists and unknown objects as strings."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if value is None or isinstance(value, (bool, int, str)):
        return value
    return str(value)


def summary_dict(record: RunRecord) -> dict[str, Any]:
    """The scalar results, phases, events and expectations of the run as a JSON-ready dict (NaN becomes None)."""
    geometry = landing_geometry(record)
    ending = termination_event(record)
    result = {
        "scenario": record.scenario, "seed": record.seed, "passed": record.passed,
        "duration_s": record.duration_s, "wall_time_s": record.wall_time_s,
        "speedup": record.duration_s / record.wall_time_s if record.wall_time_s > 0 else None,
        "sample_count": len(record.samples), "max_altitude_m": record.max_altitude_m,
        "ended_by": record.ended_by, "termination_reason": record.termination_reason,
        "termination_time_s": ending[1] if ending else None,
        "phases": [{"phase": s.phase, "start_s": s.start_s, "end_s": s.end_s, "duration_s": s.end_s - s.start_s}
                   for s in phase_spans(record)],
        "launch": record.launch, "release": record.release, "landing": record.landing,
        "landing_distance_km": geometry[0] if geometry else None,
        "landing_bearing_deg": geometry[1] if geometry else None,
        "ballast_start_kg": record.ballast_start_kg, "ballast_end_kg": record.ballast_end_kg,
        "ballast_used_kg": record.ballast_start_kg - record.ballast_end_kg,
        "float_time_s": record.float_time_s, "float_hold_fraction": record.float_hold_fraction,
        "float_hold_band_m": record.float_hold_band_m, "restarts": record.restarts,
        "release_fire_count": record.release_fire_count, "cutdown_fire_count": record.cutdown_fire_count,
        "tlog_paths": record.tlog_paths,
        "expectations": [{"name": n, "passed": bool(p), "detail": d} for n, p, d in record.expectations],
        "events": [{"time_s": t, "name": n, "severity": sev, "text": txt} for t, n, sev, txt in record.events],
    }
    return _json_safe(result)


def key_points(record: RunRecord) -> list[tuple[str, str, float, float, float, float, str]]:
    """The known flight points, in order: launch, release, termination (burst/cutdown) and landing.

    Each is ``(kind, label, time_s, latitude_deg, longitude_deg, altitude_m, description)``; ``kind`` is one of
    ``launch``, ``release``, ``termination``, ``landing``.  A point without a finite position is left out.
    """
    s = record.samples
    lat, lon, alt = _launch_point(record)
    points = [("launch", "Launch", s.time_s[0] if len(s) else 0.0, lat, lon, alt if math.isfinite(alt) else 0.0,
               f"start {record.launch.get('start_utc', '-')}")]
    r = record.release
    if r:
        points.append(("release", "Release", _f(r.get("time_s")), _f(r.get("latitude_deg")),
                       _f(r.get("longitude_deg")), _f(r.get("altitude_m")),
                       f"t={format_hms(_f(r.get('time_s')))} vz {_fmt(r.get('vertical_rate_mps'), '+.2f', ' m/s')}"))
    ending = termination_event(record)
    if ending and (i := _sample_at(record, ending[1])) is not None:
        points.append(("termination", ending[0], ending[1], s.latitude_deg[i], s.longitude_deg[i], s.altitude_m[i],
                       f"t={format_hms(ending[1])} {record.termination_reason}".strip()))
    if record.landing:
        geometry = landing_geometry(record)
        text = f"t={format_hms(_f(record.landing.get('time_s')))}"
        text += f", {geometry[0]:.1f} km at {geometry[1]:.0f} deg from launch" if geometry else ""
        points.append(("landing", "Landing", _f(record.landing.get("time_s")), _f(record.landing.get("latitude_deg")),
                       _f(record.landing.get("longitude_deg")), s.altitude_m[-1] if len(s) else 0.0, text))
    return [p for p in points if math.isfinite(p[3]) and math.isfinite(p[4])]


def kml_document(record: RunRecord, max_points: int = KML_MAX_POINTS) -> str:
    """A KML 2.2 document: the flight path (``lon,lat,alt`` with absolute altitude) and the key-point placemarks."""
    s = record.samples
    root = ET.Element("kml", xmlns=KML_NAMESPACE)
    doc = ET.SubElement(root, "Document")
    ET.SubElement(doc, "name").text = f"{record.scenario} (seed {record.seed})"
    ET.SubElement(doc, "description").text = f"ended by {record.ended_by or '-'}; " \
                                             f"result {'PASS' if record.passed else 'FAIL'}"
    for style_id, (tag, colour) in _KML_STYLES.items():  # KML colours are aabbggrr
        ET.SubElement(ET.SubElement(ET.SubElement(doc, "Style", id=style_id), tag), "color").text = colour
    points = [(s.longitude_deg[i], s.latitude_deg[i], s.altitude_m[i]) for i in downsample_indices(len(s), max_points)]
    points = [p for p in points if all(math.isfinite(v) for v in p)]
    if points:
        path = ET.SubElement(doc, "Placemark")
        ET.SubElement(path, "name").text = "Flight path"
        ET.SubElement(path, "styleUrl").text = "#path"
        line = ET.SubElement(path, "LineString")
        ET.SubElement(line, "altitudeMode").text = "absolute"
        ET.SubElement(line, "coordinates").text = "\n".join(f"{lo:.7f},{la:.7f},{al:.1f}" for lo, la, al in points)
    for kind, label, _time_s, lat, lon, alt, description in key_points(record):
        mark = ET.SubElement(doc, "Placemark")
        ET.SubElement(mark, "name").text = label
        ET.SubElement(mark, "description").text = description
        ET.SubElement(mark, "styleUrl").text = f"#{kind}"
        point = ET.SubElement(mark, "Point")
        ET.SubElement(point, "altitudeMode").text = "absolute"
        ET.SubElement(point, "coordinates").text = f"{lon:.7f},{lat:.7f},{alt if math.isfinite(alt) else 0.0:.1f}"
    ET.indent(root, space=" ")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _write_plots(record: RunRecord, out_dir: Path) -> list[Path] | None:
    """Write the 4-panel ``flight.png`` (altitude, vertical rate, ballast, phase against time).

    Returns the paths written, or None when matplotlib (or numpy) is not importable.
    """
    try:
        import numpy as np
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        return None
    s = record.samples
    idx = np.asarray(downsample_indices(len(s), PLOT_MAX_POINTS), dtype=np.intp)

    def column(name: str) -> Any:
        return np.frombuffer(getattr(s, name), dtype=np.int8 if name == "phase" else np.float64)[idx]

    long_run = record.duration_s > 7200 or (len(s) and s.time_s[-1] > 7200)
    scale, unit = (3600.0, "h") if long_run else (60.0, "min")
    t = column("time_s") / scale
    spans = phase_spans(record)
    total = (spans[-1].end_s - spans[0].start_s) if spans else 0.0
    marks = key_points(record)

    fig = Figure(figsize=(11, 10), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(4, 1, sharex=True, height_ratios=[3, 2, 1.5, 1.2])
    fig.suptitle(f"{record.scenario} (seed {record.seed}): ended by {record.ended_by or '-'}, "
                 f"RESULT {'PASS' if record.passed else 'FAIL'}")
    for ax in axes:
        for span in spans:
            ax.axvspan(span.start_s / scale, span.end_s / scale, color=_PHASE_COLOURS.get(span.phase.upper(), "#ccc"),
                       alpha=0.12, linewidth=0)
        ax.grid(True, alpha=0.3)
    for span in spans:
        if total > 0 and (span.end_s - span.start_s) > 0.04 * total:
            axes[0].text((span.start_s + span.end_s) / 2 / scale, 0.97, span.phase, ha="center", va="top",
                         fontsize=8, transform=axes[0].get_xaxis_transform(), color="#333")
    ax = axes[0]
    ax.plot(t, column("altitude_m") / 1000, label="truth", color="#1f4e9c", linewidth=1.4)
    ax.plot(t, column("estimated_altitude_m") / 1000, label="estimate", color="#e8772e", linewidth=0.9,
            linestyle="--")
    target = column("float_target_m")
    if np.any(np.isfinite(target) & (target > 0)):
        ax.plot(t, np.where(target > 0, target, np.nan) / 1000, label="float target", color="#2e8b3c",
                linestyle=":", linewidth=1.4)
    for kind, label, time_s, _lat, _lon, alt, _text in marks:
        if kind in _MARKERS and math.isfinite(time_s) and math.isfinite(alt):
            ax.plot(time_s / scale, alt / 1000, _MARKERS[kind][0], color=_MARKERS[kind][1], markersize=11,
                    label=label.lower())
    ax.set_ylim(bottom=min(0.0, ax.get_ylim()[0]), top=ax.get_ylim()[1] * 1.12)  # room for the phase labels
    ax.set_ylabel("altitude (km)")
    ax.legend(loc="lower center", ncols=5, fontsize=8, framealpha=0.8)
    ax = axes[1]
    ax.plot(t, column("vertical_rate_mps"), label="truth", color="#1f4e9c", linewidth=1.0)
    ax.plot(t, column("estimated_vertical_rate_mps"), label="estimate", color="#e8772e", linewidth=0.7, alpha=0.9)
    ax.axhline(0.0, color="black", linewidth=0.6)
    ax.set_ylabel("vertical rate (m/s)")
    ax.legend(loc="lower left", ncols=2, fontsize=8, framealpha=0.8)
    axes[2].plot(t, column("ballast_kg"), color="#6a3d9a", linewidth=1.4)
    axes[2].set_ylabel("ballast (kg)")
    axes[3].step(t, column("phase"), where="post", color="#333", linewidth=1.2)
    axes[3].set_yticks(list(_PHASE_NAMES), list(_PHASE_NAMES.values()), fontsize=7)
    axes[3].set_ylabel("phase")
    axes[3].set_xlabel(f"time since start ({unit})")
    flight_png = out_dir / "flight.png"
    fig.savefig(flight_png)
    return [flight_png]


def write_report(record: RunRecord, out_dir: Path) -> list[Path]:
    """Write report.txt, report.json, track.kml and (with matplotlib) flight.png.

    ``out_dir`` is created if needed.  Returns the paths written, in that order.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    plots = _write_plots(record, out_dir)
    text = format_summary(record) + "\n\n"
    if plots is None:
        text += "Plots: skipped (matplotlib is not installed; pip install 'flightsw[report]')\n"
    else:
        text += "Plots: " + ", ".join(p.name for p in plots) + "\n"
    txt_path, json_path, kml_path = out_dir / "report.txt", out_dir / "report.json", out_dir / "track.kml"
    txt_path.write_text(text, encoding="utf-8")
    results = summary_dict(record)
    results["plots"] = [p.name for p in plots or []]
    json_path.write_text(json.dumps(results, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    kml_path.write_text(kml_document(record), encoding="utf-8")
    return [txt_path, json_path, kml_path, *(plots or [])]


class ProgressBar:
    """A one-line console progress bar for a simulated run: percent, simulated time and speed-up.

    ``total_s``: simulated seconds the run is expected to last.  ``stream``: where to draw (default
    ``sys.stderr``).  ``enabled``: None draws only when ``stream`` is a TTY.  ``clock``: wall-clock source in
    seconds.  :meth:`update` is cheap: it redraws at most once every :attr:`REDRAW_S` wall seconds.
    """

    REDRAW_S = 0.2
    WIDTH = 28

    def __init__(self, total_s: float, *, stream: TextIO | None = None, enabled: bool | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.total_s = float(total_s)
        self.stream = sys.stderr if stream is None else stream
        if enabled is None:
            try:
                enabled = bool(self.stream.isatty())
            except (AttributeError, ValueError, OSError):
                enabled = False
        self.enabled = enabled
        self._clock = clock
        self._start_wall_s = clock()
        self._next_draw_s = -math.inf
        self._sim_time_s = 0.0
        self._drawn_width = 0
        self._closed = False

    def update(self, sim_time_s: float) -> None:
        """Note the simulated time reached (seconds since the run started); redraws when it is time to."""
        self._sim_time_s = sim_time_s
        if not self.enabled or self._closed:
            return
        now = self._clock()
        if now >= self._next_draw_s:
            self._next_draw_s = now + self.REDRAW_S
            self._draw(now)

    def _draw(self, now_s: float) -> None:
        fraction = min(1.0, max(0.0, self._sim_time_s / self.total_s)) if self.total_s > 0 else 0.0
        filled = int(round(fraction * self.WIDTH))
        wall_s = now_s - self._start_wall_s
        speed = f"x{self._sim_time_s / wall_s:,.0f}" if wall_s > 0 else "x-"
        line = (f"[{'#' * filled}{'-' * (self.WIDTH - filled)}] {100.0 * fraction:5.1f}%  "
                f"sim {format_hms(self._sim_time_s)} / {format_hms(self.total_s)}  {speed}")
        padding = " " * max(0, self._drawn_width - len(line))
        self.stream.write("\r" + line + padding)
        self.stream.flush()
        self._drawn_width = len(line)

    def close(self) -> None:
        """Draw the final state and end the line (nothing when disabled); further updates are ignored."""
        if self.enabled and not self._closed:
            self._draw(self._clock())
            self.stream.write("\n")
            self.stream.flush()
        self._closed = True

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
