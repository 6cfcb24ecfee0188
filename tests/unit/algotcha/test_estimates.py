from __future__ import annotations

from algotcha.services.estimates import QueueSnapshot, minutes, remaining_s, wait_s


def test_wait_is_zero_for_the_next_job_with_an_idle_worker() -> None:
    assert wait_s(0, QueueSnapshot(running=[], mean_duration_s=120, workers=1)) == 0


def test_wait_counts_the_running_job_and_the_jobs_ahead() -> None:
    # one worker, 30 s into a 120 s job with no progress yet, two jobs ahead
    snapshot = QueueSnapshot(running=[(30.0, 0)], mean_duration_s=120, workers=1)
    assert wait_s(2, snapshot) == 90 + 2 * 120


def test_wait_spreads_jobs_over_workers() -> None:
    snapshot = QueueSnapshot(running=[], mean_duration_s=60, workers=2)
    assert wait_s(1, snapshot) == 0  # the second worker is idle
    assert wait_s(2, snapshot) == 60
    assert wait_s(4, snapshot) == 120


def test_wait_of_a_long_queue_follows_the_drain_rate() -> None:
    snapshot = QueueSnapshot(running=[], mean_duration_s=10, workers=2)
    assert wait_s(100_000, snapshot) == 100_000 * 10 / 2


def test_remaining_uses_progress_once_there_is_some() -> None:
    assert remaining_s(30, 50, 1000) == 30
    assert remaining_s(30, 0, 100) == 70
    assert remaining_s(300, 0, 100) == 0


def test_wait_without_history_assumes_a_minute_per_job() -> None:
    assert wait_s(1, QueueSnapshot(running=[], mean_duration_s=None, workers=1)) == 60


def test_minutes_round_up_so_zero_means_now() -> None:
    assert [minutes(s) for s in (0, 0.5, 60, 61, 119.9)] == [0, 1, 1, 2, 2]


def test_a_running_sweep_delays_everyone_by_its_remaining_work_shared_by_the_workers() -> None:
    # 600 combinations x 2**20 bars left at 2**-16 s per combination-bar = 9,600 s of one
    # worker's time; two workers share it
    snapshot = QueueSnapshot(
        running=[], mean_duration_s=60, workers=2, unit_bar_s=2**-16,
        running_sweep_unit_bars=600 * 2**20,
    )  # fmt: skip
    assert wait_s(0, snapshot) == 4800
    assert wait_s(2, snapshot) == 4800 + 60


def test_a_queued_sweep_counts_for_those_behind_it_only() -> None:
    # queue: backtest id 1, sweep id 2 (1,000 x 2**16 bars at 2**-16 s: 1,000 s), backtest 3
    snapshot = QueueSnapshot(
        running=[], mean_duration_s=10, workers=1, unit_bar_s=2**-16,
        queued_sweeps=[(0, 2, 1000 * 2**16)],
    )  # fmt: skip
    assert wait_s(0, snapshot, (0, 1)) == 0
    assert wait_s(1, snapshot, (0, 2)) == 10  # the sweep waits for the backtest ahead
    # the backtest behind waits for both: the sweep counts as its work, not as a job
    assert wait_s(2, snapshot, (0, 3)) == 1000 + 10
    assert wait_s(3, snapshot) == 1000 + 2 * 10  # a new job joins the end


def test_before_any_chunk_is_measured_a_default_rate_applies() -> None:
    snapshot = QueueSnapshot(running=[], mean_duration_s=10, workers=1, running_sweep_unit_bars=1e9)
    assert wait_s(0, snapshot) == 1e9 * 8e-9
