"""Chunked jobs (sweeps; walk-forward next): cut, claim, heartbeat, complete, merge, recover.

Nothing here knows what a unit is: a sweep's combination or a walk-forward fold. The kind
supplies how rows are stored and merged (services/sweeps.py); this module owns the life of
the chunks in PostgreSQL, as services/jobs.py owns the life of a job.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import dramatiq
import psycopg
from psycopg_pool import ConnectionPool

from algotcha import queues
from algotcha.config import Settings
from algotcha.db import job_chunks as job_chunk_db
from algotcha.db import jobs as job_db
from algotcha.db import workers as worker_db
from algotcha.db.job_chunks import ChunkRow, UnitRow
from algotcha.db.jobs import JobRow
from algotcha.db.pool import connection, transaction
from algotcha.errors import UnavailableError
from algotcha.services import jobs
from monitoring import metrics

logger = logging.getLogger(__name__)

# Enough chunks that the last ones, run while other workers have none left, are short (with
# 16, two workers finished the 1,000-combination reference sweep about half a chunk, 0.3 s,
# apart); few enough that each chunk's transaction (~15 ms: its rows, the job's count) and
# message stay a small share. A worker's process keeps the bars between its chunks.
CHUNKS_PER_JOB = 32


@dataclass(frozen=True)
class Claimed:
    """A chunk this worker now runs, with the job it belongs to."""

    chunk: ChunkRow
    job: JobRow


# Turns every stored row of a job, and the engine time of all its chunks, into its final
# result (the kind's merge).
Merge = Callable[[JobRow, list[UnitRow], float], dict[str, Any]]


def cut(units: int, *, chunks: int = CHUNKS_PER_JOB) -> list[tuple[int, int]]:
    """Consecutive [first, end) ranges covering `units`, as even as whole units allow.

    Consecutive units share indicators (the sweep's plan orders them so), which a chunk
    computes once.
    """
    count = max(1, min(units, chunks))
    return [(units * n // count, units * (n + 1) // count) for n in range(count)]


def chunks_of(job: JobRow) -> list[tuple[int, int]]:
    """The chunks of `job`: a walk-forward's folds share nothing a chunk could compute once,
    and each is a sweep of its own, so each fold is a chunk (its units are the fold's steps,
    the same count in every fold)."""
    units = job.units or 1
    if job.kind == "walk_forward":
        return cut(units, chunks=int(job.payload["walkForward"]["folds"]))
    return cut(units)


def count(job: JobRow) -> int:
    """How many chunks start() cuts `job` into."""
    return len(chunks_of(job))


def start(conn: psycopg.Connection, job: JobRow) -> int:
    """Cut a job just claimed into its chunks, in the claim's transaction; how many."""
    bounds = chunks_of(job)
    job_chunk_db.insert_chunks(conn, job.id, bounds)
    logger.info("event=job_chunked job=%s units=%s chunks=%s", job.id, job.units, len(bounds))
    return len(bounds)


def wake(broker: dramatiq.Broker, job_id: int, count: int) -> None:
    """One wake-up per chunk on the backtest queue: each idle worker takes one.

    A lost wake-up is not lost work: chunks left undone are woken again by the sweeper.
    """
    try:
        for _ in range(count):
            queues.publish(broker, queues.RUN_BACKTEST, job_id)
    except UnavailableError:
        logger.warning("event=chunk_wakeups_deferred job=%s (the sweeper sends them)", job_id)


def claim(pool: ConnectionPool, worker_id: str) -> Claimed | None:
    """The next undone chunk of the running chunked job first in line, in this worker's
    claim_order; None if there is none."""
    with transaction(pool) as conn:
        chunk = None
        # Each round gives up only when another worker took every chunk tried: bounded.
        while chunk is None and (job_id := job_chunk_db.select_claimable_job(conn)) is not None:
            for number in claim_order(job_chunk_db.select_chunks(conn, job_id), worker_id):
                chunk = job_chunk_db.update_chunk_claimed(conn, job_id, number, worker_id)
                if chunk is not None:
                    break
        job = None if chunk is None else job_db.select_job(conn, chunk.job_id)
    if chunk is None or job is None:
        return None
    logger.info(
        "event=chunk_claimed job=%s chunk=%s units=%s-%s worker=%s attempt=%s",
        chunk.job_id,
        chunk.chunk,
        chunk.first_unit,
        chunk.end_unit,
        worker_id,
        chunk.attempt,
    )
    return Claimed(chunk, job)


def any_claimable(pool: ConnectionPool) -> bool:
    """Whether a running chunked job still has a chunk to give out."""
    with connection(pool) as conn:
        return job_chunk_db.select_claimable_job(conn) is not None


def claim_order(job_chunks: Sequence[ChunkRow], worker_id: str) -> list[int]:
    """The undone chunks of one job (all its chunks, in order) in the order `worker_id` tries
    to claim them, so that each worker runs a stretch of consecutive chunks.

    Consecutive units share indicators, and a worker's backtest process keeps those of its
    last chunk: interleaved chunks would make every worker compute the indicators of every
    stretch, and both workers the ones a chunk boundary splits. So a worker takes first the
    chunk after the one it finished last; then the start of a run of undone chunks that no
    running chunk leads into (nobody else will start it); then the middle of the longest run
    that one does (its worker keeps the first half, as in work stealing); then any.
    """
    undone = [c.chunk for c in job_chunks if c.status == "undone"]
    running = {c.chunk for c in job_chunks if c.status == "running"}
    mine = [(c.done_at, c.chunk) for c in job_chunks if c.done_by == worker_id and c.done_at]
    preferred = [max(mine)[1] + 1] if mine else []
    runs: list[list[int]] = []
    for number in undone:
        if runs and runs[-1][-1] == number - 1:
            runs[-1].append(number)
        else:
            runs.append([number])
    runs.sort(key=len, reverse=True)  # stable: runs of equal length stay in chunk order
    preferred += [run[0] for run in runs if run[0] - 1 not in running]
    preferred += [run[len(run) // 2] for run in runs if run[0] - 1 in running]
    todo = set(undone)
    return [number for number in dict.fromkeys(preferred + undone) if number in todo]


def record_progress(pool: ConnectionPool, chunk: ChunkRow, worker_id: str, units_done: int) -> bool:
    """Heartbeat the chunk and its job, move the job's progress; True when the chunk should
    stop (the job was cancelled or has ended, or the chunk was taken away)."""
    with transaction(pool) as conn:
        job_chunk_db.lock_job(conn, chunk.job_id)
        ours = job_chunk_db.update_chunk_progress(
            conn, chunk.job_id, chunk.chunk, worker_id, units_done
        )
        cancel_requested = job_chunk_db.update_job_from_chunks(conn, chunk.job_id)
        worker_db.update_worker_heartbeat(conn, worker_id)
    return not ours or cancel_requested is None or cancel_requested


def complete(
    pool: ConnectionPool,
    claimed: Claimed,
    worker_id: str,
    rows: Sequence[UnitRow],
    elapsed_ms: float,
    merge: Merge,
) -> JobRow | None:
    """Store a chunk's rows in the transaction that marks it done; the worker whose chunk is
    the last merges every row and completes the job in that same transaction, so a crash
    anywhere leaves the chunk to be redone and the job completes once.

    Returns the job when this call completed it (its notifications are owed), else None.
    """
    chunk = claimed.chunk
    finished: JobRow | None = None
    try:
        with transaction(pool) as conn:
            job_chunk_db.lock_job(conn, chunk.job_id)
            done = job_chunk_db.update_chunk_done(
                conn, chunk.job_id, chunk.chunk, worker_id, elapsed_ms
            )
            if done is None:
                logger.warning("event=chunk_taken_away job=%s chunk=%s", chunk.job_id, chunk.chunk)
                return None
            job_chunk_db.insert_unit_rows(conn, chunk.job_id, chunk.chunk, rows)
            units_done, units = job_chunk_db.update_job_units_done(conn, chunk.job_id, done.units)
            if units_done == units:
                chunks_done = job_chunk_db.select_chunks(conn, chunk.job_id)
                engine_ms = sum(c.elapsed_ms or 0.0 for c in chunks_done)
                stored = job_chunk_db.select_unit_rows(conn, chunk.job_id)
                result = merge(claimed.job, stored, engine_ms)
                finished = job_db.update_job_finished(
                    conn, chunk.job_id, None, status="completed", result=result
                )
    except UnavailableError:
        raise  # the chunk goes stale and another worker redoes it
    except Exception as exc:
        # A merge that raises would raise again for whichever worker redid the chunk.
        logger.exception("event=merge_failed job=%s", chunk.job_id)
        message = f"internal error while merging the chunks ({type(exc).__name__})"
        return fail(pool, claimed, message, outcome="crashed")
    metrics.SWEEP_COMBINATIONS.labels(claimed.job.kind, "done").inc(done.units)
    metrics.SWEEP_COMBINATION_SECONDS.observe(elapsed_ms / 1000 / max(1, done.units))
    logger.info(
        "event=chunk_done job=%s chunk=%s worker=%s units=%s ms=%.0f job_units_done=%s/%s",
        chunk.job_id,
        chunk.chunk,
        worker_id,
        done.units,
        elapsed_ms,
        units_done,
        units,
    )
    if finished is not None:
        logger.info("event=job_completed job=%s stored=True chunks=merged", chunk.job_id)
        jobs.observe(finished, "completed")
    return finished


def fail(pool: ConnectionPool, claimed: Claimed, error: str, *, outcome: str) -> JobRow | None:
    """A chunk the engine refused, that crashed or ran out of time fails its whole job."""
    with transaction(pool) as conn:
        job = job_db.update_job_finished(
            conn, claimed.chunk.job_id, None, status="failed", error=error
        )
        job_chunk_db.update_chunks_stopped(conn, claimed.chunk.job_id)
    logger.info(
        "event=job_failed job=%s chunk=%s outcome=%s error=%r",
        claimed.chunk.job_id,
        claimed.chunk.chunk,
        outcome,
        error[:200],
    )
    return jobs.observe(job, outcome)


def stop(
    pool: ConnectionPool, broker: dramatiq.Broker, claimed: Claimed, worker_id: str
) -> JobRow | None:
    """A chunk stopped before its end: the job was cancelled (settle it cancelled), has
    ended, or this worker is shutting down (the chunk goes back for another worker)."""
    chunk = claimed.chunk
    with transaction(pool) as conn:
        job_chunk_db.lock_job(conn, chunk.job_id)
        job = job_db.select_job(conn, chunk.job_id)
        released = job_chunk_db.update_chunk_released(conn, chunk.job_id, chunk.chunk, worker_id)
        cancelled = None
        if job is not None and job.status == "processing" and job.cancel_requested:
            cancelled = job_db.update_job_finished(conn, job.id, None, status="cancelled")
            job_chunk_db.update_chunks_stopped(conn, job.id)
    if cancelled is not None:
        metrics.SWEEP_COMBINATIONS.labels(claimed.job.kind, "cancelled").inc(chunk.units)
        logger.info("event=job_cancelled job=%s chunk=%s", chunk.job_id, chunk.chunk)
        return jobs.observe(cancelled, "cancelled")
    logger.info(
        "event=chunk_stopped job=%s chunk=%s released=%s",
        chunk.job_id,
        chunk.chunk,
        released is not None,
    )
    if released is not None and job is not None and job.status == "processing":
        wake(broker, chunk.job_id, 1)
    return None


def recover(
    pool: ConnectionPool,
    broker: dramatiq.Broker,
    settings: Settings,
    dead_workers: Sequence[str] = (),
) -> int:
    """Return stale chunks to undone and wake workers for them; settle chunked jobs nobody
    works on (a cancel no worker saw, chunks that used up their attempts). Returns the
    chunks returned to undone."""
    wakeups: dict[int, int] = {}
    with transaction(pool) as conn:
        stale = job_chunk_db.update_stale_chunks_undone(
            conn, stale_after_s=settings.stale_after_s, dead_workers=list(dead_workers)
        )
        for chunk in stale:
            logger.warning(
                "event=chunk_recovered job=%s chunk=%s attempt=%s",
                chunk.job_id,
                chunk.chunk,
                chunk.attempt,
            )
            owner = job_db.select_job(conn, chunk.job_id)
            if owner is not None:
                metrics.SWEEP_COMBINATIONS.labels(owner.kind, "redone").inc(chunk.units)
            if chunk.attempt >= settings.max_attempts:
                error = (
                    f"the worker stopped while running chunk {chunk.chunk} of this job "
                    f"{chunk.attempt} times"
                )
                job = job_db.update_job_finished(
                    conn, chunk.job_id, None, status="failed", error=error
                )
                jobs.observe(job, "crashed")
            else:
                wakeups[chunk.job_id] = wakeups.get(chunk.job_id, 0) + 1
        for idle in job_chunk_db.select_idle_jobs(conn, stale_after_s=settings.stale_after_s):
            if idle.cancel_requested and idle.running == 0:
                job = job_db.update_job_finished(conn, idle.id, None, status="cancelled")
                jobs.observe(job, "cancelled")
            elif idle.undone:
                # Wake-ups lost (a broker outage, a crash right after the cut): send again.
                job_chunk_db.update_job_from_chunks(conn, idle.id)
                wakeups[idle.id] = max(wakeups.get(idle.id, 0), idle.undone)
    for job_id, count in wakeups.items():
        wake(broker, job_id, count)
    return len(stale)
