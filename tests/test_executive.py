"""The cyclic executive: rate divisors and offsets, slips (skip, never burst), failing tasks, statistics."""

import pytest

from flightsw.clock import SimClock
from flightsw.executive import Executive, TaskSpec


def make_executive(tasks, rate_hz=20.0):
    clock = SimClock(measure_real_work=False)
    return clock, Executive(clock, tasks, rate_hz=rate_hz, manage_gc=False)


@pytest.mark.parametrize("divisor, offset, expected_frames", [
    (1, 0, list(range(12))),
    (2, 0, [0, 2, 4, 6, 8, 10]),
    (2, 1, [1, 3, 5, 7, 9, 11]),
    (4, 3, [3, 7, 11]),
    (5, 2, [2, 7]),
])
def test_task_runs_on_frames_given_by_divisor_and_offset(divisor, offset, expected_frames):
    ran = []
    clock, executive = make_executive([TaskSpec("t", lambda now_s: ran.append(round(now_s / 0.05)), divisor,
                                                offset)])
    executive.run(max_frames=12)
    assert ran == expected_frames


def test_frames_start_on_their_slots_in_simulated_time():
    starts = []
    clock, executive = make_executive([TaskSpec("t", starts.append)], rate_hz=10.0)
    executive.run(max_frames=4)
    assert starts == pytest.approx([0.0, 0.1, 0.2, 0.3])
    assert executive.stats.slips == 0


def test_long_frame_skips_missed_slots_and_counts_them_never_bursts():
    starts = []
    clock = SimClock(measure_real_work=False)

    def task(now_s):
        starts.append(now_s)
        if len(starts) == 3:
            clock.advance(0.12)  # this frame takes 120 ms: slots at 150 and 200 ms are lost

    executive = Executive(clock, [TaskSpec("slow", task, budget_s=0.01)], manage_gc=False)
    executive.run(max_frames=5)
    assert starts == pytest.approx([0.0, 0.05, 0.10, 0.25, 0.30])
    assert executive.stats.slips == 2
    assert executive.task_stats["slow"].overruns == 1
    # The frame index counts slots of time, so rate-divided tasks stay on their schedule.
    assert executive.frame_index == 7


def test_slow_divided_task_stays_on_time_after_a_slip():
    seen = []
    clock = SimClock(measure_real_work=False)

    def slow_once(now_s):
        if not seen:
            clock.advance(0.06)  # one slot lost

    executive = Executive(clock, [TaskSpec("slow", slow_once), TaskSpec("every4", seen.append, divisor=4)],
                          manage_gc=False)
    executive.run(max_frames=8)  # slots 0, 2, 3, ... 8: slot 1 was lost
    assert seen == pytest.approx([0.0, 0.2, 0.4])


def test_task_that_raises_is_counted_and_the_frame_goes_on():
    ran_after = []
    calls = {"n": 0}

    def flaky(now_s):
        calls["n"] += 1
        if calls["n"] <= 3:
            raise OSError(121, "Remote I/O error")

    clock, executive = make_executive([TaskSpec("flaky", flaky), TaskSpec("after", ran_after.append)])
    executive.run(max_frames=3)
    stats = executive.task_stats["flaky"]
    assert stats.errors == 3
    assert stats.failing is True
    assert not executive.tasks_healthy()
    assert len(ran_after) == 3
    executive.run(max_frames=1)
    assert executive.task_stats["flaky"].failing is False
    assert executive.tasks_healthy()


def test_failing_task_is_logged_once_per_burst():
    from structlog.testing import capture_logs

    def always(now_s):
        raise ValueError("boom")

    clock, executive = make_executive([TaskSpec("bad", always)])
    with capture_logs() as logs:
        executive.run(max_frames=10)
    assert [entry["event"] for entry in logs] == ["task_failed"]
    assert executive.task_stats["bad"].errors == 10


def test_statistics_and_load():
    clock = SimClock(measure_real_work=False)

    def work(now_s):
        clock.advance(0.01)

    executive = Executive(clock, [TaskSpec("work", work, budget_s=0.02)], manage_gc=False)
    executive.run(max_frames=4)
    stats = executive.task_stats["work"]
    assert stats.runs == 4
    assert stats.last_s == pytest.approx(0.01)
    assert stats.mean_s == pytest.approx(0.01)
    assert stats.max_s == pytest.approx(0.01)
    assert stats.overruns == 0
    assert executive.stats.load == pytest.approx(0.2)
    assert executive.stats.load_mean == pytest.approx(0.2)


def test_request_stop_ends_the_loop():
    count = []

    def stopper(now_s):
        count.append(now_s)
        if len(count) == 3:
            executive.request_stop()

    clock, executive = make_executive([TaskSpec("stopper", stopper)])
    executive.run()
    assert len(count) == 3


@pytest.mark.parametrize("divisor, offset", [(0, 0), (2, 2), (3, -1)])
def test_bad_task_table_rows_are_rejected(divisor, offset):
    with pytest.raises(ValueError):
        TaskSpec("x", lambda now_s: None, divisor, offset)


def test_duplicate_task_names_are_rejected():
    with pytest.raises(ValueError):
        make_executive([TaskSpec("a", lambda now_s: None), TaskSpec("a", lambda now_s: None)])


def test_gc_is_frozen_after_start_up_collected_in_slack_and_restored_after_the_loop():
    import gc

    seen = []
    kept = []

    def allocate(now_s):
        seen.append(gc.isenabled())
        kept.append([[] for _ in range(400)])  # container objects the young generation must track

    executive = Executive(SimClock(), [TaskSpec("allocate", allocate)], manage_gc=True)
    executive.run(max_frames=6)
    assert seen == [True, False, False, False, False, False]
    assert executive.stats.gc_young >= 2  # 400 new containers a frame: a young collection every other frame
    assert gc.isenabled()
