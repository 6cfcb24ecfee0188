"""Backtest job use cases: submit, read, cancel, and the worker's claim/progress/finish."""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
import weakref
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import dramatiq
import psycopg
from psycopg_pool import ConnectionPool

from algotcha import queues
from algotcha.config import Settings
from algotcha.db import job_chunks as job_chunk_db
from algotcha.db import jobs as job_db
from algotcha.db import trade_chunks as chunk_db
from algotcha.db import workers as worker_db
from algotcha.db.jobs import JobListRow, JobRow
from algotcha.db.pool import connection, transaction
from algotcha.errors import ConflictError, NotFoundError, QueueLimitError, UnavailableError
from algotcha.services import estimates, trade_log
from algotcha.vocabulary import JobKind, JobStatus, NotifyChannel
from monitoring import metrics
from monitoring.collector import QueueSample

logger = logging.getLogger(__name__)


# A job read whole, or as a list shows it (without its result).
ShownJob = JobRow | JobListRow
Row = TypeVar("Row", bound=ShownJob)
Row_co = TypeVar("Row_co", bound=ShownJob, covariant=True)


@dataclass(frozen=True)
class QueuedJob(Generic[Row_co]):
    """A job with where it stands: queuePosition and estimatedWait of API.md."""

    job: Row_co
    position: int | None
    wait_minutes: int | None


@dataclass(frozen=True)
class JobEvent:
    """A job as its event stream shows it, with the two counters that name that state."""

    job_id: int
    user_id: int
    status: JobStatus
    progress: int
    position: int | None
    wait_minutes: int | None
    # The job's own changes (status, progress) and the queue's (a job entered or left it).
    revision: int
    queue_tick: int

    @property
    def final(self) -> bool:
        return self.status in job_db.FINAL_STATUSES

    @property
    def shown(self) -> tuple[str, int, int | None]:
        """What a client sees change; the wait estimate only rides along with it."""
        return (self.status, self.progress, self.position)


@dataclass(frozen=True)
class QueueStats:
    counts: job_db.StatusCounts
    workers: int
    wait_minutes: int
    # what a sweep's estimate is based on: measured over recent chunks, or the default
    unit_bar_s: float


def submit(
    pool: ConnectionPool,
    broker: dramatiq.Broker,
    settings: Settings,
    *,
    user_id: int,
    strategy_name: str,
    payload: dict[str, Any],
    notify_via: NotifyChannel | None,
    kind: JobKind = "backtest",
    units: int | None = None,
    unit_bars: int | None = None,
) -> QueuedJob[JobRow]:
    """Store the job, then publish its wake-up; the row is the truth, the message a nudge.

    Without notify_via the user's profile choice applies. A chunked job (a sweep: `units`
    combinations over `unit_bars` bars each) also counts against MAX_SWEEPS_PER_USER.
    """
    with transaction(pool) as conn:
        job_db.lock_user_queue(conn, user_id)
        if kind != "backtest":
            active = job_db.count_active_chunked_jobs(conn, user_id)
            if active >= settings.max_sweeps_per_user:
                raise QueueLimitError(
                    f"you already have {active} sweep(s) queued or running (the limit is "
                    f"{settings.max_sweeps_per_user}); wait for it to finish or cancel it",
                    retry_after_s=60,
                )
        job = job_db.insert_job_within_limit(
            conn,
            user_id=user_id,
            strategy_name=strategy_name,
            payload=payload,
            notify_via=notify_via,
            limit=settings.max_queued_per_user,
            kind=kind,
            units=units,
            unit_bars=unit_bars,
        )
    if job is None:
        raise QueueLimitError(
            f"you already have {settings.max_queued_per_user} backtests queued; "
            "wait for one to start or cancel one",
            retry_after_s=60,
        )
    try:
        queues.publish(broker, queues.RUN_BACKTEST, job.id)
    except UnavailableError:
        _withdraw(pool, job.id)
        raise
    with connection(pool) as conn:
        job_db.delete_outbox(conn, [job.id])
        located = _locate(conn, pool, settings, job)
    logger.info("event=job_submitted job=%s user=%s kind=%s", job.id, user_id, kind)
    return located


def _withdraw(pool: ConnectionPool, job_id: int) -> None:
    """Undo a submit whose message could not be sent, so a 503 leaves nothing behind.

    If the database is gone too, the job stays in the outbox and the sweeper sends it later.
    """
    try:
        with connection(pool) as conn:
            job_db.delete_unpublished_job(conn, job_id)
    except UnavailableError:
        logger.error("event=withdraw_failed job=%s (the sweeper will publish it)", job_id)


class _LoadCache:
    """The slow part of a wait estimate, read at most once per LOAD_TTL_S per pool.

    Every submit and position request needs it, but running jobs, recent durations and
    live workers change over seconds; re-reading them each time cost the database more
    than the position itself.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loads: weakref.WeakKeyDictionary[
            ConnectionPool, tuple[float, estimates.QueueSnapshot]
        ]
        self._loads = weakref.WeakKeyDictionary()

    def get(
        self, conn: psycopg.Connection, pool: ConnectionPool, settings: Settings
    ) -> estimates.QueueSnapshot:
        now = time.monotonic()
        with self._lock:
            cached = self._loads.get(pool)
        if cached is not None and now - cached[0] < LOAD_TTL_S:
            return cached[1]
        load = job_db.select_queue_load(
            conn, stale_after_s=settings.stale_after_s, sample=estimates.DURATION_SAMPLE
        )
        keys = load.queued_sweep_keys or []
        snapshot = estimates.QueueSnapshot(
            running=list(zip(load.running_elapsed_s, load.running_progress, strict=True)),
            mean_duration_s=load.mean_duration_s,
            workers=load.workers,
            unit_bar_s=load.unit_bar_s,
            running_sweep_unit_bars=load.running_sweep_unit_bars,
            queued_sweeps=[
                (int(keys[2 * n]), int(keys[2 * n + 1]), work)
                for n, work in enumerate(load.queued_sweep_unit_bars or [])
            ],
        )
        with self._lock:
            self._loads[pool] = (now, snapshot)
        return snapshot


LOAD_TTL_S = 1.0
_loads = _LoadCache()


def _place(
    job: Row, ahead: int | None = None, load: estimates.QueueSnapshot | None = None
) -> QueuedJob[Row]:
    if job.status == "processing":
        return QueuedJob(job, 0, 0)
    if job.status != "queued" or ahead is None or load is None:
        return QueuedJob(job, None, None)
    wait = estimates.wait_s(ahead, load, (-job.priority, job.id))
    return QueuedJob(job, ahead + 1, estimates.minutes(wait))


def _locate(
    conn: psycopg.Connection, pool: ConnectionPool, settings: Settings, job: Row
) -> QueuedJob[Row]:
    if job.status != "queued":
        return _place(job)
    return _place(job, job_db.count_queued_ahead(conn, job), _loads.get(conn, pool, settings))


def get_for_user(
    pool: ConnectionPool, settings: Settings, user_id: int, job_id: int
) -> QueuedJob[JobRow]:
    with connection(pool) as conn:
        job = job_db.select_job_for_user(conn, job_id, user_id)
        if job is None:
            raise NotFoundError(f"no backtest {job_id}")
        # Read separately from the row: a claim in between shows as queued with a position.
        return _locate(conn, pool, settings, job)


def read_events(
    pool: ConnectionPool, settings: Settings, job_ids: list[int]
) -> dict[int, JobEvent]:
    """The stream state of many jobs in one round trip (plus the cached queue load).

    Jobs that no longer exist are missing from the answer.
    """
    with connection(pool) as conn:
        rows = job_db.select_job_events(conn, job_ids)
        queued = any(row.ahead is not None for row in rows)
        load = _loads.get(conn, pool, settings) if queued else None
    return {row.id: _event(row, load) for row in rows}


def read_event_for_user(
    pool: ConnectionPool, settings: Settings, user_id: int, job_id: int
) -> JobEvent:
    event = read_events(pool, settings, [job_id]).get(job_id)
    if event is None or event.user_id != user_id:
        raise NotFoundError(f"no backtest {job_id}")
    return event


def _event(row: job_db.JobEventRow, load: estimates.QueueSnapshot | None) -> JobEvent:
    position: int | None = None
    wait: int | None = None
    if row.status == "processing":
        position, wait = 0, 0
    elif row.ahead is not None and load is not None:
        position = row.ahead + 1
        wait = estimates.minutes(estimates.wait_s(row.ahead, load, (-row.priority, row.id)))
    return JobEvent(
        job_id=row.id,
        user_id=row.user_id,
        status=row.status,
        progress=row.progress,
        position=position,
        wait_minutes=wait,
        revision=row.revision,
        queue_tick=row.queue_tick,
    )


def list_for_user(
    pool: ConnectionPool, settings: Settings, user_id: int, *, limit: int, before: int | None
) -> list[QueuedJob[JobListRow]]:
    with connection(pool) as conn:
        rows = job_db.select_jobs_for_user(conn, user_id, limit=limit, before=before)
        return [_locate(conn, pool, settings, r) for r in rows]


def cancel(pool: ConnectionPool, user_id: int, job_id: int) -> JobRow:
    """Cancel a queued job now; ask the worker to stop a processing one at its next step."""
    with transaction(pool) as conn:
        job = job_db.update_job_cancel(conn, job_id, user_id)
        if job is None:
            existing = job_db.select_job_for_user(conn, job_id, user_id)
    if job is not None:
        logger.info("event=job_cancel_requested job=%s status=%s", job_id, job.status)
        return job
    if existing is None:
        raise NotFoundError(f"no backtest {job_id}")
    raise ConflictError(f"backtest {job_id} is already {existing.status}")


def queue_sample(pool: ConnectionPool, settings: Settings) -> QueueSample:
    """The queue gauges of /metrics, from the database (every process reports the same)."""
    with transaction(pool) as conn:
        counts = job_db.count_jobs_by_status(conn)
        load = _loads.get(conn, pool, settings)
        oldest = job_db.select_oldest_processing_s(conn)
        in_flight = job_chunk_db.count_running_chunks(conn)
    return QueueSample(
        jobs_by_status=dataclasses.asdict(counts),
        estimated_wait_s=estimates.wait_s(counts.queued, load),
        workers_online=load.workers,
        oldest_processing_s=oldest,
        sweep_chunks_in_flight=in_flight,
    )


def stats(pool: ConnectionPool, settings: Settings) -> QueueStats:
    with transaction(pool) as conn:
        counts = job_db.count_jobs_by_status(conn)
        load = _loads.get(conn, pool, settings)
    wait = estimates.wait_s(counts.queued, load)
    unit_bar_s = load.unit_bar_s or estimates.DEFAULT_UNIT_BAR_S
    return QueueStats(counts, load.workers, estimates.minutes(wait), unit_bar_s)


# --- the worker's side -------------------------------------------------------------------


def claim(pool: ConnectionPool, woken_by: int, worker_id: str) -> JobRow | None:
    """Take the job at the head of the queue; None when a message finds the queue empty.

    A message is a wake-up, not an assignment: the worker takes whichever job is first in
    line, so the order users are shown is the order jobs start, even for a job that went
    back to the queue after its worker died. Every queued job has at least one message
    on its way, so none is left behind; a duplicate or stale message claims nothing.
    A chunked job (a sweep) is cut into its chunks in the claim's transaction.
    """
    # chunks builds on this module (it imports it), hence the import here
    from algotcha.services import chunks

    with transaction(pool) as conn:
        job = job_db.claim_next_job(conn, worker_id)
        if job is not None and job.kind != "backtest":
            chunks.start(conn, job)
    if job is None:
        logger.info("event=job_claim_empty woken_by=%s worker=%s", woken_by, worker_id)
    else:
        assert job.started_at is not None
        metrics.BACKTEST_WAIT.observe((job.started_at - job.created_at).total_seconds())
        logger.info(
            "event=job_claimed job=%s worker=%s attempt=%s woken_by=%s",
            job.id,
            worker_id,
            job.attempt,
            woken_by,
        )
    return job


def record_progress(pool: ConnectionPool, job_id: int, worker_id: str, progress: int) -> bool:
    """Write progress and a heartbeat; True when the job should stop (cancelled or taken away)."""
    with transaction(pool) as conn:
        cancel_requested = job_db.update_job_progress(conn, job_id, worker_id, progress)
        worker_db.update_worker_heartbeat(conn, worker_id)
    return cancel_requested is None or cancel_requested


def complete(
    pool: ConnectionPool, job_id: int, worker_id: str, result: dict[str, Any]
) -> JobRow | None:
    """Store the result: its trades in chunks, the rest with the job, in one transaction."""
    head, chunks = trade_log.split(result)
    with transaction(pool) as conn:
        job = job_db.update_job_finished(conn, job_id, worker_id, status="completed", result=head)
        if job is not None:
            chunk_db.insert_trade_chunks(conn, job_id, chunks)
    logger.info("event=job_completed job=%s stored=%s", job_id, job is not None)
    return observe(job, "completed")


def fail(
    pool: ConnectionPool, job_id: int, worker_id: str, error: str, *, outcome: str = "failed"
) -> JobRow | None:
    """Store a failure; `outcome` tells the metrics why (failed, timed_out, crashed)."""
    with transaction(pool) as conn:
        job = job_db.update_job_finished(conn, job_id, worker_id, status="failed", error=error)
    logger.info("event=job_failed job=%s outcome=%s error=%r", job_id, outcome, error[:200])
    return observe(job, outcome)


def finish_cancelled(pool: ConnectionPool, job_id: int, worker_id: str) -> JobRow | None:
    with transaction(pool) as conn:
        job = job_db.update_job_finished(conn, job_id, worker_id, status="cancelled")
    logger.info("event=job_cancelled job=%s", job_id)
    return observe(job, "cancelled")


def observe(job: JobRow | None, outcome: str) -> JobRow | None:
    """Count a job that reached a final status in the backtest metrics."""
    if job is not None and job.started_at and job.completed_at:
        metrics.BACKTEST_DURATION.observe((job.completed_at - job.started_at).total_seconds())
        metrics.BACKTESTS.labels(outcome).inc()
    return job


def release(pool: ConnectionPool, job_id: int, worker_id: str) -> JobRow | None:
    """Hand a job back to the queue because this worker is shutting down (not the job's fault)."""
    with transaction(pool) as conn:
        job = job_db.update_job_released(conn, job_id, worker_id)
        if job is not None:
            job_db.insert_outbox(conn, [job.id])
    logger.info("event=job_released job=%s worker=%s", job_id, worker_id)
    if job is not None:
        metrics.BACKTESTS.labels("requeued").inc()
    return job


def recover_stale(pool: ConnectionPool, settings: Settings) -> list[JobRow]:
    """Settle processing jobs whose worker stopped sending heartbeats."""
    with transaction(pool) as conn:
        ids = job_db.select_stale_job_ids(conn, stale_after_s=settings.stale_after_s)
        return _requeue(conn, ids, settings)


def recover_from(pool: ConnectionPool, worker_ids: list[str], settings: Settings) -> list[JobRow]:
    """Settle the processing jobs of workers known to be dead."""
    with transaction(pool) as conn:
        ids = job_db.select_job_ids_of_workers(conn, worker_ids)
        return _requeue(conn, ids, settings)


def _requeue(conn: psycopg.Connection, job_ids: list[int], settings: Settings) -> list[JobRow]:
    """Settle each job (see update_job_requeue); those queued again are owed a message."""
    settled = []
    for job_id in job_ids:
        job = job_db.update_job_requeue(conn, job_id, max_attempts=settings.max_attempts)
        if job is not None:
            logger.warning(
                "event=job_recovered job=%s status=%s attempt=%s", job.id, job.status, job.attempt
            )
            metrics.BACKTESTS.labels("requeued" if job.status == "queued" else "crashed").inc()
            settled.append(job)
    job_db.insert_outbox(conn, [job.id for job in settled if job.status == "queued"])
    return settled
