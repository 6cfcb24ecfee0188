"""The actor's side of a running chunk: heartbeat, progress, cancel, and how it ended."""

from __future__ import annotations

import logging

from actors import execution, progress
from actors.broker import Runtime
from algotcha import engine_requests
from algotcha.db.jobs import JobRow
from algotcha.errors import UnavailableError, ValidationError
from algotcha.services import chunks, sweeps

logger = logging.getLogger(__name__)


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
    chunk = claimed.chunk
    outcome: execution.Finished | execution.Outcome
    try:
        request = engine_requests.parse_sweep(
            claimed.job.payload, max_combinations=sweeps.STORED_LIMIT
        )
    except ValidationError as exc:  # stored before a check became stricter
        outcome = execution.Rejected(exc.detail)
    else:
        task = execution.SweepChunkTask(chunk.job_id, request, chunk.first_unit, chunk.end_unit)
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
            rows = sweeps.unit_rows(result)
            finished = chunks.complete(
                rt.pool, claimed, rt.worker_id, rows, float(result["elapsed_ms"]), sweeps.merge
            )
        case execution.Rejected(message):
            finished = chunks.fail(rt.pool, claimed, message, outcome="failed")
        case execution.Crashed(message):
            finished = chunks.fail(rt.pool, claimed, message, outcome="crashed")
        case execution.TimedOut(limit_s):
            message = f"a chunk of the sweep ran over the time limit of {limit_s:g} s"
            finished = chunks.fail(rt.pool, claimed, message, outcome="timed_out")
        case execution.Stopped():
            chunks.stop(rt.pool, rt.broker, claimed, rt.worker_id)
    if finished is not None:
        execution.release_chunk_process()
        progress.notify(rt, finished)


def start(rt: Runtime, job: JobRow) -> None:
    """A chunked job just claimed (and cut): wake the other workers, one message per chunk
    but this one, and run its first chunk here."""
    chunks.wake(rt.broker, job.id, chunks.count(job) - 1)
    claimed = chunks.claim(rt.pool, rt.worker_id)
    if claimed is not None:
        run(rt, claimed)
