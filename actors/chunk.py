"""The actor's side of a running chunk: heartbeat, progress, cancel, and how it ended."""

from __future__ import annotations

import importlib
import logging

from actors import execution, progress
from actors.broker import Runtime
from algotcha import engine_requests
from algotcha.db.jobs import JobRow
from algotcha.errors import UnavailableError, ValidationError
from algotcha.services import chunks, sweeps, walkforwards

logger = logging.getLogger(__name__)

# The worker whose chunk is a job's last merges it here, in the worker process, while every
# other worker waits for the job to end: importing these there (numba's dispatchers, about
# 0.6 s) made the first merge of each worker serial time at the end of the job.
MERGE_MODULES = ("engine.sweep", "engine.walkforward")


def warm_up() -> None:
    """Import what a merge needs before the first job, not in its serial tail."""
    for name in MERGE_MODULES:
        importlib.import_module(name)


class ChunkTicker:
    """progress.Ticker for a chunk: heartbeats the chunk and its job, says when to stop."""

    def __init__(self, rt: Runtime, claimed: chunks.Claimed) -> None:
        self.rt, self.claimed = rt, claimed

    def tick(self, units_done: int) -> bool:
        if progress.shutting_down.is_set():
            return True
        try:
            return chunks.record_progress(
                self.rt.pool, self.claimed.chunk, self.rt.worker_id, units_done
            )
        except UnavailableError:
            # As for a backtest: a long outage makes the chunk stale and another worker redoes it.
            logger.warning(
                "event=progress_not_recorded job=%s chunk=%s",
                self.claimed.chunk.job_id,
                self.claimed.chunk.chunk,
            )
            return False


def run(rt: Runtime, claimed: chunks.Claimed) -> None:
    """Run one claimed chunk in a backtest process and settle it; the last one merges."""
    walk_forward = claimed.job.kind == "walk_forward"
    kind = walkforwards if walk_forward else sweeps  # what a unit is: its rows and merge
    outcome: execution.Finished | execution.Outcome
    try:
        task = _task(claimed)
    except ValidationError as exc:  # stored before a check became stricter
        outcome = execution.Rejected(exc.detail)
    else:
        outcome = execution.run_chunk(
            task,
            rt.settings.data_dir,
            time_limit_s=rt.settings.backtest_time_limit_s,
            tick_interval_s=rt.settings.heartbeat_interval_s,
            on_tick=ChunkTicker(rt, claimed).tick,
            delay_s=rt.settings.debug_backtest_delay_s,
        )
    finished: JobRow | None = None
    match outcome:
        case execution.Finished(result):
            rows, merge = kind.unit_rows(result), kind.merge
            elapsed_ms = float(result["elapsed_ms"])
            finished = chunks.complete(rt.pool, claimed, rt.worker_id, rows, elapsed_ms, merge)
        case execution.Rejected(message):
            finished = chunks.fail(rt.pool, claimed, message, outcome="failed")
        case execution.Crashed(message):
            finished = chunks.fail(rt.pool, claimed, message, outcome="crashed")
        case execution.TimedOut(limit_s):
            what = "a fold of the walk-forward" if walk_forward else "a chunk of the sweep"
            message = f"{what} ran over the time limit of {limit_s:g} s"
            finished = chunks.fail(rt.pool, claimed, message, outcome="timed_out")
        case execution.Stopped():
            chunks.stop(rt.pool, rt.broker, claimed, rt.worker_id)
    if finished is not None:
        progress.notify(rt, finished)
        execution.idle(rt.settings.backtest_pretouch_bytes)
    elif isinstance(outcome, execution.Finished) and not chunks.any_claimable(rt.pool):
        # Every chunk is out, so this worker's part is over: its bars go now, not at its next
        # job, and its next job finds a prepared process. A recovered chunk reloads them.
        execution.idle(rt.settings.backtest_pretouch_bytes)


def _task(claimed: chunks.Claimed) -> execution.ChunkTask:
    """What the backtest process runs for this chunk: a walk-forward's chunk is its fold."""
    chunk, job = claimed.chunk, claimed.job
    if job.kind == "walk_forward":
        return execution.FoldTask(chunk.job_id, walkforwards.request_of(job), chunk.chunk)
    sweep = engine_requests.parse_sweep(job.payload, max_combinations=sweeps.STORED_LIMIT)
    return execution.SweepChunkTask(chunk.job_id, sweep, chunk.first_unit, chunk.end_unit)


def start(rt: Runtime, job: JobRow) -> None:
    """A chunked job just claimed (and cut): wake the other workers, one message per chunk
    but this one, and run its first chunk here."""
    chunks.wake(rt.broker, job.id, chunks.count(job) - 1)
    claimed = chunks.claim(rt.pool, rt.worker_id)
    if claimed is not None:
        run(rt, claimed)
