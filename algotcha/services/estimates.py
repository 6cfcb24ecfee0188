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
# Simulating more queued jobs than this per worker adds nothing: after it the queue
# drains at workers / duration jobs per second.
_SIMULATED_PER_WORKER = 16


@dataclass(frozen=True)
class QueueSnapshot:
    """What the estimate needs to know about the queue at one moment."""

    running: Sequence[tuple[float, int]]  # (elapsed seconds, progress 0-100) of each running job
    mean_duration_s: float | None
    workers: int


def remaining_s(elapsed_s: float, progress: int, mean_duration_s: float) -> float:
    """Time left for a running job: extrapolated from its progress once it has some."""
    if progress >= 5:
        return max(0.0, elapsed_s * (100 - progress) / progress)
    return max(0.0, mean_duration_s - elapsed_s)


def wait_s(ahead: int, snapshot: QueueSnapshot) -> float:
    """Seconds until a job with `ahead` queued jobs before it should start.

    Each live worker is free after its running job's remaining time (or at once when idle);
    the jobs ahead take the mean duration each on whichever worker is free first.
    """
    duration = snapshot.mean_duration_s or DEFAULT_DURATION_S
    workers = max(1, snapshot.workers, len(snapshot.running))
    free_at = sorted(remaining_s(e, p, duration) for e, p in snapshot.running)
    free_at = free_at[:workers] + [0.0] * (workers - len(free_at))
    heapq.heapify(free_at)
    simulated = min(ahead, workers * _SIMULATED_PER_WORKER)
    for _ in range(simulated):
        heapq.heapreplace(free_at, free_at[0] + duration)
    return free_at[0] + (ahead - simulated) * duration / workers


def minutes(seconds: float) -> int:
    """Whole minutes, rounded up, so "0" only ever means "now"."""
    return math.ceil(seconds / 60 - 1e-9) if seconds > 0 else 0
