"""SQL for the backtest_job table."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import class_row, tuple_row
from psycopg.types.json import Jsonb

from algotcha import vocabulary
from algotcha.vocabulary import JobKind, JobStatus, NotifyChannel

ACTIVE_STATUSES = vocabulary.ACTIVE_STATUSES
FINAL_STATUSES = vocabulary.FINAL_STATUSES
# Notified by the triggers of migration 0005_job_events: a job's id when its status or progress
# changed (or it was deleted); an empty payload when a job entered or left the queue.
JOB_CHANGED_CHANNEL = "algotcha_job"
QUEUE_CHANGED_CHANNEL = "algotcha_queue"


@dataclass(frozen=True)
class JobRow:
    id: int
    user_id: int
    strategy_name: str
    payload: dict[str, Any]
    notify_via: NotifyChannel
    status: JobStatus
    priority: int
    progress: int
    attempt: int
    cancel_requested: bool
    worker_id: str | None
    heartbeat_at: datetime | None
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    error: str | None
    result: dict[str, Any] | None
    # Bumped by a trigger on each change of status or progress (migration 0005_job_events).
    revision: int = 0
    # A chunked job (migration 0007_job_chunks): its kind, its units (combinations of a
    # sweep) and how many are done, and the bars each unit runs over.
    kind: JobKind = "backtest"
    units: int | None = None
    units_done: int = 0
    unit_bars: int | None = None

    @property
    def backtest_payload(self) -> dict[str, Any]:
        """The backtest payload naming the bars: a sweep or walk-forward stores it within."""
        if self.kind == "backtest":
            return self.payload
        inner: dict[str, Any] = self.payload.get("payload", {})
        return inner

    @property
    def symbol(self) -> str | None:
        return self.backtest_payload.get("symbol")

    @property
    def timeframe(self) -> str | None:
        return self.backtest_payload.get("timeframe")

    @property
    def folds(self) -> int | None:
        """A walk-forward's folds; None for other kinds."""
        if self.kind != "walk_forward":
            return None
        return int(self.payload["walkForward"]["folds"])


@dataclass(frozen=True)
class JobListRow:
    """What a list of jobs shows: a job without its result, and of its payload only the
    symbol and timeframe (a result can be megabytes; a list reads dozens of jobs)."""

    id: int
    user_id: int
    kind: JobKind
    strategy_name: str
    symbol: str | None
    timeframe: str | None
    notify_via: NotifyChannel
    status: JobStatus
    priority: int
    progress: int
    attempt: int
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    error: str | None
    units: int | None
    units_done: int
    folds: int | None  # a walk-forward's; None for other kinds


@dataclass(frozen=True)
class JobEventRow:
    """What an event stream shows of a job, read in one snapshot with the queue clock."""

    id: int
    user_id: int
    status: JobStatus
    progress: int
    revision: int
    queue_tick: int
    # Queued jobs ahead of this one; None unless it is queued.
    ahead: int | None
    priority: int = 0


@dataclass(frozen=True)
class QueueLoad:
    """What a wait estimate needs besides a position: it changes slowly."""

    running_elapsed_s: list[float]
    running_progress: list[int]
    mean_duration_s: float | None
    workers: int
    # Sweeps (chunked jobs): see estimates.QueueSnapshot.
    unit_bar_s: float | None = None
    running_sweep_unit_bars: float = 0.0
    queued_sweep_keys: list[int] | None = None  # -priority, id, pairs flattened
    queued_sweep_unit_bars: list[float] | None = None


@dataclass(frozen=True)
class StatusCounts:
    queued: int
    processing: int
    completed: int
    failed: int
    cancelled: int


def insert_job_within_limit(
    conn: psycopg.Connection,
    *,
    user_id: int,
    strategy_name: str,
    payload: dict[str, Any],
    notify_via: NotifyChannel | None,
    limit: int,
    kind: JobKind = "backtest",
    units: int | None = None,
    unit_bars: int | None = None,
) -> JobRow | None:
    """Queue a job with its outbox row unless the user already has `limit` queued.

    Run it after lock_user_queue in the same transaction, so that the count it makes sees
    every other submit of the same user. Without notify_via the profile's choice applies.
    """
    cur = conn.cursor(row_factory=class_row(JobRow))
    return cur.execute(
        """
        WITH job AS (
            INSERT INTO backtest_job
                (user_id, strategy_name, payload, notify_via, kind, units, unit_bars)
            SELECT %(user_id)s, %(strategy_name)s, %(payload)s,
                   COALESCE(%(notify_via)s, u.notify_via), %(kind)s, %(units)s, %(unit_bars)s
            FROM app_user u
            WHERE u.id = %(user_id)s
              AND (SELECT count(*) FROM backtest_job
                   WHERE user_id = %(user_id)s AND status = 'queued') < %(limit)s
            RETURNING *
        ), owed AS (
            INSERT INTO job_outbox (job_id) SELECT id FROM job
        )
        SELECT * FROM job
        """,
        {
            "user_id": user_id,
            "strategy_name": strategy_name,
            "payload": Jsonb(payload),
            "notify_via": notify_via,
            "limit": limit,
            "kind": kind,
            "units": units,
            "unit_bars": unit_bars,
        },
    ).fetchone()


def count_active_chunked_jobs(conn: psycopg.Connection, user_id: int) -> int:
    """The user's sweeps (and other chunked jobs) queued or running."""
    row = conn.execute(
        """
        SELECT count(*) FROM backtest_job
        WHERE user_id = %(user_id)s AND kind <> 'backtest' AND status IN ('queued', 'processing')
        """,
        {"user_id": user_id},
    ).fetchone()
    assert row is not None
    return int(row[0])


def lock_user_queue(conn: psycopg.Connection, user_id: int) -> None:
    """Serialise one user's submits so the per-user limit holds under concurrency."""
    conn.execute("SELECT pg_advisory_xact_lock(1, %(user_id)s::int)", {"user_id": user_id})


def insert_outbox(conn: psycopg.Connection, job_ids: list[int]) -> None:
    """Record that these jobs are owed a wake-up message."""
    conn.execute(
        """
        INSERT INTO job_outbox (job_id) SELECT unnest(%(ids)s::bigint[])
        ON CONFLICT (job_id) DO NOTHING
        """,
        {"ids": job_ids},
    )


def insert_outbox_for_queued(conn: psycopg.Connection) -> None:
    conn.execute(
        """
        INSERT INTO job_outbox (job_id, created_at)
        SELECT id, '-infinity' FROM backtest_job WHERE status = 'queued'
        ON CONFLICT (job_id) DO NOTHING
        """
    )


def delete_outbox(conn: psycopg.Connection, job_ids: list[int]) -> None:
    conn.execute("DELETE FROM job_outbox WHERE job_id = ANY(%(ids)s)", {"ids": job_ids})


def select_job(conn: psycopg.Connection, job_id: int) -> JobRow | None:
    cur = conn.cursor(row_factory=class_row(JobRow))
    return cur.execute("SELECT * FROM backtest_job WHERE id = %(id)s", {"id": job_id}).fetchone()


def select_job_for_user(conn: psycopg.Connection, job_id: int, user_id: int) -> JobRow | None:
    cur = conn.cursor(row_factory=class_row(JobRow))
    return cur.execute(
        "SELECT * FROM backtest_job WHERE id = %(id)s AND user_id = %(user_id)s",
        {"id": job_id, "user_id": user_id},
    ).fetchone()


def select_jobs_for_user(
    conn: psycopg.Connection, user_id: int, *, limit: int, before: int | None
) -> list[JobListRow]:
    cur = conn.cursor(row_factory=class_row(JobListRow))
    return cur.execute(
        """
        SELECT id, user_id, kind, strategy_name,
            data ->> 'symbol' AS symbol, data ->> 'timeframe' AS timeframe,
            notify_via, status, priority, progress, attempt,
            created_at, started_at, completed_at, error, units, units_done,
            CASE WHEN kind = 'walk_forward'
                 THEN (payload -> 'walkForward' ->> 'folds')::int END AS folds
        FROM backtest_job,
            LATERAL (SELECT CASE WHEN kind = 'backtest' THEN payload
                                 ELSE payload -> 'payload' END AS data) AS named
        WHERE user_id = %(user_id)s AND (%(before)s::bigint IS NULL OR id < %(before)s)
        ORDER BY id DESC
        LIMIT %(limit)s
        """,
        {"user_id": user_id, "before": before, "limit": limit},
    ).fetchall()


def count_queued_ahead(conn: psycopg.Connection, job: JobRow | JobListRow | None) -> int:
    """Queued jobs ahead of `job` in queue order (priority DESC, id); all queued ones for None.

    Whole blocks ahead are summed from queue_block; only the job's own block is counted
    row by row (see the migration), so this stays cheap at 100,000 queued jobs.
    """
    row = conn.execute(
        """
        SELECT CASE WHEN %(id)s::bigint IS NULL
            THEN (SELECT COALESCE(sum(queued), 0) FROM queue_block)
            ELSE (SELECT COALESCE(sum(queued), 0) FROM queue_block
                  WHERE (neg_priority, block) < (%(neg_priority)s, %(id)s / 1024))
               + (SELECT count(*) FROM backtest_job
                  WHERE status = 'queued' AND -priority = %(neg_priority)s
                    AND id >= %(id)s / 1024 * 1024 AND id < %(id)s)
        END
        """,
        {
            "id": None if job is None else job.id,
            "neg_priority": 0 if job is None else -job.priority,
        },
    ).fetchone()
    assert row is not None
    return int(row[0])


def select_job_events(conn: psycopg.Connection, job_ids: list[int]) -> list[JobEventRow]:
    """The stream state of many jobs in one statement, so one snapshot: the queue tick
    read with them names exactly the positions they show (see migration 0005_job_events).

    Positions are counted as in count_queued_ahead, but each block holding a watched job is
    ranked once, not once per job in it: a thousand watched jobs cost a thousand index
    entries, not half a million. No payload or result is read.
    """
    cur = conn.cursor(row_factory=class_row(JobEventRow))
    return cur.execute(
        """
        WITH watched AS (
            SELECT id, user_id, status, progress, revision, priority
            FROM backtest_job WHERE id = ANY(%(ids)s)
        ), blocks AS (
            SELECT d.neg_priority, d.block,
                (SELECT COALESCE(sum(b.queued), 0) FROM queue_block b
                 WHERE (b.neg_priority, b.block) < (d.neg_priority, d.block)) AS before
            FROM (SELECT DISTINCT -priority AS neg_priority, id / 1024 AS block
                  FROM watched WHERE status = 'queued') d
        ), ranked AS (
            SELECT q.id,
                k.before + row_number() OVER (
                    PARTITION BY k.neg_priority, k.block ORDER BY q.id) - 1 AS ahead
            FROM blocks k
            JOIN backtest_job q
              ON q.status = 'queued' AND -q.priority = k.neg_priority
             AND q.id >= k.block * 1024 AND q.id < (k.block + 1) * 1024
        )
        SELECT w.id, w.user_id, w.status, w.progress, w.revision, c.tick AS queue_tick,
               (CASE WHEN w.status = 'queued' THEN r.ahead END)::int AS ahead, w.priority
        FROM watched w
        CROSS JOIN queue_clock c
        LEFT JOIN ranked r ON r.id = w.id
        """,
        {"ids": job_ids},
    ).fetchall()


async def listen_job_changes(conn: psycopg.AsyncConnection) -> None:
    """Subscribe this (autocommit) connection to both change channels."""
    await conn.execute("LISTEN algotcha_job")
    await conn.execute("LISTEN algotcha_queue")


def select_queue_load(conn: psycopg.Connection, *, stale_after_s: float, sample: int) -> QueueLoad:
    """The running jobs, the mean duration of the last `sample` completed ones, and the live
    workers, in one round trip."""
    cur = conn.cursor(row_factory=class_row(QueueLoad))
    load = cur.execute(
        """
        SELECT
            ARRAY(SELECT extract(epoch FROM now() - started_at)::float8 FROM backtest_job
                  WHERE status = 'processing' AND kind = 'backtest'
                  ORDER BY id) AS running_elapsed_s,
            ARRAY(SELECT progress::int FROM backtest_job
                  WHERE status = 'processing' AND kind = 'backtest'
                  ORDER BY id) AS running_progress,
            (SELECT avg(extract(epoch FROM completed_at - started_at))::float8
             FROM (SELECT started_at, completed_at FROM backtest_job
                   WHERE status = 'completed' AND kind = 'backtest'
                   ORDER BY completed_at DESC
                   LIMIT %(sample)s) recent) AS mean_duration_s,
            (SELECT count(*)::int FROM worker
             WHERE stopped_at IS NULL
               AND heartbeat_at > now() - make_interval(secs => %(stale)s)) AS workers,
            (SELECT sum(c.elapsed_ms) / 1000.0
                    / NULLIF(sum((c.end_unit - c.first_unit) * j.unit_bars), 0)
             FROM (SELECT job_id, first_unit, end_unit, elapsed_ms FROM job_chunk
                   WHERE status = 'done' ORDER BY done_at DESC LIMIT %(sample)s) c
             JOIN backtest_job j ON j.id = c.job_id)::float8 AS unit_bar_s,
            (SELECT COALESCE(sum((units - units_done)::float8 * unit_bars), 0) FROM backtest_job
             WHERE kind <> 'backtest' AND status = 'processing') AS running_sweep_unit_bars,
            ARRAY(SELECT unnest(ARRAY[-priority::bigint, id]) FROM backtest_job
                  WHERE kind <> 'backtest' AND status = 'queued'
                  ORDER BY -priority, id) AS queued_sweep_keys,
            ARRAY(SELECT units::float8 * unit_bars FROM backtest_job
                  WHERE kind <> 'backtest' AND status = 'queued'
                  ORDER BY -priority, id) AS queued_sweep_unit_bars
        """,
        {"stale": stale_after_s, "sample": sample},
    ).fetchone()
    assert load is not None
    return load


def count_jobs_by_status(conn: psycopg.Connection) -> StatusCounts:
    cur = conn.cursor(row_factory=tuple_row)
    counts: dict[str, int] = dict(
        cur.execute("SELECT status, count(*) FROM backtest_job GROUP BY status").fetchall()
    )
    return StatusCounts(**{s: int(counts.get(s, 0)) for s in StatusCounts.__dataclass_fields__})


def select_oldest_processing_s(conn: psycopg.Connection) -> float:
    row = conn.execute(
        """
        SELECT COALESCE(extract(epoch FROM now() - min(started_at)), 0)::float8
        FROM backtest_job WHERE status = 'processing'
        """
    ).fetchone()
    assert row is not None
    return float(row[0])


def claim_next_job(conn: psycopg.Connection, worker_id: str) -> JobRow | None:
    """Move the head of the queue to processing; None when nothing is queued.

    Workers that race skip each other's locked row, so no job is claimed twice.
    """
    cur = conn.cursor(row_factory=class_row(JobRow))
    return cur.execute(
        """
        UPDATE backtest_job
        SET status = 'processing', attempt = attempt + 1, worker_id = %(worker_id)s,
            started_at = now(), heartbeat_at = now()
        WHERE id = (SELECT id FROM backtest_job WHERE status = 'queued'
                    ORDER BY (-priority), id LIMIT 1 FOR UPDATE SKIP LOCKED)
          AND status = 'queued'
        RETURNING *
        """,
        {"worker_id": worker_id},
    ).fetchone()


def update_job_progress(
    conn: psycopg.Connection, job_id: int, worker_id: str, progress: int
) -> bool | None:
    """Record progress and a heartbeat; returns cancel_requested, or None if no longer ours."""
    row = conn.execute(
        """
        UPDATE backtest_job
        SET progress = GREATEST(progress, %(progress)s), heartbeat_at = now()
        WHERE id = %(id)s AND status = 'processing' AND worker_id = %(worker_id)s
        RETURNING cancel_requested
        """,
        {"id": job_id, "worker_id": worker_id, "progress": progress},
    ).fetchone()
    return None if row is None else bool(row[0])


def update_job_finished(
    conn: psycopg.Connection,
    job_id: int,
    worker_id: str | None,
    *,
    status: JobStatus,
    result: dict[str, Any] | None = None,
    error: str | None = None,
) -> JobRow | None:
    """Store the final status of a job this worker holds; None if it was taken away.

    worker_id None finishes a running chunked job (a sweep), whichever worker ran its last
    chunk: its chunks, not the job, are held by workers.
    """
    cur = conn.cursor(row_factory=class_row(JobRow))
    return cur.execute(
        """
        UPDATE backtest_job
        SET status = %(status)s, result = %(result)s, error = %(error)s,
            progress = CASE WHEN %(status)s = 'completed' THEN 100 ELSE progress END,
            completed_at = now(), heartbeat_at = now()
        WHERE id = %(id)s AND status = 'processing'
          AND (worker_id = %(worker_id)s OR (%(worker_id)s::text IS NULL AND kind <> 'backtest'))
        RETURNING *
        """,
        {
            "id": job_id,
            "worker_id": worker_id,
            "status": status,
            "result": None if result is None else Jsonb(result),
            "error": error,
        },
    ).fetchone()


def update_job_cancel(conn: psycopg.Connection, job_id: int, user_id: int) -> JobRow | None:
    """Cancel a queued job at once, or ask the worker to stop a processing one."""
    cur = conn.cursor(row_factory=class_row(JobRow))
    return cur.execute(
        """
        UPDATE backtest_job
        SET status = CASE WHEN status = 'queued' THEN 'cancelled' ELSE status END,
            completed_at = CASE WHEN status = 'queued' THEN now() ELSE completed_at END,
            cancel_requested = true
        WHERE id = %(id)s AND user_id = %(user_id)s AND status IN ('queued', 'processing')
        RETURNING *
        """,
        {"id": job_id, "user_id": user_id},
    ).fetchone()


def select_outbox_job_ids(conn: psycopg.Connection, *, older_than_s: float) -> list[int]:
    rows = conn.execute(
        """
        SELECT job_id FROM job_outbox
        WHERE created_at < now() - make_interval(secs => %(age)s)
        ORDER BY created_at, job_id
        LIMIT 1000
        """,
        {"age": older_than_s},
    ).fetchall()
    return [int(r[0]) for r in rows]


def select_stale_job_ids(conn: psycopg.Connection, *, stale_after_s: float) -> list[int]:
    """Processing jobs whose worker stopped sending heartbeats."""
    rows = conn.execute(
        """
        SELECT id FROM backtest_job
        WHERE status = 'processing' AND kind = 'backtest'
          AND heartbeat_at < now() - make_interval(secs => %(stale)s)
        FOR UPDATE SKIP LOCKED
        """,
        {"stale": stale_after_s},
    ).fetchall()
    return [int(r[0]) for r in rows]


def select_job_ids_of_workers(conn: psycopg.Connection, worker_ids: list[str]) -> list[int]:
    rows = conn.execute(
        """
        SELECT id FROM backtest_job
        WHERE status = 'processing' AND kind = 'backtest' AND worker_id = ANY(%(workers)s)
        FOR UPDATE SKIP LOCKED
        """,
        {"workers": worker_ids},
    ).fetchall()
    return [int(r[0]) for r in rows]


def update_job_requeue(
    conn: psycopg.Connection, job_id: int, *, max_attempts: int
) -> JobRow | None:
    """Return an abandoned processing job to the queue, or settle it when it cannot run again.

    A cancel request settles it as cancelled; a job whose attempts are used up (it killed
    its worker each time) fails instead of looping forever.
    """
    cur = conn.cursor(row_factory=class_row(JobRow))
    return cur.execute(
        """
        UPDATE backtest_job
        SET status = CASE
                WHEN cancel_requested THEN 'cancelled'
                WHEN attempt >= %(max_attempts)s THEN 'failed'
                ELSE 'queued' END,
            error = CASE
                WHEN cancel_requested THEN NULL
                WHEN attempt >= %(max_attempts)s THEN
                    'the worker stopped while running this backtest ' || attempt || ' times'
                ELSE NULL END,
            completed_at = CASE
                WHEN cancel_requested OR attempt >= %(max_attempts)s THEN now() ELSE NULL END,
            -- progress is kept: it never goes down, even across attempts
            worker_id = NULL, started_at = NULL, heartbeat_at = NULL
        WHERE id = %(id)s AND status = 'processing'
        RETURNING *
        """,
        {"id": job_id, "max_attempts": max_attempts},
    ).fetchone()


def update_job_released(conn: psycopg.Connection, job_id: int, worker_id: str) -> JobRow | None:
    """Back to queued without using up an attempt: the worker stopped, the job did nothing wrong."""
    cur = conn.cursor(row_factory=class_row(JobRow))
    return cur.execute(
        """
        UPDATE backtest_job
        SET status = 'queued', attempt = GREATEST(attempt - 1, 0), worker_id = NULL,
            started_at = NULL, heartbeat_at = NULL
        WHERE id = %(id)s AND status = 'processing' AND worker_id = %(worker_id)s
        RETURNING *
        """,
        {"id": job_id, "worker_id": worker_id},
    ).fetchone()


def delete_unpublished_job(conn: psycopg.Connection, job_id: int) -> None:
    conn.execute(
        """
        DELETE FROM backtest_job
        WHERE id = %(id)s AND status = 'queued'
          AND EXISTS (SELECT 1 FROM job_outbox WHERE job_id = %(id)s)
        """,
        {"id": job_id},
    )


def select_jobs_by_ids_for_user(
    conn: psycopg.Connection, job_ids: list[int], user_id: int
) -> list[JobRow]:
    """The user's jobs among `job_ids` (others' and unknown ids are simply absent)."""
    cur = conn.cursor(row_factory=class_row(JobRow))
    return cur.execute(
        """
        SELECT * FROM backtest_job
        WHERE id = ANY(%(ids)s::bigint[]) AND user_id = %(user_id)s
        """,
        {"ids": job_ids, "user_id": user_id},
    ).fetchall()
