"""Queue position and wait estimates (pure arithmetic; the numbers come from services.jobs)."""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence
from dataclasses import dataclass

# Before any job has completed there is no history; assume a minute so the first users
# are told "about 1 min" rather than "0".
DEFAULT_DURATION_S = 60.0
# How many recent completed jobs the mean duration is taken over.
DURATION_SAMPLE = 50
# Before any sweep chunk has been measured: seconds per combination per bar, about the
# reference sweep's target (20 s for 1,000 combinations on 2.6 M bars).
DEFAULT_UNIT_BAR_S = 8e-9
# Simulating more queued jobs than this per worker adds nothing: after it the queue
# drains at workers / duration jobs per second.
_SIMULATED_PER_WORKER = 16


@dataclass(frozen=True)
class QueueSnapshot:
    """What the estimate needs to know about the queue at one moment."""

    running: Sequence[tuple[float, int]]  # (elapsed seconds, progress 0-100) of each running job
    mean_duration_s: float | None
    workers: int
    # Sweeps (chunked jobs), whose cost is measured in combinations x bars, not job durations:
    # the measured seconds per combination per bar, the combination-bars left in the running
    # ones, and each queued one as (-priority, id, combination-bars) in queue order.
    unit_bar_s: float | None = None
    running_sweep_unit_bars: float = 0.0
    queued_sweeps: Sequence[tuple[int, int, float]] = ()


def remaining_s(elapsed_s: float, progress: int, mean_duration_s: float) -> float:
    """Time left for a running job: extrapolated from its progress once it has some."""
    if progress >= 5:
        return max(0.0, elapsed_s * (100 - progress) / progress)
    return max(0.0, mean_duration_s - elapsed_s)


def wait_s(ahead: int, snapshot: QueueSnapshot, place: tuple[int, int] | None = None) -> float:
    """Seconds until a job with `ahead` queued jobs before it should start; `place` is its
    (-priority, id), None for a job joining the end of the queue.

    Each live worker is free after its running backtest's remaining time (or at once when
    idle) plus its share of the running sweeps: every worker takes their chunks, so what is
    left of them (combinations x bars x the measured seconds per combination per bar) is
    divided among the workers. The backtests ahead take the mean duration each on whichever
    worker is free first; a sweep ahead again occupies every worker for its share.
    """
    duration = snapshot.mean_duration_s or DEFAULT_DURATION_S
    workers = max(1, snapshot.workers, len(snapshot.running))
    per_unit_bar = snapshot.unit_bar_s or DEFAULT_UNIT_BAR_S
    sweeps_ahead = [
        work for key_priority, key_id, work in snapshot.queued_sweeps
        if place is None or (key_priority, key_id) < place
    ]  # fmt: skip
    sweeping_s = (snapshot.running_sweep_unit_bars + sum(sweeps_ahead)) * per_unit_bar / workers
    ahead = max(0, ahead - len(sweeps_ahead))
    free_at = sorted(remaining_s(e, p, duration) for e, p in snapshot.running)
    free_at = free_at[:workers] + [0.0] * (workers - len(free_at))
    heapq.heapify(free_at)
    simulated = min(ahead, workers * _SIMULATED_PER_WORKER)
    for _ in range(simulated):
        heapq.heapreplace(free_at, free_at[0] + duration)
    return sweeping_s + free_at[0] + (ahead - simulated) * duration / workers


def minutes(seconds: float) -> int:
    """Whole minutes, rounded up, so "0" only ever means "now"."""
    return math.ceil(seconds / 60 - 1e-9) if seconds > 0 else 0
