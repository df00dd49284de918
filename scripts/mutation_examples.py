"""Issue 22's examples of changes no test used to catch, each applied by hand to a copy of the tree: the tests named
for it must fail.  Run with the project's interpreter: ``.venv/bin/python scripts/mutation_examples.py [WORDS]``
(only the examples whose name contains WORDS).  Exits non-zero when a test misses its example."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: (example, file, the original text, the mutated text, the tests that must fail)
CHECKS = [
    ("dwell kept while another reason holds", "flightsw/rules/termination.py",
     "            dwells.append(_NOT_HOLDING[reason])\n            continue", "            continue",
     ["tests/test_rules_termination.py::test_a_reason_that_stops_holding_resets_its_dwell_while_another_holds"]),
    ("geofence and -> or", "flightsw/rules/termination.py",
     "finite(latitude_deg, longitude_deg) and not point_in_polygon",
     "finite(latitude_deg, longitude_deg) or not point_in_polygon",
     ["tests/test_termination_edges.py::test_a_flight_inside_the_geofence_is_never_cut_by_it"]),
    ("three-vertex geofence", "flightsw/rules/termination.py", "len(mission.geofence) >= 3",
     "len(mission.geofence) > 3",
     ["tests/test_termination_edges.py::test_a_three_vertex_geofence_is_a_geofence"]),
    ("three-vertex launch box", "flightsw/rules/release.py", "if len(box) < 3:", "if len(box) <= 3:",
     ["tests/test_release_edges.py::test_a_three_vertex_launch_box_is_a_launch_box"]),
    ("launch box without a valid position skipped", "flightsw/rules/release.py",
     '''    elif not (est.position_valid and finite(est.latitude_deg, est.longitude_deg)):
        fail("launch_box", "no valid position")
''', "",
     ["tests/test_release_edges.py::test_the_launch_box_is_never_passed_without_a_position_that_is_a_number",
      "tests/test_release_edges.py::test_a_gps_fix_needs_a_valid_position"]),
    ("switch-off never retried", "flightsw/actuators.py",
     "            if line not in self._retry_off:\n                self._retry_off.append(line)\n", "",
     ["tests/test_actuators.py::test_a_deactivate_that_fails_is_retried_every_update_until_it_works"]),
    ("force_safe removed", "flightsw/actuators.py", "            self.outputs.force_safe()\n", "",
     ["tests/test_actuators.py::test_safe_falls_back_to_the_boards_force_safe_when_a_line_breaks_it"]),
    ("zero-flow guard (altitude)", "flightsw/rules/altitude.py",
     'if params["ALT_BAL_TOTAL"] <= 0.0 or flow <= 0.0:', 'if params["ALT_BAL_TOTAL"] <= 0.0:',
     ["tests/test_altitude_edges.py::test_no_ballast_declared_or_no_flow_drops_nothing_and_never_divides_by_zero"]),
    ("no-ballast guard (cutdown dump time)", "flightsw/rules/cutdown.py",
     "    if not ballast_remaining_kg > 0.0:\n        return 0.0\n", "",
     ["tests/test_cutdown_edges.py::test_the_dump_lasts_the_ballast_left_at_the_valve_flow_up_to_its_limit",
      "tests/test_cutdown_edges.py::test_any_ballast_left_is_dumped_before_a_waiting_cut"]),
    ("no-ballast guard (cutdown dump stage)", "flightsw/rules/cutdown.py",
     '    if not remaining_kg > 0.0:\n        why = "ballast dumped"\n    elif', "    if",
     ["tests/test_cutdown_edges.py::test_each_transition_latches_commands_and_tells_exactly_this"]),
    ("None flight duration (guard removed)", "flightsw/rules/termination.py",
     "return now_s - launch_s if finite(launch_s) else NAN", "return now_s - launch_s",
     ["tests/test_termination_edges.py::test_no_launch_time_means_no_flight_duration_and_no_max_duration_cut"]),
    ("NaN flight duration treated as over", "flightsw/rules/termination.py",
     'if flight_s > params["TRM_MAX_FLT_S"] and finite(flight_s):', 'if not flight_s <= params["TRM_MAX_FLT_S"]:',
     ["tests/test_termination_edges.py::test_no_launch_time_means_no_flight_duration_and_no_max_duration_cut"]),
    ("empty hopper at least 1 kg", "flightsw/rules/altitude.py",
     'return max(0.0, params["ALT_BAL_TOTAL"] - state.latches.ballast_used_kg)',
     'return max(1.0, params["ALT_BAL_TOTAL"] - state.latches.ballast_used_kg)',
     ["tests/test_altitude_edges.py::test_an_empty_hopper_has_no_ballast_left_not_even_the_reserve"]),
    ("release altitude window exclusive", "flightsw/rules/release.py",
     "elif not low <= est.altitude_m <= high:", "elif not low < est.altitude_m < high:",
     ["tests/test_release_edges.py::test_each_window_is_inclusive_and_its_failure_names_the_figures"]),
    ("release rate window exclusive", "flightsw/rules/release.py",
     "elif not low <= est.vertical_rate_mps <= high:", "elif not low < est.vertical_rate_mps < high:",
     ["tests/test_release_edges.py::test_each_window_is_inclusive_and_its_failure_names_the_figures"]),
    ("release GO window exclusive", "flightsw/rules/release.py",
     'elif not 0.0 <= now_s - go_s <= params["REL_GO_WINDOW_S"]:',
     'elif not 0.0 <= now_s - go_s < params["REL_GO_WINDOW_S"]:',
     ["tests/test_release_edges.py::test_each_window_is_inclusive_and_its_failure_names_the_figures"]),
    ("separation window exclusive", "flightsw/rules/release.py",
     'within = inputs.now_s - fired_s <= params["REL_SEP_WIN_S"]',
     'within = inputs.now_s - fired_s < params["REL_SEP_WIN_S"]',
     ["tests/test_release_edges.py::test_separation_is_seen_at_its_thresholds_within_its_window"]),
    ("separation lift threshold exclusive", "flightsw/rules/release.py",
     'lift >= params["REL_SEP_LIFT"]', 'lift > params["REL_SEP_LIFT"]',
     ["tests/test_release_edges.py::test_separation_is_seen_at_its_thresholds_within_its_window"]),
    ("separation rise threshold exclusive", "flightsw/rules/release.py",
     'rise >= params["REL_SEP_DV"]', 'rise > params["REL_SEP_DV"]',
     ["tests/test_release_edges.py::test_separation_is_seen_at_its_thresholds_within_its_window"]),
    ("release arm timeout inclusive (step)", "flightsw/rules/release.py",
     'elif math.isfinite(state.armed_s) and now_s - state.armed_s > params["REL_ARM_TMO_S"]:',
     'elif math.isfinite(state.armed_s) and now_s - state.armed_s >= params["REL_ARM_TMO_S"]:',
     ["tests/test_release_edges.py::test_each_release_step_latches_commands_and_tells_exactly_this"]),
    ("release arm timeout inclusive (request)", "flightsw/rules/release.py",
     'if math.isfinite(state.armed_s) and now_s - state.armed_s > params["REL_ARM_TMO_S"]:\n        return Outcome',
     'if math.isfinite(state.armed_s) and now_s - state.armed_s >= params["REL_ARM_TMO_S"]:\n        return Outcome',
     ["tests/test_release_edges.py::test_each_ground_request_answers_latches_and_tells_exactly_this"]),
    ("arm settle exclusive", "flightsw/actuators.py",
     'now_s - state.armed_s >= self.params["ACT_ARM_SETTLE_S"]',
     'now_s - state.armed_s > self.params["ACT_ARM_SETTLE_S"]',
     ["tests/test_actuators_edges.py::test_a_chain_may_fire_once_armed_exactly_the_settle_time"]),
    ("ceiling inclusive", "flightsw/rules/termination.py",
     'est.altitude_m > params["TRM_CEIL_ALT"]', 'est.altitude_m >= params["TRM_CEIL_ALT"]',
     ["tests/test_termination_edges.py::test_a_reason_holds_only_strictly_beyond_its_limit"]),
    ("dump altitude inclusive", "flightsw/flightlogic.py",
     'est.altitude_m > params["TRM_DUMP_MIN_ALT"]', 'est.altitude_m >= params["TRM_DUMP_MIN_ALT"]',
     ["tests/test_flightlogic_edges.py::test_a_cut_that_may_dump_dumps_ballast_only_above_the_dump_altitude"]),
    ("separation detection inclusive", "flightsw/flightlogic.py",
     'est.vertical_rate_mps < -params["TRM_SEP_RATE"]', 'est.vertical_rate_mps <= -params["TRM_SEP_RATE"]',
     ["tests/test_flightlogic_edges.py::test_separation_is_sinking_faster_than_the_separation_rate_for_its_dwell"]),
    ("separation timeout exclusive", "flightsw/rules/cutdown.py",
     'if inputs.report.firing or elapsed_s < params["TRM_SEP_TMO_S"]:',
     'if inputs.report.firing or elapsed_s <= params["TRM_SEP_TMO_S"]:',
     ["tests/test_cutdown_edges.py::test_the_next_attempt_fires_once_the_separation_timeout_is_reached"]),
]

def check(name: str, path: str, old: str, new: str, tests: list[str], work: Path) -> bool:
    """Apply one example to a fresh copy of the tree in ``work``; True when its tests fail."""
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    for folder in ("flightsw", "hal", "hil", "config", "tests"):
        shutil.copytree(ROOT / folder, work / folder, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", work)
    text = (work / path).read_text()
    if text.count(old) != 1:
        print(f"!!! {name}: the original text is found {text.count(old)} times in {path}: update the example")
        return False
    (work / path).write_text(text.replace(old, new))
    env = {**os.environ, "PYTHONPATH": str(work)}
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *tests], cwd=work,
                          capture_output=True, text=True, env=env)
    caught = done.returncode == 1  # tests failed (2 and more: the run itself broke)
    summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr.strip()[-200:]
    print(f"{'caught' if caught else 'MISSED'}  {name}: {summary}")
    return caught


def main(argv: list[str]) -> int:
    words = " ".join(argv)
    with tempfile.TemporaryDirectory() as scratch:
        results = [check(*example, work=Path(scratch) / "tree") for example in CHECKS if words in example[0]]
    print(f"{sum(results)} of {len(results)} examples caught")
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
